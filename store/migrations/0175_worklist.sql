-- The nurse's worklist (docs/organisations.md, "Worklist"): who is working on a work item that is not an alarm
-- (alarms carry their own assignee_id), and period summary reports journaled as FHIR DocumentReferences.

-- One row per item being worked on. `item_type` is a worklist provider's name (`message`, `inactive_patient`,
-- `plan_review`, ...), `item_key` the item's id within its type (thread id, patient id, plan id).
CREATE TABLE work_assignments (
    item_type    text NOT NULL CHECK (item_type ~ '^[a-z_]{1,40}$'),
    item_key     text NOT NULL CHECK (length(item_key) BETWEEN 1 AND 100),
    patient_id   uuid NOT NULL REFERENCES patients (id),
    assignee_id  uuid NOT NULL REFERENCES users (id),
    assigned_by  uuid REFERENCES users (id),
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_type, item_key)
);
CREATE INDEX work_assignments_patient_idx ON work_assignments (patient_id);

-- The period summary report (a PDF in a DocumentReference) travels through the same outbox as alarm documents.
-- `episode_document` is the episodes' own kind (0160_episodes.sql): listed here too, so this later migration keeps it.
ALTER TABLE journal_outbox DROP CONSTRAINT journal_outbox_kind_check;
ALTER TABLE journal_outbox ADD CONSTRAINT journal_outbox_kind_check
    CHECK (kind IN ('alarm_document', 'measurements', 'episode_document', 'period_report'));
