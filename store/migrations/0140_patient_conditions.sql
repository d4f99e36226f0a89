-- Multimorbidity (issue 16 item 4): a patient has any number of conditions, and the rules compose their limits
-- (rules_engine.profiles.compose: the safer limit wins). `patients.protocol` stays: it is the patient's primary
-- condition (what the plan editor and the kinds offered first follow), and the rules always count it among the
-- conditions, so every reader of `protocol` keeps working. Condition names are rules_engine.profiles.Protocol
-- values except 'general' (no condition).
CREATE TABLE patient_conditions (
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    condition   text NOT NULL CHECK (condition IN ('heart_failure', 'copd', 'diabetes', 'hypertension')),
    added_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, condition)
);

INSERT INTO patient_conditions (patient_id, condition)
    SELECT id, protocol FROM patients WHERE protocol <> 'general'
    ON CONFLICT DO NOTHING;
