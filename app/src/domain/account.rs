//! Partner accounts: names, sign-in emails, passwords and API keys, each parsed once at the
//! boundary (form, JSON body, command line) and trusted from then on.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiKeyId, FieldError, PartnerId, UserId};

/// Longest name we keep for a partner or an API key, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Shortest password accepted for a user.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted: argon2 hashes anything, but a megabyte body is an attack, not a password.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A display name (of a partner or an API key): trimmed, 1 to 100 characters, no control characters.
fn parse_name(field: &'static str, value: &str) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(field, format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters (such as line breaks or tabs)"));
    }
    Ok(trimmed.to_owned())
}

/// A partner's display name, shown in the portal's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartnerName(String);

impl PartnerName {
    /// Trimmed, 1 to 100 characters, no control characters.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        parse_name("name", value).map(Self)
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PartnerName {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, FieldError> {
        Self::parse(&value)
    }
}

impl From<PartnerName> for String {
    fn from(value: PartnerName) -> String {
        value.0
    }
}

impl fmt::Display for PartnerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The label a partner gives an API key ("CI", "backend").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// Trimmed, 1 to 100 characters, no control characters.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        parse_name("name", value).map(Self)
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sign-in email address, kept in lower case so that `Ann@X.com` and `ann@x.com` are one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// An address as RFC 5322 allows it (checked by the `email_address` crate), trimmed, at most
    /// 254 characters.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("email", "is required"));
        }
        if trimmed.len() > 254 {
            return Err(FieldError::new("email", "must be at most 254 characters"));
        }
        if !email_address::EmailAddress::is_valid(trimmed) || trimmed.contains(['<', '>', ' ']) {
            return Err(FieldError::new("email", format!("`{trimmed}` is not an email address")));
        }
        Ok(Self(trimmed.to_lowercase()))
    }
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, FieldError> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> String {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password chosen for a user. Never serialized, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    /// 12 to 256 characters; anything else is allowed (spaces, any script), since length is
    /// what makes a password strong. Not trimmed: what is typed is what is hashed.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let chars = value.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(FieldError::new("password", format!("must be at least {MIN_PASSWORD_CHARS} characters")));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(FieldError::new("password", format!("must be at most {MAX_PASSWORD_CHARS} characters")));
        }
        Ok(Self(value.to_owned()))
    }
    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(********)")
    }
}

/// The text that starts every API key, so a leaked key is recognisable in code and logs.
pub const API_KEY_PREFIX: &str = "whp_";
/// Random characters after the prefix: 40 of 62 letters and digits, about 238 bits.
pub const API_KEY_RANDOM_CHARS: usize = 40;

/// One of a partner's two worlds: `sandbox` to build and test against, `production` for real
/// customers. Webhooks, API keys, events, deliveries and their logs belong to one; users and
/// the audit log belong to the account and see both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Real customers' events.
    #[default]
    Production,
    /// Test events, for building an integration.
    Sandbox,
}

impl Environment {
    /// Both, production first.
    pub const ALL: [Self; 2] = [Self::Production, Self::Sandbox];
    /// `production` or `sandbox`: the name in the API, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Sandbox => "sandbox",
        }
    }
    /// "Production" or "Sandbox", for pages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Production => "Production",
            Self::Sandbox => "Sandbox",
        }
    }
    /// `production` or `sandbox`, or an error that names both.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "production" => Ok(Self::Production),
            "sandbox" => Ok(Self::Sandbox),
            other => Err(format!("`{other}` is not an environment: use `production` or `sandbox`")),
        }
    }
    /// What follows `whp_` in this environment's API keys: `live_` or `sandbox_`.
    pub fn key_marker(self) -> &'static str {
        match self {
            Self::Production => "live_",
            Self::Sandbox => "sandbox_",
        }
    }
}

/// An API key as a client sends it (`Authorization: Bearer whp_live_…`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken(String);

impl ApiKeyToken {
    /// `whp_live_` or `whp_sandbox_` (or, for keys made before environments, plain `whp_`)
    /// followed by 40 letters and digits; anything else can't be one of our keys.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix(API_KEY_PREFIX)?;
        let body = Environment::ALL.iter().find_map(|env| rest.strip_prefix(env.key_marker())).unwrap_or(rest);
        (body.len() == API_KEY_RANDOM_CHARS && body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(value.to_owned()))
    }
    /// Wraps a freshly generated key.
    #[cfg(feature = "ssr")]
    pub(crate) fn from_generated(value: String) -> Self {
        Self(value)
    }
    /// The key itself: to show once, or to hash.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The part shown in lists so a partner can tell keys apart: the prefix with its
    /// environment, and four characters.
    pub fn display_prefix(&self) -> String {
        let rest = &self.0[API_KEY_PREFIX.len()..];
        let marker = Environment::ALL.iter().map(|env| env.key_marker()).find(|m| rest.starts_with(m)).unwrap_or("");
        self.0.chars().take(API_KEY_PREFIX.len() + marker.len() + 4).collect()
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyToken({}…)", self.display_prefix())
    }
}

