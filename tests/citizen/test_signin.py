"""National sign-in against a real OpenID provider (oidc-provider on loopback): authorization code + PKCE, state
and nonce, the ID token verified against the provider's JWKS; `pid` maps to the patient, the HPR number to a user."""

from __future__ import annotations

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from clinician_api.citizen.oidc import Issuer, OidcError, verify_id_token
from tests.citizen.stack import PATIENT_CLIENT, OidcStack
from tests.citizen.support import Home, People, national_sign_in, provider_callback

pytestmark = pytest.mark.integration


def test_patient_signs_in_through_the_provider_and_sees_only_themself(
    oidc: OidcStack, people: People, home: Home
) -> None:
    client = national_sign_in(oidc.api_url, people.patient_nid)
    me = client.get("/api/v1/min/me").json()
    assert [p["patient_id"] for p in me["patients"]] == [str(home.patient_id)]
    assert me["patients"][0]["own"] is True


def test_authorization_request_uses_pkce_s256_state_and_nonce(oidc: OidcStack) -> None:
    response = httpx.get(f"{oidc.api_url}/auth/oidc/patient/start", follow_redirects=False, timeout=30)
    assert response.status_code == 303
    location = httpx.URL(response.headers["location"])
    params = dict(location.params)
    assert str(location).startswith(oidc.issuer)
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    assert params["response_type"] == "code" and "pid" in params["scope"].split()


def test_a_replayed_or_forged_callback_gets_no_session(oidc: OidcStack, people: People, home: Home) -> None:
    client = httpx.Client(base_url=oidc.api_url, timeout=30.0)
    callback = provider_callback(client, people.patient_nid)
    first = client.get(callback, follow_redirects=False)
    assert first.headers["location"] == "/min/" and "varde_min" in first.cookies

    replay = httpx.get(callback, follow_redirects=False, timeout=30)
    assert replay.headers["location"] == "/min/login?reason=failed" and "varde_min" not in replay.cookies

    forged = httpx.get(
        f"{oidc.api_url}/auth/oidc/patient/callback", params={"state": "x" * 43, "code": "abc"}, timeout=30
    )
    assert forged.status_code == 303 and "reason=failed" in forged.headers["location"]
    assert "varde_min" not in forged.cookies


def test_a_code_from_another_sign_in_is_refused_without_its_verifier(
    oidc: OidcStack, people: People, home: Home
) -> None:
    """PKCE: a code stolen from one sign-in, presented with another sign-in's state, fails at the provider."""
    victim = httpx.Client(base_url=oidc.api_url, timeout=30.0)
    stolen = provider_callback(victim, people.patient_nid)
    attacker = httpx.Client(base_url=oidc.api_url, timeout=30.0)
    own = httpx.URL(attacker.get("/auth/oidc/patient/start", follow_redirects=False).headers["location"])
    spliced = stolen.copy_set_param("state", own.params["state"])
    answer = attacker.get(spliced, follow_redirects=False)
    assert answer.headers["location"] == "/min/login?reason=failed"


def test_a_person_unknown_to_varde_gets_no_session(oidc: OidcStack, people: People, home: Home) -> None:
    client = httpx.Client(base_url=oidc.api_url, timeout=30.0)
    answer = client.get(provider_callback(client, people.stranger_nid), follow_redirects=False)
    assert answer.headers["location"] == "/min/login?reason=unknown"
    assert client.get("/api/v1/min/me").status_code == 401


def test_id_token_signed_by_another_key_or_with_another_nonce_does_not_verify(oidc: OidcStack) -> None:
    meta = httpx.get(f"{oidc.issuer}/.well-known/openid-configuration", timeout=30).json()
    issuer = Issuer("patient", oidc.issuer, PATIENT_CLIENT, None, "openid pid", "pid")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": oidc.issuer, "aud": PATIENT_CLIENT, "sub": "x", "nonce": "n", "iat": 1, "exp": 4102444800}
    forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "not-the-providers"})
    with pytest.raises(OidcError, match="did not verify"):
        verify_id_token(issuer, meta["jwks_uri"], forged, "n")
    unsigned = jwt.encode(claims, "", algorithm="none")
    with pytest.raises(OidcError, match="signed with 'none'"):
        verify_id_token(issuer, meta["jwks_uri"], unsigned, "n")


def test_staff_sign_in_maps_the_hpr_number_to_the_user_and_hands_over_a_token(
    oidc: OidcStack, people: People, home: Home
) -> None:
    client = httpx.Client(base_url=oidc.api_url, timeout=30.0)
    callback = provider_callback(client, f"hpr-{people.nurse_hpr}", audience="staff")
    landed = client.get(callback, follow_redirects=False).headers["location"]
    assert landed.startswith("/dashboard/oidc?next=") and "#code=" in landed
    code = landed.split("#code=", 1)[1]
    token = client.post("/api/v1/auth/oidc/handoff", json={"code": code})
    assert token.status_code == 200
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).json()
    assert me["username"] == home.tenant.nurse
    # A dashboard session like a password sign-in's: the refresh cookie renews it past the short access token.
    assert token.json()["idle_timeout"] and "varde_refresh" in token.headers.get("set-cookie", "")
    renewed = client.post("/api/v1/auth/refresh", headers={"X-Varde-Session": "1"})
    assert renewed.status_code == 200 and renewed.json()["access_token"] != token.json()["access_token"]
    assert client.post("/api/v1/auth/oidc/handoff", json={"code": code}).status_code == 401  # once only
