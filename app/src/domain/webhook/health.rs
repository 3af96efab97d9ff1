//! A webhook's health: the rule that picks the badge, and the badge's words.

use serde::{Deserialize, Serialize};

/// A webhook's health badge: words as well as colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Delivering successfully.
    Green,
    /// The latest attempt failed but fewer than three in a row have, or under 95 % succeed.
    Yellow,
    /// Three or more attempts in a row failed, or the dispatcher deactivated the webhook.
    Red,
    /// The partner switched it off.
    Inactive,
}

impl Health {
    /// The badge's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::Green => "Delivering successfully",
            Self::Yellow => "Some delivery issues",
            Self::Red => "Multiple delivery failures",
            Self::Inactive => "Inactive",
        }
    }

    /// The badge's colour class.
    pub fn class(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
            Self::Inactive => "grey",
        }
    }
}

/// What the delivery log says about a webhook, for its list row and badge.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeliveryStats {
    /// Newest non-test attempt: time (ms) and whether it succeeded.
    pub last_attempt: Option<(i64, bool)>,
    /// Share of the last 24 hours' non-test attempts that succeeded, 0 to 100.
    pub success_rate: Option<f64>,
    /// Failed attempts since the last success.
    pub failures_in_a_row: i64,
}

impl DeliveryStats {
    /// The badge for a webhook with these stats: red when the dispatcher switched it off or
    /// three attempts in a row failed, yellow after any failure or under 95 % in 24 hours.
    pub fn health(&self, active: bool, deactivated_by_dispatcher: bool) -> Health {
        if deactivated_by_dispatcher {
            Health::Red
        } else if !active {
            Health::Inactive
        } else if self.failures_in_a_row >= 3 {
            Health::Red
        } else if self.failures_in_a_row > 0 || self.success_rate.is_some_and(|r| r < 95.0) {
            Health::Yellow
        } else {
            Health::Green
        }
    }
}
