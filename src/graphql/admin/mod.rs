//! The tenant-admin surface (secret keys only) and the operator surface (the operator key).
//! Publishable keys reach none of it; another tenant's ids answer NOT_FOUND.

pub mod access;
pub mod keys;
pub mod operator;
pub mod pool;
pub mod sessions;
pub mod statistics;
pub mod tenant;
pub mod test_numbers;
pub mod types;
pub mod webhooks;

use async_graphql::{Context, ErrorExtensions};
use uuid::Uuid;

use super::context::{RequestAuth, principal};
use crate::app::AppState;
use crate::auth::{KeyKind, Principal};
use crate::crypto::ct_eq;
use crate::db::PooledConn;
use crate::error::{AppError, AppResult};

/// The request's principal, when it used a secret key.
pub async fn secret<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    let principal = principal(ctx).await?;
    if principal.key_kind != KeyKind::Secret {
        return Err(
            AppError::Forbidden("tenant administration needs a secret key (sk_…)").extend(),
        );
    }
    Ok(principal)
}

/// Passes when the request presented the operator key.
pub fn operator(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let state = ctx.data::<AppState>()?;
    let Some(expected) = state.config.operator_key.as_deref() else {
        return Err(AppError::Forbidden(
            "the operator API is off (MISSEDCALL_OPERATOR_KEY is unset)",
        )
        .extend());
    };
    let presented = ctx
        .data::<RequestAuth>()
        .ok()
        .and_then(RequestAuth::presented)
        .unwrap_or("");
    if presented.is_empty() {
        return Err(AppError::Unauthenticated.extend());
    }
    if !ct_eq(presented.as_bytes(), expected.as_bytes()) {
        return Err(AppError::Forbidden("the operator API needs the operator key").extend());
    }
    Ok(())
}

/// A connection that sees only this tenant's rows.
pub async fn connection(ctx: &Context<'_>, tenant_id: Uuid) -> async_graphql::Result<PooledConn> {
    let state = ctx.data::<AppState>()?;
    answer(state.db.for_tenant(tenant_id).await)
}

/// A connection across tenants, for the operator.
pub async fn system_connection(ctx: &Context<'_>) -> async_graphql::Result<PooledConn> {
    let state = ctx.data::<AppState>()?;
    answer(state.db.system().await)
}

/// An admin result as a GraphQL result with its client-facing code.
pub fn answer<T>(result: AppResult<T>) -> async_graphql::Result<T> {
    result.map_err(|err| err.extend())
}
