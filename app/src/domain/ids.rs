//! Typed, prefixed identifiers: `ptn_01J…`, `usr_01J…`. A bare string or ULID never appears in a
//! signature, so a user id can't be passed where a partner id is expected.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 26 letters and digits)")]
pub struct IdError {
    /// The kind of id that was expected ("partner", "API key", …).
    pub kind: &'static str,
    /// The prefix that id must start with, underscore included.
    pub prefix: &'static str,
    /// The text that was given, shortened when long.
    pub value: String,
}

/// Crockford base32, the alphabet of a ULID; `I`, `L`, `O` and `U` are not part of it.
fn is_ulid_body(body: &str) -> bool {
    body.len() == 26
        && body.bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
        // The first character carries only 3 bits: anything above `7` overflows 128 bits.
        && body.as_bytes()[0] <= b'7'
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Parses an id received from outside (a URL, a form, a JSON body, the command line).
            pub fn parse(value: &str) -> Result<Self, IdError> {
                match value.strip_prefix($prefix) {
                    Some(body) if is_ulid_body(body) => Ok(Self(value.to_owned())),
                    _ => Err(IdError {
                        kind: $kind,
                        prefix: $prefix,
                        value: value.chars().take(64).collect(),
                    }),
                }
            }

            /// A new, time-ordered id.
            #[cfg(feature = "ssr")]
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// A partner: the tenant that owns users, API keys, webhooks and events.
    PartnerId, "ptn_", "partner"
);
prefixed_id!(
    /// A person who signs in to the portal; belongs to one partner.
    UserId, "usr_", "user"
);
prefixed_id!(
    /// A partner's API key (the row, not the secret token).
    ApiKeyId, "key_", "API key"
);
prefixed_id!(
    /// A webhook: one endpoint URL with its settings.
    WebhookId, "wh_", "webhook"
);
prefixed_id!(
    /// One event on its way to one webhook.
    DeliveryId, "dlv_", "delivery"
);
prefixed_id!(
    /// One HTTP request of a delivery.
    AttemptId, "att_", "attempt"
);
prefixed_id!(
    /// One "Replay missed events" run.
    ReplayId, "rpl_", "replay"
);
prefixed_id!(
    /// A "Recover failed deliveries" run: the failed deliveries of a period, queued again.
    RecoveryId, "rcv_", "recovery"
);
prefixed_id!(
    /// A notice that the dispatcher switched a webhook off.
    AlertId, "alr_", "alert"
);
prefixed_id!(
    /// A request inspector: a throwaway capture URL served by the portal.
    InspectorId, "ins_", "inspector"
);
prefixed_id!(
    /// One request a request inspector captured.
    CapturedId, "req_", "captured request"
);

/// Longest event id accepted.
pub const MAX_EVENT_ID_CHARS: usize = 128;

/// An event's id: the operator's own (1 to 128 letters, digits, `_`, `-`, `.` or `:`) or a
/// generated `evt_…`. The same on every attempt and redelivery, so receivers can drop
/// duplicates, and the key that makes publishing idempotent.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

/// Why a string is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_EVENT_ID_CHARS} letters, digits, `_`, `-`, `.` or `:`")]
pub struct EventIdError;

impl EventId {
    /// Parses an id received from outside (the operator's API or CLI, a filter, a URL).
    pub fn parse(value: &str) -> Result<Self, EventIdError> {
        let ok = !value.is_empty()
            && value.len() <= MAX_EVENT_ID_CHARS
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
        if ok { Ok(Self(value.to_owned())) } else { Err(EventIdError) }
    }

    /// A new, time-ordered id, for an event published without one.
    #[cfg(feature = "ssr")]
    pub fn generate() -> Self {
        Self(format!("evt_{}", ulid::Ulid::new()))
    }

    /// An id read back from the store, where only parsed ids are written.
    #[cfg(feature = "ssr")]
    pub(crate) fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_well_formed_id() {
        let id = PartnerId::parse("ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD").unwrap();
        assert_eq!(id.as_str(), "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD");
        assert_eq!(id.to_string(), "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD");
    }

    #[test]
    fn refuses_another_kinds_prefix() {
        let err = PartnerId::parse("usr_01HZY3M7A8Q9XKJ2V5T6N4B0CD").unwrap_err();
        assert_eq!(err.kind, "partner");
        assert!(err.to_string().contains("`ptn_`"), "{err}");
    }

    #[test]
    fn refuses_bad_bodies() {
        for bad in [
            "ptn_",
            "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0C",   // 25 characters
            "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CDE", // 27 characters
            "ptn_01hzy3m7a8q9xkj2v5t6n4b0cd",  // lower case
            "ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CU",  // U is not Crockford base32
            "ptn_81HZY3M7A8Q9XKJ2V5T6N4B0CD",  // overflows 128 bits
            " ptn_01HZY3M7A8Q9XKJ2V5T6N4B0CD",
            "",
        ] {
            assert!(PartnerId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn error_shortens_long_input() {
        let long = "x".repeat(10_000);
        assert_eq!(UserId::parse(&long).unwrap_err().value.len(), 64);
    }

    #[test]
    fn serde_round_trip_checks_the_id() {
        let id: ApiKeyId = serde_json::from_str("\"key_01HZY3M7A8Q9XKJ2V5T6N4B0CD\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"key_01HZY3M7A8Q9XKJ2V5T6N4B0CD\"");
        assert!(serde_json::from_str::<ApiKeyId>("\"key_nope\"").is_err());
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn generated_ids_parse_and_differ() {
        let a = WebhookId::generate();
        let b = WebhookId::generate();
        assert_eq!(WebhookId::parse(a.as_str()).unwrap(), a);
        assert_ne!(a, b);
    }

    #[test]
    fn event_ids_are_the_operators_own_within_the_rules() {
        for good in ["evt_1", "order:42", "a.b-c_d", &"x".repeat(MAX_EVENT_ID_CHARS)] {
            assert_eq!(EventId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "has space", "évt", "a/b", &"x".repeat(MAX_EVENT_ID_CHARS + 1)] {
            assert_eq!(EventId::parse(bad), Err(EventIdError), "accepted {bad:?}");
        }
        assert!(serde_json::from_str::<EventId>("\"a b\"").is_err());
    }
}
