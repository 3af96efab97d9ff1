//! A webhook's settings, each parsed once at the boundary with an error that names the field
//! and the rule it broke. The field names are the REST API's (`authHeader.name`), which the
//! forms use too, so one error shows next to one field everywhere.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::FieldError;

/// Longest webhook URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest auth header value accepted, in characters.
pub const MAX_AUTH_VALUE_CHARS: usize = 1024;
/// Longest auth header name accepted.
pub const MAX_AUTH_NAME_CHARS: usize = 256;

/// Where deliveries go: an absolute `https://` URL (plain `http://` and private addresses only
/// when the operator allows them), without credentials or fragment, at most 2,048 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

/// What the operator allows a webhook URL to point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// `http://`, loopback and private addresses: for local development and tests.
    pub allow_private: bool,
}

impl WebhookUrl {
    /// Parses what a partner typed. Spaces around it are dropped; an internationalised host is
    /// kept in its ASCII (punycode) form, as it goes on the wire.
    pub fn parse(text: &str, policy: UrlPolicy) -> Result<Self, FieldError> {
        let err = |message: String| FieldError::new("url", message);
        let text = text.trim();
        if text.is_empty() {
            return Err(err("is required".into()));
        }
        if text.chars().count() > MAX_URL_CHARS {
            return Err(err(format!("must be at most {MAX_URL_CHARS} characters")));
        }
        let url = url::Url::parse(text).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => err("must be an absolute URL starting with https://".into()),
            other => err(format!("is not a valid URL ({other})")),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_private => {}
            "http" => return Err(err("must start with https:// (plain http:// is not allowed)".into())),
            other => return Err(err(format!("must start with https://, not {other}:"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not contain a user name or password; use the auth header instead".into()));
        }
        if url.fragment().is_some() {
            return Err(err("must not contain a #fragment (it is never sent to the server)".into()));
        }
        let host = url.host().ok_or_else(|| err("must name a host".into()))?;
        if !policy.allow_private {
            let refused = match host {
                url::Host::Domain(domain) => {
                    let domain = domain.trim_end_matches('.');
                    (domain == "localhost" || domain.ends_with(".localhost"))
                        .then(|| format!("must not point at {domain}, which is this machine (loopback)"))
                }
                url::Host::Ipv4(ip) => refused_address(IpAddr::V4(ip)).map(|why| format!("must not point at {why}")),
                url::Host::Ipv6(ip) => refused_address(IpAddr::V6(ip)).map(|why| format!("must not point at {why}")),
            };
            if let Some(message) = refused {
                return Err(err(message));
            }
        }
        let normalized = url.as_str();
        if normalized.chars().count() > MAX_URL_CHARS {
            return Err(err(format!("must be at most {MAX_URL_CHARS} characters (once its host is in ASCII form)")));
        }
        Ok(Self(normalized.to_owned()))
    }

    /// A URL read back from the store, which only holds parsed ones.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether deliveries must stay away from `ip`: loopback, private, link-local (cloud metadata
/// lives at 169.254.169.254), carrier-grade NAT, unspecified, multicast, broadcast and the
/// documentation ranges, in IPv4, IPv6, and IPv4 carried inside IPv6 ([`embedded_ipv4`]).
pub fn is_private_ip(ip: IpAddr) -> bool {
    private_kind(ip).is_some()
}

/// What kind of address deliveries must stay away from `ip` is, in words; `None` for a public
/// one. An IPv6 address that carries an IPv4 one is what that IPv4 address is.
pub fn private_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => private_kind_v4(v4),
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if let Some((v4, _)) = embedded_ipv4(v6) {
                private_kind_v4(v4)
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some("the cloud metadata service")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private (unique local)")
            } else if (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0 {
                Some("link-local")
            } else if first == 0x2001 && second == 0x0db8 {
                Some("reserved for documentation")
            } else if first == 0x0064 && second == 0xff9b {
                // 64:ff9b:1::/48 and the rest of the /32: local NAT64 prefixes (RFC 8215),
                // whose IPv4 part has no fixed place to check.
                Some("NAT64, which may reach private IPv4 addresses")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address an IPv6 address carries, and the form that carries it, for the forms a
/// packet can travel to that IPv4 address by: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d` (deprecated, still routed by some stacks), NAT64 `64:ff9b::a.b.c.d`, 6to4
/// `2002:aabb:ccdd::/48` (the IPv4 in bits 16 to 48) and Teredo `2001:0::/32` (the client's
/// IPv4 in the last 32 bits, every bit flipped). Without this, `[::ffff:10.0.0.5]` or
/// `[2002:a00:5::]` would pass a check that refuses `10.0.0.5`.
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = v6.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some((v4, "IPv4-mapped"))
    } else if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        Some((last, "IPv4-compatible"))
    } else if s[..6] == [0x0064, 0xff9b, 0, 0, 0, 0] {
        Some((last, "NAT64"))
    } else if s[0] == 0x2002 {
        Some((Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8), "6to4"))
    } else if s[0] == 0x2001 && s[1] == 0 {
        Some((Ipv4Addr::from(u32::from(last) ^ 0xffff_ffff), "Teredo"))
    } else {
        None
    }
}

fn private_kind_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.octets() == [169, 254, 169, 254] {
        "the cloud metadata service"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified (\"this network\")"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_multicast() {
        "multicast"
    } else if a == 100 && (64..=127).contains(&b) {
        "carrier-grade NAT (shared, private)"
    } else if ip.is_documentation() || (a == 192 && b == 0 && c == 0) || (a == 198 && (b == 18 || b == 19)) {
        "reserved (documentation, protocol or benchmarking)"
    } else if a >= 240 {
        "reserved"
    } else {
        return None;
    })
}

/// Why deliveries may not go to `ip`, as a sentence part ("address 10.0.0.5, which is
/// private"); `None` for a public address.
pub fn refused_address(ip: IpAddr) -> Option<String> {
    let kind = private_kind(ip)?;
    let carried = match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6),
        IpAddr::V4(_) => None,
    };
    Some(match carried {
        Some((v4, form)) => format!("address {ip}, which carries {v4} ({form}), which is {kind}"),
        None => format!("address {ip}, which is {kind}"),
    })
}

