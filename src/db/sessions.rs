//! `verification_sessions`: one row per requested verification.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::audit_events::NewAuditEvent;
use super::schema::verification_sessions as vs;

diesel::define_sql_function! {
    /// The first of the two that is not null.
    fn coalesce<T: diesel::sql_types::SingleValue>(x: diesel::sql_types::Nullable<T>, y: T) -> T;
}

diesel::define_sql_function! {
    fn hashtextextended(text: diesel::sql_types::Text, seed: diesel::sql_types::BigInt) -> diesel::sql_types::BigInt;
}

diesel::define_sql_function! {
    /// Returns `void`; only ever executed, never loaded.
    fn pg_advisory_xact_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// A session row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = vs)]
pub struct SessionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub token_hash: Vec<u8>,
    pub phone_number: String,
    pub country: String,
    pub number_type: String,
    pub pool_number_id: Option<Uuid>,
    pub expected_caller_id: String,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub app_signature: Option<String>,
    pub gateway: String,
    pub gateway_call_id: Option<String>,
    pub call_status: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    /// A tenant test number: no call was placed.
    pub is_test: bool,
    /// What the app passed in `requestCall`'s `metadata`.
    pub metadata: Option<serde_json::Value>,
    /// When its phone number and client address were purged after the retention period.
    pub purged_at: Option<DateTime<Utc>>,
}

/// A session to create.
#[derive(Debug, Insertable)]
#[diesel(table_name = vs)]
pub struct NewSession<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub token_hash: &'a [u8],
    pub phone_number: &'a str,
    pub country: &'a str,
    pub number_type: &'a str,
    pub pool_number_id: Option<Uuid>,
    pub expected_caller_id: &'a str,
    pub status: &'a str,
    pub max_attempts: i32,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub app_signature: Option<&'a str>,
    pub gateway: &'a str,
    pub expires_at: DateTime<Utc>,
    pub is_test: bool,
    pub metadata: Option<&'a serde_json::Value>,
}

/// Stores a new session.
pub async fn insert(conn: &mut DbConn, new: &NewSession<'_>) -> QueryResult<SessionRow> {
    diesel::insert_into(vs::table)
        .values(new)
        .returning(SessionRow::as_returning())
        .get_result(conn)
        .await
}

