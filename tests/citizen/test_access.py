"""What a patient and a relative may do in the patient app, checked through the API process of the OIDC stack:
own data only, the same 404 for another patient and none, a proxy's rights and end, revocation at the next
request, every action audited under the actor's own identity, messages reaching the nurse queue, the access log."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from clinician_api.citizen.sessions import COOKIE
from store.settings import Settings
from tests.citizen.stack import OidcStack
from tests.citizen.support import MIN, Home, People, grant_proxy, national_sign_in
from tests.integration.api.support import insert_alarm
from tests.stack_plugin import login, wait_for
from vitals import Receipt, receipts_topic

pytestmark = pytest.mark.integration


def test_patient_sees_own_measurements_with_zone_and_advice_and_nobody_elses(
    oidc: OidcStack, people: People, home: Home
) -> None:
    client = national_sign_in(oidc.api_url, people.patient_nid)
    data = client.get(f"/api/v1/min/patients/{home.patient_id}/measurements").json()
    (weight,) = data["kinds"]
    assert weight["latest"]["value"] == 83.1 and weight["latest"]["zone"] == "yellow"
    assert weight["latest"]["advice"] == "Ta en ekstra vanndrivende tablett i dag."
    assert weight["zones"]["yellow_high"] == 82.0 and len(weight["points"]) == 11

    foreign = client.get(f"/api/v1/min/patients/{home.other_patient_id}/measurements")
    missing = client.get(f"/api/v1/min/patients/{uuid.uuid4()}/measurements")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]
    for path in ("plan", "threads", "access-log", "sharing", "alarms"):
        assert client.get(f"/api/v1/min/patients/{home.other_patient_id}/{path}").status_code == 404


def test_a_write_without_the_apps_header_or_from_another_origin_is_refused(
    oidc: OidcStack, people: People, home: Home
) -> None:
    client = national_sign_in(oidc.api_url, people.patient_nid)
    path = f"/api/v1/min/patients/{home.patient_id}/threads"
    body = {"subject": "Hei", "body": "Test"}
    assert client.post(path, json=body).status_code == 403
    assert client.post(path, json=body, headers={**MIN, "Origin": "https://evil.example"}).status_code == 403
    assert client.post(path, json=body, headers=MIN).status_code == 201


def test_relative_with_read_only_proxy_reads_but_cannot_write_and_is_refused_after_revocation(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    proxy = grant_proxy(patient, home.patient_id, people.relative_nid, ["read_measurements", "read_plan"])
    relative = national_sign_in(oidc.api_url, people.relative_nid)
    me = relative.get("/api/v1/min/me").json()
    (acting,) = [p for p in me["patients"] if p["patient_id"] == str(home.patient_id)]
    assert acting["own"] is False and acting["rights"] == ["read_measurements", "read_plan"]

    base = f"/api/v1/min/patients/{home.patient_id}"
    assert relative.get(f"{base}/measurements").status_code == 200
    assert relative.get(f"{base}/plan").json()["plan"]["version"] == 1
    assert relative.get(f"{base}/threads").status_code == 403
    assert relative.post(f"{base}/threads", headers=MIN, json={"subject": "x", "body": "y"}).status_code == 403
    assert relative.get(f"{base}/access-log").status_code == 403
    assert relative.get(f"{base}/sharing").status_code == 403
    assert relative.put(f"{base}/reservations/research", headers=MIN, json={"reserved": True}).status_code == 403
    assert relative.post(f"{base}/proxies/{proxy['id']}/revoke", headers=MIN).status_code == 403
    assert relative.get(f"/api/v1/min/patients/{home.other_patient_id}/measurements").status_code == 404

    # Audited under the relative's own identity, for the patient, through the proxy.
    rows = db.execute(
        "SELECT a.role, a.outcome, a.proxy_id, c.national_id FROM audit_log a JOIN citizens c ON c.id = a.user_id "
        "WHERE a.patient_id = %s AND a.role = 'relative' ORDER BY a.id",
        (home.patient_id,),
    ).fetchall()
    assert {(r[1], str(r[2]), r[3]) for r in rows} >= {
        ("ok", proxy["id"], people.relative_nid),
        ("denied", proxy["id"], people.relative_nid),
    }

    assert patient.post(f"{base}/proxies/{proxy['id']}/revoke", headers=MIN).json()["active"] is False
    assert relative.get(f"{base}/measurements").status_code == 404
    assert all(p["patient_id"] != str(home.patient_id) for p in relative.get("/api/v1/min/me").json()["patients"])


def test_an_ended_proxy_gives_nothing(oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]) -> None:
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    proxy = grant_proxy(patient, home.patient_id, people.relative_nid, ["read_measurements"])
    relative = national_sign_in(oidc.api_url, people.relative_nid)
    base = f"/api/v1/min/patients/{home.patient_id}"
    assert relative.get(f"{base}/measurements").status_code == 200
    db.execute(
        "UPDATE proxies SET valid_from = now() - interval '2 days', valid_until = now() - interval '1 second' "
        "WHERE id = %s",
        (proxy["id"],),
    )
    assert relative.get(f"{base}/measurements").status_code == 404


def test_nurse_grants_a_proxy_on_the_patients_documented_wish_sees_who_holds_which_and_revokes_it(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    body = {
        "relative_national_id": people.relative_nid,
        "relative_name": "Ola Pårørende",
        "relation": "sønn",
        "rights": ["write_messages"],
        "valid_until": until,
    }
    url = f"{oidc.api_url}/api/v1/patients/{home.patient_id}/proxies"
    assert httpx.post(url, json=body, headers=home.nurse_headers, timeout=30).status_code == 422  # no basis
    granted = httpx.post(
        url,
        json={**body, "basis": "Pasienten ba om det på telefon 12.03, notat i journal"},
        headers=home.nurse_headers,
        timeout=30,
    )
    assert granted.status_code == 201, granted.text
    contact = httpx.get(
        f"{oidc.api_url}/api/v1/patients/{home.patient_id}/contact", headers=home.nurse_headers, timeout=30
    ).json()
    (shown,) = [p for p in contact["proxies"] if p["id"] == granted.json()["id"]]
    assert shown["relative_name"] == "Ola Pårørende" and shown["rights"] == ["write_messages"] and shown["active"]
    assert shown["granted_by"] == "Kari Sykepleier" and shown["granted_by_role"] == "nurse"
    foreign = httpx.get(
        f"{oidc.api_url}/api/v1/patients/{uuid.uuid4()}/contact", headers=home.nurse_headers, timeout=30
    )
    assert foreign.status_code == 404

    # The nurse revokes it (the patient asked on the phone): the relative's next request is refused.
    relative = national_sign_in(oidc.api_url, people.relative_nid)
    threads = f"/api/v1/min/patients/{home.patient_id}/threads"
    assert relative.get(threads).status_code == 200
    proxy_id = granted.json()["id"]
    elsewhere = httpx.post(
        f"{oidc.api_url}/api/v1/patients/{home.other_patient_id}/proxies/{proxy_id}/revoke",
        headers=home.nurse_headers,
        timeout=30,
    )
    assert elsewhere.status_code == 404  # a proxy is revoked only through its own patient
    assert relative.get(threads).status_code == 200
    revoked = httpx.post(f"{url}/{proxy_id}/revoke", headers=home.nurse_headers, timeout=30)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert relative.get(threads).status_code == 404
    audited = db.execute(
        "SELECT a.action, a.outcome, a.role, u.username FROM audit_log a JOIN users u ON u.id = a.user_id "
        "WHERE a.patient_id = %s AND a.resource LIKE %s",
        (home.patient_id, f"%/proxies/{proxy_id}/revoke"),
    ).fetchall()
    assert audited == [("revoke_proxy", "ok", "nurse", home.tenant.nurse)]


def test_a_patient_message_waits_in_the_nurse_queue_until_answered_and_the_answer_is_signed(
    oidc: OidcStack, people: People, home: Home
) -> None:
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    base = f"/api/v1/min/patients/{home.patient_id}"
    thread = patient.post(f"{base}/threads", headers=MIN, json={"subject": "Vekten", "body": "Er 83 kg farlig?"}).json()
    waiting = httpx.get(f"{oidc.api_url}/api/v1/messages/awaiting", headers=home.nurse_headers, timeout=30).json()
    (item,) = [i for i in waiting["items"] if i["thread_id"] == thread["id"]]
    assert item["patient_id"] == str(home.patient_id) and item["waiting_messages"] == 1 and item["waiting_since"]

    templates = httpx.get(f"{oidc.api_url}/api/v1/reply-templates", headers=home.nurse_headers, timeout=30).json()
    answer = templates["items"][0]["body"]
    gateway = home.tenant.gateways[0]
    heard: list[bytes] = []
    subscribed = threading.Event()
    listener = gateway.client()
    listener.on_message = lambda c, u, m: heard.append(m.payload)
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.on_connect = lambda c, u, f, rc, p: c.subscribe(receipts_topic(gateway.gateway_id), qos=1)
    listener.connect(gateway.host, gateway.port)
    listener.loop_start()
    try:
        assert subscribed.wait(10), "subscription not acknowledged"
        replied = httpx.post(
            f"{oidc.api_url}/api/v1/patients/{home.patient_id}/threads/{thread['id']}/messages",
            json={"body": answer},
            headers=home.nurse_headers,
            timeout=30,
        )
        assert replied.status_code == 201
        assert replied.json()["gateway_notified"][gateway.gateway_id] is True
        wait_for(lambda: heard, what="the gateway told that the team answered")
    finally:
        listener.disconnect()
        listener.loop_stop()
    notice = Receipt.model_validate_json(heard[0])
    assert notice.event == "message_answered" and "Min oppfølging" in notice.nb
    assert "Vekten" not in heard[0].decode() and answer not in heard[0].decode()
    assert str(home.patient_id) not in heard[0].decode()
    after = httpx.get(f"{oidc.api_url}/api/v1/messages/awaiting", headers=home.nurse_headers, timeout=30).json()
    assert all(i["thread_id"] != thread["id"] for i in after["items"])

    threads = patient.get(f"{base}/threads").json()["items"]
    assert threads[0]["unread"] == 1
    seen = patient.get(f"{base}/threads/{thread['id']}").json()
    last = seen["messages"][-1]
    assert (last["author_name"], last["author_role"], last["body"], last["from_team"]) == (
        "Kari Sykepleier",
        "nurse",
        answer,
        True,
    )
    assert patient.get(f"{base}/threads").json()["items"][0]["unread"] == 0
    other = patient.get(f"/api/v1/min/patients/{home.patient_id}/threads/{uuid.uuid4()}")
    assert other.status_code == 404


def test_the_access_log_shows_the_nurses_read_of_the_record_in_plain_terms(
    oidc: OidcStack, people: People, home: Home
) -> None:
    assert (
        httpx.get(
            f"{oidc.api_url}/api/v1/patients/{home.patient_id}", headers=home.nurse_headers, timeout=30
        ).status_code
        == 200
    )
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    log = patient.get(f"/api/v1/min/patients/{home.patient_id}/access-log").json()["items"]
    read = next(e for e in log if e["what"] == "record")
    assert (read["who"], read["role"], read["action"], read["why"], read["outcome"]) == (
        "Kari Sykepleier",
        "nurse",
        "read",
        "care_team",
        "ok",
    )
    assert read["team"] == home.tenant.team
    assert all(e["role"] != "patient" for e in log)  # the patient's own reads are not listed


def test_the_patient_sees_what_became_of_each_alarm_but_not_the_nurses_notes(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    opened = insert_alarm(db, home.patient_id, kind="body_weight", value=83.1, opened_minutes_ago=30)
    seen = insert_alarm(db, home.patient_id, kind="body_weight", value=83.4, opened_minutes_ago=20)
    closed = insert_alarm(db, home.patient_id, kind="body_weight", value=84.0, opened_minutes_ago=10)
    nurse = httpx.Client(base_url=oidc.api_url, headers=home.nurse_headers, timeout=30)
    assert nurse.post(f"/api/v1/alarms/{seen}/acknowledge").status_code == 200
    note = "Ringte pasienten, økte furosemid etter avtale med lege"
    assert nurse.post(f"/api/v1/alarms/{closed}/resolve", json={"resolution": note}).status_code == 200

    patient = national_sign_in(oidc.api_url, people.patient_nid)
    answer = patient.get(f"/api/v1/min/patients/{home.patient_id}/alarms", params={"lang": "en"})
    assert answer.status_code == 200
    by_id = {a["id"]: a for a in answer.json()["items"]}
    assert list(by_id) == [str(closed), str(seen), str(opened)]  # newest first
    assert (by_id[str(opened)]["state"], by_id[str(opened)]["seen_by"]) == ("open", None)
    assert by_id[str(opened)]["kind_name"] == "Body weight" and by_id[str(opened)]["value"] == 83.1
    shown = by_id[str(seen)]
    assert (shown["state"], shown["seen_by"], shown["seen_by_role"]) == ("acknowledged", "Kari Sykepleier", "nurse")
    assert shown["seen_at"] is not None and shown["closed_at"] is None
    done = by_id[str(closed)]
    assert (done["state"], done["closed_by"], done["closed_by_role"]) == ("resolved", "Kari Sykepleier", "nurse")
    assert note not in answer.text  # what the nurse wrote stays in the dashboard


def test_break_the_glass_shows_in_the_access_log_with_its_reason(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any], settings: Settings
) -> None:
    from varde.admin import add_team, add_user

    outsider, password = f"legevakt-{uuid.uuid4().hex[:8]}", "Legevakt-passord-1"
    add_team(settings, f"legevakt-{outsider}")
    add_user(settings, outsider, "physician", [f"legevakt-{outsider}"], password, display_name="Per Legevakt")
    headers = login(oidc.api_url, outsider, password)
    record = f"{oidc.api_url}/api/v1/patients/{home.patient_id}"
    assert httpx.get(record, headers=headers, timeout=30).status_code == 404
    reason = "Innlagt akutt på legevakten, trenger vektkurven"
    granted = httpx.post(f"{record}/emergency-access", json={"reason": reason}, headers=headers, timeout=30)
    assert granted.status_code == 201, granted.text
    assert httpx.get(record, headers=headers, timeout=30).status_code == 200

    patient = national_sign_in(oidc.api_url, people.patient_nid)
    log = patient.get(f"/api/v1/min/patients/{home.patient_id}/access-log").json()["items"]
    mine = [
        (e["what"], e["action"], e["outcome"], e["why"], e["reason"], e["team"])
        for e in log
        if e["who"] == "Per Legevakt"
    ]
    assert mine == [  # newest first; the team is left out under emergency access, as it is not the patient's
        ("record", "read", "ok", "emergency", reason, None),
        ("emergency", "emergency_access", "ok", "emergency", reason, None),
        ("record", "read", "denied", "no_access", None, None),  # the attempt before breaking the glass
    ]
    assert {e["role"] for e in log if e["who"] == "Per Legevakt"} == {"physician"}
    # The care team's own reads say why without a reason.
    assert all(e["reason"] is None and e["why"] == "care_team" for e in log if e["who"] == "Kari Sykepleier")


def test_a_relative_with_the_rights_reads_the_access_log_and_writes_to_the_care_team_on_behalf_of_the_patient(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    assert httpx.get(
        f"{oidc.api_url}/api/v1/patients/{home.patient_id}", headers=home.nurse_headers, timeout=30
    ).is_success
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    proxy = grant_proxy(patient, home.patient_id, people.relative_nid, ["read_access_log", "write_messages"])
    relative = national_sign_in(oidc.api_url, people.relative_nid)
    base = f"/api/v1/min/patients/{home.patient_id}"
    log = relative.get(f"{base}/access-log")
    assert log.status_code == 200
    assert any(e["who"] == "Kari Sykepleier" and e["what"] == "record" for e in log.json()["items"])
    assert relative.get(f"{base}/measurements").status_code == 403  # only what the proxy grants

    started = relative.post(f"{base}/threads", headers=MIN, json={"subject": "Mor", "body": "Hun er tungpustet."})
    assert started.status_code == 201, started.text
    (message,) = started.json()["messages"]
    assert (message["author_name"], message["author_role"], message["on_behalf"], message["from_team"]) == (
        "Ola Pårørende",
        "relative",
        True,
        False,
    )
    stored = db.execute(
        "SELECT m.proxy_id, c.national_id FROM messages m JOIN citizens c ON c.id = m.author_citizen_id "
        "WHERE m.id = %s",
        (message["id"],),
    ).fetchone()
    assert stored == (uuid.UUID(proxy["id"]), people.relative_nid)
    audited = db.execute(
        "SELECT a.role, a.outcome, a.proxy_id, c.national_id FROM audit_log a JOIN citizens c ON c.id = a.user_id "
        "WHERE a.patient_id = %s AND a.resource = %s AND a.action <> 'read'",
        (home.patient_id, f"{base}/threads"),
    ).fetchall()
    assert audited == [("relative", "ok", uuid.UUID(proxy["id"]), people.relative_nid)]

    waiting = httpx.get(f"{oidc.api_url}/api/v1/messages/awaiting", headers=home.nurse_headers, timeout=30).json()
    (item,) = [i for i in waiting["items"] if i["thread_id"] == started.json()["id"]]
    assert item["patient_id"] == str(home.patient_id) and item["waiting_messages"] == 1
    # The patient sees what was written in their name, and who wrote it.
    (theirs,) = patient.get(f"{base}/threads").json()["items"]
    assert theirs["id"] == started.json()["id"]
    written = [e for e in patient.get(f"{base}/access-log").json()["items"] if e["role"] == "relative"]
    assert any(e["what"] == "messages" and e["action"] != "read" and e["why"] == "proxy" for e in written)


def test_reservations_are_the_patients_alone_audited_and_shown_to_the_nurse(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    base = f"/api/v1/min/patients/{home.patient_id}"
    changed = patient.put(f"{base}/reservations/record_sharing", headers=MIN, json={"reserved": True})
    assert changed.status_code == 200 and changed.json()["record_sharing"]["reserved"] is True
    contact = httpx.get(
        f"{oidc.api_url}/api/v1/patients/{home.patient_id}/contact", headers=home.nurse_headers, timeout=30
    ).json()
    assert contact["reservations"]["record_sharing"]["reserved"] is True
    assert contact["reservations"]["record_sharing"]["changed_by"] == "Kari Pasient"
    assert contact["reservations"]["research"]["reserved"] is False
    audited = db.execute(
        "SELECT action, outcome FROM audit_log WHERE patient_id = %s AND role = 'patient' AND resource LIKE %s",
        (home.patient_id, "%/reservations/record_sharing"),
    ).fetchall()
    assert audited == [("reserve", "ok")]
    history = db.execute(
        "SELECT kind, reserved FROM patient_reservation_changes WHERE patient_id = %s", (home.patient_id,)
    ).fetchall()
    assert history == [("record_sharing", True)]
    with pytest.raises(psycopg.errors.RaiseException):
        db.execute("DELETE FROM patient_reservation_changes WHERE patient_id = %s", (home.patient_id,))


def test_sign_out_ends_the_session_itself_and_idle_and_absolute_expiry_end_it(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    client = national_sign_in(oidc.api_url, people.patient_nid)
    raw = client.cookies[COOKIE]
    assert client.get("/api/v1/min/me").status_code == 200
    assert client.post("/api/v1/min/logout").status_code == 204
    # The cookie the browser held before signing out, sent again (as a copied or stolen cookie would be): the
    # session itself has ended, not only the browser's copy of it.
    replayed = httpx.Client(base_url=oidc.api_url, timeout=30.0, cookies={COOKIE: raw})
    assert replayed.get("/api/v1/min/me").status_code == 401

    def live(session: httpx.Client) -> int:
        return session.get("/api/v1/min/me").status_code

    def age(column: str, interval: str) -> None:
        db.execute(
            f"UPDATE citizen_sessions SET {column} = now() - interval '{interval}' WHERE citizen_id = "
            "(SELECT id FROM citizens WHERE national_id = %s) AND ended_at IS NULL",
            (people.patient_nid,),
        )

    idle = national_sign_in(oidc.api_url, people.patient_nid)
    age("last_seen_at", "29 minutes")
    assert live(idle) == 200  # within the idle limit, and the request restarts the idle clock
    age("last_seen_at", "31 minutes")
    assert live(idle) == 401

    # The absolute end holds however busy the session is.
    busy = national_sign_in(oidc.api_url, people.patient_nid)
    assert live(busy) == 200
    age("expires_at", "1 second")
    assert live(busy) == 401


def test_local_sign_in_is_rate_limited_and_wrong_passwords_get_no_session(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    from clinician_api.passwords import hash_password

    username = f"pasient-{uuid.uuid4().hex[:8]}"
    db.execute(
        "UPDATE citizens SET username = %s, password_hash = %s WHERE national_id = %s",
        (username, hash_password("riktig-passord"), people.patient_nid),
    )
    client = httpx.Client(base_url=oidc.api_url, timeout=30)
    codes = [
        client.post("/api/v1/min/session", json={"username": username, "password": "feil"}).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    assert client.get("/api/v1/min/me").status_code == 401
    other = httpx.Client(base_url=oidc.api_url, timeout=30)
    ok = other.post("/api/v1/min/session", json={"username": username, "password": "riktig-passord"})
    assert ok.status_code == 429  # the window is per address and username, not per client


def _answer(client: httpx.Client, patient_id: Any, answers: dict[str, str], version: int = 1) -> httpx.Response:
    return client.post(
        f"/api/v1/min/patients/{patient_id}/questionnaires/hf-symptoms/responses",
        headers=MIN,
        json={"plan_version": version, "answers": answers},
    )


def test_patient_answers_the_plans_questionnaire_stored_scored_and_alarmed_like_a_gateway_answer(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    base = f"/api/v1/min/patients/{home.patient_id}"
    (shown,) = patient.get(f"{base}/questionnaires", params={"lang": "en"}).json()["items"]
    assert shown["title"] == "How are you today?" and shown["answered_today"] is None
    assert [o["text"] for o in shown["questions"][0]["options"]] == ["No", "A little", "A lot"]
    assert "score" not in shown["questions"][0]["options"][0]

    assert _answer(patient, home.patient_id, {"breath": "a-lot"}).status_code == 422  # a question left out
    assert _answer(patient, home.patient_id, {"breath": "a-lot", "swelling": "maybe"}).status_code == 422
    assert _answer(patient, home.patient_id, {"breath": "no", "swelling": "no"}, version=2).status_code == 409
    done = _answer(patient, home.patient_id, {"breath": "a-lot", "swelling": "yes"})
    assert done.status_code == 201, done.text
    assert done.json()["zone"] == "red" and done.json()["advice"] == "Ring sykepleieren nå."

    stored = db.execute(
        "SELECT r.gateway_id, c.national_id, r.proxy_id, r.score, r.zone, r.answers FROM questionnaire_responses r "
        "JOIN citizens c ON c.id = r.answered_by_citizen WHERE r.patient_id = %s",
        (home.patient_id,),
    ).fetchall()
    assert stored == [(None, people.patient_nid, None, 5, "red", {"breath": "a-lot", "swelling": "yes"})]
    alarm = db.execute(
        "SELECT severity, last_value, details->>'response_id' FROM alarms WHERE patient_id = %s AND rule = %s",
        (home.patient_id, "questionnaire.hf-symptoms.score"),
    ).fetchone()
    assert alarm == ("red", 5.0, done.json()["id"])
    audited = db.execute(
        "SELECT a.role, a.action, a.outcome, a.proxy_id FROM audit_log a JOIN citizens c ON c.id = a.user_id "
        "WHERE a.patient_id = %s AND a.resource LIKE %s AND c.national_id = %s",
        (home.patient_id, "%/questionnaires/hf-symptoms/responses", people.patient_nid),
    ).fetchall()
    assert ("patient", "answer_questionnaire", "ok", None) in audited
    assert ("patient", "answer_questionnaire", "refused:409", None) in audited

    assert patient.get(f"{base}/reminders").json()["questionnaires"] == []
    (again,) = patient.get(f"{base}/questionnaires").json()["items"]
    assert again["answered_today"]["zone"] == "red" and again["answered_today"]["answered_by"] == "Kari Pasient"
    listed = httpx.get(
        f"{oidc.api_url}/api/v1/patients/{home.patient_id}/questionnaire-responses",
        headers=home.nurse_headers,
        timeout=30,
    ).json()["items"]
    assert [(i["gateway_id"], i["answered_by"], i["answered_by_role"], i["zone"]) for i in listed] == [
        (None, "Kari Pasient", "patient", "red")
    ]


def test_a_relative_answers_only_with_the_right_and_is_recorded_as_answering_on_behalf_of_the_patient(
    oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    patient = national_sign_in(oidc.api_url, people.patient_nid)
    reader = grant_proxy(patient, home.patient_id, people.relative_nid, ["read_measurements", "read_plan"])
    relative = national_sign_in(oidc.api_url, people.relative_nid)
    base = f"/api/v1/min/patients/{home.patient_id}"
    assert relative.get(f"{base}/questionnaires").status_code == 403
    assert _answer(relative, home.patient_id, {"breath": "no", "swelling": "no"}).status_code == 403
    assert db.execute(
        "SELECT count(*) FROM questionnaire_responses WHERE patient_id = %s", (home.patient_id,)
    ).fetchone() == (0,)
    denied = db.execute(
        "SELECT a.role, a.outcome, a.proxy_id FROM audit_log a WHERE a.patient_id = %s AND a.resource LIKE %s",
        (home.patient_id, "%/questionnaires/hf-symptoms/responses"),
    ).fetchall()
    assert denied == [("relative", "denied", uuid.UUID(reader["id"]))]

    assert patient.post(f"{base}/proxies/{reader['id']}/revoke", headers=MIN).status_code == 200
    answerer = grant_proxy(patient, home.patient_id, people.relative_nid, ["answer_questionnaires"])
    done = _answer(relative, home.patient_id, {"breath": "a-little", "swelling": "yes"})
    assert done.status_code == 201, done.text
    assert done.json()["zone"] == "yellow"
    stored = db.execute(
        "SELECT c.national_id, r.proxy_id, r.zone FROM questionnaire_responses r "
        "JOIN citizens c ON c.id = r.answered_by_citizen WHERE r.patient_id = %s",
        (home.patient_id,),
    ).fetchall()
    assert stored == [(people.relative_nid, uuid.UUID(answerer["id"]), "yellow")]
    assert db.execute(
        "SELECT severity FROM alarms WHERE patient_id = %s AND rule = 'questionnaire.hf-symptoms.score'",
        (home.patient_id,),
    ).fetchone() == ("yellow",)
    audited = db.execute(
        "SELECT a.role, a.action, a.outcome, a.proxy_id, c.national_id FROM audit_log a "
        "JOIN citizens c ON c.id = a.user_id WHERE a.patient_id = %s AND a.outcome = 'ok' AND a.resource LIKE %s",
        (home.patient_id, "%/questionnaires/hf-symptoms/responses"),
    ).fetchall()
    assert audited == [("relative", "answer_questionnaire", "ok", uuid.UUID(answerer["id"]), people.relative_nid)]
    (entry,) = [e for e in patient.get(f"{base}/access-log").json()["items"] if e["action"] == "answer_questionnaire"]
    assert (entry["who"], entry["role"], entry["why"]) == ("Ola Pårørende", "relative", "proxy")
    (shown,) = patient.get(f"{base}/questionnaires").json()["items"]
    assert shown["answered_today"]["by_relative"] is True
