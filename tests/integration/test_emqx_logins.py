"""The EMQX variant's logins and ACLs in the real PostgreSQL: the exact queries of deploy/emqx/emqx.hocon, bound the
way EMQX binds them, against the rows `varde broker init` and `varde gateway add/rotate/revoke` write.

EMQX itself cannot run here (no container engine, not packaged in Debian). What EMQX does with a query's rows is
re-implemented below from its documentation, in a few lines each: the salted SHA-256 password check and the
topic-filter match of an ACL rule. The password check is pinned to the example in EMQX's own documentation."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from store.settings import Settings
from vitals.topics import plan_topic, questionnaires_topic, readings_topic, receipts_topic, status_topic

pytestmark = pytest.mark.integration

HOCON = Path(__file__).resolve().parents[2] / "deploy" / "emqx" / "emqx.hocon"
_PLACEHOLDER = re.compile(r"\$\{([a-z_.]+)\}")
# The placeholders EMQX fills in an authentication or authorization query (its documentation lists more; we use two).
_KNOWN_PLACEHOLDERS = {"username", "clientid", "peerhost", "cert_common_name", "cert_subject"}


# --- what EMQX does, from its documentation -------------------------------------------------------------------------


def _config() -> dict[str, Any]:
    """The two queries and the hash algorithm, read from the hocon file without a HOCON parser (pyhocon is not a
    dependency): the authenticator is the only block before `authorization {`, the authorizer source after it."""
    text = HOCON.read_text()
    authn, _, authz = text.partition("\nauthorization {")
    assert authz, "emqx.hocon has no authorization block"
    queries = [re.findall(r'^\s*query = "(.*)"\s*$', part, re.MULTILINE) for part in (authn, authz)]
    assert [len(q) for q in queries] == [1, 1], queries
    algorithm = re.search(r"password_hash_algorithm \{\s*name = (\w+)\s*salt_position = (\w+)\s*\}", authn)
    assert algorithm is not None
    return {
        "authn_query": queries[0][0],
        "authz_query": queries[1][0],
        "hash": algorithm.group(1),
        "salt_position": algorithm.group(2),
    }


def _run(conn: psycopg.Connection[Any], template: str, values: dict[str, str]) -> list[tuple[Any, ...]]:
    """EMQX's PostgreSQL connector replaces each ${name} by the next positional parameter of a prepared statement
    and binds the client's value (a string) to it; psycopg's %s with prepare=True sends exactly that."""
    names = _PLACEHOLDER.findall(template)
    assert set(names) <= _KNOWN_PLACEHOLDERS, names
    assert "%" not in template
    return conn.execute(_PLACEHOLDER.sub("%s", template), [values[n] for n in names], prepare=True).fetchall()


def _password_ok(row: tuple[Any, ...], password: str, hash_name: str, salt_position: str) -> bool:
    """EMQX's password check for a `sha256` algorithm: hex digest of the password with the salt before or after."""
    password_hash, salt = str(row[0]), str(row[1] or "")
    assert hash_name == "sha256"
    salted = {"suffix": password + salt, "prefix": salt + password, "disable": password}[salt_position]
    return hashlib.sha256(salted.encode()).hexdigest() == password_hash


def _filter_matches(rule: str, topic: str) -> bool:
    """An ACL rule's topic filter against a PUBLISH topic or a SUBSCRIBE filter, as EMQX matches them: `+` and `#`
    in the rule are wildcards, in the request they are literal words; `eq ` means literal equality."""
    if rule.startswith("eq "):
        return rule[3:] == topic
    want, have = rule.split("/"), topic.split("/")
    for i, word in enumerate(want):
        if word == "#":
            return True
        if i >= len(have) or (word != "+" and word != have[i]):
            return False
    return len(want) == len(have)


def _allowed(rules: list[tuple[Any, ...]], action: str, topic: str) -> bool:
    """authorization.no_match = deny: allowed only when an allow row matches and no deny row does."""
    matching = [p for p, a, t in rules if a in (action, "all") and _filter_matches(str(t), topic)]
    return "allow" in matching and "deny" not in matching


