//! JWT signing on successful verification: Ed25519 keys created on first start, stored
//! encrypted with the master key, rotated with overlap, and published as a JWKS.

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, MasterKey};
use crate::db::DbConn;
use crate::db::schema::signing_keys;
use crate::error::AppError;

/// Held while keys are created or rotated, so instances starting together make one key.
const KEY_LOCK: i64 = 0x6d69_7373_6564_0002;
const ALGORITHM_EDDSA: &str = "EdDSA";

/// Errors of signing and key management.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("no active signing key")]
    NoActiveKey,
    #[error("jwt: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("invalid key: {0}")]
    InvalidKey(String),
}

impl From<TokenError> for AppError {
    fn from(err: TokenError) -> Self {
        AppError::Internal(err.to_string())
    }
}

/// What a token is issued for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub audience: String,
    pub phone_number: String,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub ttl_seconds: i64,
    /// Verified through a tenant test number.
    pub test: bool,
}

/// A signed token and when it expires.
#[derive(Debug, Clone)]
pub struct SignedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The claims of a verification token, for issuers and verifiers alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub phone_number: String,
    pub phone_number_verified: bool,
    pub tenant_id: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// Present (true) only on tokens of tenant test numbers, so backends can refuse them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct SigningKeyRow {
    kid: String,
    algorithm: String,
    private_key_encrypted: Vec<u8>,
    public_jwk: Value,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

#[derive(Insertable)]
#[diesel(table_name = signing_keys)]
struct NewSigningKey<'a> {
    kid: &'a str,
    algorithm: &'a str,
    private_key_encrypted: &'a [u8],
    public_jwk: Value,
}

struct KeyRing {
    kid: String,
    encoding: EncodingKey,
    jwks: Value,
}

/// Signs verification tokens with the newest active key and publishes every key still valid.
pub struct TokenSigner {
    issuer: String,
    ring: RwLock<Arc<KeyRing>>,
}

