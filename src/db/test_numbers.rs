//! `test_numbers`: a tenant's numbers that verify without a call.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbConn;
use super::schema::test_numbers;

/// A test number row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = test_numbers)]
pub struct TestNumber {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub phone_number: String,
    /// The caller ID that verifies it.
    pub caller_id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

/// A test number to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = test_numbers)]
pub struct NewTestNumber<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub phone_number: &'a str,
    pub caller_id: &'a str,
    pub label: &'a str,
}

pub async fn insert(conn: &mut DbConn, new: &NewTestNumber<'_>) -> QueryResult<TestNumber> {
    diesel::insert_into(test_numbers::table)
        .values(new)
        .returning(TestNumber::as_returning())
        .get_result(conn)
        .await
}

/// The tenant's test number for this E.164 number, if it registered one.
pub async fn find(
    conn: &mut DbConn,
    tenant_id: Uuid,
    phone_number: &str,
) -> QueryResult<Option<TestNumber>> {
    test_numbers::table
        .filter(test_numbers::tenant_id.eq(tenant_id))
        .filter(test_numbers::phone_number.eq(phone_number))
        .select(TestNumber::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn list(conn: &mut DbConn, tenant_id: Uuid) -> QueryResult<Vec<TestNumber>> {
    test_numbers::table
        .filter(test_numbers::tenant_id.eq(tenant_id))
        .order((test_numbers::created_at.asc(), test_numbers::id.asc()))
        .select(TestNumber::as_select())
        .load(conn)
        .await
}

pub async fn remove(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<TestNumber>> {
    diesel::delete(
        test_numbers::table
            .filter(test_numbers::tenant_id.eq(tenant_id))
            .filter(test_numbers::id.eq(id)),
    )
    .returning(TestNumber::as_returning())
    .get_result(conn)
    .await
    .optional()
}
