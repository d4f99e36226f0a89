from __future__ import annotations

import numpy as np
import pytest
import rules_reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_builders import DAY, at, daily, readings

from rules_engine import (
    ReadingArrays,
    TrendOverrides,
    TrendSetting,
    build_patient_rules,
    kind_index,
    protocol_code,
    pulse_drift,
    sort_readings,
    spo2_drop,
    weight_gain,
)
from vitals import Kind

HF, COPD, GENERAL = protocol_code("heart_failure"), protocol_code("copd"), protocol_code("general")
W = Kind.BODY_WEIGHT


def _weight(history: list[tuple], batch: list[tuple], protocols: list[int] | None = None, **kw: object):
    rules = build_patient_rules(protocols or [HF], **kw)  # type: ignore[arg-type]
    return weight_gain(sort_readings(readings(history), readings(batch)), rules.trends)


@pytest.mark.parametrize(
    ("history", "latest", "breached", "delta"),
    [
        ([82.0, 83.0, 83.5], 84.0, False, 2.0),  # exactly the plan limit: within (strict)
        ([82.0, 83.0, 83.5], 84.1, True, 2.1),
        ([82.1, 83.0, 83.5], 84.1, False, 2.0),  # 84.1 − 82.1 is 2.0, not 2.0000000000000142
        ([84.0, 84.0, 84.0], 83.0, False, 0.0),  # a loss: the reading is its own window minimum
        ([80.0, 82.0, 84.0], 84.5, True, 4.5),
    ],
)
def test_weight_gain_against_window_minimum(history: list[float], latest: float, breached: bool, delta: float) -> None:
    result = _weight(daily(0, W, history), [(0, W, at(3), latest)])
    assert result.breached.tolist() == [breached]
    assert result.delta.tolist() == [delta]
    assert result.end_value.tolist() == [latest]
    assert result.limit.tolist() == [2.0]


def test_weight_window_edge_is_inclusive_and_older_readings_are_ignored() -> None:
    history = [(0, W, at(0), 80.0), (0, W, at(0, hours=1), 82.0)]
    exactly_three_days = _weight(history, [(0, W, at(3), 82.5)])
    assert exactly_three_days.start_value.tolist() == [80.0]
    assert exactly_three_days.start_at.tolist() == [at(0)]
    assert exactly_three_days.breached.tolist() == [True]
    one_second_later = _weight(history, [(0, W, at(3) + 1, 82.5)])
    assert one_second_later.start_value.tolist() == [82.0]
    assert one_second_later.breached.tolist() == [False]


def test_weight_window_and_limit_follow_the_patient_override() -> None:
    overrides = TrendOverrides.from_mapping({0: {"weight_window_days": 1, "weight_gain_kg": 1.0}})
    history = [(0, W, at(0), 80.0), (0, W, at(2), 81.0)]
    result = _weight(history, [(0, W, at(3), 82.5)], trend_overrides=overrides)
    assert result.window_s.tolist() == [DAY]
    assert result.start_value.tolist() == [81.0]
    assert result.delta.tolist() == [1.5]
    assert result.breached.tolist() == [True]


def test_largest_gain_in_a_flushed_batch_is_reported_not_just_the_latest() -> None:
    history = [(0, W, at(0), 80.0)]
    batch = [(0, W, at(1), 82.6), (0, W, at(2), 81.0)]
    result = _weight(history, batch)
    assert result.delta.tolist() == [2.6]
    assert result.end_at.tolist() == [at(1)]
    assert result.reading_index.tolist() == [0]
    assert result.count.tolist() == [2]


def test_weight_rule_only_for_protocols_that_switch_it_on() -> None:
    history = daily(0, W, [80.0]) + daily(1, W, [80.0])
    result = _weight(history, [(0, W, at(1), 85.0), (1, W, at(1), 85.0)], protocols=[GENERAL, HF])
    assert result.patient_row.tolist() == [1]


def test_history_alone_is_not_evaluated() -> None:
    result = _weight(daily(0, W, [80.0, 85.0]), [])
    assert len(result) == 0


def _drift(history: list[tuple], batch: list[tuple], protocol: int = COPD, **kw: object):
    rules = build_patient_rules([protocol], **kw)  # type: ignore[arg-type]
    sorted_ = sort_readings(readings(history), readings(batch))
    return spo2_drop(sorted_, rules.trends), pulse_drift(sorted_, rules.trends)


