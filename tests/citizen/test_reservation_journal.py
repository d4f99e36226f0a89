"""A reservation against record sharing keeps the patient's measurements home: the next delivery to the record
system (the loopback receiver) carries the other patients' readings and none of theirs, and an entry queued before
the reservation is withheld at send time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from clinician_api import consent
from clinician_api.journal.admin import add_subscription
from store.events import Channel, wake
from tests.integration.api.support import insert_readings
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled, journaled_tenant, record_system
from tests.stack_plugin import wait_for

__all__ = ["journaled_tenant", "record_system"]

pytestmark = pytest.mark.integration


def _observed(system: RecordSystem) -> set[str]:
    """Reading ids of every Observation the record system received (stored resources and whole documents)."""
    with system.state.lock:
        documents = list(system.state.documents.values())
    observations = [
        e["resource"] for b in documents for e in b.get("entry", []) if e["resource"]["resourceType"] == "Observation"
    ]
    return {o["identifier"][0]["value"] for o in [*observations, *system.state.stored_observations()]}


def test_reserved_patients_readings_never_reach_the_record_system(
    journaled_tenant: Any, record_system: RecordSystem, db: psycopg.Connection[Any]
) -> None:
    journaled: Journaled = journaled_tenant(patients=2)
    reserved, shared = journaled.tenant.gateways
    with db.transaction():
        consent.set_reservation(db, reserved.patient_id, "record_sharing", True)
    add_subscription(db, journaled.org_number, journaled.endpoint_id, batch_size=50, bundle_type="collection")
    now = datetime.now(UTC)
    kept = insert_readings(db, reserved.patient_id, reserved.gateway_id, "spo2", [91.0], [now])
    sent = insert_readings(db, shared.patient_id, shared.gateway_id, "spo2", [97.0], [now])
    wake(db, Channel.JOURNAL)
    wait_for(lambda: {str(r) for r in sent} <= _observed(record_system), 30, what="the shared patient's reading")
    assert not {str(r) for r in kept} & _observed(record_system)
    bundles = db.execute(
        "SELECT patient_ids FROM journal_outbox WHERE endpoint_id = %s", (journaled.endpoint_id,)
    ).fetchall()
    assert all(reserved.patient_id not in row[0] for row in bundles)


def test_an_entry_queued_before_the_reservation_is_withheld_at_send_time(
    journaled_tenant: Any, record_system: RecordSystem, db: psycopg.Connection[Any]
) -> None:
    from clinician_api.journal.worker import WITHHELD

    journaled: Journaled = journaled_tenant(patients=1)
    (gateway,) = journaled.tenant.gateways
    # Pause the endpoint so the entry is queued, not sent, then reserve and let it go.
    db.execute(
        "UPDATE record_endpoints SET paused_until = now() + interval '1 hour' WHERE id = %s", (journaled.endpoint_id,)
    )
    subscription = add_subscription(db, journaled.org_number, journaled.endpoint_id, batch_size=50)
    readings = insert_readings(db, gateway.patient_id, gateway.gateway_id, "spo2", [90.0], [datetime.now(UTC)])
    wake(db, Channel.JOURNAL)
    wait_for(
        lambda: db.execute("SELECT 1 FROM journal_outbox WHERE subscription_id = %s", (subscription,)).fetchone(),
        30,
        what="the queued entry",
    )
    with db.transaction():
        consent.set_reservation(db, gateway.patient_id, "record_sharing", True)
    db.execute("UPDATE record_endpoints SET paused_until = NULL WHERE id = %s", (journaled.endpoint_id,))
    wake(db, Channel.JOURNAL)
    state = wait_for(
        lambda: (
            (
                r := db.execute(
                    "SELECT state, last_error FROM journal_outbox WHERE subscription_id = %s", (subscription,)
                ).fetchone()
            )
            and r[0] != "pending"
            and r
        ),
        30,
        what="the entry's outcome",
    )
    assert tuple(state) == ("failed", WITHHELD)
    assert not {str(r) for r in readings} & _observed(record_system)


def test_a_research_reservation_keeps_the_patient_out_of_every_export(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    from clinician_api.fhir_export import exportable_patients

    tenant = make_tenant(patients=2)
    reserved, other = tenant.patients
    (nurse_id,) = db.execute("SELECT id FROM users WHERE username = %s", (tenant.nurse,)).fetchone()
    assert set(exportable_patients(db, nurse_id, tenant.team_id)) == {reserved, other}
    with db.transaction():
        consent.set_reservation(db, reserved, "research", True)
        consent.set_reservation(db, other, "record_sharing", True)  # another kind: no effect on exports
    assert exportable_patients(db, nurse_id, tenant.team_id) == [other]
    assert exportable_patients(db, nurse_id, None) == [other]
