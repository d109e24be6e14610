//! `webhook_endpoints` and `webhook_deliveries` (the outbox the triggers write).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::{webhook_deliveries, webhook_endpoints};

/// A registered endpoint.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub secret_sealed: Vec<u8>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [String],
    pub secret_sealed: &'a [u8],
}

/// What an update changes; `None` keeps the stored value.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret_sealed: Option<Vec<u8>>,
    pub enabled: Option<bool>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub seq: i64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub session_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_endpoint(conn: &mut DbConn, new: &NewEndpoint<'_>) -> QueryResult<EndpointRow> {
    diesel::insert_into(webhook_endpoints::table)
        .values(new)
        .returning(EndpointRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn endpoints(conn: &mut DbConn, tenant_id: Uuid) -> QueryResult<Vec<EndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id))
        .order((
            webhook_endpoints::created_at.asc(),
            webhook_endpoints::id.asc(),
        ))
        .select(EndpointRow::as_select())
        .load(conn)
        .await
}

pub async fn endpoint(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<EndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::tenant_id.eq(tenant_id))
        .filter(webhook_endpoints::id.eq(id))
        .select(EndpointRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Endpoints by id, across tenants (the worker's system scope).
pub async fn endpoints_by_id(conn: &mut DbConn, ids: &[Uuid]) -> QueryResult<Vec<EndpointRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::id.eq_any(ids))
        .select(EndpointRow::as_select())
        .load(conn)
        .await
}

pub async fn update_endpoint(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
    changes: &EndpointChanges,
) -> QueryResult<Option<EndpointRow>> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .set(changes)
    .returning(EndpointRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Deletes the endpoint and, with it, its deliveries.
pub async fn delete_endpoint(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<EndpointRow>> {
    diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::tenant_id.eq(tenant_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .returning(EndpointRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

pub async fn delivery(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::tenant_id.eq(tenant_id))
        .filter(webhook_deliveries::id.eq(id))
        .select(DeliveryRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// A copy of a delivery, due now, under the same message id.
pub async fn replay(conn: &mut DbConn, original: &DeliveryRow) -> QueryResult<DeliveryRow> {
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(Uuid::now_v7()),
            webhook_deliveries::event_id.eq(original.event_id),
            webhook_deliveries::tenant_id.eq(original.tenant_id),
            webhook_deliveries::endpoint_id.eq(original.endpoint_id),
            webhook_deliveries::event_type.eq(&original.event_type),
            webhook_deliveries::session_id.eq(original.session_id),
            webhook_deliveries::payload.eq(&original.payload),
        ))
        .returning(DeliveryRow::as_returning())
        .get_result(conn)
        .await
}
