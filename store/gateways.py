"""Gateways and their devices as ingest sees them: which patient each gateway serves and whether it may send
(`GatewayInfo`, for the registry's cache), when each gateway and device was last heard from, and what a gateway's
status message reports (state, agent version, outbox depth, device batteries); and a patient's gateways and devices
as the API shows them (`GatewayStatusRow`, `DeviceStatusRow`) or publishes to them (`enabled_ids`,
`enabled_of_patients`); and the registry as the admin CLI keeps it (`varde.admin`: gateways made with the hash of
their secret, the secret replaced, revoked, a patient's gateways disabled) and its provisioning reads
(`varde.provisioning`: the patient's time zone). Enrolment codes are `store.gateway_enrolment`'s; the broker logins
and what a secret is are the admin CLI's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row, scalar_row

_ALL = "SELECT id::text AS gateway_id, patient_id, enabled FROM gateways"
_SEEN = "UPDATE gateways SET last_seen_at = now() WHERE id = ANY(%s)"
_DEVICES_SEEN = (
    "INSERT INTO devices (gateway_id, address, type, model, last_seen_at) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (gateway_id, address) DO UPDATE SET last_seen_at = GREATEST(devices.last_seen_at, "
    "EXCLUDED.last_seen_at), type = EXCLUDED.type, model = COALESCE(EXCLUDED.model, devices.model)"
)
_STATUS = (
    "UPDATE gateways SET state = %s, agent_version = COALESCE(%s, agent_version), "
    "outbox_depth = COALESCE(%s, outbox_depth), status = %s, last_seen_at = now() WHERE id = %s"
)
_BATTERY = "UPDATE devices SET battery_percent = %s WHERE gateway_id = %s AND address = %s"
_OF_PATIENT = (
    "SELECT id, enabled, state, last_seen_at, agent_version, outbox_depth FROM gateways WHERE patient_id = %s "
    "ORDER BY created_at, id"
)
_DEVICES_OF = (
    "SELECT gateway_id, address, type, model, battery_percent, first_seen_at, last_seen_at FROM devices "
    "WHERE gateway_id = ANY(%s) ORDER BY gateway_id, address"
)
_ENABLED_OF_PATIENT = "SELECT id FROM gateways WHERE patient_id = %s AND enabled ORDER BY id"
_INSERT = "INSERT INTO gateways (id, patient_id, secret_hash) VALUES (%s, %s, %s)"
_REVOKE = "UPDATE gateways SET enabled = false, revoked_at = now() WHERE id = %s RETURNING id"
_LOCK_ENABLED = "SELECT enabled FROM gateways WHERE id = %s FOR UPDATE"
_SET_HASH = "UPDATE gateways SET secret_hash = %s WHERE id = %s"
_PATIENT_TIMEZONE = "SELECT p.timezone FROM gateways g JOIN patients p ON p.id = g.patient_id WHERE g.id = %s"
_COUNT_SERVING = (
    "SELECT count(*) FROM gateways g JOIN patients p ON p.id = g.patient_id "
    "WHERE g.id = ANY(%s) AND g.enabled AND p.active"
)
_DISABLE_OF_PATIENTS = "UPDATE gateways SET enabled = false WHERE patient_id = ANY(%s)"
_ENABLED_OF_PATIENTS = "SELECT id, patient_id FROM gateways WHERE patient_id = ANY(%s::uuid[]) AND enabled ORDER BY id"


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    gateway_id: str
    patient_id: UUID | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    gateway_id: str
    address: str
    type: str
    model: str | None
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What one status message reports; `None` keeps the stored value."""

    gateway_id: str
    state: str
    agent_version: str | None
    outbox_depth: int | None
    status_json: str
    batteries: Sequence[tuple[str, int]]
    """(device address, battery percent) of the devices that reported one."""


@dataclass(frozen=True, slots=True)
class GatewayStatusRow:
    id: str
    enabled: bool
    state: str | None
    last_seen_at: datetime | None
    agent_version: str | None
    outbox_depth: int | None


@dataclass(frozen=True, slots=True)
class DeviceStatusRow:
    gateway_id: str
    address: str
    type: str
    model: str | None
    battery_percent: int | None
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class PatientGateway:
    """An enabled gateway and the patient it serves."""

    id: str
    patient_id: UUID


def all_gateways(conn: psycopg.Connection[Any]) -> list[GatewayInfo]:
    with conn.cursor(row_factory=class_row(GatewayInfo)) as cur:
        return cur.execute(_ALL).fetchall()


def mark_seen(conn: psycopg.Connection[Any], gateway_ids: Sequence[str]) -> None:
    conn.execute(_SEEN, (sorted(set(gateway_ids)),))


