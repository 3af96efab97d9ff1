//! Pieces of UI that several pages use.

mod layout;

pub use layout::SignedIn;

use chrono::{DateTime, Utc};

/// A time as the portal shows it: `2026-01-15 14:30 UTC`. One format everywhere, the same on
/// the server and in the browser, so hydration never disagrees.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time in the machine-readable form of `<time datetime=…>`.
pub fn machine_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
