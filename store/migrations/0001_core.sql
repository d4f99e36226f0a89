-- Core tables: who is cared for by whom, gateways and devices, dead letters, thresholds, plans, alarms, audit.

CREATE TABLE care_teams (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patients (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    national_id   text UNIQUE,
    birth_date    date,
    protocol      text NOT NULL DEFAULT 'general'
                  CHECK (protocol IN ('general', 'heart_failure', 'copd', 'diabetes', 'hypertension')),
    team_id       uuid NOT NULL REFERENCES care_teams (id),
    timezone      text NOT NULL DEFAULT 'Europe/Oslo',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_team_idx ON patients (team_id);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    display_name   text NOT NULL DEFAULT '',
    role           text NOT NULL CHECK (role IN ('nurse', 'physician', 'admin')),
    password_hash  text,
    external_subject text UNIQUE,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE team_memberships (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id  uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, team_id)
);
CREATE INDEX team_memberships_team_idx ON team_memberships (team_id);

CREATE TABLE gateways (
    id             text PRIMARY KEY CHECK (id ~ '^gw-[a-z0-9][a-z0-9-]{1,60}$'),
    patient_id     uuid REFERENCES patients (id),
    secret_hash    text NOT NULL,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    last_seen_at   timestamptz,
    state          text CHECK (state IN ('online', 'offline')),
    agent_version  text,
    outbox_depth   integer,
    status         jsonb
);
CREATE INDEX gateways_patient_idx ON gateways (patient_id);

CREATE TABLE devices (
    gateway_id       text NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    address          text NOT NULL,
    type             text NOT NULL,
    model            text,
    battery_percent  smallint CHECK (battery_percent BETWEEN 0 AND 100),
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, address)
);

-- Messages and readings refused by ingest: kept with the raw payload and a precise reason, never dropped.
CREATE TABLE rejected_messages (
    id             bigserial PRIMARY KEY,
    received_at    timestamptz NOT NULL DEFAULT now(),
    topic          text NOT NULL,
    gateway_id     text,
    reason         text NOT NULL,
    detail         text NOT NULL,
    reading_index  integer,
    reading_id     uuid,
    reading_count  integer NOT NULL DEFAULT 1,
    -- sha256 of topic, payload and reading index: a redelivered message adds no second row.
    dedupe_key     bytea NOT NULL UNIQUE,
    payload        bytea NOT NULL
);
CREATE INDEX rejected_messages_reason_idx ON rejected_messages (reason, received_at);

-- Per-patient threshold overrides on top of the protocol defaults in rules_engine.profiles
-- (NULL = inherit the protocol's limit). Activating a self-management plan writes its zones here.
CREATE TABLE threshold_overrides (
    patient_id   uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    red_low      double precision,
    yellow_low   double precision,
    yellow_high  double precision,
    red_high     double precision,
    updated_by   uuid REFERENCES users (id),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, kind)
);

CREATE TABLE self_management_plans (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id    uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    version       integer NOT NULL,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'retired')),
    body          jsonb NOT NULL,
    created_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    retired_at    timestamptz,
    UNIQUE (patient_id, version)
);
CREATE UNIQUE INDEX one_active_plan_per_patient ON self_management_plans (patient_id) WHERE status = 'active';

CREATE TABLE alarms (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id        uuid NOT NULL REFERENCES patients (id),
    rule              text NOT NULL,
    kind              text,
    severity          text NOT NULL CHECK (severity IN ('red', 'yellow', 'missed', 'needs_review')),
    state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_at         timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    count             integer NOT NULL DEFAULT 1 CHECK (count >= 1),
    first_value       double precision,
    last_value        double precision,
    limit_value       double precision,
    last_reading_id   uuid,
    last_measured_at  timestamptz,
    window_start      timestamptz,
    window_end        timestamptz,
    explanation_nb    text NOT NULL,
    explanation_en    text NOT NULL,
    details           jsonb NOT NULL DEFAULT '{}'::jsonb,
    back_in_range     boolean NOT NULL DEFAULT false,
    assignee_id       uuid REFERENCES users (id),
    acknowledged_at   timestamptz,
    acknowledged_by   uuid REFERENCES users (id),
    resolved_at       timestamptz,
    resolved_by       uuid REFERENCES users (id),
    resolution        text,
    escalated_at      timestamptz
);
-- One open (or acknowledged) alarm per patient and rule: later readings update it, never a second row.
CREATE UNIQUE INDEX alarms_one_unresolved ON alarms (patient_id, rule) WHERE state <> 'resolved';
CREATE INDEX alarms_queue_idx ON alarms (state, severity, opened_at);
CREATE INDEX alarms_patient_idx ON alarms (patient_id, opened_at DESC);

CREATE TABLE alarm_events (
    id         bigserial PRIMARY KEY,
    alarm_id   uuid NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    actor_id   uuid REFERENCES users (id),
    event      text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alarm_events_alarm_idx ON alarm_events (alarm_id, at);

CREATE TABLE emergency_access (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id),
    patient_id  uuid NOT NULL REFERENCES patients (id),
    reason      text NOT NULL CHECK (length(reason) >= 10),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX emergency_access_lookup_idx ON emergency_access (user_id, patient_id, expires_at);

-- Every read and write of patient data. Append-only: updates and deletes are refused by the database itself.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    user_id      uuid,
    username     text,
    role         text,
    team_id      uuid,
    patient_id   uuid,
    action       text NOT NULL,
    resource     text NOT NULL,
    outcome      text NOT NULL,
    client_addr  text,
    emergency    boolean NOT NULL DEFAULT false,
    reason       text
);
CREATE INDEX audit_log_patient_idx ON audit_log (patient_id, at);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
