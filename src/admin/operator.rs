//! The operator's powers over tenants: list, suspend, reactivate (creation is in `tenancy`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::DbConn;
use crate::db::schema::tenants;
use crate::db::tenants::{self as tenant_rows, STATUS_ACTIVE, STATUS_SUSPENDED, Tenant};
use crate::error::{AppError, AppResult};

/// Every tenant, oldest first.
pub async fn list(conn: &mut DbConn) -> AppResult<Vec<Tenant>> {
    Ok(tenants::table
        .order((tenants::created_at.asc(), tenants::id.asc()))
        .select(Tenant::as_select())
        .load(conn)
        .await?)
}

/// Suspends a tenant: every one of its keys is refused from the next request on.
pub async fn suspend(conn: &mut DbConn, id: Uuid) -> AppResult<Tenant> {
    tenant_rows::set_status(conn, id, STATUS_SUSPENDED)
        .await?
        .ok_or(AppError::NotFound("tenant"))
}

/// Lets a suspended tenant in again.
pub async fn reactivate(conn: &mut DbConn, id: Uuid) -> AppResult<Tenant> {
    tenant_rows::set_status(conn, id, STATUS_ACTIVE)
        .await?
        .ok_or(AppError::NotFound("tenant"))
}