/// What the operator can do about a refused private target.
pub const ALLOW_PRIVATE_HINT: &str = "set PORTAL_ALLOW_PRIVATE_TARGETS for development";

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

/// What happened for a partner: the four event types of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A verification reached a successful end.
    #[serde(rename = "verification.completed")]
    VerificationCompleted,
    /// A verification failed.
    #[serde(rename = "verification.failed")]
    VerificationFailed,
    /// A verification expired before it was finished.
    #[serde(rename = "verification.expired")]
    VerificationExpired,
    /// A manual review was completed.
    #[serde(rename = "review.completed")]
    ReviewCompleted,
}

impl EventType {
    /// Every type, in the order the docs list them.
    pub const ALL: [EventType; 4] =
        [Self::VerificationCompleted, Self::VerificationFailed, Self::VerificationExpired, Self::ReviewCompleted];

    /// The type's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerificationCompleted => "verification.completed",
            Self::VerificationFailed => "verification.failed",
            Self::VerificationExpired => "verification.expired",
            Self::ReviewCompleted => "review.completed",
        }
    }

    /// Parses a type name; the error lists the valid ones.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        Self::ALL.into_iter().find(|t| t.as_str() == text).ok_or_else(|| {
            let valid: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
            FieldError::new(
                "eventTypes",
                format!(
                    "has `{}`, which is not an event type (valid: {})",
                    text.chars().take(64).collect::<String>(),
                    valid.join(", ")
                ),
            )
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which events a webhook receives: all types (the default, including types added later), or a
/// non-empty selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EventFilter {
    /// Every type.
    #[default]
    All,
    /// Only these.
    Only(BTreeSet<EventType>),
}

impl EventFilter {
    /// From a list of type names; `None` means all. An empty list is refused: a webhook that
    /// receives nothing is a mistake, and deactivating it says so better.
    pub fn parse(names: Option<&[String]>) -> Result<Self, FieldError> {
        let Some(names) = names else { return Ok(Self::All) };
        if names.is_empty() {
            return Err(FieldError::new("eventTypes", "must name at least one event type, or be left out for all"));
        }
        let types = names.iter().map(|n| EventType::parse(n.trim())).collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Self::Only(types))
    }

    /// Whether an event of type `t` goes to the webhook.
    pub fn accepts(&self, t: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(&t),
        }
    }

    /// The selection as type names, `None` for all.
    pub fn names(&self) -> Option<Vec<String>> {
        match self {
            Self::All => None,
            Self::Only(types) => Some(types.iter().map(|t| t.as_str().to_owned()).collect()),
        }
    }
}

/// The key that signs a webhook's deliveries: `whsec_` and the base64 of 32 random bytes, the
/// Standard Webhooks form. Not serialized, prints masked; revealed only on request.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

/// The text every signing secret starts with.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

impl SigningSecret {
    /// A fresh secret from the operating system's random source.
    #[cfg(feature = "ssr")]
    pub fn generate() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{SIGNING_SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
    }

    /// A secret read back from the store.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    /// The secret exactly as the portal shows it, `whsec_` included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key bytes the Standard Webhooks signature uses: the base64 after `whsec_`.
    #[cfg(feature = "ssr")]
    pub fn key_bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.0.strip_prefix(SIGNING_SECRET_PREFIX).unwrap_or(&self.0);
        base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_else(|_| self.0.as_bytes().to_vec())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_********)")
    }
}

