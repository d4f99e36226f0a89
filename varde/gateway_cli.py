"""`varde gateway ...`: provision a home gateway (broker login, configuration file, installer's QR code), rotate its
password and revoke it. Heavy imports happen inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from uuid import UUID

import typer

if TYPE_CHECKING:
    from varde.admin import GatewayCredentials

gateway_app = typer.Typer(no_args_is_help=True, help="Home gateways: broker logins, configuration files, QR codes.")

Out = Annotated[
    Path | None,
    typer.Option("--out", help="Where to write the gateway's configuration (default: .varde/gateways/GATEWAY.toml)."),
]
Qr = Annotated[
    list[str] | None,
    typer.Option("--qr", help="Write the installer's QR code: a .svg, .png or .txt file, or '-' for the terminal."),
]
BrokerHost = Annotated[
    str | None,
    typer.Option(envvar="VARDE_GATEWAY_MQTT_HOST", help="Broker address as gateways reach it (default: local stack)."),
]
BrokerPort = Annotated[int | None, typer.Option(envvar="VARDE_GATEWAY_MQTT_PORT", help="Broker TLS port (8883).")]
CaFile = Annotated[
    Path | None, typer.Option(envvar="VARDE_GATEWAY_MQTT_CA_FILE", help="The broker's CA certificate (PEM).")
]
GatewayCaPath = Annotated[
    str | None, typer.Option(help="Where the CA certificate is on the gateway (default: /etc/varde-edge/ca.pem).")
]
Devices = Annotated[
    list[str] | None, typer.Option("--device", help="ADDRESS,TYPE[,MODEL] of a device to read (repeat).")
]
ApiUrl = Annotated[
    str | None,
    typer.Option(envvar="VARDE_GATEWAY_API_URL", help="API address gateways enrol at (default: the local stack's)."),
]
CodeHours = Annotated[
    float, typer.Option(min=0.1, max=720, help="Hours the QR code's one-time enrolment code stays valid.")
]
QrWithPassword = Annotated[
    bool,
    typer.Option(
        "--qr-with-password", help="Put the password itself in the QR code (for gateways without API access)."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (it includes the password).")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Any:
    from store.settings import get_settings

    return get_settings()


def _prepare(
    host: str | None,
    port: int | None,
    ca_file: Path | None,
    devices: list[str] | None,
    qr_targets: list[str] | None,
    api_url: str | None,
    qr_with_password: bool,
) -> tuple[Any, list[Any], str | None]:
    """Resolve the broker, the devices and the enrolment address before anything is created, so a typo costs
    nothing; the enrolment address is None when no QR code is asked for or it carries the password."""
    from varde.provisioning import enrolment_api_url, gateway_broker, parse_device
    from vitals.provisioning import ProvisioningError

    try:
        broker = gateway_broker(_settings(), host=host, port=port, ca_file=ca_file)
        parsed = [parse_device(d) for d in devices or []]
        enrol_at = enrolment_api_url(_settings(), api_url) if qr_targets and not qr_with_password else None
    except ProvisioningError as exc:
        _fail(str(exc))
    return broker, parsed, enrol_at


def _hand_over(
    creds: GatewayCredentials,
    broker: Any,
    devices: list[Any],
    out: Path | None,
    qr_targets: list[str] | None,
    gateway_ca_path: str | None,
    enrol_at: str | None,
    code_hours: float,
    as_json: bool,
    headline: str,
) -> None:
    """Write the configuration file and the QR codes, then tell the operator where they are."""
    from datetime import timedelta

    from varde.provisioning import (
        default_config_path,
        gateway_config_text,
        gateway_provisioning,
        issue_enrolment_code,
        qr_code,
        qr_terminal,
        write_private,
        write_qr,
    )
    from vitals.provisioning import ProvisioningError, encode_payload

    path = out or default_config_path(creds.gateway_id)
    expires_at = None
    try:
        provisioning = gateway_provisioning(_settings(), creds, broker, devices)
        write_private(path, gateway_config_text(provisioning, broker, path, gateway_ca_path).encode())
        if enrol_at is not None:
            provisioning, expires_at = issue_enrolment_code(
                _settings(), provisioning, enrol_at, timedelta(hours=code_hours)
            )
        payload = encode_payload(provisioning)
        qr = qr_code(payload)
        files = [t for t in qr_targets or [] if t != "-"]
        for target in files:
            write_qr(qr, Path(target), f"Varde gateway {creds.gateway_id}")
    except (ProvisioningError, OSError) as exc:
        _fail(f"{exc} (the broker login of {creds.gateway_id} is made; `varde gateway rotate` writes the files anew)")
    doc = {
        **creds.as_dict(),
        "broker_host": broker.host,
        "broker_port": broker.port,
        "config_file": str(path),
        "qr_files": files,
        "qr_version": qr.designator,
        "payload": payload,
        "enrolment_code_expires_at": expires_at.isoformat() if expires_at else None,
    }
    if as_json:
        typer.echo(json.dumps(doc))
    else:
        typer.echo(headline)
        typer.echo(f"configuration: {path} (mode 0600; it holds the broker password)")
        holds = (
            f"a one-time enrolment code, valid until {expires_at:%Y-%m-%d %H:%M %Z}"
            if expires_at
            else "it holds the broker password"
        )
        for target in files:
            typer.echo(f"QR code: {target} (mode 0600; {holds})")
        typer.echo(f"on the gateway: varde edge check-config --config {path.name}   (or scan the QR code with")
        typer.echo("  `varde edge enrol --config /etc/varde-edge/varde-edge.toml`)")
    if qr_targets and "-" in qr_targets:
        typer.echo(qr_terminal(qr), err=as_json)


@gateway_app.command("add")
def gateway_add(
    patient: Annotated[str, typer.Option(help="Patient id the gateway belongs to.")],
    out: Out = None,
    qr: Qr = None,
    device: Devices = None,
    broker_host: BrokerHost = None,
    broker_port: BrokerPort = None,
    ca_file: CaFile = None,
    gateway_ca_path: GatewayCaPath = None,
    api_url: ApiUrl = None,
    code_hours: CodeHours = 72.0,
    qr_with_password: QrWithPassword = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a gateway with its own broker login and ACL; write its configuration file and the installer's QR code."""
    from varde.admin import AdminError, add_gateways
    from varde.broker import BrokerAdminError

    broker, devices, enrol_at = _prepare(broker_host, broker_port, ca_file, device, qr, api_url, qr_with_password)
    try:
        (creds,) = add_gateways(_settings(), [UUID(patient)])
    except (AdminError, BrokerAdminError, ValueError) as exc:
        _fail(str(exc))
    _hand_over(
        creds,
        broker,
        devices,
        out,
        qr,
        gateway_ca_path,
        enrol_at,
        code_hours,
        as_json,
        f"gateway {creds.gateway_id} added",
    )


