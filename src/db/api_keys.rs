//! `api_keys`: publishable and secret keys, stored as SHA-256 hashes only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::{api_keys, tenants};
use super::tenants::Tenant;

/// An API key row (never the key itself).
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a [u8],
    pub label: &'a str,
}

/// Stores a key.
pub async fn insert(conn: &mut DbConn, new: &NewApiKey<'_>) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values(new)
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await
}

/// The key with this hash and its tenant, revoked or not (the caller decides).
pub async fn find_by_hash(conn: &mut DbConn, hash: &[u8]) -> QueryResult<Option<(ApiKey, Tenant)>> {
    api_keys::table
        .inner_join(tenants::table)
        .filter(api_keys::key_hash.eq(hash))
        .select((ApiKey::as_select(), Tenant::as_select()))
        .first(conn)
        .await
        .optional()
}

/// Records use of a key, at most once a minute so busy keys do not write on every request.
pub async fn touch_last_used(conn: &mut DbConn, id: Uuid) -> QueryResult<usize> {
    let a_minute_ago = Utc::now() - chrono::Duration::seconds(60);
    diesel::update(
        api_keys::table.find(id).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(a_minute_ago)),
        ),
    )
    .set(api_keys::last_used_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}

/// Revokes a key of this tenant; false when the tenant has no such key.
pub async fn revoke(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> QueryResult<bool> {
    let updated = diesel::update(
        api_keys::table
            .filter(api_keys::tenant_id.eq(tenant_id))
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}
