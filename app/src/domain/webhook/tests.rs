//! The webhook settings' rules, case by case.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::FieldError;
use super::*;

const STRICT: UrlPolicy = UrlPolicy { allow_private: false };
const DEV: UrlPolicy = UrlPolicy { allow_private: true };

fn url_error(text: &str, policy: UrlPolicy) -> String {
    let err = WebhookUrl::parse(text, policy).unwrap_err();
    assert_eq!(err.field, "url");
    err.message
}

#[test]
fn accepts_https_urls_and_trims_spaces() {
    let url = WebhookUrl::parse("  https://api.example.com/webhooks/cr3dentials \n", STRICT).unwrap();
    assert_eq!(url.as_str(), "https://api.example.com/webhooks/cr3dentials");
    assert!(WebhookUrl::parse("https://api.example.com:8443/hook?x=1", STRICT).is_ok());
}

#[test]
fn keeps_idn_hosts_in_punycode() {
    let url = WebhookUrl::parse("https://bücher.example/hook", STRICT).unwrap();
    assert_eq!(url.as_str(), "https://xn--bcher-kva.example/hook");
}

#[test]
fn accepts_public_ipv6_literals_and_refuses_private_ones() {
    assert!(WebhookUrl::parse("https://[2606:4700::1111]/hook", STRICT).is_ok());
    assert!(url_error("https://[::1]/hook", STRICT).contains("loopback"));
    assert!(url_error("https://[fd00::1]/hook", STRICT).contains("private"));
    assert!(url_error("https://[::ffff:10.0.0.1]/hook", STRICT).contains("private"));
    assert!(WebhookUrl::parse("https://[::1]:8080/hook", DEV).is_ok());
}

#[test]
fn refuses_private_hosts_unless_allowed() {
    for (text, why) in [
        ("https://127.0.0.1/hook", "address 127.0.0.1, which is loopback"),
        ("https://10.1.2.3/hook", "address 10.1.2.3, which is private"),
        ("https://192.168.0.10/hook", "which is private"),
        ("https://172.16.5.4/hook", "which is private"),
        ("https://169.254.169.254/latest/meta-data", "which is the cloud metadata service"),
        ("https://169.254.1.1/hook", "which is link-local"),
        ("https://100.64.0.1/hook", "which is carrier-grade NAT"),
        ("https://0.0.0.0/hook", "which is unspecified"),
        ("https://224.0.0.1/hook", "which is multicast"),
        ("https://localhost/hook", "localhost, which is this machine"),
        ("https://api.localhost./hook", "api.localhost, which is this machine"),
    ] {
        let error = url_error(text, STRICT);
        assert!(error.starts_with("must not point at") && error.contains(why), "{text}: {error}");
        assert!(WebhookUrl::parse(text, DEV).is_ok(), "{text}");
    }
}

#[test]
fn http_only_when_allowed() {
    assert!(url_error("http://api.example.com/hook", STRICT).contains("https://"));
    assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", DEV).is_ok());
    assert!(url_error("ftp://example.com/x", DEV).contains("not ftp:"));
}

#[test]
fn refuses_malformed_urls() {
    assert_eq!(url_error("", STRICT), "is required");
    assert_eq!(url_error("   ", STRICT), "is required");
    assert!(url_error("api.example.com/hook", STRICT).contains("absolute URL"));
    assert!(url_error("https://", STRICT).contains("not a valid URL"));
    assert!(url_error("https://user:pw@example.com/", STRICT).contains("user name or password"));
    assert!(url_error("https://user@example.com/", STRICT).contains("user name or password"));
    assert!(url_error("https://example.com/hook#part", STRICT).contains("fragment"));
}

#[test]
fn url_length_limit() {
    let base = "https://example.com/";
    let ok = format!("{base}{}", "a".repeat(MAX_URL_CHARS - base.len()));
    assert_eq!(ok.len(), 2048);
    assert!(WebhookUrl::parse(&ok, STRICT).is_ok());
    let long = format!("{ok}a");
    assert_eq!(long.len(), 2049);
    assert!(url_error(&long, STRICT).contains("at most 2048"));
}

