-- A nurse's whole shift (issue #19): dashboard sessions that last a shift, the value that set an alarm's severity,
-- per-patient trend limits, escalation targets that are notified, and team leads who read their team's audit log.

-- Refresh tokens of dashboard sessions. Only a hash of each token is stored; a token is used once and replaced by
-- the next of its family (rotation). Presenting a used token again ends the whole family (reuse detection).
CREATE TABLE staff_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id     uuid NOT NULL,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    family_started_at timestamptz NOT NULL,
    used_at       timestamptz,
    revoked_at    timestamptz,
    revoked_reason text,
    client_addr   text
);
CREATE INDEX staff_sessions_family_idx ON staff_sessions (family_id);
CREATE INDEX staff_sessions_user_idx ON staff_sessions (user_id) WHERE revoked_at IS NULL;

-- The reading that decided the alarm's severity (the worst), kept while later, milder readings update the alarm.
ALTER TABLE alarms
    ADD COLUMN severity_value double precision,
    ADD COLUMN severity_reading_id uuid,
    ADD COLUMN severity_measured_at timestamptz,
    ADD COLUMN severity_explanation_nb text,
    ADD COLUMN severity_explanation_en text;
UPDATE alarms SET severity_value = last_value, severity_reading_id = last_reading_id,
    severity_measured_at = last_measured_at,
    severity_explanation_nb = explanation_nb, severity_explanation_en = explanation_en
    WHERE severity_explanation_nb IS NULL;

-- Per-patient trend settings (rules_engine.profiles.TrendSetting names): a row replaces the protocol's value,
-- NaN switches that trend rule off for the patient. Written by the limits editor ('manual') or a plan ('plan').
CREATE TABLE trend_overrides (
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    setting     text NOT NULL CHECK (setting IN ('weight_gain_kg', 'weight_window_days', 'spo2_drop', 'pulse_drift',
                                                 'baseline_days', 'baseline_min_readings')),
    value       double precision NOT NULL,
    source      text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'plan')),
    plan_id     uuid REFERENCES self_management_plans (id) ON DELETE SET NULL,
    updated_by  uuid REFERENCES users (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, setting)
);

-- Whom an escalated alarm reaches: per care team, one or more targets (the on-call nurse's phone, a team mailbox,
-- a webhook), each through a channel of clinician_api.escalation.
CREATE TABLE escalation_targets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    channel     text NOT NULL CHECK (channel IN ('sms', 'email', 'webhook')),
    address     text NOT NULL CHECK (length(address) BETWEEN 1 AND 500),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, channel, address)
);

-- One notice per escalated alarm and target, written in the transaction that escalates (a trigger, so the
-- scheduler's automatic escalation and a nurse's manual one are the same), sent by the API's notifier.
CREATE TABLE escalation_notices (
    id          bigserial PRIMARY KEY,
    alarm_id    uuid NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
    target_id   uuid NOT NULL REFERENCES escalation_targets (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    error       text,
    UNIQUE (alarm_id, target_id)
);
CREATE INDEX escalation_notices_due_idx ON escalation_notices (next_at) WHERE state = 'pending';

CREATE FUNCTION varde_escalation_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO escalation_notices (alarm_id, target_id)
    SELECT NEW.id, t.id FROM patients p JOIN escalation_targets t ON t.team_id = p.team_id AND t.active
    WHERE p.id = NEW.patient_id
    ON CONFLICT DO NOTHING;
    PERFORM pg_notify('varde_escalations', NEW.id::text);
    RETURN NEW;
END;
$$;
CREATE TRIGGER alarms_escalation_notices AFTER UPDATE OF escalated_at ON alarms
    FOR EACH ROW WHEN (OLD.escalated_at IS NULL AND NEW.escalated_at IS NOT NULL)
    EXECUTE FUNCTION varde_escalation_notices();

-- A team lead reads the audit log of the team's patients and members.
ALTER TABLE team_memberships ADD COLUMN lead boolean NOT NULL DEFAULT false;
