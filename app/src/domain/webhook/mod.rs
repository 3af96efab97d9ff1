//! A webhook's settings, each parsed once at the boundary with an error that names the field
//! and the rule it broke. The field names are the REST API's (`authHeader.name`), which the
//! forms use too, so one error shows next to one field everywhere.
//!
//! - `url.rs`: where deliveries go, and the addresses they may not reach;
//! - `auth_header.rs`: the partner's own header; `secret.rs`: the signing secret;
//! - `event_type.rs`: the event types and a webhook's filter;
//! - `input.rs`: the settings as typed, checked into `WebhookSettings`;
//! - `health.rs`: the badge's rule and words; `view.rs`: what pages and the API show.

mod auth_header;
mod event_type;
mod health;
mod input;
mod secret;
mod url;
mod view;

#[cfg(test)]
mod tests;

pub use auth_header::*;
pub use event_type::*;
pub use health::*;
pub use input::*;
pub use secret::*;
pub use url::*;
pub use view::*;
