//! The tenant's caller-ID pool: single numbers and ranges, added one by one or imported in one
//! all-or-nothing batch, updated, deactivated and removed.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::{in_range, validate_label};
use crate::db::DbConn;
use crate::db::pool_numbers::PoolNumber;
use crate::db::schema::pool_numbers;
use crate::error::{AppError, AppResult};
use crate::tenancy;

/// Most entries one import may carry.
pub const MAX_IMPORT: usize = 1000;

/// An entry to add.
#[derive(Debug, Clone)]
pub struct PoolEntryInput {
    pub pattern: String,
    pub label: String,
    pub weight: Option<i32>,
}

/// A change to an entry; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PoolEntryChange {
    pub label: Option<String>,
    pub weight: Option<i32>,
    /// Reactivating also clears the entry's cooldown and its run of failures.
    pub active: Option<bool>,
}

/// How an entry is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolHealth {
    Ok,
    CoolingDown,
    Deactivated,
}

/// The health of an entry now.
pub fn health(entry: &PoolNumber) -> PoolHealth {
    if !entry.active {
        PoolHealth::Deactivated
    } else if entry
        .cooldown_until
        .is_some_and(|until| until > chrono::Utc::now())
    {
        PoolHealth::CoolingDown
    } else {
        PoolHealth::Ok
    }
}

/// Caller IDs an entry stands for: 1 for a number, 10^n for a range with n random digits.
pub fn caller_ids(entry: &PoolNumber) -> i64 {
    10i64.saturating_pow(u32::try_from(entry.random_digits).unwrap_or(0))
}

async fn add_one(
    conn: &mut DbConn,
    tenant_id: Uuid,
    input: &PoolEntryInput,
) -> AppResult<PoolNumber> {
    let label = validate_label(&input.label)?;
    let entry = tenancy::add_pool_entry(conn, tenant_id, &input.pattern, label).await?;
    match input.weight {
        Some(weight) if weight != entry.weight => {
            let weight = in_range("weight", weight, 1..=1000)?;
            Ok(diesel::update(pool_numbers::table.find(entry.id))
                .set(pool_numbers::weight.eq(weight))
                .returning(PoolNumber::as_returning())
                .get_result(conn)
                .await?)
        }
        _ => Ok(entry),
    }
}

/// Adds one entry.
pub async fn add(
    conn: &mut DbConn,
    tenant_id: Uuid,
    input: &PoolEntryInput,
) -> AppResult<PoolNumber> {
    if let Some(weight) = input.weight {
        in_range("weight", weight, 1..=1000)?;
    }
    add_one(conn, tenant_id, input).await
}

/// Adds many entries at once: all of them, or none when any is invalid or already present
/// (the error names the first offending entry by its position).
pub async fn import(
    conn: &mut DbConn,
    tenant_id: Uuid,
    inputs: &[PoolEntryInput],
) -> AppResult<Vec<PoolNumber>> {
    if inputs.is_empty() || inputs.len() > MAX_IMPORT {
        return Err(AppError::InvalidInput(format!(
            "an import carries 1 to {MAX_IMPORT} entries"
        )));
    }
    for (index, input) in inputs.iter().enumerate() {
        if let Some(weight) = input.weight {
            in_range("weight", weight, 1..=1000).map_err(|e| at_entry(index, e))?;
        }
    }
    conn.transaction(async |conn| {
        let mut added = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            added.push(
                add_one(conn, tenant_id, input)
                    .await
                    .map_err(|e| at_entry(index, e))?,
            );
        }
        Ok(added)
    })
    .await
}

fn at_entry(index: usize, err: AppError) -> AppError {
    match err {
        AppError::InvalidInput(why) => AppError::InvalidInput(format!("entry {index}: {why}")),
        AppError::InvalidPhoneNumber(why) => {
            AppError::InvalidPhoneNumber(format!("entry {index}: {why}"))
        }
        AppError::Conflict(why) => AppError::Conflict(format!("entry {index}: {why}")),
        other => other,
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = pool_numbers)]
struct Changes<'a> {
    label: Option<&'a str>,
    weight: Option<i32>,
    active: Option<bool>,
    cooldown_until: Option<Option<chrono::DateTime<chrono::Utc>>>,
    consecutive_failures: Option<i32>,
}

/// Updates one of the tenant's entries.
pub async fn update(
    conn: &mut DbConn,
    tenant_id: Uuid,
    id: Uuid,
    change: &PoolEntryChange,
) -> AppResult<PoolNumber> {
    let label = change.label.as_deref().map(validate_label).transpose()?;
    let weight = change
        .weight
        .map(|w| in_range("weight", w, 1..=1000))
        .transpose()?;
    let reactivating = change.active == Some(true);
    let changes = Changes {
        label,
        weight,
        active: change.active,
        cooldown_until: reactivating.then_some(None),
        consecutive_failures: reactivating.then_some(0),
    };
    let target = pool_numbers::table
        .filter(pool_numbers::tenant_id.eq(tenant_id))
        .filter(pool_numbers::id.eq(id));
    let updated = if label.is_none() && weight.is_none() && change.active.is_none() {
        target
            .select(PoolNumber::as_select())
            .first(conn)
            .await
            .optional()?
    } else {
        diesel::update(target)
            .set(&changes)
            .returning(PoolNumber::as_returning())
            .get_result(conn)
            .await
            .optional()?
    };
    updated.ok_or(AppError::NotFound("pool number"))
}

/// Removes one of the tenant's entries; past sessions keep their caller ID.
pub async fn remove(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> AppResult<PoolNumber> {
    diesel::delete(
        pool_numbers::table
            .filter(pool_numbers::tenant_id.eq(tenant_id))
            .filter(pool_numbers::id.eq(id)),
    )
    .returning(PoolNumber::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(AppError::NotFound("pool number"))
}
