"""Sign-in: the built-in issuer with its rate limit, `/me`, and tokens of an external OpenID Connect issuer whose
JWKS is served by a small HTTP server inside the test (keys generated here)."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from clinician_api.app import create_app
from store.settings import Settings
from tests.stack_plugin import Tenant, login

pytestmark = pytest.mark.integration


def test_token_is_issued_for_the_right_password_only(make_tenant: Any, api: httpx.Client) -> None:
    tenant: Tenant = make_tenant()
    ok = api.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": tenant.nurse_password})
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer" and ok.json()["expires_in"] == 1800
    wrong = api.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": "not-the-password"})
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["title"] == "Unauthorized"
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}).json()
    assert me["username"] == tenant.nurse and me["role"] == "nurse"
    assert me["teams"] == [{"id": str(tenant.team_id), "name": tenant.team}]
    assert api.get("/api/v1/me").status_code == 401
    assert api.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_token_endpoint_is_rate_limited_per_address_and_username(make_tenant: Any, api: httpx.Client) -> None:
    tenant: Tenant = make_tenant()
    for _ in range(10):
        answer = api.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": "guess-guess"})
        assert answer.status_code == 401
    limited = api.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": tenant.nurse_password})
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    other: Tenant = make_tenant()
    assert login(str(api.base_url), other.nurse, other.nurse_password)["Authorization"].startswith("Bearer ")


def test_responses_carry_security_headers(api: httpx.Client) -> None:
    response = api.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]


# --- OpenID Connect ---------------------------------------------------------------------------------------------


class _Jwks:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.document = {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        self.requests = 0

    def pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@pytest.fixture
def jwks() -> Iterator[tuple[_Jwks, str]]:
    keys = _Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.requests += 1
            body = json.dumps(keys.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield keys, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def oidc(jwks: tuple[_Jwks, str], settings: Settings) -> Iterator[tuple[TestClient, Callable[..., str], str]]:
    keys, base = jwks
    issuer = f"{base}/realms/varde"
    configured = settings.model_copy(
        update={"oidc_issuer": issuer, "oidc_jwks_url": f"{base}/jwks", "oidc_audience": "varde-api"}
    )

    def token(**claims: Any) -> str:
        now = int(time.time())
        body = {"iss": issuer, "aud": "varde-api", "iat": now, "exp": now + 300, "sub": "kc-user-1", **claims}
        return jwt.encode(body, keys.pem(), algorithm="RS256", headers={"kid": keys.kid})

    with TestClient(create_app(configured)) as client:
        yield client, token, issuer


def test_oidc_token_maps_to_a_user_with_role_and_care_teams(
    oidc: tuple[TestClient, Callable[..., str], str], make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    client, token, _ = oidc
    tenant: Tenant = make_tenant()
    subject = f"kc-{secrets.token_hex(6)}"
    name = f"Kari {secrets.token_hex(2)}"
    first = token(
        sub=subject,
        preferred_username=f"kari-{secrets.token_hex(3)}",
        name=name,
        roles=["nurse"],
        groups=[f"/{tenant.team}", "no-such-team"],
    )
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"})
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "nurse" and me.json()["display_name"] == name
    assert [t["name"] for t in me.json()["teams"]] == [tenant.team]
    row = db.execute("SELECT role, password_hash FROM users WHERE external_subject = %s", (subject,)).fetchone()
    assert row == ("nurse", None)
    patient_url = f"/api/v1/patients/{tenant.patients[0]}"
    assert client.get(patient_url, headers={"Authorization": f"Bearer {first}"}).status_code == 200

    moved = token(sub=subject, roles=["nurse", "physician"], groups=[])
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {moved}"}).json()
    assert me["role"] == "physician" and me["teams"] == []
    assert client.get(patient_url, headers={"Authorization": f"Bearer {moved}"}).status_code == 404
    users = db.execute("SELECT count(*) FROM users WHERE external_subject = %s", (subject,)).fetchone()
    assert users == (1,)


def test_oidc_tokens_that_must_be_refused(oidc: tuple[TestClient, Callable[..., str], str], settings: Settings) -> None:
    client, token, issuer = oidc
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "wrong audience": token(aud="someone-else", roles=["nurse"]),
        "expired": token(iat=now - 3600, exp=now - 600, roles=["nurse"]),
        "no Varde role": token(roles=["viewer"]),
        "NUL in the name": token(roles=["nurse"], sub=f"kc-{secrets.token_hex(4)}", name="Kari\x00"),
        "control character in a group": token(roles=["nurse"], sub=f"kc-{secrets.token_hex(4)}", groups=["/a\x1b"]),
        "unknown key": jwt.encode(
            {"iss": issuer, "aud": "varde-api", "iat": now, "exp": now + 300, "sub": "x", "roles": ["admin"]},
            other_key,
            algorithm="RS256",
            headers={"kid": "not-published"},
        ),
        "HS256 with the issuer's name": jwt.encode(
            {"iss": issuer, "aud": "varde-api", "iat": now, "exp": now + 300, "sub": "x", "roles": ["admin"]},
            settings.jwt_secret or "x",
            algorithm="HS256",
        ),
    }
    for why, bad in refused.items():
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {bad}"})
        assert answer.status_code == 401, why
        assert answer.headers["www-authenticate"] == "Bearer"


def test_built_in_tokens_keep_working_beside_oidc(
    oidc: tuple[TestClient, Callable[..., str], str], make_tenant: Any
) -> None:
    client, _, _ = oidc
    tenant: Tenant = make_tenant()
    issued = client.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": tenant.nurse_password})
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.json()['access_token']}"})
    assert me.json()["username"] == tenant.nurse


# --- disabling a login ------------------------------------------------------------------------------------------


def _varde_user(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run(
        [sys.executable, "-m", "varde", "user", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_disabled_user_cannot_sign_in_and_their_token_is_refused_at_once(
    make_tenant: Any, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant()
    headers = login(str(api.base_url), tenant.nurse, tenant.nurse_password)
    assert api.get("/api/v1/me", headers=headers).status_code == 200
    patient = f"/api/v1/patients/{tenant.patients[0]}"
    assert api.get(patient, headers=headers).status_code == 200

    disabled = _varde_user("disable", tenant.nurse, "--json")
    assert disabled.returncode == 0, disabled.stderr
    doc = json.loads(disabled.stdout)
    assert doc["username"] == tenant.nurse and doc["enabled"] is False and doc["changed"] is True
    assert api.get("/api/v1/me", headers=headers).status_code == 401
    assert api.get(patient, headers=headers).status_code == 401
    refused = api.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": tenant.nurse_password})
    assert refused.status_code == 401
    again = _varde_user("disable", tenant.nurse, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False

    enabled = _varde_user("enable", tenant.nurse)
    assert enabled.returncode == 0 and enabled.stdout.strip() == f"user {tenant.nurse}: enabled"
    fresh = login(str(api.base_url), tenant.nurse, tenant.nurse_password)
    assert api.get("/api/v1/me", headers=fresh).status_code == 200

    rows = db.execute(
        "SELECT action, outcome, username FROM audit_log WHERE resource = %s ORDER BY id", (f"users/{doc['user_id']}",)
    ).fetchall()
    expected = [("user_disable", "ok"), ("user_disable", "unchanged"), ("user_enable", "ok")]
    assert [(r[0], r[1]) for r in rows] == expected
    assert all(str(r[2]).startswith("cli:") for r in rows)


def test_disabling_an_unknown_user_says_so() -> None:
    answer = _varde_user("disable", "nobody-by-this-name")
    assert answer.returncode == 1 and "no user named 'nobody-by-this-name'" in answer.stderr
