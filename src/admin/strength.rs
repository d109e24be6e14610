//! How strong the tenant's pool is against a guesser who never saw the call: with `n` caller
//! IDs that could ring for a destination and `maxAttempts` guesses, a blind guess wins with
//! probability `maxAttempts / n`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::db::DbConn;
use crate::verification::phone;

/// Caller IDs available to one destination country.
#[derive(Debug, Clone, PartialEq)]
pub struct CountryStrength {
    /// The caller IDs' country, or `None` for destinations with no local caller ID (they get
    /// the whole pool).
    pub country: Option<String>,
    pub caller_ids: i64,
    pub guess_probability: f64,
}

#[derive(QueryableByName)]
struct CountryRow {
    #[diesel(sql_type = Text)]
    country: String,
    #[diesel(sql_type = BigInt)]
    caller_ids: i64,
}

#[derive(QueryableByName)]
struct DestinationRow {
    #[diesel(sql_type = BigInt)]
    local: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// `maxAttempts / callerIds` for the tenant's settings and counts.
pub fn guess_probability(max_attempts: i32, caller_ids: i64) -> f64 {
    phone::guess_probability(
        u32::try_from(max_attempts).unwrap_or(0),
        u64::try_from(caller_ids).unwrap_or(0),
    )
}

/// Per destination country, what may ring (active entries; cooldowns are temporary).
pub async fn by_country(
    conn: &mut DbConn,
    tenant_id: Uuid,
    max_attempts: i32,
) -> diesel::QueryResult<Vec<CountryStrength>> {
    let rows: Vec<CountryRow> = diesel::sql_query(
        "SELECT country, sum(power(10, random_digits))::bigint AS caller_ids \
         FROM pool_numbers WHERE tenant_id = $1 AND active GROUP BY country ORDER BY country",
    )
    .bind::<SqlUuid, _>(tenant_id)
    .load(conn)
    .await?;
    let total: i64 = rows.iter().map(|r| r.caller_ids).sum();
    let mut strengths: Vec<CountryStrength> = rows
        .into_iter()
        .map(|row| CountryStrength {
            guess_probability: guess_probability(max_attempts, row.caller_ids),
            country: Some(row.country),
            caller_ids: row.caller_ids,
        })
        .collect();
    strengths.push(CountryStrength {
        country: None,
        caller_ids: total,
        guess_probability: guess_probability(max_attempts, total),
    });
    Ok(strengths)
}

/// The worst case over every destination: what the tenant's admin is shown.
pub fn worst(strengths: &[CountryStrength]) -> f64 {
    strengths
        .iter()
        .map(|s| s.guess_probability)
        .fold(0.0, f64::max)
}

/// Caller IDs that may ring for a destination in `country`: the local ones when there are any
/// (they are always preferred), else the whole pool.
pub async fn for_destination(
    conn: &mut DbConn,
    tenant_id: Uuid,
    country: &str,
) -> diesel::QueryResult<i64> {
    let row: DestinationRow = diesel::sql_query(
        "SELECT coalesce(sum(power(10, random_digits)) FILTER (WHERE country = $2), 0)::bigint AS local, \
                coalesce(sum(power(10, random_digits)), 0)::bigint AS total \
         FROM pool_numbers WHERE tenant_id = $1 AND active",
    )
    .bind::<SqlUuid, _>(tenant_id)
    .bind::<Text, _>(country)
    .get_result(conn)
    .await?;
    Ok(if row.local > 0 { row.local } else { row.total })
}
