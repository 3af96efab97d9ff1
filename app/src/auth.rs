//! Credentials: argon2id password hashes, generated passwords, API keys and their hashes.
//! Server side only. Hashing is slow on purpose, so callers run it off the async threads
//! (`tokio::task::spawn_blocking`).

use std::sync::LazyLock;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

use crate::domain::{API_KEY_PREFIX, API_KEY_RANDOM_CHARS, ApiKeyToken, NewPassword};

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

/// Whether `candidate` is the password behind `stored_hash`. With no stored hash (unknown
/// email) it does the same work and answers false.
pub fn verify_password(candidate: &str, stored_hash: Option<&str>) -> bool {
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

/// A random password for a new user: 20 letters and digits.
pub fn generate_password() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, GENERATED_PASSWORD_CHARS)
}

/// A generated password as a new user's [`NewPassword`].
pub fn generate_new_password() -> NewPassword {
    NewPassword::parse(&generate_password()).expect("generated passwords are valid")
}

/// [`hash_password`] off the async threads (argon2 takes a good part of a second).
pub async fn hash_password_off_thread(password: &NewPassword) -> anyhow::Result<String> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || hash_password(&password)).await.context("the hashing task failed")?
}

/// A new API key: `whp_` and 40 random letters and digits.
pub fn generate_api_key() -> ApiKeyToken {
    let random = Alphanumeric.sample_string(&mut rand::rngs::OsRng, API_KEY_RANDOM_CHARS);
    ApiKeyToken::from_generated(format!("{API_KEY_PREFIX}{random}"))
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

    #[test]
    fn generated_secrets_have_their_shape() {
        let password = generate_password();
        assert_eq!(password.len(), GENERATED_PASSWORD_CHARS);
        assert!(NewPassword::parse(&password).is_ok());
        let key = generate_api_key();
        assert!(ApiKeyToken::parse(key.expose()).is_some());
        assert_ne!(generate_api_key().expose(), key.expose());
        assert_eq!(hash_api_key(&key).len(), 64);
    }
}
