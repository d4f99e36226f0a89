-- Hourly trend rollup on plain PostgreSQL: min, max, sum and count per patient, kind and UTC hour, the same columns
-- as TimescaleDB's continuous aggregate of the same name (0060), so `store/trends.py` reads either the same way.
--
-- Kept by statement triggers on `readings` in the transaction that writes the readings: a stored reading is in its
-- hour at commit, with no refresh lag, whichever writer stored it (ingest's COPY, a staging insert, the demo, a
-- restore). An insert adds its rows' hours (ON CONFLICT merge, keys in sorted order so concurrent batches cannot
-- deadlock on them); an update or delete recomputes the hours it touched from the readings left. A TRUNCATE of the
-- parent empties the rollup. Not seen by the triggers: statements on a partition directly and dropped partitions;
-- retention (store/retention.py) prunes the rollup for those itself.

CREATE TABLE readings_hourly (
    patient_id  uuid NOT NULL,
    kind        text NOT NULL,
    bucket      timestamptz NOT NULL,
    min_value   double precision NOT NULL,
    max_value   double precision NOT NULL,
    sum_value   double precision NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (patient_id, kind, bucket)
);

CREATE FUNCTION varde_readings_hourly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO readings_hourly AS h (patient_id, kind, bucket, min_value, max_value, sum_value, n)
    SELECT patient_id, kind, date_trunc('hour', measured_at, 'UTC'), min(value), max(value), sum(value), count(*)
    FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (patient_id, kind, bucket) DO UPDATE SET
        min_value = least(h.min_value, EXCLUDED.min_value),
        max_value = greatest(h.max_value, EXCLUDED.max_value),
        sum_value = h.sum_value + EXCLUDED.sum_value,
        n = h.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

-- The hours (patient, kind, UTC hour) in `hours` recomputed from the readings: rows gone, rows rebuilt.
CREATE FUNCTION varde_readings_hourly_recompute(hours_patient uuid[], hours_kind text[], hours_bucket timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM readings_hourly h
    USING unnest(hours_patient, hours_kind, hours_bucket) AS k(patient_id, kind, bucket)
    WHERE h.patient_id = k.patient_id AND h.kind = k.kind AND h.bucket = k.bucket;
    INSERT INTO readings_hourly (patient_id, kind, bucket, min_value, max_value, sum_value, n)
    SELECT k.patient_id, k.kind, k.bucket, a.lo, a.hi, a.total, a.n
    FROM (SELECT DISTINCT * FROM unnest(hours_patient, hours_kind, hours_bucket)) AS k(patient_id, kind, bucket)
    CROSS JOIN LATERAL (
        SELECT min(r.value) AS lo, max(r.value) AS hi, sum(r.value) AS total, count(*) AS n FROM readings r
        WHERE r.patient_id = k.patient_id AND r.kind = k.kind
        AND r.measured_at >= k.bucket AND r.measured_at < k.bucket + interval '1 hour') AS a
    WHERE a.n > 0
    ORDER BY 1, 2, 3;
END;
$$;

CREATE FUNCTION varde_readings_hourly_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p uuid[];
    k text[];
    b timestamptz[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(patient_id), array_agg(kind), array_agg(bucket) INTO p, k, b FROM (
            SELECT patient_id, kind, date_trunc('hour', measured_at, 'UTC') AS bucket FROM old_rows
            UNION SELECT patient_id, kind, date_trunc('hour', measured_at, 'UTC') FROM new_rows) AS t;
    ELSE
        SELECT array_agg(patient_id), array_agg(kind), array_agg(bucket) INTO p, k, b FROM (
            SELECT DISTINCT patient_id, kind, date_trunc('hour', measured_at, 'UTC') AS bucket FROM old_rows) AS t;
    END IF;
    IF p IS NOT NULL THEN
        PERFORM varde_readings_hourly_recompute(p, k, b);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION varde_readings_hourly_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE readings_hourly;
    RETURN NULL;
END;
$$;

CREATE TRIGGER readings_hourly_insert AFTER INSERT ON readings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION varde_readings_hourly_add();
CREATE TRIGGER readings_hourly_update AFTER UPDATE ON readings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION varde_readings_hourly_changed();
CREATE TRIGGER readings_hourly_delete AFTER DELETE ON readings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION varde_readings_hourly_changed();
CREATE TRIGGER readings_hourly_truncate AFTER TRUNCATE ON readings
    FOR EACH STATEMENT EXECUTE FUNCTION varde_readings_hourly_truncated();

-- The readings stored before this migration.
INSERT INTO readings_hourly (patient_id, kind, bucket, min_value, max_value, sum_value, n)
SELECT patient_id, kind, date_trunc('hour', measured_at, 'UTC'), min(value), max(value), sum(value), count(*)
FROM readings GROUP BY 1, 2, 3;
