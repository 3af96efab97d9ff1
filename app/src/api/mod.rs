//! Server functions, one file per resource. Each is thin: authorize, parse, call the store.

pub mod account;
pub mod api_keys;
pub mod auth;
pub mod events;
pub mod inspectors;
pub mod logs;
pub mod team;
pub mod webhooks;

pub use crate::error::AppError;
pub use account::*;
pub use api_keys::*;
pub use auth::*;
pub use events::*;
pub use inspectors::*;
pub use logs::*;
pub use team::*;
pub use webhooks::*;
