-- What the clinician API needs on top of the core schema: the alarm queue's sort key and index, where a threshold
-- override came from, and lookups for the audit log and emergency access.

-- The queue sorts by severity (red first), then age. The rank follows rules_engine.alarms.SEVERITY_RANK
-- (red worst, then yellow, missed, needs_review); 0 sorts first.
ALTER TABLE alarms ADD COLUMN severity_rank smallint GENERATED ALWAYS AS (
    CASE severity WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 WHEN 'missed' THEN 2 ELSE 3 END
) STORED;
CREATE INDEX alarms_unresolved_queue_idx ON alarms (severity_rank, opened_at, id) WHERE state <> 'resolved';
CREATE INDEX alarms_resolved_queue_idx ON alarms (resolved_at DESC, id) WHERE state = 'resolved';

-- A threshold override is either typed in by a clinician ('manual') or written by activating a plan ('plan').
ALTER TABLE threshold_overrides
    ADD COLUMN source text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'plan')),
    ADD COLUMN plan_id uuid REFERENCES self_management_plans (id) ON DELETE SET NULL;

CREATE INDEX audit_log_user_idx ON audit_log (user_id, at);
CREATE INDEX emergency_access_patient_idx ON emergency_access (patient_id, expires_at);
CREATE INDEX self_management_plans_patient_idx ON self_management_plans (patient_id, version DESC);