def test_password_check_reproduces_emqx_documented_example() -> None:
    # EMQX's PostgreSQL authentication page: user123 / secret, salt "salt", sha256 with suffix salt.
    row = ("f84fa2149dbb62ed4e0cf1f550d2949b33a6513d3a7707e08502511c79ccb0ee", "salt")
    assert _password_ok(row, "secret", "sha256", "suffix")
    assert not _password_ok(row, "secret", "sha256", "prefix")
    assert not _password_ok(row, "Secret", "sha256", "suffix")


# --- fixtures ---------------------------------------------------------------------------------------------------------


class _KickRecorder(http.server.BaseHTTPRequestHandler):
    """Stands in for the EMQX REST API (not installable here) to check our side of the call: method, path, basic
    auth, and that the database change is committed when the kick arrives."""

    calls: ClassVar[list[dict[str, Any]]] = []
    database_url = ""

    def do_DELETE(self) -> None:
        client_id = self.path.removeprefix("/api/v5/clients/")
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM mqtt_auth WHERE username = %s", (client_id,)).fetchone()
            hashes = conn.execute("SELECT password_hash FROM mqtt_logins WHERE username = %s", (client_id,)).fetchall()
        self.calls.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "login_rows": row[0] if row else None,
                "hashes": [h for (h,) in hashes],
            }
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kick_api(settings: Settings) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _KickRecorder.calls = []
    _KickRecorder.database_url = settings.require_database_url()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KickRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _KickRecorder.calls
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def emqx_settings(settings: Settings, kick_api: tuple[str, list[dict[str, Any]]]) -> Settings:
    return settings.model_copy(
        update={
            "broker_kind": "emqx",
            "mqtt_ingest_username": "varde-ingest",
            "mqtt_ingest_password": secrets.token_urlsafe(24),
            "mqtt_api_username": "varde-api",
            "mqtt_api_password": secrets.token_urlsafe(24),
            "emqx_db_password": secrets.token_urlsafe(24),
            "emqx_api_url": kick_api[0],
            "emqx_api_key": "varde-admin",
            "emqx_api_secret": "s3cret-for-test",
        }
    )


def _new_gateway(settings: Settings) -> tuple[str, str]:
    from varde.admin import add_gateways, add_patient, add_team

    team = f"emqx-{secrets.token_hex(4)}"
    add_team(settings, team)
    (creds,) = add_gateways(settings, [add_patient(settings, f"Pasient {team}", team)])
    return creds.gateway_id, creds.password


def _login(db: psycopg.Connection[Any], username: str, password: str, clientid: str | None = None) -> bool:
    config = _config()
    rows = _run(db, config["authn_query"], {"username": username, "clientid": clientid or username})
    assert len(rows) <= 1
    if rows:
        assert rows[0][2] is False, "no Varde login is an EMQX superuser"
    return bool(rows) and _password_ok(rows[0], password, config["hash"], config["salt_position"])


def _rules(db: psycopg.Connection[Any], username: str, clientid: str | None = None) -> list[tuple[Any, ...]]:
    rules = _run(db, _config()["authz_query"], {"username": username, "clientid": clientid or username})
    assert all("${" not in str(t) for _, _, t in rules)
    return rules


# --- logins -----------------------------------------------------------------------------------------------------------


def test_gateway_login_verifies_with_its_own_password_only(
    emqx_settings: Settings, db: psycopg.Connection[Any]
) -> None:
    gateway_id, password = _new_gateway(emqx_settings)
    other_id, other_password = _new_gateway(emqx_settings)

    assert _login(db, gateway_id, password)
    assert not _login(db, gateway_id, password + "x")
    assert not _login(db, gateway_id, other_password)
    assert not _login(db, other_id, password)
    assert not _login(db, f"gw-{secrets.token_hex(6)}", password), "unknown username"
    # the client id must be the gateway id, so the REST API can find the session to disconnect and no gateway can
    # take over a service's or another gateway's session
    for foreign in (f"{gateway_id}-2", other_id, "varde-ingest-vm", "varde-api-1", "varde-ingest"):
        assert not _login(db, gateway_id, password, clientid=foreign), foreign
    salts = db.execute("SELECT salt FROM mqtt_logins WHERE username = ANY(%s)", ([gateway_id, other_id],)).fetchall()
    assert len({s for (s,) in salts}) == 2, "every login has its own salt"