@gateway_app.command("rotate")
def gateway_rotate(
    gateway_id: str,
    out: Out = None,
    qr: Qr = None,
    device: Devices = None,
    broker_host: BrokerHost = None,
    broker_port: BrokerPort = None,
    ca_file: CaFile = None,
    gateway_ca_path: GatewayCaPath = None,
    api_url: ApiUrl = None,
    code_hours: CodeHours = 72.0,
    qr_with_password: QrWithPassword = False,
    as_json: JsonFlag = False,
) -> None:
    """Give a gateway a new broker password (the old one is refused at once); write its new configuration and QR.

    The gateway stays offline until the new file is installed or its QR code enrolled with `varde edge enrol`.
    """
    from varde.admin import AdminError, rotate_gateway
    from varde.broker import BrokerAdminError

    broker, devices, enrol_at = _prepare(broker_host, broker_port, ca_file, device, qr, api_url, qr_with_password)
    try:
        creds = rotate_gateway(_settings(), gateway_id)
    except (AdminError, BrokerAdminError) as exc:
        _fail(str(exc))
    _hand_over(
        creds,
        broker,
        devices,
        out,
        qr,
        gateway_ca_path,
        enrol_at,
        code_hours,
        as_json,
        f"gateway {gateway_id}: rotated",
    )


@gateway_app.command("revoke")
def gateway_revoke(gateway_id: str) -> None:
    """Disable a gateway and cut its broker connection at once."""
    from varde.admin import AdminError, revoke_gateway
    from varde.broker import BrokerAdminError

    try:
        revoke_gateway(_settings(), gateway_id)
    except (AdminError, BrokerAdminError) as exc:
        _fail(str(exc))
    typer.echo(f"gateway {gateway_id} revoked")
