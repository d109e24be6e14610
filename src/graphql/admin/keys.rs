//! API keys.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::types::{ApiKey, KeyKindName};
use super::{answer, connection, secret};
use crate::admin::keys;
use crate::auth::KeyKind;
use crate::graphql::types::parse_id;

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub kind: KeyKindName,
    #[graphql(default)]
    pub label: String,
}

/// A new key: `key` is shown now and never again.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    pub key: String,
}

#[derive(Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// The tenant's keys by their visible prefix, revoked ones included; `prefix` narrows to
    /// keys whose visible prefix starts with it (`sk_`, `pk_Xw…`).
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        prefix: Option<String>,
    ) -> async_graphql::Result<Vec<ApiKey>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let rows = answer(keys::list(&mut conn, principal.tenant.id, prefix.as_deref()).await)?;
        Ok(rows.iter().map(ApiKey::from).collect())
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object]
impl KeysMutation {
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        let principal = secret(ctx).await?;
        let kind = match input.kind {
            KeyKindName::Publishable => KeyKind::Publishable,
            KeyKindName::Secret => KeyKind::Secret,
        };
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let created =
            answer(keys::create(&mut conn, principal.tenant.id, kind, &input.label).await)?;
        Ok(CreatedApiKey {
            api_key: ApiKey::from(&created.row),
            key: created.key,
        })
    }

    /// Revokes a key at once; revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(keys::revoke(&mut conn, principal.tenant.id, id).await)?;
        Ok(ApiKey::from(&row))
    }
}
