//! The caller-ID pool.

use async_graphql::{Context, ID, InputObject, Object};

use super::types::PoolNumber;
use super::{answer, connection, secret};
use crate::admin::pool::{self, PoolEntryChange, PoolEntryInput};
use crate::db::pool_numbers;
use crate::error::AppError;
use crate::graphql::types::parse_id;

/// A caller ID (`+14155550100`) or a range whose last digits are X (`+467012300XX`).
#[derive(InputObject)]
pub struct PoolNumberInput {
    pub pattern: String,
    #[graphql(default)]
    pub label: String,
    /// 1-1000; default 1.
    pub weight: Option<i32>,
}

impl From<PoolNumberInput> for PoolEntryInput {
    fn from(input: PoolNumberInput) -> Self {
        Self {
            pattern: input.pattern,
            label: input.label,
            weight: input.weight,
        }
    }
}

/// Changes to a pool entry; omitted fields stay as they are.
#[derive(InputObject, Default)]
pub struct PoolNumberUpdateInput {
    pub label: Option<String>,
    pub weight: Option<i32>,
    /// `true` also clears a cooldown and the run of failures.
    pub active: Option<bool>,
}

#[derive(Default)]
pub struct PoolQuery;

#[Object]
impl PoolQuery {
    /// The pool, active entries and not, with usage and health.
    async fn pool_numbers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PoolNumber>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let rows = answer(
            pool_numbers::list(&mut conn, principal.tenant.id)
                .await
                .map_err(AppError::from),
        )?;
        Ok(rows.iter().map(PoolNumber::from).collect())
    }
}

#[derive(Default)]
pub struct PoolMutation;

#[Object]
impl PoolMutation {
    /// Adds one caller ID or range.
    async fn add_pool_number(
        &self,
        ctx: &Context<'_>,
        input: PoolNumberInput,
    ) -> async_graphql::Result<PoolNumber> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(pool::add(&mut conn, principal.tenant.id, &input.into()).await)?;
        Ok(PoolNumber::from(&row))
    }

    /// Adds up to 1000 entries: all of them or, when one is invalid or present, none.
    async fn import_pool_numbers(
        &self,
        ctx: &Context<'_>,
        entries: Vec<PoolNumberInput>,
    ) -> async_graphql::Result<Vec<PoolNumber>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let inputs: Vec<PoolEntryInput> = entries.into_iter().map(Into::into).collect();
        let rows = answer(pool::import(&mut conn, principal.tenant.id, &inputs).await)?;
        Ok(rows.iter().map(PoolNumber::from).collect())
    }

    /// Changes an entry's label, weight or activity.
    async fn update_pool_number(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: PoolNumberUpdateInput,
    ) -> async_graphql::Result<PoolNumber> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let change = PoolEntryChange {
            label: input.label,
            weight: input.weight,
            active: input.active,
        };
        let row = answer(pool::update(&mut conn, principal.tenant.id, id, &change).await)?;
        Ok(PoolNumber::from(&row))
    }

    /// Stops offering an entry; it stays listed with its history.
    async fn deactivate_pool_number(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<PoolNumber> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let change = PoolEntryChange {
            active: Some(false),
            ..PoolEntryChange::default()
        };
        let row = answer(pool::update(&mut conn, principal.tenant.id, id, &change).await)?;
        Ok(PoolNumber::from(&row))
    }

    /// Removes an entry; past sessions keep the caller ID that rang.
    async fn remove_pool_number(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<PoolNumber> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(pool::remove(&mut conn, principal.tenant.id, id).await)?;
        Ok(PoolNumber::from(&row))
    }
}
