//! Failed sign-ins per email and per client address, and the waits they earn.

use anyhow::Context;
use sqlx::Row;

use super::{Db, now_ms};

/// Failures are counted over this window (ms); an older count starts again.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// The first wait once a key reaches its limit (ms); each failure after that doubles it.
pub const FIRST_LOCK_MS: i64 = 30 * 1000;
/// The longest wait (ms).
pub const MAX_LOCK_MS: i64 = 15 * 60 * 1000;

/// What is counted: one email (tried by anyone) or one client address (trying any email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleKey {
    /// An email as typed, lower-cased.
    Email(String),
    /// A client's IP address.
    Client(String),
}

impl ThrottleKey {
    /// Failures within the window before sign-ins on this key must wait.
    pub fn limit(&self) -> i64 {
        match self {
            // A person mistyping a few times is not held up.
            Self::Email(_) => 5,
            // An office behind one address signs in often; a guesser tries many emails.
            Self::Client(_) => 20,
        }
    }

    fn stored(&self) -> String {
        match self {
            Self::Email(email) => format!("email:{}", email.to_lowercase()),
            Self::Client(address) => format!("ip:{address}"),
        }
    }
}

/// The wait after the `failures`-th failure within the window, for a key whose limit is `limit`.
pub fn lock_for(failures: i64, limit: i64) -> Option<i64> {
    let over = failures - limit;
    (over >= 0).then(|| FIRST_LOCK_MS.saturating_mul(1_i64 << over.min(20)).min(MAX_LOCK_MS))
}

/// Until when (ms) sign-ins on any of `keys` must wait; `None` when none is locked.
pub async fn locked_until(db: &Db, keys: &[ThrottleKey]) -> anyhow::Result<Option<i64>> {
    let now = now_ms();
    let mut latest = None;
    for key in keys {
        let row = sqlx::query("SELECT locked_until FROM login_throttle WHERE key = $1")
            .bind(key.stored())
            .fetch_optional(db.pool())
            .await
            .context("could not read the sign-in throttle")?;
        if let Some(until) = row.map(|r| r.try_get::<Option<i64>, _>("locked_until")).transpose()?.flatten()
            && until > now
        {
            latest = latest.max(Some(until));
        }
    }
    Ok(latest)
}

/// Counts a failed sign-in against each key, locking the ones at their limit.
pub async fn record_failure(db: &Db, keys: &[ThrottleKey]) -> anyhow::Result<()> {
    let now = now_ms();
    for key in keys {
        let failures: i64 = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END \
             RETURNING failures",
        )
        .bind(key.stored())
        .bind(now)
        .bind(now - WINDOW_MS)
        .fetch_one(db.writer())
        .await
        .context("could not count the failed sign-in")?
        .try_get("failures")?;
        if let Some(wait) = lock_for(failures, key.limit()) {
            sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE key = $2")
                .bind(now + wait)
                .bind(key.stored())
                .execute(db.writer())
                .await
                .context("could not lock sign-ins")?;
        }
    }
    Ok(())
}

/// Forgets the failures of `key` (a successful sign-in).
pub async fn clear(db: &Db, key: &ThrottleKey) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key.stored())
        .execute(db.writer())
        .await
        .context("could not reset the sign-in throttle")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_at_the_limit_and_double_up_to_a_ceiling() {
        assert_eq!(lock_for(4, 5), None);
        assert_eq!(lock_for(5, 5), Some(30_000));
        assert_eq!(lock_for(6, 5), Some(60_000));
        assert_eq!(lock_for(7, 5), Some(120_000));
        assert_eq!(lock_for(10, 5), Some(MAX_LOCK_MS));
        assert_eq!(lock_for(1000, 5), Some(MAX_LOCK_MS), "no overflow");
    }
}
