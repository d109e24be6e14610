//! Subscribers of this process, by session, each with a bounded queue: a subscriber that does
//! not keep up is dropped instead of slowing delivery to the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::SessionEvent;

/// Events queued for one subscriber before it counts as too slow. A session has at most a
/// handful of status changes, so only a stuck subscriber fills this.
const SUBSCRIBER_QUEUE: usize = 16;

type Subscribers = HashMap<Uuid, Vec<(u64, mpsc::Sender<SessionEvent>)>>;

/// The local subscriber table.
#[derive(Default)]
pub struct LocalRegistry {
    subscribers: Mutex<Subscribers>,
    next_id: AtomicU64,
}

/// Removes its subscriber from the table when dropped.
pub struct Registration {
    registry: Arc<LocalRegistry>,
    session_id: Uuid,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(self.session_id, self.id);
    }
}

impl LocalRegistry {
    fn table(&self) -> MutexGuard<'_, Subscribers> {
        match self.subscribers.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Adds a subscriber for the session.
    pub fn register(
        self: &Arc<Self>,
        session_id: Uuid,
    ) -> (mpsc::Receiver<SessionEvent>, Registration) {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.table().entry(session_id).or_default().push((id, tx));
        (
            rx,
            Registration {
                registry: self.clone(),
                session_id,
                id,
            },
        )
    }

    fn remove(&self, session_id: Uuid, id: u64) {
        let mut table = self.table();
        if let Some(list) = table.get_mut(&session_id) {
            list.retain(|(other, _)| *other != id);
            if list.is_empty() {
                table.remove(&session_id);
            }
        }
    }

    /// Hands the event to the session's subscribers without waiting for any of them.
    pub fn deliver(&self, event: &SessionEvent) {
        let mut table = self.table();
        let Some(list) = table.get_mut(&event.session_id) else {
            return;
        };
        list.retain(|(_, tx)| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(session = %event.session_id, "dropping a subscriber that fell behind");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            table.remove(&event.session_id);
        }
    }

    /// Subscribers registered.
    pub fn len(&self) -> usize {
        self.table().values().map(Vec::len).sum()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(session_id: Uuid, status: &str) -> SessionEvent {
        SessionEvent {
            session_id,
            status: status.into(),
            at: chrono::Utc::now(),
            reason: None,
        }
    }

    #[tokio::test]
    async fn delivers_to_the_sessions_subscribers_only() {
        let registry = Arc::new(LocalRegistry::default());
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (mut rx_a, _ga) = registry.register(a);
        let (mut rx_b, _gb) = registry.register(b);
        registry.deliver(&event(a, "RINGING"));
        assert_eq!(rx_a.recv().await.map(|e| e.status), Some("RINGING".into()));
        assert!(rx_b.try_recv().is_err());
        assert_eq!(registry.len(), 2);
    }

    #[tokio::test]
    async fn a_stuck_subscriber_is_dropped_and_others_keep_receiving() {
        let registry = Arc::new(LocalRegistry::default());
        let session = Uuid::new_v4();
        let (mut stuck, _g1) = registry.register(session);
        let (mut live, _g2) = registry.register(session);
        for i in 0..=SUBSCRIBER_QUEUE {
            registry.deliver(&event(session, &format!("E{i}")));
            assert!(live.recv().await.is_some());
        }
        // The stuck one got its queue full and was cut off: it drains, then sees the end.
        let mut drained = 0;
        while stuck.recv().await.is_some() {
            drained += 1;
        }
        assert_eq!(drained, SUBSCRIBER_QUEUE);
        registry.deliver(&event(session, "LAST"));
        assert_eq!(live.recv().await.map(|e| e.status), Some("LAST".into()));
    }

    #[test]
    fn registrations_clean_up_on_drop() {
        let registry = Arc::new(LocalRegistry::default());
        let (_rx, guard) = registry.register(Uuid::new_v4());
        assert_eq!(registry.len(), 1);
        drop(guard);
        assert!(registry.is_empty());
    }
}
