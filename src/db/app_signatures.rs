//! `app_signatures`: the app builds (Android app hash, iOS bundle) allowed to request calls.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::app_signatures;

/// An app signature row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = app_signatures)]
pub struct AppSignature {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub platform: String,
    pub signature: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

/// A signature to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = app_signatures)]
pub struct NewAppSignature<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub platform: &'a str,
    pub signature: &'a str,
    pub label: &'a str,
}

/// Stores a signature; a duplicate for the tenant is a unique violation.
pub async fn insert(conn: &mut DbConn, new: &NewAppSignature<'_>) -> QueryResult<AppSignature> {
    diesel::insert_into(app_signatures::table)
        .values(new)
        .returning(AppSignature::as_returning())
        .get_result(conn)
        .await
}

/// Whether the tenant lists this signature.
pub async fn exists(conn: &mut DbConn, tenant_id: Uuid, signature: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        app_signatures::table
            .filter(app_signatures::tenant_id.eq(tenant_id))
            .filter(app_signatures::signature.eq(signature)),
    ))
    .get_result(conn)
    .await
}
