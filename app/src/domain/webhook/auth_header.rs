//! The partner's own header on every delivery ("Webhook authentication header").

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::FieldError;

/// Longest auth header value accepted, in characters.
pub const MAX_AUTH_VALUE_CHARS: usize = 1024;
/// Longest auth header name accepted.
pub const MAX_AUTH_NAME_CHARS: usize = 256;

/// Header names the dispatcher sets itself, or that would break the HTTP exchange.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
];
/// Header name prefixes the dispatcher owns (signatures, ids, timestamps).
const RESERVED_PREFIXES: &[&str] = &["webhook-", "x-webhook-"];

/// A header added to every request of a webhook, such as `Authorization: Bearer …`. The value is
/// a secret: it is not serialized, prints masked, and leaves the server only masked.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    name: String,
    value: String,
}

impl AuthHeader {
    /// Name: an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``), not one the dispatcher
    /// sets. Value: printable ASCII, no line breaks, no spaces at either end, at most 1,024
    /// characters.
    pub fn parse(name: &str, value: &str) -> Result<Self, FieldError> {
        let name = name.trim();
        let name_err = |m: String| FieldError::new("authHeader.name", m);
        if name.is_empty() {
            return Err(name_err("is required when a value is given".into()));
        }
        if name.len() > MAX_AUTH_NAME_CHARS {
            return Err(name_err(format!("must be at most {MAX_AUTH_NAME_CHARS} characters")));
        }
        if let Some(bad) = name.chars().find(|c| !is_token_char(*c)) {
            return Err(name_err(format!(
                "must be a valid HTTP header name: `{}` is not allowed in it",
                bad.escape_debug()
            )));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            return Err(name_err(format!("`{name}` is set by the dispatcher itself; choose another header")));
        }

        let value_err = |m: &str| FieldError::new("authHeader.value", m);
        if value.is_empty() {
            return Err(value_err("is required when a name is given"));
        }
        if value.contains(['\r', '\n']) {
            return Err(value_err("must not contain line breaks"));
        }
        if value.chars().count() > MAX_AUTH_VALUE_CHARS {
            return Err(value_err("must be at most 1,024 characters"));
        }
        if value.chars().any(|c| !(c == ' ' || c == '\t' || c.is_ascii_graphic())) {
            return Err(value_err("may hold only printable ASCII characters"));
        }
        if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
            return Err(value_err("must not start or end with a space (HTTP would drop it)"));
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// A header read back from the store, which only holds parsed ones.
    pub fn from_trusted(name: String, value: String) -> Self {
        Self { name, value }
    }

    /// The header's name, as the partner typed it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret value, for the request and the store only.
    pub fn expose_value(&self) -> &str {
        &self.value
    }

    /// The value as partners see it after saving: dots, and the last four characters when the
    /// value is long enough that they give nothing away.
    pub fn masked_value(&self) -> String {
        mask(&self.value)
    }

    /// What pages and API answers show.
    pub fn masked(&self) -> MaskedAuthHeader {
        MaskedAuthHeader { name: self.name.clone(), value: self.masked_value() }
    }
}

/// `••••••••` followed by the last four characters of values of 16 characters or more.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 16 {
        format!("••••••••{}", chars[chars.len() - 4..].iter().collect::<String>())
    } else {
        "••••••••".to_owned()
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeader").field("name", &self.name).field("value", &"********").finish()
    }
}

/// The auth header as it may be shown: the value masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MaskedAuthHeader {
    /// The header's name.
    pub name: String,
    /// Its value, masked.
    pub value: String,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}
