"""Vectorised rule evaluation: thresholds, trends and NEWS2 over whole batches, with nurse-readable explanations.

Pure functions over numpy arrays; alarm rows, lifecycle and scheduling live with the database code that calls
`evaluate_batch`.
"""

from rules_engine.candidates import (
    NEWS2_MIN_PARAMETERS,
    AlarmCandidate,
    BatchEvaluation,
    evaluate_batch,
    news2_candidates,
    threshold_candidates,
    trend_candidates,
)
from rules_engine.evaluation import RuleInputs, evaluate_patients
from rules_engine.explain import format_number, format_value
from rules_engine.kinds_index import KIND_INDEX, KIND_ORDER, N_KINDS, kind_index, kind_indices
from rules_engine.news2 import (
    News2Parameter,
    News2Results,
    evaluate_news2,
    score_pulse,
    score_resp_rate,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic,
    score_temperature,
)
from rules_engine.profiles import (
    PROTOCOLS,
    KindLimits,
    Limit,
    LimitOverrides,
    PatientRules,
    Protocol,
    TrendOverrides,
    TrendSetting,
    TrendSettings,
    build_patient_rules,
    effective_limits,
    protocol_code,
)
from rules_engine.readings import ReadingArrays, SortedReadings, sort_readings
from rules_engine.severity import Severity
from rules_engine.thresholds import NO_BREACH, ThresholdBreaches, evaluate_thresholds, worst_breaches
from rules_engine.trends import TrendResults, evaluate_trends, pulse_drift, spo2_drop, weight_gain
from rules_engine.validation import ProfileError, validate_limits, validate_profile

__all__ = [
    "KIND_INDEX",
    "KIND_ORDER",
    "NEWS2_MIN_PARAMETERS",
    "NO_BREACH",
    "N_KINDS",
    "PROTOCOLS",
    "AlarmCandidate",
    "BatchEvaluation",
    "KindLimits",
    "Limit",
    "LimitOverrides",
    "News2Parameter",
    "News2Results",
    "PatientRules",
    "ProfileError",
    "Protocol",
    "ReadingArrays",
    "RuleInputs",
    "Severity",
    "SortedReadings",
    "ThresholdBreaches",
    "TrendOverrides",
    "TrendResults",
    "TrendSetting",
    "TrendSettings",
    "build_patient_rules",
    "effective_limits",
    "evaluate_batch",
    "evaluate_news2",
    "evaluate_patients",
    "evaluate_thresholds",
    "evaluate_trends",
    "format_number",
    "format_value",
    "kind_index",
    "kind_indices",
    "news2_candidates",
    "protocol_code",
    "pulse_drift",
    "score_pulse",
    "score_resp_rate",
    "score_spo2_scale1",
    "score_spo2_scale2",
    "score_systolic",
    "score_temperature",
    "sort_readings",
    "spo2_drop",
    "threshold_candidates",
    "trend_candidates",
    "validate_limits",
    "validate_profile",
    "weight_gain",
    "worst_breaches",
]
