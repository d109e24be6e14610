//! Test numbers: registered by a tenant's admin, each with the caller ID that verifies it.

use uuid::Uuid;

use super::validate_label;
use crate::db::test_numbers::{self, NewTestNumber, TestNumber};
use crate::db::{DbConn, is_unique_violation};
use crate::error::{AppError, AppResult};
use crate::verification::phone;

/// Most test numbers a tenant may hold.
pub const MAX_TEST_NUMBERS: usize = 1000;

pub async fn list(conn: &mut DbConn, tenant_id: Uuid) -> AppResult<Vec<TestNumber>> {
    Ok(test_numbers::list(conn, tenant_id).await?)
}

/// Registers a test number; both numbers must be valid international numbers.
pub async fn add(
    conn: &mut DbConn,
    tenant_id: Uuid,
    phone_number: &str,
    caller_id: &str,
    label: &str,
) -> AppResult<TestNumber> {
    let label = validate_label(label)?;
    let destination = phone::parse_destination(phone_number)?;
    let caller = phone::parse_destination(caller_id)
        .map_err(|e| AppError::InvalidPhoneNumber(format!("callerId: {e}")))?;
    if list(conn, tenant_id).await?.len() >= MAX_TEST_NUMBERS {
        return Err(AppError::Conflict(format!(
            "a tenant holds at most {MAX_TEST_NUMBERS} test numbers"
        )));
    }
    test_numbers::insert(
        conn,
        &NewTestNumber {
            id: Uuid::now_v7(),
            tenant_id,
            phone_number: &destination.e164,
            caller_id: &caller.e164,
            label,
        },
    )
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            AppError::Conflict(format!("{} is already a test number", destination.e164))
        } else {
            err.into()
        }
    })
}

pub async fn remove(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> AppResult<TestNumber> {
    test_numbers::remove(conn, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound("test number"))
}
