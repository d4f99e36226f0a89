-- Hourly trend aggregate: on plain PostgreSQL there is none; the trend query reads `readings` directly
-- (`store/trends.py` chooses by whether `readings_hourly` exists). The version is recorded all the same.
SELECT 1;
