//! Statistics over a time range.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{answer, connection, secret};
use crate::admin::statistics::{self, Bucket};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum StatisticsBucket {
    Hour,
    Day,
}

#[derive(SimpleObject)]
pub struct FailureCount {
    /// `CALL_NOT_PLACED`, `CALL_FAILED`, `TOO_MANY_ATTEMPTS` or `EXPIRED`.
    pub reason: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub struct GroupStatistics {
    /// A country (ISO 3166 alpha-2) or a pool entry's pattern.
    pub key: String,
    pub requests: i64,
    pub calls_placed: i64,
    pub verified: i64,
}

#[derive(SimpleObject)]
pub struct BucketStatistics {
    pub start: DateTime<Utc>,
    pub requests: i64,
    pub calls_placed: i64,
    pub verified: i64,
}

/// The tenant's figures for sessions requested in `[from, to)`.
#[derive(SimpleObject)]
pub struct Statistics {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub requests: i64,
    pub calls_placed: i64,
    pub verified: i64,
    /// verified / requests.
    pub conversion_rate: f64,
    /// From request to verification; null when nothing was verified.
    pub median_seconds_to_verify: Option<f64>,
    /// Sessions of test numbers in the range; every other figure leaves them out.
    pub test_requests: i64,
    pub failures_by_reason: Vec<FailureCount>,
    pub by_country: Vec<GroupStatistics>,
    pub by_caller_id: Vec<GroupStatistics>,
    pub buckets: Vec<BucketStatistics>,
}

#[derive(Default)]
pub struct StatisticsQuery;

#[Object]
impl StatisticsQuery {
    async fn statistics(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "StatisticsBucket::Day")] bucket: StatisticsBucket,
    ) -> async_graphql::Result<Statistics> {
        let principal = secret(ctx).await?;
        let bucket = match bucket {
            StatisticsBucket::Hour => Bucket::Hour,
            StatisticsBucket::Day => Bucket::Day,
        };
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let stats =
            answer(statistics::compute(&mut conn, principal.tenant.id, from, to, bucket).await)?;
        let group = |g: &statistics::GroupCounts| GroupStatistics {
            key: g.key.clone(),
            requests: g.requests,
            calls_placed: g.calls_placed,
            verified: g.verified,
        };
        Ok(Statistics {
            conversion_rate: stats.conversion_rate(),
            from: stats.from,
            to: stats.to,
            requests: stats.totals.requests,
            calls_placed: stats.totals.calls_placed,
            verified: stats.totals.verified,
            median_seconds_to_verify: stats.totals.median_seconds_to_verify,
            test_requests: stats.totals.test_requests,
            failures_by_reason: stats
                .failures_by_reason
                .iter()
                .map(|f| FailureCount {
                    reason: f.reason.clone(),
                    count: f.count,
                })
                .collect(),
            by_country: stats.by_country.iter().map(group).collect(),
            by_caller_id: stats.by_caller_id.iter().map(group).collect(),
            buckets: stats
                .buckets
                .iter()
                .map(|b| BucketStatistics {
                    start: b.start,
                    requests: b.requests,
                    calls_placed: b.calls_placed,
                    verified: b.verified,
                })
                .collect(),
        })
    }
}
