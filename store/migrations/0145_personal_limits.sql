-- Personal baselines and limits (rules_engine.personal), versioned per patient and kind: the rules scheduler's
-- daily job appends a version when a baseline changes; the rules read the newest version valid now. A version
-- whose centre is NULL retires the personal limits (too few recent readings): the protocol's apply again.
CREATE TABLE personal_limits (
    patient_id    uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    kind          text NOT NULL,
    version       integer NOT NULL CHECK (version >= 1),
    computed_at   timestamptz NOT NULL DEFAULT now(),
    valid_from    timestamptz NOT NULL,
    centre        double precision,
    spread        double precision CHECK (spread >= 0),
    n             integer NOT NULL CHECK (n >= 0),
    window_start  timestamptz,
    window_end    timestamptz,
    -- The personal yellow band as computed (before layering with the protocol and hand-set limits).
    yellow_low    double precision,
    yellow_high   double precision,
    PRIMARY KEY (patient_id, kind, version),
    CHECK ((centre IS NULL) = (spread IS NULL))
);
CREATE INDEX personal_limits_current_idx ON personal_limits (patient_id, kind, version DESC);
