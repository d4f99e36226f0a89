-- Readings on plain PostgreSQL: native range partitions by measured_at (one per year), a default partition so
-- that no insert can ever fail for lack of a partition, and a function that keeps yearly partitions ahead.

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
) PARTITION BY RANGE (measured_at);

CREATE INDEX readings_patient_kind_time_idx ON readings (patient_id, kind, measured_at);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;

CREATE FUNCTION varde_ensure_reading_partitions(first_year integer, last_year integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    y integer;
    created integer := 0;
BEGIN
    FOR y IN first_year .. last_year LOOP
        IF to_regclass(format('readings_y%s', y)) IS NULL THEN
            -- Rows of that year already caught by the default partition move into the new partition.
            EXECUTE format('CREATE TABLE readings_y%s (LIKE readings INCLUDING DEFAULTS)', y);
            EXECUTE format(
                'WITH moved AS (DELETE FROM readings_default WHERE measured_at >= %L AND measured_at < %L RETURNING *) '
                'INSERT INTO readings_y%s SELECT * FROM moved',
                make_timestamptz(y, 1, 1, 0, 0, 0, 'UTC'), make_timestamptz(y + 1, 1, 1, 0, 0, 0, 'UTC'), y);
            EXECUTE format('ALTER TABLE readings ATTACH PARTITION readings_y%s FOR VALUES FROM (%L) TO (%L)',
                y, make_timestamptz(y, 1, 1, 0, 0, 0, 'UTC'), make_timestamptz(y + 1, 1, 1, 0, 0, 0, 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;

SELECT varde_ensure_reading_partitions(extract(year FROM now())::integer - 11, extract(year FROM now())::integer + 2);
