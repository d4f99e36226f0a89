"""The patient's screen as data: the plan in use, the latest measurement judged by it, today's schedule, the
questionnaires, the latest receipt — gathered into one JSON snapshot that the local page renders.

Everything here works without the broker: readings are judged the moment the agent has committed them to the
outbox, and a questionnaire answer is committed to its own durable queue before the page is told it was saved.
`changes` wakes the page's event streams from any thread (plan and receipt messages arrive on the publisher's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from edge_agent.outbox import Outbox
from edge_agent.patient.advice import advice_for, evaluate_measurement
from edge_agent.patient.journal import LastAnswer, Measurement, PatientJournal
from edge_agent.patient.plan_keeper import PlanKeeper
from edge_agent.patient.schedule import todays_schedule
from edge_agent.plan_store import PlanStore
from vitals import (
    KINDS,
    Kind,
    QuestionnaireResponse,
    Reading,
    Receipt,
    RepeatRequest,
    SelfManagementPlan,
    parse_patient_message,
    score_answers,
)
from vitals.plan import Questionnaire
from vitals.questionnaire import AnswerError
from vitals.schedules import plan_notices

log = logging.getLogger(__name__)

Language = Literal["nb", "en"]
_HIDDEN_PARTS = frozenset({Kind.BP_MEAN})
"""Measured and judged, but not shown: the mean pressure means nothing to most patients."""
_PART_ORDER = {k: i for i, k in enumerate(Kind)}
_MESSAGE_NOTICE_FOR = timedelta(days=7)
"""How long the page says that the team has answered a message (it cannot know whether it was read since)."""
_BLOOD_PRESSURE = ("blodtrykket", "your blood pressure")
_MEASURE_AGAIN: dict[Kind, tuple[str, str]] = {
    Kind.BP_SYSTOLIC: _BLOOD_PRESSURE,
    Kind.BP_DIASTOLIC: _BLOOD_PRESSURE,
    Kind.BP_MEAN: _BLOOD_PRESSURE,
    Kind.PULSE_RATE: ("pulsen", "your pulse"),
    Kind.HEART_RATE: ("pulsen", "your pulse"),
    Kind.SPO2: ("oksygenet i blodet", "the oxygen in your blood"),
    Kind.BODY_TEMPERATURE: ("temperaturen", "your temperature"),
    Kind.BODY_WEIGHT: ("vekten", "your weight"),
    Kind.GLUCOSE: ("blodsukkeret", "your blood sugar"),
    Kind.RESP_RATE: ("pusten", "your breathing"),
}
"""What the page asks the patient to measure again, in everyday words."""


class NoPlanError(LookupError):
    """The gateway has no plan yet (or the plan has no such questionnaire)."""


class QueueFullError(RuntimeError):
    """The questionnaire queue is full: the gateway has been offline far too long."""


class ChangeFeed:
    """Wakes the open event streams of the page. `notify` may be called from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[None]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[None]) -> None:
        self._queues.discard(queue)

    def notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fire()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        for queue in list(self._queues):
            if queue.empty():
                queue.put_nowait(None)


def _measurements(readings: Sequence[Reading]) -> list[Measurement]:
    """Group readings into measurement acts: the same `group`, else each reading alone."""
    groups: dict[str, list[Reading]] = {}
    for reading in readings:
        groups.setdefault(reading.group or str(reading.id), []).append(reading)
    return [Measurement(max(r.measured_at for r in rs), tuple((r.kind, r.value) for r in rs)) for rs in groups.values()]


def _value_text(kind: Kind, value: float) -> str:
    return f"{value:.{KINDS[kind].decimals}f}"


