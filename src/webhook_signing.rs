//! Signatures in the Standard Webhooks format: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, with secrets
//! shown to tenants as `whsec_<base64>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, MasterKey};

/// Bytes of a new secret.
const SECRET_BYTES: usize = 32;
const SECRET_PREFIX: &str = "whsec_";

/// A new secret in its shown form.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// A new secret sealed with the master key under `aad`: the shown form (for the admin, once)
/// and the sealed bytes (for the database).
pub fn new_sealed_secret(
    master: &MasterKey,
    aad: &[u8],
) -> Result<(Zeroizing<String>, Vec<u8>), CryptoError> {
    let secret = Zeroizing::new(new_secret());
    let sealed = master.seal(secret.as_bytes(), aad)?;
    Ok((secret, sealed))
}

/// The signing key of a secret sealed by [`new_sealed_secret`] under `aad`; what `what` names
/// goes into the error.
pub fn open_sealed_key(
    master: &MasterKey,
    sealed: &[u8],
    aad: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let plain = master
        .open(sealed, aad)
        .map_err(|e| format!("{what} secret: {e}"))?;
    std::str::from_utf8(&plain)
        .ok()
        .and_then(secret_key)
        .map(Zeroizing::new)
        .ok_or_else(|| format!("the {what} secret is malformed"))
}

/// The `webhook-signature` value for one message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The three Standard Webhooks headers for one message, sent now as `timestamp`.
pub fn headers(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", sign(key, id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification's reference libraries.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn new_secrets_round_trip() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(secret_key(&secret).map(|k| k.len()), Some(SECRET_BYTES));
    }
}
