//! `allowed_countries`: a tenant's destination whitelist; none listed means all allowed.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::allowed_countries;

/// Adds countries (ISO 3166 alpha-2, uppercase) to the whitelist; already listed ones are kept.
pub async fn allow(conn: &mut DbConn, tenant_id: Uuid, codes: &[String]) -> QueryResult<usize> {
    let rows: Vec<_> = codes
        .iter()
        .map(|code| {
            (
                allowed_countries::tenant_id.eq(tenant_id),
                allowed_countries::country_code.eq(code.as_str()),
            )
        })
        .collect();
    diesel::insert_into(allowed_countries::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

/// The tenant's whitelist, sorted.
pub async fn list(conn: &mut DbConn, tenant_id: Uuid) -> QueryResult<Vec<String>> {
    allowed_countries::table
        .filter(allowed_countries::tenant_id.eq(tenant_id))
        .select(allowed_countries::country_code)
        .order(allowed_countries::country_code.asc())
        .load(conn)
        .await
}
