"""Broker logins and ACLs for the EMQX-cluster variant (`VARDE_BROKER_KIND=emqx`), kept in Varde's PostgreSQL.

EMQX's PostgreSQL authenticator and authorizer read the views of migration 0070 with the queries in
`deploy/emqx/emqx.hocon`; this module decides the rows and `store.mqtt_logins` writes them in the caller's
transaction, and after the
caller commits, disconnects revoked or rotated gateways through the EMQX REST API. The ACL rows are derived from the
same role definitions Mosquitto gets (`varde.broker`), so both brokers enforce one policy.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from store import mqtt_logins
from store.settings import instance_login
from varde.broker import SERVICE_ROLES, BrokerAdminError, gateway_role

log = logging.getLogger(__name__)

DB_ROLE = "varde_emqx"
"""The PostgreSQL role EMQX logs in as: read access to the two views, nothing else."""

# Mosquitto's ACL types → EMQX actions. EMQX checks a publish and a subscribe; what a client may *receive* follows
# from what it may subscribe to, so Mosquitto's publishClientReceive rows have no EMQX counterpart.
_ACTIONS = {"publishClientSend": "publish", "subscribePattern": "subscribe"}


def password_hash(password: str, salt: str) -> str:
    """EMQX's `password_hash_algorithm {name = sha256, salt_position = suffix}`: hex of sha256(password || salt).

    Gateway secrets are 256-bit random tokens, so one salted SHA-256 is as strong as a slow hash here, and it keeps
    a cluster-wide reconnect storm (thousands of gateways after a node restart) cheap for the broker."""
    return hashlib.sha256((password + salt).encode()).hexdigest()


def acl_rows(acls: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(action, topic) allow rows for EMQX from Mosquitto-style ACL entries."""
    rows = {(_ACTIONS[a["acltype"]], str(a["topic"])) for a in acls if a["acltype"] in _ACTIONS and a["allow"]}
    return sorted(rows)


def _upsert_login(
    conn: psycopg.Connection[Any], username: str, password: str, gateway_id: str | None, acls: list[tuple[str, str]]
) -> None:
    salt = secrets.token_hex(16)
    mqtt_logins.upsert(conn, username, gateway_id, password_hash(password, salt), salt, acls)


class EmqxBroker:
    """The EMQX counterpart of `DynSecAdmin` for `varde.admin`: the same operations, written to PostgreSQL through
    the caller's connection (so they commit or roll back with the gateway rows). Kicks wait until `close()`, which
    the caller's `with` runs after its transaction has committed: a client kicked earlier could log in again with
    the old password before the change is visible.

    A failed kick after a revocation is an error the operator must see; after a rotation it is only logged, so the
    command still hands over the new password (the old connection then lasts until it drops)."""

    def __init__(self, conn: psycopg.Connection[Any], api: EmqxApi | None) -> None:
        self._conn = conn
        self._api = api
        self._kicks: list[tuple[str, bool]] = []  # (client id, must succeed)

    def ensure_service_logins(self, passwords: Mapping[str, str], instances: Mapping[str, Iterable[str]]) -> list[str]:
        """One login per service instance, `varde-<service>-<instance>` with the ACL of SERVICE_ROLES (the
        authentication query lets every login connect only with a client id equal to its username); the shared
        `varde-ingest` / `varde-api` logins of earlier versions are deleted. Returns the logins.

        Rewriting a row changes no live connection in EMQX (it checks logins at CONNECT only), so this is
        idempotent without any digest."""
        ensured: list[str] = []
        for service, names in instances.items():
            for instance in names:
                username = instance_login(f"varde-{service}", instance)
                _upsert_login(self._conn, username, passwords[service], None, acl_rows(SERVICE_ROLES[service]))
                ensured.append(username)
        self.delete_logins([f"varde-{service}" for service in SERVICE_ROLES])
        return ensured

    def add_gateway(self, gateway_id: str, password: str) -> None:
        _upsert_login(self._conn, gateway_id, password, gateway_id, acl_rows(gateway_role(gateway_id)["acls"]))

    def set_gateway_password(self, gateway_id: str, password: str) -> None:
        self.add_gateway(gateway_id, password)
        self._kicks.append((gateway_id, False))

    def revoke_gateway(self, gateway_id: str) -> None:
        mqtt_logins.disable_gateway(self._conn, gateway_id)
        self._kicks.append((gateway_id, True))

    def delete_logins(self, usernames: list[str]) -> None:
        mqtt_logins.delete(self._conn, usernames)

    def close(self) -> None:
        kicks, self._kicks = self._kicks, []
        for client_id, required in kicks:
            try:
                if self._api is None:
                    raise BrokerAdminError(
                        "no EMQX REST API is configured to disconnect the live connection "
                        "(set VARDE_EMQX_API_URL, VARDE_EMQX_API_KEY, VARDE_EMQX_API_SECRET)"
                    )
                self._api.kick(client_id)
            except BrokerAdminError as exc:
                if not required:
                    log.warning("emqx_kick_failed client_id=%s error=%s", client_id, exc)
                    continue
                raise BrokerAdminError(
                    f"{client_id}: the login change is committed, but {exc}; the open connection stays until EMQX's "
                    "authorization cache expires (1 min) and it publishes, or it is disconnected from the dashboard"
                ) from None

    def __enter__(self) -> EmqxBroker:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()


class EmqxApi:
    """The one EMQX REST call Varde makes: disconnect a client (the gateway's client id is its gateway id)."""

    def __init__(self, base_url: str, key: str, secret: str, timeout: float = 10.0) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise BrokerAdminError(f"VARDE_EMQX_API_URL must be an http(s) URL, got {base_url!r}")
        self._base = base_url.rstrip("/")
        self._auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        self._timeout = timeout

    def kick(self, client_id: str) -> bool:
        """DELETE /api/v5/clients/{clientid}: True when a connection was closed, False when none was open (404)."""
        url = f"{self._base}/api/v5/clients/{urllib.parse.quote(client_id, safe='')}"
        request = urllib.request.Request(url, method="DELETE", headers={"Authorization": self._auth})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 (http(s), checked)
                return bool(response.status == 204)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise BrokerAdminError(f"EMQX refused to disconnect {client_id}: HTTP {exc.code}") from None
        except OSError as exc:
            raise BrokerAdminError(f"cannot reach the EMQX REST API at {self._base}: {exc}") from None


def ensure_db_role(conn: psycopg.Connection[Any], password: str) -> None:
    """Create or update the login role EMQX uses, with read access to the two views only (idempotent)."""
    mqtt_logins.ensure_reader_role(conn, DB_ROLE, password)
