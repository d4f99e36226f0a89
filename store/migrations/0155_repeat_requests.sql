-- Repeat measurements (issue 16 item 3): a single yellow reading far from the patient's normal asks the patient's
-- page to measure again instead of opening an alarm. The request is written in the ingest transaction; a later
-- reading of the same kind confirms it (the alarm opens) or clears it (back in range: no alarm); the rules leader
-- opens the alarm when none came by `due_at` (VARDE_REPEAT_TIMEOUT_MINUTES). The API sends each request once to
-- the patient's gateways (`sent_at`).
CREATE TABLE repeat_requests (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id         uuid NOT NULL REFERENCES patients (id),
    rule               text NOT NULL,
    kind               text NOT NULL,
    reading_id         uuid,
    value              double precision NOT NULL,
    measured_at        timestamptz NOT NULL,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    due_at             timestamptz NOT NULL,
    state              text NOT NULL DEFAULT 'requested'
                       CHECK (state IN ('requested', 'confirmed', 'cleared', 'expired')),
    decided_at         timestamptz,
    repeat_reading_id  uuid,
    repeat_value       double precision,
    alarm_id           uuid REFERENCES alarms (id),
    candidate          jsonb NOT NULL,
    sent_at            timestamptz,
    send_attempts      integer NOT NULL DEFAULT 0,
    next_send_at       timestamptz NOT NULL DEFAULT now()
);
-- One waiting request per patient and rule, as there is one unresolved alarm per patient and rule.
CREATE UNIQUE INDEX repeat_requests_one_waiting ON repeat_requests (patient_id, rule) WHERE state = 'requested';
CREATE INDEX repeat_requests_due ON repeat_requests (due_at) WHERE state = 'requested';
CREATE INDEX repeat_requests_unsent ON repeat_requests (next_send_at) WHERE state = 'requested' AND sent_at IS NULL;
CREATE INDEX repeat_requests_patient ON repeat_requests (patient_id, requested_at);
