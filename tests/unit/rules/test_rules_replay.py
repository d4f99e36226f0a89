"""The offline replay: CSV rows refused with their line number, ingest's alarm state (one open alarm per patient
and rule, resolved after --resolve-after, raised again after that), "no repeat came", plans, and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rules_engine.evaluation import RuleInputs
from rules_engine.kinds_index import KIND_ORDER
from rules_engine.profiles import LimitOverrides, TrendOverrides
from rules_engine.replay import (
    Candidate,
    ReplayReadings,
    ReplaySettings,
    load_plan,
    parse_duration,
    raise_alarms,
    read_readings_csv,
    replay,
    uniform_inputs,
)
from varde.cli import app
from vitals import Kind
from vitals.readings_csv import CsvRowError

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
HEADER = "patient_id,kind,value,unit,measured_at\n"


def _csv(*rows: str) -> list[str]:
    return [HEADER, *(r + "\n" for r in rows)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("p1,body_weight,180,lb,2026-03-02T07:00:00Z", "canonical unit 'kg', got 'lb'"),
        ("p1,weight,80,kg,2026-03-02T07:00:00Z", "unknown kind 'weight'"),
        ("p1,spo2,96,%,2026-03-02T07:00:00", "no UTC offset"),
        ("p1,spo2,96,%,yesterday", "not an ISO 8601 time"),
        ("p1,spo2,abc,%,2026-03-02T07:00:00Z", "'abc' is not a number"),
        ("p1,spo2,130,%,2026-03-02T07:00:00Z", "outside the plausible range 50–100"),
        ("p1,spo2,96,%", "expected 5 fields"),
        (",spo2,96,%,2026-03-02T07:00:00Z", "patient_id is empty"),
    ],
)
def test_a_bad_row_is_refused_with_its_line_number(row: str, message: str) -> None:
    lines = _csv("p1,spo2,96,%,2026-03-02T06:00:00+01:00", row)
    with pytest.raises(CsvRowError) as caught:
        read_readings_csv(lines)
    assert caught.value.line == 3 and message in str(caught.value)


@pytest.mark.parametrize(
    ("row", "kind", "value"),
    [
        ("p1,bp_systolic,128,mmHg,2026-03-02T07:00:00Z", "bp_systolic", 128.0),
        ("p1,pulse_rate,72,bpm,2026-03-02T07:00:00Z", "pulse_rate", 72.0),
        ("p1,body_temperature,37.2,°C,2026-03-02T07:00:00Z", "body_temperature", 37.2),
        ("p1,glucose,5.4,mmol/l,2026-03-02T07:00:00Z", "glucose", 5.4),
    ],
)
def test_the_usual_spelling_of_the_canonical_unit_is_read_unconverted(row: str, kind: str, value: float) -> None:
    readings, errors = read_readings_csv(_csv(row))
    assert not errors and len(readings) == 1
    assert readings.value.tolist() == [value] and KIND_ORDER[int(readings.kind_idx[0])].value == kind


@pytest.mark.parametrize(
    "row", ["p1,bp_systolic,17,kPa,2026-03-02T07:00:00Z", "p1,glucose,98,mg/dL,2026-03-02T07:00:00Z"]
)
def test_another_unit_of_the_same_quantity_is_still_refused(row: str) -> None:
    with pytest.raises(CsvRowError, match="canonical unit"):
        read_readings_csv(_csv(row))


def test_skip_invalid_leaves_bad_rows_out_and_reports_each() -> None:
    lines = _csv(
        "p1,spo2,96,%,2026-03-02T07:00:00Z",
        "p1,spo2,96,percent,2026-03-02T08:00:00Z",
        "p2,spo2,97,%,2026-03-02T09:00:00Z",
    )
    readings, errors = read_readings_csv(lines, skip_invalid=True)
    assert len(readings) == 2 and readings.patient_ids == ("p1", "p2")
    assert [e.line for e in errors] == [3]


def test_a_wrong_header_is_refused_even_with_skip_invalid() -> None:
    with pytest.raises(CsvRowError, match="line 1: header must be"):
        read_readings_csv(["patient,kind,value,unit,time\n"], skip_invalid=True)


def _at(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp())


def _state(candidates: list[Candidate], **settings: int) -> list[tuple[str, int]]:
    readings = ReplayReadings(("p1", "p2"), *(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.int64, np.float64)))
    alarms, _ = raise_alarms(candidates, readings, ReplaySettings(**settings))
    return [(a.rule, a.raised_at) for a in alarms]


def test_one_open_alarm_per_patient_and_rule_later_candidates_update_it() -> None:
    day = 24 * 60
    candidates = [
        Candidate(0, "news2", None, "yellow", _at(0)),
        Candidate(0, "news2", None, "red", _at(60)),  # updates the open alarm
        Candidate(0, "trend.weight_gain", "body_weight", "yellow", _at(90)),  # another rule opens its own
        Candidate(1, "news2", None, "yellow", _at(120)),  # another patient too
        Candidate(0, "news2", None, "yellow", _at(day - 1)),  # still open: resolved 24 h after raising
        Candidate(0, "news2", None, "yellow", _at(day)),  # resolved at 24 h: raises again
        Candidate(0, "news2", None, "yellow", _at(day + 30)),
    ]
    assert _state(candidates) == [
        ("news2", _at(0)),
        ("trend.weight_gain", _at(90)),
        ("news2", _at(120)),
        ("news2", _at(day)),
    ]
    assert len(_state(candidates, resolve_after_s=3600)) == 5  # 0, 60 (resolved at 60), 90, 120, day − 1


def _spo2(*values_at: tuple[float, float]) -> ReplayReadings:
    return ReplayReadings.of(("p1", Kind.SPO2, v, T0 + timedelta(minutes=m)) for v, m in values_at)


def test_a_single_yellow_reading_raises_at_the_timeout_when_no_repeat_comes() -> None:
    result = replay(_spo2((97, 0), (93, 600), (97, 2000)), uniform_inputs(1, "general"))
    assert [(a.rule, a.severity, a.raised_at) for a in result.alarms] == [("threshold.spo2.low", "yellow", _at(630))]
    assert result.repeats["expired"] == 1


def test_a_repeat_back_in_range_clears_and_a_breaching_repeat_confirms_at_its_time() -> None:
    cleared = replay(_spo2((93, 0), (96, 10)), uniform_inputs(1, "general"))
    assert cleared.alarms == [] and cleared.repeats["cleared"] == 1
    confirmed = replay(_spo2((93, 0), (93, 10)), uniform_inputs(1, "general"))  # two acts, two batches
    assert [a.raised_at for a in confirmed.alarms] == [_at(10)] and confirmed.repeats["confirmed"] == 1
    hourly = ReplaySettings(batch_s=3600)
    together = replay(_spo2((93, 0), (93, 10)), uniform_inputs(1, "general"), hourly)  # one batch repeats itself
    assert [a.raised_at for a in together.alarms] == [_at(0)] and together.repeats["confirmed"] == 0
    no_wait = replay(_spo2((93, 0), (96, 10)), uniform_inputs(1, "general"), ReplaySettings(repeat_timeout_s=0))
    assert [a.raised_at for a in no_wait.alarms] == [_at(0)]


def test_red_never_waits_for_a_repeat() -> None:
    result = replay(_spo2((90, 0), (97, 5)), uniform_inputs(1, "general"))
    assert [(a.severity, a.raised_at) for a in result.alarms] == [("red", _at(0))]


def _plan(**extra: object) -> str:
    doc = {
        "protocol": "copd",
        "zones": [{"kind": "spo2", "unit": "%", "red_low": 85, "yellow_low": 88}],
        "advice": [{"zone": z, "nb": "Råd", "en": "Advice"} for z in ("green", "yellow", "red")],
        "contacts": [{"name": "Sykepleier", "role": "Sykepleier", "phone": "+47 12345678"}],
        **extra,
    }
    return json.dumps(doc)


def test_a_plans_zones_apply_to_every_patient() -> None:
    plan = load_plan(_plan())
    readings = ReplayReadings.of([("a", Kind.SPO2, 90.0, T0), ("b", Kind.SPO2, 86.0, T0)])
    result = replay(readings, uniform_inputs(2, "general", plan), ReplaySettings(repeat_timeout_s=0))
    assert [(a.patient_id, a.severity) for a in result.alarms] == [("b", "yellow")]


def test_a_plans_schedule_raises_missed_measurements_at_the_deadline() -> None:
    plan = load_plan(_plan(schedule=[{"kind": "body_weight", "deadline": "10:00", "weekdays": ["tue"]}]))
    readings = ReplayReadings.of(
        [("a", Kind.SPO2, 96.0, T0 + timedelta(days=d)) for d in range(8)]  # Monday 2 March to Monday 9 March
    )
    result = replay(readings, uniform_inputs(1, "copd", plan), schedule=plan)
    assert [(a.rule, a.raised_at) for a in result.alarms] == [
        ("missed.body_weight", int(datetime(2026, 3, 3, 9, 0, tzinfo=UTC).timestamp()))  # 10:00 Oslo
    ]


def test_taking_rows_of_rule_inputs_copies_each_patients_overrides() -> None:
    inputs = RuleInputs(
        ("general", "copd"),
        LimitOverrides.of([1], [5], [1], [90.0]),
        TrendOverrides.of([0], [0], [1.5]),
    )
    taken = inputs.take([1, 0, 1])
    assert taken.protocols == ("copd", "general", "copd")
    rules, original = taken.patient_rules(), inputs.patient_rules()
    for new, old in enumerate([1, 0, 1]):
        assert np.array_equal(rules.limits[new], original.limits[old], equal_nan=True)
        assert np.array_equal(rules.trends[new], original.trends[old], equal_nan=True)


def test_durations() -> None:
    assert [parse_duration(t) for t in ("24h", "30m", "2d", "90s", "15")] == [86400, 1800, 172800, 90, 15]
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_cli_prints_one_json_line_per_alarm_and_exits_1_on_a_bad_row(tmp_path: Path) -> None:
    good = tmp_path / "readings.csv"
    good.write_text("".join(_csv("p1,spo2,90,%,2026-03-02T07:00:00Z", "p1,spo2,97,%,2026-03-02T08:00:00+01:00")))
    runner = CliRunner()
    done = runner.invoke(app, ["rules", "replay", str(good), "--protocol", "general"])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == [
        {
            "patient_id": "p1",
            "rule": "threshold.spo2.low",
            "kind": "spo2",
            "severity": "red",
            "raised_at": "2026-03-02T07:00:00Z",
        }
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(_csv("p1,spo2,90,%,2026-03-02T07:00:00Z", "p1,body_weight,180,lb,2026-03-02T07:00:00Z")))
    refused = runner.invoke(app, ["rules", "replay", str(bad)])
    assert refused.exit_code == 1 and "line 3" in refused.stderr and refused.stdout == ""
    skipped = runner.invoke(app, ["rules", "replay", str(bad), "--skip-invalid"])
    assert skipped.exit_code == 0 and "line 3" in skipped.stderr and len(skipped.stdout.splitlines()) == 1
    plan = tmp_path / "plan.json"
    plan.write_text(_plan())
    with_plan = runner.invoke(app, ["rules", "replay", str(good), "--plan", str(plan)])
    assert with_plan.exit_code == 0 and with_plan.stdout == ""  # 90 % is inside this COPD plan's zones
    unknown = runner.invoke(app, ["rules", "replay", str(good), "--protocol", "asthma"])
    assert unknown.exit_code == 1 and "unknown protocol" in unknown.stderr
    assert runner.invoke(app, ["rules", "replay", str(good), "--resolve-after", "soon"]).exit_code == 2
    assert runner.invoke(app, ["rules", "replay", str(good), "--batch", "0"]).exit_code == 2


def test_cli_batch_repeat_timeout_and_resolve_after_change_what_is_raised(tmp_path: Path) -> None:
    readings = tmp_path / "readings.csv"
    rows = (
        "p1,spo2,93,%,2026-03-02T07:00:00Z",
        "p1,spo2,93,%,2026-03-02T07:10:00Z",
        "p1,spo2,93,%,2026-03-02T09:00:00Z",
    )
    readings.write_text("\ufeff" + "".join(_csv(*rows)), encoding="utf-8")  # as a spreadsheet saves it, with a BOM

    def raised(*options: str) -> list[str]:
        done = CliRunner().invoke(app, ["rules", "replay", str(readings), *options])
        assert done.exit_code == 0, done.output
        return [json.loads(line)["raised_at"][11:16] for line in done.stdout.splitlines()]

    assert raised() == ["07:10"]  # 07:00 waits for a repeat, 07:10 confirms it
    assert raised("--batch", "1h") == ["07:00"]  # 07:00 and 07:10 arrive in one batch: it repeats itself
    assert raised("--repeat-timeout", "0", "--resolve-after", "1h") == ["07:00", "09:00"]
