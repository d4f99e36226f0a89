"""Varde's shared vocabulary: measurement kinds, the readings envelope, plans, questionnaire responses, topic names
and reading ids."""

from vitals.envelope import (
    FUTURE_SKEW,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_ENVELOPE,
    RETENTION,
    SCHEMA,
    DeviceRef,
    Envelope,
    EnvelopeError,
    ParsedEnvelope,
    Reading,
    Reason,
    RejectedReading,
    check_reading_time,
    parse_envelope,
)
from vitals.ids import group_id, reading_id
from vitals.kinds import KINDS, Kind, KindInfo, kind_info
from vitals.plan import PLAN_SCHEMA, KindZones, PlanContent, PlanMessageError, SelfManagementPlan, parse_plan_message
from vitals.questionnaire import (
    QUESTIONNAIRE_SCHEMA,
    QuestionnaireEnvelope,
    QuestionnaireResponse,
    parse_questionnaire_envelope,
    score_answers,
)
from vitals.receipt import RECEIPT_SCHEMA, Receipt
from vitals.status import DeviceStatus, GatewayStatus
from vitals.topics import (
    INGEST_SHARED_SUBSCRIPTION,
    parse_topic,
    plan_topic,
    questionnaires_topic,
    readings_topic,
    receipts_topic,
    status_topic,
    validate_gateway_id,
)

__all__ = [
    "FUTURE_SKEW",
    "INGEST_SHARED_SUBSCRIPTION",
    "KINDS",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_ENVELOPE",
    "PLAN_SCHEMA",
    "QUESTIONNAIRE_SCHEMA",
    "RECEIPT_SCHEMA",
    "RETENTION",
    "SCHEMA",
    "DeviceRef",
    "DeviceStatus",
    "Envelope",
    "EnvelopeError",
    "GatewayStatus",
    "Kind",
    "KindInfo",
    "KindZones",
    "ParsedEnvelope",
    "PlanContent",
    "PlanMessageError",
    "QuestionnaireEnvelope",
    "QuestionnaireResponse",
    "Reading",
    "Reason",
    "Receipt",
    "RejectedReading",
    "SelfManagementPlan",
    "check_reading_time",
    "group_id",
    "kind_info",
    "parse_envelope",
    "parse_plan_message",
    "parse_questionnaire_envelope",
    "parse_topic",
    "plan_topic",
    "questionnaires_topic",
    "reading_id",
    "readings_topic",
    "receipts_topic",
    "score_answers",
    "status_topic",
    "validate_gateway_id",
]
