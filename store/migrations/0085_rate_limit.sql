-- The sign-in and enrolment rate limit, shared by every API replica (one budget per account and one per client
-- address, however many replicas answer). A row is one attempt that counts against a bucket within the window:
-- taken before the password is checked and removed again when the attempt succeeded, so what counts is failures
-- and attempts still in flight. Unlogged: a database crash forgets the windows, which only resets the limit.
CREATE UNLOGGED TABLE rate_limit_hits (
    bucket   text NOT NULL,
    attempt  uuid NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX rate_limit_hits_bucket_idx ON rate_limit_hits (bucket, at);
CREATE INDEX rate_limit_hits_at_idx ON rate_limit_hits (at);
CREATE INDEX rate_limit_hits_attempt_idx ON rate_limit_hits (attempt);

-- Take one attempt from each bucket (limits[i] attempts per window in buckets[i]) or from none: NULL when taken,
-- else the whole seconds until the fullest bucket has room. Buckets are locked in a fixed order for the rest of
-- the transaction, so concurrent attempts on one bucket are counted one after another; commit soon after.
CREATE FUNCTION rate_limit_take(buckets text[], limits integer[], window_seconds double precision, attempt_id uuid)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := clock_timestamp() - make_interval(secs => window_seconds);
    wait integer;
    frees_at timestamptz;
    i integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('varde.rate_limit:' || b, 0))
    FROM (SELECT DISTINCT b FROM unnest(buckets) AS b ORDER BY b) AS locked;
    DELETE FROM rate_limit_hits WHERE at <= cutoff;
    FOR i IN 1 .. coalesce(array_length(buckets, 1), 0) LOOP
        SELECT h.at + make_interval(secs => window_seconds) INTO frees_at
        FROM rate_limit_hits h WHERE h.bucket = buckets[i]
        ORDER BY h.at DESC OFFSET limits[i] - 1 LIMIT 1;
        IF frees_at IS NOT NULL THEN
            wait := greatest(coalesce(wait, 1), ceil(extract(epoch FROM frees_at - clock_timestamp()))::integer);
        END IF;
    END LOOP;
    IF wait IS NULL THEN
        INSERT INTO rate_limit_hits (bucket, attempt) SELECT b, attempt_id FROM unnest(buckets) AS b;
    END IF;
    RETURN wait;
END $$;
