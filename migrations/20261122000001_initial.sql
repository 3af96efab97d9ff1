-- The whole product's schema, in SQL that SQLite and PostgreSQL both accept, so one set of
-- migrations serves both backends:
--   * ids are prefixed text (`ptn_01J…`), made by the application, never by the database;
--   * times are BIGINT milliseconds since the Unix epoch (UTC), which sort, index and port;
--   * JSON is kept as TEXT, written and read by the application;
--   * every whole number is BIGINT and every flag a BIGINT 0 or 1: sqlx's Any driver maps
--     neither SQLite's booleans nor a mix of integer widths the same way on both backends;
--   * every table that a partner owns carries `partner_id`, and every query filters on it.

-- Tenants.
CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- People who sign in. One partner, many users; an email signs in to one user only.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    partner_id     TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    email          TEXT NOT NULL UNIQUE,
    -- argon2id in PHC string form; salt and parameters travel with it.
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX users_partner ON users (partner_id);

-- API keys for /api/v1. Only a SHA-256 of the key is kept (the key has ~238 random bits, so a
-- slow hash buys nothing); `prefix` lets a partner tell keys apart. Revoked keys stay listed.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_partner ON api_keys (partner_id, created_at);

-- Endpoints. `event_types` is a JSON array of type names, or NULL for all types.
-- `deactivated_reason` is set when the dispatcher switched the webhook off (NULL when the
-- partner did); the previous signing secret stays valid until `previous_secret_expires_at`.
CREATE TABLE webhooks (
    id                          TEXT PRIMARY KEY,
    partner_id                  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    url                         TEXT NOT NULL,
    active                      BIGINT NOT NULL CHECK (active IN (0, 1)),
    deactivated_at              BIGINT,
    deactivated_reason          TEXT,
    event_types                 TEXT,
    auth_header_name            TEXT,
    auth_header_value           TEXT,
    payload_template            TEXT,
    signing_secret              TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);
CREATE INDEX webhooks_partner ON webhooks (partner_id, created_at);

-- What happened for a partner, kept whole so a reactivated webhook can be sent what it
-- missed. `id` may come from the operator (publishing it twice creates nothing new).
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    status      TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_partner_time ON events (partner_id, created_at);

-- One event on its way to one webhook: the dispatcher's queue. `state` is one of
-- pending, held (webhook inactive), succeeded, failed. A process claims a due row by setting
-- `locked_until` (a lease) before it sends, so a crash leads to a repeat, never a loss.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    locked_by        TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, state);

-- One HTTP request of a delivery, or a test. The log the portal shows; pruned after the
-- retention period. The auth header's value is masked in `request_headers` before it is kept.
CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    partner_id       TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    delivery_id      TEXT REFERENCES deliveries (id) ON DELETE SET NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    attempt_number   BIGINT NOT NULL,
    outcome          TEXT NOT NULL,
    status_code      BIGINT,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    request_headers  TEXT NOT NULL,
    request_body     TEXT NOT NULL,
    response_body    TEXT,
    test             BIGINT NOT NULL CHECK (test IN (0, 1)),
    created_at       BIGINT NOT NULL
);
CREATE INDEX attempts_webhook_time ON attempts (webhook_id, created_at, id);
CREATE INDEX attempts_partner_time ON attempts (partner_id, created_at, id);
