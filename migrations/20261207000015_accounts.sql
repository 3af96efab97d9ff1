-- Self-service accounts (#21).
--
-- `session_epoch` goes up when a user's password changes (or is set through a link): a
-- session remembers the epoch it signed in under, and one from an older epoch is over.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
-- Whether the user has a password of their own yet (0 until their first link is used): the
-- rule that a partner keeps an admin counts only admins who can sign in.
ALTER TABLE users ADD COLUMN activated BIGINT NOT NULL DEFAULT 1;

-- One-time links to set a password: a new user's first one, or a reset the operator printed.
-- Only SHA-256 of the token is kept; using a link deletes it, and a user has one at a time.
-- `made_by` names who made it (as the audit log does), for the entry its use writes.
CREATE TABLE password_links (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    made_by     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX password_links_user ON password_links (user_id);
CREATE INDEX password_links_expiry ON password_links (expires_at);

-- Who did what, per partner: `actor` as the page shows it (an email, an API key's name, the
-- operator), `action` from a fixed list, `subject` what it was done to. Ids are ULIDs, so
-- they sort by time within a millisecond too.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL
);
CREATE INDEX audit_log_newest ON audit_log (partner_id, id);
CREATE INDEX audit_log_age ON audit_log (at);
