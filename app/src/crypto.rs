//! Webhook secrets at rest: signing secrets and auth header values are stored sealed with
//! XChaCha20-Poly1305 under the operator's key, so a copy of the database (a backup, a leaked
//! file) holds none of them in the clear. API keys and passwords are never stored at all, only
//! their hashes.
//!
//! The key is `PORTAL_SECRET_KEY` (32 bytes, base64). Without it the portal keeps one in a file
//! beside the SQLite database (`data/secret.key` on PostgreSQL), made on first start.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// The environment variable that holds the key.
pub const SECRET_KEY_VAR: &str = "PORTAL_SECRET_KEY";
/// What every sealed value starts with: version 2 binds the value to where it is kept (see
/// [`SecretBox::seal`]).
pub const SEALED_PREFIX: &str = "enc:v2:";
/// Values sealed by earlier versions, bound to nothing: opened only to be sealed again at start
/// ([`SecretBox::reseal`]).
const UNBOUND_PREFIX: &str = "enc:v1:";
/// The key file's name, beside the database.
pub const KEY_FILE: &str = "secret.key";

/// Seals and opens secrets with one key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(********)")
    }
}

impl SecretBox {
    /// A box with this key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(Key::from_slice(key)) }
    }

    /// A key in its written form: 32 bytes in base64.
    pub fn parse_key(text: &str) -> anyhow::Result<[u8; 32]> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| anyhow::anyhow!("{SECRET_KEY_VAR} must be 32 bytes in base64 (`openssl rand -base64 32`)"))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| anyhow::anyhow!("{SECRET_KEY_VAR} must be 32 bytes in base64; it holds {} bytes", bytes.len()))
    }

    /// The box of a database whose key file is `key_file` (see
    /// `store::key_file_for`): the key from `PORTAL_SECRET_KEY`, else
    /// that file's, made (and announced) when missing; `None` for an in-memory database.
    pub fn for_database(key_file: Option<&Path>) -> anyhow::Result<Self> {
        if let Ok(text) = std::env::var(SECRET_KEY_VAR) {
            return Ok(Self::new(&Self::parse_key(&text)?));
        }
        let Some(path) = key_file else {
            // An in-memory database lives and dies with this process; so does its key.
            let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
            return Ok(Self::new(&key));
        };
        Ok(Self::new(&load_or_create_key(path)?))
    }

    /// `plaintext`, sealed and bound to `place` (where it is kept: a webhook id and what the
    /// value is), which goes in as the AEAD's associated data: `enc:v2:` and the base64 of a
    /// fresh random nonce and the ciphertext. A sealed value copied to another place (another
    /// partner's webhook, another column) does not open there.
    pub fn seal(&self, plaintext: &str, place: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: place.as_bytes() })
            .expect("encrypting in memory does not fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(bytes))
    }

    /// The plaintext of a value sealed for `place`. Anything else is an error that says why: a
    /// value sealed under another key, for another place, or never sealed (start-up seals
    /// values from older versions, so none is left in normal operation).
    pub fn open(&self, stored: &str, place: &str) -> anyhow::Result<String> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            anyhow::bail!("a webhook secret is not sealed for its place; restart the portal to seal old values");
        };
        self.decrypt(encoded, place.as_bytes()).map_err(|_| {
            anyhow::anyhow!(
                "could not open a webhook secret: it was sealed with another key than this {SECRET_KEY_VAR} \
                 (or key file), or for another place"
            )
        })
    }

    /// A stored value of an older version (in the clear, or sealed bound to nothing) sealed
    /// again for `place`; `None` when it already is.
    pub fn reseal(&self, stored: &str, place: &str) -> anyhow::Result<Option<String>> {
        if stored.starts_with(SEALED_PREFIX) {
            return Ok(None);
        }
        let plain = match stored.strip_prefix(UNBOUND_PREFIX) {
            Some(encoded) => self.decrypt(encoded, b"").map_err(|_| {
                anyhow::anyhow!("could not open an old webhook secret: it was sealed with another key than this {SECRET_KEY_VAR} (or key file)")
            })?,
            None => stored.to_owned(),
        };
        Ok(Some(self.seal(&plain, place)))
    }

    fn decrypt(&self, encoded: &str, aad: &[u8]) -> anyhow::Result<String> {
        let bytes = STANDARD.decode(encoded).context("a sealed secret is not valid base64")?;
        anyhow::ensure!(bytes.len() > 24, "a sealed secret is too short");
        let (nonce, sealed) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| anyhow::anyhow!("the value does not open"))?;
        String::from_utf8(plain).context("a sealed secret is not UTF-8")
    }
}

