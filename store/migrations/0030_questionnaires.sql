-- Symptom questionnaire responses from the patient's gateway (vitals/questionnaire.py, varde.questionnaire/1).
-- `reported_score` is the gateway's arithmetic; `score` and `zone` are the cloud's, by the plan version the patient
-- answered (NULL zone when that plan or questionnaire is unknown). Unique on the response id: a re-send stores once.
CREATE TABLE questionnaire_responses (
    id              uuid PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients (id),
    gateway_id      text NOT NULL REFERENCES gateways (id),
    questionnaire   text NOT NULL CHECK (questionnaire ~ '^[a-z][a-z0-9_-]{0,39}$'),
    plan_version    integer NOT NULL CHECK (plan_version >= 1),
    answered_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    answers         jsonb NOT NULL,
    reported_score  integer NOT NULL CHECK (reported_score >= 0),
    score           integer NOT NULL CHECK (score >= 0),
    zone            text CHECK (zone IN ('green', 'yellow', 'red'))
);
-- The missed-questionnaire rule looks up each patient's latest answer per questionnaire.
CREATE INDEX questionnaire_responses_latest_idx
    ON questionnaire_responses (patient_id, questionnaire, answered_at DESC);
