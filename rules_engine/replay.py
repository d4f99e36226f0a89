"""Offline replay: readings evaluated in time order as they would have arrived, through the same pure core as ingest
(`rules_engine.evaluation.evaluate_patients`), with history and alarm state kept in memory.

Arrival: each patient's readings are cut into batches of `batch_s` (default 1 s: each measurement act — the
readings of one device at one moment — is its own batch, as the gateway sends it); a batch sees as
history what the runtime's history query gives (`HISTORY_PER_KIND` newest readings per kind of `HISTORY_KINDS`
from `HISTORY_DAYS` before the batch's earliest reading, the batch excluded). Many patients' batches are evaluated
in one call, each as its own patient row, so the result equals one ingest batch per patient and window.

Alarm state follows ingest: one open alarm per (patient, rule), later candidates update it; a nurse resolves each
alarm `resolve_after_s` after it was raised, after which the rule can raise again. A candidate that awaits a
repeat (`awaits_repeat`) opens no alarm at once: the next reading of its kind within `repeat_timeout_s` is taken as
the repeat (it confirms when it breaches the same side, else clears); with no reading in time the alarm opens at
the timeout — "no repeat came". Missed-measurement alarms come from a plan's schedule (`missed_candidates`).

Personal limits: as the scheduler recomputes them daily in production, the replay recomputes every patient's
personal baselines at each UTC midnight from the readings before it (`rules_engine.personal.compute_baselines`, the
function the scheduler calls); a batch is evaluated with the baselines of the midnight before its earliest reading.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from rules_engine.evaluation import HISTORY_DAYS, HISTORY_KINDS, HISTORY_PER_KIND, RuleInputs, evaluate_patients
from rules_engine.kinds_index import KIND_INDEX, N_KINDS
from rules_engine.personal import BASELINE_KINDS, LAG_DAYS, WINDOW_DAYS, PersonalBaselines, compute_baselines
from rules_engine.profiles import Limit, LimitOverrides, TrendOverrides, limit_column, trend_column
from rules_engine.readings import FloatArray, IntArray, ReadingArrays
from rules_engine.repeats import DEFAULT_TIMEOUT_MINUTES, awaits_repeat
from rules_engine.thresholds import NO_BREACH
from rules_engine.trends import DAY_S
from vitals import Kind
from vitals.plan import PlanContent
from vitals.readings_csv import CsvRowError, check_header, parse_row

DEFAULT_RESOLVE_AFTER_S = DAY_S
DEFAULT_BATCH_S = 1
_HISTORY_KIND_IDX = np.array(sorted(KIND_INDEX[k] for k in HISTORY_KINDS), dtype=np.int64)
_CALL_READINGS = 200_000
"""Batch plus history rows per call of the core: big enough to amortise it, small enough for the cache."""
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class ReplayReadings:
    """Readings as columns; `patient_row` indexes `patient_ids`."""

    patient_ids: tuple[str, ...]
    patient_row: IntArray
    kind_idx: IntArray
    measured_at: IntArray
    value: FloatArray

    def __len__(self) -> int:
        return len(self.patient_row)

    @classmethod
    def of(cls, rows: Iterable[tuple[str, Kind, float, datetime]]) -> ReplayReadings:
        """From (patient id, kind, value, aware time) tuples; patients numbered in order of first appearance."""
        row_of: dict[str, int] = {}
        patient, kind, at, value = [], [], [], []
        for pid, k, v, t in rows:
            patient.append(row_of.setdefault(pid, len(row_of)))
            kind.append(KIND_INDEX[k])
            at.append(int(t.timestamp()))
            value.append(v)
        return cls(
            tuple(row_of),
            np.array(patient, dtype=np.int64),
            np.array(kind, dtype=np.int64),
            np.array(at, dtype=np.int64),
            np.array(value, dtype=np.float64),
        )


def read_readings_csv(lines: Iterable[str], *, skip_invalid: bool = False) -> tuple[ReplayReadings, list[CsvRowError]]:
    """Parse the replay CSV. Strict (the default) raises the first bad row's `CsvRowError`; with `skip_invalid`
    bad rows are left out and returned. A bad header always raises."""
    import csv

    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise CsvRowError(1, "the file is empty (no header)")
    check_header(header)
    errors: list[CsvRowError] = []
    rows: list[tuple[str, Kind, float, datetime]] = []
    for fields in reader:
        if not fields:
            continue
        try:
            rows.append(parse_row(fields, reader.line_num))
        except CsvRowError as exc:
            if not skip_invalid:
                raise
            errors.append(exc)
    return ReplayReadings.of(rows), errors


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    patient_id: str
    rule: str
    kind: str | None
    severity: str
    raised_at: int
    """Epoch seconds."""

    def to_json(self) -> dict[str, str | None]:
        at = datetime.fromtimestamp(self.raised_at, tz=UTC).isoformat().replace("+00:00", "Z")
        return {
            "patient_id": self.patient_id,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "raised_at": at,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate as the alarm state sees it: when it arrived, and whether it waits for a repeat."""

    patient_row: int
    rule: str
    kind: str | None
    severity: str
    at: int
    waits: bool = False