def test_revoked_gateway_has_no_login_and_no_acl_and_is_kicked_after_commit(
    emqx_settings: Settings, db: psycopg.Connection[Any], kick_api: tuple[str, list[dict[str, Any]]]
) -> None:
    from varde.admin import revoke_gateway

    gateway_id, password = _new_gateway(emqx_settings)
    assert _rules(db, gateway_id)
    revoke_gateway(emqx_settings, gateway_id)

    assert not _login(db, gateway_id, password)
    assert _run(db, _config()["authn_query"], {"username": gateway_id, "clientid": gateway_id}) == []
    assert _rules(db, gateway_id) == []
    _, calls = kick_api
    expected_auth = "Basic " + base64.b64encode(b"varde-admin:s3cret-for-test").decode()
    assert calls == [
        {"path": f"/api/v5/clients/{gateway_id}", "auth": expected_auth, "login_rows": 0, "hashes": calls[0]["hashes"]}
    ], "one DELETE, sent when the revocation was already visible to other connections"


def test_gateway_disabled_in_its_own_table_loses_its_broker_login(
    emqx_settings: Settings, db: psycopg.Connection[Any]
) -> None:
    gateway_id, password = _new_gateway(emqx_settings)
    db.execute("UPDATE gateways SET enabled = false WHERE id = %s", (gateway_id,))
    assert not _login(db, gateway_id, password)
    assert _rules(db, gateway_id) == []


def test_rotated_gateway_logs_in_with_the_new_password_only_and_is_kicked(
    emqx_settings: Settings, db: psycopg.Connection[Any], kick_api: tuple[str, list[dict[str, Any]]]
) -> None:
    from varde.admin import rotate_gateway

    gateway_id, old_password = _new_gateway(emqx_settings)
    creds = rotate_gateway(emqx_settings, gateway_id)

    assert _login(db, gateway_id, creds.password)
    assert not _login(db, gateway_id, old_password)
    (call,) = kick_api[1]
    assert call["path"] == f"/api/v5/clients/{gateway_id}"
    (new_hash,) = db.execute("SELECT password_hash FROM mqtt_logins WHERE username = %s", (gateway_id,)).fetchone()
    assert call["hashes"] == [new_hash], "the kick came after the new password was committed"


def test_revoke_without_rest_api_commits_and_says_the_connection_is_still_open(
    emqx_settings: Settings, db: psycopg.Connection[Any]
) -> None:
    from varde.admin import revoke_gateway
    from varde.broker import BrokerAdminError

    gateway_id, password = _new_gateway(emqx_settings)
    without_api = emqx_settings.model_copy(update={"emqx_api_url": None})
    with pytest.raises(BrokerAdminError, match="VARDE_EMQX_API_URL"):
        revoke_gateway(without_api, gateway_id)
    assert not _login(db, gateway_id, password)


