"""Measurement sharing: an organisation's new readings reach its record system as Bundles of at most N
Observations (vital-signs profile, LOINC + MDC, UCUM), each reading once, past a high-water mark that advances;
readings of other organisations' patients stay home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from clinician_api.journal.admin import add_endpoint, add_subscription
from tests.integration.api.support import insert_readings
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled
from tests.stack_plugin import wait_for

pytestmark = pytest.mark.integration


def _delivered(db: psycopg.Connection[Any], subscription_id: Any) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT state, bundle FROM journal_outbox WHERE subscription_id = %s ORDER BY created_at, id",
        (subscription_id,),
    ).fetchall()
    return [r[1] for r in rows] if rows and all(r[0] == "delivered" for r in rows) else []


def _blood_pressure(db: psycopg.Connection[Any], gateway: Any, at: datetime) -> list[Any]:
    """Both halves of one cuff inflation in one transaction, as ingest stores them."""
    with db.transaction():
        return [
            reading_id
            for kind, value in (("bp_systolic", 138.0), ("bp_diastolic", 84.0))
            for reading_id in insert_readings(
                db,
                gateway.patient_id,
                gateway.gateway_id,
                kind,
                [value],
                [at],
                groups=["cuff-1"],
                device="A4:C1:38:00:00:03",
            )
        ]


def _observations(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["resource"] for b in bundles for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]


def test_new_readings_are_shared_once_in_batches_of_at_most_n_past_an_advancing_mark(
    journaled_tenant: Any, make_tenant: Any, record_system: RecordSystem, db: psycopg.Connection[Any]
) -> None:
    journaled: Journaled = journaled_tenant(patients=2)
    elsewhere: Journaled = journaled_tenant()
    unorganised = make_tenant()
    subscription = add_subscription(
        db, journaled.org_number, journaled.endpoint_id, batch_size=3, bundle_type="collection"
    )
    weights_endpoint = add_endpoint(
        db,
        journaled.org_number,
        "weights",
        record_system.base_url,
        token_url=record_system.token_url,
        client_id=record_system.state.client_id,
        client_secret_ref=journaled.secret_ref,
        journal_alarms=False,
    )
    weights = add_subscription(db, journaled.org_number, weights_endpoint, kinds=["body_weight"], batch_size=10)
    (g1, g2), now = journaled.tenant.gateways, datetime.now(UTC)
    first = [
        *insert_readings(db, g1.patient_id, g1.gateway_id, "spo2", [95.0, 94.0], [now, now + timedelta(seconds=1)]),
        *_blood_pressure(db, g1, now),
        *insert_readings(db, g2.patient_id, g2.gateway_id, "body_weight", [81.2], [now], device_type="weight_scale"),
        *insert_readings(
            db, g2.patient_id, g2.gateway_id, "pulse_rate", [71.0, 74.0], [now, now + timedelta(seconds=2)]
        ),
    ]
    for other in (elsewhere.tenant.gateways[0], unorganised.gateways[0]):
        insert_readings(db, other.patient_id, other.gateway_id, "spo2", [90.0], [now])

    batches = wait_for(
        lambda: len(_observations(_delivered(db, subscription))) >= 6 and _delivered(db, subscription),
        20,
        what="the shared batches",
    )
    observations = _observations(batches)
    assert len(observations) == 6  # seven readings; systolic and diastolic form one panel
    assert all(sum(e["resource"]["resourceType"] == "Observation" for e in b["entry"]) <= 3 for b in batches)
    for bundle in batches:
        Bundle.model_validate(bundle)
        assert bundle["type"] == "collection" and "timestamp" in bundle
        assert f"urn:ietf:rfc:3986|{bundle['identifier']['value']}" in record_system.state.documents
    for resource in observations:
        Observation.model_validate(resource)
    panel = next(o for o in observations if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [138.0, 84.0]
    spo2 = next(o for o in observations if o["code"]["coding"][0]["code"] == "59408-5")
    assert spo2["category"][0]["coding"][0]["code"] == "vital-signs"
    assert {"system": "urn:iso:std:iso:11073:10101", "code": "150456"}.items() <= spo2["code"]["coding"][2].items()
    assert spo2["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    shared = {o["identifier"][0]["value"] for o in observations}
    assert shared == {str(r) for r in first} - {str(first[3])}  # the diastolic travels inside the panel
    assert len(shared) == len(observations)

    weight_batches = wait_for(lambda: _delivered(db, weights), 20, what="the weight subscription's batch")
    assert [o["code"]["coding"][0]["code"] for o in _observations(weight_batches)] == ["29463-7"]

    (mark,) = db.execute("SELECT hwm_received_at FROM journal_subscriptions WHERE id = %s", (subscription,)).fetchone()
    assert mark >= now
    later = datetime.now(UTC) + timedelta(seconds=10)  # received after everything of the first round
    more = insert_readings(
        db, g1.patient_id, g1.gateway_id, "spo2", [93.0, 92.0], [later, later + timedelta(seconds=1)]
    )
    grown = wait_for(
        lambda: (b := _delivered(db, subscription)) and len(_observations(b)) == 8 and b, 20, what="the next batch"
    )
    assert {o["identifier"][0]["value"] for o in _observations(grown[len(batches) :])} == {str(r) for r in more}
    (after,) = db.execute("SELECT hwm_received_at FROM journal_subscriptions WHERE id = %s", (subscription,)).fetchone()
    assert after > mark
    everywhere = {
        o["identifier"][0]["value"] for b in record_system.state.documents.values() for o in _observations([b])
    }
    assert not everywhere - {str(r) for r in [*first, *more]}  # nothing from the other organisation or team
