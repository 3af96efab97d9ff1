//! A webhook's settings as typed, and their checks: every refused field at once.

use super::super::FieldError;
use super::*;

/// A webhook's settings as typed in a form or sent in a JSON body, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookInput {
    /// The URL as typed.
    pub url: String,
    /// Whether it should receive events.
    pub active: bool,
    /// The auth header's name; empty for none.
    pub auth_header_name: String,
    /// The auth header's value; empty keeps the saved value when a name is given.
    pub auth_header_value: String,
    /// Selected event type names; `None` for all.
    pub event_types: Option<Vec<String>>,
    /// The template; blank for none.
    pub payload_template: String,
    /// Most requests per second, as typed; blank for no limit.
    pub rate_limit: String,
    /// Most requests under way at once, as typed; blank for the dispatcher's own limit.
    pub max_concurrent_requests: String,
}

/// Highest per-webhook rate limit, requests per second (the dispatcher spaces requests by
/// whole milliseconds).
pub const MAX_RATE_LIMIT: u32 = 1000;

/// Most requests the dispatcher sends one webhook at once. It starts lower and adapts to how
/// the receiver answers; a partner may set a lower cap.
pub const MAX_CONCURRENT_REQUESTS: u32 = 64;

/// A rate limit as typed: blank for none, else a whole number of requests per second.
pub fn parse_rate_limit(text: &str) -> Result<Option<u32>, FieldError> {
    parse_whole_or_blank(text, "rateLimit", "requests per second", MAX_RATE_LIMIT, "no limit")
}

/// A cap on requests under way at once as typed: blank for the dispatcher's own limit, else a
/// whole number of requests.
pub fn parse_max_concurrent_requests(text: &str) -> Result<Option<u32>, FieldError> {
    parse_whole_or_blank(
        text,
        "maxConcurrentRequests",
        "requests",
        MAX_CONCURRENT_REQUESTS,
        "the dispatcher's own limit",
    )
}

/// Blank for `None`, else a whole number from 1 to `max`; the error names `field`, the `unit`
/// and what blank means.
fn parse_whole_or_blank(
    text: &str,
    field: &str,
    unit: &str,
    max: u32,
    blank_means: &str,
) -> Result<Option<u32>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(FieldError::new(
            field,
            format!("must be a whole number of {unit} from 1 to {max}, or empty for {blank_means}"),
        )),
    }
}

/// Checked settings, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// Whether it receives events.
    pub active: bool,
    /// The extra header, if any.
    pub auth_header: Option<AuthHeader>,
    /// Which events it receives.
    pub event_filter: EventFilter,
    /// How the body is shaped, if not by default.
    pub payload_template: Option<crate::domain::PayloadTemplate>,
    /// Most requests per second, if limited.
    pub rate_limit: Option<u32>,
    /// Most requests under way at once, if the partner set a cap below the dispatcher's own.
    pub max_concurrent_requests: Option<u32>,
}

