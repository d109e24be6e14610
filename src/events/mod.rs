//! Session status events: published by every writer of a session's status after commit, and
//! delivered to the subscribers of that session on every instance (Redis pub/sub), or within
//! this process when no Redis is configured.

mod local;
mod redis_bus;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

pub use local::LocalRegistry;
pub use redis_bus::RedisBus;

/// A session's status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEvent {
    pub session_id: Uuid,
    /// The stored status name (`CALLING`, `VERIFIED`, …).
    pub status: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// One subscriber's view of a session's events.
pub struct EventSubscription {
    /// Events for the session; closes when the subscriber fell too far behind.
    pub events: mpsc::Receiver<SessionEvent>,
    /// Bumped when events may have been missed (the Redis connection was lost and is back):
    /// the subscriber re-reads the session's state from the database.
    pub resync: watch::Receiver<u64>,
    _registration: local::Registration,
}

/// Publishes and delivers session events.
#[derive(Clone)]
pub struct EventHub {
    local: Arc<LocalRegistry>,
    redis: Option<Arc<RedisBus>>,
    resync: watch::Receiver<u64>,
    /// Keeps the in-process resync channel open; with Redis the listener owns the sender.
    _resync_sender: Option<Arc<watch::Sender<u64>>>,
}

impl EventHub {
    /// Delivery within this process only.
    pub fn in_process() -> Self {
        let (sender, resync) = watch::channel(0);
        Self {
            local: Arc::new(LocalRegistry::default()),
            redis: None,
            resync,
            _resync_sender: Some(Arc::new(sender)),
        }
    }

    /// Delivery across instances through Redis; starts the pub/sub listener.
    pub async fn with_redis(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let local = Arc::new(LocalRegistry::default());
        let (bus, resync) = RedisBus::start(url, prefix, local.clone()).await?;
        Ok(Self {
            local,
            redis: Some(Arc::new(bus)),
            resync,
            _resync_sender: None,
        })
    }

    /// Sends the event to every subscriber of its session, on every instance.
    pub async fn publish(&self, event: SessionEvent) {
        match &self.redis {
            Some(bus) => {
                if let Err(err) = bus.publish(&event).await {
                    // Subscribers elsewhere catch up when their listener resyncs; those here
                    // still get the event now.
                    tracing::warn!(error = %err, "could not publish a session event to Redis");
                    self.local.deliver(&event);
                }
            }
            None => self.local.deliver(&event),
        }
    }

    /// Starts listening to a session's events; subscribe before reading the current state so
    /// that no change falls between the two.
    pub fn subscribe(&self, session_id: Uuid) -> EventSubscription {
        let (events, registration) = self.local.register(session_id);
        EventSubscription {
            events,
            resync: self.resync.clone(),
            _registration: registration,
        }
    }

    /// Subscribers currently registered on this instance.
    pub fn subscriber_count(&self) -> usize {
        self.local.len()
    }
}
