"""Gateway provisioning without a stack: the QR payload round-trips, the QR code is made from it, the generated
configuration is what `varde edge check-config` accepts, and `varde edge enrol` turns the payload into that file."""

from __future__ import annotations

import json
import re
import stat
import string
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edge_agent.cli import app as edge_app
from edge_agent.config import load_config, parse_config
from store.settings import Settings
from varde.provisioning import (
    GATEWAY_CA_PATH,
    GatewayBroker,
    gateway_broker,
    gateway_config_text,
    parse_device,
    qr_code,
    qr_terminal,
    write_qr,
)
from varde.tls import ensure_local_pki
from vitals.provisioning import (
    PAYLOAD_PREFIX,
    GatewayProvisioning,
    ProvisionedDevice,
    ProvisioningError,
    decode_payload,
    encode_payload,
    render_config,
)

_QR_ALPHANUMERIC = set(string.digits + string.ascii_uppercase + " $%*+-./:")


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_local_pki(tmp_path_factory.mktemp("pki")).ca_cert.read_text()


def _provisioning(ca_pem: str | None, **changes: object) -> GatewayProvisioning:
    base: dict[str, object] = {
        "gateway_id": "gw-0a1b2c3d4e5f",
        "broker_host": "mqtt.varde.example",
        "broker_port": 8883,
        "password": "Zq3-_x" * 7,
        "patient_timezone": "Europe/Oslo",
        "ca_pem": ca_pem,
        "devices": (
            ProvisionedDevice("A4:C1:38:00:00:01", "blood_pressure_monitor", "UA-651BLE"),
            ProvisionedDevice("A4:C1:38:00:00:03", "weight_scale"),
        ),
    }
    base.update(changes)
    return GatewayProvisioning(**base)  # type: ignore[arg-type]


def test_payload_round_trips_with_ca_certificate_and_devices(ca_pem: str) -> None:
    original = _provisioning(ca_pem, username="gw-other-login")
    payload = encode_payload(original)
    assert payload.startswith(PAYLOAD_PREFIX)
    assert set(payload) <= _QR_ALPHANUMERIC, "the payload must stay in the QR alphanumeric set"
    decoded = decode_payload(payload)
    assert decoded == original
    assert decoded.ca_pem is not None and "BEGIN CERTIFICATE" in decoded.ca_pem


def test_payload_omits_the_username_when_it_is_the_gateway_id(ca_pem: str) -> None:
    decoded = decode_payload(encode_payload(_provisioning(ca_pem, username="gw-0a1b2c3d4e5f")))
    assert decoded.username is None


def test_payload_read_back_from_a_scanner_tolerates_case_and_the_enter_key(ca_pem: str) -> None:
    payload = encode_payload(_provisioning(ca_pem))
    assert decode_payload(f"  {payload.lower()}\r\n") == _provisioning(ca_pem)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("https://example.org/", "not a Varde provisioning code"),
        ("VARDE1:AAAA", "damaged"),
        ("VARDE1:" + "A" * 5000, "too long"),
    ],
)
def test_foreign_or_damaged_codes_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(ProvisioningError, match=why):
        decode_payload(text)


def test_a_flipped_character_is_detected(ca_pem: str) -> None:
    payload = encode_payload(_provisioning(ca_pem))
    middle = len(payload) // 2
    flipped = payload[:middle] + ("B" if payload[middle] != "B" else "C") + payload[middle + 1 :]
    with pytest.raises(ProvisioningError):
        decode_payload(flipped)


@settings(max_examples=60, deadline=None)
@given(
    password=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=64),
    host=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}\.){0,3}[a-z]{2,6}", fullmatch=True),
    port=st.integers(1, 65535),
    timezone=st.sampled_from(["Europe/Oslo", "UTC", "America/Argentina/Buenos_Aires"]),
)
def test_payload_round_trips_for_any_address_and_password(password: str, host: str, port: int, timezone: str) -> None:
    original = _provisioning(None, password=password, broker_host=host, broker_port=port, patient_timezone=timezone)
    assert decode_payload(encode_payload(original)) == original


