-- Need-driven measurement schedules: the step-ups of a patient's plan in force, the schedule in force that follows
-- from them (what the gateway is sent and the missed-measurement rule judges), and every change, for the nurse.

-- One row per step-up in force (a plan's `step_ups` entry, by trigger kind and zone). `until_day` is the first
-- local day it may step down; `green_days` counts green days of `kind` judged so far (through `judged_through`).
CREATE TABLE schedule_steps (
    patient_id      uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    zone            text NOT NULL CHECK (zone IN ('yellow', 'red')),
    plan_id         uuid NOT NULL REFERENCES self_management_plans (id) ON DELETE CASCADE,
    alarm_id        uuid REFERENCES alarms (id) ON DELETE SET NULL,
    since           timestamptz NOT NULL,
    until_day       date NOT NULL,
    green_days      integer NOT NULL DEFAULT 0 CHECK (green_days >= 0),
    judged_through  date NOT NULL,
    PRIMARY KEY (patient_id, kind, zone)
);

-- The schedule in force for a patient whose plan has been stepped up at least once: the plan content with the
-- active step-ups applied. `revision` grows with every change; the API publishes until `published_revision`
-- catches up (the outbox of the plan channel, so a change committed by ingest reaches the gateway).
CREATE TABLE patient_schedules (
    patient_id          uuid PRIMARY KEY REFERENCES patients (id) ON DELETE CASCADE,
    plan_id             uuid NOT NULL REFERENCES self_management_plans (id) ON DELETE CASCADE,
    revision            integer NOT NULL CHECK (revision >= 1),
    body                jsonb NOT NULL,
    changed_at          timestamptz NOT NULL DEFAULT now(),
    published_revision  integer NOT NULL DEFAULT 0,
    published_at        timestamptz,
    publish_error       text
);
CREATE INDEX patient_schedules_unpublished_idx ON patient_schedules (changed_at) WHERE published_revision < revision;

-- History: every step up, extension, step down and end (plan replaced or retired), with what the patient was told.
CREATE TABLE schedule_changes (
    id            bigserial PRIMARY KEY,
    patient_id    uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    change        text NOT NULL CHECK (change IN ('stepped_up', 'extended', 'superseded', 'stepped_down', 'ended')),
    kind          text NOT NULL,
    zone          text NOT NULL CHECK (zone IN ('yellow', 'red')),
    plan_version  integer NOT NULL,
    revision      integer NOT NULL,
    alarm_id      uuid REFERENCES alarms (id) ON DELETE SET NULL,
    actor_id      uuid REFERENCES users (id),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX schedule_changes_patient_idx ON schedule_changes (patient_id, at);
