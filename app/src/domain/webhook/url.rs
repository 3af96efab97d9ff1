//! Where deliveries go: the URL rules, and the addresses a delivery may not reach.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::super::FieldError;

/// Longest webhook URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;

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
        let url = ::url::Url::parse(text).map_err(|e| match e {
            ::url::ParseError::RelativeUrlWithoutBase => err("must be an absolute URL starting with https://".into()),
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
                ::url::Host::Domain(domain) => {
                    let domain = domain.trim_end_matches('.');
                    (domain == "localhost" || domain.ends_with(".localhost"))
                        .then(|| format!("must not point at {domain}, which is this machine (loopback)"))
                }
                ::url::Host::Ipv4(ip) => refused_address(IpAddr::V4(ip)).map(|why| format!("must not point at {why}")),
                ::url::Host::Ipv6(ip) => refused_address(IpAddr::V6(ip)).map(|why| format!("must not point at {why}")),
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
