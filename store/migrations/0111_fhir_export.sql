-- FHIR Bulk Data export (issue #20): the `data_export` role (names in clinician_api/roles.py), export jobs and
-- their NDJSON files. Files are kept in the database (gzip), so any API replica can serve the status and the
-- download; they are deleted with their job (DELETE on the status URL, or when the job expires).

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('nurse', 'physician', 'admin', 'data_export'));

CREATE TABLE fhir_exports (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES users (id),
    level          text NOT NULL CHECK (level IN ('patient', 'group')),
    team_id        uuid REFERENCES care_teams (id),
    types          text[] NOT NULL,
    since          timestamptz,
    pseudonymised  boolean NOT NULL,
    pseudonym_key  bytea,
    request_url    text NOT NULL,
    state          text NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    progress       text NOT NULL DEFAULT 'queued',
    error          text,
    patient_count  integer,
    created_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    expires_at     timestamptz NOT NULL DEFAULT now() + interval '1 day'
);
CREATE INDEX fhir_exports_user_idx ON fhir_exports (user_id, created_at DESC);

CREATE TABLE fhir_export_files (
    export_id      uuid NOT NULL REFERENCES fhir_exports (id) ON DELETE CASCADE,
    seq            integer NOT NULL,
    resource_type  text NOT NULL,
    line_count     integer NOT NULL,
    ndjson_gzip    bytea NOT NULL,
    PRIMARY KEY (export_id, seq)
);
