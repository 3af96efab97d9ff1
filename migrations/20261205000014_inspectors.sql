-- Request inspectors (#19): a throwaway capture URL per inspector, served by the portal, that
-- keeps the newest 100 requests it receives for 24 hours. Deleting an inspector (or its
-- partner) deletes what it captured.
CREATE TABLE inspectors (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX inspectors_partner ON inspectors (partner_id, created_at);
CREATE INDEX inspectors_expiry ON inspectors (expires_at);

-- `seq` orders one inspector's requests (1, 2, …: ids made in the same millisecond don't);
-- `headers` is a JSON array of [name, value] pairs; `verdict` the signature checks as JSON,
-- NULL when no webhook of the partner pointed at the inspector.
CREATE TABLE inspector_requests (
    id            TEXT PRIMARY KEY,
    inspector_id  TEXT NOT NULL REFERENCES inspectors (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    method        TEXT NOT NULL,
    headers       TEXT NOT NULL,
    body          TEXT NOT NULL,
    verdict       TEXT
);
CREATE INDEX inspector_requests_newest ON inspector_requests (inspector_id, seq);
