//! Property tests of the parsers that take what partners type: whatever the input (unicode,
//! control characters, huge or empty), they answer a value or a field error, never panic, and
//! what they accept keeps their rules. Bounded (a few hundred cases each) so they run in the
//! ordinary test suite.

use proptest::prelude::*;

use super::*;

const STRICT: UrlPolicy = UrlPolicy { allow_private: false };

/// Text with every kind of character, including controls, line breaks and non-ASCII.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,300}",
        proptest::collection::vec(any::<char>(), 0..300).prop_map(|c| c.into_iter().collect()),
        "[ \\t\\r\\n\\x00-\\x1f\\x7f\\u{80}-\\u{10ffff}a-zA-Z0-9:/?#@!$&'()*+,;=%._~-]{0,200}",
    ]
}

/// Things that look like URLs, to get past the first checks.
fn url_like() -> impl Strategy<Value = String> {
    prop_oneof![
        (prop_oneof!["https://", "http://", "HTTPS://", "https:", ""], any_text())
            .prop_map(|(scheme, rest)| format!("{scheme}{rest}")),
        // A plausible host, then anything: most of these are accepted, so the rules on what is
        // accepted get exercised.
        (
            "[a-zA-Z0-9.-]{1,40}|[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[[0-9a-f:]{2,39}\\]",
            "(:[0-9]{1,6})?",
            any_text()
        )
            .prop_map(|(host, port, rest)| format!("https://{host}{port}/{rest}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn urls_are_accepted_only_in_normal_safe_form(text in url_like()) {
        if let Ok(url) = WebhookUrl::parse(&text, STRICT) {
            let parsed = url::Url::parse(url.as_str()).expect("an accepted URL parses");
            prop_assert_eq!(parsed.scheme(), "https");
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none() && parsed.fragment().is_none());
            prop_assert!(url.as_str().chars().count() <= MAX_URL_CHARS);
            prop_assert!(!url.as_str().chars().any(char::is_control), "{}", url.as_str());
            if let Some(url::Host::Ipv4(ip)) = parsed.host() {
                prop_assert!(!is_private_ip(std::net::IpAddr::V4(ip)));
            }
            // Normal form: parsing it again changes nothing.
            let again = WebhookUrl::parse(url.as_str(), STRICT).unwrap();
            prop_assert_eq!(again.as_str(), url.as_str());
        }
    }

    #[test]
    fn auth_headers_can_never_inject_a_header(name in any_text(), value in any_text()) {
        if let Ok(header) = AuthHeader::parse(&name, &value) {
            prop_assert!(!header.name().is_empty() && header.name().chars().all(|c| c.is_ascii_graphic() && c != ':'));
            prop_assert!(!header.expose_value().contains(['\r', '\n', '\0']));
            prop_assert!(reqwest::header::HeaderName::from_bytes(header.name().as_bytes()).is_ok());
            prop_assert!(reqwest::header::HeaderValue::from_str(header.expose_value()).is_ok());
        }
    }

    #[test]
    fn templates_render_json_or_say_why(template in prop_oneof![
        any_text(),
        any_text().prop_map(|t| format!("{{\"x\": {{{{ {t} }}}} }}")),
        any_text().prop_map(|t| format!("{{% for i in {t} %}}{{{{ i }}}}{{% endfor %}}")),
    ]) {
        if let Ok(template) = PayloadTemplate::parse(&template) {
            match template.render_unguarded(&EventBody::sample()) {
                Ok(body) => {
                    prop_assert!(body.len() <= MAX_RENDERED_BYTES);
                    prop_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok(), "{}", body);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn names_emails_and_filters_refuse_control_characters(text in any_text()) {
        if let Ok(name) = PartnerName::parse(&text) {
            prop_assert!(!String::from(name).chars().any(char::is_control));
        }
        if let Ok(email) = EmailAddress::parse(&text) {
            let email = String::from(email);
            prop_assert!(!email.chars().any(|c| c.is_control() || c.is_whitespace()) && email.contains('@'));
        }
        let _ = LogQuery { outcome: Some(text.clone()), event_type: Some(text.clone()), from: Some(text.clone()), ..LogQuery::default() }.parse();
        let _ = parse_rate_limit(&text);
        let _ = parse_max_concurrent_requests(&text);
        let _ = EventType::parse(&text);
    }
}
