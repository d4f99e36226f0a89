-- Readings on TimescaleDB: the same columns as the plain-PostgreSQL variant, as a hypertable with
-- compression and retention policies. Chosen by `varde db migrate` when the extension is available.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE readings (
    id              uuid NOT NULL,
    patient_id      uuid NOT NULL,
    gateway_id      text NOT NULL,
    kind            text NOT NULL,
    value           double precision NOT NULL,
    measured_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    device_address  text,
    device_type     text,
    device_model    text,
    grp             text,
    flags           text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, measured_at)
);

CREATE INDEX readings_patient_kind_time_idx ON readings (patient_id, kind, measured_at);

SELECT create_hypertable('readings', 'measured_at', chunk_time_interval => interval '7 days');

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id, kind',
    timescaledb.compress_orderby = 'measured_at'
);
SELECT add_compression_policy('readings', interval '30 days');
SELECT add_retention_policy('readings', interval '3650 days');

-- Chunks are created on demand by TimescaleDB; the function exists so callers need not know the variant.
CREATE FUNCTION varde_ensure_reading_partitions(first_year integer, last_year integer) RETURNS integer
LANGUAGE sql AS $$ SELECT 0 $$;
