"""EpisodeOfCare and an episode step's document Bundle: valid FHIR R4B, the responsible team and organisation as
they were at the step, and stable across rebuilds (a resend is the same Bundle)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.episodeofcare import EpisodeOfCare

from clinician_api import fhir
from clinician_api.journal import bundles
from store.episodes import Episode
from store.journal_documents import Organisation, Practitioner
from store.plans import PlanRow

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
PATIENT = bundles.PatientRow(uuid.UUID("11111111-2222-4333-8444-555555555555"), "Kari Nordmann", None, None, True)
TEAM = uuid.UUID("22222222-3333-4444-8555-666666666666")
ORG = Organisation(uuid.UUID("12121212-3434-4565-8787-909090909090"), "Oslo kommune", "974778874")
NURSE = Practitioner(uuid.UUID("99999999-8888-4777-8666-555555555555"), "kari.nurse", "Kari Sykepleier", None, "nurse")


def _episode(ended: datetime | None = None, org: bool = True) -> Episode:
    return Episode(
        id=uuid.UUID("33333333-4444-4555-8666-777777777777"),
        patient_id=PATIENT.id,
        status="finished" if ended else "active",
        team_id=TEAM,
        team_name="Responssenter",
        organisation_id=ORG[0] if org else None,
        organisation_name=ORG[1] if org else None,
        reason="KOLS med hyppige forverringer",
        conditions=["J44.1"],
        protocol="copd",
        plan="",
        care_manager_id=NURSE[0],
        started_at=T0,
        started_by=NURSE[0],
        ended_at=ended,
        ended_by=NURSE[0] if ended else None,
        discharge_reason="Stabil" if ended else None,
        discharge_summary=None,
        updated_at=ended or T0,
    )


@pytest.mark.parametrize(("ended", "org"), [(None, True), (T0 + timedelta(days=30), True), (None, False)])
def test_episode_of_care_is_valid_and_names_team_period_and_organisation(ended: datetime | None, org: bool) -> None:
    resource = fhir.episode_of_care(_episode(ended, org))
    EpisodeOfCare.model_validate(resource)
    assert resource["status"] == ("finished" if ended else "active")
    assert resource["team"][0]["display"] == "Responssenter"
    assert resource["patient"] == {"reference": f"Patient/{PATIENT.id}"}
    assert resource["type"][0]["coding"][0]["code"] == "copd"
    assert ("managingOrganization" in resource) is org
    if ended:
        assert resource["period"]["end"] == ended.isoformat()
        assert [s["status"] for s in resource["statusHistory"]] == ["active", "finished"]
    assert "J44.1" in resource["text"]["div"]


def test_hand_over_document_is_valid_self_contained_and_stable() -> None:
    endpoint = uuid.UUID("44444444-5555-4666-8777-888888888888")
    doc = bundles.EpisodeDocument(
        event_id=42,
        kind="handover_accepted",
        at=T0,
        endpoint_id=endpoint,
        episode=_episode(),
        patient=PATIENT,
        practitioner=NURSE,
        organisation=ORG,
        note=[("Situasjon / Situation", "Stabil <etter> utskrivning"), ("Følg med på / What to watch", "SpO2")],
    )
    bundle = bundles.episode_document(doc)
    Bundle.model_validate(bundle)
    assert bundle == bundles.episode_document(doc)
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition" and composition["title"] == "Varde: Overføring akseptert"
    assert [s["title"] for s in composition["section"]][1:] == ["Situasjon / Situation", "Følg med på / What to watch"]
    assert "&lt;etter&gt;" in composition["section"][1]["text"]["div"]
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    episode = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare")
    assert episode["managingOrganization"]["reference"] in full_urls
    assert episode["careManager"]["reference"] in full_urls
    other = bundles.episode_document(dataclasses.replace(doc, endpoint_id=uuid.uuid4()))
    assert other["id"] != bundle["id"]  # one Bundle per record system


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "reference" and isinstance(v, str)] + [
            r for v in node.values() for r in _references(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def test_enrolment_document_carries_the_active_plan_with_its_limits_as_goals() -> None:
    from fhir.resources.R4B.careplan import CarePlan

    body = {
        "protocol": "copd",
        "zones": [{"kind": "spo2", "unit": "%", "red_low": 86, "yellow_low": 90}],
        "schedule": [{"kind": "spo2", "deadline": "10:00", "weekdays": ["mon", "wed"]}],
        "advice": [{"zone": z, "nb": "Råd.", "en": "Advice."} for z in ("green", "yellow", "red")],
        "contacts": [{"name": "Lungepoliklinikken", "role": "sykepleier", "phone": "+47 22 11 80 80"}],
    }
    plan_row = PlanRow(
        uuid.UUID("55555555-6666-4777-8888-999999999999"), PATIENT.id, 3, "active", T0, None, T0, None, body
    )
    doc = bundles.EpisodeDocument(
        event_id=7,
        kind="enrolled",
        at=T0,
        endpoint_id=uuid.UUID("44444444-5555-4666-8777-888888888888"),
        episode=_episode(),
        patient=PATIENT,
        practitioner=NURSE,
        organisation=ORG,
        plan=plan_row,
    )
    bundle = bundles.episode_document(doc)
    Bundle.model_validate(bundle)
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    (plan,) = [r for r in resources.values() if r["resourceType"] == "CarePlan"]
    CarePlan.model_validate(plan)
    assert plan["status"] == "active" and plan["title"] == "Egenbehandlingsplan v3"
    (goal,) = plan["contained"]
    assert goal["resourceType"] == "Goal" and goal["target"][0]["detailRange"]["low"]["value"] == 90
    assert plan["goal"] == [{"reference": "#goal-spo2"}]
    composition = bundle["entry"][0]["resource"]
    section = composition["section"][-1]
    assert section["title"] == "Egenbehandlingsplan / Self-management plan"
    assert resources[section["entry"][0]["reference"]] is plan
    assert "rød under 86 %" in section["text"]["div"] and "gul under 90 %" in section["text"]["div"]
    contained = {f"#{c['id']}" for c in plan["contained"]}
    for reference in _references(bundle):
        assert reference in resources or reference in contained, reference
    assert plan["subject"]["reference"] == composition["subject"]["reference"]
    without = bundles.episode_document(dataclasses.replace(doc, plan=None))
    assert "CarePlan" not in {e["resource"]["resourceType"] for e in without["entry"]}
