-- TimescaleDB has its hourly continuous aggregate `readings_hourly` since 0060; the plain-PostgreSQL rollup table
-- of this version is not made here. The version is recorded all the same.
SELECT 1;
