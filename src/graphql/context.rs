//! Request-scoped data put in by the HTTP layer: the presented API key (resolved lazily, once
//! per request) and what is known about the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// The key in an `Authorization` value: `Bearer <key>` or the bare key.
    pub fn bearer_value(value: &str) -> String {
        let value = value.trim();
        match value.split_once(' ') {
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim().to_owned(),
            _ => value.to_owned(),
        }
    }

    /// From the value of an `Authorization` header (`Bearer <key>`), if any.
    pub fn from_header(header: Option<&str>) -> Self {
        let presented = header.map(Self::bearer_value);
        Self {
            presented,
            resolved: OnceCell::new(),
        }
    }

    /// The key as presented, if any.
    pub fn presented(&self) -> Option<&str> {
        self.presented.as_deref()
    }

    /// Already authenticated (a WebSocket's `connection_init`).
    pub fn authenticated(principal: Principal) -> Self {
        Self {
            presented: None,
            resolved: OnceCell::new_with(Some(Ok(principal))),
        }
    }
}

/// The subscriptions open on one WebSocket connection, against its limit.
#[derive(Clone)]
pub struct SubscriptionSlots {
    active: Arc<AtomicUsize>,
    max: usize,
}

/// One open subscription; frees its slot when dropped.
pub struct SubscriptionSlot {
    active: Arc<AtomicUsize>,
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::subscriptions(-1.0);
    }
}

impl SubscriptionSlots {
    /// At most `max` at once.
    pub fn new(max: usize) -> Self {
        Self {
            active: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Takes a slot, or refuses when all are in use.
    pub fn acquire(&self) -> Result<SubscriptionSlot, AppError> {
        let taken = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => {
                crate::metrics::subscriptions(1.0);
                Ok(SubscriptionSlot {
                    active: self.active.clone(),
                })
            }
            Err(_) => Err(AppError::TooManySubscriptions(self.max)),
        }
    }

    /// Subscriptions open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
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
            let mut conn = state.db.system().await?;
            auth::authenticate(&mut conn, key).await
        })
        .await;
    resolved.as_ref().map_err(|err| err.extend())
}

/// What the HTTP layer knows about the client.
pub fn client_info<'a>(ctx: &Context<'a>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default()
}
