//! A local HTTP server that behaves like Twilio's Calls API: it checks the method, path, Basic
//! auth and form fields, answers with Twilio-shaped JSON (or Twilio-shaped errors, as a test
//! scripts them), and posts status callbacks signed like Twilio back to the service.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::json;

use super::TestResult;

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";

/// How the fake answers the next call creation.
#[derive(Debug, Clone)]
pub enum Next {
    Created,
    Error {
        http: u16,
        code: u32,
    },
    /// Waits, then creates the call.
    Slow(Duration),
}

/// A create-call request as the fake received it.
#[derive(Debug, Clone)]
pub struct ReceivedCall {
    pub sid: Option<String>,
    pub form: Vec<(String, String)>,
}

impl ReceivedCall {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An update of a call (its SID, its form), as a hang-up sends it.
pub type CallUpdate = (String, Vec<(String, String)>);

#[derive(Default)]
struct Shared {
    /// Every create-call request, refused ones included.
    attempts: AtomicUsize,
    script: Mutex<VecDeque<Next>>,
    calls: Mutex<Vec<ReceivedCall>>,
    updates: Mutex<Vec<CallUpdate>>,
}

pub struct FakeTwilio {
    pub base: String,
    shared: Arc<Shared>,
    http: reqwest::Client,
}

/// A poisoned lock only means another test thread panicked; its data is still readable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn twilio_error(http: u16, code: u32, message: &str) -> Response {
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": http,
    });
    (status, axum::Json(body)).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

async fn create_call(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.attempts.fetch_add(1, Ordering::SeqCst);
    if account != ACCOUNT_SID || !authorized(&headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if !is_form(&headers) {
        return twilio_error(400, 21100, "Form body expected");
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let received = ReceivedCall { sid: None, form };
    for required in [
        "To",
        "From",
        "Twiml",
        "Timeout",
        "StatusCallback",
        "StatusCallbackMethod",
    ] {
        if received.field(required).is_none() {
            lock(&shared.calls).push(received);
            return twilio_error(400, 21201, "Missing required parameter");
        }
    }
    let next = lock(&shared.script).pop_front().unwrap_or(Next::Created);
    match next {
        Next::Error { http, code } => {
            lock(&shared.calls).push(received);
            twilio_error(http, code, "scripted failure")
        }
        Next::Slow(delay) => {
            lock(&shared.calls).push(received.clone());
            tokio::time::sleep(delay).await;
            created(&shared, received, true)
        }
        Next::Created => created(&shared, received, false),
    }
}

fn created(shared: &Shared, mut received: ReceivedCall, already_recorded: bool) -> Response {
    let sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    received.sid = Some(sid.clone());
    let body = json!({
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": received.field("To"),
        "from": received.field("From"),
        "status": "queued",
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"),
    });
    if !already_recorded {
        lock(&shared.calls).push(received);
    }
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn update_call(
    State(shared): State<Arc<Shared>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if account != ACCOUNT_SID || !authorized(&headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let call = call.trim_end_matches(".json").to_owned();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    lock(&shared.updates).push((call.clone(), form));
    (
        StatusCode::OK,
        axum::Json(json!({"sid": call, "status": "canceled"})),
    )
        .into_response()
}

impl FakeTwilio {
    pub async fn start() -> TestResult<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call}",
                post(update_call),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base,
            shared,
            http: reqwest::Client::new(),
        })
    }

    /// Queues answers for the next call creations.
    pub fn script(&self, answers: impl IntoIterator<Item = Next>) {
        lock(&self.shared.script).extend(answers);
    }

    /// Create-call requests received, including those refused for bad credentials.
    pub fn attempts(&self) -> usize {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> Vec<ReceivedCall> {
        lock(&self.shared.calls).clone()
    }

    pub fn updates(&self) -> Vec<CallUpdate> {
        lock(&self.shared.updates).clone()
    }

    /// The created call whose `To` is `phone`, newest first.
    pub fn call_to(&self, phone: &str) -> Option<ReceivedCall> {
        self.calls()
            .into_iter()
            .rev()
            .find(|c| c.field("To") == Some(phone) && c.sid.is_some())
    }

    /// Posts a status callback for `call` as Twilio would: to its StatusCallback URL, signed.
    pub async fn callback(&self, call: &ReceivedCall, status: &str) -> TestResult<StatusCode> {
        let url = call
            .field("StatusCallback")
            .ok_or("no callback URL")?
            .to_owned();
        let params = self.callback_params(call, status);
        let signature = missedcall::gateway::twilio::signature::compute(AUTH_TOKEN, &url, &params);
        self.post_callback(&url, &params, Some(&signature)).await
    }

    pub fn callback_params(&self, call: &ReceivedCall, status: &str) -> Vec<(String, String)> {
        [
            ("AccountSid", ACCOUNT_SID),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", call.sid.as_deref().unwrap_or("")),
            ("CallStatus", status),
            ("Direction", "outbound-api"),
            ("From", call.field("From").unwrap_or("")),
            ("To", call.field("To").unwrap_or("")),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    pub async fn post_callback(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> TestResult<StatusCode> {
        let mut request = self.http.post(url).form(params);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        Ok(request.send().await?.status())
    }
}