def touch_seen(conn: psycopg.Connection[Any], devices: Sequence[DeviceSeen]) -> None:
    """Last-seen times of the devices' gateways and of the devices, registering a device seen for the first time;
    in a transaction of its own (kept out of the readings' transaction, where it made workers queue on row locks)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_SEEN, (sorted({d.gateway_id for d in devices}),))
        cur.executemany(_DEVICES_SEEN, [(d.gateway_id, d.address, d.type, d.model, d.seen_at) for d in devices])


def record_statuses(conn: psycopg.Connection[Any], statuses: Sequence[StatusReport]) -> None:
    """Each gateway's reported state and its devices' batteries, in one transaction."""
    with conn.transaction():
        for s in statuses:
            conn.execute(_STATUS, (s.state, s.agent_version, s.outbox_depth, s.status_json, s.gateway_id))
            for address, percent in s.batteries:
                conn.execute(_BATTERY, (percent, s.gateway_id, address))


def of_patient(conn: psycopg.Connection[Any], patient_id: UUID) -> list[GatewayStatusRow]:
    """The patient's gateways, oldest first, enabled or not."""
    with conn.cursor(row_factory=class_row(GatewayStatusRow)) as cur:
        return cur.execute(_OF_PATIENT, (patient_id,)).fetchall()


def devices_of(conn: psycopg.Connection[Any], gateway_ids: Sequence[str]) -> list[DeviceStatusRow]:
    """The devices these gateways have heard from, by gateway then address."""
    with conn.cursor(row_factory=class_row(DeviceStatusRow)) as cur:
        return cur.execute(_DEVICES_OF, (list(gateway_ids),)).fetchall()


def enabled_ids(conn: psycopg.Connection[Any], patient_id: UUID) -> list[str]:
    """The ids of the patient's enabled gateways, in order: where the patient's plan is published."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(_ENABLED_OF_PATIENT, (patient_id,)).fetchall()


def enabled_of_patients(conn: psycopg.Connection[Any], patient_ids: Sequence[UUID]) -> list[PatientGateway]:
    """The enabled gateways of these patients, by id: where a receipt to them is published."""
    with conn.cursor(row_factory=class_row(PatientGateway)) as cur:
        return cur.execute(_ENABLED_OF_PATIENTS, (list(patient_ids),)).fetchall()


# --- the registry, as the admin CLI keeps it ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewGateway:
    id: str
    patient_id: UUID
    secret_hash: str


def insert(conn: psycopg.Connection[Any], gateways: Sequence[NewGateway]) -> None:
    """Register the gateways, enabled, each serving its patient."""
    with conn.cursor() as cur:
        cur.executemany(_INSERT, [(g.id, g.patient_id, g.secret_hash) for g in gateways])


def revoke(conn: psycopg.Connection[Any], gateway_id: str) -> bool:
    """Disable the gateway for good, noting when; False when there is no such gateway."""
    return conn.execute(_REVOKE, (gateway_id,)).fetchone() is not None


def lock_enabled(conn: psycopg.Connection[Any], gateway_id: str) -> bool | None:
    """Whether the gateway is enabled, its row locked until the caller's transaction ends; None when unknown."""
    with conn.cursor(row_factory=scalar_row) as cur:
        enabled: bool | None = cur.execute(_LOCK_ENABLED, (gateway_id,)).fetchone()
    return enabled


def set_secret_hash(conn: psycopg.Connection[Any], gateway_id: str, secret_hash: str) -> None:
    conn.execute(_SET_HASH, (secret_hash, gateway_id))


def patient_timezone(conn: psycopg.Connection[Any], gateway_id: str) -> str | None:
    """The time zone of the patient the gateway serves; None when it serves none (or is unknown)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        timezone: str | None = cur.execute(_PATIENT_TIMEZONE, (gateway_id,)).fetchone()
    return timezone


def count_serving(conn: psycopg.Connection[Any], gateway_ids: Sequence[str]) -> int:
    """How many of these gateways are enabled and serve an active patient."""
    with conn.cursor(row_factory=scalar_row) as cur:
        count: int | None = cur.execute(_COUNT_SERVING, (list(gateway_ids),)).fetchone()
    return count or 0


def disable_of_patients(conn: psycopg.Connection[Any], patient_ids: Sequence[UUID]) -> None:
    conn.execute(_DISABLE_OF_PATIENTS, (list(patient_ids),))


__all__ = [
    "DeviceSeen",
    "DeviceStatusRow",
    "GatewayInfo",
    "GatewayStatusRow",
    "NewGateway",
    "PatientGateway",
    "StatusReport",
    "all_gateways",
    "count_serving",
    "devices_of",
    "disable_of_patients",
    "enabled_ids",
    "enabled_of_patients",
    "insert",
    "lock_enabled",
    "mark_seen",
    "of_patient",
    "patient_timezone",
    "record_statuses",
    "revoke",
    "set_secret_hash",
    "touch_seen",
]
