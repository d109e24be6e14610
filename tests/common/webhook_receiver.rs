//! A local endpoint that receives the service's webhooks: it records every request, answers as
//! the test scripts it, and can go away entirely (connection refused) and come back on the same
//! port.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::TestResult;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers with this status.
    Status(u16),
    /// Answers 500 to the next `n` requests, then 200.
    FailNext(usize),
    /// Never answers (the service times out).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    pub json: Value,
    /// What the receiver answered (0 when it hung).
    pub answered: u16,
}

impl Received {
    pub fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }

    pub fn session_id(&self) -> &str {
        self.json["data"]["sessionId"].as_str().unwrap_or("")
    }
}

#[derive(Default)]
struct Shared {
    mode: Option<Mode>,
    received: Vec<Received>,
}

/// The receiver; `url` stays the same across `stop` and `start`.
pub struct Receiver {
    pub url: String,
    port: u16,
    shared: Arc<Mutex<Shared>>,
    server: Option<(JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
}

async fn receive(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let answer = {
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = match shared.mode.unwrap_or(Mode::Status(200)) {
            Mode::Status(status) => status,
            Mode::FailNext(0) => 200,
            Mode::FailNext(n) => {
                shared.mode = Some(Mode::FailNext(n - 1));
                500
            }
            Mode::Hang => 0,
        };
        shared.received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body,
            answered: answer,
        });
        answer
    };
    if answer == 0 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    StatusCode::from_u16(answer).unwrap_or(StatusCode::OK)
}

impl Receiver {
    pub async fn start_new() -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut receiver = Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            port,
            shared: Arc::default(),
            server: None,
        };
        receiver.serve(listener);
        Ok(receiver)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(self.shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.server = Some((task, stop));
    }

    /// Goes away: connections are refused until `start`.
    pub async fn stop(&mut self) {
        if let Some((mut task, stop)) = self.server.take() {
            // Graceful shutdown also closes idle kept-alive connections, so the service's next
            // request is refused rather than answered on an old connection.
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Comes back on the same port.
    pub async fn start(&mut self) -> TestResult {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.serve(listener);
        Ok(())
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mode = Some(mode);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .received
            .clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `done` holds for the requests received so far.
    pub async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> TestResult<Vec<Received>> {
        for _ in 0..500 {
            let received = self.received();
            if done(&received) {
                return Ok(received);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen: Vec<String> = self
            .received()
            .iter()
            .map(|r| format!("{} {} -> {}", r.event_type(), r.session_id(), r.answered))
            .collect();
        Err(format!("timed out waiting for {what}; received {seen:?}").into())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some((task, _)) = self.server.take() {
            task.abort();
        }
    }
}
