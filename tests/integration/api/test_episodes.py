"""Episodes of follow-up and hand-overs across organisations, over the real stack (gateway → ingest → rules → API)."""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle

from clinician_api.journal.admin import add_endpoint, add_organisation, link_team
from store.settings import Settings
from tests.integration.api.support import audit_rows, headers_for, insert_alarm
from tests.integration.api.test_api_alarms import _sse_events
from tests.stack_plugin import Tenant, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = pytest.mark.integration

NOTE = {
    "situation": "KOLS-forverring, stabil etter utskrivning.",
    "plan": "Daglig SpO2, kontroll om to uker.",
    "watch": "Fall i SpO2 under 88 %.",
}


def _organisation(db: psycopg.Connection[Any], name: str, team: str, *, journal: bool = False) -> UUID:
    org_id = add_organisation(db, name, f"9{secrets.randbelow(10**8):08d}")
    link_team(db, team, str(org_id))
    if journal:
        add_endpoint(db, str(org_id), "journal", "http://127.0.0.1:9/fhir")
    return org_id


def _spo2(gateway_id: str, value: float) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:01", type="pulse_oximeter", model="PO-60")
    reading = Reading(id=uuid.uuid4(), kind="spo2", value=value, unit="%", measured_at=now, device=device)
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=(reading,)).to_json()


def _queue(api: httpx.Client, headers: dict[str, str], patient: UUID) -> list[dict[str, Any]]:
    response = api.get("/api/v1/alarms", headers=headers)
    response.raise_for_status()
    return [a for a in response.json()["items"] if a["patient_id"] == str(patient)]


