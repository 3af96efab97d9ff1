//! The request inspector: a throwaway capture URL served by the portal itself, which keeps
//! what arrives at it (method, headers, body, time, and whether the signatures hold) for the
//! partner to look at. The seeds advise testing with such a URL before building a receiver.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{InspectorId, SignatureReport};

/// How long an inspector lives.
pub const INSPECTOR_LIFETIME_HOURS: i64 = 24;
/// How many requests an inspector keeps: the newest.
pub const INSPECTOR_KEEPS: usize = 100;
/// Requests an inspector takes in a second; more are answered 429.
pub const INSPECTOR_REQUESTS_PER_SECOND: u32 = 20;
/// Headers kept of one captured request; the rest are dropped (and the request says so).
pub const CAPTURED_HEADERS: usize = 100;
/// Where capture URLs live under the portal's public URL: `{PORTAL_PUBLIC_URL}inspect/ins_…`.
pub const CAPTURE_PATH: &str = "inspect/";

/// An inspector as the partner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InspectorView {
    /// Its id.
    #[cfg_attr(feature = "ssr", schema(value_type = String, example = "ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"))]
    pub id: InspectorId,
    /// The capture URL: point a webhook (or a test) at it.
    #[cfg_attr(
        feature = "ssr",
        schema(example = "https://webhooks.example.com/inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD")
    )]
    pub url: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops taking requests and is deleted with them (24 hours after it was made).
    pub expires_at: DateTime<Utc>,
    /// How many requests it holds (the newest 100 are kept).
    pub request_count: u32,
    /// Whether it had expired when read (it takes no more requests and is deleted at the next
    /// retention pass).
    pub expired: bool,
}

/// Whether a captured request carries a signature of one of the partner's webhooks that point
/// at the inspector, checked when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CaptureVerdict {
    /// The webhook whose secrets it was checked against.
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub webhook_id: super::WebhookId,
    /// What the signature checker found.
    pub report: SignatureReport,
}

/// One request an inspector captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CapturedRequest {
    /// Its id.
    #[cfg_attr(feature = "ssr", schema(value_type = String, example = "req_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"))]
    pub id: super::CapturedId,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Its HTTP method.
    #[cfg_attr(feature = "ssr", schema(example = "POST"))]
    pub method: String,
    /// Its headers, name and value, in the order they came (names in lower case).
    pub headers: Vec<(String, String)>,
    /// Its body as text (bytes that are not UTF-8 are shown as �).
    pub body: String,
    /// The signature checks against the first webhook of the partner's that points at this
    /// inspector; `null` when none does.
    pub verdict: Option<CaptureVerdict>,
}

/// The capture URL of inspector `id` under the portal's public URL `public`.
pub fn capture_url(public: &url::Url, id: &InspectorId) -> String {
    format!("{}{CAPTURE_PATH}{id}", base(public))
}

/// The inspector a URL captures for, when it is exactly one of this portal's capture URLs
/// (`{public}inspect/ins_…`, nothing after the id): such a URL is delivered to in-process.
pub fn captured_by(public: &url::Url, url: &str) -> Option<InspectorId> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return None;
    }
    let rest = parsed.as_str().strip_prefix(&base(public))?.strip_prefix(CAPTURE_PATH)?;
    InspectorId::parse(rest).ok()
}

/// The public URL as a base that paths are appended to: always ending in `/`.
fn base(public: &url::Url) -> String {
    let text = public.as_str();
    if text.ends_with('/') { text.to_owned() } else { format!("{text}/") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> url::Url {
        url::Url::parse(text).unwrap()
    }

    #[test]
    fn a_capture_url_names_its_inspector_and_nothing_else_does() {
        let id = InspectorId::parse("ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD").unwrap();
        for root in ["http://127.0.0.1:3000", "http://127.0.0.1:3000/", "https://hooks.example.com/portal/"] {
            let url = capture_url(&public(root), &id);
            assert!(url.contains("/inspect/ins_"), "{url}");
            assert_eq!(captured_by(&public(root), &url), Some(id.clone()), "{root}");
        }
        let root = public("http://127.0.0.1:3000/");
        for other in [
            "http://127.0.0.1:3000/inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD?x=1",
            "http://127.0.0.1:3000/inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD/more",
            "http://127.0.0.1:3000/inspect/wh_01KAQ3M7A8Q9XKJ2V5T6N4B0CD",
            "http://127.0.0.1:3001/inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD",
            "https://127.0.0.1:3000/inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD",
            "http://127.0.0.1:3000/api/v1/webhooks",
            "not a url",
        ] {
            assert_eq!(captured_by(&root, other), None, "{other}");
        }
        // The URL crate's normal form is what is compared: `..` can't reach past the prefix.
        assert_eq!(
            captured_by(&root, "http://127.0.0.1:3000/inspect/../inspect/ins_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"),
            Some(id)
        );
    }
}
