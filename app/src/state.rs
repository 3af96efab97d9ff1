//! What every request handler and server function can reach.

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::store::Db;

/// The server's shared state: built once at start, cloned into every request.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// Where the built site lives and what it is called.
    pub leptos_options: LeptosOptions,
    /// The database.
    pub db: Db,
}
