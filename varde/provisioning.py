"""Gateway provisioning on the operator's side: which broker address a gateway is given, its configuration file
(mode 0600) and the installer's QR code. The payload and TOML formats themselves live in `vitals.provisioning`."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from store import gateways
from store.settings import Settings, varde_home
from vitals.provisioning import GatewayProvisioning, ProvisionedDevice, ProvisioningError, render_config

if TYPE_CHECKING:
    import segno

    from varde.admin import GatewayCredentials

GATEWAY_CA_PATH = "/etc/varde-edge/ca.pem"
"""Where deploy/edge/INSTALL.md puts the broker's CA certificate on a gateway."""
_QR_KINDS = {".svg": "svg", ".png": "png", ".txt": "txt"}


@dataclass(frozen=True)
class GatewayBroker:
    """The broker as a gateway reaches it (often not the address the services use inside the data centre)."""

    host: str
    port: int
    ca_file: Path | None

    @property
    def on_this_host(self) -> bool:
        """A loopback broker: the gateway runs on this machine (development, demo, tests)."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def _local_stack() -> dict[str, Any]:
    path = varde_home() / "stack.json"
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def gateway_broker(
    settings: Settings, *, host: str | None = None, port: int | None = None, ca_file: Path | None = None
) -> GatewayBroker:
    """The address given to gateways: explicit values first; else the local stack's TLS listener; else the broker
    the services use. Gateways connect over TLS only, so a CA certificate is required."""
    stack = _local_stack()
    if host is not None:
        resolved = GatewayBroker(host, port or 8883, ca_file or settings.mqtt_tls_ca_file)
    elif stack.get("mqtts_port") and stack.get("tls_ca_file"):
        resolved = GatewayBroker(
            str(stack.get("mqtt_host") or "127.0.0.1"),
            port or int(stack["mqtts_port"]),
            ca_file or Path(stack["tls_ca_file"]),
        )
    else:
        resolved = GatewayBroker(settings.mqtt_host, port or settings.mqtt_port, ca_file or settings.mqtt_tls_ca_file)
    if resolved.ca_file is None:
        raise ProvisioningError(
            "gateways connect to the broker over TLS only: give the broker's CA certificate with --ca-file "
            "(or VARDE_GATEWAY_MQTT_CA_FILE) and its public address with --broker-host/--broker-port"
        )
    if not resolved.ca_file.is_file():
        raise ProvisioningError(f"the broker's CA certificate {resolved.ca_file} does not exist")
    return resolved


def parse_device(spec: str) -> ProvisionedDevice:
    """`ADDRESS,TYPE[,MODEL]` as given on the command line."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (2, 3) or not all(parts):
        raise ProvisioningError(
            f"--device {spec!r}: write it as ADDRESS,TYPE[,MODEL], e.g. A4:C1:38:00:00:01,weight_scale"
        )
    from edge_agent.config import DeviceConfig  # the gateway's own rules for a device entry

    try:
        device = DeviceConfig(address=parts[0], type=parts[1], model=parts[2] if len(parts) == 3 else None)
    except ValueError as exc:
        raise ProvisioningError(f"--device {spec!r}: {exc}") from None
    return ProvisionedDevice(device.address, device.type, device.model)


def gateway_provisioning(
    settings: Settings,
    credentials: GatewayCredentials,
    broker: GatewayBroker,
    devices: Sequence[ProvisionedDevice] = (),
) -> GatewayProvisioning:
    """The provisioning of one gateway: its patient's time zone and the devices known for it (recorded from its
    status, plus `devices`)."""
    with psycopg.connect(settings.require_database_url()) as conn:
        timezone = gateways.patient_timezone(conn, credentials.gateway_id)
        if timezone is None:
            raise ProvisioningError(f"gateway {credentials.gateway_id} is not assigned to a patient")
        known = gateways.devices_of(conn, [credentials.gateway_id])
    merged: dict[str, ProvisionedDevice] = {
        d.address.upper(): ProvisionedDevice(d.address, d.type, d.model) for d in known
    }
    merged.update({d.address.upper(): d for d in devices})
    return GatewayProvisioning(
        gateway_id=credentials.gateway_id,
        broker_host=broker.host,
        broker_port=broker.port,
        password=credentials.password,
        patient_timezone=timezone,
        username=credentials.username,
        ca_pem=broker.ca_file.read_text(encoding="ascii") if broker.ca_file else None,
        devices=tuple(merged.values()),
    )


