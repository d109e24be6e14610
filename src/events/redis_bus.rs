//! Fan-out across instances: events are published on one Redis channel (commands through a
//! bb8-redis pool) and a dedicated pub/sub connection per instance hands them to the local
//! subscribers. The listener reconnects by itself and then asks subscribers to resync.

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::Pool;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{LocalRegistry, SessionEvent};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The Redis side of the event hub.
pub struct RedisBus {
    pool: Pool<RedisConnectionManager>,
    channel: String,
}

impl RedisBus {
    /// Connects and starts the listener; the watch counts reconnections.
    pub async fn start(
        url: &str,
        prefix: &str,
        local: Arc<LocalRegistry>,
    ) -> Result<(Self, watch::Receiver<u64>), redis::RedisError> {
        let manager = RedisConnectionManager::new(url)?;
        let pool = Pool::builder()
            .max_size(8)
            // Fail a publish quickly while Redis is down instead of queueing behind it.
            .connection_timeout(Duration::from_secs(1))
            .build_unchecked(manager);
        let channel = format!("{prefix}:session-events");
        let client = redis::Client::open(url)?;
        let (resync_tx, resync_rx) = watch::channel(0u64);
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        tokio::spawn(listen(
            client,
            channel.clone(),
            Some(pubsub),
            local,
            resync_tx,
        ));
        Ok((Self { pool, channel }, resync_rx))
    }

    /// Publishes one event.
    pub async fn publish(&self, event: &SessionEvent) -> Result<(), String> {
        let payload = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(&mut *conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

async fn listen(
    client: redis::Client,
    channel: String,
    mut connected: Option<redis::aio::PubSub>,
    local: Arc<LocalRegistry>,
    resync: watch::Sender<u64>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let pubsub = match connected.take() {
            Some(pubsub) => pubsub,
            None => match subscribe(&client, &channel).await {
                Ok(pubsub) => {
                    tracing::info!("reconnected to Redis; subscribers resync from the database");
                    resync.send_modify(|generation| *generation += 1);
                    backoff = Duration::from_millis(50);
                    pubsub
                }
                Err(err) => {
                    tracing::debug!(error = %err, "Redis pub/sub reconnect failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => match serde_json::from_slice::<SessionEvent>(message.get_payload_bytes()) {
                        Ok(event) => local.deliver(&event),
                        Err(err) => tracing::warn!(error = %err, "ignoring a malformed session event"),
                    },
                    None => break,
                },
                // Every hub of this instance is gone: the service stopped.
                () = resync.closed() => return,
            }
        }
        tracing::warn!("lost the Redis pub/sub connection; reconnecting");
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}
