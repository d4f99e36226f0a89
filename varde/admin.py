"""Administration used by operators, the demo and the tests: care teams, patients, users and gateways — what an
operator may set and the broker logins; the rows are written through `store` (users, patients, gateways,
gateway_enrolment, escalation_targets)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from store import audit, escalation_targets, gateway_enrolment, gateways, patients, users
from store.settings import Settings, instance_login
from vitals.topics import validate_gateway_id
from vitals.vocabulary import PROTOCOLS as PROTOCOLS
from vitals.vocabulary import ROLES as ROLES


class AdminError(ValueError):
    pass


def _connect(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(settings.require_database_url())


def add_team(settings: Settings, name: str) -> UUID:
    with _connect(settings) as conn:
        return users.ensure_team(conn, name)


def _team_id(conn: psycopg.Connection[tuple[Any, ...]], team: str) -> UUID:
    team_id = users.team_id(conn, team)
    if team_id is None:
        raise AdminError(f"no care team named {team!r}; create it with `varde team add {team}`")
    return team_id


def add_patient(
    settings: Settings,
    name: str,
    team: str,
    protocol: str = "general",
    timezone: str = "Europe/Oslo",
    national_id: str | None = None,
) -> UUID:
    if protocol not in PROTOCOLS:
        raise AdminError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    with _connect(settings) as conn:
        team_id = _team_id(conn, team)
        return patients.insert(conn, name, team_id, protocol, timezone, national_id)


def enrol_patient(
    settings: Settings,
    patient_id: UUID,
    reason: str,
    conditions: Sequence[str] = (),
    *,
    followed_since: datetime | None = None,
) -> UUID:
    """Open an episode of follow-up with the patient's current team responsible (the demo's patients; clinicians
    enrol through the API and the patient page). Returns the episode id. `followed_since`: the episode (and the
    patient's registration) date back to then — the demo's patients, whose devices deliver days of history."""
    from clinician_api import episodes

    with _connect(settings) as conn:
        care = patients.care_of(conn, patient_id)
        if care is None:
            raise AdminError(f"no patient {patient_id}")
        try:
            episode, _ = episodes.enrol(
                conn,
                patient_id,
                None,
                care.team_id,
                reason=reason,
                conditions=conditions,
                protocol=care.protocol,
                plan="",
                started_at=followed_since,
            )
            if followed_since is not None:
                patients.backdate(conn, patient_id, followed_since)
        except episodes.EpisodeError as exc:
            raise AdminError(exc.detail) from None
        return episode.id


def add_user(
    settings: Settings, username: str, role: str, teams: list[str], password: str, display_name: str = ""
) -> UUID:
    from clinician_api.passwords import hash_password

    if role not in ROLES:
        raise AdminError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    password_hash = hash_password(password)
    with _connect(settings) as conn:
        team_ids = [_team_id(conn, t) for t in teams]
        user_id = users.upsert_local(conn, username, role, password_hash, display_name or username)
        for team_id in team_ids:
            users.join_team(conn, user_id, team_id)
        return user_id


def set_user_enabled(settings: Settings, username: str, enabled: bool) -> tuple[UUID, bool]:
    """Enable or disable a login; returns (user id, whether it changed). Every request checks `users.active`, so a
    disabled user's tokens are refused from the next request on; the change is audited as `user_enable` or
    `user_disable` by the operator's login on this host."""
    import getpass

    with _connect(settings) as conn:
        login = users.lock_login(conn, username)
        if login is None:
            raise AdminError(f"no user named {username!r}")
        user_id = login.id
        changed = login.active != enabled
        if changed:
            users.set_active(conn, user_id, enabled)
        audit.record(
            conn,
            None,
            "user_enable" if enabled else "user_disable",
            f"users/{user_id}",
            "ok" if changed else "unchanged",
            username=f"cli:{getpass.getuser()}"[:64],
        )
        return user_id, changed


@dataclass(frozen=True)
class GatewayCredentials:
    gateway_id: str
    username: str
    password: str
    mqtt_host: str
    mqtt_port: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "gateway_id": self.gateway_id,
            "username": self.username,
            "password": self.password,
            "mqtt_host": self.mqtt_host,
            "mqtt_port": self.mqtt_port,
        }


def _secret_hash(password: str) -> str:
    # The gateway secret is 32 random bytes, so a plain SHA-256 is enough to keep it out of the database.
    return "sha256:" + hashlib.sha256(password.encode()).hexdigest()


