//! App signatures and allowed countries.

use async_graphql::{Context, ID, InputObject, Object};

use super::types::{AppPlatform, AppSignature};
use super::{answer, connection, secret};
use crate::admin::access;
use crate::graphql::types::parse_id;

/// An app allowed to request calls.
#[derive(InputObject)]
pub struct AppSignatureInput {
    pub platform: AppPlatform,
    /// The Android app hash (11 characters) or the iOS bundle id.
    pub signature: String,
    #[graphql(default)]
    pub label: String,
}

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// The apps allowed to request calls.
    async fn app_signatures(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AppSignature>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let rows = answer(access::signatures(&mut conn, principal.tenant.id).await)?;
        Ok(rows.iter().map(AppSignature::from).collect())
    }

    /// The countries phone numbers may belong to (ISO 3166 alpha-2); empty: every country.
    async fn allowed_countries(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        answer(access::countries(&mut conn, principal.tenant.id).await)
    }
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    async fn add_app_signature(
        &self,
        ctx: &Context<'_>,
        input: AppSignatureInput,
    ) -> async_graphql::Result<AppSignature> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(
            access::add_signature(
                &mut conn,
                principal.tenant.id,
                input.platform.as_str(),
                &input.signature,
                &input.label,
            )
            .await,
        )?;
        Ok(AppSignature::from(&row))
    }

    async fn remove_app_signature(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AppSignature> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(access::remove_signature(&mut conn, principal.tenant.id, id).await)?;
        Ok(AppSignature::from(&row))
    }

    /// Replaces the list; an empty list allows every country.
    async fn set_allowed_countries(
        &self,
        ctx: &Context<'_>,
        country_codes: Vec<String>,
    ) -> async_graphql::Result<Vec<String>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        answer(access::set_countries(&mut conn, principal.tenant.id, &country_codes).await)
    }

    async fn allow_countries(
        &self,
        ctx: &Context<'_>,
        country_codes: Vec<String>,
    ) -> async_graphql::Result<Vec<String>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        answer(access::allow_countries(&mut conn, principal.tenant.id, &country_codes).await)
    }

    async fn disallow_countries(
        &self,
        ctx: &Context<'_>,
        country_codes: Vec<String>,
    ) -> async_graphql::Result<Vec<String>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        answer(access::disallow_countries(&mut conn, principal.tenant.id, &country_codes).await)
    }
}