impl TokenSigner {
    /// Loads the keys, creating the first one when there is none.
    pub async fn load_or_init(
        conn: &mut DbConn,
        master: &MasterKey,
        issuer: String,
    ) -> Result<Self, TokenError> {
        conn.transaction(async |conn| {
            lock_keys(conn).await?;
            let active: i64 = signing_keys::table
                .filter(signing_keys::retired_at.is_null())
                .count()
                .get_result(conn)
                .await?;
            if active == 0 {
                insert_new_key(conn, master).await?;
            }
            Ok::<_, TokenError>(())
        })
        .await?;
        let ring = load_ring(conn, master).await?;
        Ok(Self {
            issuer,
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    /// Re-reads the keys, picking up rotations made elsewhere.
    pub async fn reload(&self, conn: &mut DbConn, master: &MasterKey) -> Result<(), TokenError> {
        let ring = Arc::new(load_ring(conn, master).await?);
        match self.ring.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The id of the key that signs now.
    pub fn active_kid(&self) -> String {
        self.current().kid.clone()
    }

    /// Signs a verification token.
    pub fn sign(&self, request: &TokenRequest) -> Result<SignedToken, TokenError> {
        let ring = self.current();
        let now = Utc::now();
        let expires_at = now + chrono::Duration::seconds(request.ttl_seconds);
        let claims = VerificationClaims {
            iss: self.issuer.clone(),
            aud: request.audience.clone(),
            sub: request.phone_number.clone(),
            phone_number: request.phone_number.clone(),
            phone_number_verified: true,
            tenant_id: request.tenant_id.to_string(),
            jti: request.session_id.to_string(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            test: request.test,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(ring.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &ring.encoding)?;
        Ok(SignedToken { token, expires_at })
    }

    /// `{"keys": [...]}`: every key that is active or inside its overlap window.
    pub fn jwks(&self) -> Value {
        self.current().jwks.clone()
    }
}

/// Starts signing with a new key; the active ones stay published until `now + overlap`.
pub async fn rotate(
    conn: &mut DbConn,
    master: &MasterKey,
    overlap: chrono::Duration,
) -> Result<String, TokenError> {
    conn.transaction(async |conn| {
        lock_keys(conn).await?;
        diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
            .set(signing_keys::retired_at.eq(Utc::now() + overlap))
            .execute(conn)
            .await?;
        insert_new_key(conn, master).await
    })
    .await
}

/// A verifier's key from one JWK of the JWKS.
pub fn decoding_key_from_jwk(jwk: &Value) -> Result<DecodingKey, TokenError> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    match (field("kty"), field("crv"), field("x")) {
        (Some("OKP"), Some("Ed25519"), Some(x)) => Ok(DecodingKey::from_ed_components(x)?),
        _ => Err(TokenError::InvalidKey(
            "expected an OKP Ed25519 JWK with x".into(),
        )),
    }
}

async fn lock_keys(conn: &mut DbConn) -> Result<(), TokenError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(KEY_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_new_key(conn: &mut DbConn, master: &MasterKey) -> Result<String, TokenError> {
    let kid = Uuid::now_v7().simple().to_string();
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(seed.as_mut());
    let signing = SigningKey::from_bytes(&seed);
    let public_jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
        "kid": kid,
        "alg": ALGORITHM_EDDSA,
        "use": "sig",
    });
    let sealed = master.seal(seed.as_slice(), kid.as_bytes())?;
    diesel::insert_into(signing_keys::table)
        .values(&NewSigningKey {
            kid: &kid,
            algorithm: ALGORITHM_EDDSA,
            private_key_encrypted: &sealed,
            public_jwk,
        })
        .execute(conn)
        .await?;
    Ok(kid)
}

async fn load_ring(conn: &mut DbConn, master: &MasterKey) -> Result<KeyRing, TokenError> {
    let rows: Vec<SigningKeyRow> = signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::retired_at.gt(Utc::now())),
        )
        .order(signing_keys::created_at.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)
        .await?;
    let active = rows
        .iter()
        .find(|row| row.retired_at.is_none() && row.algorithm == ALGORITHM_EDDSA)
        .ok_or(TokenError::NoActiveKey)?;
    let seed = master.open(&active.private_key_encrypted, active.kid.as_bytes())?;
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| TokenError::InvalidKey(format!("key {} has a bad seed length", active.kid)))?;
    let der = SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .map_err(|e| TokenError::InvalidKey(e.to_string()))?;
    tracing::debug!(kid = %active.kid, created = %active.created_at, "signing key loaded");
    Ok(KeyRing {
        kid: active.kid.clone(),
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        jwks: json!({"keys": rows.iter().map(|row| row.public_jwk.clone()).collect::<Vec<_>>()}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel_async::SimpleAsyncConnection;

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

    fn request(audience: &str) -> TokenRequest {
        TokenRequest {
            audience: audience.into(),
            phone_number: "+447400123456".into(),
            tenant_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            ttl_seconds: 600,
            test: false,
        }
    }

    fn decode(
        token: &str,
        jwks: &Value,
        audience: &str,
    ) -> Result<VerificationClaims, Box<dyn std::error::Error + Send + Sync>> {
        let kid = jsonwebtoken::decode_header(token)?.kid.ok_or("no kid")?;
        let jwk = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
            .ok_or("kid not published")?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&["https://issuer.test"]);
        Ok(jsonwebtoken::decode(token, &decoding_key_from_jwk(jwk)?, &validation)?.claims)
    }

    async fn fresh_database() -> Result<(String, DbConn), Box<dyn std::error::Error + Send + Sync>>
    {
        let name = format!("mc_tok_{}", Uuid::new_v4().simple());
        let mut admin = DbConn::establish(&format!("{SERVER}/postgres")).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let mut conn = DbConn::establish(&format!("{SERVER}/{name}")).await?;
        conn.batch_execute(include_str!(
            "../migrations/2026-11-25-000001_initial/up.sql"
        ))
        .await?;
        Ok((name, conn))
    }

    async fn drop_database(name: &str) -> TestResult {
        let mut admin = DbConn::establish(&format!("{SERVER}/postgres")).await?;
        admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn keys_are_created_once_signed_with_and_rotated_with_overlap() -> TestResult {
        let (name, mut conn) = fresh_database().await?;
        let master = MasterKey::generate();
        let signer =
            TokenSigner::load_or_init(&mut conn, &master, "https://issuer.test".into()).await?;
        let again =
            TokenSigner::load_or_init(&mut conn, &master, "https://issuer.test".into()).await?;
        assert_eq!(signer.active_kid(), again.active_kid());
        assert_eq!(signer.jwks()["keys"].as_array().map(Vec::len), Some(1));
        assert!(
            signer.jwks()["keys"][0].get("d").is_none(),
            "no private part in the JWKS"
        );

        let before = signer.sign(&request("acme"))?;
        let claims = decode(&before.token, &signer.jwks(), "acme")?;
        assert_eq!(
            (claims.sub.as_str(), claims.phone_number_verified),
            ("+447400123456", true)
        );
        assert_eq!(claims.exp - claims.iat, 600);
        assert!(
            decode(&before.token, &signer.jwks(), "globex").is_err(),
            "audience must be checked"
        );
        let mut tampered = before.token.clone();
        tampered.insert(tampered.len() / 2, 'A');
        assert!(decode(&tampered, &signer.jwks(), "acme").is_err());

        let old_kid = signer.active_kid();
        let new_kid = rotate(&mut conn, &master, chrono::Duration::hours(1)).await?;
        signer.reload(&mut conn, &master).await?;
        assert_eq!(signer.active_kid(), new_kid);
        assert_eq!(signer.jwks()["keys"].as_array().map(Vec::len), Some(2));
        decode(&before.token, &signer.jwks(), "acme")?;
        let after = signer.sign(&request("acme"))?;
        assert_eq!(
            jsonwebtoken::decode_header(&after.token)?.kid,
            Some(new_kid.clone())
        );

        rotate(&mut conn, &master, chrono::Duration::zero()).await?;
        signer.reload(&mut conn, &master).await?;
        let published: Vec<_> = signer.jwks()["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            published.contains(&old_kid),
            "the first key is still inside its hour of overlap"
        );
        assert!(
            !published.contains(&new_kid),
            "a zero overlap unpublishes at once"
        );
        assert!(decode(&after.token, &signer.jwks(), "acme").is_err());

        // Keys sealed with another master key cannot be used.
        assert!(
            TokenSigner::load_or_init(&mut conn, &MasterKey::generate(), "x".into())
                .await
                .is_err()
        );
        drop(conn);
        drop_database(&name).await
    }
}