def _broker_admin(settings: Settings, conn: psycopg.Connection[tuple[Any, ...]] | None = None) -> Any:
    """Mosquitto's dynamic-security admin, or with VARDE_BROKER_KIND=emqx the login tables EMQX reads (written
    through `conn`, in its transaction; see varde/emqx.py)."""
    from varde.broker import DynSecAdmin

    if settings.broker_kind == "emqx":
        from varde.emqx import EmqxApi, EmqxBroker

        if conn is None:
            raise AdminError("internal: the EMQX backend writes through a database connection")
        api = None
        if settings.emqx_api_url and settings.emqx_api_key and settings.emqx_api_secret:
            api = EmqxApi(settings.emqx_api_url, settings.emqx_api_key, settings.emqx_api_secret)
        return EmqxBroker(conn, api)
    if not settings.mqtt_admin_password:
        raise AdminError(
            "no broker admin login: run `varde stack up`, or set VARDE_MQTT_ADMIN_USERNAME/VARDE_MQTT_ADMIN_PASSWORD"
        )
    return DynSecAdmin(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_admin_username or "admin",
        settings.mqtt_admin_password,
        tls_ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
    )


def init_broker(settings: Settings, instances: Mapping[str, Sequence[str]]) -> list[str]:
    """Create the service roles and one login per service instance from the settings (idempotent); returns the
    logins. `instances` names each service's instances (`ingest`: worker ids, `api`: replicas); each login may
    connect only with its own client id."""
    logins = {
        "ingest": (settings.mqtt_ingest_username, settings.mqtt_ingest_password),
        "api": (settings.mqtt_api_username, settings.mqtt_api_password),
    }
    for service, (username, password) in logins.items():
        if username != f"varde-{service}" or not password:
            raise AdminError(
                f"set VARDE_MQTT_{service.upper()}_USERNAME=varde-{service} and VARDE_MQTT_{service.upper()}_PASSWORD"
            )
        if not instances.get(service):
            raise AdminError(f"name the {service} instances that connect (each gets its own login bound to its id)")
    unknown = set(instances) - set(logins)
    if unknown:
        raise AdminError(f"no such service: {', '.join(sorted(unknown))}")
    passwords = {service: str(password) for service, (_, password) in logins.items()}
    try:
        for names in instances.values():
            for name in names:
                instance_login("varde", name)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if settings.broker_kind == "emqx":
        from varde.emqx import ensure_db_role

        if not settings.emqx_db_password:
            raise AdminError("set VARDE_EMQX_DB_PASSWORD: the password of the read-only role EMQX logs in as")
        with _connect(settings) as conn, _broker_admin(settings, conn) as broker, conn.transaction():
            ensured: list[str] = broker.ensure_service_logins(passwords, instances)
            ensure_db_role(conn, settings.emqx_db_password)
        return ensured
    with _broker_admin(settings) as broker:
        ensured = broker.ensure_service_logins(passwords, instances)
        broker.bind_gateway_client_ids()
    return ensured


def add_gateways(settings: Settings, patient_ids: list[UUID]) -> list[GatewayCredentials]:
    """Create one gateway per patient: database row, broker login and its ACL role."""
    created: list[GatewayCredentials] = []
    with _connect(settings) as conn, _broker_admin(settings, conn) as broker:
        for patient_id in patient_ids:
            if patients.care_of(conn, patient_id) is None:
                raise AdminError(f"no patient with id {patient_id}")
            gateway_id = validate_gateway_id(f"gw-{secrets.token_hex(6)}")
            password = secrets.token_urlsafe(32)
            with conn.transaction():
                gateways.insert(conn, [gateways.NewGateway(gateway_id, patient_id, _secret_hash(password))])
                broker.add_gateway(gateway_id, password)
            created.append(GatewayCredentials(gateway_id, gateway_id, password, settings.mqtt_host, settings.mqtt_port))
    return created


def revoke_gateway(settings: Settings, gateway_id: str) -> None:
    with _connect(settings) as conn, _broker_admin(settings, conn) as broker, conn.transaction():
        if not gateways.revoke(conn, gateway_id):
            raise AdminError(f"no gateway {gateway_id!r}")
        gateway_enrolment.discard(conn, gateway_id)
        broker.revoke_gateway(gateway_id)


