//! `audit_events`: every request and outcome, per tenant.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::audit_events;

/// An audit row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Option<Uuid>,
    pub kind: String,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An event to record.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Option<Uuid>,
    pub kind: &'a str,
    pub ip: Option<&'a str>,
    pub detail: serde_json::Value,
}

impl<'a> NewAuditEvent<'a> {
    /// An event of `kind` for the tenant, with a fresh time-ordered id.
    pub fn new(tenant_id: Uuid, kind: &'a str) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant_id,
            session_id: None,
            kind,
            ip: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The session the event is about.
    pub fn session(mut self, session_id: Uuid) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// The client IP that caused it.
    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }

    /// Structured detail (never secrets or full phone numbers).
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Records one event.
pub async fn record(conn: &mut DbConn, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A session's events, oldest first.
pub async fn for_session(
    conn: &mut DbConn,
    tenant_id: Uuid,
    session_id: Uuid,
) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .filter(audit_events::tenant_id.eq(tenant_id))
        .filter(audit_events::session_id.eq(session_id))
        .order((audit_events::created_at.asc(), audit_events::id.asc()))
        .select(AuditEvent::as_select())
        .load(conn)
        .await
}