def _enrol(api: httpx.Client, headers: dict[str, str], patient: UUID) -> dict[str, Any]:
    body = {"reason": "KOLS med hyppige forverringer", "conditions": ["J44.1"], "protocol": "copd", "plan": "SpO2"}
    response = api.post(f"/api/v1/patients/{patient}/episodes", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _propose(api: httpx.Client, headers: dict[str, str], patient: UUID, to_team: UUID, **extra: Any) -> httpx.Response:
    body = {**NOTE, "to_team_id": str(to_team), **extra}
    return api.post(f"/api/v1/patients/{patient}/handovers", headers=headers, json=body)


def test_hand_over_moves_the_red_alarm_and_duty_of_care_from_hospital_to_municipality(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any], settings: Settings
) -> None:
    from varde.admin import add_escalation_target

    hospital: Tenant = make_tenant(protocol="copd")
    municipal: Tenant = make_tenant(patients=0)
    _organisation(db, "Oslo universitetssykehus HF", hospital.team, journal=True)
    oslo = _organisation(db, "Oslo kommune", municipal.team, journal=True)
    add_escalation_target(settings, hospital.team, "Vakt sykehus", "webhook", "http://127.0.0.1:9/hospital")
    add_escalation_target(settings, municipal.team, "Vakt responssenter", "webhook", "http://127.0.0.1:9/oslo")
    patient, gateway = hospital.patients[0], hospital.gateways[0]
    nurse_h, nurse_m = headers_for(api_url, hospital), headers_for(api_url, municipal)

    episode = _enrol(api, nurse_h, patient)
    assert episode["team_id"] == str(hospital.team_id) and episode["status"] == "active"
    # Both nurses watch their live alarm stream the whole time.
    seen_h: list[tuple[str, str]] = []
    seen_m: list[tuple[str, str]] = []
    stop = threading.Event()
    readers = [
        threading.Thread(target=_sse_events, args=(api_url, headers, out, stop), daemon=True)
        for headers, out in ((nurse_h, seen_h), (nurse_m, seen_m))
    ]
    for reader in readers:
        reader.start()
    try:
        wait_for(lambda: ("comment", "connected") in seen_h and ("comment", "connected") in seen_m, what="streams")
        publish(gateway, readings_topic(gateway.gateway_id), _spo2(gateway.gateway_id, 80.0))
        red = wait_for(lambda: [json.loads(d) for e, d in seen_h if e == "alarm"], what="the red alarm (hospital)")[0]
        assert red["severity"] == "red" and red["team_id"] == str(hospital.team_id)
        assert [a["id"] for a in _queue(api, nurse_h, patient)] == [red["id"]]
        assert _queue(api, nurse_m, patient) == []
        assert api.get(f"/api/v1/patients/{patient}", headers=nurse_m).status_code == 404

        draft = api.get(f"/api/v1/patients/{patient}/handovers/draft", headers=nurse_h).json()
        assert "threshold.spo2.low" in draft["open_alarms"] and draft["situation"] == episode["reason"]
        proposed = _propose(api, nurse_h, patient, municipal.team_id, open_alarms=draft["open_alarms"])
        assert proposed.status_code == 201, proposed.text
        handover = proposed.json()
        assert handover["open_alarm_ids"] == [red["id"]] and handover["state"] == "proposed"

        # Until acceptance the hospital stays responsible: the alarm is in its queue only; the municipal team may
        # read the record to judge the proposal, but not act on it.
        incoming = api.get("/api/v1/handovers", headers=nurse_m, params={"direction": "incoming"}).json()["items"]
        assert [h["id"] for h in incoming] == [handover["id"]]
        assert api.get(f"/api/v1/patients/{patient}", headers=nurse_m).json()["access"] == "handover"
        assert api.post(f"/api/v1/alarms/{red['id']}/acknowledge", headers=nurse_m).status_code == 403
        assert _queue(api, nurse_m, patient) == [] and len(_queue(api, nurse_h, patient)) == 1
        assert not [e for e, _ in seen_m if e == "alarm"]

        accepted = api.post(f"/api/v1/handovers/{handover['id']}/accept", headers=nurse_m)
        assert accepted.status_code == 200, accepted.text
        pushed = wait_for(lambda: [json.loads(d) for e, d in seen_m if e == "alarm"], what="the alarm (municipal)")
        assert pushed[0]["id"] == red["id"] and pushed[0]["team_id"] == str(municipal.team_id)
        wait_for(lambda: [e for e, _ in seen_h if e == "resync"], what="the hospital queue told to reload")
        # A new red reading after the hand-over reaches the municipal nurse's stream, not the hospital's.
        publish(gateway, readings_topic(gateway.gateway_id), _spo2(gateway.gateway_id, 79.0))
        wait_for(lambda: [1 for e, d in seen_m if e == "alarm" and json.loads(d)["last_value"] == 79.0], what="79")
        assert 79.0 not in [json.loads(d)["last_value"] for e, d in seen_h if e == "alarm"]
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
    assert [a["id"] for a in _queue(api, nurse_m, patient)] == [red["id"]]
    assert _queue(api, nurse_h, patient) == []
    assert api.get(f"/api/v1/patients/{patient}", headers=nurse_h).status_code == 404
    assert api.post(f"/api/v1/alarms/{red['id']}/acknowledge", headers=nurse_h).status_code == 404
    listed = api.get("/api/v1/patients", headers=nurse_m).json()["items"]
    assert [p["episode"]["team_name"] for p in listed if p["id"] == str(patient)] == [municipal.team]

    # Escalation reaches the receiving team's on-call target, not the hospital's.
    assert api.post(f"/api/v1/alarms/{red['id']}/escalate", headers=nurse_m).status_code == 200
    targets = db.execute(
        "SELECT t.label FROM escalation_notices n JOIN escalation_targets t ON t.id = n.target_id "
        "WHERE n.alarm_id = %s",
        (red["id"],),
    ).fetchall()
    assert targets == [("Vakt responssenter",)]

    # FHIR: the current episode, searchable by patient, status and organization, valid R4B.
    fhir = api.get(
        "/fhir/EpisodeOfCare",
        headers=nurse_m,
        params={"patient": f"Patient/{patient}", "status": "active", "organization": f"Organization/{oslo}"},
    )
    assert fhir.status_code == 200, fhir.text
    bundle = Bundle.model_validate(fhir.json())
    assert bundle.total == 1
    resource = fhir.json()["entry"][0]["resource"]
    assert (
        resource["team"][0]["display"] == municipal.team
        and resource["managingOrganization"]["display"] == "Oslo kommune"
    )
    hidden = api.get("/fhir/EpisodeOfCare", headers=nurse_h, params={"patient": f"Patient/{patient}"})
    assert hidden.json()["total"] == 0

    # Every step audited, and journaled to both organisations' record systems.
    actions = {(r["action"], r["outcome"]) for r in audit_rows(db, patient_id=patient)}
    assert {("episode_enrol", "ok"), ("handover_propose", "ok"), ("handover_accept", "ok")} <= actions
    assert ("create", "refused:403") in actions  # the municipal nurse's acknowledge before acceptance
    hospital_denied = [
        r for r in audit_rows(db, patient_id=patient, outcome="denied") if r["username"] == hospital.nurse
    ]
    assert len(hospital_denied) >= 2
    journaled = db.execute(
        "SELECT o.name, count(*) FROM journal_outbox j JOIN record_endpoints r ON r.id = j.endpoint_id "
        "JOIN organisations o ON o.id = r.organisation_id "
        "WHERE j.kind = 'episode_document' AND %s = ANY(j.patient_ids) GROUP BY o.name ORDER BY o.name",
        (patient,),
    ).fetchall()
    assert journaled == [("Oslo kommune", 2), ("Oslo universitetssykehus HF", 3)]
    doc = db.execute(
        "SELECT bundle FROM journal_outbox WHERE kind = 'episode_document' AND %s = ANY(patient_ids) "
        "ORDER BY created_at DESC LIMIT 1",
        (patient,),
    ).fetchone()
    assert doc is not None and Bundle.model_validate(doc[0]).type == "document"


