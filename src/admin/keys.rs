//! The tenant's API keys: created (the key is shown once), listed by their visible prefix,
//! revoked.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::validate_label;
use crate::auth::{self, CreatedKey, KeyKind};
use crate::db::DbConn;
use crate::db::api_keys::ApiKey;
use crate::db::schema::api_keys;
use crate::error::{AppError, AppResult};

/// Most keys (revoked ones included) a tenant may hold.
pub const MAX_KEYS: i64 = 100;

/// The tenant's keys, oldest first; with `prefix`, those whose visible prefix starts with it.
pub async fn list(
    conn: &mut DbConn,
    tenant_id: Uuid,
    prefix: Option<&str>,
) -> AppResult<Vec<ApiKey>> {
    let mut query = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(prefix) = prefix.map(str::trim).filter(|p| !p.is_empty()) {
        if prefix.len() > 64
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(AppError::InvalidInput(
                "prefix is letters, digits, _ and -".into(),
            ));
        }
        // `_` is a wildcard in LIKE: match it literally.
        let pattern = format!("{}%", prefix.replace('_', "\\_"));
        query = query.filter(api_keys::prefix.like(pattern).escape('\\'));
    }
    Ok(query
        .order((api_keys::created_at.asc(), api_keys::id.asc()))
        .select(ApiKey::as_select())
        .load(conn)
        .await?)
}

/// Creates a key; the returned key is the only time it is ever seen.
pub async fn create(
    conn: &mut DbConn,
    tenant_id: Uuid,
    kind: KeyKind,
    label: &str,
) -> AppResult<CreatedKey> {
    let label = validate_label(label)?;
    let held: i64 = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
        .await?;
    if held >= MAX_KEYS {
        return Err(AppError::Conflict(format!(
            "a tenant holds at most {MAX_KEYS} keys"
        )));
    }
    auth::create_key(conn, tenant_id, kind, label).await
}

/// Revokes one of the tenant's keys; revoking a revoked key changes nothing.
pub async fn revoke(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> AppResult<ApiKey> {
    let target = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .filter(api_keys::id.eq(id));
    let revoked = diesel::update(target.filter(api_keys::revoked_at.is_null()))
        .set(api_keys::revoked_at.eq(diesel::dsl::now))
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match revoked {
        Some(key) => Ok(key),
        None => target
            .select(ApiKey::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("API key")),
    }
}