class PatientScreen:
    def __init__(
        self,
        *,
        plans: PlanStore,
        journal_path: Path,
        questionnaire_queue: Outbox,
        timezone: str,
        language: Language = "nb",
        connected: Callable[[], bool] = lambda: False,
        pending_readings: Callable[[], int] = lambda: 0,
        wake_publisher: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.changes = ChangeFeed()
        self.plans = PlanKeeper(plans, on_change=self.changes.notify)
        self.journal = PatientJournal(journal_path)
        self.language: Language = language
        self._queue = questionnaire_queue
        self._timezone = timezone
        self._connected = connected
        self._pending_readings = pending_readings
        self._wake_publisher = wake_publisher
        self.clock = clock
        """Where "now" comes from; a test or a demo may set another clock."""
        self._lock = threading.Lock()
        self._latest = self.journal.latest_measurement()
        self._receipt = self.journal.last_receipt()
        self._answered = self.journal.last_receipt("message_answered")
        self._repeats = self.journal.repeat_requests()

    def close(self) -> None:
        self.journal.close()

    # ---- inputs --------------------------------------------------------------------------------------------

    def observe(self, readings: Sequence[Reading]) -> None:
        """Readings the agent has just committed to its outbox: remember them and show the newest measurement."""
        if not readings:
            return
        self.journal.record_times([(r.kind, r.measured_at) for r in readings])
        newest = max(_measurements(readings), key=lambda m: m.measured_at)
        with self._lock:
            if self._latest is not None and newest.measured_at < self._latest.measured_at:
                newest = self._latest
            changed = newest is not self._latest
            self._latest = newest
        if changed:
            self.journal.record_measurement(newest)
        self._measured_again(readings)
        self.changes.notify()

    def _measured_again(self, readings: Sequence[Reading]) -> None:
        """A newer reading of a kind the cloud asked to measure again answers the request (no broker needed)."""
        newest: dict[Kind, datetime] = {}
        for r in readings:
            newest[r.kind] = max(newest.get(r.kind, r.measured_at), r.measured_at)
        with self._lock:
            done = [k for k, req in self._repeats.items() if k in newest and newest[k] > req.measured_at]
            for kind in done:
                del self._repeats[kind]
        if done:
            self.journal.drop_repeats(done)
            log.info("repeat_measured kinds=%s", ",".join(k.value for k in done))

    def answer(self, questionnaire_id: str, chosen: Mapping[str, str]) -> QuestionnaireResponse:
        """Score the answers by the plan and commit the response to the durable queue; returns it once on disk."""
        plan = self.plans.plan
        questionnaire = next((q for q in plan.questionnaires if q.id == questionnaire_id), None) if plan else None
        if plan is None or questionnaire is None:
            raise NoPlanError(f"the plan in use has no questionnaire {questionnaire_id!r}")
        score = score_answers(questionnaire, chosen)
        response = QuestionnaireResponse(
            id=uuid.uuid4(),
            questionnaire=questionnaire.id,
            plan_version=plan.version,
            answered_at=self.clock().replace(microsecond=0),
            answers=score.answers,
            score=score.total,
            zone=score.zone,
        )
        result = self._queue.put_raw([(str(response.id), response.model_dump_json().encode(), time.time())])
        if result.refused:
            raise QueueFullError("the gateway's questionnaire queue is full")
        self.journal.record_answer(response)
        log.info(
            "questionnaire_answered questionnaire=%s score=%d zone=%s queued=%d",
            response.questionnaire,
            response.score,
            response.zone,
            self._queue.depth,
        )
        self._wake_publisher()
        self.changes.notify()
        return response

    def receive_receipt(self, payload: bytes) -> None:
        """A message of the receipts topic (publisher thread): a `varde.receipt/1` or a `varde.repeat/1`."""
        try:
            message = parse_patient_message(payload)
        except (ValidationError, ValueError) as exc:
            log.warning("receipt_refused error=%s", str(exc).splitlines()[0])
            return
        if isinstance(message, RepeatRequest):
            self._receive_repeat(message)
            return
        receipt = message
        with self._lock:
            held = self._receipt if receipt.event == "readings_seen" else self._answered
            if held is not None and receipt.at <= held.at:
                return
            if receipt.event == "readings_seen":
                self._receipt = receipt
            else:
                self._answered = receipt
        self.journal.record_receipt(receipt)
        log.info("receipt_received event=%s at=%s", receipt.event, receipt.at.isoformat())
        self.changes.notify()

    def _receive_repeat(self, request: RepeatRequest) -> None:
        with self._lock:
            known = self._repeats.get(request.kind)
            if known is not None and request.requested_at <= known.requested_at:
                return
            latest = self._latest
            measured_since = (
                latest is not None
                and latest.measured_at > request.measured_at
                and any(kind == request.kind for kind, _ in latest.parts)
            )
            if not measured_since:
                self._repeats[request.kind] = request
        if measured_since:
            log.info("repeat_already_measured kind=%s", request.kind.value)
            return
        self.journal.record_repeat(request)
        log.info("repeat_requested kind=%s due_at=%s", request.kind.value, request.due_at.isoformat())
        self.changes.notify()

    # ---- output --------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, in both languages; times already in the patient's time zone."""
        now = self.clock()
        plan = self.plans.plan
        tz = ZoneInfo(plan.timezone if plan is not None else self._timezone)
        with self._lock:
            latest, receipt, answered = self._latest, self._receipt, self._answered
            repeats = list(self._repeats.values())
        answers = self.journal.last_answers()
        doc: dict[str, Any] = {
            "now": now.isoformat(),
            "today": now.astimezone(tz).date().isoformat(),
            "timezone": tz.key,
            "language": self.language,
            "connected": self._connected(),
            "pending": {"readings": self._pending_readings(), "questionnaires": self._queue.depth},
            "plan": None,
            "plan_problem": self.plans.problem,
            "latest": None,
            "schedule": [],
            "schedule_notices": [],
            "questionnaires": [],
            "receipt": None,
            "message": None,
            "repeat": [],
        }
        if latest is not None:
            verdict = evaluate_measurement(plan, latest.parts)
            parts = sorted((p for p in verdict.parts if p.kind not in _HIDDEN_PARTS), key=lambda p: _PART_ORDER[p.kind])
            local = latest.measured_at.astimezone(tz)
            doc["latest"] = {
                "measured_at": latest.measured_at.isoformat(),
                "time": local.strftime("%H:%M"),
                "date": local.date().isoformat(),
                "zone": verdict.zone,
                "advice": {"nb": verdict.advice.nb, "en": verdict.advice.en} if verdict.advice else None,
                "parts": [
                    {
                        "kind": p.kind.value,
                        "name_nb": KINDS[p.kind].name_nb,
                        "name_en": KINDS[p.kind].name_en,
                        "value": _value_text(p.kind, p.value),
                        "unit": KINDS[p.kind].unit_display,
                        "zone": p.zone,
                    }
                    for p in parts
                ],
            }
        if plan is not None:
            doc["plan"] = {
                "version": plan.version,
                "issued_at": plan.issued_at.isoformat(),
                "contacts": [c.model_dump() for c in plan.contacts],
            }
            start = now - timedelta(days=1, hours=2)
            measured = self.journal.measured_since(start)
            done_at = {q: a.answered_at for q, a in answers.items()}
            titles = {q.id: (q.title_nb, q.title_en) for q in plan.questionnaires}
            doc["schedule"] = [
                {
                    "id": item.id,
                    "what": item.what,
                    "key": item.key,
                    "name_nb": KINDS[Kind(item.key)].name_nb if item.what == "measurement" else titles[item.key][0],
                    "name_en": KINDS[Kind(item.key)].name_en if item.what == "measurement" else titles[item.key][1],
                    "deadline": item.deadline.strftime("%H:%M"),
                    "remind_from": item.remind_from.strftime("%H:%M"),
                    "state": item.state,
                    "done_at": item.done_at.astimezone(tz).strftime("%H:%M") if item.done_at else None,
                }
                for item in todays_schedule(plan, now, measured, done_at)
            ]
            doc["schedule_notices"] = plan_notices(plan, now.astimezone(tz).date())
            doc["questionnaires"] = [self._questionnaire(plan, q, answers.get(q.id), tz) for q in plan.questionnaires]
        if receipt is not None:
            doc["receipt"] = self._receipt_doc(receipt, now, tz)
        if answered is not None and now - answered.at <= _MESSAGE_NOTICE_FOR:
            doc["message"] = self._message_doc(answered, now, tz)
        doc["repeat"] = [
            self._repeat_doc(r, tz) for r in sorted(repeats, key=lambda r: _PART_ORDER[r.kind]) if r.due_at > now
        ]
        return doc

    @staticmethod
    def _questionnaire(
        plan: SelfManagementPlan, q: Questionnaire, last: LastAnswer | None, tz: ZoneInfo
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": q.id,
            "title_nb": q.title_nb,
            "title_en": q.title_en,
            "deadline": q.deadline,
            "questions": [
                {
                    "id": question.id,
                    "nb": question.nb,
                    "en": question.en,
                    "options": [{"id": o.id, "nb": o.nb, "en": o.en} for o in question.options],
                }
                for question in q.questions
            ],
            "last": None,
        }
        if last is not None:
            advice = advice_for(plan, last.zone)
            local = last.answered_at.astimezone(tz)
            doc["last"] = {
                "date": local.date().isoformat(),
                "time": local.strftime("%H:%M"),
                "score": last.score,
                "zone": last.zone,
                "advice": {"nb": advice.nb, "en": advice.en},
            }
        return doc

    @staticmethod
    def _repeat_doc(request: RepeatRequest, tz: ZoneInfo) -> dict[str, Any]:
        nb, en = _MEASURE_AGAIN.get(
            request.kind, (KINDS[request.kind].name_nb.lower(), KINDS[request.kind].name_en.lower())
        )
        return {
            "kind": request.kind.value,
            "id": str(request.id),
            "measured_time": request.measured_at.astimezone(tz).strftime("%H:%M"),
            "nb": f"Mål {nb} en gang til. Sitt stille i fem minutter først.",
            "en": f"Please measure {en} once more. Sit still for five minutes first.",
        }

    @staticmethod
    def _receipt_doc(receipt: Receipt, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
        local = receipt.at.astimezone(tz)
        clock = local.strftime("%H:%M")
        if local.date() == now.astimezone(tz).date():
            nb = f"Målingene dine ble sett av sykepleier kl. {clock}"
            en = f"Your measurements were seen by the nurse at {clock}"
        else:
            nb = f"Målingene dine ble sett av sykepleier {local.strftime('%d.%m.')} kl. {clock}"
            en = f"Your measurements were seen by the nurse on {local.strftime('%d %b')} at {clock}"
        return {"at": receipt.at.isoformat(), "time": clock, "nb": nb, "en": en}

    @staticmethod
    def _message_doc(receipt: Receipt, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
        """Only that there is an answer, and where to read it: the answer stays in Min oppfølging."""
        local = receipt.at.astimezone(tz)
        clock = local.strftime("%H:%M")
        if local.date() == now.astimezone(tz).date():
            nb_when, en_when = f"kl. {clock}", f"at {clock}"
        else:
            nb_when, en_when = f"{local.strftime('%d.%m.')} kl. {clock}", f"on {local.strftime('%d %b')} at {clock}"
        return {
            "at": receipt.at.isoformat(),
            "time": clock,
            "nb": f"Behandlingsteamet svarte på meldingen din {nb_when}. Les svaret i Min oppfølging.",
            "en": f"The care team answered your message {en_when}. Read the answer in My follow-up.",
        }


__all__ = ["AnswerError", "ChangeFeed", "NoPlanError", "PatientScreen", "QueueFullError"]