def test_consultative_access_lets_the_former_team_read_but_not_write(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    hospital, municipal = make_tenant(protocol="copd"), make_tenant(patients=0)
    patient = hospital.patients[0]
    alarm = insert_alarm(db, patient, severity="red")
    nurse_h, nurse_m = headers_for(api_url, hospital), headers_for(api_url, municipal)
    _enrol(api, nurse_h, patient)
    handover = _propose(api, nurse_h, patient, municipal.team_id, consult_days=14).json()
    assert api.post(f"/api/v1/handovers/{handover['id']}/accept", headers=nurse_m).status_code == 200

    record = api.get(f"/api/v1/patients/{patient}", headers=nurse_h)
    assert record.status_code == 200 and record.json()["access"] == "consultative"
    assert api.get(f"/api/v1/patients/{patient}/measurements", headers=nurse_h).status_code == 200
    assert api.get(f"/api/v1/alarms/{alarm}", headers=nurse_h).status_code == 200
    refused = api.post(f"/api/v1/alarms/{alarm}/acknowledge", headers=nurse_h)
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert _queue(api, nurse_h, patient) == []  # the alarm queue is the responsible team's
    assert [
        r["outcome"] for r in audit_rows(db, patient_id=patient, resource=f"/api/v1/alarms/{alarm}/acknowledge")
    ] == ["refused:403"]
    reads = audit_rows(db, patient_id=patient, resource=f"/api/v1/patients/{patient}", username=hospital.nurse)
    assert reads[-1]["reason"] == "consultative" and reads[-1]["outcome"] == "ok"
    # A consulting team may not propose either; handed back to it, it is responsible again (no consultative row).
    assert _propose(api, nurse_h, patient, municipal.team_id).status_code == 403
    back = _propose(api, nurse_m, patient, hospital.team_id).json()
    assert api.post(f"/api/v1/handovers/{back['id']}/accept", headers=nurse_h).status_code == 200
    assert api.get(f"/api/v1/patients/{patient}", headers=nurse_h).json()["access"] == "team"
    assert api.get(f"/api/v1/patients/{patient}", headers=nurse_m).status_code == 404
    assert [a["id"] for a in _queue(api, nurse_h, patient)] == [str(alarm)]


def test_decline_keeps_the_sender_responsible_and_a_second_proposal_waits(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    hospital, municipal, other = make_tenant(), make_tenant(patients=0), make_tenant(patients=0)
    patient = hospital.patients[0]
    nurse_h, nurse_m = headers_for(api_url, hospital), headers_for(api_url, municipal)
    _enrol(api, nurse_h, patient)
    assert _enrol_conflict(api, nurse_h, patient) == 409
    first = _propose(api, nurse_h, patient, municipal.team_id)
    assert first.status_code == 201
    assert _propose(api, nurse_h, patient, other.team_id).status_code == 409
    assert _propose(api, nurse_h, patient, hospital.team_id).status_code in (409, 422)
    short = api.post(f"/api/v1/handovers/{first.json()['id']}/decline", headers=nurse_m, json={"reason": ""})
    assert short.status_code == 422
    declined = api.post(
        f"/api/v1/handovers/{first.json()['id']}/decline", headers=nurse_m, json={"reason": "Ingen kapasitet nå"}
    )
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    assert api.post(f"/api/v1/handovers/{first.json()['id']}/accept", headers=nurse_m).status_code == 409
    assert db.execute("SELECT team_id FROM patients WHERE id = %s", (patient,)).fetchone() == (hospital.team_id,)
    assert api.get(f"/api/v1/patients/{patient}", headers=nurse_m).status_code == 404
    assert _propose(api, nurse_h, patient, other.team_id).status_code == 201
    history = api.get(f"/api/v1/patients/{patient}/episodes", headers=nurse_h).json()
    kinds = [e["kind"] for e in history["events"]]
    assert kinds == ["enrolled", "handover_proposed", "handover_declined", "handover_proposed"]
    assert history["handovers"][0]["decline_reason"] == "Ingen kapasitet nå"
    # The responsible team is the episode's: nothing else may move the patient.
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE patients SET team_id = %s WHERE id = %s", (municipal.team_id, patient))
    actions = [(r["action"], r["outcome"]) for r in audit_rows(db, patient_id=patient) if r["action"] != "read"]
    assert ("handover_decline", "ok") in actions and ("handover_accept", "refused:409") in actions


def _enrol_conflict(api: httpx.Client, headers: dict[str, str], patient: UUID) -> int:
    body = {"reason": "igjen"}
    return api.post(f"/api/v1/patients/{patient}/episodes", headers=headers, json=body).status_code


def test_a_third_team_can_neither_see_nor_answer_a_proposal(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    hospital, municipal, third = make_tenant(), make_tenant(patients=0), make_tenant(patients=0)
    patient = hospital.patients[0]
    nurse_h, nurse_3 = headers_for(api_url, hospital), headers_for(api_url, third)
    _enrol(api, nurse_h, patient)
    handover = _propose(api, nurse_h, patient, municipal.team_id).json()
    assert api.get("/api/v1/handovers", headers=nurse_3).json()["items"] == []
    assert api.get(f"/api/v1/handovers/{handover['id']}", headers=nurse_3).status_code == 404
    missing = api.get(f"/api/v1/handovers/{uuid.uuid4()}", headers=nurse_3)
    assert (
        missing.status_code == 404
        and missing.json()["detail"] == api.get(f"/api/v1/handovers/{handover['id']}", headers=nurse_3).json()["detail"]
    )
    assert api.post(f"/api/v1/handovers/{handover['id']}/accept", headers=nurse_3).status_code == 404
    assert api.post(f"/api/v1/handovers/{handover['id']}/withdraw", headers=nurse_3).status_code == 404
    assert api.get(f"/api/v1/patients/{patient}", headers=nurse_3).status_code == 404
    assert [p for p in api.get("/api/v1/patients", headers=nurse_3).json()["items"] if p["id"] == str(patient)] == []
    denied = [r for r in audit_rows(db, patient_id=patient, outcome="denied") if r["username"] == third.nurse]
    assert {r["action"] for r in denied} >= {"read", "handover_accept", "handover_withdraw"}
    assert db.execute("SELECT state FROM care_handovers WHERE id = %s", (handover["id"],)).fetchone() == ("proposed",)


def test_discharge_keeps_the_history_and_a_new_episode_can_start(
    make_tenant: Any, api: httpx.Client, api_url: str
) -> None:
    hospital, municipal = make_tenant(), make_tenant(patients=0)
    patient = hospital.patients[0]
    nurse_h = headers_for(api_url, hospital)
    first = _enrol(api, nurse_h, patient)
    _propose(api, nurse_h, patient, municipal.team_id)
    changed = api.patch(f"/api/v1/patients/{patient}/episodes/current", headers=nurse_h, json={"plan": "Ny plan"})
    assert changed.status_code == 200 and changed.json()["plan"] == "Ny plan"
    done = api.post(
        f"/api/v1/patients/{patient}/episodes/current/discharge",
        headers=nurse_h,
        json={"reason": "Stabil, avsluttet", "summary": "Ingen innleggelser siste 3 mnd."},
    )
    assert done.status_code == 200 and done.json()["status"] == "finished"
    listed = api.get("/api/v1/patients", headers=nurse_h).json()["items"]
    assert [p["episode"] for p in listed if p["id"] == str(patient)] == [None]
    second = _enrol(api, nurse_h, patient)
    history = api.get(f"/api/v1/patients/{patient}/episodes", headers=nurse_h).json()
    assert [e["id"] for e in history["episodes"]] == [second["id"], first["id"]]
    assert history["handovers"][0]["state"] == "withdrawn"
    assert history["episodes"][1]["discharge_summary"] == "Ingen innleggelser siste 3 mnd."
