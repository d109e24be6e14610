//! Who may ask for calls: the app signatures and the countries a tenant allows.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::validate_label;
use crate::db::DbConn;
use crate::db::allowed_countries;
use crate::db::app_signatures::AppSignature;
use crate::db::schema::{allowed_countries as countries_table, app_signatures};
use crate::error::{AppError, AppResult};
use crate::tenancy;

/// The tenant's app signatures, oldest first.
pub async fn signatures(conn: &mut DbConn, tenant_id: Uuid) -> AppResult<Vec<AppSignature>> {
    Ok(app_signatures::table
        .filter(app_signatures::tenant_id.eq(tenant_id))
        .order((app_signatures::created_at.asc(), app_signatures::id.asc()))
        .select(AppSignature::as_select())
        .load(conn)
        .await?)
}

/// Adds an app signature.
pub async fn add_signature(
    conn: &mut DbConn,
    tenant_id: Uuid,
    platform: &str,
    signature: &str,
    label: &str,
) -> AppResult<AppSignature> {
    let label = validate_label(label)?;
    tenancy::add_app_signature(conn, tenant_id, platform, signature, label).await
}

/// Removes one of the tenant's app signatures.
pub async fn remove_signature(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<AppSignature> {
    diesel::delete(
        app_signatures::table
            .filter(app_signatures::tenant_id.eq(tenant_id))
            .filter(app_signatures::id.eq(id)),
    )
    .returning(AppSignature::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(AppError::NotFound("app signature"))
}

/// The tenant's allowed countries (empty: every country).
pub async fn countries(conn: &mut DbConn, tenant_id: Uuid) -> AppResult<Vec<String>> {
    Ok(allowed_countries::list(conn, tenant_id).await?)
}

/// Replaces the whole list; an empty list allows every country again.
pub async fn set_countries(
    conn: &mut DbConn,
    tenant_id: Uuid,
    codes: &[String],
) -> AppResult<Vec<String>> {
    let codes = tenancy::parse_country_codes(codes)?;
    conn.transaction(async |conn| {
        diesel::delete(countries_table::table.filter(countries_table::tenant_id.eq(tenant_id)))
            .execute(conn)
            .await?;
        if !codes.is_empty() {
            allowed_countries::allow(conn, tenant_id, &codes).await?;
        }
        Ok(allowed_countries::list(conn, tenant_id).await?)
    })
    .await
}

/// Adds countries to the list.
pub async fn allow_countries(
    conn: &mut DbConn,
    tenant_id: Uuid,
    codes: &[String],
) -> AppResult<Vec<String>> {
    tenancy::allow_countries(conn, tenant_id, codes).await
}

/// Takes countries off the list (when the list becomes empty, every country is allowed).
pub async fn disallow_countries(
    conn: &mut DbConn,
    tenant_id: Uuid,
    codes: &[String],
) -> AppResult<Vec<String>> {
    let codes = tenancy::parse_country_codes(codes)?;
    if codes.is_empty() {
        return Err(AppError::InvalidInput("name at least one country".into()));
    }
    diesel::delete(
        countries_table::table
            .filter(countries_table::tenant_id.eq(tenant_id))
            .filter(countries_table::country_code.eq_any(&codes)),
    )
    .execute(conn)
    .await?;
    Ok(allowed_countries::list(conn, tenant_id).await?)
}
