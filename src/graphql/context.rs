//! Request-scoped data put in by the HTTP layer: the presented API key (resolved lazily, once
//! per request) and what is known about the client.

use async_graphql::{Context, ErrorExtensions};
use tokio::sync::OnceCell;

use crate::app::AppState;
use crate::auth::{self, Principal};
use crate::error::AppError;
use crate::verification::ClientInfo;

/// The `Authorization` key of one request and its resolution.
#[derive(Default)]
pub struct RequestAuth {
    presented: Option<String>,
    resolved: OnceCell<Result<Principal, AppError>>,
}

impl RequestAuth {
    /// From the value of an `Authorization` header (`Bearer <key>`), if any.
    pub fn from_header(header: Option<&str>) -> Self {
        let presented = header.map(|value| {
            let value = value.trim();
            match value.split_once(' ') {
                Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => {
                    key.trim().to_owned()
                }
                _ => value.to_owned(),
            }
        });
        Self {
            presented,
            resolved: OnceCell::new(),
        }
    }
}

/// The authenticated tenant of this request, or the precise reason there is none.
pub async fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    let request_auth = ctx.data::<RequestAuth>()?;
    let state = ctx.data::<AppState>()?;
    let resolved = request_auth
        .resolved
        .get_or_init(|| async {
            let Some(key) = request_auth.presented.as_deref() else {
                return Err(AppError::Unauthenticated);
            };
            let mut conn = state.db.get().await?;
            auth::authenticate(&mut conn, key).await
        })
        .await;
    resolved.as_ref().map_err(|err| err.extend())
}

/// What the HTTP layer knows about the client.
pub fn client_info<'a>(ctx: &Context<'a>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default()
}
