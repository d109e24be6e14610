//! What any key may read about its own tenant.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};

use super::context::principal;
use crate::auth::KeyKind;

/// The kind of API key a request used.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ApiKeyKind {
    Publishable,
    Secret,
}

/// The tenant behind the presented key.
#[derive(SimpleObject)]
pub struct Viewer {
    pub tenant_id: ID,
    pub slug: String,
    pub name: String,
    /// The `aud` of this tenant's tokens.
    pub jwt_audience: String,
    pub key_kind: ApiKeyKind,
}

/// Queries about the caller's own tenant.
#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The tenant and key kind of this request's API key.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let principal = principal(ctx).await?;
        Ok(Viewer {
            tenant_id: ID(principal.tenant.id.to_string()),
            slug: principal.tenant.slug.clone(),
            name: principal.tenant.name.clone(),
            jwt_audience: principal.tenant.jwt_audience.clone(),
            key_kind: match principal.key_kind {
                KeyKind::Publishable => ApiKeyKind::Publishable,
                KeyKind::Secret => ApiKeyKind::Secret,
            },
        })
    }
}
