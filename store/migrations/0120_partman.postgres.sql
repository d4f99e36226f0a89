-- Readings partitions handed to pg_partman, replacing the home-made yearly function of 0002: yearly native
-- partitions named readings_pYYYY (the existing readings_yYYYY are renamed, data untouched), from eleven years
-- back to two ahead, and a default partition behind them so no insert fails for lack of a partition. Retention is
-- not set here: the retention job (store/retention.py) writes it from the settings and runs pg_partman's
-- maintenance. Boundaries are midnight UTC on 1 January, as before.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman') THEN
        RAISE EXCEPTION 'pg_partman is not installed on this PostgreSQL server'
            USING HINT = format('install the Debian package postgresql-%s-partman (deploy/install-system-deps.sh)',
                                current_setting('server_version_num')::integer / 10000);
    END IF;
END $$;

SET LOCAL TimeZone = 'UTC';
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;

DO $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.readings'::regclass AND c.relname ~ '^readings_y[0-9]{4}$'
    LOOP
        EXECUTE format('ALTER TABLE public.%I RENAME TO %I', part.relname, 'readings_p' || substr(part.relname, 11));
    END LOOP;
END $$;

-- Rows the old default partition caught wait in a temporary table and go back through the parent afterwards.
CREATE TEMPORARY TABLE readings_default_0002 ON COMMIT DROP AS SELECT * FROM readings_default;
DROP TABLE readings_default;

SELECT partman.create_parent(
    p_parent_table => 'public.readings',
    p_control => 'measured_at',
    p_type => 'native',
    p_interval => 'yearly',
    p_premake => 2,
    p_start_partition => (date_trunc('year', now()) - interval '11 years')::text,
    p_jobmon => false
);
UPDATE partman.part_config
SET infinite_time_partitions = true, retention_keep_table = false, retention_keep_index = false
WHERE parent_table = 'public.readings';

CREATE TABLE readings_default PARTITION OF readings DEFAULT;
INSERT INTO readings SELECT * FROM readings_default_0002;

-- Kept for callers that add years ahead of time or file the rows the default partition caught; now by pg_partman.
CREATE OR REPLACE FUNCTION varde_ensure_reading_partitions(first_year integer, last_year integer) RETURNS integer
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    before integer;
    after integer;
BEGIN
    SELECT count(*) INTO before FROM partman.show_partitions('public.readings');
    PERFORM partman.partition_data_time('public.readings', p_batch_count => 100000, p_analyze => false);
    PERFORM partman.create_partition_time('public.readings',
        ARRAY(SELECT make_timestamptz(y, 1, 1, 0, 0, 0, 'UTC') FROM generate_series(first_year, last_year) AS y),
        false);
    SELECT count(*) INTO after FROM partman.show_partitions('public.readings');
    RETURN after - before;
END;
$$;
