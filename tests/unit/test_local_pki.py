"""The local stack's private CA: server certificates chain to it, name loopback, keep their keys private and are
kept across runs."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from varde.tls import SERVERS, ensure_local_pki


def test_server_certificates_are_signed_by_the_local_ca_for_loopback(tmp_path: Path) -> None:
    pki = ensure_local_pki(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for server in SERVERS:
        cert = x509.load_pem_x509_certificate(pki.cert(server).read_bytes())
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    pki = ensure_local_pki(tmp_path / "tls")
    for key in [pki.ca_key, *(pki.key(s) for s in SERVERS)]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700


def test_a_second_run_keeps_the_ca_and_certificates_and_a_lost_ca_key_reissues_everything(tmp_path: Path) -> None:
    first = ensure_local_pki(tmp_path / "tls")
    before = {p: p.read_bytes() for p in [first.ca_cert, *(first.cert(s) for s in SERVERS)]}
    again = ensure_local_pki(tmp_path / "tls")
    assert {p: p.read_bytes() for p in before} == before
    again.ca_key.unlink()
    third = ensure_local_pki(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(third.ca_cert.read_bytes())
    assert third.ca_cert.read_bytes() != before[first.ca_cert]
    for server in SERVERS:
        x509.load_pem_x509_certificate(third.cert(server).read_bytes()).verify_directly_issued_by(ca)
