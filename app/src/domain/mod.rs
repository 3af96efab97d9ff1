//! Value types shared by the browser and the server: ids, account fields, delivery policy.
//! Pure: no I/O. Each type is made by a `parse` that is the only way in, so code past the
//! boundary never checks again.

mod account;
mod audit;
mod catalog;
#[cfg(feature = "ssr")]
mod delivery;
mod event;
mod event_search;
mod guide;
mod ids;
mod inspector;
mod log;
mod policy;
mod quota;
mod signature;
mod webhook;

#[cfg(all(test, feature = "ssr"))]
mod fuzz;

use serde::{Deserialize, Serialize};

pub use account::*;
pub use audit::*;
pub use catalog::*;
#[cfg(feature = "ssr")]
pub use delivery::*;
pub use event::*;
pub use event_search::*;
pub use guide::{FALLBACK_PATH, GuideFor, Snippet, snippets};
pub use ids::*;
pub use inspector::*;
pub use log::*;
pub use policy::*;
pub use quota::*;
pub use signature::*;
pub use webhook::*;

/// A refused input, naming the field and the rule it broke. Forms show it next to the field;
/// the API answers it as a 422; the command line prints it as one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field} {message}")]
pub struct FieldError {
    /// The field's name as the form or the JSON body calls it.
    pub field: String,
    /// What is wrong, phrased to follow the field's name ("is required").
    pub message: String,
}

impl FieldError {
    /// A refusal of `field` for the reason `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