/// Who is signed in, as the portal's header shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    /// The environment the session is in: its partner row, to which every query of webhooks,
    /// keys, events and logs is scoped.
    pub partner_id: PartnerId,
    /// Which environment that is (the header's switcher).
    pub environment: Environment,
    /// The account the user belongs to (the production row): users, the team and the audit
    /// log are scoped to it.
    pub account_id: PartnerId,
    /// The partner's display name.
    pub partner_name: String,
    /// The user.
    pub user_id: UserId,
    /// The user's sign-in address.
    pub email: String,
    /// What the user may do.
    pub role: Role,
}

impl SignedInUser {
    /// The user as the audit log names them.
    pub fn actor(&self) -> super::Actor {
        super::Actor::User(self.email.clone())
    }
}

/// What a user (or an API key) may do inside its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and changes webhooks, API keys and users.
    #[default]
    Admin,
    /// Reads webhooks and delivery logs only.
    Viewer,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }

    /// A role as typed or stored.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Self::Admin),
            "viewer" => Ok(Self::Viewer),
            _ => Err(FieldError::new("role", "must be `admin` or `viewer`")),
        }
    }

    /// Whether this role may change things (webhooks, keys, users).
    pub fn can_change(self) -> bool {
        self == Self::Admin
    }
}

/// A user of the partner, as the team page lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamMember {
    /// The user.
    pub id: UserId,
    /// Sign-in address.
    pub email: String,
    /// What they may do.
    pub role: Role,
    /// When they were added.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An API key as lists show it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySummary {
    /// The key's row.
    pub id: ApiKeyId,
    /// The partner's label for it.
    pub name: String,
    /// `whp_` and the next four characters of the key.
    pub prefix: String,
    /// What the key may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who made it (a user's address, the operator), when known: a colleague who leaves may
    /// have made keys that should go with them.
    #[serde(default)]
    pub created_by: Option<String>,
}

/// A key just made: the only time the key itself leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The key's row, as lists show it.
    pub summary: ApiKeySummary,
    /// The key, to copy now; it is stored hashed and can't be shown again.
    pub key: String,
}

/// A one-time link to set a password, as shown once to whoever made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordLink {
    /// The link: the portal's `/set-password` page with the token.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A user just added, and the link they set their password with (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedMember {
    /// The new user.
    pub member: TeamMember,
    /// Their one-time link.
    pub link: PasswordLink,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_name_is_trimmed_and_bounded() {
        assert_eq!(PartnerName::parse("  Acme Corp ").unwrap().as_str(), "Acme Corp");
        assert_eq!(PartnerName::parse("   ").unwrap_err(), FieldError::new("name", "is required"));
        assert!(PartnerName::parse(&"é".repeat(100)).is_ok());
        assert!(PartnerName::parse(&"é".repeat(101)).unwrap_err().message.contains("at most 100"));
        assert!(PartnerName::parse("Acme\nCorp").unwrap_err().message.contains("control"));
    }

    #[test]
    fn email_is_checked_and_lower_cased() {
        assert_eq!(EmailAddress::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@example.com", "ann example@x.com", "Ann <ann@x.com>"] {
            let err = EmailAddress::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).unwrap_err().message.contains("254"));
    }

    #[test]
    fn password_length_rules() {
        assert!(NewPassword::parse("short").unwrap_err().message.contains("at least 12"));
        assert!(NewPassword::parse("correct horse battery").is_ok());
        assert!(NewPassword::parse(&"x".repeat(257)).unwrap_err().message.contains("at most 256"));
        // Not trimmed: spaces count.
        assert_eq!(NewPassword::parse("  twelve chars").unwrap().expose(), "  twelve chars");
    }

    #[test]
    fn secrets_never_print() {
        let password = NewPassword::parse("hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        let token = ApiKeyToken::parse(&format!("whp_{}", "a".repeat(40))).unwrap();
        assert_eq!(format!("{token:?}"), "ApiKeyToken(whp_aaaa…)");
    }

    #[test]
    fn api_key_token_shape() {
        assert!(ApiKeyToken::parse(&format!("whp_{}", "Ab9".repeat(13) + "x")).is_some());
        assert!(ApiKeyToken::parse(&format!("whp_{}", "a".repeat(39))).is_none());
        assert!(ApiKeyToken::parse(&format!("xyz_{}", "a".repeat(40))).is_none());
        assert!(ApiKeyToken::parse(&format!("whp_{}-", "a".repeat(39))).is_none());
    }
}
