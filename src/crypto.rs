//! Small cryptographic helpers: the master key that encrypts secrets at rest, hashing,
//! constant-time comparison, and random tokens.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Format version of sealed blobs: 1 = AES-256-GCM, 96-bit nonce.
const SEALED_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Errors of the crypto helpers; none carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    #[error("master key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("encryption failed")]
    Encrypt,
    #[error("decryption failed: wrong master key or corrupted data")]
    Decrypt,
}

/// The 256-bit key that encrypts private keys and credentials at rest.
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

impl MasterKey {
    /// From exactly 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(CryptoError::InvalidMasterKey(format!(
                "expected 64 hex digits, got {} characters",
                text.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, bytes.as_mut())
            .map_err(|_| CryptoError::InvalidMasterKey("not hexadecimal".into()))?;
        Ok(Self(*bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key; the bool says whether it
    /// was created. Two processes racing to create it end up with the same key.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => return Ok((Self::from_hex(&text)?, false)),
            Err(err) if err.kind() != ErrorKind::NotFound => return Err(err.into()),
            Err(_) => {}
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                let hex = Zeroizing::new(hex::encode(key.0));
                file.write_all(hex.as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
                Ok((key, true))
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                Ok((Self::from_hex(&std::fs::read_to_string(path)?)?, false))
            }
            Err(err) => Err(err.into()),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }

    /// Encrypts `plaintext` bound to `aad`: version byte, nonce, ciphertext and tag.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEALED_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts what [`Self::seal`] produced with the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Some((&SEALED_VERSION, rest)) = sealed.split_first() else {
            return Err(CryptoError::Decrypt);
        };
        if rest.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Compares in time that depends only on the lengths, never on where the bytes differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `prefix` and `bytes` random bytes from the OS-seeded CSPRNG, base64url without padding.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut raw = Zeroizing::new(vec![0u8; bytes]);
    rand::rng().fill_bytes(&mut raw);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn seal_and_open_round_trip() -> TestResult {
        let key = MasterKey::generate();
        let sealed = key.seal(b"secret seed", b"kid-1")?;
        assert_eq!(key.open(&sealed, b"kid-1")?.as_slice(), b"secret seed");
        assert_ne!(
            key.seal(b"secret seed", b"kid-1")?,
            sealed,
            "nonces must differ"
        );
        Ok(())
    }

    #[test]
    fn open_refuses_wrong_key_aad_or_tampering() -> TestResult {
        let key = MasterKey::generate();
        let sealed = key.seal(b"secret", b"aad")?;
        assert!(key.open(&sealed, b"other").is_err());
        assert!(MasterKey::generate().open(&sealed, b"aad").is_err());
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(key.open(&flipped, b"aad").is_err());
        assert!(key.open(&[], b"aad").is_err());
        assert!(key.open(&[2, 0, 0], b"aad").is_err());
        Ok(())
    }

    #[test]
    fn from_hex_wants_exactly_64_hex_digits() {
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::from_hex(&format!(" {}\n", "ab".repeat(32))).is_ok());
        assert!(MasterKey::from_hex(&"a".repeat(63)).is_err());
        assert!(MasterKey::from_hex(&"a".repeat(65)).is_err());
        assert!(MasterKey::from_hex(&"g".repeat(64)).is_err());
        assert_eq!(format!("{:?}", MasterKey::generate()), "MasterKey(..)");
    }

    #[test]
    fn key_file_is_created_private_then_reused() -> TestResult {
        let dir = std::env::temp_dir().join(format!("mc-key-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("sub").join("master.key");
        let (first, created) = MasterKey::load_or_create_file(&path)?;
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }
        let (second, created) = MasterKey::load_or_create_file(&path)?;
        assert!(!created);
        let sealed = first.seal(b"x", b"")?;
        assert_eq!(second.open(&sealed, b"")?.as_slice(), b"x");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn ct_eq_and_tokens() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        let a = random_token("st_", 32);
        assert!(a.starts_with("st_") && a.len() == 3 + 43);
        assert_ne!(a, random_token("st_", 32));
        assert_eq!(sha256(b"abc").len(), 32);
    }
}
