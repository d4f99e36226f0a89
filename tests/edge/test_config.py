"""The configuration file: the sample parses, and every mistake is named by file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "edge" / "varde-edge.example.toml"

MINIMAL = """
gateway_id = "gw-0001"
patient_timezone = "Europe/Oslo"
[broker]
host = "127.0.0.1"
"""


def test_example_config_is_valid() -> None:
    config = parse_config(EXAMPLE.read_text(), str(EXAMPLE))
    assert config.gateway_id == "gw-0001"
    assert config.username == "gw-0001"
    assert config.broker.tls is not None
    assert {d.type for d in config.devices} >= {"blood_pressure_monitor", "pulse_oximeter", "glucose_meter"}
    glucose = next(d for d in config.devices if d.type == "glucose_meter")
    assert glucose.bond and glucose.passkey == "123456"


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.broker.port == 8883
    assert config.publisher.window == 32
    assert config.resolved_plan_path == config.outbox.path.with_name("plan.sqlite")
    assert config.broker.read_password() is None


def test_password_is_read_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    path = tmp_path / "edge.toml"
    path.write_text(MINIMAL + f'password_file = "{secret}"\n')
    assert load_config(path).broker.read_password() == "s3cret"


def test_missing_password_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(MINIMAL + f'password_file = "{tmp_path / "nope"}"\n')
    with pytest.raises(ConfigError, match=r"edge\.toml: broker\.password_file: cannot read"):
        load_config(path)


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        ('[[devices]]\naddress = "A4:C1:38:00:00:01"\ntype = "toaster"\n', "devices.0.type", "pulse_oximeter"),
        ('[[devices]]\naddress = "not-an-address"\ntype = "thermometer"\n', "devices.0.address", "Bluetooth address"),
        (
            '[[devices]]\naddress = "A4:C1:38:00:00:01"\ntype = "glucose_meter"\npasskey = "12ab"\n',
            "devices.0.passkey",
            "six digits",
        ),
        ("[outbox]\nmax_rows = 5\n", "outbox.max_rows", "greater than or equal to 100"),
        ("[publisher]\nwindow = 0\n", "publisher.window", "greater than or equal to 1"),
        ("[publisher]\nbatch_max_readings = 5000\n", "publisher.batch_max_readings", "2000"),
        ('[broker.tls]\ncert_file = "/c.pem"\n', "broker.tls.ca_file", "required key is missing"),
        ("[outbox]\nmax_rowz = 500\n", "outbox.max_rowz", "unknown key"),
    ],
)
def test_invalid_value_is_reported_with_file_and_key(extra: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + extra, "/etc/varde-edge/varde-edge.toml")
    message = str(info.value)
    assert message.startswith("/etc/varde-edge/varde-edge.toml: invalid configuration")
    assert f"{key}: " in message and fragment in message


def test_bad_timezone_and_gateway_id_are_named() -> None:
    text = MINIMAL.replace("Europe/Oslo", "Europe/Olso").replace("gw-0001", "Gateway 1")
    with pytest.raises(ConfigError) as info:
        parse_config(text, "edge.toml")
    assert "patient_timezone: 'Europe/Olso' is not an IANA time zone" in str(info.value)
    assert "gateway_id: invalid gateway id 'Gateway 1'" in str(info.value)


def test_duplicate_device_and_two_password_sources_are_refused() -> None:
    device = '[[devices]]\naddress = "a4:c1:38:00:00:01"\ntype = "thermometer"\n'
    with pytest.raises(ConfigError, match="listed twice"):
        parse_config(MINIMAL + device + device.replace("a4", "A4"))
    with pytest.raises(ConfigError, match="either password or password_file"):
        parse_config(MINIMAL + 'password = "a"\npassword_file = "/p"\n')


def test_not_toml_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"edge\.toml: not valid TOML"):
        parse_config("gateway_id = ", "edge.toml")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.toml")
