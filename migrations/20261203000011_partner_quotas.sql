-- Quotas per partner (tenant isolation): resends, replays and test sends counted per minute.
-- One row per partner and action; the count starts again when a new minute does.
CREATE TABLE partner_rates (
    partner_id  TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    action      TEXT NOT NULL,
    minute      BIGINT NOT NULL,
    used        BIGINT NOT NULL,
    PRIMARY KEY (partner_id, action)
);
