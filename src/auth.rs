//! Tenant authentication by API key: `pk_…` (publishable, for mobile apps) and `sk_…` (secret,
//! for the tenant's backend and admins). Only SHA-256 hashes of keys are stored.

use uuid::Uuid;

use crate::crypto::{ct_eq, random_token, sha256};
use crate::db::api_keys::{self, ApiKey, NewApiKey};
use crate::db::tenants::Tenant;
use crate::db::{DbConn, is_unique_violation};
use crate::error::{AppError, AppResult};

/// Longest string accepted as an API key; longer input is refused before hashing.
const MAX_KEY_LEN: usize = 128;
/// Characters of a key shown to admins to tell keys apart.
const VISIBLE_PREFIX_LEN: usize = 12;

/// The two kinds of API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Embedded in mobile apps: may request and verify calls, nothing else.
    Publishable,
    /// Kept on the tenant's servers: may also administer the tenant.
    Secret,
}

impl KeyKind {
    /// Stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Publishable => "PUBLISHABLE",
            Self::Secret => "SECRET",
        }
    }

    /// The prefix every key of this kind starts with.
    pub const fn key_prefix(self) -> &'static str {
        match self {
            Self::Publishable => "pk_",
            Self::Secret => "sk_",
        }
    }

    fn of_key(key: &str) -> Option<Self> {
        if key.starts_with("pk_") {
            Some(Self::Publishable)
        } else if key.starts_with("sk_") {
            Some(Self::Secret)
        } else {
            None
        }
    }
}

/// Who is calling: an active tenant and the kind of key it used.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Tenant,
    pub key_id: Uuid,
    pub key_kind: KeyKind,
}

/// Resolves a presented key to its tenant, refusing unknown, revoked and suspended ones.
pub async fn authenticate(conn: &mut DbConn, presented: &str) -> AppResult<Principal> {
    let presented = presented.trim();
    let Some(kind) = KeyKind::of_key(presented) else {
        return Err(AppError::Unauthenticated);
    };
    if presented.len() > MAX_KEY_LEN {
        return Err(AppError::Unauthenticated);
    }
    let hash = sha256(presented.as_bytes());
    let Some((key, tenant)) = api_keys::find_by_hash(conn, &hash).await? else {
        return Err(AppError::Unauthenticated);
    };
    // The index lookup already matched; the constant-time compare guards against any future
    // lookup that is not an exact hash match.
    if !ct_eq(&key.key_hash, &hash) || key.kind != kind.as_str() {
        return Err(AppError::Unauthenticated);
    }
    if key.revoked_at.is_some() {
        return Err(AppError::ApiKeyRevoked);
    }
    if !tenant.is_active() {
        return Err(AppError::TenantSuspended);
    }
    api_keys::touch_last_used(conn, key.id).await?;
    Ok(Principal {
        tenant,
        key_id: key.id,
        key_kind: kind,
    })
}

/// A freshly created key: the row and the key itself, which is shown once and never stored.
#[derive(Debug)]
pub struct CreatedKey {
    pub row: ApiKey,
    pub key: String,
}

/// Creates a key of `kind` for the tenant.
pub async fn create_key(
    conn: &mut DbConn,
    tenant_id: Uuid,
    kind: KeyKind,
    label: &str,
) -> AppResult<CreatedKey> {
    if label.chars().count() > 200 {
        return Err(AppError::InvalidInput(
            "label must be at most 200 characters".into(),
        ));
    }
    let key = random_token(kind.key_prefix(), 32);
    let prefix: String = key.chars().take(VISIBLE_PREFIX_LEN).collect();
    let hash = sha256(key.as_bytes());
    let row = api_keys::insert(
        conn,
        &NewApiKey {
            id: Uuid::now_v7(),
            tenant_id,
            kind: kind.as_str(),
            prefix: &prefix,
            key_hash: &hash,
            label,
        },
    )
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            AppError::Conflict("key collision; try again".into())
        } else {
            err.into()
        }
    })?;
    Ok(CreatedKey { row, key })
}