def test_the_password_stays_out_of_repr(ca_pem: str) -> None:
    provisioning = _provisioning(ca_pem)
    assert provisioning.password not in repr(provisioning)


def test_qr_code_is_made_from_the_payload_in_alphanumeric_mode(ca_pem: str, tmp_path: Path) -> None:
    payload = encode_payload(_provisioning(ca_pem))
    qr = qr_code(payload)
    assert qr.mode == "alphanumeric"
    assert qr.error == "M"
    assert isinstance(qr.version, int) and qr.version <= 20, qr.version  # scannable off paper or a phone screen
    size = len(qr.matrix)
    assert size == 17 + 4 * qr.version and all(len(row) == size for row in qr.matrix)
    # The three finder patterns (7x7 with a dark ring) sit in the corners.
    for r0, c0 in ((0, 0), (0, size - 7), (size - 7, 0)):
        ring = [qr.matrix[r0][c0 + i] for i in range(7)] + [qr.matrix[r0 + i][c0] for i in range(7)]
        assert all(ring), (r0, c0)

    svg, png, txt = tmp_path / "gw.svg", tmp_path / "gw.png", tmp_path / "gw.txt"
    for target in (svg, png, txt):
        write_qr(qr, target, "Varde gateway gw-0a1b2c3d4e5f")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600, target
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg")) and "Varde gateway" in svg.read_text()
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    rows = txt.read_text().splitlines()
    assert len(rows) == size + 8 and rows[4][4:11] == "1111111"
    terminal = qr_terminal(qr)
    assert "█" in terminal and len(terminal.splitlines()) >= size // 2
    with pytest.raises(ProvisioningError, match=r"\.svg, \.png or \.txt"):
        write_qr(qr, tmp_path / "gw.jpg", "x")


def test_rendered_configuration_is_accepted_by_the_gateway(ca_pem: str) -> None:
    provisioning = _provisioning(ca_pem)
    text = render_config(provisioning, ca_file="/etc/varde-edge/ca.pem", outbox_path="/tmp/x/outbox.sqlite")
    config = parse_config(text, "generated.toml")
    assert config.gateway_id == provisioning.gateway_id
    assert config.username == provisioning.gateway_id
    assert (config.broker.host, config.broker.port) == ("mqtt.varde.example", 8883)
    assert config.broker.read_password() == provisioning.password
    assert config.broker.tls is not None and str(config.broker.tls.ca_file) == "/etc/varde-edge/ca.pem"
    assert str(config.outbox.path) == "/tmp/x/outbox.sqlite"
    assert [(d.address, d.type, d.model) for d in config.devices] == [
        ("A4:C1:38:00:00:01", "blood_pressure_monitor", "UA-651BLE"),
        ("A4:C1:38:00:00:03", "weight_scale", None),
    ]
    assert "varde/v1/gw/gw-0a1b2c3d4e5f/readings" in text  # the topics, as comments


def test_awkward_characters_in_values_survive_the_toml(ca_pem: str) -> None:
    provisioning = _provisioning(ca_pem, password='a"b\\c\u00e6', broker_host="broker.example")
    config = parse_config(render_config(provisioning, ca_file='C:\\certs\\"ca".pem'), "x.toml")
    assert config.broker.read_password() == 'a"b\\c\u00e6'
    assert config.broker.tls is not None and str(config.broker.tls.ca_file) == 'C:\\certs\\"ca".pem'


