//! Server functions, one file per resource. Each is thin: authorize, parse, call the store.

pub mod api_keys;
pub mod auth;
mod error;
pub mod logs;
pub mod team;
pub mod webhooks;

pub use api_keys::*;
pub use auth::*;
pub use error::AppError;
pub use logs::*;
pub use team::*;
pub use webhooks::*;
