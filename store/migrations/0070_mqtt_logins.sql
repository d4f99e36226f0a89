-- Broker logins and ACLs for the EMQX-cluster variant (VARDE_BROKER_KIND=emqx). EMQX's PostgreSQL authenticator and
-- authorizer read only the two views at the end (their queries are in deploy/emqx/emqx.hocon); `varde broker init`
-- and `varde gateway add/rotate/revoke` write the tables. With Mosquitto the tables stay empty.

CREATE TABLE mqtt_logins (
    username       text PRIMARY KEY CHECK (length(username) BETWEEN 1 AND 100),
    -- set for a gateway's login (its username is its id); NULL for a service login (varde-ingest, varde-api)
    gateway_id     text UNIQUE REFERENCES gateways (id) ON DELETE CASCADE,
    -- EMQX password_hash_algorithm {name = sha256, salt_position = suffix}: lower-case hex of sha256(password || salt)
    password_hash  text NOT NULL CHECK (password_hash ~ '^[0-9a-f]{64}$'),
    salt           text NOT NULL CHECK (length(salt) >= 16),
    enabled        boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (gateway_id IS NULL OR gateway_id = username)
);

-- Allow rules only: whatever no row allows, EMQX denies (authorization.no_match = deny).
CREATE TABLE mqtt_acl (
    username  text NOT NULL REFERENCES mqtt_logins (username) ON DELETE CASCADE,
    action    text NOT NULL CHECK (action IN ('publish', 'subscribe')),
    topic     text NOT NULL CHECK (length(topic) BETWEEN 1 AND 500),
    PRIMARY KEY (username, action, topic)
);

-- A login counts only while it is enabled and, for a gateway, while the gateway itself is enabled, so disabling the
-- gateway row (`varde gateway revoke`) refuses the next connection and empties its ACL even without the login row.
CREATE VIEW mqtt_auth AS
SELECT l.username,
       l.password_hash,
       l.salt,
       false AS is_superuser,
       l.gateway_id IS NOT NULL AS is_gateway
FROM mqtt_logins l
LEFT JOIN gateways g ON g.id = l.gateway_id
WHERE l.enabled AND (l.gateway_id IS NULL OR g.enabled);

CREATE VIEW mqtt_acl_rules AS
SELECT a.username, 'allow'::text AS permission, a.action, a.topic
FROM mqtt_acl a
JOIN mqtt_auth m ON m.username = a.username;
