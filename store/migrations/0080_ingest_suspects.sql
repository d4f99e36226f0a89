-- The ingest crash-loop guard (ingest_service/guard.py): messages redelivered to a worker are marked here while
-- they are processed; a message still marked when it comes back again was in the hands of a worker that died.
-- Rows live while a message is being processed, and stay for a message dead-lettered as poison_message (so a
-- redelivery of it is recognised at once); in normal operation the table is empty.
CREATE TABLE ingest_suspects (
    key        bytea PRIMARY KEY,          -- sha256 of topic and payload
    solo       boolean NOT NULL,           -- processed alone (a death then points at this message)
    worker_id  text NOT NULL,
    deaths     integer NOT NULL DEFAULT 0,
    marked_at  timestamptz NOT NULL DEFAULT now()
);
