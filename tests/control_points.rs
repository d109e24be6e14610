//! The tenant's control points: the approval hook (with a local receiver that checks our
//! signatures) and test numbers.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio};
use common::{TestApp, TestResult, TestTenant, assert_code, error_code, free_port, str_at};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const PHONE: &str = "+447400123456";

/// How the receiver answers the next request.
#[derive(Debug, Clone)]
enum Answer {
    Json(Value),
    Status(u16),
    Slow(Duration, Value),
}

/// A request the receiver got, with what it saw of the service at that moment.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    /// Calls the simulator had placed to the requested number when the hook was asked.
    calls_before: usize,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
    service: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Receiver {
    url: String,
    shared: Arc<Shared>,
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let phone = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["phoneNumber"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let service = lock(&shared.service).clone();
    let calls_before = match reqwest::Client::new()
        .get(format!("{service}/simulator/calls"))
        .query(&[("to", phone.as_str())])
        .send()
        .await
    {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0),
        Err(_) => 0,
    };
    lock(&shared.received).push(Received {
        headers,
        body,
        calls_before,
    });
    let answer = lock(&shared.script)
        .pop_front()
        .unwrap_or(Answer::Json(json!({"allow": true})));
    match answer {
        Answer::Json(value) => axum::Json(value).into_response(),
        Answer::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Answer::Slow(delay, value) => {
            tokio::time::sleep(delay).await;
            axum::Json(value).into_response()
        }
    }
}

impl Receiver {
    async fn start() -> TestResult<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/approve", post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/approve", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, shared })
    }

    fn watch(&self, service: &str) {
        *lock(&self.shared.service) = service.to_owned();
    }

    fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        lock(&self.shared.script).extend(answers);
    }

    fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }
}

/// Sets the hook and returns its secret.
async fn set_hook(
    app: &TestApp,
    tenant: &TestTenant,
    url: &str,
    timeout_ms: u32,
    on_failure: &str,
) -> TestResult<String> {
    let body = app
        .gql(
            Some(&tenant.sk),
            &format!(
                "mutation($u: String!) {{ setApprovalHook(input: {{url: $u, timeoutMs: {timeout_ms}, onFailure: {on_failure}}}) {{ secret tenant {{ approvalHook {{ url timeoutMs onFailure }} }} }} }}"
            ),
            json!({"u": url}),
        )
        .await?;
    assert_eq!(
        body["data"]["setApprovalHook"]["tenant"]["approvalHook"]["url"], url,
        "{body}"
    );
    Ok(str_at(&body, "/data/setApprovalHook/secret").unwrap_or_default())
}

/// Checks a Standard Webhooks signature independently of the service's code.
fn signature_valid(secret: &str, received: &Received) -> bool {
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let id = received.header("webhook-id");
    let timestamp = received.header("webhook-timestamp");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .header("webhook-signature")
        .split(' ')
        .any(|candidate| candidate == expected)
}

