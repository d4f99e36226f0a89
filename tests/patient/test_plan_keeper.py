"""The gateway keeps the last good plan: bad checksums, older versions and changed content are refused."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.patient.plan_keeper import PlanKeeper
from edge_agent.plan_store import PlanStore
from tests.patient.plans import plan, wire
from vitals import plan_topic

TOPIC = plan_topic("gw-test-0001")


def keeper(tmp_path: Path, changes: list[str] | None = None) -> PlanKeeper:
    seen = changes if changes is not None else []
    return PlanKeeper(PlanStore(tmp_path / "plan.sqlite"), on_change=lambda: seen.append("changed"))


def test_a_good_plan_is_kept_and_survives_a_restart(tmp_path: Path) -> None:
    changes: list[str] = []
    first = keeper(tmp_path, changes)
    assert first.receive(TOPIC, wire(1)) == "accepted"
    assert first.plan is not None and first.plan.version == 1 and changes == ["changed"]
    assert first.receive(TOPIC, wire(1)) == "unchanged"
    again = keeper(tmp_path)
    assert again.plan is not None and again.plan.version == 1 and again.problem is None


def test_a_corrupt_plan_is_refused_and_the_last_good_one_kept_also_after_a_restart(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    k.receive(TOPIC, wire(1))
    doc = json.loads(wire(2))
    doc["zones"][0]["red_high"] = 150.0
    assert k.receive(TOPIC, json.dumps(doc).encode()) == "refused"
    assert k.plan is not None and k.plan.version == 1
    assert k.problem is not None and "checksum mismatch" in k.problem
    assert keeper(tmp_path).plan.version == 1  # type: ignore[union-attr]
    assert k.receive(TOPIC, wire(2)) == "accepted" and k.problem is None and k.plan.version == 2


def test_versions_never_go_back_and_a_version_never_changes(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    k.receive(TOPIC, wire(3))
    assert k.receive(TOPIC, wire(2)) == "refused"
    assert "older than the plan in use (3)" in (k.problem or "")
    assert k.receive(TOPIC, wire(3, diagnosis="I50.1")) == "refused"
    assert "arrived again with different content" in (k.problem or "")
    assert k.plan is not None and k.plan.version == 3 and k.plan.diagnosis == "I50.9"


def test_a_cleared_retained_plan_keeps_the_last_one(tmp_path: Path) -> None:
    k = keeper(tmp_path)
    k.receive(TOPIC, wire(1))
    assert k.receive(TOPIC, b"") == "cleared"
    assert k.plan is not None and k.plan.version == 1


def test_an_unusable_stored_plan_is_reported_not_used(tmp_path: Path) -> None:
    store = PlanStore(tmp_path / "plan.sqlite")
    store.save(TOPIC, b'{"schema": "varde.plan/1"}')
    k = PlanKeeper(store)
    assert k.plan is None and k.problem is not None and "stored plan cannot be used" in k.problem


def test_a_stepped_up_schedule_of_the_same_version_is_taken_by_its_revision(tmp_path: Path) -> None:
    def revised(revision: int, deadline: str) -> bytes:
        base = plan(3)
        schedule = [e.model_copy(update={"deadline": deadline}) for e in base.schedule]
        return base.model_copy(update={"schedule_revision": revision, "schedule": schedule}).to_json()

    k = keeper(tmp_path)
    k.receive(TOPIC, wire(3))
    assert k.receive(TOPIC, revised(1, "07:00")) == "accepted"
    assert k.plan is not None and k.plan.schedule_revision == 1 and k.plan.schedule[0].deadline == "07:00"
    assert k.receive(TOPIC, wire(3)) == "refused"  # the stepped-down schedule is revision 2, never 0 again
    assert "3 is older than the plan in use (3 (schedule revision 1))" in (k.problem or "")
    assert k.receive(TOPIC, revised(2, "09:00")) == "accepted"
    assert k.receive(TOPIC, wire(4)) == "accepted"  # a new plan version is newer whatever its revision