def rotate_gateway(settings: Settings, gateway_id: str) -> GatewayCredentials:
    """Give a gateway a new broker password; the broker refuses the old one and drops its live connections at once
    (Mosquitto's dynamic security kicks a client whose password is set)."""
    password = secrets.token_urlsafe(32)
    with _connect(settings) as conn, _broker_admin(settings, conn) as broker, conn.transaction():
        enabled = gateways.lock_enabled(conn, gateway_id)
        if enabled is None:
            raise AdminError(f"no gateway {gateway_id!r}")
        if not enabled:
            raise AdminError(f"gateway {gateway_id} is revoked; give the patient a new one with `varde gateway add`")
        gateways.set_secret_hash(conn, gateway_id, _secret_hash(password))
        gateway_enrolment.discard(conn, gateway_id)  # codes of the old one
        broker.set_gateway_password(gateway_id, password)
    return GatewayCredentials(gateway_id, gateway_id, password, settings.mqtt_host, settings.mqtt_port)


def provision_fleet(
    settings: Settings,
    count: int,
    *,
    team: str = "Fleet",
    protocol: str = "general",
    broker_chunk: int = 100,
) -> list[GatewayCredentials]:
    """Bulk path for load tests: `count` patients in `team`, each with a gateway and its own broker login.

    Patients and gateways go into the database in one transaction; broker logins are created `broker_chunk` at a
    time in one dynamic-security message each, so a thousand gateways take seconds, not minutes.
    """
    from varde.broker import gateway_role

    if protocol not in PROTOCOLS:
        raise AdminError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    if count < 1:
        raise AdminError("provision at least one gateway")
    add_team(settings, team)
    created: list[GatewayCredentials] = []
    with _connect(settings) as conn, _broker_admin(settings, conn) as broker, conn.transaction():
        team_id = _team_id(conn, team)
        patient_ids = patients.insert_numbered(conn, team_id, protocol, count)
        for gateway_id in (validate_gateway_id(f"gw-{secrets.token_hex(6)}") for _ in patient_ids):
            password = secrets.token_urlsafe(32)
            created.append(GatewayCredentials(gateway_id, gateway_id, password, settings.mqtt_host, settings.mqtt_port))
        gateways.insert(
            conn,
            [
                gateways.NewGateway(c.gateway_id, p, _secret_hash(c.password))
                for c, p in zip(created, patient_ids, strict=True)
            ],
        )
        if settings.broker_kind == "emqx":
            for creds in created:
                broker.add_gateway(creds.gateway_id, creds.password)
            return created
        for first in range(0, len(created), broker_chunk):
            commands: list[dict[str, Any]] = []
            for creds in created[first : first + broker_chunk]:
                role = gateway_role(creds.gateway_id)
                commands.append({"command": "createRole", **role})
                commands.append(
                    {
                        "command": "createClient",
                        "username": creds.gateway_id,
                        "password": creds.password,
                        "clientid": creds.gateway_id,  # as `add_gateway`: its own client id only
                        "roles": [{"rolename": role["rolename"]}],
                    }
                )
            broker.run(commands)
    return created


def delete_gateway_logins(settings: Settings, gateway_ids: list[str]) -> None:
    """Remove gateways' broker logins and ACL roles (for gateways whose database rows are gone)."""
    if settings.broker_kind == "emqx":
        with _connect(settings) as conn, _broker_admin(settings, conn) as broker:
            broker.delete_logins(gateway_ids)
        return
    with _broker_admin(settings) as broker:
        for gateway_id in gateway_ids:
            broker.run(
                [
                    {"command": "deleteClient", "username": gateway_id},
                    {"command": "deleteRole", "rolename": f"gateway-{gateway_id}"},
                ],
                tolerate=("not found",),
            )


def add_escalation_target(settings: Settings, team: str, label: str, channel: str, address: str) -> UUID:
    """Whom the team's escalated alarms reach (the on-call nurse): `channel` sms (a phone number, sent through
    VARDE_ESCALATION_SMS_URL), email (an address) or webhook (an http(s) URL)."""
    from clinician_api.escalation import CHANNELS

    if channel not in CHANNELS:
        raise AdminError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    if channel == "webhook" and not address.startswith(("http://", "https://")):
        raise AdminError("a webhook address is an http:// or https:// URL")
    with _connect(settings) as conn:
        team_id = _team_id(conn, team)
        return escalation_targets.upsert(conn, team_id, label, channel, address)


def set_team_lead(settings: Settings, username: str, team: str, lead: bool = True) -> None:
    """A team lead reads the audit log of the team's patients (the dashboard's access log)."""
    with _connect(settings) as conn:
        team_id = _team_id(conn, team)
        if not users.set_team_lead(conn, username, team_id, lead):
            raise AdminError(f"{username!r} is not a member of {team!r}; add the user to the team first")
