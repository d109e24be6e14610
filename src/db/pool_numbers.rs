//! `pool_numbers`: the caller IDs a tenant rings from, single numbers and ranges.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::pool_numbers;

/// A pool entry.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = pool_numbers)]
pub struct PoolNumber {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub pattern: String,
    pub prefix: String,
    pub random_digits: i32,
    pub country: String,
    pub label: String,
    pub active: bool,
    pub weight: i32,
    pub last_used_at: Option<DateTime<Utc>>,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub call_count: i64,
    pub failure_count: i64,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
}

/// An entry to add.
#[derive(Debug, Insertable)]
#[diesel(table_name = pool_numbers)]
pub struct NewPoolNumber<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub pattern: &'a str,
    pub prefix: &'a str,
    pub random_digits: i32,
    pub country: &'a str,
    pub label: &'a str,
}

/// Adds an entry; the same pattern twice for a tenant is a unique violation.
pub async fn insert(conn: &mut DbConn, new: &NewPoolNumber<'_>) -> QueryResult<PoolNumber> {
    diesel::insert_into(pool_numbers::table)
        .values(new)
        .returning(PoolNumber::as_returning())
        .get_result(conn)
        .await
}

/// Claims the entry to ring from, in one statement so concurrent requests never read-then-write:
/// active and out of cooldown, the destination's country first, then least recently used.
pub async fn claim_next(
    conn: &mut DbConn,
    tenant_id: Uuid,
    destination_country: &str,
) -> QueryResult<Option<PoolNumber>> {
    use pool_numbers as p;
    let candidate = diesel::alias!(pool_numbers as candidate);
    let next = candidate
        .filter(candidate.field(p::tenant_id).eq(tenant_id))
        .filter(candidate.field(p::active).eq(true))
        .filter(
            candidate
                .field(p::cooldown_until)
                .is_null()
                .or(candidate.field(p::cooldown_until).le(diesel::dsl::now)),
        )
        .order((
            candidate
                .field(p::country)
                .eq(destination_country.to_owned())
                .desc(),
            candidate.field(p::last_used_at).asc().nulls_first(),
            candidate.field(p::id).asc(),
        ))
        .select(candidate.field(p::id))
        .limit(1)
        .single_value();
    // Through the query builder, so diesel-async prepares it once per connection.
    diesel::update(p::table)
        .filter(p::id.nullable().eq(next))
        .set((
            p::last_used_at.eq(diesel::dsl::now),
            p::call_count.eq(p::call_count + 1),
        ))
        .returning(PoolNumber::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The tenant's active entries (in or out of cooldown): what the app may see ringing.
pub async fn list_active(conn: &mut DbConn, tenant_id: Uuid) -> QueryResult<Vec<PoolNumber>> {
    pool_numbers::table
        .filter(pool_numbers::tenant_id.eq(tenant_id))
        .filter(pool_numbers::active.eq(true))
        .order(pool_numbers::pattern.asc())
        .select(PoolNumber::as_select())
        .load(conn)
        .await
}

/// Consecutive failures after which an entry rests for [`COOLDOWN_SECONDS`].
pub const COOLDOWN_AFTER: i32 = 3;
/// How long a failing entry rests.
pub const COOLDOWN_SECONDS: f64 = 300.0;
/// Consecutive failures after which an entry is deactivated until an admin looks at it.
pub const DEACTIVATE_AFTER: i32 = 10;

/// An entry's health after a failure.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct FailureOutcome {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub consecutive_failures: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub deactivated_now: bool,
}

/// Counts a failure against the entry: past [`COOLDOWN_AFTER`] in a row it cools down, past
/// [`DEACTIVATE_AFTER`] it is deactivated.
pub async fn record_failure(conn: &mut DbConn, id: Uuid) -> QueryResult<Option<FailureOutcome>> {
    use diesel::sql_types::{Double, Integer};
    diesel::sql_query(
        "UPDATE pool_numbers p SET failure_count = p.failure_count + 1, \
           consecutive_failures = p.consecutive_failures + 1, \
           cooldown_until = CASE WHEN p.consecutive_failures + 1 >= $2 \
             THEN now() + make_interval(secs => $3) ELSE p.cooldown_until END, \
           active = p.active AND p.consecutive_failures + 1 < $4 \
         WHERE p.id = $1 \
         RETURNING p.consecutive_failures, \
           (p.consecutive_failures = $4) AS deactivated_now",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Integer, _>(COOLDOWN_AFTER)
    .bind::<Double, _>(COOLDOWN_SECONDS)
    .bind::<Integer, _>(DEACTIVATE_AFTER)
    .get_result(conn)
    .await
    .optional()
}

/// The tenant's entries, active or not, with their health.
pub async fn list(conn: &mut DbConn, tenant_id: Uuid) -> QueryResult<Vec<PoolNumber>> {
    pool_numbers::table
        .filter(pool_numbers::tenant_id.eq(tenant_id))
        .order(pool_numbers::pattern.asc())
        .select(PoolNumber::as_select())
        .load(conn)
        .await
}

/// Resets the entry's run of failures after a call was placed.
pub async fn record_success(conn: &mut DbConn, id: Uuid) -> QueryResult<usize> {
    diesel::update(
        pool_numbers::table
            .find(id)
            .filter(pool_numbers::consecutive_failures.gt(0)),
    )
    .set(pool_numbers::consecutive_failures.eq(0))
    .execute(conn)
    .await
}

/// Puts a tenant's entry back into service with a clean health record; `None` when the tenant
/// has no such entry.
pub async fn reactivate(
    conn: &mut DbConn,
    tenant_id: Uuid,
    pattern: &str,
) -> QueryResult<Option<PoolNumber>> {
    diesel::update(
        pool_numbers::table
            .filter(pool_numbers::tenant_id.eq(tenant_id))
            .filter(pool_numbers::pattern.eq(pattern)),
    )
    .set((
        pool_numbers::active.eq(true),
        pool_numbers::consecutive_failures.eq(0),
        pool_numbers::cooldown_until.eq(None::<DateTime<Utc>>),
    ))
    .returning(PoolNumber::as_returning())
    .get_result(conn)
    .await
    .optional()
}
