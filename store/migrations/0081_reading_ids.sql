-- One row per reading id, whatever its time. `readings` is partitioned by measured_at, so its primary key is
-- (id, measured_at) and cannot see the same id sent again with another time; this table can. Ingest writes a
-- reading's id here in the same transaction as the reading (ingest_service/writer.py): a re-sent id with the same
-- time is a duplicate (stored once), with another time a conflict (dead-lettered as `id_conflict`, the first
-- stored reading stays). Unpartitioned and narrow (uuid + timestamptz), so the check is one index probe per id
-- instead of one per partition.
CREATE TABLE reading_ids (
    id           uuid PRIMARY KEY,
    measured_at  timestamptz NOT NULL
);

-- Readings stored before this table existed; where an id was already stored twice, the first received counts.
INSERT INTO reading_ids (id, measured_at)
SELECT DISTINCT ON (id) id, measured_at FROM readings ORDER BY id, received_at, measured_at;
