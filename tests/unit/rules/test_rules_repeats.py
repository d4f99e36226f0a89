"""Repeat measurements for artefacts: which candidates wait for a repeat, and what a batch does to the requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rules_builders import at, readings

from rules_engine import AlarmCandidate, build_patient_rules, evaluate_batch
from rules_engine.repeats import WaitingRepeat, awaits_repeat, settle_repeats
from vitals import Kind

MIN = 60


def _candidate(rule: str, severity: str, count: int = 1, reading_index: int | None = 0) -> AlarmCandidate:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    return AlarmCandidate(
        patient_row=0,
        patient_id=None,
        rule=rule,
        kind=Kind.SPO2 if rule != "news2" else None,
        severity=severity,  # type: ignore[arg-type]
        value=93.0,
        limit=94.0,
        window_start=when,
        window_end=when,
        count=count,
        explanation_nb="",
        explanation_en="",
        reading_index=reading_index,
    )


@pytest.mark.parametrize(
    ("rule", "severity", "count", "reading_index", "waits"),
    [
        ("threshold.spo2.low", "yellow", 1, 0, True),
        ("threshold.pulse_rate.high", "yellow", 1, 3, True),
        ("threshold.spo2.low", "red", 1, 0, False),  # hard floors never wait
        ("threshold.spo2.low", "yellow", 2, 0, False),  # the batch repeated it already
        ("threshold.spo2.low", "yellow", 1, None, False),  # decided by history, not by a reading of this batch
        ("trend.weight_gain", "yellow", 1, 0, False),
        ("trend.spo2_baseline", "needs_review", 1, 0, False),
        ("news2", "yellow", 1, 0, False),
        ("combined.heart_failure", "yellow", 1, 0, False),
    ],
)
def test_awaits_repeat_only_for_a_single_yellow_threshold_reading(
    rule: str, severity: str, count: int, reading_index: int | None, waits: bool
) -> None:
    assert awaits_repeat(_candidate(rule, severity, count, reading_index)) is waits


RULES = build_patient_rules(["general", "general"])  # SpO2: red below 92, yellow below 94
NOW = at(0, hours=0.1)


def _settle(rows, waiting=(), open_alarms=(), timeout=30, now=NOW):
    batch = readings(rows)
    result = evaluate_batch(batch, RULES, news2=False)
    return settle_repeats(batch, result, list(waiting), set(open_alarms), timeout_minutes=timeout, now=now)


def _waiting(value: float = 93.0, measured: int = at(0), timeout: int = 30) -> WaitingRepeat:
    return WaitingRepeat("req-1", 0, "threshold.spo2.low", "spo2", value, measured, measured + timeout * MIN)


def _summary(settled):
    return (
        sorted((c.rule, c.severity) for c in settled.alarms),
        [(d.outcome, d.waiting is not None, d.repeat_index) for d in settled.decisions],
    )


@pytest.mark.parametrize(
    ("name", "rows", "waiting", "open_alarms", "timeout", "alarms", "decisions"),
    [
        ("single yellow asks", [(0, Kind.SPO2, at(0), 93)], [], [], 30, [], [("requested", False, None)]),
        ("red never waits", [(0, Kind.SPO2, at(0), 90)], [], [], 30, [("threshold.spo2.low", "red")], []),
        (
            "two yellow in the batch alarm at once",
            [(0, Kind.SPO2, at(0), 93), (0, Kind.SPO2, at(0, hours=0.05), 92)],
            [],
            [],
            30,
            [("threshold.spo2.low", "yellow")],
            [],
        ),
        (
            "a yellow reading beside a red one of the same patient alarms at once",
            [(0, Kind.SPO2, at(0), 90), (0, Kind.PULSE_RATE, at(0), 115)],
            [],
            [],
            30,
            [("threshold.pulse_rate.high", "yellow"), ("threshold.spo2.low", "red")],
            [],
        ),
        (
            "another patient's red reading does not stop the wait",
            [(1, Kind.SPO2, at(0), 90), (0, Kind.PULSE_RATE, at(0), 115)],
            [],
            [],
            30,
            [("threshold.spo2.low", "red")],
            [("requested", False, None)],
        ),
        (
            "an open alarm is updated, not asked again",
            [(0, Kind.SPO2, at(0), 93)],
            [],
            [(0, "threshold.spo2.low")],
            30,
            [("threshold.spo2.low", "yellow")],
            [],
        ),
        (
            "timeout 0 switches repeats off",
            [(0, Kind.SPO2, at(0), 93)],
            [],
            [],
            0,
            [("threshold.spo2.low", "yellow")],
            [],
        ),
        (
            "in range within the timeout in the same batch clears",
            [(0, Kind.SPO2, at(0), 93), (0, Kind.SPO2, at(0, hours=0.2), 97)],
            [],
            [],
            30,
            [],
            [("cleared", False, 1)],
        ),
        (
            "in range after the timeout comes too late",
            [(0, Kind.SPO2, at(0), 93), (0, Kind.SPO2, at(0, hours=1), 97)],
            [],
            [],
            30,
            [("threshold.spo2.low", "yellow")],
            [("expired", False, 1)],
        ),
        (
            "a reading that arrives after its timeout alarms at once",
            [(0, Kind.SPO2, at(0), 93)],
            [],
            [],
            30,
            [("threshold.spo2.low", "yellow")],
            [("expired", False, None)],
        ),
        (
            "a yellow repeat confirms",
            [(0, Kind.SPO2, at(0, hours=0.2), 92)],
            [_waiting()],
            [],
            30,
            [("threshold.spo2.low", "yellow")],
            [("confirmed", True, 0)],
        ),
        (
            "a red repeat confirms at red",
            [(0, Kind.SPO2, at(0, hours=0.2), 90)],
            [_waiting()],
            [],
            30,
            [("threshold.spo2.low", "red")],
            [("confirmed", True, 0)],
        ),
        (
            "an in-range repeat clears",
            [(0, Kind.SPO2, at(0, hours=0.2), 96)],
            [_waiting()],
            [],
            30,
            [],
            [("cleared", True, 0)],
        ),
        (
            "a repeat after the timeout expires the request",
            [(0, Kind.SPO2, at(0, hours=1), 96)],
            [_waiting()],
            [],
            30,
            [],
            [("expired", True, 0)],
        ),
        (
            "another kind leaves the request waiting",
            [(0, Kind.PULSE_RATE, at(0, hours=0.2), 70)],
            [_waiting()],
            [],
            30,
            [],
            [],
        ),
        (
            "another patient's reading leaves it waiting",
            [(1, Kind.SPO2, at(0, hours=0.2), 96)],
            [_waiting()],
            [],
            30,
            [],
            [],
        ),
    ],
)
def test_settle_repeats(name, rows, waiting, open_alarms, timeout, alarms, decisions) -> None:
    now = at(0, hours=2) if name.startswith("a reading that arrives after") else NOW
    settled = _settle(rows, waiting, open_alarms, timeout, now)
    assert _summary(settled) == (alarms, decisions), name


def test_confirmed_and_expired_alarms_say_so_in_both_languages() -> None:
    confirmed = _settle([(0, Kind.SPO2, at(0, hours=0.2), 92.0)], [_waiting(value=93.0)]).alarms[0]
    assert confirmed.explanation_nb.endswith(". Bekreftet ved ny måling (første måling 93 %).")
    assert confirmed.explanation_en.endswith(". Confirmed by a repeat measurement (first reading 93%).")
    assert (confirmed.count, confirmed.window_start.timestamp()) == (2, at(0))  # the reading that asked counts
    assert confirmed.details["repeat"] == {
        "outcome": "confirmed",
        "first_value": 93.0,
        "timeout_minutes": 30,
        "request_id": "req-1",
    }
    expired = _settle([(0, Kind.SPO2, at(0), 93)], now=at(0, hours=2), timeout=45).alarms[0]
    assert expired.explanation_nb.endswith(". Ingen ny måling innen 45 min.")
    assert expired.explanation_en.endswith(". No repeat within 45 min.")
