//! Housekeeping, from `missedcall cleanup` or on a schedule inside `serve`: overdue sessions are
//! expired (the sweeper's job, also done here), phone numbers and client addresses are purged
//! after each tenant's retention period, and audit rows and finished webhook deliveries older
//! than it are pruned. Several instances may run it at once: one holds the advisory lock, the
//! others skip the round, and rows are taken in batches with `SKIP LOCKED`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::RunQueryDsl;

use crate::db::{DbConn, sessions};
use crate::verification::SessionStatus;

/// Held while a cleanup runs, so instances take turns.
const CLEANUP_LOCK: i64 = 0x6d69_7373_6564_0002;
/// Rows touched per statement.
const BATCH: i64 = 1000;

/// What one cleanup did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// False when another instance was already cleaning up.
    pub ran: bool,
    pub sessions_expired: u64,
    pub sessions_purged: u64,
    pub audit_events_pruned: u64,
    pub webhook_deliveries_pruned: u64,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

#[derive(QueryableByName)]
struct Touched {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs one batch statement until it touches nothing.
async fn in_batches(conn: &mut DbConn, statement: &str) -> diesel::QueryResult<u64> {
    let mut total = 0u64;
    loop {
        let touched: Touched = diesel::sql_query(statement)
            .bind::<BigInt, _>(BATCH)
            .get_result(conn)
            .await?;
        total += u64::try_from(touched.n).unwrap_or(0);
        if touched.n < BATCH {
            return Ok(total);
        }
    }
}

/// Purges and prunes what is past each tenant's retention period. `conn` must see every
/// tenant (the owner, or the system scope).
pub async fn cleanup(conn: &mut DbConn) -> diesel::QueryResult<CleanupReport> {
    let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(CLEANUP_LOCK)
        .get_result(conn)
        .await?;
    if !locked.locked {
        return Ok(CleanupReport::default());
    }
    let result = run(conn).await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(CLEANUP_LOCK)
        .execute(conn)
        .await?;
    result
}

async fn run(conn: &mut DbConn) -> diesel::QueryResult<CleanupReport> {
    let expired = SessionStatus::Expired;
    let mut sessions_expired = 0u64;
    loop {
        let batch =
            sessions::expire_overdue(conn, &expired.source_names(), expired.as_str(), BATCH)
                .await?
                .len();
        sessions_expired += u64::try_from(batch).unwrap_or(0);
        if i64::try_from(batch).unwrap_or(0) < BATCH {
            break;
        }
    }
    // Phone numbers keep their country code and last two digits, for support and statistics.
    let sessions_purged = in_batches(
        conn,
        "WITH due AS ( \
           SELECT s.id FROM verification_sessions s JOIN tenants t ON t.id = s.tenant_id \
           WHERE s.purged_at IS NULL \
             AND s.created_at < now() - make_interval(days => t.retention_days) \
           ORDER BY s.created_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED), \
         purged AS ( \
           UPDATE verification_sessions s SET \
             phone_number = left(s.phone_number, 5) \
               || repeat('*', greatest(length(s.phone_number) - 7, 0)) || right(s.phone_number, 2), \
             client_ip = NULL, user_agent = NULL, metadata = NULL, purged_at = now() \
           FROM due WHERE s.id = due.id RETURNING 1) \
         SELECT count(*) AS n FROM purged",
    )
    .await?;
    let audit_events_pruned = in_batches(
        conn,
        "WITH due AS ( \
           SELECT a.id FROM audit_events a JOIN tenants t ON t.id = a.tenant_id \
           WHERE a.created_at < now() - make_interval(days => t.retention_days) \
           LIMIT $1 FOR UPDATE OF a SKIP LOCKED), \
         pruned AS (DELETE FROM audit_events a USING due WHERE a.id = due.id RETURNING 1) \
         SELECT count(*) AS n FROM pruned",
    )
    .await?;
    // Finished deliveries only: a pending one is still owed to its receiver.
    let webhook_deliveries_pruned = in_batches(
        conn,
        "WITH due AS ( \
           SELECT d.id FROM webhook_deliveries d JOIN tenants t ON t.id = d.tenant_id \
           WHERE d.status <> 'PENDING' \
             AND d.created_at < now() - make_interval(days => t.retention_days) \
           LIMIT $1 FOR UPDATE OF d SKIP LOCKED), \
         pruned AS (DELETE FROM webhook_deliveries d USING due WHERE d.id = due.id RETURNING 1) \
         SELECT count(*) AS n FROM pruned",
    )
    .await?;
    Ok(CleanupReport {
        ran: true,
        sessions_expired,
        sessions_purged,
        audit_events_pruned,
        webhook_deliveries_pruned,
    })
}
