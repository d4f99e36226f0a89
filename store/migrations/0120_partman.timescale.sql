-- TimescaleDB keeps its own chunks and retention policy (0002); pg_partman is the plain-PostgreSQL path only.
-- The version is recorded all the same.
SELECT 1;
