-- Episodes of follow-up (oppfølgingsepisoder) and hand-overs between teams of different organisations.
--
-- `patients.team_id` stays the one notion of "the team responsible now": every access check, the alarm queue and
-- the escalation targets read it. While a patient has an active episode, the episode's `team_id` is the source and
-- a trigger copies it to the patient; any other change of `patients.team_id` is refused.

CREATE TABLE care_episodes (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id         uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'finished')),
    -- Responsible team now (active) or at the end (finished).
    team_id            uuid NOT NULL REFERENCES care_teams (id),
    reason             text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    conditions         text[] NOT NULL DEFAULT '{}',
    protocol           text NOT NULL DEFAULT 'general'
                       CHECK (protocol IN ('general', 'heart_failure', 'copd', 'diabetes', 'hypertension')),
    plan               text NOT NULL DEFAULT '' CHECK (length(plan) <= 4000),
    -- The clinician who enrolled the patient or accepted the latest hand-over (EpisodeOfCare.careManager).
    care_manager_id    uuid REFERENCES users (id),
    started_at         timestamptz NOT NULL DEFAULT now(),
    started_by         uuid REFERENCES users (id),
    ended_at           timestamptz,
    ended_by           uuid REFERENCES users (id),
    discharge_reason   text CHECK (length(discharge_reason) BETWEEN 1 AND 500),
    discharge_summary  text CHECK (length(discharge_summary) <= 4000),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'finished') = (ended_at IS NOT NULL)),
    CHECK ((status = 'finished') = (discharge_reason IS NOT NULL))
);
CREATE UNIQUE INDEX care_episodes_one_active ON care_episodes (patient_id) WHERE status = 'active';
CREATE INDEX care_episodes_patient_idx ON care_episodes (patient_id, started_at DESC);
CREATE INDEX care_episodes_team_idx ON care_episodes (team_id) WHERE status = 'active';

CREATE TABLE care_handovers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    episode_id        uuid NOT NULL REFERENCES care_episodes (id) ON DELETE CASCADE,
    patient_id        uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    from_team_id      uuid NOT NULL REFERENCES care_teams (id),
    to_team_id        uuid NOT NULL REFERENCES care_teams (id),
    state             text NOT NULL DEFAULT 'proposed'
                      CHECK (state IN ('proposed', 'accepted', 'declined', 'withdrawn')),
    -- The structured hand-over note.
    situation         text NOT NULL CHECK (length(situation) BETWEEN 1 AND 4000),
    plan              text NOT NULL CHECK (length(plan) BETWEEN 1 AND 4000),
    open_alarms       text NOT NULL DEFAULT '' CHECK (length(open_alarms) <= 4000),
    open_alarm_ids    uuid[] NOT NULL DEFAULT '{}',
    watch             text NOT NULL CHECK (length(watch) BETWEEN 1 AND 4000),
    -- Days the former team keeps read-only (consultative) access after acceptance; NULL: none.
    consult_days      integer CHECK (consult_days BETWEEN 1 AND 365),
    proposed_by       uuid NOT NULL REFERENCES users (id),
    proposed_at       timestamptz NOT NULL DEFAULT now(),
    decided_by        uuid REFERENCES users (id),
    decided_at        timestamptz,
    decline_reason    text CHECK (length(decline_reason) BETWEEN 1 AND 1000),
    CHECK (from_team_id <> to_team_id),
    CHECK ((state = 'proposed') = (decided_at IS NULL)),
    CHECK ((state = 'declined') = (decline_reason IS NOT NULL))
);
-- One open proposal per episode: a second one waits until the first is decided or withdrawn.
CREATE UNIQUE INDEX care_handovers_one_proposed ON care_handovers (episode_id) WHERE state = 'proposed';
CREATE INDEX care_handovers_to_team_idx ON care_handovers (to_team_id, proposed_at) WHERE state = 'proposed';
CREATE INDEX care_handovers_episode_idx ON care_handovers (episode_id, proposed_at);
CREATE INDEX care_handovers_patient_idx ON care_handovers (patient_id) WHERE state = 'proposed';

-- Read-only access of a former team, agreed in a hand-over; ends at `until` or with the episode.
CREATE TABLE care_episode_consultants (
    episode_id   uuid NOT NULL REFERENCES care_episodes (id) ON DELETE CASCADE,
    team_id      uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    handover_id  uuid NOT NULL REFERENCES care_handovers (id) ON DELETE CASCADE,
    since        timestamptz NOT NULL DEFAULT now(),
    until        timestamptz NOT NULL,
    PRIMARY KEY (episode_id, team_id)
);
CREATE INDEX care_episode_consultants_team_idx ON care_episode_consultants (team_id);

-- The history of an episode, one row per step (what the dashboard and the period report show).
CREATE TABLE care_episode_events (
    id           bigserial PRIMARY KEY,
    episode_id   uuid NOT NULL REFERENCES care_episodes (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    kind         text NOT NULL CHECK (kind IN ('enrolled', 'changed', 'handover_proposed', 'handover_accepted',
                                               'handover_declined', 'handover_withdrawn', 'discharged')),
    user_id      uuid REFERENCES users (id),
    team_id      uuid NOT NULL REFERENCES care_teams (id),
    handover_id  uuid REFERENCES care_handovers (id) ON DELETE CASCADE,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX care_episode_events_episode_idx ON care_episode_events (episode_id, at);

CREATE FUNCTION varde_episode_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'active' THEN
        UPDATE patients SET team_id = NEW.team_id WHERE id = NEW.patient_id AND team_id IS DISTINCT FROM NEW.team_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER care_episodes_team AFTER INSERT OR UPDATE OF team_id, status ON care_episodes
    FOR EACH ROW EXECUTE FUNCTION varde_episode_team();

CREATE FUNCTION varde_patient_team_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM care_episodes e WHERE e.patient_id = NEW.id AND e.status = 'active'
               AND e.team_id <> NEW.team_id) THEN
        RAISE EXCEPTION 'the responsible team follows the active care episode: hand the patient over instead'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER patients_team_guard BEFORE UPDATE OF team_id ON patients
    FOR EACH ROW EXECUTE FUNCTION varde_patient_team_guard();

-- Hand-overs and episode steps are journaled like resolved alarms.
ALTER TABLE journal_outbox DROP CONSTRAINT journal_outbox_kind_check;
ALTER TABLE journal_outbox ADD CONSTRAINT journal_outbox_kind_check
    CHECK (kind IN ('alarm_document', 'measurements', 'episode_document'));

-- Every existing patient gets an episode with their current team, so nothing changes for them.
INSERT INTO care_episodes (patient_id, team_id, reason, conditions, protocol, started_at, status, ended_at,
                           discharge_reason)
SELECT p.id, p.team_id, 'Oppfølging registrert før episoder / follow-up registered before episodes',
       ARRAY[p.protocol], p.protocol, p.created_at,
       CASE WHEN p.active THEN 'active' ELSE 'finished' END,
       CASE WHEN p.active THEN NULL ELSE now() END,
       CASE WHEN p.active THEN NULL ELSE 'Inaktiv ved innføring av episoder / inactive when episodes came' END
FROM patients p;
INSERT INTO care_episode_events (episode_id, at, kind, team_id, detail)
SELECT e.id, e.started_at, 'enrolled', e.team_id, '{"migrated": true}'::jsonb FROM care_episodes e;