/// The tenant's session, or None (another tenant's session is indistinguishable from none).
pub async fn find(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> QueryResult<Option<SessionRow>> {
    vs::table
        .filter(vs::tenant_id.eq(tenant_id))
        .filter(vs::id.eq(id))
        .select(SessionRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant a session belongs to, whoever it is (for gateway callbacks, which name only the
/// session).
pub async fn tenant_of(conn: &mut DbConn, id: Uuid) -> QueryResult<Option<Uuid>> {
    vs::table
        .find(id)
        .select(vs::tenant_id)
        .first(conn)
        .await
        .optional()
}

/// Like [`find`], locking the row until the transaction ends so concurrent verifies serialize.
pub async fn find_for_update(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<SessionRow>> {
    vs::table
        .filter(vs::tenant_id.eq(tenant_id))
        .filter(vs::id.eq(id))
        .select(SessionRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Moves a session to `to` only from one of `from`; None when it was in another state.
pub async fn transition(
    conn: &mut DbConn,
    id: Uuid,
    from: &[&str],
    to: &str,
) -> QueryResult<Option<SessionRow>> {
    diesel::update(vs::table.find(id).filter(vs::status.eq_any(from)))
        .set((vs::status.eq(to), vs::updated_at.eq(diesel::dsl::now)))
        .returning(SessionRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Records the gateway's call id, moves the session to `to` when still in one of `from`, and
/// writes `audit` with it: one statement, one commit.
pub async fn record_call_placed(
    conn: &mut DbConn,
    id: Uuid,
    call_id: &str,
    from: &[&str],
    to: &str,
    audit: &NewAuditEvent<'_>,
) -> QueryResult<Option<SessionRow>> {
    use diesel::sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid};
    diesel::sql_query(
        "WITH placed AS ( \
           UPDATE verification_sessions SET gateway_call_id = $2, updated_at = now(), \
             status = CASE WHEN status = ANY($3) THEN $4 ELSE status END \
           WHERE id = $1 RETURNING *), \
         audited AS ( \
           INSERT INTO audit_events (id, tenant_id, session_id, kind, ip, detail) \
           SELECT $5, tenant_id, id, $6, $7, $8 FROM placed) \
         SELECT * FROM placed",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(call_id)
    .bind::<Array<Text>, _>(from)
    .bind::<Text, _>(to)
    .bind::<SqlUuid, _>(audit.id)
    .bind::<Text, _>(audit.kind)
    .bind::<Nullable<Text>, _>(audit.ip)
    .bind::<Jsonb, _>(&audit.detail)
    .get_result(conn)
    .await
    .optional()
}

/// Records a call-placement failure and moves the session to `to` when still in one of `from`.
pub async fn record_call_failed(
    conn: &mut DbConn,
    id: Uuid,
    reason: &str,
    from: &[&str],
    to: &str,
) -> QueryResult<Option<SessionRow>> {
    diesel::update(vs::table.find(id).filter(vs::status.eq_any(from)))
        .set((
            vs::status.eq(to),
            vs::failure_reason.eq(reason),
            vs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(SessionRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Locks a session by id alone, for gateway reports (which carry no tenant).
pub async fn lock_by_id(conn: &mut DbConn, id: Uuid) -> QueryResult<Option<SessionRow>> {
    vs::table
        .find(id)
        .select(SessionRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Records call progress on a locked row: the raw call status, the call id when not yet known,
/// and the new session status when the state machine allowed a move.
pub async fn record_call_progress(
    conn: &mut DbConn,
    id: Uuid,
    call_id: &str,
    call_status: &str,
    new_status: Option<&str>,
) -> QueryResult<SessionRow> {
    diesel::update(vs::table.find(id))
        .set((
            vs::call_status.eq(Some(call_status)),
            vs::gateway_call_id.eq(coalesce(vs::gateway_call_id, call_id).nullable()),
            vs::status.eq(coalesce(new_status, vs::status)),
            vs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(SessionRow::as_returning())
        .get_result(conn)
        .await
}

/// Counts an attempt on a locked row; returns the new attempt count.
pub async fn add_attempt(conn: &mut DbConn, id: Uuid) -> QueryResult<i32> {
    diesel::update(vs::table.find(id))
        .set((
            vs::attempts.eq(vs::attempts + 1),
            vs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(vs::attempts)
        .get_result(conn)
        .await
}

/// Counts the matching attempt and marks a locked row verified, in one statement.
pub async fn mark_verified(conn: &mut DbConn, id: Uuid) -> QueryResult<SessionRow> {
    diesel::update(vs::table.find(id))
        .set((
            vs::attempts.eq(vs::attempts + 1),
            vs::status.eq(crate::verification::SessionStatus::Verified.as_str()),
            vs::verified_at.eq(diesel::dsl::now),
            vs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(SessionRow::as_returning())
        .get_result(conn)
        .await
}

/// Moves up to `limit` overdue sessions in one of `from` to `to`, skipping rows another
/// instance holds, and returns them.
pub async fn expire_overdue(
    conn: &mut DbConn,
    from: &[&str],
    to: &str,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    use diesel::sql_types::{Array, BigInt, Text};
    diesel::sql_query(
        "UPDATE verification_sessions SET status = $2, updated_at = now() \
         WHERE id IN (SELECT id FROM verification_sessions \
                      WHERE status = ANY($1) AND expires_at <= now() \
                      ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<Array<Text>, _>(from)
    .bind::<Text, _>(to)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Wrong caller IDs given for a phone number across its recent sessions.
#[derive(Debug, Clone, Copy)]
pub struct PhoneFailures {
    pub failed_attempts: i64,
    /// When the oldest counted session was created; its attempts stop counting `window` later.
    pub oldest: Option<DateTime<Utc>>,
}

/// Counts the wrong caller IDs for a phone number in sessions created within `window_seconds`
/// (every attempt of a session that did not verify was wrong).
pub async fn recent_failures(
    conn: &mut DbConn,
    tenant_id: Uuid,
    phone_number: &str,
    window_seconds: f64,
) -> QueryResult<PhoneFailures> {
    use diesel::dsl::{min, sum};
    let since = Utc::now() - chrono::Duration::milliseconds((window_seconds * 1000.0) as i64);
    let (failed, oldest): (Option<i64>, Option<DateTime<Utc>>) = vs::table
        .filter(vs::tenant_id.eq(tenant_id))
        .filter(vs::phone_number.eq(phone_number))
        .filter(vs::created_at.gt(since))
        .filter(vs::attempts.gt(0))
        .filter(vs::status.ne(crate::verification::SessionStatus::Verified.as_str()))
        .select((sum(vs::attempts), min(vs::created_at)))
        .get_result(conn)
        .await?;
    Ok(PhoneFailures {
        failed_attempts: failed.unwrap_or(0),
        oldest,
    })
}

/// Serializes the verifies of one phone number until the transaction ends, so attempts
/// across its sessions are counted exactly.
pub async fn lock_phone(conn: &mut DbConn, tenant_id: Uuid, phone_number: &str) -> QueryResult<()> {
    diesel::select(pg_advisory_xact_lock(hashtextextended(
        format!("verify:{tenant_id}:{phone_number}"),
        0,
    )))
    .execute(conn)
    .await?;
    Ok(())
}
