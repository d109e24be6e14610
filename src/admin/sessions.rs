//! The tenant's sessions and audit log, newest first, paged by keyset cursors: a page never
//! shifts when sessions are created while an admin pages through.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::DbConn;
use crate::db::audit_events::{self, AuditEvent};
use crate::db::schema::{audit_events as audit_table, verification_sessions as vs};
use crate::db::sessions::SessionRow;
use crate::error::{AppError, AppResult};
use crate::verification::phone;
use crate::verification::state::SessionStatus;

/// Default and largest page.
pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;

/// A position in a newest-first listing: the last row seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// Opaque to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    pub fn decode(text: &str) -> AppResult<Self> {
        let invalid = || AppError::InvalidInput("invalid cursor".into());
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?,
            id: Uuid::parse_str(id).map_err(|_| invalid())?,
        })
    }
}

/// A page size from the client's `first`.
pub fn page_size(first: Option<i32>) -> AppResult<i64> {
    match first {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&i64::from(n)) => Ok(i64::from(n)),
        Some(_) => Err(AppError::InvalidInput(format!(
            "first must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub statuses: Vec<SessionStatus>,
    /// Any format `requestCall` accepts; matched on its E.164 form.
    pub phone_number: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// One page and whether more follow.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

pub fn split_page<T>(mut rows: Vec<T>, size: i64) -> Page<T> {
    let size = usize::try_from(size).unwrap_or(0);
    let has_next_page = rows.len() > size;
    rows.truncate(size);
    Page {
        items: rows,
        has_next_page,
    }
}

/// A page of the tenant's sessions, newest first.
pub async fn list(
    conn: &mut DbConn,
    tenant_id: Uuid,
    filter: &SessionFilter,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<SessionRow>> {
    let size = page_size(first)?;
    let after = after.map(Cursor::decode).transpose()?;
    let phone = filter
        .phone_number
        .as_deref()
        .map(|input| {
            phone::parse_destination(input)
                .map(|d| d.e164)
                .map_err(AppError::from)
        })
        .transpose()?;
    let mut query = vs::table
        .filter(vs::tenant_id.eq(tenant_id))
        .select(SessionRow::as_select())
        .into_boxed();
    if !filter.statuses.is_empty() {
        let names: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(vs::status.eq_any(names));
    }
    if let Some(phone) = phone {
        query = query.filter(vs::phone_number.eq(phone));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(vs::created_at.ge(from));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(vs::created_at.lt(before));
    }
    if let Some(cursor) = after {
        query = query.filter(
            vs::created_at.lt(cursor.created_at).or(vs::created_at
                .eq(cursor.created_at)
                .and(vs::id.lt(cursor.id))),
        );
    }
    let rows = query
        .order((vs::created_at.desc(), vs::id.desc()))
        .limit(size + 1)
        .load(conn)
        .await?;
    Ok(split_page(rows, size))
}

/// One of the tenant's sessions with its audit trail, oldest event first.
pub async fn detail(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<(SessionRow, Vec<AuditEvent>)> {
    let row = vs::table
        .filter(vs::tenant_id.eq(tenant_id))
        .filter(vs::id.eq(id))
        .select(SessionRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("session"))?;
    let trail = audit_events::for_session(conn, tenant_id, id).await?;
    Ok((row, trail))
}

/// A page of the tenant's audit log, newest first, optionally of one kind or one session.
pub async fn audit_log(
    conn: &mut DbConn,
    tenant_id: Uuid,
    kind: Option<&str>,
    session_id: Option<Uuid>,
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<Page<AuditEvent>> {
    let size = page_size(first)?;
    let after = after.map(Cursor::decode).transpose()?;
    let mut query = audit_table::table
        .filter(audit_table::tenant_id.eq(tenant_id))
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(kind) = kind {
        query = query.filter(audit_table::kind.eq(kind.to_owned()));
    }
    if let Some(session_id) = session_id {
        query = query.filter(audit_table::session_id.eq(session_id));
    }
    if let Some(cursor) = after {
        query = query.filter(
            audit_table::created_at
                .lt(cursor.created_at)
                .or(audit_table::created_at
                    .eq(cursor.created_at)
                    .and(audit_table::id.lt(cursor.id))),
        );
    }
    let rows = query
        .order((audit_table::created_at.desc(), audit_table::id.desc()))
        .limit(size + 1)
        .load(conn)
        .await?;
    Ok(split_page(rows, size))
}
