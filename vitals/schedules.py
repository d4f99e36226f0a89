"""Need-driven measurement schedules, the shared part: which schedule is in force while step-ups are active, and
the plain words the patient and the nurse read about it ("Mål vekt to ganger daglig de neste 5 dagene").

Pure functions of the plan, so the cloud (what it publishes, what the missed-measurement rule judges) and the gateway
(what it shows and reminds of, also offline) agree on the same schedule and the same sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from vitals.kinds import KINDS, Kind
from vitals.plan import ActiveStep, PlanContent, ScheduledMeasurement, ScheduleStep, SelfManagementPlan

ZONE_RANK = {"yellow": 1, "red": 2}

_PATIENT_WORDS: dict[Kind, tuple[str, str, str]] = {
    # what to measure (nb), the same in the definite form (nb), in English
    Kind.BODY_WEIGHT: ("vekt", "vekten", "weight"),
    Kind.BP_SYSTOLIC: ("blodtrykk", "blodtrykket", "blood pressure"),
    Kind.BP_DIASTOLIC: ("blodtrykk", "blodtrykket", "blood pressure"),
    Kind.SPO2: ("oksygenmetning", "oksygenmetningen", "oxygen level"),
    Kind.PULSE_RATE: ("puls", "pulsen", "pulse"),
    Kind.GLUCOSE: ("blodsukker", "blodsukkeret", "blood sugar"),
    Kind.BODY_TEMPERATURE: ("temperatur", "temperaturen", "temperature"),
}
_TIMES_NB = {1: "én gang daglig", 2: "to ganger daglig", 3: "tre ganger daglig", 4: "fire ganger daglig"}
_TIMES_EN = {1: "once a day", 2: "twice a day", 3: "three times a day", 4: "four times a day"}


def step_of(plan: PlanContent, kind: Kind, zone: str) -> ScheduleStep | None:
    return next((s for s in plan.step_ups if s.kind == kind and s.zone == zone), None)


def effective_content(plan: PlanContent, active: Iterable[tuple[Kind, str]]) -> PlanContent:
    """The plan with its active step-ups applied: a step's entries replace the plan's entries of the same kinds
    (of two active steps scheduling one kind, the red one wins), and its questionnaires get its daily deadline."""
    steps = [s for kind, zone in active if (s := step_of(plan, kind, zone)) is not None]
    if not steps:
        return plan
    steps.sort(key=lambda s: -ZONE_RANK[s.zone])
    claimed: dict[Kind, list[ScheduledMeasurement]] = {}
    deadlines: dict[str, str] = {}
    for step in steps:
        mine: dict[Kind, list[ScheduledMeasurement]] = {}
        for entry in step.schedule:
            if entry.kind not in claimed:
                mine.setdefault(entry.kind, []).append(entry)
        claimed.update(mine)
        for q in step.questionnaires:
            deadlines.setdefault(q.id, q.deadline)
    schedule = [e for e in plan.schedule if e.kind not in claimed]
    schedule += [e for entries in claimed.values() for e in entries]
    questionnaires = [
        q.model_copy(update={"deadline": deadlines[q.id]}) if q.id in deadlines else q for q in plan.questionnaires
    ]
    return plan.model_copy(update={"schedule": schedule, "questionnaires": questionnaires})


def _kind_words(kind: Kind) -> tuple[str, str, str]:
    info = KINDS[kind]
    return _PATIENT_WORDS.get(kind, (info.name_nb.lower(), info.name_nb.lower(), info.name_en.lower()))


def _times(count: int, table: dict[int, str], many: str) -> str:
    return table.get(count, many.format(n=count))


def _join(parts: Sequence[str], word: str) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {word} {parts[-1]}"


def step_notice(plan: PlanContent, active: ActiveStep, today: date) -> tuple[str, str]:
    """What a step-up asks of the patient, in plain bokmål and English, as seen on `today` (local date)."""
    step = step_of(plan, active.kind, active.zone)
    entries = step.schedule if step is not None else []
    counts: dict[tuple[str, str, str], int] = {}
    for entry in entries:
        words = _kind_words(entry.kind)
        counts[words] = counts.get(words, 0) + 1
    what_nb = [f"{nb} {_times(n, _TIMES_NB, '{n} ganger daglig')}" for (nb, _, _), n in counts.items()]
    what_en = [f"{en} {_times(n, _TIMES_EN, '{n} times a day')}" for (_, _, en), n in counts.items()]
    left = (active.until - today).days
    if left > 1:
        when_nb = f"de neste {left} dagene"
        when_en = f"for the next {left} days"
    elif left == 1:
        when_nb, when_en = "ut dagen i dag", "for the rest of today"
    else:
        more = max(1, active.green_days_needed - active.green_days)
        _, kind_nb, kind_en = _kind_words(active.kind)
        if more == 1:
            when_nb = f"til {kind_nb} har vært i orden én dag til"
            when_en = f"until your {kind_en} has been fine for one more day"
        else:
            when_nb = f"til {kind_nb} har vært i orden {more} dager til"
            when_en = f"until your {kind_en} has been fine for {more} more days"
    nb = f"Mål {_join(what_nb, 'og')} {when_nb}." if what_nb else ""
    en = f"Measure {_join(what_en, 'and')} {when_en}." if what_en else ""
    titles = {q.id: (q.title_nb, q.title_en) for q in plan.questionnaires}
    for q in step.questionnaires if step is not None else []:
        title_nb, title_en = titles.get(q.id, (q.id, q.id))
        nb += f" Svar også på «{title_nb}» hver dag før kl. {q.deadline}."
        en += f" Also answer “{title_en}” every day before {q.deadline}."
    return nb.strip(), en.strip()


def plan_notices(plan: SelfManagementPlan, today: date) -> list[dict[str, str]]:
    """One notice per active step-up of a published plan (newest first), for the patient's page."""
    steps = sorted(plan.active_steps, key=lambda s: s.since, reverse=True)
    out: list[dict[str, str]] = []
    for active in steps:
        nb, en = step_notice(plan, active, today)
        out.append(
            {"kind": active.kind.value, "zone": active.zone, "until": active.until.isoformat(), "nb": nb, "en": en}
        )
    return out


__all__ = ["ZONE_RANK", "effective_content", "plan_notices", "step_notice", "step_of"]