def enrolment_api_url(settings: Settings, api_url: str | None) -> str:
    """The API address gateways exchange their one-time code at (it must be reachable from the patient's home)."""
    url = api_url or settings.api_url
    if not url:
        raise ProvisioningError(
            "the QR code carries a one-time enrolment code that gateways exchange at the API: give the API address "
            "gateways reach with --api-url (or VARDE_GATEWAY_API_URL), or put the password itself in the code with "
            "--qr-with-password"
        )
    return url.rstrip("/")


def issue_enrolment_code(
    settings: Settings, provisioning: GatewayProvisioning, api_url: str, ttl: timedelta
) -> tuple[GatewayProvisioning, datetime]:
    """Replace any earlier code of the gateway with a new one; returns what the QR code carries (the code, not the
    password) and when the code expires."""
    from store.gateway_enrolment import create_enrolment

    with psycopg.connect(settings.require_database_url()) as conn:
        code, expires_at = create_enrolment(conn, provisioning.gateway_id, provisioning.password, ttl)
    return replace(provisioning, password="", enrolment_code=code, api_url=api_url), expires_at


def default_config_path(gateway_id: str) -> Path:
    return varde_home() / "gateways" / f"{gateway_id}.toml"


def gateway_config_text(
    provisioning: GatewayProvisioning, broker: GatewayBroker, out: Path, gateway_ca_path: str | None = None
) -> str:
    """The configuration file's text, checked with the gateway's own validator before anything is written.

    A gateway on this host uses the local CA file and keeps its outbox beside the configuration; a remote one
    expects the CA where deploy/edge/INSTALL.md puts it and keeps the agent's default outbox.
    """
    from edge_agent.config import ConfigError, parse_config

    if broker.on_this_host:
        ca_path = gateway_ca_path or str(broker.ca_file.resolve() if broker.ca_file else GATEWAY_CA_PATH)
        outbox: str | None = str(out.resolve().with_name(f"{provisioning.gateway_id}-state") / "outbox.sqlite")
    else:
        ca_path, outbox = gateway_ca_path or GATEWAY_CA_PATH, None
    text = render_config(provisioning, ca_file=ca_path, outbox_path=outbox)
    try:
        parse_config(text, str(out))
    except ConfigError as exc:
        raise ProvisioningError(str(exc)) from None
    return text


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (0600), atomically; a new parent directory is made 0700."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def qr_code(payload: str) -> segno.QRCode:
    """The installer's QR code (error correction M: survives a crease or a smudge on the printout)."""
    import segno

    return segno.make_qr(payload, error="m", boost_error=False)


def write_qr(qr: segno.QRCode, target: Path, title: str) -> None:
    """Save the QR code as SVG, PNG or text art, chosen by the file's suffix; mode 0600 (it holds the password)."""
    import io

    kind = _QR_KINDS.get(target.suffix.lower())
    if kind is None:
        raise ProvisioningError(f"--qr {target}: name an .svg, .png or .txt file, or '-' for the terminal")
    buffer = io.BytesIO()
    if kind == "svg":
        qr.save(buffer, kind="svg", scale=4, border=4, title=title)
    elif kind == "png":
        qr.save(buffer, kind="png", scale=4, border=4)
    else:
        text = io.StringIO()
        qr.save(text, kind="txt", border=4)
        buffer.write(text.getvalue().encode())
    write_private(target, buffer.getvalue())


def qr_terminal(qr: segno.QRCode) -> str:
    """The QR code drawn with block characters, for scanning straight off the operator's screen."""
    import io

    text = io.StringIO()
    qr.terminal(out=text, compact=True, border=2)
    return text.getvalue()
