//! Webhook secrets at rest: signing secrets and auth header values are stored sealed with
//! XChaCha20-Poly1305 under the operator's key, so a copy of the database (a backup, a leaked
//! file) holds none of them in the clear. API keys and passwords are never stored at all, only
//! their hashes.
//!
//! The key is `PORTAL_SECRET_KEY` (32 bytes, base64). Without it the portal keeps one in a file
//! beside the SQLite database (`data/secret.key` on PostgreSQL), made on first start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// The environment variable that holds the key.
pub const SECRET_KEY_VAR: &str = "PORTAL_SECRET_KEY";
/// What every sealed value starts with (the version lets the scheme change later).
pub const SEALED_PREFIX: &str = "enc:v1:";
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

    /// The box for the database at `database_url`: the key from `PORTAL_SECRET_KEY`, else the
    /// key file beside the database, made (and announced) when missing.
    pub fn for_database(database_url: &str) -> anyhow::Result<Self> {
        if let Ok(text) = std::env::var(SECRET_KEY_VAR) {
            return Ok(Self::new(&Self::parse_key(&text)?));
        }
        let Some(path) = key_file_for(database_url) else {
            // An in-memory database lives and dies with this process; so does its key.
            let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
            return Ok(Self::new(&key));
        };
        Ok(Self::new(&load_or_create_key(&path)?))
    }

    /// `plaintext`, sealed: `enc:v1:` and the base64 of a fresh random nonce and the ciphertext.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("encrypting in memory does not fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(bytes))
    }

    /// The plaintext of a stored value. A value stored before secrets were sealed comes back as
    /// it is (start-up seals those); one sealed under another key is an error that says so.
    pub fn open(&self, stored: &str) -> anyhow::Result<String> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = STANDARD.decode(encoded).context("a sealed secret is not valid base64")?;
        anyhow::ensure!(bytes.len() > 24, "a sealed secret is too short");
        let (nonce, sealed) = bytes.split_at(24);
        let plain = self.cipher.decrypt(XNonce::from_slice(nonce), sealed).map_err(|_| {
            anyhow::anyhow!(
                "could not open a webhook secret: it was sealed with another key than this {SECRET_KEY_VAR} (or key file)"
            )
        })?;
        String::from_utf8(plain).context("a sealed secret is not UTF-8")
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

/// Where the key file of the database at `url` lives: beside a SQLite file, `data/` for
/// PostgreSQL; `None` for an in-memory database.
fn key_file_for(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres") {
        return Some(Path::new("data").join(KEY_FILE));
    }
    let file = crate::store::sqlite_file(url)?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(dir.join(KEY_FILE))
}

/// Reads the key file, or makes it (readable by its owner only). Several processes starting
/// at once agree on one key: each writes its own candidate and links it into place, and a
/// process that finds the file already there reads that one.
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
    let candidate = path.with_extension(format!("{}.tmp", std::process::id()));
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
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let one = SecretBox::new(&[7; 32]);
        let sealed = one.seal("whsec_abc");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, one.seal("whsec_abc"), "a fresh nonce every time");
        assert_eq!(one.open(&sealed).unwrap(), "whsec_abc");
        assert_eq!(one.open("legacy-plain").unwrap(), "legacy-plain");
        let err = SecretBox::new(&[8; 32]).open(&sealed).unwrap_err().to_string();
        assert!(err.contains("another key"), "{err}");
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
        let url = format!("sqlite://{}/portal.db", dir.display());
        let path = key_file_for(&url).unwrap();
        assert_eq!(path, dir.join(KEY_FILE));
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
