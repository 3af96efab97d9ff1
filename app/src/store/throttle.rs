//! Sign-in attempts per email and client address, and the waits they earn.
//!
//! An attempt is counted *before* its password is checked, in one transaction over its keys,
//! so parallel attempts can't get more password checks than a key's limit: the attempt that
//! reaches the limit locks the key in the same transaction, and every later one finds the lock
//! (PostgreSQL makes concurrent upserts of one key wait for each other's commit; SQLite has one
//! writer). A refused attempt rolls back and counts nowhere: no password was checked, and a
//! locked key makes no new rows. A successful sign-in takes its count back ([`take_back`]).
//!
//! Keys are stored as SHA-256 (hex) of their kind and value, so what a stranger types as an
//! email can't make large rows, and a copy of the table names no one.

use std::net::IpAddr;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Db, now_ms};

/// Attempts are counted over this window (ms); an older count starts again.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// How many attempts a key takes within the window, and the waits once it is past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts within the window; the one that reaches it locks the key.
    pub attempts: i64,
    /// The first wait (ms); each attempt after a wait doubles it.
    pub first_lock_ms: i64,
    /// The longest wait (ms).
    pub max_lock_ms: i64,
}

/// What is counted. One sign-in counts against all three.
#[derive(Clone, PartialEq, Eq)]
pub enum ThrottleKey {
    /// One email from one client: a person mistyping, or a guesser at one account.
    EmailAndClient {
        /// Trimmed, lower-cased.
        email: String,
        /// From [`client_group`].
        client: String,
    },
    /// One client trying any email.
    Client(String),
    /// One email tried from anywhere (a guesser with many addresses).
    Email(String),
}

impl std::fmt::Debug for ThrottleKey {
    /// The kind only: the values are what the table hashes away.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl ThrottleKey {
    /// The keys of a sign-in as `email` (as typed) from `client` (a [`client_group`]), in the
    /// order every transaction takes them, so that two sign-ins can't wait on each other's rows.
    pub fn for_sign_in(email: &str, client: Option<&str>) -> Vec<Self> {
        let email = normalize_email(email);
        let mut keys = Vec::with_capacity(3);
        if let Some(client) = client {
            keys.push(Self::EmailAndClient { email: email.clone(), client: client.to_owned() });
            keys.push(Self::Client(client.to_owned()));
        }
        keys.push(Self::Email(email));
        keys
    }

    /// The attempts this key takes and the waits it earns.
    pub fn limit(&self) -> Limit {
        match self {
            // A person mistyping a few times is not held up.
            Self::EmailAndClient { .. } => Limit { attempts: 5, first_lock_ms: 30_000, max_lock_ms: 15 * 60_000 },
            // An office behind one address signs in often; a guesser tries many emails.
            Self::Client(_) => Limit { attempts: 20, first_lock_ms: 30_000, max_lock_ms: 15 * 60_000 },
            // Anyone who knows an email can run this one up: only a guesser with many addresses
            // gets this far, its lock holds back only clients that failed for the email (see
            // `admit`), and the wait stays short.
            Self::Email(_) => Limit { attempts: 100, first_lock_ms: 30_000, max_lock_ms: 2 * 60_000 },
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::EmailAndClient { .. } => "email+client",
            Self::Client(_) => "client",
            Self::Email(_) => "email",
        }
    }

    /// What the table keeps: SHA-256 (hex) of the kind and the value.
    pub fn stored(&self) -> String {
        let text = match self {
            Self::EmailAndClient { email, client } => format!("email+client:{email}\n{client}"),
            Self::Client(client) => format!("client:{client}"),
            Self::Email(email) => format!("email:{email}"),
        };
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// An email as the throttle counts it: trimmed and lower-cased, so `Ann@x ` and `ann@x` are one.
fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The client as the throttle counts it: an IPv4 address, or the /64 network of an IPv6 one
/// (one host usually holds a whole /64, so counting single IPv6 addresses would give it
/// 2^64 fresh allowances). IPv4 mapped into IPv6 (`::ffff:a.b.c.d`, a dual-stack listener)
/// counts as the IPv4 address.
pub fn client_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(network))
            }
        },
    }
}

/// The wait after the `attempts`-th attempt within the window, `None` below the limit: the
/// first wait at the limit, doubling with each attempt after it, up to the longest.
pub fn lock_for(attempts: i64, limit: Limit) -> Option<i64> {
    let over = attempts - limit.attempts;
    (over >= 0).then(|| limit.first_lock_ms.saturating_mul(1_i64 << over.min(20)).min(limit.max_lock_ms))
}

/// Whether a sign-in may go on to its password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; check the password.
    Counted,
    /// A key is locked for this long (ms); nothing was counted.
    Locked(i64),
}

