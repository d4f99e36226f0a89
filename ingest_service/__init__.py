"""Ingest: MQTT readings → validated, deduplicated, batched COPY into PostgreSQL, acknowledged after commit."""