@dataclass(slots=True)
class ReplayResult:
    alarms: list[RaisedAlarm]
    candidates: list[Candidate]
    readings: int
    batches: int
    seconds: float
    repeats: dict[str, int] = field(default_factory=dict)
    """How the candidates that awaited a repeat ended: confirmed, cleared (back in range), expired (none came)."""

    @property
    def readings_per_minute(self) -> float:
        return self.readings / self.seconds * 60 if self.seconds > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    resolve_after_s: int = DEFAULT_RESOLVE_AFTER_S
    repeat_timeout_s: int = DEFAULT_TIMEOUT_MINUTES * 60
    """0: nothing waits for a repeat."""
    batch_s: int = DEFAULT_BATCH_S
    """Each patient's readings within one window of this many seconds (UTC) reach ingest as one batch."""

    def __post_init__(self) -> None:
        if self.batch_s < 1 or self.resolve_after_s < 0 or self.repeat_timeout_s < 0:
            raise ValueError("batch must be at least 1 s; resolve-after and repeat timeout must not be negative")


def plan_overrides(plan: PlanContent, n_patients: int) -> LimitOverrides | None:
    """The plan's zones as every patient's threshold overrides, the way activating a plan writes them: a zone
    replaces all four limits of its kind, a limit it leaves out is "no limit" (NaN)."""
    cells = [
        (kind_limit, value)
        for zone in plan.zones
        for kind_limit, value in (
            ((KIND_INDEX[zone.kind], limit_column(name)), np.nan if v is None else float(v))
            for name, v in zip(("red_low", "yellow_low", "yellow_high", "red_high"), zone.limits(), strict=True)
        )
    ]
    if not cells or n_patients == 0:
        return None
    rows = np.repeat(np.arange(n_patients), len(cells))
    kinds = np.tile([c[0][0] for c in cells], n_patients)
    limits = np.tile([c[0][1] for c in cells], n_patients)
    values = np.tile([c[1] for c in cells], n_patients)
    return LimitOverrides.of(rows, kinds, limits, values)


def uniform_inputs(n_patients: int, protocol: str, plan: PlanContent | None = None) -> RuleInputs:
    """Every patient on one protocol with one plan's zones, trend settings, SpO2 scale and home oxygen (what
    `varde rules replay` evaluates; activating the plan writes the same into the database for ingest)."""
    if plan is None:
        return RuleInputs(protocols=(protocol,) * n_patients)
    return RuleInputs(
        protocols=(protocol,) * n_patients,
        limit_overrides=plan_overrides(plan, n_patients),
        trend_overrides=_plan_trends(plan, n_patients),
        spo2_scale2=(plan.spo2_scale == 2,) * n_patients,
        on_oxygen=(plan.oxygen is not None,) * n_patients,
    )


INFER_WEIGHING_SHARE = 0.5
"""A patient who weighs on at least half of the days they measure anything is taken as a heart-failure patient:
daily weighing is the heart-failure self-care routine (ESC 2021 heart-failure guideline, self-care), and no other
protocol asks for it."""