#[test]
fn private_ip_classes() {
    for ip in [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
    ] {
        assert!(is_private_ip(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
        assert!(!is_private_ip(ip.parse().unwrap()), "{ip}");
    }
}

#[test]
fn ipv4_inside_ipv6_is_checked_as_the_ipv4_it_carries() {
    // (private inside, public inside) for each form.
    for (form, private, public) in [
        ("IPv4-mapped", "::ffff:10.0.0.5", "::ffff:8.8.8.8"),
        ("IPv4-compatible", "::10.0.0.5", "::8.8.8.8"),
        ("IPv4-compatible", "::127.0.0.1", "::1.1.1.1"),
        ("NAT64", "64:ff9b::192.168.1.1", "64:ff9b::8.8.8.8"),
        ("NAT64", "64:ff9b::169.254.169.254", "64:ff9b::1.1.1.1"),
        // 6to4: 2002:AABB:CCDD:: carries AA.BB.CC.DD.
        ("6to4", "2002:0a00:0005::1", "2002:0808:0808::1"),
        ("6to4", "2002:7f00:0001:1234::1", "2002:0101:0101:1234::1"),
        // Teredo: 2001:0:<server>:<flags>:<port>:<client XOR ffff:ffff>; f5ff:fffa is 10.0.0.5.
        ("Teredo", "2001:0:4136:e378:8000:63bf:f5ff:fffa", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"),
        ("Teredo", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:fefe:fefe"),
    ] {
        let private: Ipv6Addr = private.parse().unwrap();
        let public: Ipv6Addr = public.parse().unwrap();
        assert_eq!(embedded_ipv4(private).map(|(_, f)| f), Some(form), "{private}");
        assert_eq!(embedded_ipv4(public).map(|(_, f)| f), Some(form), "{public}");
        assert!(is_private_ip(IpAddr::V6(private)), "{form} {private} carries a private IPv4 address");
        assert!(!is_private_ip(IpAddr::V6(public)), "{form} {public} carries a public IPv4 address");
        let why = refused_address(IpAddr::V6(private)).unwrap();
        assert!(why.contains(form) && why.contains("which carries"), "{why}");
    }
    assert_eq!(embedded_ipv4("2002:0a00:0005::1".parse().unwrap()).unwrap().0, Ipv4Addr::new(10, 0, 0, 5));
    assert_eq!(
        embedded_ipv4("2001:0:4136:e378:8000:63bf:f5ff:fffa".parse().unwrap()).unwrap().0,
        Ipv4Addr::new(10, 0, 0, 5)
    );
    // And at save time, as URL literals.
    for url in ["https://[::ffff:10.0.0.5]/hook", "https://[2002:a00:5::1]/hook", "https://[64:ff9b::a00:5]/hook"] {
        assert!(url_error(url, STRICT).contains("10.0.0.5"), "{url}");
    }
    assert!(WebhookUrl::parse("https://[2002:808:808::1]/hook", STRICT).is_ok());
    // Plain IPv6 stays as it was: no IPv4 inside.
    assert_eq!(embedded_ipv4("2606:4700::1111".parse().unwrap()), None);
    assert!(is_private_ip("::1".parse().unwrap()) && is_private_ip("::".parse().unwrap()));
    assert!(is_private_ip("64:ff9b:1::a00:5".parse().unwrap()), "local-use NAT64 stays refused");
}

fn header_error(name: &str, value: &str) -> FieldError {
    AuthHeader::parse(name, value).unwrap_err()
}

#[test]
fn auth_header_accepts_ordinary_headers() {
    let header = AuthHeader::parse(" Authorization ", "Bearer abc.def-123").unwrap();
    assert_eq!(header.name(), "Authorization");
    assert_eq!(header.expose_value(), "Bearer abc.def-123");
    assert!(AuthHeader::parse("secret", "your-secure-secret-key-here").is_ok());
    assert!(AuthHeader::parse("X-Api-Key", &"k".repeat(1024)).is_ok());
}

#[test]
fn auth_header_name_rules() {
    let err = header_error("X-Key:", "v");
    assert_eq!(err.field, "authHeader.name");
    assert!(err.message.contains("`:`"), "{err}");
    assert!(header_error("X Key", "v").message.contains("` `"));
    assert!(header_error("", "v").message.contains("required"));
    for reserved in [
        "Host",
        "content-length",
        "Content-Type",
        "Transfer-Encoding",
        "Connection",
        "User-Agent",
        "webhook-signature",
        "Webhook-Id",
        "x-webhook-signature",
        "X-Webhook-Anything",
    ] {
        let err = header_error(reserved, "v");
        assert_eq!(err.field, "authHeader.name", "{reserved}");
        assert!(err.message.contains("set by the dispatcher"), "{reserved}: {err}");
    }
}

#[test]
fn auth_header_value_rules() {
    for (value, rule) in [
        ("a\r\nInjected: yes", "line breaks"),
        ("a\nb", "line breaks"),
        ("", "required"),
        (" padded", "start or end with a space"),
        ("padded ", "start or end with a space"),
        ("caf\u{e9}", "printable ASCII"),
        ("nul\0", "printable ASCII"),
    ] {
        let err = header_error("X-Key", value);
        assert_eq!(err.field, "authHeader.value", "{value:?}");
        assert!(err.message.contains(rule), "{value:?}: {err}");
    }
    assert!(header_error("X-Key", &"k".repeat(1025)).message.contains("at most 1,024"));
}

#[test]
fn auth_header_value_never_prints() {
    let header = AuthHeader::parse("X-Key", "super-secret-value-1234").unwrap();
    assert!(!format!("{header:?}").contains("super-secret"));
    assert_eq!(header.masked_value(), "••••••••1234");
    assert_eq!(AuthHeader::parse("X-Key", "short").unwrap().masked_value(), "••••••••");
}

#[test]
fn event_types_parse_and_filter() {
    assert_eq!(EventType::parse("review.completed").unwrap(), EventType::ReviewCompleted);
    let err = EventType::parse("verification.done").unwrap_err();
    assert!(err.message.contains("`verification.done`") && err.message.contains("verification.completed"));
    assert_eq!(EventFilter::parse(None).unwrap(), EventFilter::All);
    let only = EventFilter::parse(Some(&["verification.failed".to_owned(), "verification.failed".to_owned()])).unwrap();
    assert!(only.accepts(EventType::VerificationFailed));
    assert!(!only.accepts(EventType::VerificationCompleted));
    assert_eq!(only.names(), Some(vec!["verification.failed".to_owned()]));
    assert!(EventFilter::parse(Some(&[])).unwrap_err().message.contains("at least one"));
    assert_eq!(serde_json::to_string(&EventType::VerificationExpired).unwrap(), "\"verification.expired\"");
}

#[cfg(feature = "ssr")]
#[test]
fn signing_secrets_are_standard_webhooks_secrets() {
    let secret = SigningSecret::generate();
    assert!(secret.expose().starts_with("whsec_"));
    assert_eq!(secret.key_bytes().len(), 32);
    assert_ne!(SigningSecret::generate(), secret);
    assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
}
