//! The worker: takes due deliveries from the outbox, signs and POSTs them, and records each
//! try. Every instance may run one; leases and `SKIP LOCKED` keep them from sending the same
//! delivery at once. On shutdown it stops taking new work once nothing is due (or after a
//! bound), finishing the sends in flight.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;
use uuid::Uuid;

use super::WebhookSettings;
use super::endpoints::open_key;
use super::outbox::{self, Taken};
use crate::crypto::MasterKey;
use crate::db::scope::Database;
use crate::db::webhooks::{self, EndpointRow};
use crate::error::{AppError, AppResult};
use crate::webhook_signing;

/// How long a stopping worker keeps sending what is due.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// What one try came to.
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

/// Sends the outbox's deliveries.
pub struct WebhookWorker {
    db: Database,
    http: reqwest::Client,
    master_key: MasterKey,
    settings: WebhookSettings,
}

impl WebhookWorker {
    pub fn new(
        db: Database,
        master_key: MasterKey,
        settings: WebhookSettings,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("missedcall-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            db,
            http,
            master_key,
            settings,
        })
    }

    /// Sends until `stop` turns true, then flushes what is due and returns.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                self.flush().await;
                return;
            }
            let sent = match self.round().await {
                Ok(sent) => sent,
                Err(err) => {
                    tracing::warn!(error = %err, "webhook round failed");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                    changed = stop.changed() => {
                        if changed.is_err() {
                            self.flush().await;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Sends what is due until nothing is, or for at most [`FLUSH_LIMIT`].
    async fn flush(&self) {
        let started = Instant::now();
        while started.elapsed() < FLUSH_LIMIT {
            match self.round().await {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "webhook flush stopped");
                    return;
                }
            }
        }
    }

    /// Takes one batch of due deliveries and sends them at once; how many it took.
    pub async fn round(&self) -> AppResult<usize> {
        let (taken, endpoints) = {
            let mut conn = self.db.system().await?;
            let taken =
                outbox::take_due(&mut conn, self.settings.batch, self.settings.lease()).await?;
            if taken.is_empty() {
                return Ok(0);
            }
            let ids: Vec<Uuid> = taken.iter().map(|t| t.endpoint_id).collect();
            let endpoints: HashMap<Uuid, EndpointRow> = webhooks::endpoints_by_id(&mut conn, &ids)
                .await?
                .into_iter()
                .map(|row| (row.id, row))
                .collect();
            (taken, endpoints)
        };
        let count = taken.len();
        join_all(
            taken
                .iter()
                .map(|delivery| self.deliver(delivery, endpoints.get(&delivery.endpoint_id))),
        )
        .await;
        Ok(count)
    }

    async fn deliver(&self, delivery: &Taken, endpoint: Option<&EndpointRow>) {
        let started = Instant::now();
        let outcome = match endpoint {
            Some(endpoint) => self.send(delivery, endpoint).await,
            None => Outcome::Failed {
                status: None,
                error: "the endpoint is gone".to_owned(),
            },
        };
        if let Err(err) = self.record(delivery, outcome, started.elapsed()).await {
            // The lease runs out and the delivery is tried again: at least once, never lost.
            tracing::warn!(error = %err, delivery = %delivery.id, "could not record a webhook try");
        }
    }

    async fn send(&self, delivery: &Taken, endpoint: &EndpointRow) -> Outcome {
        let failed = |error: String| Outcome::Failed {
            status: None,
            error,
        };
        let key = match open_key(&self.master_key, endpoint) {
            Ok(key) => key,
            Err(err) => return failed(err),
        };
        let body = match serde_json::to_vec(&delivery.payload) {
            Ok(body) => body,
            Err(err) => return failed(err.to_string()),
        };
        let id = message_id(delivery.event_id);
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json");
        for (name, value) in webhook_signing::headers(&key, &id, timestamp, &body) {
            request = request.header(name, value);
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => {
                Outcome::Delivered(response.status().as_u16())
            }
            Ok(response) => Outcome::Failed {
                status: Some(response.status().as_u16()),
                error: format!("answered HTTP {}", response.status()),
            },
            Err(err) if err.is_timeout() => failed(format!(
                "no answer within {} ms",
                self.settings.timeout.as_millis()
            )),
            Err(err) => failed(format!("request failed: {}", error_chain(&err))),
        }
    }

    async fn record(&self, delivery: &Taken, outcome: Outcome, elapsed: Duration) -> AppResult<()> {
        let mut conn = self.db.system().await?;
        match outcome {
            Outcome::Delivered(status) => {
                outbox::delivered(&mut conn, delivery.id, status).await?;
                crate::metrics::webhook("delivered", elapsed);
            }
            Outcome::Failed { status, error } => {
                let give_up_at = delivery.created_at
                    + chrono::Duration::from_std(self.settings.give_up_after)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                let gave_up = outbox::attempt_failed(
                    &mut conn,
                    delivery.id,
                    status,
                    &error,
                    self.settings.retry_delay(delivery.attempts),
                    give_up_at,
                )
                .await?;
                crate::metrics::webhook(if gave_up { "failed" } else { "retrying" }, elapsed);
                tracing::info!(
                    delivery = %delivery.id,
                    event = %delivery.event_type,
                    attempts = delivery.attempts,
                    gave_up,
                    error = %error,
                    "webhook try failed"
                );
            }
        }
        Ok(())
    }
}

/// The `webhook-id` of an event: the same for every endpoint, every retry and every replay.
pub fn message_id(event_id: Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// An error with its causes, for the delivery log (reqwest hides the interesting part).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
