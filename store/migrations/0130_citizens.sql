-- Patients and relatives as users of their own ("Min oppfølging"): who they are, their sessions, the proxies
-- (fullmakter) patients give relatives, secure messages with the care team, and reservations against sharing.

-- A person who signs in to the patient app: identified by the national identity number the national sign-in
-- (ID-porten / Helsenorge `pid`) vouches for. They are the patient whose `patients.national_id` matches, and a
-- relative of each patient whose proxy names them. `username`/`password_hash` only for the demo's local sign-in.
CREATE TABLE citizens (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    national_id    text NOT NULL UNIQUE CHECK (national_id ~ '^[0-9]{11}$'),
    display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    username       text UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    password_hash  text,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Server-side sessions of the patient app (the browser holds only a random id in an HttpOnly cookie; the hash is
-- stored). Idle and absolute expiry are checked on every request; sign-out ends the row.
CREATE TABLE citizen_sessions (
    id_hash       bytea PRIMARY KEY,
    citizen_id    uuid NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    via           text NOT NULL CHECK (via IN ('oidc', 'password')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX citizen_sessions_citizen_idx ON citizen_sessions (citizen_id);

-- An OpenID Connect sign-in under way: what the callback must find again (state), check (nonce) and prove (PKCE).
CREATE TABLE oidc_pending (
    state          text PRIMARY KEY CHECK (length(state) BETWEEN 32 AND 128),
    audience       text NOT NULL CHECK (audience IN ('patient', 'staff')),
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    next           text,
    expires_at     timestamptz NOT NULL
);

-- A staff sign-in through the staff issuer hands the dashboard a bearer token once, through a short-lived code.
CREATE TABLE staff_handoffs (
    code_hash   bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX users_hpr_number_idx ON users (hpr_number) WHERE hpr_number IS NOT NULL;

-- A proxy (fullmakt): the patient, or a nurse on the patient's documented wish (`basis` says where it is written
-- down), lets a named relative act in the listed rights until `valid_until`. Revoking sets `revoked_at`; rows
-- are kept, so the history of who could see what stays.
CREATE TABLE proxies (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id          uuid NOT NULL REFERENCES patients (id),
    relative_id         uuid NOT NULL REFERENCES citizens (id),
    relation            text NOT NULL CHECK (length(relation) BETWEEN 1 AND 100),
    rights              text[] NOT NULL CHECK (
        cardinality(rights) >= 1 AND rights <@ ARRAY['read_measurements', 'read_plan', 'answer_questionnaires',
                                                     'write_messages', 'read_access_log']::text[]),
    valid_from          timestamptz NOT NULL DEFAULT now(),
    valid_until         timestamptz NOT NULL,
    granted_at          timestamptz NOT NULL DEFAULT now(),
    granted_by_citizen  uuid REFERENCES citizens (id),
    granted_by_user     uuid REFERENCES users (id),
    basis               text CHECK (length(basis) <= 500),
    revoked_at          timestamptz,
    revoked_by_citizen  uuid REFERENCES citizens (id),
    revoked_by_user     uuid REFERENCES users (id),
    CHECK (valid_until > valid_from),
    CHECK ((granted_by_citizen IS NULL) <> (granted_by_user IS NULL)),
    CHECK (granted_by_user IS NULL OR length(basis) >= 10)
);
CREATE INDEX proxies_relative_idx ON proxies (relative_id, valid_until);
CREATE INDEX proxies_patient_idx ON proxies (patient_id, granted_at DESC);

-- Secure messages between the patient (or a relative with the right) and the patient's care team.
-- `awaiting_team_since` is the time of the oldest patient-side message the team has not answered: the nurse
-- queue's work item and its age. NULL once the team has replied.
CREATE TABLE message_threads (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id           uuid NOT NULL REFERENCES patients (id),
    subject              text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_message_at      timestamptz NOT NULL DEFAULT now(),
    awaiting_team_since  timestamptz
);
CREATE INDEX message_threads_patient_idx ON message_threads (patient_id, last_message_at DESC);
CREATE INDEX message_threads_awaiting_idx ON message_threads (awaiting_team_since) WHERE awaiting_team_since IS NOT NULL;

-- A message is signed as it was shown when written ("Kari Nordmann, sykepleier"); `read_at` is when the other
-- side first opened it.
CREATE TABLE messages (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    thread_id          uuid NOT NULL REFERENCES message_threads (id),
    sent_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    author_citizen_id  uuid REFERENCES citizens (id),
    proxy_id           uuid REFERENCES proxies (id),
    author_user_id     uuid REFERENCES users (id),
    author_name        text NOT NULL CHECK (length(author_name) BETWEEN 1 AND 200),
    author_role        text NOT NULL CHECK (author_role IN ('patient', 'relative', 'nurse', 'physician', 'admin')),
    body               text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    read_at            timestamptz,
    CHECK ((author_citizen_id IS NULL) <> (author_user_id IS NULL))
);
CREATE INDEX messages_thread_idx ON messages (thread_id, sent_at);

-- Nurses' reply templates: for all teams (team_id NULL) or one team.
CREATE TABLE reply_templates (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid REFERENCES care_teams (id) ON DELETE CASCADE,
    lang        text NOT NULL CHECK (lang IN ('nb', 'en')),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (team_id, lang, title)
);
INSERT INTO reply_templates (team_id, lang, title, body) VALUES
    (NULL, 'nb', 'Takk, vi ringer deg', 'Takk for meldingen. Vi ringer deg i løpet av dagen.'),
    (NULL, 'nb', 'Fortsett som før', 'Takk for meldingen. Målingene dine ser fine ut. Fortsett som før, og skriv igjen om noe endrer seg.'),
    (NULL, 'nb', 'Ring 113 ved akutt forverring', 'Takk for meldingen. Blir du plutselig mye dårligere, ring 113.'),
    (NULL, 'en', 'Thanks, we will call you', 'Thank you for your message. We will call you during the day.'),
    (NULL, 'en', 'Carry on as before', 'Thank you for your message. Your measurements look fine. Carry on as before, and write again if anything changes.'),
    (NULL, 'en', 'Call 113 if suddenly worse', 'Thank you for your message. If you suddenly feel much worse, call 113.')
ON CONFLICT DO NOTHING;

-- Reservations (reservasjoner): the patient's standing no to sharing measurements with the hospital record, and
-- to research export. No row means no reservation. Every change is also appended to the history below.
CREATE TABLE patient_reservations (
    patient_id          uuid NOT NULL REFERENCES patients (id),
    kind                text NOT NULL CHECK (kind IN ('record_sharing', 'research')),
    reserved            boolean NOT NULL,
    changed_at          timestamptz NOT NULL DEFAULT now(),
    changed_by_citizen  uuid REFERENCES citizens (id),
    changed_by_user     uuid REFERENCES users (id),
    PRIMARY KEY (patient_id, kind)
);
CREATE TABLE patient_reservation_changes (
    id                  bigserial PRIMARY KEY,
    patient_id          uuid NOT NULL REFERENCES patients (id),
    kind                text NOT NULL,
    reserved            boolean NOT NULL,
    at                  timestamptz NOT NULL DEFAULT now(),
    changed_by_citizen  uuid REFERENCES citizens (id),
    changed_by_user     uuid REFERENCES users (id)
);
CREATE INDEX patient_reservation_changes_patient_idx ON patient_reservation_changes (patient_id, at DESC);
CREATE TRIGGER patient_reservation_changes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON patient_reservation_changes FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- A relative's action is audited under the relative's own identity (user_id = the citizen, role 'relative'),
-- for the patient (patient_id), through this proxy.
ALTER TABLE audit_log ADD COLUMN proxy_id uuid;
