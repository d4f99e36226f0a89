-- The audit log is append-only for every role but `varde_retention`, the role the retention job acts as
-- (store/retention.py): UPDATE and TRUNCATE are refused for everyone, DELETE unless the current role is
-- varde_retention. The privileges say the same for roles that are not the owner; the trigger holds for the owner
-- and superusers too, and changing it is DDL that pgaudit logs (0122).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'varde_retention') THEN
        CREATE ROLE varde_retention NOLOGIN;
    END IF;
END $$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
GRANT SELECT, DELETE ON audit_log TO varde_retention;
GRANT SELECT, DELETE ON rejected_messages TO varde_retention;

CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'varde_retention' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused for role %)', TG_OP, current_user
        USING HINT = 'only the retention job (role varde_retention) deletes rows past their retention';
END;
$$;
