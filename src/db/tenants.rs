//! `tenants`: client apps and their settings.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::tenants;

/// Tenant status: only active tenants may use the API.
pub const STATUS_ACTIVE: &str = "ACTIVE";
/// Suspended by the operator: every key of the tenant is refused.
pub const STATUS_SUSPENDED: &str = "SUSPENDED";

/// A tenant row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub validity_seconds: i32,
    pub max_attempts: i32,
    pub require_app_signature: bool,
    pub jwt_audience: String,
    pub jwt_ttl_seconds: i32,
    pub max_guess_probability: Option<f64>,
    pub ring_timeout_seconds: i32,
    pub interception_timeout_seconds: i32,
    pub rate_limit_overrides: serde_json::Value,
    pub gateway: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub gateway_credentials_sealed: Option<Vec<u8>>,
    pub gateway_account_hint: Option<String>,
    pub approval_url: Option<String>,
    pub approval_secret_sealed: Option<Vec<u8>>,
    pub approval_timeout_ms: i32,
    /// `ALLOW` or `DENY`: what happens when the approval hook fails or times out.
    pub approval_on_failure: String,
    pub test_numbers_enabled: bool,
    /// Days personal data and the audit trail are kept.
    pub retention_days: i32,
}

impl Tenant {
    /// Whether the tenant may use the API.
    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }
}

/// A tenant to create; every setting not named here takes its column default.
#[derive(Debug, Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant<'a> {
    pub id: Uuid,
    pub slug: &'a str,
    pub name: &'a str,
    pub jwt_audience: &'a str,
}

/// Inserts a tenant.
pub async fn insert(conn: &mut DbConn, new: &NewTenant<'_>) -> QueryResult<Tenant> {
    diesel::insert_into(tenants::table)
        .values(new)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

/// The tenant with this slug.
pub async fn find_by_slug(conn: &mut DbConn, slug: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::slug.eq(slug))
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant with this id.
pub async fn find(conn: &mut DbConn, id: Uuid) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

/// Sets the status (ACTIVE or SUSPENDED); returns the updated tenant.
pub async fn set_status(conn: &mut DbConn, id: Uuid, status: &str) -> QueryResult<Option<Tenant>> {
    diesel::update(tenants::table.find(id))
        .set((
            tenants::status.eq(status),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()
}
