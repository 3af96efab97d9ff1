//! The key that signs a webhook's deliveries.

use std::fmt;

/// The key that signs a webhook's deliveries: `whsec_` and the base64 of 32 random bytes, the
/// Standard Webhooks form. Not serialized, prints masked; revealed only on request.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

/// A new signing secret, and until when the old one still signs: `x-webhook-signature` stays
/// on the old secret until then (so a receiver that checks only it keeps working), and
/// `webhook-signature` carries a signature by each.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    /// The new secret, `whsec_` included.
    pub secret: String,
    /// When the old secret stops signing.
    pub old_signs_until: chrono::DateTime<chrono::Utc>,
}

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