#[cfg(test)]
mod tests {
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
        let only =
            EventFilter::parse(Some(&["verification.failed".to_owned(), "verification.failed".to_owned()])).unwrap();
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
}

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

/// A webhook as pages and the REST API show it: secrets masked or left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// `wh_…`
    #[cfg_attr(feature = "ssr", schema(value_type = String, example = "wh_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"))]
    pub id: super::WebhookId,
    /// Where deliveries go.
    pub url: String,
    /// Whether events are sent to it.
    pub active: bool,
    /// Why the dispatcher deactivated it, when it did.
    pub deactivated_reason: Option<String>,
    /// When it was deactivated (by the partner or the dispatcher).
    pub deactivated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The event types it receives; `null` for all.
    #[cfg_attr(feature = "ssr", schema(example = json!(["verification.completed"])))]
    pub event_types: Option<Vec<String>>,
    /// The extra header, its value masked.
    pub auth_header: Option<MaskedAuthHeader>,
    /// The payload template, when it has one.
    pub payload_template: Option<String>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Time of the newest delivery attempt.
    pub last_delivery_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether that attempt succeeded.
    pub last_delivery_ok: Option<bool>,
    /// Share of the last 24 hours' attempts that succeeded, 0 to 100; `null` with none.
    pub success_rate: Option<f64>,
    /// Failed attempts since the last success (tests left out).
    pub failures_in_a_row: i64,
    /// Most requests per second the dispatcher sends it; `null` for no limit.
    pub rate_limit: Option<u32>,
    /// The badge.
    pub health: Health,
}

impl WebhookView {
    /// Why the badge is what it is, in a sentence with this webhook's numbers: the text shown
    /// on hover and focus.
    pub fn health_reason(&self) -> String {
        let rate = self.success_rate.map(|r| format!("{r:.1} %")).unwrap_or_else(|| "–".into());
        match self.health {
            Health::Inactive => "Switched off by your team: no events are sent to it.".into(),
            Health::Red if !self.active => format!(
                "The dispatcher switched it off after a delivery failed every retry{}. Activate it to resume.",
                self.deactivated_at.map(|at| format!(" on {}", at.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default()
            ),
            Health::Red => format!(
                "The last {} attempts in a row failed (red from 3). Success rate in the last 24 hours: {rate}.",
                self.failures_in_a_row
            ),
            Health::Yellow if self.failures_in_a_row > 0 => format!(
                "The latest attempt failed ({} in a row; red from 3). Success rate in the last 24 hours: {rate}.",
                self.failures_in_a_row
            ),
            Health::Yellow => format!("Success rate in the last 24 hours is {rate}, under 95 %."),
            Health::Green if self.last_delivery_at.is_none() => "No deliveries yet.".into(),
            Health::Green => {
                format!("The latest attempt succeeded and {rate} of the last 24 hours' attempts did (95 % or more).")
            }
        }
    }
}

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
}

/// Highest per-webhook rate limit, requests per second (the dispatcher spaces requests by
/// whole milliseconds).
pub const MAX_RATE_LIMIT: u32 = 1000;

/// A rate limit as typed: blank for none, else a whole number of requests per second.
pub fn parse_rate_limit(text: &str) -> Result<Option<u32>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_RATE_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(FieldError::new(
            "rateLimit",
            format!("must be a whole number of requests per second from 1 to {MAX_RATE_LIMIT}, or empty for no limit"),
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
    pub payload_template: Option<super::PayloadTemplate>,
    /// Most requests per second, if limited.
    pub rate_limit: Option<u32>,
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
            super::PayloadTemplate::parse(&self.payload_template).map(Some).map_err(|e| errors.push(e)).ok()
        };
        let rate_limit = parse_rate_limit(&self.rate_limit).map_err(|e| errors.push(e)).ok();
        match (url, auth_header, event_filter, payload_template, rate_limit) {
            (Some(url), Some(auth_header), Some(event_filter), Some(payload_template), Some(rate_limit))
                if errors.is_empty() =>
            {
                Ok(WebhookSettings {
                    url,
                    active: self.active,
                    auth_header,
                    event_filter,
                    payload_template,
                    rate_limit,
                })
            }
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
            ..input()
        };
        let fields: Vec<String> =
            bad.parse(UrlPolicy::default(), None).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["url", "authHeader.name", "eventTypes", "payloadTemplate", "rateLimit"]);
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
}

/// A banner's worth: the dispatcher switched one of the partner's webhooks off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    /// `alr_…`, to dismiss it.
    pub id: super::AlertId,
    /// The webhook that was switched off.
    pub webhook_id: super::WebhookId,
    /// Its URL at the time.
    pub url: String,
    /// Why, with the last error.
    pub reason: String,
    /// When.
    pub deactivated_at: chrono::DateTime<chrono::Utc>,
}
