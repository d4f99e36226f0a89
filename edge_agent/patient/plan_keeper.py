"""The gateway's judge of plan messages: verifies each one and keeps the last good plan.

A plan message is used only when it parses as `varde.plan/1`, its sha256 checksum matches, and its version and
schedule revision are not older than the plan in use (the same again must be the same plan): a stepped-up or
stepped-down schedule of the same plan version comes with a higher `schedule_revision`. Anything else is refused with
a logged reason that the gateway status reports; the patient keeps seeing the last good plan, also after a restart
(the good payload is what `PlanStore` keeps on disk). An empty retained message (the cloud retiring the plan) never
erases it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from edge_agent.plan_store import PlanStore
from vitals import PlanMessageError, SelfManagementPlan, parse_plan_message

log = logging.getLogger(__name__)

Outcome = Literal["accepted", "unchanged", "refused", "cleared"]


def _label(version: tuple[int, int]) -> str:
    return f"{version[0]}" if version[1] == 0 else f"{version[0]} (schedule revision {version[1]})"


class PlanKeeper:
    """Thread-safe: plan messages arrive on the publisher thread, the screen reads from the event loop."""

    def __init__(self, store: PlanStore, on_change: Callable[[], None] | None = None) -> None:
        self._store = store
        self._on_change = on_change
        self._lock = threading.Lock()
        self._plan: SelfManagementPlan | None = None
        self._digest: str | None = None
        self._received_at: datetime | None = None
        self._problem: str | None = None
        stored = store.latest()
        if stored is not None:
            try:
                self._plan = parse_plan_message(stored.payload)
                self._digest = self._plan.digest
                self._received_at = stored.received_at
            except PlanMessageError as exc:
                self._problem = f"the stored plan cannot be used: {exc}"
                log.error("plan_store_unusable error=%s", exc)

    @property
    def plan(self) -> SelfManagementPlan | None:
        with self._lock:
            return self._plan

    @property
    def problem(self) -> str | None:
        """Why the latest plan message was refused; None once a good plan arrives."""
        with self._lock:
            return self._problem

    @property
    def received_at(self) -> datetime | None:
        with self._lock:
            return self._received_at

    def receive(self, topic: str, payload: bytes, retained: bool = False) -> Outcome:
        """Judge one message from the plan topic; keeps it (on disk first) only if it is a good, newer plan."""
        if not payload:
            log.warning("plan_cleared_on_broker kept_last_plan=true")
            return "cleared"
        try:
            plan = parse_plan_message(payload)
        except PlanMessageError as exc:
            return self._refuse(str(exc), len(payload))
        digest = plan.digest
        with self._lock:
            current, current_digest = self._plan, self._digest
        if current is not None:
            new, used = (plan.version, plan.schedule_revision), (current.version, current.schedule_revision)
            if new < used:
                return self._refuse(f"version {_label(new)} is older than the plan in use ({_label(used)})", 0)
            if new == used:
                if digest == current_digest:
                    return "unchanged"
                return self._refuse(f"version {_label(new)} arrived again with different content", 0)
        received_at = datetime.now(UTC)
        self._store.save(topic, payload, received_at)
        with self._lock:
            self._plan, self._digest, self._received_at, self._problem = plan, digest, received_at, None
        log.info("plan_accepted version=%d bytes=%d retained=%s", plan.version, len(payload), retained)
        self._changed()
        return "accepted"

    def _refuse(self, why: str, size: int) -> Outcome:
        with self._lock:
            self._problem = why
            kept = self._plan.version if self._plan is not None else None
        log.error("plan_refused reason=%r bytes=%d kept_version=%s", why, size, kept)
        self._changed()
        return "refused"

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
