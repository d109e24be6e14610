//! Deliveries as a tenant's admin sees them: newest first, filtered, and replayable.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::admin::sessions::{Cursor, Page, page_size, split_page};
use crate::db::DbConn;
use crate::db::schema::webhook_deliveries as wd;
use crate::db::webhooks::{self, DeliveryRow};
use crate::error::{AppError, AppResult};

/// Which deliveries to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// `PENDING`, `DELIVERED` or `FAILED`.
    pub status: Option<&'static str>,
    pub event_type: Option<String>,
}

/// A page of the tenant's deliveries, newest first.
pub async fn list(
    conn: &mut DbConn,
    tenant_id: Uuid,
    filter: &DeliveryFilter,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<DeliveryRow>> {
    let size = page_size(first)?;
    let after = after.map(Cursor::decode).transpose()?;
    let mut query = wd::table
        .filter(wd::tenant_id.eq(tenant_id))
        .select(DeliveryRow::as_select())
        .into_boxed();
    if let Some(endpoint_id) = filter.endpoint_id {
        query = query.filter(wd::endpoint_id.eq(endpoint_id));
    }
    if let Some(session_id) = filter.session_id {
        query = query.filter(wd::session_id.eq(session_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(wd::status.eq(status));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(wd::event_type.eq(event_type.clone()));
    }
    if let Some(cursor) = after {
        query = query.filter(
            wd::created_at.lt(cursor.created_at).or(wd::created_at
                .eq(cursor.created_at)
                .and(wd::id.lt(cursor.id))),
        );
    }
    let rows = query
        .order((wd::created_at.desc(), wd::id.desc()))
        .limit(size + 1)
        .load(conn)
        .await?;
    Ok(split_page(rows, size))
}

pub async fn find(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> AppResult<DeliveryRow> {
    webhooks::delivery(conn, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound("webhook delivery"))
}

/// Sends a delivery again, as a new delivery of the same message, due now.
pub async fn replay(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> AppResult<DeliveryRow> {
    let original = find(conn, tenant_id, id).await?;
    Ok(webhooks::replay(conn, &original).await?)
}
