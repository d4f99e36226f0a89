"""Prometheus metrics of the rules: evaluations inside the ingest transaction (served by the ingest workers) and
the timed rules of the scheduler leader (served by `varde rules run`). Alarms are counted where they are opened,
in whichever process that is; a batch retried after a database error is counted again."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from store.observability import REGISTRY

EVALUATIONS = Counter(
    "varde_rules_evaluations_total", "Batches of stored readings evaluated by the rules", registry=REGISTRY
)
READINGS_EVALUATED = Counter(
    "varde_rules_readings_evaluated_total", "Readings evaluated by the rules", registry=REGISTRY
)
EVALUATION_SECONDS = Histogram(
    "varde_rules_evaluation_seconds",
    "Time to evaluate one batch (limits, history, arrays, alarm upserts)",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ALARMS_RAISED = Counter(
    "varde_rules_alarms_raised_total", "Alarms opened, by rule and severity", ["rule", "severity"], registry=REGISTRY
)
ALARMS_UPDATED = Counter(
    "varde_rules_alarms_updated_total", "Later readings counted on an alarm already open", registry=REGISTRY
)
REPEATS = Counter(
    "varde_rules_repeat_requests_total",
    "Repeat measurements asked for single yellow readings, by outcome (requested, confirmed, cleared, expired)",
    ["outcome"],
    registry=REGISTRY,
)
ALARMS_ESCALATED = Counter(
    "varde_rules_alarms_escalated_total", "Red alarms escalated for being left unacknowledged", registry=REGISTRY
)
TICKS = Counter(
    "varde_rules_scheduler_ticks_total",
    "Runs of the timed rules, by outcome (ok, error)",
    ["outcome"],
    registry=REGISTRY,
)
TICK_SECONDS = Histogram(
    "varde_rules_scheduler_tick_seconds",
    "Time of one run of the timed rules",
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAST_TICK = Gauge(
    "varde_rules_scheduler_last_tick_timestamp_seconds", "Unix time of the last successful run", registry=REGISTRY
)
LEADER = Gauge(
    "varde_rules_leader", "1 while this scheduler holds the leader lock, 0 while it waits as standby", registry=REGISTRY
)


def rule_family(rule: str) -> str:
    """The label value of a rule: as named, except a questionnaire's own id (plan content) is folded away."""
    if rule.startswith("questionnaire."):
        return "questionnaire.*." + rule.rsplit(".", 1)[-1]
    return rule


def count_alarm(rule: str, severity: str, opened: bool) -> None:
    if opened:
        ALARMS_RAISED.labels(rule=rule_family(rule), severity=severity).inc()
    else:
        ALARMS_UPDATED.inc()
