//! The outbox side of delivery: taking due deliveries under a lease, and recording each try.
//! A taken delivery's `next_attempt_at` moves to the lease's end, so when its worker dies the
//! delivery simply falls due again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::DbConn;
use crate::db::schema::webhook_deliveries as wd;

/// A delivery taken for sending.
#[derive(Debug, Clone, QueryableByName)]
pub struct Taken {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub endpoint_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    /// Tries so far, this one included.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub session_id: Option<Uuid>,
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Takes up to `limit` due deliveries to enabled endpoints, leasing them for `lease`. A
/// delivery waits while an earlier one of the same session to the same endpoint is pending,
/// so each receiver hears a session's events in order.
pub async fn take_due(conn: &mut DbConn, limit: i64, lease: Duration) -> QueryResult<Vec<Taken>> {
    diesel::sql_query(
        "WITH due AS ( \
           SELECT d.id FROM webhook_deliveries d \
           JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled \
           WHERE d.status = 'PENDING' AND d.next_attempt_at <= now() \
             AND NOT EXISTS ( \
               SELECT 1 FROM webhook_deliveries p \
               WHERE p.status = 'PENDING' AND p.endpoint_id = d.endpoint_id \
                 AND p.session_id = d.session_id AND p.seq < d.seq) \
           ORDER BY d.next_attempt_at, d.seq LIMIT $1 FOR UPDATE OF d SKIP LOCKED) \
         UPDATE webhook_deliveries d SET \
           attempts = d.attempts + 1, last_attempt_at = now(), \
           next_attempt_at = now() + make_interval(secs => $2) \
         FROM due WHERE d.id = due.id \
         RETURNING d.id, d.event_id, d.endpoint_id, d.event_type, d.payload, d.attempts, \
           d.created_at, d.session_id",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Double, _>(seconds(lease))
    .load(conn)
    .await
}

/// The receiver took it.
pub async fn delivered(conn: &mut DbConn, id: Uuid, status_code: u16) -> QueryResult<()> {
    diesel::update(wd::table.find(id))
        .set((
            wd::status.eq("DELIVERED"),
            wd::delivered_at.eq(diesel::dsl::now),
            wd::last_status_code.eq(Some(i32::from(status_code))),
            wd::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A try failed: the next one is due after `retry_in`, or, when that would pass `give_up_at`,
/// the delivery is given up.
pub async fn attempt_failed(
    conn: &mut DbConn,
    id: Uuid,
    status_code: Option<u16>,
    error: &str,
    retry_in: Duration,
    give_up_at: DateTime<Utc>,
) -> QueryResult<bool> {
    // Capped so the sum cannot overflow; no schedule waits anywhere near a year.
    let wait = chrono::Duration::from_std(retry_in.min(Duration::from_secs(365 * 86_400)))
        .unwrap_or_default();
    let next = Utc::now() + wait;
    let give_up = next > give_up_at;
    let status_code = status_code.map(i32::from);
    let error: String = error.chars().take(500).collect();
    diesel::update(wd::table.find(id))
        .set((
            wd::status.eq(if give_up { "FAILED" } else { "PENDING" }),
            wd::next_attempt_at.eq(next),
            wd::last_status_code.eq(status_code),
            wd::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .await?;
    Ok(give_up)
}
