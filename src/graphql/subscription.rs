//! `sessionStatus`: a session's current status, then every change, until a final status.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ErrorExtensions, ID, Subscription};
use chrono::Utc;
use futures_util::Stream;
use tokio::time::Instant;
use uuid::Uuid;

use super::context::{SubscriptionSlot, SubscriptionSlots, principal};
use super::types::parse_id;
use super::verification::SessionStatusEvent;
use crate::app::AppState;
use crate::db::tenants::Tenant;
use crate::error::AppError;
use crate::events::{EventSubscription, SessionEvent};
use crate::verification::{SessionState, SessionStatus, VerificationService};

/// When the expiry check finds the session not yet expired (clocks differ), it looks again.
const EXPIRY_RECHECK: Duration = Duration::from_millis(200);

/// Subscriptions of the verification flow.
#[derive(Default)]
pub struct VerificationSubscription;

#[Subscription]
impl VerificationSubscription {
    /// The session's current status first, then every change in order; completes after
    /// `VERIFIED`, `LOCKED` or `EXPIRED`. Needs the session token from `requestCall`.
    async fn session_status(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
        session_token: String,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SessionStatusEvent>>> {
        let principal = principal(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let slot = match ctx.data_opt::<SubscriptionSlots>() {
            Some(slots) => Some(slots.acquire().map_err(|e| e.extend())?),
            None => None,
        };
        let session_id = parse_id(&session_id, "sessionId")?;
        let service = state.verification.clone();
        // Listen before reading, so no change can fall between the read and the first event.
        let events = service.events().subscribe(session_id);
        let current = service
            .session_state(&principal.tenant, session_id, &session_token)
            .await
            .map_err(|e| e.extend())?;
        let watcher = Watcher {
            service,
            tenant: principal.tenant.clone(),
            session_id,
            session_token,
            expiry_check: deadline(current.expires_at),
            pending: Some(current),
            last: None,
            events,
            resync_open: true,
            done: false,
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(watcher, Watcher::next))
    }
}

fn deadline(at: chrono::DateTime<Utc>) -> Instant {
    Instant::now() + (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

struct Watcher {
    service: Arc<VerificationService>,
    tenant: Tenant,
    session_id: Uuid,
    session_token: String,
    expiry_check: Instant,
    pending: Option<SessionState>,
    last: Option<SessionStatus>,
    events: EventSubscription,
    resync_open: bool,
    done: bool,
    _slot: Option<SubscriptionSlot>,
}

type Item = async_graphql::Result<SessionStatusEvent>;

impl Watcher {
    async fn next(mut self) -> Option<(Item, Self)> {
        if self.done {
            return None;
        }
        if let Some(first) = self.pending.take() {
            let event = self.accept(first.status, first.at, first.reason);
            if let Some(event) = event {
                return Some((Ok(event), self));
            }
        }
        loop {
            tokio::select! {
                received = self.events.events.recv() => match received {
                    Some(SessionEvent { status, at, reason, .. }) => {
                        if let Some(event) = SessionStatus::parse(&status)
                            .and_then(|status| self.accept(status, at, reason))
                        {
                            return Some((Ok(event), self));
                        }
                    }
                    None => {
                        self.done = true;
                        return Some((Err(AppError::SubscriberTooSlow.extend()), self));
                    }
                },
                changed = self.events.resync.changed(), if self.resync_open => {
                    if changed.is_err() {
                        self.resync_open = false;
                    } else if let Some(item) = self.reread().await {
                        return Some((item, self));
                    }
                }
                () = tokio::time::sleep_until(self.expiry_check) => {
                    self.expiry_check = Instant::now() + EXPIRY_RECHECK;
                    if let Some(item) = self.reread().await {
                        return Some((item, self));
                    }
                }
            }
            if self.done {
                return None;
            }
        }
    }

    /// Reads the state from the database (expiring the session when due); an item when it
    /// shows a change this subscriber has not seen.
    async fn reread(&mut self) -> Option<Item> {
        match self
            .service
            .session_state(&self.tenant, self.session_id, &self.session_token)
            .await
        {
            Ok(state) => self.accept(state.status, state.at, state.reason).map(Ok),
            Err(err) => {
                self.done = true;
                Some(Err(err.extend()))
            }
        }
    }

    /// The event for `status` when it moves this subscriber forward; never a repeat or a step
    /// back.
    fn accept(
        &mut self,
        status: SessionStatus,
        at: chrono::DateTime<Utc>,
        reason: Option<String>,
    ) -> Option<SessionStatusEvent> {
        if let Some(last) = self.last
            && (last == status || !last.can_move_to(status))
        {
            return None;
        }
        self.last = Some(status);
        self.done = status.is_terminal();
        Some(SessionStatusEvent {
            session_id: ID(self.session_id.to_string()),
            status: status.into(),
            at,
            reason,
        })
    }
}
