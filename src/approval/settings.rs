//! The tenant's approval-hook settings: URL, timeout, failure policy, and the signing secret
//! (sealed with the master key, shown once when created).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::crypto::MasterKey;
use crate::db::DbConn;
use crate::db::schema::tenants;
use crate::db::tenants::Tenant;
use crate::error::{AppError, AppResult};
use crate::webhook_signing;

/// What the admin sets.
#[derive(Debug, Clone)]
pub struct HookSettings {
    pub url: String,
    pub timeout_ms: i32,
    /// `ALLOW` or `DENY`.
    pub on_failure: &'static str,
    /// A new secret even when one exists.
    pub rotate_secret: bool,
}

fn aad(tenant_id: Uuid) -> Vec<u8> {
    [tenant_id.as_bytes().as_slice(), b"approval-hook"].concat()
}

/// Sets the hook; the secret, when one is created, is returned this once.
pub async fn set(
    conn: &mut DbConn,
    master: &MasterKey,
    tenant: &Tenant,
    settings: &HookSettings,
) -> AppResult<(Tenant, Option<String>)> {
    let url = crate::admin::validate_url(&settings.url)?;
    super::super::admin::in_range("timeoutMs", settings.timeout_ms, 100..=10_000)?;
    let (new_secret, sealed) = if settings.rotate_secret || tenant.approval_secret_sealed.is_none()
    {
        let (secret, sealed) = webhook_signing::new_sealed_secret(master, &aad(tenant.id))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        (Some(secret.to_string()), Some(sealed))
    } else {
        (None, tenant.approval_secret_sealed.clone())
    };
    let row = diesel::update(tenants::table.find(tenant.id))
        .set((
            tenants::approval_url.eq(Some(url)),
            tenants::approval_secret_sealed.eq(sealed),
            tenants::approval_timeout_ms.eq(settings.timeout_ms),
            tenants::approval_on_failure.eq(settings.on_failure),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("tenant"))?;
    Ok((row, new_secret))
}

/// Removes the hook and its secret.
pub async fn remove(conn: &mut DbConn, tenant_id: Uuid) -> AppResult<Tenant> {
    diesel::update(tenants::table.find(tenant_id))
        .set((
            tenants::approval_url.eq(None::<String>),
            tenants::approval_secret_sealed.eq(None::<Vec<u8>>),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("tenant"))
}

/// The hook's signing key, when it has a secret.
pub fn open_key(
    master: &MasterKey,
    tenant: &Tenant,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, String> {
    tenant
        .approval_secret_sealed
        .as_deref()
        .map(|sealed| webhook_signing::open_sealed_key(master, sealed, &aad(tenant.id), "approval"))
        .transpose()
}