#[cfg(feature = "ssr")]
impl WebhookInput {
    /// Checks every field and reports every broken rule at once, so a form can mark them all.
    /// `saved_auth_header` is the header stored so far: a name with an empty value keeps its
    /// value, which the partner never sees again after saving.
    pub fn parse(
        &self,
        policy: UrlPolicy,
        saved_auth_header: Option<&AuthHeader>,
    ) -> Result<WebhookSettings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let url = WebhookUrl::parse(&self.url, policy).map_err(|e| errors.push(e)).ok();
        let name = self.auth_header_name.trim();
        let auth_header = match (name.is_empty(), self.auth_header_value.is_empty(), saved_auth_header) {
            (true, true, _) => Ok(None),
            (false, true, Some(saved)) => AuthHeader::parse(name, saved.expose_value()).map(Some),
            _ => AuthHeader::parse(name, &self.auth_header_value).map(Some),
        }
        .map_err(|e| errors.push(e))
        .ok();
        let event_filter = EventFilter::parse(self.event_types.as_deref()).map_err(|e| errors.push(e)).ok();
        let payload_template = if self.payload_template.trim().is_empty() {
            Some(None)
        } else {
            crate::domain::PayloadTemplate::parse(&self.payload_template).map(Some).map_err(|e| errors.push(e)).ok()
        };
        let rate_limit = parse_rate_limit(&self.rate_limit).map_err(|e| errors.push(e)).ok();
        let max_concurrent_requests =
            parse_max_concurrent_requests(&self.max_concurrent_requests).map_err(|e| errors.push(e)).ok();
        match (url, auth_header, event_filter, payload_template, rate_limit, max_concurrent_requests) {
            (
                Some(url),
                Some(auth_header),
                Some(event_filter),
                Some(payload_template),
                Some(rate_limit),
                Some(max_concurrent_requests),
            ) if errors.is_empty() => Ok(WebhookSettings {
                url,
                active: self.active,
                auth_header,
                event_filter,
                payload_template,
                rate_limit,
                max_concurrent_requests,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod input_tests {
    use super::*;

    fn input() -> WebhookInput {
        WebhookInput { url: "https://api.example.com/hook".into(), active: true, ..Default::default() }
    }

    #[test]
    fn minimal_input_is_all_defaults() {
        let settings = input().parse(UrlPolicy::default(), None).unwrap();
        assert_eq!(settings.event_filter, EventFilter::All);
        assert!(settings.auth_header.is_none() && settings.payload_template.is_none());
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let bad = WebhookInput {
            url: "ftp://x".into(),
            auth_header_name: "Bad:Name".into(),
            auth_header_value: "v".into(),
            event_types: Some(vec!["nope".into()]),
            payload_template: "{{".into(),
            rate_limit: "0".into(),
            max_concurrent_requests: "65".into(),
            ..input()
        };
        let fields: Vec<String> =
            bad.parse(UrlPolicy::default(), None).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["url", "authHeader.name", "eventTypes", "payloadTemplate", "rateLimit", "maxConcurrentRequests"]
        );
    }

    #[test]
    fn an_empty_value_keeps_the_saved_one() {
        let saved = AuthHeader::parse("X-Key", "saved-secret").unwrap();
        let renamed = WebhookInput { auth_header_name: "X-Other".into(), ..input() };
        let settings = renamed.parse(UrlPolicy::default(), Some(&saved)).unwrap();
        let header = settings.auth_header.unwrap();
        assert_eq!((header.name(), header.expose_value()), ("X-Other", "saved-secret"));
        // Without a saved header, a name alone is incomplete.
        let err = renamed.parse(UrlPolicy::default(), None).unwrap_err();
        assert_eq!(err[0].field, "authHeader.value");
        // Both blank removes it.
        assert!(input().parse(UrlPolicy::default(), Some(&saved)).unwrap().auth_header.is_none());
    }

    #[test]
    fn rate_limits_are_whole_numbers_in_range_or_blank() {
        assert_eq!(parse_rate_limit("").unwrap(), None);
        assert_eq!(parse_rate_limit(" 25 ").unwrap(), Some(25));
        assert_eq!(parse_rate_limit("1000").unwrap(), Some(1000));
        for bad in ["0", "1001", "-1", "2.5", "ten", "１０"] {
            let err = parse_rate_limit(bad).unwrap_err();
            assert_eq!(err.field, "rateLimit", "{bad}");
            assert!(err.message.contains("1 to 1000"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn concurrency_caps_are_whole_numbers_up_to_the_dispatchers_or_blank() {
        assert_eq!(parse_max_concurrent_requests(" ").unwrap(), None);
        assert_eq!(parse_max_concurrent_requests("1").unwrap(), Some(1));
        assert_eq!(parse_max_concurrent_requests("64").unwrap(), Some(64));
        for bad in ["0", "65", "-3", "1.5", "many"] {
            let err = parse_max_concurrent_requests(bad).unwrap_err();
            assert_eq!(err.field, "maxConcurrentRequests", "{bad}");
            assert!(err.message.contains("requests from 1 to 64"), "{bad}: {}", err.message);
        }
    }
}
