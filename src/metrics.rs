//! Prometheus metrics through the `metrics` facade, rendered at `GET /metrics`. One recorder
//! per process; every instance in the process renders it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use uuid::Uuid;

/// Histogram buckets, seconds: from 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once); `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .map_err(|err| tracing::warn!(error = %err, "metrics are off"))
                .ok()
        })
        .as_ref()
}

/// The exposition text.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// A requestCall's outcome: `started` or the error code.
pub fn request(tenant: Uuid, outcome: &'static str) {
    counter!("missedcall_requests_total", "tenant" => tenant.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A verify's outcome: `verified`, `wrong_caller_id`, `locked` or the error code.
pub fn verification(tenant: Uuid, outcome: &'static str) {
    counter!("missedcall_verifications_total", "tenant" => tenant.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A call the gateway was asked to place: `placed` or why not, and how long it took.
pub fn call(gateway: &'static str, result: &'static str, elapsed: Duration) {
    counter!("missedcall_calls_total", "gateway" => gateway, "result" => result).increment(1);
    histogram!("missedcall_gateway_request_seconds", "gateway" => gateway)
        .record(elapsed.as_secs_f64());
}

/// A request a rate limit refused.
pub fn rate_limited(layer: &'static str) {
    counter!("missedcall_rate_limited_total", "layer" => layer).increment(1);
}

/// Subscriptions opened (+1) or closed (-1).
pub fn subscriptions(delta: f64) {
    gauge!("missedcall_subscriptions_open").increment(delta);
}

/// One webhook try: `delivered`, `retrying` or `failed` (given up), and how long it took.
pub fn webhook(outcome: &'static str, elapsed: Duration) {
    counter!("missedcall_webhook_deliveries_total", "outcome" => outcome).increment(1);
    histogram!("missedcall_webhook_request_seconds").record(elapsed.as_secs_f64());
}

/// Database connections of this instance's pool.
pub fn database_pool(open: u32, idle: u32) {
    gauge!("missedcall_db_connections", "state" => "open").set(f64::from(open));
    gauge!("missedcall_db_connections", "state" => "idle").set(f64::from(idle));
}

/// One HTTP request: its route, status and duration.
pub fn http(route: String, status: u16, elapsed: Duration) {
    histogram!(
        "missedcall_http_request_seconds",
        "route" => route,
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
}
