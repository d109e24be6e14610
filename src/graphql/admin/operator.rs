//! The operator's surface: tenants and the signing keys, behind `MISSEDCALL_OPERATOR_KEY`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::types::TenantSummary;
use super::{answer, operator, system_connection};
use crate::admin;
use crate::app::AppState;
use crate::error::AppError;
use crate::graphql::types::parse_id;
use crate::tenancy;
use crate::tokens;

#[derive(InputObject)]
pub struct CreateTenantInput {
    pub slug: String,
    pub name: String,
    /// The `aud` of the tenant's tokens; default: the slug.
    pub jwt_audience: Option<String>,
}

/// A new tenant and its first keys, shown once.
#[derive(SimpleObject)]
pub struct CreatedTenant {
    pub tenant: TenantSummary,
    pub publishable_key: String,
    pub secret_key: String,
}

/// The signing key now in use.
#[derive(SimpleObject)]
pub struct RotatedSigningKey {
    pub kid: String,
}

#[derive(Default)]
pub struct OperatorQuery;

#[Object]
impl OperatorQuery {
    /// Every tenant (operator key).
    async fn tenants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TenantSummary>> {
        operator(ctx)?;
        let mut conn = system_connection(ctx).await?;
        let rows = answer(admin::operator::list(&mut conn).await)?;
        Ok(rows.iter().map(TenantSummary::from).collect())
    }
}

#[derive(Default)]
pub struct OperatorMutation;

#[Object]
impl OperatorMutation {
    /// Creates a tenant with a publishable and a secret key (operator key).
    async fn create_tenant(
        &self,
        ctx: &Context<'_>,
        input: CreateTenantInput,
    ) -> async_graphql::Result<CreatedTenant> {
        operator(ctx)?;
        let mut conn = system_connection(ctx).await?;
        let created = answer(
            tenancy::create_tenant(
                &mut conn,
                input.slug.trim(),
                &input.name,
                input.jwt_audience.as_deref(),
            )
            .await,
        )?;
        Ok(CreatedTenant {
            tenant: TenantSummary::from(&created.tenant),
            publishable_key: created.publishable_key.key,
            secret_key: created.secret_key.key,
        })
    }

    /// Refuses every key of the tenant from now on (operator key).
    async fn suspend_tenant(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TenantSummary> {
        operator(ctx)?;
        let id = parse_id(&id, "id")?;
        let mut conn = system_connection(ctx).await?;
        let row = answer(admin::operator::suspend(&mut conn, id).await)?;
        Ok(TenantSummary::from(&row))
    }

    /// Lets a suspended tenant in again (operator key).
    async fn reactivate_tenant(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TenantSummary> {
        operator(ctx)?;
        let id = parse_id(&id, "id")?;
        let mut conn = system_connection(ctx).await?;
        let row = answer(admin::operator::reactivate(&mut conn, id).await)?;
        Ok(TenantSummary::from(&row))
    }

    /// Signs new tokens with a fresh key; the old key stays published for `overlapHours`.
    async fn rotate_signing_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24)] overlap_hours: i32,
    ) -> async_graphql::Result<RotatedSigningKey> {
        operator(ctx)?;
        let overlap_hours = answer(admin::in_range("overlapHours", overlap_hours, 0..=720))?;
        let state = ctx.data::<AppState>()?;
        let mut conn = system_connection(ctx).await?;
        let kid = answer(
            tokens::rotate(
                &mut conn,
                &state.master_key,
                chrono::Duration::hours(i64::from(overlap_hours)),
            )
            .await
            .map_err(AppError::from),
        )?;
        answer(
            state
                .signer
                .reload(&mut conn, &state.master_key)
                .await
                .map_err(AppError::from),
        )?;
        Ok(RotatedSigningKey { kid })
    }
}
