//! A tenant's statistics over a time range, computed in SQL over its sessions (by creation
//! time): totals, conversion, median time to verify, failures by reason, by country, by caller
//! ID, and time buckets with empty buckets kept.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::DbConn;
use crate::error::{AppError, AppResult};

/// Longest range one request may cover.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Most buckets one request may return.
pub const MAX_BUCKETS: i64 = 1000;

/// Bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    fn unit(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Totals {
    #[diesel(sql_type = BigInt)]
    pub requests: i64,
    #[diesel(sql_type = BigInt)]
    pub calls_placed: i64,
    #[diesel(sql_type = BigInt)]
    pub verified: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub median_seconds_to_verify: Option<f64>,
    /// Sessions of test numbers, counted apart and left out of every other figure.
    #[diesel(sql_type = BigInt)]
    pub test_requests: i64,
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ReasonCount {
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Counts for one group (a country or a caller ID).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct GroupCounts {
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = BigInt)]
    pub requests: i64,
    #[diesel(sql_type = BigInt)]
    pub calls_placed: i64,
    #[diesel(sql_type = BigInt)]
    pub verified: i64,
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct BucketCounts {
    #[diesel(sql_type = Timestamptz)]
    pub start: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub requests: i64,
    #[diesel(sql_type = BigInt)]
    pub calls_placed: i64,
    #[diesel(sql_type = BigInt)]
    pub verified: i64,
}

/// Everything the statistics query answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: Totals,
    pub failures_by_reason: Vec<ReasonCount>,
    pub by_country: Vec<GroupCounts>,
    pub by_caller_id: Vec<GroupCounts>,
    pub buckets: Vec<BucketCounts>,
}

impl Statistics {
    /// Verified sessions per requested session; 0 when there were none.
    pub fn conversion_rate(&self) -> f64 {
        if self.totals.requests == 0 {
            0.0
        } else {
            self.totals.verified as f64 / self.totals.requests as f64
        }
    }
}

/// Real sessions in the range: test numbers are left out.
const RANGE: &str = "tenant_id = $1 AND created_at >= $2 AND created_at < $3 AND NOT is_test";

/// Why a session ended without verifying; NULL while it may still verify.
const FAILURE_REASON: &str = "CASE \
      WHEN status = 'LOCKED' THEN 'TOO_MANY_ATTEMPTS' \
      WHEN status IN ('CALL_FAILED', 'EXPIRED') AND gateway_call_id IS NULL \
           AND failure_reason IS NOT NULL THEN 'CALL_NOT_PLACED' \
      WHEN status = 'CALL_FAILED' \
           OR (status = 'EXPIRED' AND call_status IN ('failed', 'canceled')) THEN 'CALL_FAILED' \
      WHEN status = 'EXPIRED' THEN 'EXPIRED' \
    END";

/// The tenant's statistics for `[from, to)`.
pub async fn compute(
    conn: &mut DbConn,
    tenant_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Bucket,
) -> AppResult<Statistics> {
    if to <= from {
        return Err(AppError::InvalidInput("`to` must be after `from`".into()));
    }
    let span = (to - from).num_seconds();
    if span > MAX_RANGE_DAYS * 86_400 {
        return Err(AppError::InvalidInput(format!(
            "a range covers at most {MAX_RANGE_DAYS} days"
        )));
    }
    if span / bucket.seconds() >= MAX_BUCKETS {
        return Err(AppError::InvalidInput(format!(
            "at most {MAX_BUCKETS} buckets; choose a wider bucket"
        )));
    }
    let totals: Totals = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE NOT is_test) AS requests, \
                count(*) FILTER (WHERE NOT is_test AND gateway_call_id IS NOT NULL) AS calls_placed, \
                count(*) FILTER (WHERE NOT is_test AND status = 'VERIFIED') AS verified, \
                percentile_cont(0.5) WITHIN GROUP \
                  (ORDER BY extract(epoch FROM verified_at - created_at)::double precision) \
                  FILTER (WHERE NOT is_test AND status = 'VERIFIED') AS median_seconds_to_verify, \
                count(*) FILTER (WHERE is_test) AS test_requests \
         FROM verification_sessions \
         WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind::<SqlUuid, _>(tenant_id)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .get_result(conn)
    .await?;
    let failures_by_reason: Vec<ReasonCount> = diesel::sql_query(format!(
        "SELECT reason, count(*) AS count FROM \
           (SELECT {FAILURE_REASON} AS reason FROM verification_sessions WHERE {RANGE}) r \
         WHERE reason IS NOT NULL GROUP BY reason ORDER BY count DESC, reason"
    ))
    .bind::<SqlUuid, _>(tenant_id)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    let group = |key: &str, join: &str| {
        format!(
            "SELECT {key} AS key, count(*) AS requests, \
                    count(*) FILTER (WHERE s.gateway_call_id IS NOT NULL) AS calls_placed, \
                    count(*) FILTER (WHERE s.status = 'VERIFIED') AS verified \
             FROM verification_sessions s {join} \
             WHERE s.tenant_id = $1 AND s.created_at >= $2 AND s.created_at < $3 \
               AND NOT s.is_test \
             GROUP BY 1 ORDER BY requests DESC, key"
        )
    };
    let by_country: Vec<GroupCounts> = diesel::sql_query(group("s.country", ""))
        .bind::<SqlUuid, _>(tenant_id)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .load(conn)
        .await?;
    let by_caller_id: Vec<GroupCounts> = diesel::sql_query(group(
        "coalesce(p.pattern, '(removed)')",
        "LEFT JOIN pool_numbers p ON p.id = s.pool_number_id AND p.tenant_id = s.tenant_id",
    ))
    .bind::<SqlUuid, _>(tenant_id)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    let buckets: Vec<BucketCounts> = diesel::sql_query(format!(
        "WITH slots AS ( \
           SELECT generate_series(date_trunc('{unit}', $2, 'UTC'), $3 - interval '1 microsecond', \
                                  interval '1 {unit}') AS start), \
         counts AS ( \
           SELECT date_trunc('{unit}', created_at, 'UTC') AS start, count(*) AS requests, \
                  count(*) FILTER (WHERE gateway_call_id IS NOT NULL) AS calls_placed, \
                  count(*) FILTER (WHERE status = 'VERIFIED') AS verified \
           FROM verification_sessions WHERE {RANGE} GROUP BY 1) \
         SELECT slots.start, coalesce(counts.requests, 0) AS requests, \
                coalesce(counts.calls_placed, 0) AS calls_placed, \
                coalesce(counts.verified, 0) AS verified \
         FROM slots LEFT JOIN counts USING (start) ORDER BY slots.start",
        unit = bucket.unit()
    ))
    .bind::<SqlUuid, _>(tenant_id)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    Ok(Statistics {
        from,
        to,
        totals,
        failures_by_reason,
        by_country,
        by_caller_id,
        buckets,
    })
}
