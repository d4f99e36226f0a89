"""Enrolment: turn the provisioning code from the installer's QR (typed by a USB scanner or pasted) into this
gateway's configuration file and the broker's CA certificate."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from edge_agent.config import ConfigError, EdgeConfig, load_config, parse_config
from vitals.provisioning import GatewayProvisioning, ProvisionedDevice, decode_payload, render_config


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


def enrol(payload: str, config_path: Path, *, ca_path: Path | None = None, group: str | None = None) -> Enrolment:
    """Write the configuration (0600, or 0640 for `group`) and the CA certificate (0644, default `ca.pem` beside the
    configuration); raises ProvisioningError or ConfigError with a message for the installer."""
    provisioning = decode_payload(payload)
    kept = _earlier_devices(config_path, provisioning)
    provisioning = replace(provisioning, devices=(*provisioning.devices, *kept))
    if provisioning.ca_pem is not None:
        ca_path = ca_path or config_path.with_name("ca.pem")
    text = render_config(provisioning, ca_file=str(ca_path.resolve()) if ca_path else None)
    config = parse_config(text, str(config_path))
    config_path.parent.mkdir(parents=True, exist_ok=True)
    if ca_path is not None and provisioning.ca_pem is not None:
        _write(ca_path, provisioning.ca_pem, 0o644, None)
    _write(config_path, text, 0o640 if group else 0o600, group)
    return Enrolment(config, config_path, ca_path, len(kept))