/// Counts a sign-in attempt against each of `keys` (from [`ThrottleKey::for_sign_in`]) before
/// its password is checked: `Counted` when no key is locked, locking the keys it brings to
/// their limit; `Locked` with the longest wait, counting nothing, when one is.
///
/// The email's own lock holds back only the clients that have failed for that email in the
/// window: a client trying it for the first time (its owner, from their own place) still gets
/// its check. Otherwise strangers at many addresses could keep the lock, and its owner out,
/// for as long as they liked; a distributed guesser gets one guess per address more.
#[tracing::instrument(skip_all)]
pub async fn admit(db: &Db, keys: &[ThrottleKey]) -> anyhow::Result<Admission> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let mut wait = None;
    let mut first_from_this_client = false;
    for key in keys {
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END \
             RETURNING failures, locked_until",
        )
        .bind(key.stored())
        .bind(now)
        .bind(now - WINDOW_MS)
        .fetch_one(&mut *tx)
        .await
        .context("could not count the sign-in attempt")?;
        let attempts: i64 = row.try_get("failures")?;
        let locked_until: Option<i64> = row.try_get("locked_until")?;
        if matches!(key, ThrottleKey::EmailAndClient { .. }) {
            first_from_this_client = attempts == 1;
        }
        if let Some(until) = locked_until.filter(|until| *until > now)
            && !(matches!(key, ThrottleKey::Email(_)) && first_from_this_client)
        {
            wait = wait.max(Some(until - now));
            continue;
        }
        if let Some(lock) = lock_for(attempts, key.limit()) {
            sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE key = $2")
                .bind(now + lock)
                .bind(key.stored())
                .execute(&mut *tx)
                .await
                .context("could not lock sign-ins")?;
        }
    }
    match wait {
        Some(wait) => {
            tx.rollback().await.context("could not roll the refused attempt back")?;
            Ok(Admission::Locked(wait))
        }
        None => {
            tx.commit().await.context("could not commit the sign-in attempt")?;
            Ok(Admission::Counted)
        }
    }
}

/// How a counted attempt ended without being a failed guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password was right: the pair of email and client starts again from nothing.
    SignedIn,
    /// No password was checked (no argon2 slot came free).
    Unchecked,
}

/// Takes back what an attempt counted: lowers each key's count by one (lifting a lock this
/// attempt set), and after a sign-in forgets its email and client pair altogether.
#[tracing::instrument(skip_all, fields(outcome = ?outcome))]
pub async fn take_back(db: &Db, keys: &[ThrottleKey], outcome: Outcome) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    for key in keys {
        if outcome == Outcome::SignedIn && matches!(key, ThrottleKey::EmailAndClient { .. }) {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key.stored()).execute(&mut *tx).await
        } else {
            sqlx::query(
                "UPDATE login_throttle SET failures = failures - 1, \
                   locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END \
                 WHERE key = $1 AND failures > 0",
            )
            .bind(key.stored())
            .bind(key.limit().attempts)
            .execute(&mut *tx)
            .await
        }
        .context("could not take the sign-in attempt back")?;
    }
    tx.commit().await.context("could not commit the taken back attempt")?;
    Ok(())
}

/// Deletes the rows that no longer count (window over, no lock in force); answers how many.
#[tracing::instrument(skip_all)]
pub async fn prune(db: &Db, now: i64) -> anyhow::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM login_throttle WHERE window_start < $1 AND (locked_until IS NULL OR locked_until <= $2)",
    )
    .bind(now - WINDOW_MS)
    .bind(now)
    .execute(db.writer())
    .await
    .context("could not prune the sign-in throttle")?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_at_the_limit_and_double_up_to_a_ceiling() {
        let pair = ThrottleKey::EmailAndClient { email: "a@b.c".into(), client: "192.0.2.1".into() }.limit();
        assert_eq!(lock_for(4, pair), None);
        assert_eq!(lock_for(5, pair), Some(30_000));
        assert_eq!(lock_for(6, pair), Some(60_000));
        assert_eq!(lock_for(7, pair), Some(120_000));
        assert_eq!(lock_for(10, pair), Some(15 * 60_000));
        assert_eq!(lock_for(1000, pair), Some(15 * 60_000), "no overflow");
    }

    #[test]
    fn an_email_alone_locks_late_and_briefly() {
        let email = ThrottleKey::Email("a@b.c".into()).limit();
        assert_eq!(lock_for(99, email), None);
        assert_eq!(lock_for(100, email), Some(30_000));
        assert_eq!(lock_for(1000, email), Some(2 * 60_000), "a stranger holds the owner out two minutes at most");
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let group = |ip: &str| client_group(ip.parse().unwrap());
        assert_eq!(group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(group("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(group("2001:db8:1:3::1"), group("2001:db8:1:2::1"));
        assert_eq!(group("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(group("203.0.113.9"), "203.0.113.9");
    }

    #[test]
    fn keys_are_hashed_and_emails_normalized() {
        let keys = ThrottleKey::for_sign_in(" Ann@Acme.test ", Some("203.0.113.9"));
        assert_eq!(keys, ThrottleKey::for_sign_in("ann@acme.test", Some("203.0.113.9")));
        let long = ThrottleKey::for_sign_in(&"x".repeat(100_000), Some("203.0.113.9"));
        for key in keys.iter().chain(&long) {
            let stored = key.stored();
            assert_eq!(stored.len(), 64, "{key:?}");
            assert!(stored.chars().all(|c| c.is_ascii_hexdigit()), "{stored}");
        }
        // The kinds never share a stored key.
        let stored: std::collections::HashSet<_> = keys.iter().map(ThrottleKey::stored).collect();
        assert_eq!(stored.len(), 3);
        assert_eq!(ThrottleKey::for_sign_in("a@b.c", None).len(), 1, "no client, no client keys");
    }
}
