//! Signatures: the portal's own `x-webhook-signature`, and the Standard Webhooks v1 scheme.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::SigningSecret;

type HmacSha256 = Hmac<Sha256>;

/// `x-webhook-signature`: lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the
/// secret's text as the portal shows it (`whsec_` included), so a partner's one-line check works.
pub fn hex_signature(secret: &SigningSecret, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// One Standard Webhooks v1 signature: `v1,` and the base64 HMAC-SHA256, keyed with the decoded
/// secret, of `{id}.{timestamp}.{body}`.
pub fn standard_signature(secret: &SigningSecret, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(&secret.key_bytes()).expect("HMAC takes keys of any length");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        let secret = SigningSecret::from_trusted("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into());
        let signature = standard_signature(
            &secret,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn hex_signature_is_keyed_with_the_whole_secret_text() {
        let secret = SigningSecret::from_trusted("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into());
        let body = br#"{"a":1}"#;
        let mut mac = HmacSha256::new_from_slice(b"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        mac.update(body);
        assert_eq!(hex_signature(&secret, body), hex::encode(mac.finalize().into_bytes()));
        assert_eq!(hex_signature(&secret, body).len(), 64);
        assert!(hex_signature(&secret, body).chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
