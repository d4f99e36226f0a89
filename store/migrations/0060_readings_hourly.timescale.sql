-- Hourly trend aggregate on TimescaleDB: a continuous aggregate of min, max, sum and count per patient, kind and UTC
-- hour. The API re-aggregates it into the hour, day and week buckets of the patient's time zone
-- (`store/trends.py`), so it answers the same as the plain query on `readings`.
--
-- WITH NO DATA: migrations run in a transaction, where a continuous aggregate may only be created empty; the
-- refresh policy fills it. materialized_only = false (real-time aggregation): rows newer than the last refresh are
-- read from `readings` at query time, so a fresh reading shows at once.

CREATE MATERIALIZED VIEW readings_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    patient_id,
    kind,
    time_bucket(interval '1 hour', measured_at) AS bucket,
    min(value) AS min_value,
    max(value) AS max_value,
    sum(value) AS sum_value,
    count(*) AS n
FROM readings
GROUP BY patient_id, kind, bucket
WITH NO DATA;

CREATE INDEX readings_hourly_patient_kind_bucket_idx ON readings_hourly (patient_id, kind, bucket);

-- start_offset NULL: every refresh covers all time, so a reading that arrives late (a gateway that was offline for
-- weeks) updates its hour at the next refresh (until then that hour lacks it: the one way this path can differ from
-- the plain query); a refresh only recomputes the hours that changed since the last one.
SELECT add_continuous_aggregate_policy('readings_hourly',
    start_offset => NULL,
    end_offset => interval '1 hour',
    schedule_interval => interval '10 minutes');

-- The same retention as `readings` (0002), so the aggregate never shows hours whose readings are gone.
SELECT add_retention_policy('readings_hourly', interval '3650 days');
