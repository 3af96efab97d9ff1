//! The platform's event types, and which of them a webhook takes.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::FieldError;

/// What happened for a partner: the four event types of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A verification reached a successful end.
    #[serde(rename = "verification.completed")]
    VerificationCompleted,
    /// A verification failed.
    #[serde(rename = "verification.failed")]
    VerificationFailed,
    /// A verification expired before it was finished.
    #[serde(rename = "verification.expired")]
    VerificationExpired,
    /// A manual review was completed.
    #[serde(rename = "review.completed")]
    ReviewCompleted,
}

impl EventType {
    /// Every type, in the order the docs list them.
    pub const ALL: [EventType; 4] =
        [Self::VerificationCompleted, Self::VerificationFailed, Self::VerificationExpired, Self::ReviewCompleted];

    /// The type's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerificationCompleted => "verification.completed",
            Self::VerificationFailed => "verification.failed",
            Self::VerificationExpired => "verification.expired",
            Self::ReviewCompleted => "review.completed",
        }
    }

    /// Parses a type name; the error lists the valid ones.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        Self::ALL.into_iter().find(|t| t.as_str() == text).ok_or_else(|| {
            let valid: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
            FieldError::new(
                "eventTypes",
                format!(
                    "has `{}`, which is not an event type (valid: {})",
                    text.chars().take(64).collect::<String>(),
                    valid.join(", ")
                ),
            )
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which events a webhook receives: all types (the default, including types added later), or a
/// non-empty selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EventFilter {
    /// Every type.
    #[default]
    All,
    /// Only these.
    Only(BTreeSet<EventType>),
}

impl EventFilter {
    /// From a list of type names; `None` means all. An empty list is refused: a webhook that
    /// receives nothing is a mistake, and deactivating it says so better.
    pub fn parse(names: Option<&[String]>) -> Result<Self, FieldError> {
        let Some(names) = names else { return Ok(Self::All) };
        if names.is_empty() {
            return Err(FieldError::new("eventTypes", "must name at least one event type, or be left out for all"));
        }
        let types = names.iter().map(|n| EventType::parse(n.trim())).collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Self::Only(types))
    }

    /// Whether an event of type `t` goes to the webhook.
    pub fn accepts(&self, t: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(&t),
        }
    }

    /// The selection as type names, `None` for all.
    pub fn names(&self) -> Option<Vec<String>> {
        match self {
            Self::All => None,
            Self::Only(types) => Some(types.iter().map(|t| t.as_str().to_owned()).collect()),
        }
    }
}
