-- Record integration (journalføring): organisations and their record systems (FHIR endpoints with OAuth2 client
-- credentials), measurement subscriptions with a high-water mark, and the durable outbox the journal worker drains.

CREATE TABLE organisations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Enhetsregisteret organisation number (9 digits), sent as urn:oid:2.16.578.1.12.4.1.4.101.
    org_number  text NOT NULL UNIQUE CHECK (org_number ~ '^[0-9]{9}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE care_teams ADD COLUMN organisation_id uuid REFERENCES organisations (id);
CREATE INDEX care_teams_organisation_idx ON care_teams (organisation_id);

-- HPR number (Helsepersonellregisteret) of a clinician, sent as the Practitioner's identifier when known.
ALTER TABLE users ADD COLUMN hpr_number text CHECK (hpr_number ~ '^[0-9]{1,9}$');

CREATE TABLE record_endpoints (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id       uuid NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    base_url              text NOT NULL CHECK (base_url ~ '^https?://[^ ]+$'),
    -- OAuth2 client credentials (HelseID style); the secret itself is never stored: `env:NAME` or `file:/path`.
    token_url             text CHECK (token_url ~ '^https?://[^ ]+$'),
    client_id             text,
    client_secret_ref     text CHECK (client_secret_ref ~ '^(env|file):.+$'),
    scope                 text,
    journal_alarms        boolean NOT NULL DEFAULT true,
    max_attempts          integer NOT NULL DEFAULT 30 CHECK (max_attempts >= 1),
    backoff_base_seconds  double precision NOT NULL DEFAULT 5 CHECK (backoff_base_seconds > 0),
    backoff_max_seconds   double precision NOT NULL DEFAULT 900 CHECK (backoff_max_seconds > 0),
    timeout_seconds       double precision NOT NULL DEFAULT 15 CHECK (timeout_seconds > 0),
    -- Set when the system was found down: no entry of this endpoint is tried before then (one probe per back-off).
    paused_until          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, name),
    CHECK ((token_url IS NULL) = (client_id IS NULL) AND (client_id IS NULL) = (client_secret_ref IS NULL))
);
-- Resolved alarms of an organisation's patients go to exactly one record system.
CREATE UNIQUE INDEX record_endpoints_one_alarm_journal ON record_endpoints (organisation_id) WHERE journal_alarms;

CREATE TABLE journal_subscriptions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id  uuid NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    endpoint_id      uuid NOT NULL REFERENCES record_endpoints (id) ON DELETE CASCADE,
    kinds            text[],                       -- NULL: every measurement kind
    batch_size       integer NOT NULL DEFAULT 100 CHECK (batch_size BETWEEN 1 AND 1000),
    bundle_type      text NOT NULL DEFAULT 'transaction' CHECK (bundle_type IN ('transaction', 'collection')),
    -- Readings received after the mark are new. The feed re-reads `overlap_seconds` behind it (a batch that
    -- committed late) and skips what journal_shared_readings says it already sent.
    hwm_received_at  timestamptz NOT NULL DEFAULT now(),
    overlap_seconds  integer NOT NULL DEFAULT 300 CHECK (overlap_seconds >= 0),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_subscriptions_organisation_idx ON journal_subscriptions (organisation_id);

CREATE TABLE journal_shared_readings (
    subscription_id  uuid NOT NULL REFERENCES journal_subscriptions (id) ON DELETE CASCADE,
    reading_id       uuid NOT NULL,
    received_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, reading_id)
);
CREATE INDEX journal_shared_readings_age_idx ON journal_shared_readings (subscription_id, received_at);

-- The feed finds new readings by their arrival time.
CREATE INDEX readings_received_idx ON readings (received_at);

CREATE TABLE journal_outbox (
    id                 uuid PRIMARY KEY,           -- the Bundle's id (stable: resends carry the same identifiers)
    kind               text NOT NULL CHECK (kind IN ('alarm_document', 'measurements')),
    dedupe_key         text NOT NULL UNIQUE,
    endpoint_id        uuid NOT NULL REFERENCES record_endpoints (id),
    patient_ids        uuid[] NOT NULL,
    alarm_id           uuid REFERENCES alarms (id),
    subscription_id    uuid REFERENCES journal_subscriptions (id) ON DELETE SET NULL,
    bundle             jsonb NOT NULL,
    bundle_identifier  text NOT NULL,
    resource_count     integer NOT NULL,
    state              text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    last_attempt_at    timestamptz,
    last_status        integer,
    last_error         text,
    location           text,
    delivered_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_outbox_due_idx ON journal_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX journal_outbox_state_idx ON journal_outbox (state, created_at DESC, id);
CREATE INDEX journal_outbox_patients_idx ON journal_outbox USING gin (patient_ids);