def test_rotate_without_rest_api_still_hands_over_the_new_password(
    emqx_settings: Settings, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    from varde.admin import rotate_gateway

    gateway_id, old_password = _new_gateway(emqx_settings)
    creds = rotate_gateway(emqx_settings.model_copy(update={"emqx_api_url": None}), gateway_id)
    assert _login(db, gateway_id, creds.password) and not _login(db, gateway_id, old_password)
    assert any("emqx_kick_failed" in r.getMessage() and gateway_id in r.getMessage() for r in caplog.records)


# --- ACLs -------------------------------------------------------------------------------------------------------------


def test_gateway_acl_allows_only_its_own_topics(emqx_settings: Settings, db: psycopg.Connection[Any]) -> None:
    gateway_id, _ = _new_gateway(emqx_settings)
    other_id, _ = _new_gateway(emqx_settings)
    rules = _rules(db, gateway_id)

    for topic in (readings_topic(gateway_id), status_topic(gateway_id), questionnaires_topic(gateway_id)):
        assert _allowed(rules, "publish", topic), topic
    for topic in (plan_topic(gateway_id), receipts_topic(gateway_id)):
        assert _allowed(rules, "subscribe", topic), topic

    denied = [
        ("publish", readings_topic(other_id)),
        ("publish", status_topic(other_id)),
        ("publish", questionnaires_topic(other_id)),
        ("publish", plan_topic(gateway_id)),
        ("publish", receipts_topic(gateway_id)),
        ("publish", readings_topic(gateway_id) + "/x"),
        ("subscribe", plan_topic(other_id)),
        ("subscribe", receipts_topic(other_id)),
        ("subscribe", readings_topic(gateway_id)),
        ("subscribe", "varde/v1/gw/+/plan"),
        ("subscribe", "varde/v1/gw/#"),
        ("subscribe", "#"),
        ("subscribe", "$share/ingest/varde/v1/gw/+/readings"),
        ("subscribe", "$SYS/#"),
    ]
    for action, topic in denied:
        assert not _allowed(rules, action, topic), (action, topic)
    assert all(other_id not in str(t) for _, _, t in rules)


def test_service_logins_get_least_privilege_and_ingest_the_shared_subscriptions(
    emqx_settings: Settings, db: psycopg.Connection[Any]
) -> None:
    from varde.admin import init_broker

    instances = {"ingest": ["1", "2"], "api": ["1"]}
    assert init_broker(emqx_settings, instances) == ["varde-ingest-1", "varde-ingest-2", "varde-api-1"]
    ingest_password = str(emqx_settings.mqtt_ingest_password)
    api_password = str(emqx_settings.mqtt_api_password)
    # each instance has its own login, which connects only with a client id equal to its username
    assert _login(db, "varde-ingest-2", ingest_password, clientid="varde-ingest-2")
    assert not _login(db, "varde-ingest-2", api_password, clientid="varde-ingest-2")
    assert _login(db, "varde-api-1", api_password, clientid="varde-api-1")
    gateway_id, _ = _new_gateway(emqx_settings)
    for foreign in ("varde-ingest-1", "varde-ingest-2-x", "varde-api-1", gateway_id, "varde-ingest", "ingest-2"):
        assert not _login(db, "varde-ingest-2", ingest_password, clientid=foreign), foreign
    for foreign in ("varde-ingest-1", "varde-api-2", gateway_id):
        assert not _login(db, "varde-api-1", api_password, clientid=foreign), foreign
    # the shared logins of earlier versions are gone
    for shared, password in (("varde-ingest", ingest_password), ("varde-api", api_password)):
        assert not _login(db, shared, password, clientid=f"{shared}-1"), shared

    ingest = _rules(db, "varde-ingest-2")
    for channel in ("readings", "questionnaires", "status"):
        assert _allowed(ingest, "subscribe", f"$share/ingest/varde/v1/gw/+/{channel}"), channel
    assert not _allowed(ingest, "subscribe", "$share/ingest/varde/v1/gw/+/plan")
    assert not _allowed(ingest, "subscribe", "#")
    for topic in (readings_topic("gw-abc123"), plan_topic("gw-abc123"), "varde/v1/gw/+/readings"):
        assert not _allowed(ingest, "publish", topic), topic

    api = _rules(db, "varde-api-1")
    assert _allowed(api, "publish", plan_topic("gw-abc123"))
    assert _allowed(api, "publish", receipts_topic("gw-abc123"))
    assert _allowed(api, "subscribe", "varde/v1/gw/+/status")
    assert not _allowed(api, "publish", readings_topic("gw-abc123"))
    assert not _allowed(api, "subscribe", "$share/ingest/varde/v1/gw/+/readings")

    # idempotent, and a changed password replaces the old one
    emqx_settings = emqx_settings.model_copy(update={"mqtt_ingest_password": "changed-" + ingest_password})
    init_broker(emqx_settings, instances)
    assert not _login(db, "varde-ingest-1", ingest_password)
    assert _login(db, "varde-ingest-1", "changed-" + ingest_password)


def test_emqx_database_role_reads_the_two_views_and_nothing_else(
    emqx_settings: Settings, db: psycopg.Connection[Any]
) -> None:
    from varde.admin import init_broker

    init_broker(emqx_settings, {"ingest": ["1"], "api": ["1"]})
    gateway_id, password = _new_gateway(emqx_settings)
    url = urlsplit(emqx_settings.require_database_url())
    netloc = f"varde_emqx:{emqx_settings.emqx_db_password}@{url.hostname}:{url.port}"
    with psycopg.connect(urlunsplit(url._replace(netloc=netloc)), autocommit=True) as emqx_conn:
        assert _login(emqx_conn, gateway_id, password)
        assert _rules(emqx_conn, gateway_id)
        for table in ("gateways", "mqtt_logins", "mqtt_acl", "patients", "readings"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                emqx_conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
