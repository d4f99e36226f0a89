-- Each pgBackRest backup that `varde db backup` completes, so every service can report the newest backup's age
-- in /metrics without access to the backup repository.
CREATE TABLE backup_runs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('full', 'diff', 'incr')),
    label        text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    repository   text NOT NULL
);
CREATE INDEX backup_runs_finished_idx ON backup_runs (finished_at);