def test_a_gateway_on_this_host_gets_the_local_ca_and_an_outbox_beside_its_file(ca_pem: str, tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(ca_pem)
    out = tmp_path / "gateways" / "gw.toml"
    local = gateway_config_text(_provisioning(ca_pem), GatewayBroker("127.0.0.1", 18883, ca), out)
    config = parse_config(local, str(out))
    assert config.broker.tls is not None and config.broker.tls.ca_file == ca.resolve()
    assert config.outbox.path == tmp_path / "gateways" / "gw-0a1b2c3d4e5f-state" / "outbox.sqlite"
    remote = parse_config(
        gateway_config_text(_provisioning(ca_pem), GatewayBroker("mqtt.varde.example", 8883, ca), out), str(out)
    )
    assert remote.broker.tls is not None and str(remote.broker.tls.ca_file) == GATEWAY_CA_PATH
    assert str(remote.outbox.path) == "/var/lib/varde-edge/outbox.sqlite"


def test_broker_for_gateways_prefers_explicit_values_then_the_local_tls_listener(
    ca_pem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(ca_pem)
    monkeypatch.setenv("VARDE_HOME", str(tmp_path / "home"))
    services = Settings(mqtt_host="mosquitto", mqtt_port=8883, mqtt_tls_ca_file=ca)
    assert gateway_broker(services, host="mqtt.example") == GatewayBroker("mqtt.example", 8883, ca)
    assert gateway_broker(services) == GatewayBroker("mosquitto", 8883, ca)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "stack.json").write_text(
        json.dumps({"mqtt_host": "127.0.0.1", "mqtt_port": 1883, "mqtts_port": 18883, "tls_ca_file": str(ca)})
    )
    assert gateway_broker(Settings(mqtt_host="127.0.0.1", mqtt_port=1883)) == GatewayBroker("127.0.0.1", 18883, ca)
    with pytest.raises(ProvisioningError, match="TLS only"):
        gateway_broker(Settings(mqtt_host="mq", mqtt_port=1883, mqtt_tls_ca_file=None), host="mq")
    with pytest.raises(ProvisioningError, match="does not exist"):
        gateway_broker(services, host="mq", ca_file=tmp_path / "missing.pem")


def test_devices_on_the_command_line_are_checked_by_the_gateway_rules() -> None:
    assert parse_device("a4:c1:38:00:00:09,pulse_oximeter,PO-60") == ProvisionedDevice(
        "A4:C1:38:00:00:09", "pulse_oximeter", "PO-60"
    )
    with pytest.raises(ProvisioningError, match="ADDRESS,TYPE"):
        parse_device("A4:C1:38:00:00:09")
    with pytest.raises(ProvisioningError, match="toaster"):
        parse_device("A4:C1:38:00:00:09,toaster")


def test_enrol_writes_the_configuration_and_ca_that_check_config_accepts(ca_pem: str, tmp_path: Path) -> None:
    payload = encode_payload(_provisioning(ca_pem))
    config = tmp_path / "etc" / "varde-edge.toml"
    runner = CliRunner()
    result = runner.invoke(edge_app, ["enrol", "--config", str(config)], input=payload + "\n")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    ca = tmp_path / "etc" / "ca.pem"
    assert ca.read_text() == decode_payload(payload).ca_pem and stat.S_IMODE(ca.stat().st_mode) == 0o644
    checked = runner.invoke(edge_app, ["check-config", "--config", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "ok — gateway gw-0a1b2c3d4e5f, broker mqtt.varde.example:8883, 2 device(s)" in checked.output
    loaded = load_config(config)
    assert loaded.broker.tls is not None and loaded.broker.tls.ca_file == ca.resolve()


def test_re_enrolment_after_a_rotation_keeps_devices_paired_since(ca_pem: str, tmp_path: Path) -> None:
    config = tmp_path / "varde-edge.toml"
    first = _provisioning(ca_pem, devices=(ProvisionedDevice("A4:C1:38:00:00:04", "glucose_meter"),))
    runner = CliRunner()
    assert runner.invoke(edge_app, ["enrol", "-c", str(config), "--payload", encode_payload(first)]).exit_code == 0
    rotated = _provisioning(ca_pem, password="a-new-password", devices=())
    result = runner.invoke(edge_app, ["enrol", "-c", str(config), "--payload", encode_payload(rotated)])
    assert result.exit_code == 0, result.output
    assert "1 kept from the earlier file" in result.output
    loaded = load_config(config)
    assert loaded.broker.read_password() == "a-new-password"
    assert [d.address for d in loaded.devices] == ["A4:C1:38:00:00:04"]


def test_enrol_refuses_a_damaged_code_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "varde-edge.toml"
    result = CliRunner().invoke(edge_app, ["enrol", "-c", str(config), "--payload", "VARDE1:ZZZZ"])
    assert result.exit_code == 2
    assert "enrolment failed" in result.output and "damaged" in result.output
    assert not config.exists()


def test_payload_with_a_one_time_code_carries_no_password(ca_pem: str) -> None:
    original = _provisioning(
        ca_pem, password="", enrolment_code="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", api_url="https://x"
    )
    payload = encode_payload(original)
    assert set(payload) <= _QR_ALPHANUMERIC
    decoded = decode_payload(payload)
    assert decoded == original and decoded.password == ""
    with pytest.raises(ProvisioningError, match="exchange the enrolment code"):
        render_config(decoded, ca_file=None)


def test_sealed_password_opens_only_with_its_code_and_gateway() -> None:
    from store.gateway_enrolment import new_token, seal, unseal

    code = new_token()
    assert len(code) == 32 and set(code) <= _QR_ALPHANUMERIC
    sealed = seal("gw-aaaa", code, "the-password")
    assert b"the-password" not in sealed
    assert unseal("gw-aaaa", code, sealed) == "the-password"
    assert unseal("gw-aaaa", code.lower() + " ", sealed) == "the-password"  # as a scanner may type it
    assert unseal("gw-aaaa", new_token(), sealed) is None
    assert unseal("gw-bbbb", code, sealed) is None


def test_enrol_with_a_code_spends_it_only_after_the_file_is_known_to_be_valid(ca_pem: str, tmp_path: Path) -> None:
    from edge_agent.enrol import enrol

    claims: list[str] = []

    def claim(p: GatewayProvisioning) -> str:
        claims.append(str(p.enrolment_code))
        return "released-password"

    coded = _provisioning(ca_pem, password="", enrolment_code="CODE" * 8, api_url="http://127.0.0.1:1")
    done = enrol(encode_payload(coded), tmp_path / "gw.toml", claim=claim)
    assert claims == ["CODE" * 8]
    assert done.config.broker.read_password() == "released-password"
    assert "CODE" not in (tmp_path / "gw.toml").read_text()

    bad_device = replace(coded, devices=(ProvisionedDevice("not-an-address", "weight_scale"),))
    with pytest.raises(ValueError, match="Bluetooth address"):
        enrol(encode_payload(bad_device), tmp_path / "other.toml", claim=claim)
    assert claims == ["CODE" * 8], "a code was spent on a configuration that could not be written"
    assert not (tmp_path / "other.toml").exists()


def test_enrol_explains_an_unreachable_or_plain_http_enrolment_address(ca_pem: str, tmp_path: Path) -> None:
    from edge_agent.enrol import enrol

    plain = _provisioning(ca_pem, password="", enrolment_code="C" * 32, api_url="http://api.varde.example")
    with pytest.raises(ProvisioningError, match="must use https"):
        enrol(encode_payload(plain), tmp_path / "gw.toml")
    closed = replace(plain, api_url="http://127.0.0.1:9")
    with pytest.raises(ProvisioningError, match=re.escape("cannot reach http://127.0.0.1:9/api/v1/gateways/enrol")):
        enrol(encode_payload(closed), tmp_path / "gw.toml")
    assert not (tmp_path / "gw.toml").exists()


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "not JSON"),
        (b'{"password": "' + b"x" * 70_000 + b'"}', "more than"),
        (b"\xff\xfe garbage", "not JSON"),
        (b'{"password": "pw\\u0000d"}', "cannot have"),
        (b'{"password": NaN}', "without a password"),
        (b'{"password": ""}', "without a password"),
    ],
)
def test_enrolment_answers_that_are_not_an_enrolment_are_refused(ca_pem: str, answer: bytes, why: str) -> None:
    """A hostile or broken server behind the enrolment address cannot crash or mislead the installer's command."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from edge_agent.enrol import claim_password

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        provisioning = _provisioning(ca_pem, password="", enrolment_code="C" * 32, api_url=url)
        with pytest.raises(ProvisioningError, match=why):
            claim_password(provisioning, timeout_s=10)
    finally:
        server.shutdown()
        server.server_close()
