"""Every transition of the alarm lifecycle (`store.alarms`) writes, in one transaction, the alarm row, its alarm
event, the audit row where a person acted, the change notice on `varde_events` and, on resolution, the journal
outbox entry. Each test drives one transition (nurses' through the API, the rules' and timed jobs' through the store
functions they call) and checks the five together; a barrier notice sent after the change proves that no further
notice is on its way before the notices are counted."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from store import alarms
from store.events import Channel, listen
from store.settings import Settings
from tests.integration.api.support import add_user, headers_for, insert_alarm
from tests.integration.journal.support import Journaled

pytestmark = pytest.mark.integration


@dataclass
class Seen:
    """What one transition left behind, counted from the moment before it."""

    row: dict[str, Any]
    events: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    journal: list[dict[str, Any]]


class Watch:
    """The change notices and the rows of one alarm, before and after a transition."""

    def __init__(self, settings: Settings, db: psycopg.Connection[Any]) -> None:
        self._db = db
        self._listener = psycopg.connect(settings.require_database_url(), autocommit=True)
        listen(self._listener, Channel.CHANGES)

    def close(self) -> None:
        self._listener.close()

    def _rows(self, query: str, params: Any) -> list[dict[str, Any]]:
        cur = self._db.execute(query, params)
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _notices(self) -> list[dict[str, Any]]:
        token = f"barrier-{secrets.token_hex(4)}"
        self._listener.execute("SELECT pg_notify(%s, %s)", (Channel.CHANGES.value, token))
        out: list[dict[str, Any]] = []
        for n in self._listener.notifies(timeout=10):
            if n.payload == token:
                return out
            out.append(json.loads(n.payload))
        raise AssertionError("the barrier notice did not arrive")

    def around(self, alarm_id: UUID, change: Callable[[], Any]) -> Seen:
        self._notices()  # whatever came before belongs to the setup
        last_event = self._db.execute("SELECT coalesce(max(id), 0) FROM alarm_events").fetchone()
        last_audit = self._db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
        assert last_event is not None and last_audit is not None
        change()
        patient = self._db.execute("SELECT patient_id FROM alarms WHERE id = %s", (alarm_id,)).fetchone()
        assert patient is not None
        return Seen(
            self._rows("SELECT * FROM alarms WHERE id = %s", (alarm_id,))[0],
            self._rows(
                "SELECT event, actor_id, data FROM alarm_events WHERE alarm_id = %s AND id > %s ORDER BY id",
                (alarm_id, last_event[0]),
            ),
            self._rows(
                "SELECT action, outcome, username FROM audit_log WHERE patient_id = %s AND id > %s ORDER BY id",
                (patient[0], last_audit[0]),
            ),
            self._notices(),
            self._rows("SELECT kind, state FROM journal_outbox WHERE alarm_id = %s", (alarm_id,)),
        )


@pytest.fixture
def watch(settings: Settings, db: psycopg.Connection[Any]) -> Iterator[Watch]:
    w = Watch(settings, db)
    yield w
    w.close()


def _announced(seen: Seen, source: str, alarm_id: UUID) -> bool:
    return any(n["source"] == source and str(alarm_id) in n["alarms"] for n in seen.notices)


def _user_id(db: psycopg.Connection[Any], username: str) -> UUID:
    row = db.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def _post(api_url: str, headers: dict[str, str], path: str, body: Any = None) -> dict[str, Any]:
    response = httpx.post(f"{api_url}/api/v1/alarms/{path}", headers=headers, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _candidate(patient_id: UUID, rule: str, severity: str, value: float) -> alarms.AlarmUpsert:
    now = datetime.now(UTC)
    return alarms.AlarmUpsert(
        patient_id=patient_id,
        rule=rule,
        kind="spo2",
        severity=severity,
        value=value,
        limit=88.0,
        count=1,
        reading_id=None,
        measured_at=now,
        window_start=None,
        window_end=None,
        explanation_nb=f"SpO2 {value} %",
        explanation_en=f"SpO2 {value} %",
    )


def test_a_rule_opens_then_updates_one_alarm_evented_and_announced_without_audit_or_journal(
    make_tenant: Any, db: psycopg.Connection[Any], watch: Watch
) -> None:
    patient = make_tenant().patients[0]
    opened: list[alarms.Raised] = []

    def raise_(severity: str, value: float) -> None:
        with db.transaction():
            opened.extend(
                alarms.raise_alarms(db, [_candidate(patient, "threshold.spo2.low", severity, value)], "ingest")
            )

    with db.transaction():
        opened.extend(alarms.raise_alarms(db, [_candidate(patient, "threshold.spo2.low", "yellow", 89.0)], "ingest"))
    alarm_id = opened[0].id
    assert opened[0].opened

    seen = watch.around(alarm_id, lambda: raise_("red", 84.0))
    assert not opened[1].opened and opened[1].id == alarm_id
    assert seen.row["state"] == "open" and seen.row["severity"] == "red" and seen.row["count"] == 2
    assert seen.row["last_value"] == 84.0 and seen.row["severity_value"] == 84.0
    assert [e["event"] for e in seen.events] == ["updated"] and seen.events[0]["actor_id"] is None
    assert seen.events[0]["data"]["severity"] == "red"
    assert _announced(seen, "ingest", alarm_id)
    assert seen.audit == [] and seen.journal == []
    open_count = db.execute(
        "SELECT count(*) FROM alarms WHERE patient_id = %s AND state <> 'resolved'", (patient,)
    ).fetchone()
    assert open_count == (1,)


def test_back_in_range_is_marked_evented_and_announced(
    make_tenant: Any, db: psycopg.Connection[Any], watch: Watch
) -> None:
    patient = make_tenant().patients[0]
    alarm_id = insert_alarm(db, patient, severity="yellow", rule="threshold.spo2.low")

    def back() -> None:
        with db.transaction():
            assert alarms.mark_back_in_range(db, [(patient, "spo2", 95.0)], "ingest") == [alarm_id]

    seen = watch.around(alarm_id, back)
    assert seen.row["back_in_range"] and seen.row["details"]["back_in_range_value"] == 95.0
    assert seen.row["state"] == "open"
    assert [(e["event"], e["data"]) for e in seen.events] == [("back_in_range", {"value": 95.0})]
    assert _announced(seen, "ingest", alarm_id) and seen.audit == [] and seen.journal == []
    with db.transaction():  # already marked: nothing changes, nothing is announced
        assert alarms.mark_back_in_range(db, [(patient, "spo2", 96.0)], "ingest") == []


def test_an_answered_questionnaire_marks_its_missed_alarm_back_in_range(
    make_tenant: Any, db: psycopg.Connection[Any], watch: Watch
) -> None:
    patient = make_tenant().patients[0]
    alarm_id = insert_alarm(db, patient, severity="missed", kind=None, rule="questionnaire.cat.missed")

    def answered() -> None:
        with db.transaction():
            marked = alarms.mark_rules_back_in_range(db, [(patient, "questionnaire.cat.missed")], "questionnaire")
            assert marked == [alarm_id]

    seen = watch.around(alarm_id, answered)
    assert seen.row["back_in_range"] and [e["event"] for e in seen.events] == ["back_in_range"]
    assert _announced(seen, "questionnaire", alarm_id) and seen.audit == [] and seen.journal == []


def test_a_nurse_acknowledges_with_event_audit_and_notice(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any], watch: Watch
) -> None:
    tenant = make_tenant()
    alarm_id = insert_alarm(db, tenant.patients[0], severity="red")
    headers = headers_for(api_url, tenant)
    seen = watch.around(alarm_id, lambda: _post(api_url, headers, f"{alarm_id}/acknowledge"))
    nurse = _user_id(db, tenant.nurse)
    assert seen.row["state"] == "acknowledged" and seen.row["acknowledged_by"] == nurse
    assert seen.row["acknowledged_at"] is not None
    assert [(e["event"], e["actor_id"]) for e in seen.events] == [("acknowledged", nurse)]
    assert [(a["action"], a["outcome"], a["username"]) for a in seen.audit] == [("acknowledge", "ok", tenant.nurse)]
    assert _announced(seen, "api", alarm_id) and seen.journal == []


def test_a_nurse_assigns_to_a_colleague_of_the_team(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any], settings: Settings, watch: Watch
) -> None:
    tenant = make_tenant()
    alarm_id = insert_alarm(db, tenant.patients[0])
    _, _, colleague = add_user(settings, "physician", [tenant.team])
    headers = headers_for(api_url, tenant)
    seen = watch.around(alarm_id, lambda: _post(api_url, headers, f"{alarm_id}/assign", {"assignee": str(colleague)}))
    assert seen.row["assignee_id"] == colleague and seen.row["state"] == "open"
    assert [(e["event"], e["data"]) for e in seen.events] == [("assigned", {"assignee_id": str(colleague)})]
    assert [a["action"] for a in seen.audit] == ["assign"]
    assert _announced(seen, "api", alarm_id) and seen.journal == []


def test_a_nurse_notes_also_on_a_resolved_alarm(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any], watch: Watch
) -> None:
    tenant = make_tenant()
    alarm_id = insert_alarm(db, tenant.patients[0], state="resolved")
    headers = headers_for(api_url, tenant)
    before = db.execute("SELECT updated_at FROM alarms WHERE id = %s", (alarm_id,)).fetchone()
    seen = watch.around(alarm_id, lambda: _post(api_url, headers, f"{alarm_id}/notes", {"text": "Ringte tilbake."}))
    assert before is not None and seen.row["updated_at"] > before[0] and seen.row["state"] == "resolved"
    assert [(e["event"], e["data"]) for e in seen.events] == [("note", {"text": "Ringte tilbake."})]
    assert [a["action"] for a in seen.audit] == ["note"]
    assert _announced(seen, "api", alarm_id) and seen.journal == []


def test_a_nurse_resolves_and_the_document_is_queued_for_the_record_in_the_same_transaction(
    journaled_tenant: Any, api_url: str, db: psycopg.Connection[Any], watch: Watch
) -> None:
    journaled: Journaled = journaled_tenant()
    tenant = journaled.tenant
    alarm_id = insert_alarm(db, tenant.patients[0], severity="red")
    headers = headers_for(api_url, tenant)
    body = {"resolution": "Snakket med pasienten, økte oksygen etter planen."}
    seen = watch.around(alarm_id, lambda: _post(api_url, headers, f"{alarm_id}/resolve", body))
    nurse = _user_id(db, tenant.nurse)
    assert seen.row["state"] == "resolved" and seen.row["resolved_by"] == nurse
    assert seen.row["resolution"] == body["resolution"]
    assert [(e["event"], e["data"]) for e in seen.events] == [("resolved", body)]
    assert [a["action"] for a in seen.audit] == ["resolve"]
    assert _announced(seen, "api", alarm_id)
    assert [j["kind"] for j in seen.journal] == ["alarm_document"]


def test_a_group_resolve_journals_each_alarm_and_audits_the_patient(
    journaled_tenant: Any, api_url: str, db: psycopg.Connection[Any], watch: Watch
) -> None:
    journaled: Journaled = journaled_tenant()
    tenant = journaled.tenant
    first = insert_alarm(db, tenant.patients[0], severity="red")
    second = insert_alarm(db, tenant.patients[0], severity="yellow")
    headers = headers_for(api_url, tenant)
    body = {"alarm_ids": [str(first), str(second)], "text": "Målt på nytt sammen med pasienten."}
    seen = watch.around(first, lambda: _post(api_url, headers, "group/resolve", body))
    assert seen.row["state"] == "resolved"
    assert [e["event"] for e in seen.events] == ["resolved"] and seen.events[0]["data"]["group"] == 2
    assert [a["action"] for a in seen.audit] == ["resolve"]
    assert _announced(seen, "api", first) and _announced(seen, "api", second)
    queued = db.execute(
        "SELECT alarm_id FROM journal_outbox WHERE alarm_id = ANY(%s::uuid[]) ORDER BY alarm_id", ([first, second],)
    ).fetchall()
    assert sorted(r[0] for r in queued) == sorted([first, second])


def test_a_nurse_escalates_and_a_notice_is_queued_once(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any], watch: Watch
) -> None:
    tenant = make_tenant()
    alarm_id = insert_alarm(db, tenant.patients[0], severity="red")
    headers = headers_for(api_url, tenant)
    seen = watch.around(alarm_id, lambda: _post(api_url, headers, f"{alarm_id}/escalate"))
    assert seen.row["escalated_at"] is not None and seen.row["state"] == "open"
    assert [(e["event"], e["data"]) for e in seen.events] == [("escalated", {"manual": True})]
    assert [a["action"] for a in seen.audit] == ["escalate"]
    assert _announced(seen, "api", alarm_id) and seen.journal == []
    again = httpx.post(f"{api_url}/api/v1/alarms/{alarm_id}/escalate", headers=headers, timeout=30)
    assert again.status_code == 409


def test_the_timed_job_escalates_an_overdue_red_alarm_once_without_audit(
    make_tenant: Any, db: psycopg.Connection[Any], watch: Watch
) -> None:
    patient = make_tenant().patients[0]
    overdue = insert_alarm(db, patient, severity="red", opened_minutes_ago=30)
    recent = insert_alarm(db, patient, severity="red", opened_minutes_ago=1)
    escalated: list[UUID] = []

    def tick() -> None:
        with db.transaction():
            escalated.extend(alarms.escalate_overdue(db, 15))

    seen = watch.around(overdue, tick)
    assert overdue in escalated and recent not in escalated
    assert seen.row["escalated_at"] is not None and seen.row["state"] == "open"
    assert [(e["event"], e["data"], e["actor_id"]) for e in seen.events] == [("escalated", {"after_minutes": 15}, None)]
    assert _announced(seen, "escalation", overdue) and not _announced(seen, "escalation", recent)
    assert seen.audit == [] and seen.journal == []
    with db.transaction():
        assert overdue not in alarms.escalate_overdue(db, 15)