async fn request_with_metadata(
    app: &TestApp,
    key: &str,
    phone: &str,
    metadata: Value,
) -> TestResult<Value> {
    app.gql(
        Some(key),
        "mutation($p: String!, $m: JSON) { requestCall(input: {phoneNumber: $p, appSignature: \"FA+9qCX9VSu\", metadata: $m}) { sessionId sessionToken status callerIdPattern } }",
        json!({"p": phone, "m": metadata}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_request_is_signed_and_called_only_after_approval() -> TestResult {
    let receiver = Receiver::start().await?;
    let app = TestApp::spawn().await?;
    receiver.watch(&app.base);
    let acme = app.tenant("acme").await?;
    let secret = set_hook(&app, &acme, &receiver.url, 2000, "DENY").await?;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let body = request_with_metadata(
        &app,
        &acme.pk,
        PHONE,
        json!({"userId": "u-42", "plan": "pro"}),
    )
    .await?;
    let session_id =
        str_at(&body, "/data/requestCall/sessionId").ok_or_else(|| format!("{body}"))?;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let hook = &received[0];
    assert!(
        signature_valid(&secret, hook),
        "bad signature: {:?}",
        hook.headers
    );
    assert!(!signature_valid(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        hook
    ));
    let timestamp: i64 = hook.header("webhook-timestamp").parse()?;
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 30);
    assert_eq!(hook.calls_before, 0, "the call was placed before approval");
    let payload = hook.json();
    assert_eq!(payload["type"], "verification.approval");
    assert_eq!(payload["sessionId"], session_id);
    assert_eq!(payload["phoneNumber"], PHONE);
    assert_eq!(payload["country"], "GB");
    assert_eq!(payload["numberType"], "MOBILE");
    assert_eq!(payload["clientIp"], "127.0.0.1");
    assert_eq!(payload["appSignature"], "FA+9qCX9VSu");
    assert_eq!(
        payload["metadata"],
        json!({"userId": "u-42", "plan": "pro"})
    );
    assert_eq!(payload["test"], false);
    app.incoming_caller_id(PHONE, &session_id).await?;
    let approved = app
        .count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE kind = 'request.approved' \
             AND detail->>'sessionId' = '{session_id}'"
        ))
        .await?;
    assert_eq!(approved, 1);
    let stored = app
        .count(&format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE id = '{session_id}' \
             AND metadata->>'userId' = 'u-42'"
        ))
        .await?;
    assert_eq!(stored, 1);

    // The secret is shown once; setting the hook again keeps it unless rotated.
    let again = set_hook(&app, &acme, &receiver.url, 1500, "ALLOW").await?;
    assert_eq!(again, "");
    request_with_metadata(&app, &acme.pk, PHONE, Value::Null).await?;
    assert!(signature_valid(&secret, &receiver.received()[1]));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_request_places_no_call_and_tells_the_app_why() -> TestResult {
    let receiver = Receiver::start().await?;
    let app = TestApp::spawn().await?;
    receiver.watch(&app.base);
    let acme = app.tenant("acme").await?;
    set_hook(&app, &acme, &receiver.url, 2000, "ALLOW").await?;
    receiver.script([Answer::Json(
        json!({"allow": false, "reason": "too many sign-ups from this device"}),
    )]);
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&body, "REQUEST_DENIED");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"],
        "too many sign-ups from this device"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        0
    );
    let calls: Value = app
        .http
        .get(format!(
            "{}/simulator/calls?to={}",
            app.base, "%2B447400123456"
        ))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(calls, json!([]));
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE kind = 'request.denied'")
            .await?,
        1
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hook_may_override_the_ring_timeout() -> TestResult {
    let receiver = Receiver::start().await?;
    let fake = FakeTwilio::start().await?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_env(&[
        ("MISSEDCALL_GATEWAY", "twilio"),
        ("MISSEDCALL_TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("MISSEDCALL_TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("MISSEDCALL_TWILIO_API_BASE", fake.base.as_str()),
        ("MISSEDCALL_LISTEN", listen.as_str()),
        ("MISSEDCALL_PUBLIC_URL", public.as_str()),
    ])
    .await?;
    let acme = app.tenant("acme").await?;
    set_hook(&app, &acme, &receiver.url, 2000, "DENY").await?;
    receiver.script([
        Answer::Json(json!({"allow": true, "ringTimeoutSeconds": 17})),
        Answer::Json(json!({"allow": true})),
        Answer::Json(json!({"allow": true, "ringTimeoutSeconds": 99})),
    ]);
    app.start_session(&acme.pk, PHONE).await?;
    app.start_session(&acme.pk, "+447400123457").await?;
    let calls = fake.calls();
    assert_eq!(calls[0].field("Timeout"), Some("17"));
    assert_eq!(
        calls[1].field("Timeout"),
        Some("6"),
        "the tenant's own ring timeout"
    );
    // An out-of-range override is a hook failure: the DENY policy applies.
    assert_code(
        &app.request_call(&acme.pk, "+447400123458").await?,
        "REQUEST_DENIED",
    );
    assert_eq!(fake.calls().len(), 2);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_and_errors_follow_the_tenants_policy() -> TestResult {
    let receiver = Receiver::start().await?;
    let app = TestApp::spawn().await?;
    receiver.watch(&app.base);
    let strict = app.tenant("strict").await?;
    let lenient = app.tenant("lenient").await?;
    set_hook(&app, &strict, &receiver.url, 200, "DENY").await?;
    set_hook(&app, &lenient, &receiver.url, 200, "ALLOW").await?;
    let slow = Answer::Slow(Duration::from_millis(800), json!({"allow": true}));
    let failures = [
        slow,
        Answer::Status(500),
        Answer::Json(json!({"nonsense": 1})),
        Answer::Status(302),
    ];
    for (n, failure) in failures.into_iter().enumerate() {
        receiver.script([failure.clone()]);
        let body = app
            .request_call(&strict.pk, &format!("+44740012300{n}"))
            .await?;
        assert_code(&body, "REQUEST_DENIED");
        receiver.script([failure]);
        let body = app
            .request_call(&lenient.pk, &format!("+44740012310{n}"))
            .await?;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let with_failure = app
        .count("SELECT count(*) AS n FROM audit_events WHERE detail ? 'hookFailure'")
        .await?;
    assert_eq!(with_failure, 8);
    // An unreachable hook counts as a failure too.
    set_hook(
        &app,
        &strict,
        &format!("http://127.0.0.1:{}/x", free_port()?),
        200,
        "DENY",
    )
    .await?;
    assert_code(
        &app.request_call(&strict.pk, "+447400123499").await?,
        "REQUEST_DENIED",
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_hook_opens_its_circuit_and_closes_after_recovery() -> TestResult {
    let receiver = Receiver::start().await?;
    let app = TestApp::spawn_env(&[
        ("MISSEDCALL_APPROVAL_BREAKER_THRESHOLD", "3"),
        ("MISSEDCALL_APPROVAL_BREAKER_OPEN_MS", "400"),
    ])
    .await?;
    receiver.watch(&app.base);
    let acme = app.tenant("acme").await?;
    let other = app.tenant("other").await?;
    set_hook(&app, &acme, &receiver.url, 500, "ALLOW").await?;
    set_hook(&app, &other, &receiver.url, 500, "DENY").await?;
    receiver.script([
        Answer::Status(503),
        Answer::Status(503),
        Answer::Status(503),
    ]);
    for n in 0..3 {
        app.start_session(&acme.pk, &format!("+44740012300{n}"))
            .await?;
    }
    assert_eq!(receiver.received().len(), 3);
    // Open: the hook is not asked; the policy answers at once.
    for n in 3..6 {
        app.start_session(&acme.pk, &format!("+44740012300{n}"))
            .await?;
    }
    assert_eq!(receiver.received().len(), 3);
    // Another tenant's hook has its own circuit.
    receiver.script([Answer::Json(json!({"allow": true}))]);
    app.start_session(&other.pk, "+447400123010").await?;
    assert_eq!(receiver.received().len(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.script([
        Answer::Json(json!({"allow": false, "reason": "back"})),
        Answer::Json(json!({"allow": false, "reason": "back"})),
    ]);
    assert_code(
        &app.request_call(&acme.pk, "+447400123007").await?,
        "REQUEST_DENIED",
    );
    assert_code(
        &app.request_call(&acme.pk, "+447400123008").await?,
        "REQUEST_DENIED",
    );
    assert_eq!(receiver.received().len(), 6, "the circuit did not close");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_settings_refuse_bad_input() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    for (input, code) in [
        ("{url: \"ftp://example.com/x\"}", "INVALID_INPUT"),
        ("{url: \"not a url\"}", "INVALID_INPUT"),
        ("{url: \"https://user:pw@example.com/x\"}", "INVALID_INPUT"),
        (
            "{url: \"https://example.com/x\", timeoutMs: 50}",
            "INVALID_INPUT",
        ),
        (
            "{url: \"https://example.com/x\", timeoutMs: 20000}",
            "INVALID_INPUT",
        ),
    ] {
        let body = app
            .gql(
                Some(&acme.sk),
                &format!("mutation {{ setApprovalHook(input: {input}) {{ secret }} }}"),
                json!({}),
            )
            .await?;
        assert_eq!(error_code(&body).as_deref(), Some(code), "{input}: {body}");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM tenants WHERE approval_url IS NOT NULL")
            .await?,
        0
    );
    for metadata in [
        json!([1, 2]),
        json!("text"),
        json!({"blob": "x".repeat(3000)}),
    ] {
        let body = request_with_metadata(&app, &acme.pk, PHONE, metadata).await?;
        assert_code(&body, "INVALID_INPUT");
    }
    let body = app
        .gql(
            Some(&acme.pk),
            "mutation { removeApprovalHook { id } }",
            json!({}),
        )
        .await?;
    assert_code(&body, "FORBIDDEN");
    app.stop().await;
    Ok(())
}

async fn add_test_number(
    app: &TestApp,
    tenant: &TestTenant,
    phone: &str,
    caller_id: &str,
) -> TestResult<Value> {
    app.gql(
        Some(&tenant.sk),
        "mutation($p: String!, $c: String!) { addTestNumber(input: {phoneNumber: $p, callerId: $c, label: \"app review\"}) { id phoneNumber callerId } }",
        json!({"p": phone, "c": caller_id}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn test_numbers_verify_without_a_call() -> TestResult {
    let app = TestApp::spawn_env(&[("MISSEDCALL_LIMIT_PHONE_PER_HOUR", "2")]).await?;
    let acme = app.tenant("acme").await?;
    let added = add_test_number(&app, &acme, "+44 7400 123456", "+15005550006").await?;
    assert_eq!(
        added["data"]["addTestNumber"]["phoneNumber"], PHONE,
        "{added}"
    );
    let body = app.request_call(&acme.pk, PHONE).await?;
    let started = &body["data"]["requestCall"];
    assert_eq!(started["status"], "CALL_ENDED", "{body}");
    assert_eq!(started["callerIdPattern"], r"^\+15005550006$");
    let id = str_at(&body, "/data/requestCall/sessionId").ok_or("id")?;
    let token = str_at(&body, "/data/requestCall/sessionToken").ok_or("token")?;
    let calls: Value = app
        .http
        .get(format!("{}/simulator/calls?to=%2B447400123456", app.base))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(calls, json!([]), "a test number was called");
    let wrong = app.verify(&acme.pk, &id, &token, "+15005550007").await?;
    assert_eq!(wrong["data"]["verify"]["verified"], false);
    let verified = app.verify(&acme.pk, &id, &token, "+15005550006").await?;
    let jwt = str_at(&verified, "/data/verify/token").ok_or_else(|| format!("{verified}"))?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).ok_or("jwt")?)?,
    )?;
    assert_eq!(claims["test"], true);

    // Every limit still applies: the phone limit is 2 an hour.
    app.start_session(&acme.pk, PHONE).await?;
    assert_code(&app.request_call(&acme.pk, PHONE).await?, "RATE_LIMITED");
    // Marked in sessions, left out of statistics, flagged in the audit log.
    let listed = app
        .gql(
            Some(&acme.sk),
            "{ sessions { edges { node { test phoneNumber } } } }",
            json!({}),
        )
        .await?;
    assert!(
        listed["data"]["sessions"]["edges"]
            .as_array()
            .ok_or("edges")?
            .iter()
            .all(|e| e["node"]["test"] == true),
        "{listed}"
    );
    let now = chrono::Utc::now();
    let stats = app
        .gql(
            Some(&acme.sk),
            "query($f: DateTime!, $t: DateTime!) { statistics(from: $f, to: $t) { requests verified testRequests } }",
            json!({"f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await?;
    assert_eq!(
        stats["data"]["statistics"],
        json!({"requests": 0, "verified": 0, "testRequests": 2})
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE kind = 'call.skipped'")
            .await?,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE kind = 'call.requested' AND detail->>'test' = 'true'")
            .await?,
        2
    );

    // Another tenant's test number is an ordinary number for everyone else.
    let other = app.tenant("other").await?;
    let (other_id, _) = app.start_session(&other.pk, PHONE).await?;
    assert_eq!(
        app.incoming_caller_id(PHONE, &other_id).await?,
        "+14155550100"
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn test_numbers_obey_the_rules_and_the_setting() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    add_test_number(&app, &acme, PHONE, "+15005550006").await?;
    // The country whitelist still applies.
    let body = app
        .gql(
            Some(&acme.sk),
            "mutation { setAllowedCountries(countryCodes: [\"US\"]) }",
            json!({}),
        )
        .await?;
    assert!(body.get("errors").is_none(), "{body}");
    assert_code(
        &app.request_call(&acme.pk, PHONE).await?,
        "COUNTRY_NOT_ALLOWED",
    );
    app.gql(
        Some(&acme.sk),
        "mutation { setAllowedCountries(countryCodes: []) }",
        json!({}),
    )
    .await?;
    // Turned off, the number is called like any other and the test caller ID does not verify.
    app.gql(
        Some(&acme.sk),
        "mutation { updateTenantSettings(input: {testNumbersEnabled: false}) { settings { testNumbersEnabled } } }",
        json!({}),
    )
    .await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    assert_eq!(app.incoming_caller_id(PHONE, &id).await?, "+14155550100");
    let body = app.verify(&acme.pk, &id, &token, "+15005550006").await?;
    assert_eq!(body["data"]["verify"]["verified"], false);

    // Bad input.
    for (phone, caller, code) in [
        ("12345", "+15005550006", "INVALID_PHONE_NUMBER"),
        ("+447400123457", "nope", "INVALID_PHONE_NUMBER"),
        (PHONE, "+15005550006", "CONFLICT"),
    ] {
        let body = add_test_number(&app, &acme, phone, caller).await?;
        assert_eq!(error_code(&body).as_deref(), Some(code), "{body}");
    }
    let listed = app
        .gql(
            Some(&acme.sk),
            "{ testNumbers { id phoneNumber } }",
            json!({}),
        )
        .await?;
    let test_id = str_at(&listed, "/data/testNumbers/0/id").ok_or("id")?;
    assert_eq!(
        listed["data"]["testNumbers"].as_array().map(Vec::len),
        Some(1)
    );
    // Another tenant cannot see or remove it.
    let other = app.tenant("other").await?;
    let body = app
        .gql(
            Some(&other.sk),
            "mutation($id: ID!) { removeTestNumber(id: $id) { id } }",
            json!({"id": test_id}),
        )
        .await?;
    assert_code(&body, "NOT_FOUND");
    let body = app
        .gql(Some(&other.sk), "{ testNumbers { id } }", json!({}))
        .await?;
    assert_eq!(body["data"]["testNumbers"], json!([]));
    let body = app
        .gql(
            Some(&acme.sk),
            "mutation($id: ID!) { removeTestNumber(id: $id) { phoneNumber } }",
            json!({"id": test_id}),
        )
        .await?;
    assert_eq!(body["data"]["removeTestNumber"]["phoneNumber"], PHONE);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn test_numbers_are_asked_about_too() -> TestResult {
    let receiver = Receiver::start().await?;
    let app = TestApp::spawn().await?;
    receiver.watch(&app.base);
    let acme = app.tenant("acme").await?;
    add_test_number(&app, &acme, PHONE, "+15005550006").await?;
    set_hook(&app, &acme, &receiver.url, 2000, "DENY").await?;
    app.start_session(&acme.pk, PHONE).await?;
    assert_eq!(receiver.received()[0].json()["test"], true);
    app.stop().await;
    Ok(())
}
