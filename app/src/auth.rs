//! Credentials: argon2id password hashes, generated passwords, API keys and their hashes.
//! Server side only. Hashing is slow on purpose (and takes 19 MiB), so callers run it through
//! [`argon2_off_thread`]: off the async threads, a few at a time.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

use crate::domain::{API_KEY_PREFIX, API_KEY_RANDOM_CHARS, ApiKeyToken, Environment, NewPassword};

/// Length of a generated password: 20 letters and digits, about 119 bits.
pub const GENERATED_PASSWORD_CHARS: usize = 20;

/// Hashes a new password with argon2id and a fresh salt (the crate's recommended parameters),
/// in PHC string form.
pub fn hash_password(password: &NewPassword) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
        .context("could not hash the password")?;
    Ok(hash.to_string())
}

/// A hash of nothing anyone knows, verified when the email is unknown, so that a wrong email
/// takes as long as a wrong password and the two can't be told apart.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let password = NewPassword::parse(&generate_password()).expect("generated passwords are valid");
    hash_password(&password).expect("argon2 with default parameters works")
});

/// What a user's password hash is until they set one through their link: no PHC string, so
/// it matches nothing; checking against it costs what any check costs (see [`verify_password`]).
pub const UNSET_PASSWORD_HASH: &str = "unset";

/// Whether `candidate` is the password behind `stored_hash`. With no stored hash (unknown
/// email) it does the same work and answers false. Counted in `portal_password_checks_total`.
pub fn verify_password(candidate: &str, stored_hash: Option<&str>) -> bool {
    metrics::counter!("portal_password_checks_total").increment(1);
    // An unknown email, or a user who has not set a password yet: the same work, then false.
    let stored_hash = stored_hash.filter(|h| *h != UNSET_PASSWORD_HASH);
    let hash_text = stored_hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(hash) = PasswordHash::new(hash_text) else {
        tracing::error!("a stored password hash is not a PHC string");
        return false;
    };
    let matches = Argon2::default().verify_password(candidate.as_bytes(), &hash).is_ok();
    matches && stored_hash.is_some()
}

/// Warms the dummy hash up at start, so the first failed login is not slower than the rest.
pub fn prepare() {
    LazyLock::force(&DUMMY_HASH);
}

/// A one-time link's token: `pwl_` and 256 random bits, base64url.
pub fn generate_link_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("pwl_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A random password for a new user: 20 letters and digits.
pub fn generate_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, GENERATED_PASSWORD_CHARS)
}

/// A generated password as a new user's [`NewPassword`].
pub fn generate_new_password() -> NewPassword {
    NewPassword::parse(&generate_password()).expect("generated passwords are valid")
}

/// How long argon2 work waits for a slot before it gives up with [`Busy`]: a burst of sign-ins
/// is answered "busy, try again" at once instead of queueing, each waiter holding a request
/// open, behind work that takes a good part of a second each.
pub const ARGON2_SLOT_WAIT: Duration = Duration::from_secs(1);

/// Slots for argon2 work, one per core: more at once only adds 19 MiB each and makes every one
/// of them slower (40 parallel checks on an unbounded blocking pool reached about 780 MB).
static ARGON2_SLOTS: LazyLock<Arc<tokio::sync::Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    Arc::new(tokio::sync::Semaphore::new(cores))
});

/// Every argon2 slot stayed taken for [`ARGON2_SLOT_WAIT`]: the portal is busy checking
/// passwords. Sign-in answers it with 429 "try again".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password-hashing slot stayed busy for {ARGON2_SLOT_WAIT:?}")]
pub struct Busy;

/// Runs argon2 `work` (a hash or a check) on a blocking thread once one of the slots is free,
/// waiting at most [`ARGON2_SLOT_WAIT`] for it; the error is [`Busy`] (downcast it) when none
/// came. The slot is held by the blocking work itself, so a request that gives up early does
/// not free it before argon2 is done.
pub async fn argon2_off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let slot = tokio::time::timeout(ARGON2_SLOT_WAIT, ARGON2_SLOTS.clone().acquire_owned())
        .await
        .map_err(|_| Busy)?
        .context("the argon2 slots are closed")?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .context("the argon2 task failed")
}

/// [`hash_password`] off the async threads (argon2 takes a good part of a second), in one of
/// the [`argon2_off_thread`] slots.
pub async fn hash_password_off_thread(password: &NewPassword) -> anyhow::Result<String> {
    let password = password.clone();
    argon2_off_thread(move || hash_password(&password)).await?
}

/// A new API key: `whp_` and 40 random letters and digits.
pub fn generate_api_key(environment: Environment) -> ApiKeyToken {
    let random = Alphanumeric.sample_string(&mut rand::rngs::OsRng, API_KEY_RANDOM_CHARS);
    ApiKeyToken::from_generated(format!("{API_KEY_PREFIX}{}{random}", environment.key_marker()))
}

/// What the database keeps of an API key: SHA-256, in hex. The key is random enough that a
/// fast hash is safe, and a fast hash keeps every API request cheap.
pub fn hash_api_key(token: &ApiKeyToken) -> String {
    hex::encode(Sha256::digest(token.expose().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery staple", Some(&hash)));
        assert!(!verify_password("correct horse battery stapl", Some(&hash)));
        assert!(!verify_password("", Some(&hash)));
    }

    #[test]
    fn unknown_user_never_verifies() {
        assert!(!verify_password("anything at all", None));
    }

    #[test]
    fn same_password_hashes_differently() {
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        assert_ne!(hash_password(&password).unwrap(), hash_password(&password).unwrap());
    }

    #[tokio::test]
    async fn argon2_work_waits_a_bounded_time_for_a_slot() {
        // Take every slot, as a burst would: the next piece of work gives up as Busy.
        let held: Vec<_> = (0..ARGON2_SLOTS.available_permits())
            .map(|_| ARGON2_SLOTS.clone().try_acquire_owned().expect("a free slot"))
            .collect();
        let started = std::time::Instant::now();
        let err = argon2_off_thread(|| ()).await.unwrap_err();
        assert!(err.downcast_ref::<Busy>().is_some(), "{err:#}");
        assert!(started.elapsed() < ARGON2_SLOT_WAIT * 3, "no unbounded wait: {:?}", started.elapsed());
        drop(held);
        assert_eq!(argon2_off_thread(|| 7).await.unwrap(), 7, "a free slot runs the work");
    }

    #[test]
    fn generated_secrets_have_their_shape() {
        let password = generate_password();
        assert_eq!(password.len(), GENERATED_PASSWORD_CHARS);
        assert!(NewPassword::parse(&password).is_ok());
        let key = generate_api_key(Environment::Production);
        assert!(key.expose().starts_with("whp_live_"));
        assert!(ApiKeyToken::parse(key.expose()).is_some());
        assert_eq!(key.display_prefix().len(), "whp_live_".len() + 4);
        assert_ne!(generate_api_key(Environment::Production).expose(), key.expose());
        assert_eq!(hash_api_key(&key).len(), 64);
        let sandbox = generate_api_key(Environment::Sandbox);
        assert!(sandbox.expose().starts_with("whp_sandbox_") && ApiKeyToken::parse(sandbox.expose()).is_some());
        // Keys made before environments (production ones) still parse.
        assert!(ApiKeyToken::parse(&format!("whp_{}", "a".repeat(API_KEY_RANDOM_CHARS))).is_some());
        assert!(ApiKeyToken::parse(&format!("whp_test_{}", "a".repeat(API_KEY_RANDOM_CHARS))).is_none());
    }
}