/// Reads the key file, or makes it (readable by its owner only). Several processes, or several
/// connections in one process, starting at once agree on one key: each writes its own candidate
/// (named for the process and the call) and links it into place, and one that finds the file
/// already there reads that one.
fn load_or_create_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let read = |path: &Path| -> anyhow::Result<[u8; 32]> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("could not read the key file {}", path.display()))?;
        SecretBox::parse_key(&text).with_context(|| format!("the key file {} is damaged", path.display()))
    };
    if path.exists() {
        return read(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let candidate = path.with_extension(format!("{}-{call}.tmp", std::process::id()));
    write_private(&candidate, &format!("{}\n", STANDARD.encode(key)))?;
    let linked = std::fs::hard_link(&candidate, path);
    let _ = std::fs::remove_file(&candidate);
    match linked {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                "generated a key for webhook secrets; keep this file with the database and back it up, \
                 or set {SECRET_KEY_VAR} (secrets can't be read without it; every process on every machine \
                 sharing a PostgreSQL database needs the same key)"
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e).with_context(|| format!("could not write the key file {}", path.display())),
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("could not create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("could not write {}", path.display()))?;
    file.sync_all().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Connections opened at once in one process (a portal and its tests' own, on PostgreSQL,
    /// share `data/secret.key`) agree on one key; their candidates once had the same name, and
    /// all but one failed to start with "File exists".
    #[test]
    fn connections_starting_at_once_in_one_process_agree_on_one_key() {
        let dir = std::env::temp_dir().join(format!("portal-key-race-{}", std::process::id()));
        let path = dir.join("secret.key");
        let start = std::sync::Barrier::new(16);
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        load_or_create_key(&path).unwrap()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "one key for all");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("secret.key")], "no candidate left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let one = SecretBox::new(&[7; 32]);
        let sealed = one.seal("whsec_abc", "wh_1/signing-secret");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, one.seal("whsec_abc", "wh_1/signing-secret"), "a fresh nonce every time");
        assert_eq!(one.open(&sealed, "wh_1/signing-secret").unwrap(), "whsec_abc");
        let err = SecretBox::new(&[8; 32]).open(&sealed, "wh_1/signing-secret").unwrap_err().to_string();
        assert!(err.contains("another key"), "{err}");
        assert!(one.open("legacy-plain", "wh_1/signing-secret").is_err(), "values in the clear are not taken");
    }

    #[test]
    fn a_sealed_value_opens_only_where_it_was_sealed() {
        let one = SecretBox::new(&[7; 32]);
        let sealed = one.seal("X-Key: partner A's secret", "wh_a/auth-header");
        assert!(one.open(&sealed, "wh_b/auth-header").is_err(), "moved to another webhook");
        assert!(one.open(&sealed, "wh_a/signing-secret").is_err(), "moved to another column");
        assert_eq!(one.open(&sealed, "wh_a/auth-header").unwrap(), "X-Key: partner A's secret");
    }

    #[test]
    fn old_values_are_sealed_again_for_their_place() {
        let one = SecretBox::new(&[7; 32]);
        // A value sealed by version 1, bound to nothing.
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&one.cipher.encrypt(&nonce, b"whsec_old".as_slice()).unwrap());
        let v1 = format!("{UNBOUND_PREFIX}{}", STANDARD.encode(bytes));
        for old in [v1.as_str(), "whsec_old"] {
            let again = one.reseal(old, "wh_1/signing-secret").unwrap().unwrap();
            assert_eq!(one.open(&again, "wh_1/signing-secret").unwrap(), "whsec_old");
            assert_eq!(one.reseal(&again, "wh_1/signing-secret").unwrap(), None, "already bound");
        }
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(SecretBox::parse_key(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(SecretBox::parse_key(&STANDARD.encode([1u8; 16])).unwrap_err().to_string().contains("16 bytes"));
        assert!(SecretBox::parse_key("not base64!").is_err());
    }

    #[test]
    fn the_key_file_is_made_once_and_kept() {
        let dir = tempfile_dir();
        let path = dir.join(KEY_FILE);
        let first = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("portal-key-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
