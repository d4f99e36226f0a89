-- pgaudit writes DDL and role changes (CREATE/ALTER/DROP of tables, functions, triggers; CREATE/ALTER ROLE, GRANT,
-- REVOKE) to the server log as AUDIT lines, whoever runs them. It needs the library preloaded
-- (shared_preload_libraries = 'pgaudit', which `varde stack up` sets); on a server without it this migration only
-- records its version, and docs/operations.md says how to turn it on.
DO $$
BEGIN
    IF current_setting('shared_preload_libraries') ~ '(^|[ ,])pgaudit([ ,]|$)' THEN
        CREATE EXTENSION IF NOT EXISTS pgaudit;
        EXECUTE format('ALTER DATABASE %I SET pgaudit.log = %L', current_database(), 'ddl, role');
        EXECUTE format('ALTER DATABASE %I SET pgaudit.log_relation = off', current_database());
    END IF;
END $$;
