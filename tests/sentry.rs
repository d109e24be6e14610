//! With the `sentry` feature, an error log reaches a Sentry server (here a local one that
//! records what it is sent). `cargo test --features sentry --test sentry`.
#![cfg(feature = "sentry")]

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use missedcall::config::LogFormat;

type Received = Arc<Mutex<Vec<String>>>;

async fn envelope(State(received): State<Received>, body: Bytes) -> &'static str {
    received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(String::from_utf8_lossy(&body).into_owned());
    "{}"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_logs_are_reported_to_sentry() -> Result<(), Box<dyn std::error::Error>> {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new()
        .route("/api/42/envelope/", post(envelope))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dsn = format!("http://public@127.0.0.1:{port}/42");
    let telemetry = tokio::task::spawn_blocking(move || {
        let telemetry = missedcall::telemetry::init_with(LogFormat::Text, Some(dsn));
        tracing::error!(code = "INTERNAL_ERROR", "database went away mid-request");
        telemetry
    })
    .await?;
    // Dropping the guard flushes the queue (blocking, up to two seconds).
    tokio::task::spawn_blocking(move || drop(telemetry)).await?;
    let bodies = received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("database went away mid-request")),
        "sentry received {bodies:?}"
    );
    Ok(())
}
