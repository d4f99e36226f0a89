-- One-time enrolment codes. The installer's QR code carries a short-lived token instead of the gateway's broker
-- password; the password waits here sealed under a key derived from that token (the database alone cannot open
-- it) until the gateway claims it once, when the sealed copy is erased. A newer code for a gateway replaces the older.
CREATE TABLE gateway_enrolments (
    gateway_id       text PRIMARY KEY REFERENCES gateways (id) ON DELETE CASCADE,
    token_hash       text NOT NULL,
    sealed_password  bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    claimed_at       timestamptz,
    claimed_from     text,
    CHECK ((claimed_at IS NULL) = (sealed_password IS NOT NULL))
);
