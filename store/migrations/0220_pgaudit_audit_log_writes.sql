-- Every UPDATE and DELETE on audit_log goes to the server log as an AUDIT: OBJECT line, whoever runs it, and so does
-- every SET (SET ROLE among them). The append-only trigger (0121) lets role varde_retention delete; the services log
-- in as a superuser that may SET ROLE varde_retention, so without these lines such a delete would leave no trace.
-- pgaudit object auditing logs a statement on a table when the role named in pgaudit.role holds the privilege the
-- statement uses, so varde_auditor holds UPDATE and DELETE on audit_log and nothing else. pgaudit writes the line
-- before the statement runs, so a refused attempt is logged as well. On a server without pgaudit preloaded this
-- migration only creates the role and records its version (as 0122).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'varde_auditor') THEN
        CREATE ROLE varde_auditor NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database on the same server created it at the same moment
END $$;

GRANT UPDATE, DELETE ON audit_log TO varde_auditor;

DO $$
BEGIN
    IF current_setting('shared_preload_libraries') ~ '(^|[ ,])pgaudit([ ,]|$)' THEN
        EXECUTE format('ALTER DATABASE %I SET pgaudit.log = %L', current_database(), 'ddl, role, misc_set');
        EXECUTE format('ALTER DATABASE %I SET pgaudit.role = %L', current_database(), 'varde_auditor');
    END IF;
END $$;
