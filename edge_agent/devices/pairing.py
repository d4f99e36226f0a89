"""`varde edge pair`: find health devices advertising nearby and add one to the gateway's TOML configuration.

Devices are recognised by the Bluetooth SIG service UUID they advertise. Adding appends a `[[devices]]` table to the
file (comments and layout are kept), checks that the result is a valid configuration, then replaces the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from edge_agent.config import ConfigError, DeviceConfig, DeviceType, EdgeConfig, parse_config
from edge_agent.devices.manager import HANDLERS
from edge_agent.link import Advertisement, Link, LinkError, Radio, sig_uuid

SERVICES: dict[str, DeviceType] = {sig_uuid(h.service_uuid): t for t, h in HANDLERS.items()}
"""Advertised 128-bit service UUID → device type."""
BOND_BY_DEFAULT: frozenset[DeviceType] = frozenset({"glucose_meter"})
"""Types whose devices almost always require an encrypted link."""


@dataclass(frozen=True, slots=True)
class Candidate:
    address: str
    type: DeviceType
    name: str | None
    rssi: int

    @property
    def suggested_bond(self) -> bool:
        return self.type in BOND_BY_DEFAULT


def health_device(advertisement: Advertisement) -> Candidate | None:
    """The candidate an advertisement describes, if it advertises a health service Varde can read."""
    for uuid in advertisement.service_uuids:
        device_type = SERVICES.get(uuid.lower())
        if device_type is not None:
            return Candidate(advertisement.address.upper(), device_type, advertisement.name, advertisement.rssi)
    return None


async def discover(
    radio: Radio, *, duration_s: float = 10.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> list[Candidate]:
    """Scan for `duration_s` and list the health devices heard, strongest signal first (one row per address)."""
    found: dict[str, Candidate] = {}

    def heard(advertisement: Advertisement) -> None:
        candidate = health_device(advertisement)
        if candidate is not None:
            known = found.get(candidate.address)
            if known is None or candidate.rssi > known.rssi:
                found[candidate.address] = candidate

    await radio.start_scan(heard)
    try:
        await sleep(duration_s)
    finally:
        await radio.stop_scan()
    return sorted(found.values(), key=lambda c: (-c.rssi, c.address))


async def bond(link: Link, *, passkey: str | None, timeout_s: float = 20.0) -> None:
    """Connect and pair once, so the device accepts the gateway later; raises `LinkError` with a hint."""
    await link.connect(timeout_s=timeout_s)
    try:
        await link.pair(passkey=passkey)
    finally:
        with contextlib.suppress(LinkError):
            await link.disconnect()


def add_device(
    config_path: Path,
    candidate: Candidate,
    *,
    model: str | None = None,
    bond: bool | None = None,
    passkey: str | None = None,
) -> EdgeConfig:
    """Append the device to the configuration file; ConfigError if it is already there or the result is invalid."""
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read configuration: {exc.strerror}") from None
    current = parse_config(text, str(config_path))
    if any(d.address == candidate.address for d in current.devices):
        raise ConfigError(f"{config_path}: device {candidate.address} is already configured")
    try:
        entry = DeviceConfig(
            address=candidate.address,
            type=candidate.type,
            model=model if model is not None else candidate.name,
            bond=(candidate.suggested_bond or passkey is not None) if bond is None else bond,
            passkey=passkey,
        )
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors(include_url=False))
        raise ConfigError(f"{config_path}: cannot add {candidate.address}: {reasons}") from None
    table = _device_table(entry)
    updated = text + ("" if text.endswith("\n") or not text else "\n") + "\n" + table
    config = parse_config(updated, str(config_path))
    tmp = config_path.with_name(config_path.name + ".tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, config_path)
    return config


def _device_table(device: DeviceConfig) -> str:
    lines = ["[[devices]]", f"address = {json.dumps(device.address)}", f"type = {json.dumps(device.type)}"]
    if device.model is not None:
        lines.append(f"model = {json.dumps(device.model, ensure_ascii=False)}")
    if device.bond:
        lines.append("bond = true")
    if device.passkey is not None:
        lines.append(f"passkey = {json.dumps(device.passkey)}")
    return "\n".join(lines) + "\n"
