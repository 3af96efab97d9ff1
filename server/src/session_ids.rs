//! Sessions stored under a hash of their id. The cookie carries the id; the database keeps
//! SHA-256 of it, so a copy of the database (a backup, a leaked file) holds no session anyone
//! could present.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

/// A session store that keeps each session under the hash of its id.
#[derive(Debug, Clone)]
pub struct HashedIds<S> {
    inner: S,
}

impl<S> HashedIds<S> {
    /// `inner`, keyed by hashed ids.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// The id a session is stored under: the first 128 bits of SHA-256 of its id.
pub fn stored_id(id: &Id) -> Id {
    let digest = Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

#[async_trait]
impl<S: SessionStore + Clone> SessionStore for HashedIds<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let wanted = stored_id(&record.id);
            let mut stored = Record { id: wanted, ..record.clone() };
            self.inner.create(&mut stored).await?;
            if stored.id == wanted {
                return Ok(());
            }
            // The hash was taken and the store picked an id of its own, which no cookie can
            // name: drop that row and try another id.
            self.inner.delete(&stored.id).await?;
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(&Record { id: stored_id(&record.id), ..record.clone() }).await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let record = self.inner.load(&stored_id(session_id)).await?;
        Ok(record.map(|record| Record { id: *session_id, ..record }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.inner.delete(&stored_id(session_id)).await
    }
}

#[async_trait]
impl<S: ExpiredDeletion + Clone> ExpiredDeletion for HashedIds<S> {
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.inner.delete_expired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_id_is_not_the_id_and_is_the_same_each_time() {
        let id = Id::default();
        assert_ne!(stored_id(&id), id);
        assert_eq!(stored_id(&id), stored_id(&id));
        assert_ne!(stored_id(&id), stored_id(&Id::default()));
    }
}