@pytest.mark.parametrize(
    ("baseline", "latest", "median", "breached"),
    [
        ([94, 95, 93, 94, 96], 90, 94.0, False),  # 4 points below: at the limit
        ([94, 95, 93, 94, 96], 89, 94.0, True),
        ([93, 94, 93, 94, 93, 94], 89, 93.5, True),  # even count: mean of the middle two, 4.5 > 4
        ([94, 95, 93, 94, 96], 99, 94.0, False),  # a rise of SpO2 is no alarm
        ([70, 94, 94, 95, 95], 89, 94.0, True),  # the median ignores one odd reading
    ],
)
def test_spo2_drop_from_personal_median(baseline: list[float], latest: float, median: float, breached: bool) -> None:
    spo2, _ = _drift(daily(0, Kind.SPO2, baseline), [(0, Kind.SPO2, at(len(baseline)), latest)])
    assert spo2.start_value.tolist() == [median]
    assert spo2.breached.tolist() == [breached]
    assert spo2.count.tolist() == [len(baseline)]


def test_baseline_window_is_fourteen_days_and_needs_five_readings() -> None:
    old = daily(0, Kind.SPO2, [80, 80, 80], first_day=0)
    recent = daily(0, Kind.SPO2, [95, 95, 95, 95, 95], first_day=10)
    spo2, _ = _drift(old + recent, [(0, Kind.SPO2, at(17), 90)])
    assert spo2.start_value.tolist() == [95.0]
    assert spo2.start_at.tolist() == [at(10)]
    assert spo2.count.tolist() == [5]
    too_few, _ = _drift(daily(0, Kind.SPO2, [95, 95, 95, 95]), [(0, Kind.SPO2, at(4), 80)])
    assert len(too_few) == 0


def test_drift_uses_the_latest_batch_reading() -> None:
    history = daily(0, Kind.SPO2, [95] * 6)
    batch = [(0, Kind.SPO2, at(6, hours=2), 85), (0, Kind.SPO2, at(6), 94)]
    spo2, _ = _drift(history, batch)
    assert spo2.end_value.tolist() == [85.0]
    assert spo2.reading_index.tolist() == [0]
    assert spo2.count.tolist() == [7]  # the earlier batch reading joins the baseline


@pytest.mark.parametrize(("latest", "breached"), [(90, False), (91, True), (50, False), (49, True)])
def test_pulse_drift_in_either_direction(latest: float, breached: bool) -> None:
    _, pulse = _drift(daily(0, Kind.PULSE_RATE, [70] * 7), [(0, Kind.PULSE_RATE, at(7), latest)])
    assert pulse.breached.tolist() == [breached]
    assert pulse.delta.tolist() == [latest - 70]


def test_switched_off_drift_rule_is_not_evaluated() -> None:
    overrides = TrendOverrides.from_mapping({0: {"spo2_drop": None}})
    spo2, _ = _drift(daily(0, Kind.SPO2, [95] * 7), [(0, Kind.SPO2, at(7), 80)], trend_overrides=overrides)
    assert len(spo2) == 0


def test_merged_sort_of_sorted_history_equals_a_full_sort() -> None:
    rng = np.random.default_rng(7)
    n = 2_000
    p, k = rng.integers(0, 50, n), rng.integers(0, 10, n)
    t = at(0) + rng.integers(0, 10, n) * 3600
    order = np.lexsort((t, k, p))
    history = ReadingArrays.of(p[order], k[order], t[order], rng.normal(size=n))
    batch = ReadingArrays.of(p[:300], k[:300], t[:300], rng.normal(size=300))
    merged = sort_readings(history, batch)
    shuffled = ReadingArrays.of(*(np.asarray(getattr(history, f))[::-1] for f in history.__slots__))
    full = sort_readings(shuffled, batch)
    assert np.array_equal(merged.key, full.key)
    assert np.all(merged.key[1:] >= merged.key[:-1])
    assert np.array_equal(merged.is_batch, full.is_batch)
    assert np.array_equal(merged.value[merged.is_batch], full.value[full.is_batch])
    assert np.array_equal(
        merged.batch_index(np.flatnonzero(merged.is_batch)), full.batch_index(np.flatnonzero(full.is_batch))
    )


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[tuple], int, list[int], TrendOverrides]:
    n_patients = draw(st.integers(1, 3))
    protocols = draw(st.lists(st.sampled_from([HF, COPD, GENERAL]), min_size=n_patients, max_size=n_patients))
    kinds = [W, Kind.SPO2, Kind.PULSE_RATE]
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_patients - 1),
                st.sampled_from(kinds),
                st.integers(0, 20 * 8).map(lambda h: at(0, hours=3 * h)),
                st.integers(0, 40),
            ),
            max_size=80,
        )
    )
    base = {W: 80.0, Kind.SPO2: 85.0, Kind.PULSE_RATE: 60.0}
    step = {W: 0.1, Kind.SPO2: 0.5, Kind.PULSE_RATE: 1.0}
    rows = [(p, k, t, round(base[k] + x * step[k], 1)) for p, k, t, x in rows]
    first_batch = draw(st.integers(0, len(rows)))
    settings_ = {
        row: {
            "baseline_min_readings": draw(st.integers(1, 5)),
            "baseline_days": draw(st.sampled_from([3, 7, 14])),
            "weight_window_days": draw(st.sampled_from([1, 2, 3])),
        }
        for row in range(n_patients)
    }
    return rows, first_batch, protocols, TrendOverrides.from_mapping(settings_)


