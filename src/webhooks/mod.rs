//! Tenant webhooks: endpoints a tenant's admin registers, the events they pick, and the worker
//! that sends what the outbox holds. Events enter the outbox by database triggers inside the
//! transaction that made the change (see the `webhooks` migration), so nothing is lost when a
//! process dies between commit and send; delivery is at least once, and receivers deduplicate
//! on `webhook-id`.

pub mod deliveries;
pub mod endpoints;
pub mod outbox;
pub mod worker;

use std::time::Duration;

/// The events a tenant can pick, by their wire names.
pub const EVENT_TYPES: [&str; 6] = [
    "verification.requested",
    "verification.verified",
    "verification.failed",
    "verification.locked",
    "verification.expired",
    "pool.number_deactivated",
];

/// How the worker sends and retries.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Waits before the 2nd, 3rd, … tries; the last repeats.
    pub retry_delays: Vec<Duration>,
    /// A delivery still failing this long after its event is given up.
    pub give_up_after: Duration,
    /// One try's limit, connecting and answering.
    pub timeout: Duration,
    /// How often the outbox is read when there was nothing to send.
    pub poll_interval: Duration,
    /// Deliveries taken and sent at once.
    pub batch: i64,
    /// Whether this instance sends; events are recorded either way.
    pub send: bool,
}

impl WebhookSettings {
    /// The wait before the try after `attempts` tries.
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let index = usize::try_from(attempts.max(1) - 1).unwrap_or(0);
        self.retry_delays
            .get(index)
            .or(self.retry_delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }

    /// How long a worker holds a delivery it is sending: past this, another worker may retry.
    pub fn lease(&self) -> Duration {
        self.timeout * 3
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_delays: [5, 300, 1800, 7200, 18_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            give_up_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            batch: 32,
            send: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_and_repeat_its_last_step() {
        let settings = WebhookSettings::default();
        assert_eq!(settings.retry_delay(1), Duration::from_secs(5));
        assert_eq!(settings.retry_delay(2), Duration::from_secs(300));
        assert_eq!(settings.retry_delay(6), Duration::from_secs(36_000));
        assert_eq!(settings.retry_delay(60), Duration::from_secs(36_000));
        let total: Duration = (1..=7).map(|n| settings.retry_delay(n)).sum();
        assert!(total > settings.give_up_after, "retries span the whole day");
    }
}
