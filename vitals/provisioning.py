"""The gateway provisioning payload and configuration file: what `varde gateway add` hands the installer (a QR code
and a TOML file) and what `varde edge enrol` turns back into the gateway's configuration.

Both sides live here so the cloud that writes the payload and the gateway that reads it share one format. The payload
carries either the gateway's broker password or (by default) a one-time enrolment code that the gateway exchanges
for the password at the API (`store.gateway_enrolment`); either way it is a secret until used.

Payload: `VARDE1:` then unpadded base32 of zlib(compact JSON, a newline, the broker CA certificate in DER). Base32's
alphabet is in the QR code's alphanumeric set, so the code stays small and a USB barcode scanner can type it.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import zlib
from dataclasses import dataclass
from typing import Any

from vitals.topics import (
    plan_topic,
    questionnaires_topic,
    readings_topic,
    receipts_topic,
    status_topic,
    validate_gateway_id,
)

PAYLOAD_PREFIX = "VARDE1:"
_MAX_PAYLOAD_CHARS = 4000
"""Longer than any QR code holds; a guard against pasting something else into `varde edge enrol`."""


class ProvisioningError(ValueError):
    """A provisioning payload that cannot be used; the message says why."""


@dataclass(frozen=True)
class ProvisionedDevice:
    address: str
    type: str
    model: str | None = None


@dataclass(frozen=True)
class GatewayProvisioning:
    """Everything a gateway needs to reach the broker as itself."""

    gateway_id: str
    broker_host: str
    broker_port: int
    password: str
    patient_timezone: str
    username: str | None = None
    """None: the gateway id, as the broker's ACL expects."""
    ca_pem: str | None = None
    """The broker's CA certificate (PEM); None only for a broker without TLS."""
    devices: tuple[ProvisionedDevice, ...] = ()
    enrolment_code: str | None = None
    """A one-time code the gateway exchanges for its password at `api_url` (then `password` is empty)."""
    api_url: str | None = None

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"GatewayProvisioning(gateway_id={self.gateway_id!r}, broker={self.broker_host}:{self.broker_port})"


def encode_payload(provisioning: GatewayProvisioning) -> str:
    """The compact text a QR code carries (upper-case letters, digits 2–7 and one colon)."""
    doc: dict[str, Any] = {
        "g": provisioning.gateway_id,
        "h": provisioning.broker_host,
        "p": provisioning.broker_port,
        "z": provisioning.patient_timezone,
    }
    if provisioning.enrolment_code:
        doc.update({"t": provisioning.enrolment_code, "a": provisioning.api_url})
    else:
        doc["s"] = provisioning.password
    if provisioning.username is not None and provisioning.username != provisioning.gateway_id:
        doc["u"] = provisioning.username
    if provisioning.devices:
        doc["d"] = [[d.address, d.type, d.model] if d.model else [d.address, d.type] for d in provisioning.devices]
    head = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()
    der = ssl.PEM_cert_to_DER_cert(provisioning.ca_pem) if provisioning.ca_pem else b""
    packed = zlib.compress(head + b"\n" + der, 9)
    return PAYLOAD_PREFIX + base64.b32encode(packed).decode("ascii").rstrip("=")


def decode_payload(text: str) -> GatewayProvisioning:
    """Read a payload back; whitespace around it (a scanner's Enter) is ignored, case is not significant."""
    text = text.strip()
    if len(text) > _MAX_PAYLOAD_CHARS:
        raise ProvisioningError("too long to be a Varde provisioning code")
    if not text.upper().startswith(PAYLOAD_PREFIX):
        raise ProvisioningError(f"not a Varde provisioning code (it should start with {PAYLOAD_PREFIX})")
    body = text[len(PAYLOAD_PREFIX) :].upper()
    try:
        packed = base64.b32decode(body + "=" * (-len(body) % 8))
        raw = zlib.decompress(packed)
    except (binascii.Error, ValueError, zlib.error):
        raise ProvisioningError("the provisioning code is damaged (scan it again)") from None
    head, _, der = raw.partition(b"\n")
    try:
        doc = json.loads(head)
        devices = tuple(
            ProvisionedDevice(str(d[0]), str(d[1]), str(d[2]) if len(d) > 2 else None) for d in doc.get("d", [])
        )
        provisioning = GatewayProvisioning(
            gateway_id=validate_gateway_id(str(doc["g"])),
            broker_host=str(doc["h"]),
            broker_port=int(doc["p"]),
            password=str(doc.get("s", "")),
            patient_timezone=str(doc["z"]),
            username=str(doc["u"]) if "u" in doc else None,
            ca_pem=ssl.DER_cert_to_PEM_cert(der) if der else None,
            devices=devices,
            enrolment_code=str(doc["t"]) if "t" in doc else None,
            api_url=str(doc["a"]) if "a" in doc else None,
        )
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ProvisioningError(f"the provisioning code is not valid: {exc}") from None
    if not provisioning.broker_host or not 1 <= provisioning.broker_port <= 65535:
        raise ProvisioningError("the provisioning code lacks the broker address")
    if not (provisioning.password or (provisioning.enrolment_code and provisioning.api_url)):
        raise ProvisioningError("the provisioning code holds neither a password nor an enrolment code")
    return provisioning


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def render_config(
    provisioning: GatewayProvisioning,
    *,
    ca_file: str | None,
    outbox_path: str | None = None,
) -> str:
    """The gateway's TOML configuration (as `varde edge check-config` reads it), password inline.

    `ca_file` is where the broker's CA certificate is on the gateway; `outbox_path` None keeps the agent's default.
    """
    p = provisioning
    gw = p.gateway_id
    if not p.password:
        raise ProvisioningError("no password yet: exchange the enrolment code for it first")
    lines = [
        "# Varde home gateway configuration, written by `varde gateway add` / `varde gateway rotate`.",
        "# It holds the gateway's broker password: keep it readable by the gateway's service user only (0600/0640).",
        "# Check it with: varde edge check-config --config FILE",
        "#",
        "# The broker lets this login publish only to",
        f"#   {readings_topic(gw)}, {questionnaires_topic(gw)}, {status_topic(gw)}",
        "# and receive only",
        f"#   {plan_topic(gw)}, {receipts_topic(gw)}",
        "",
        f"gateway_id = {_toml_str(gw)}",
        f"patient_timezone = {_toml_str(p.patient_timezone)}",
        "",
        "[broker]",
        f"host = {_toml_str(p.broker_host)}",
        f"port = {p.broker_port}",
        f"username = {_toml_str(p.username or gw)}",
        f"password = {_toml_str(p.password)}",
    ]
    if ca_file is not None:
        lines += ["", "[broker.tls]", f"ca_file = {_toml_str(ca_file)}"]
    if outbox_path is not None:
        lines += ["", "[outbox]", f"path = {_toml_str(outbox_path)}"]
    for device in p.devices:
        lines += ["", "[[devices]]", f"address = {_toml_str(device.address)}", f"type = {_toml_str(device.type)}"]
        if device.model:
            lines.append(f"model = {_toml_str(device.model)}")
    return "\n".join(lines) + "\n"