@settings(max_examples=300, deadline=None)
@given(_histories())
def test_vectorised_trends_equal_the_per_reading_reference(
    case: tuple[list[tuple], int, list[int], TrendOverrides],
) -> None:
    rows, first_batch, protocols, overrides = case
    rules = build_patient_rules(protocols, trend_overrides=overrides)
    sorted_ = sort_readings(readings(rows[:first_batch]), readings(rows[first_batch:]))
    p = [r[0] for r in rows]
    k = [kind_index(r[1]) for r in rows]
    t = [r[2] for r in rows]
    v = [r[3] for r in rows]

    def col(setting: TrendSetting) -> list[float]:
        return rules.trends[:, setting].tolist()

    weights = ref.weight_gain(
        p, k, t, v, first_batch, kind_index(W), col(TrendSetting.WEIGHT_GAIN_KG), col(TrendSetting.WEIGHT_WINDOW_DAYS)
    )
    got = weight_gain(sorted_, rules.trends)
    columns = zip(got.patient_row, got.delta, got.end_value, got.breached, strict=True)
    assert {int(r): (d, e, b) for r, d, e, b in columns} == weights

    days, min_n = col(TrendSetting.BASELINE_DAYS), col(TrendSetting.BASELINE_MIN_READINGS)
    for fn, kind, setting, direction in (
        (spo2_drop, Kind.SPO2, TrendSetting.SPO2_DROP, "fall"),
        (pulse_drift, Kind.PULSE_RATE, TrendSetting.PULSE_DRIFT, "either"),
    ):
        expected = ref.baseline_drift(p, k, t, v, first_batch, kind_index(kind), col(setting), direction, days, min_n)
        result = fn(sorted_, rules.trends)
        assert {
            int(r): (m, d, b)
            for r, m, d, b in zip(result.patient_row, result.start_value, result.delta, result.breached, strict=True)
        } == expected


def test_window_searches_stay_inside_their_patient_and_kind_at_the_edges_of_the_data() -> None:
    rows = [(0, Kind.SPO2, at(0), 90), (0, Kind.SPO2, at(2), 91), (1, Kind.SPO2, at(0), 92), (1, Kind.SPO2, at(1), 93)]
    sorted_ = sort_readings(readings(rows), ReadingArrays.empty())
    group = sorted_.group[[0, 0, 0, 2, 2, 2]]
    times = np.array([at(-5), at(1), at(9), at(-5), at(0), at(9)])
    assert sorted_.first_at_or_after(group, times).tolist() == [0, 1, 2, 2, 2, 4]
    assert sorted_.last_at_or_before(group, times).tolist() == [-1, 0, 1, -1, 2, 3]


@pytest.mark.parametrize(
    ("history", "latest", "alarms"),
    [
        ([80.0, 80.1, 80.0], 82.5, False),  # one heavy weighing (a scale read in clothes): no trend
        ([80.0, 80.1, 82.3], 82.5, True),  # two weighings in a row over the limit
        ([80.0, 80.9, 81.8, 82.7], 83.6, True),  # a steady 0.9 kg a day: each weighing over its own 3-day minimum
    ],
)
def test_a_weight_gain_is_confirmed_by_the_weighing_before(history: list[float], latest: float, alarms: bool) -> None:
    from rules_engine.trends import evaluate_trends

    rules = build_patient_rules([HF])
    sorted_ = sort_readings(readings(daily(0, W, history)), readings([(0, W, at(len(history)), latest)]))
    short = evaluate_trends(sorted_, rules.trends)[0]
    assert short.rule == "trend.weight_gain"
    assert bool(short.breached.any()) is alarms


@pytest.mark.parametrize(
    ("recent", "latest", "alarms"),
    [
        ([], 95, False),  # one pulse after the stairs against a baseline of 70
        ([72], 95, False),  # the day before was usual: the 3-day median is 83.5
        ([94], 95, True),  # two days at 94-95: a drift
    ],
)
def test_a_drift_from_the_baseline_needs_the_recent_median_to_breach(
    recent: list[float], latest: float, alarms: bool
) -> None:
    from rules_engine.trends import evaluate_trends

    history = daily(0, Kind.PULSE_RATE, [70] * 7) + daily(0, Kind.PULSE_RATE, recent, first_day=7)
    batch = [(0, Kind.PULSE_RATE, at(7 + len(recent)), latest)]
    rules = build_patient_rules([COPD])
    pulse = evaluate_trends(sort_readings(readings(history), readings(batch)), rules.trends)[3]
    assert pulse.rule == "trend.pulse_baseline"
    assert bool(pulse.breached.any()) is alarms
