"""Enrolment: turn the provisioning code from the installer's QR (typed by a USB scanner or pasted) into this
gateway's configuration file and the broker's CA certificate, exchanging a one-time enrolment code for the broker
password at the Varde API on the way (standard library HTTPS only: the gateway stays light)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from edge_agent.config import ConfigError, EdgeConfig, load_config, parse_config
from vitals.provisioning import (
    GatewayProvisioning,
    ProvisionedDevice,
    ProvisioningError,
    decode_payload,
    render_config,
)

ENROL_PATH = "/api/v1/gateways/enrol"


@dataclass(frozen=True)
class Enrolment:
    config: EdgeConfig
    config_path: Path
    ca_path: Path | None
    kept_devices: int
    """Devices already listed in an earlier configuration and kept."""


def _write(path: Path, data: str, mode: int, group: str | None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        if group is not None:
            shutil.chown(tmp, group=group)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _earlier_devices(config_path: Path, provisioning: GatewayProvisioning) -> tuple[ProvisionedDevice, ...]:
    """Devices paired on this gateway before (re-enrolment after a rotation keeps them)."""
    if not config_path.exists():
        return ()
    try:
        earlier = load_config(config_path)
    except ConfigError:
        return ()
    known = {d.address.upper() for d in provisioning.devices}
    return tuple(
        ProvisionedDevice(d.address, d.type, d.model) for d in earlier.devices if d.address.upper() not in known
    )


def _loopback(host: str | None) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


_MAX_ANSWER_BYTES = 64 * 1024  # an enrolment answer is three short strings


def claim_password(provisioning: GatewayProvisioning, timeout_s: float = 20.0) -> str:
    """Spend the one-time enrolment code at the API and return the broker password it releases."""
    url = f"{(provisioning.api_url or '').rstrip('/')}{ENROL_PATH}"
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        raise ProvisioningError(f"the enrolment address {url} must use https")
    context: ssl.SSLContext | None = None
    if parts.scheme == "https":
        context = ssl.create_default_context()  # the system's CAs (a public API certificate) ...
        if provisioning.ca_pem:
            context.load_verify_locations(cadata=provisioning.ca_pem)  # ... and the platform's own CA
    body = json.dumps({"gateway_id": provisioning.gateway_id, "code": provisioning.enrolment_code}).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above (https, or http on loopback)
        url, data=body, method="POST", headers={"Content-Type": "application/json", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:  # noqa: S310
            raw = response.read(_MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ProvisioningError(
                "this enrolment code is wrong, already used or expired: ask for a new QR code (varde gateway rotate)"
            ) from None
        if exc.code == 429:
            raise ProvisioningError("too many enrolment attempts from here: wait a minute and scan again") from None
        raise ProvisioningError(f"enrolment refused by {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProvisioningError(f"cannot reach {url}: {reason}") from None
    if len(raw) > _MAX_ANSWER_BYTES:
        raise ProvisioningError(f"{url} answered with more than {_MAX_ANSWER_BYTES} bytes; not an enrolment")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProvisioningError(f"{url} answered with something that is not an enrolment (not JSON)") from None
    password = doc.get("password") if isinstance(doc, dict) else None
    if not isinstance(password, str) or not password:
        raise ProvisioningError(f"{url} answered without a password")
    if len(password) > 256 or not password.isprintable() or password != password.strip():
        raise ProvisioningError(f"{url} answered with a password a broker login cannot have")
    return password


def enrol(
    payload: str,
    config_path: Path,
    *,
    ca_path: Path | None = None,
    group: str | None = None,
    claim: Callable[[GatewayProvisioning], str] = claim_password,
) -> Enrolment:
    """Write the configuration (0600, or 0640 for `group`) and the CA certificate (0644, default `ca.pem` beside the
    configuration); raises ProvisioningError or ConfigError with a message for the installer.

    Everything is checked before a one-time code is spent, so a mistake here does not use the code up.
    """
    provisioning = decode_payload(payload)
    kept = _earlier_devices(config_path, provisioning)
    provisioning = replace(provisioning, devices=(*provisioning.devices, *kept))
    if provisioning.ca_pem is not None:
        ca_path = ca_path or config_path.with_name("ca.pem")
    ca_file = str(ca_path.resolve()) if ca_path else None
    if provisioning.enrolment_code:
        placeholder = replace(provisioning, password="not-yet-claimed")  # noqa: S106 - only to check the file
        parse_config(render_config(placeholder, ca_file=ca_file), str(config_path))
        provisioning = replace(provisioning, password=claim(provisioning), enrolment_code=None, api_url=None)
    text = render_config(provisioning, ca_file=ca_file)
    config = parse_config(text, str(config_path))
    config_path.parent.mkdir(parents=True, exist_ok=True)
    if ca_path is not None and provisioning.ca_pem is not None:
        _write(ca_path, provisioning.ca_pem, 0o644, None)
    _write(config_path, text, 0o640 if group else 0o600, group)
    return Enrolment(config, config_path, ca_path, len(kept))
