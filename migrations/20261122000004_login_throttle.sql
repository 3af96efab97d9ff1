-- Security (issue 7): failed sign-ins, counted per email and per client address, so guessing
-- passwords meets growing waits. `key` is `email:<address>` or `ip:<address>`; `failures`
-- count within the window that began at `window_start`; sign-ins on that key are refused
-- until `locked_until`. The email need not belong to a user: a lock tells nothing about that.
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    locked_until  BIGINT
);
