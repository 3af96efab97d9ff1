//! What the signature checker says about a request: which check passes, which fails, and the
//! likeliest reason (`delivery::verify` does the checking).

use serde::{Deserialize, Serialize};

/// The largest body the checker takes: what a delivery can carry is far less.
pub const MAX_CHECKED_BODY_BYTES: usize = 256 * 1024;
/// The most headers the checker takes.
pub const MAX_CHECKED_HEADERS: usize = 100;
/// How far `webhook-timestamp` may be from the time of checking: what the Standard Webhooks
/// libraries allow.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// It holds.
    Pass,
    /// It does not.
    Fail,
    /// A header it needs is not there.
    Missing,
    /// A header it needs is there but not in the form it must have.
    Malformed,
}

impl CheckOutcome {
    /// The word the page shows.
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::Fail => "Fail",
            Self::Missing => "Missing",
            Self::Malformed => "Malformed",
        }
    }
}

/// One check of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureCheck {
    /// What was checked: `x-webhook-signature`, `webhook-signature` or `webhook-timestamp`.
    #[cfg_attr(feature = "ssr", schema(example = "x-webhook-signature"))]
    pub check: String,
    /// How it went.
    pub outcome: CheckOutcome,
    /// What was found, in words.
    pub detail: String,
}

/// Everything the checker found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignatureReport {
    /// Whether the body carries a genuine signature of this webhook (either scheme).
    pub valid: bool,
    /// Each check, in order: `x-webhook-signature`, `webhook-signature`, `webhook-timestamp`.
    pub checks: Vec<SignatureCheck>,
    /// When a check fails: the likeliest reason, and what to do; `null` when all pass.
    pub likely_cause: Option<String>,
}

/// A request to check, as a partner gave it, refused (naming the field) when it is larger than
/// the checker takes.
pub fn check_request_limits(headers: &[(String, String)], body: &str) -> Result<(), Vec<super::FieldError>> {
    let mut errors = Vec::new();
    if headers.len() > MAX_CHECKED_HEADERS {
        errors.push(super::FieldError::new(
            "headers",
            format!("has {} headers; the checker takes at most {MAX_CHECKED_HEADERS}", headers.len()),
        ));
    }
    if body.len() > MAX_CHECKED_BODY_BYTES {
        errors.push(super::FieldError::new(
            "body",
            format!("is {} bytes; the checker takes at most {} KiB", body.len(), MAX_CHECKED_BODY_BYTES / 1024),
        ));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Headers pasted as text, one `name: value` per line (blank lines skipped, a request line such
/// as `POST /hook HTTP/1.1` skipped); a line with no `:` is refused by its number.
pub fn parse_header_lines(text: &str) -> Result<Vec<(String, String)>, super::FieldError> {
    let mut headers = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (number == 0 && line.contains(" HTTP/")) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(super::FieldError::new(
                "headers",
                format!("line {} has no `:`; write one header per line, as `name: value`", number + 1),
            ));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_headers_are_read_line_by_line() {
        let text = "POST /hook HTTP/1.1\r\nwebhook-id: evt_1\n\nX-Webhook-Signature:  ab12 \n";
        let headers = parse_header_lines(text).unwrap();
        assert_eq!(
            headers,
            [("webhook-id".to_owned(), "evt_1".to_owned()), ("X-Webhook-Signature".to_owned(), "ab12".to_owned())]
        );
        let error = parse_header_lines("webhook-id: evt_1\nno colon here").unwrap_err();
        assert_eq!(error.field, "headers");
        assert!(error.message.contains("line 2"), "{}", error.message);
    }

    #[test]
    fn too_large_a_request_is_refused_by_field() {
        let many: Vec<(String, String)> = (0..=MAX_CHECKED_HEADERS).map(|i| (format!("h{i}"), "v".into())).collect();
        let errors = check_request_limits(&many, &"x".repeat(MAX_CHECKED_BODY_BYTES + 1)).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["headers", "body"]);
        assert!(check_request_limits(&[], "{}").is_ok());
    }
}