def infer_protocols(readings: ReplayReadings) -> tuple[str, ...]:
    """Each patient's protocol when none is given: heart failure for daily weighing (`INFER_WEIGHING_SHARE`),
    else general. Without it a heart-failure cohort would be replayed without its weight and combined rules."""
    n = len(readings.patient_ids)
    if n == 0:
        return ()
    day = readings.measured_at // DAY_S
    span = int(day.max() - day.min()) + 1
    key = readings.patient_row * span + (day - day.min())
    active = np.bincount(np.unique(key) // span, minlength=n)
    weighed_key = np.unique(key[readings.kind_idx == KIND_INDEX[Kind.BODY_WEIGHT]])
    weighed = np.bincount(weighed_key // span, minlength=n)
    daily = weighed >= INFER_WEIGHING_SHARE * np.maximum(active, 1)
    return tuple("heart_failure" if d else "general" for d in (daily & (weighed > 0)).tolist())


def _plan_trends(plan: PlanContent, n_patients: int) -> TrendOverrides | None:
    if not plan.trends or n_patients == 0:
        return None
    settings = [trend_column(t.setting) for t in plan.trends]
    values = [np.nan if t.value is None else float(t.value) for t in plan.trends]
    return TrendOverrides.of(
        np.repeat(np.arange(n_patients), len(settings)),
        np.tile(settings, n_patients),
        np.tile(values, n_patients),
    )


def _flatten(starts: IntArray, stops: IntArray) -> tuple[IntArray, IntArray]:
    """Concatenated aranges [start, stop) and, for each element, which range it came from."""
    lengths = np.maximum(stops - starts, 0)
    owner = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.cumsum(lengths) - lengths
    return starts[owner] + (np.arange(int(lengths.sum())) - offsets[owner]), owner


@dataclass(frozen=True, slots=True)
class _Sorted:
    """All readings sorted by (patient, kind, time): history windows are `searchsorted` ranges of `key`."""

    order: IntArray
    key: IntArray
    group: IntArray
    measured_at: IntArray
    t0: int
    span: int

    @classmethod
    def of(cls, r: ReplayReadings) -> _Sorted:
        t0 = int(r.measured_at.min()) - HISTORY_DAYS * DAY_S - 1
        span = int(r.measured_at.max()) - t0 + 2
        group = r.patient_row * N_KINDS + r.kind_idx
        key = group * span + (r.measured_at - t0)
        order = np.argsort(key, kind="stable")
        return cls(order, key[order], group[order], r.measured_at[order], t0, span)

    def position(self, group: IntArray, at: IntArray, side: Literal["left", "right"] = "left") -> IntArray:
        """Index of the first row of `group` at time >= `at` (side "left") or > `at` (side "right")."""
        at = np.clip(at, self.t0, self.t0 + self.span - 1)
        found: IntArray = np.searchsorted(self.key, group * self.span + (at - self.t0), side=side).astype(np.int64)
        return found


def replay(
    readings: ReplayReadings,
    inputs: RuleInputs,
    settings: ReplaySettings | None = None,
    *,
    schedule: PlanContent | None = None,
) -> ReplayResult:
    """Evaluate every reading in arrival order and raise alarms as ingest and a nurse would; with a `schedule`
    (a plan with a measurement schedule, for every patient) missed measurements raise `missed.<kind>` too."""
    settings = settings or ReplaySettings()
    started = time.perf_counter()
    n = len(readings)
    if n == 0:
        return ReplayResult([], [], 0, 0, time.perf_counter() - started)
    srt = _Sorted.of(readings)
    severity = np.zeros(n, dtype=np.int8)
    breached = np.full(n, NO_BREACH, dtype=np.int8)
    candidates: list[Candidate] = []

    # Batches: (patient, time slot). Ordered by slot so calls go forward in time.
    slot = readings.measured_at // settings.batch_s
    batch_key = slot * (len(readings.patient_ids) + 1) + readings.patient_row
    by_batch = np.argsort(batch_key, kind="stable")
    starts = np.flatnonzero(np.concatenate([[True], np.diff(batch_key[by_batch]) != 0]))
    stops = np.append(starts[1:], n)
    n_batches = len(starts)
    # History rows per batch, to size the calls.
    patient_of_batch = readings.patient_row[by_batch[starts]]
    earliest = np.minimum.reduceat(readings.measured_at[by_batch], starts)
    groups = patient_of_batch[:, None] * N_KINDS + _HISTORY_KIND_IDX[None, :]
    hi = srt.position(groups, np.broadcast_to(earliest[:, None], groups.shape))
    since = np.broadcast_to((earliest - HISTORY_DAYS * DAY_S)[:, None], groups.shape)
    lo = np.maximum(srt.position(groups, since), hi - HISTORY_PER_KIND)
    weight = (stops - starts) + (hi - lo).sum(axis=1)
    cut = np.searchsorted(
        np.cumsum(weight), np.arange(_CALL_READINGS, int(weight.sum()) + _CALL_READINGS, _CALL_READINGS)
    )
    bounds = np.unique(np.concatenate([[0], np.minimum(cut + 1, n_batches), [n_batches]]))
    day_of_batch = earliest // DAY_S
    daily = _DailyBaselines.of(readings, np.unique(day_of_batch))

    for b0, b1 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        _evaluate_call(
            readings,
            inputs,
            srt,
            by_batch,
            starts[b0:b1],
            stops[b0:b1],
            lo[b0:b1],
            hi[b0:b1],
            severity,
            breached,
            candidates,
            daily.of_batches(patient_of_batch[b0:b1], day_of_batch[b0:b1]),
        )

    if schedule is not None:
        candidates.extend(missed_candidates(readings, schedule, srt))
    alarms, outcomes = raise_alarms(candidates, readings, settings, severity=severity, breached=breached, srt=srt)
    return ReplayResult(alarms, candidates, n, n_batches, time.perf_counter() - started, outcomes)


@dataclass(frozen=True, slots=True)
class _DailyBaselines:
    """Every patient's personal baselines as recomputed at each UTC midnight, keyed by (day, patient row)."""

    key: IntArray
    """day × n_patients + patient row of each baseline row, ascending."""
    rows: PersonalBaselines
    n_patients: int

    @classmethod
    def of(cls, r: ReplayReadings, days: IntArray) -> _DailyBaselines:
        """Baselines at the midnights starting `days` (days since the epoch), from the readings before each."""
        n_patients = len(r.patient_ids)
        wanted = np.isin(r.kind_idx, [KIND_INDEX[k] for k in BASELINE_KINDS])
        # The start of follow-up: each patient's first reading of a baseline kind (as the scheduler takes it).
        since = np.full(n_patients, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(since, r.patient_row[wanted], r.measured_at[wanted])
        by_time = np.flatnonzero(wanted)[np.argsort(r.measured_at[wanted], kind="stable")]
        times = r.measured_at[by_time]
        reach_s = round((WINDOW_DAYS + LAG_DAYS) * DAY_S)
        keys: list[IntArray] = []
        found: list[PersonalBaselines] = []
        for day in days.tolist():
            at = day * DAY_S
            pick = by_time[np.searchsorted(times, at - reach_s) : np.searchsorted(times, at)]
            if len(pick) == 0:
                continue
            window = ReadingArrays.of(r.patient_row[pick], r.kind_idx[pick], r.measured_at[pick], r.value[pick])
            baselines = compute_baselines(window, at, since)
            keys.append(day * n_patients + baselines.patient_row)
            found.append(baselines)
        if not found:
            return cls(np.zeros(0, dtype=np.int64), PersonalBaselines.empty(), n_patients)
        return cls(np.concatenate(keys), PersonalBaselines.concat(found), n_patients)

    def of_batches(self, patients: IntArray, days: IntArray) -> PersonalBaselines:
        """The baselines in force for each batch (patient `patients[i]` on day `days[i]`), on row i."""
        wanted = days * self.n_patients + patients
        lo = np.searchsorted(self.key, wanted, side="left")
        hi = np.searchsorted(self.key, wanted, side="right")
        pos, owner = _flatten(lo, hi)
        return self.rows.select(pos, owner)


def _evaluate_call(
    readings: ReplayReadings,
    inputs: RuleInputs,
    srt: _Sorted,
    by_batch: IntArray,
    starts: IntArray,
    stops: IntArray,
    lo: IntArray,
    hi: IntArray,
    severity: NDArray[np.int8],
    breached: NDArray[np.int8],
    out: list[Candidate],
    personal: PersonalBaselines,
) -> None:
    """One call of the core over many batches, each its own patient row (row i is batch i of the call);
    `personal` holds the baselines in force for each batch, on the batch's row."""
    batch_idx, batch_row = _flatten(starts, stops)
    batch_idx = by_batch[batch_idx]
    hist_pos, hist_owner = _flatten(lo.ravel(), hi.ravel())
    hist_row = hist_owner // len(_HISTORY_KIND_IDX)
    hist_idx = srt.order[hist_pos]
    patients = readings.patient_row[by_batch[starts]]
    batch = ReadingArrays.of(
        batch_row, readings.kind_idx[batch_idx], readings.measured_at[batch_idx], readings.value[batch_idx]
    )
    history = ReadingArrays.of(
        hist_row, readings.kind_idx[hist_idx], readings.measured_at[hist_idx], readings.value[hist_idx]
    )
    result = evaluate_patients(replace(inputs.take(patients), personal=personal), batch, history)
    severity[batch_idx] = result.severity
    breached[batch_idx] = result.breached_limit
    for c in result.candidates:
        at = c.window_start if c.rule.startswith("threshold.") else c.window_end
        out.append(
            Candidate(
                patient_row=int(patients[c.patient_row]),
                rule=c.rule,
                kind=c.kind.value if c.kind else None,
                severity=c.severity,
                at=int(at.timestamp()),
                waits=awaits_repeat(c),
            )
        )


_LOW = (Limit.RED_LOW, Limit.YELLOW_LOW)


def _side(breached_limit: int) -> str | None:
    if breached_limit < 0:
        return None
    return "low" if breached_limit in _LOW else "high"


def raise_alarms(
    candidates: Sequence[Candidate],
    readings: ReplayReadings,
    settings: ReplaySettings,
    *,
    severity: NDArray[np.int8] | None = None,
    breached: NDArray[np.int8] | None = None,
    srt: _Sorted | None = None,
) -> tuple[list[RaisedAlarm], dict[str, int]]:
    """The alarm state over the candidates in time order: which candidates raise an alarm, and when.

    `severity` and `breached` (per reading of `readings`, from the evaluation) decide what a repeat shows; they are
    needed only when a candidate waits for one."""
    outcomes = {"confirmed": 0, "cleared": 0, "expired": 0}
    events: list[tuple[int, int, Candidate]] = []
    for c in candidates:
        if not c.waits or settings.repeat_timeout_s <= 0:
            events.append((c.at, c.at, c))
            continue
        if c.kind is None or severity is None or breached is None:
            raise ValueError("a candidate that waits for a repeat needs its kind and the readings' severities")
        srt = srt or _Sorted.of(readings)
        kind_idx = KIND_INDEX[Kind(c.kind)]
        group = np.array([c.patient_row * N_KINDS + kind_idx])
        nxt = int(srt.position(group, np.array([c.at]), side="right")[0])
        if (
            nxt < len(srt.key)
            and srt.group[nxt] == group[0]
            and srt.measured_at[nxt] <= c.at + settings.repeat_timeout_s
        ):
            repeat = int(srt.order[nxt])
            if _side(int(breached[repeat])) == c.rule.rsplit(".", 1)[-1] and severity[repeat] > 0:
                outcomes["confirmed"] += 1
                events.append((int(srt.measured_at[nxt]), c.at, c))
            else:
                outcomes["cleared"] += 1
            continue
        outcomes["expired"] += 1
        events.append((c.at + settings.repeat_timeout_s, c.at, c))
    events.sort(key=lambda e: (e[0], e[2].patient_row, e[2].rule))
    open_from: dict[tuple[int, str], tuple[int, int]] = {}
    alarms: list[RaisedAlarm] = []
    for effective, arrived, c in events:
        key = (c.patient_row, c.rule)
        span = open_from.get(key)
        if span is not None and (span[0] <= arrived < span[1] or span[0] <= effective < span[1]):
            continue  # updates the open alarm
        open_from[key] = (effective, effective + settings.resolve_after_s)
        alarms.append(RaisedAlarm(readings.patient_ids[c.patient_row], c.rule, c.kind, c.severity, effective))
    return alarms, outcomes


def missed_candidates(readings: ReplayReadings, plan: PlanContent, srt: _Sorted | None = None) -> list[Candidate]:
    """`missed.<kind>` candidates from the plan's schedule: for each patient, from the local day of their first
    reading to that of their last, a scheduled measurement with no reading of its kind between local midnight and
    the deadline (what `rules_engine.missed` finds) is a candidate at the deadline."""
    if not plan.schedule or len(readings) == 0:
        return []
    zone = ZoneInfo(plan.timezone)
    out: list[Candidate] = []
    srt = srt or _Sorted.of(readings)
    firsts = np.full(len(readings.patient_ids), np.iinfo(np.int64).max)
    lasts = np.full(len(readings.patient_ids), np.iinfo(np.int64).min)
    np.minimum.at(firsts, readings.patient_row, readings.measured_at)
    np.maximum.at(lasts, readings.patient_row, readings.measured_at)
    first_day = min(datetime.fromtimestamp(int(t), tz=zone).date() for t in firsts)
    last_day = max(datetime.fromtimestamp(int(t), tz=zone).date() for t in lasts)
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    for entry in plan.schedule:
        hour, minute = (int(x) for x in entry.deadline.split(":"))
        due_days = [d for d in days if _WEEKDAYS[d.weekday()] in entry.weekdays]
        if not due_days:
            continue
        day_start = np.array([_local_epoch(d, 0, 0, zone) for d in due_days], dtype=np.int64)
        deadline = np.array([_local_epoch(d, hour, minute, zone) for d in due_days], dtype=np.int64)
        patients = np.arange(len(readings.patient_ids))
        grid_p = np.repeat(patients, len(due_days))
        grid_start, grid_deadline = np.tile(day_start, len(patients)), np.tile(deadline, len(patients))
        followed = (grid_deadline >= firsts[grid_p]) & (grid_start <= lasts[grid_p])
        group = grid_p * N_KINDS + KIND_INDEX[entry.kind]
        taken = srt.position(group, grid_deadline, side="right") > srt.position(group, grid_start)
        for i in np.flatnonzero(followed & ~taken).tolist():
            out.append(
                Candidate(
                    int(grid_p[i]), f"missed.{entry.kind.value}", entry.kind.value, "missed", int(grid_deadline[i])
                )
            )
    return out


def _local_epoch(day: date, hour: int, minute: int, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY_S}


def parse_duration(text: str) -> int:
    """Seconds of "90s", "30m", "24h", "2d" (a bare number is seconds)."""
    t = text.strip().lower()
    unit = _UNITS.get(t[-1:])
    number = t[:-1] if unit is not None else t
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"duration {text!r} is not like 30m, 24h or 2d") from None
    if not value >= 0 or value != value:
        raise ValueError(f"duration {text!r} must not be negative")
    return round(value * (unit or 1))


def load_plan(text: str) -> PlanContent:
    """A plan file: the published plan (`schema` varde.plan/1, checksum verified when present) or a plan's content
    as a clinician writes it. Raises ValueError with the first problem."""
    import json

    from pydantic import ValidationError

    from vitals.plan import SelfManagementPlan

    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"plan is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("plan is not a JSON object")
    try:
        return SelfManagementPlan.model_validate(doc) if "schema" in doc else PlanContent.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ValueError(f"plan {where}: {msg}" if where else f"plan: {msg}") from None


__all__ = [
    "DEFAULT_BATCH_S",
    "DEFAULT_RESOLVE_AFTER_S",
    "Candidate",
    "RaisedAlarm",
    "ReplayReadings",
    "ReplayResult",
    "ReplaySettings",
    "infer_protocols",
    "load_plan",
    "missed_candidates",
    "parse_duration",
    "plan_overrides",
    "raise_alarms",
    "read_readings_csv",
    "replay",
    "uniform_inputs",
]
