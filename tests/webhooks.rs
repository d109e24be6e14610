//! Tenant webhooks against a local receiver: signatures, every event type, retries, order per
//! session, a receiver that is gone for an hour, giving up after a day, replays, and a sender
//! killed mid-delivery.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::webhook_receiver::{Mode, Received, Receiver};
use common::{TestApp, TestResult, TestTenant, assert_code, str_at};
use missedcall::db::scope::Database;
use missedcall::gateway::{CallEvent, CallEventReport};
use missedcall::webhook_signing;
use missedcall::webhooks::WebhookSettings;
use missedcall::webhooks::worker::WebhookWorker;
use serde_json::{Value, json};
use tokio::sync::watch;

const ALL_EVENTS: &str = "[VERIFICATION_REQUESTED, VERIFICATION_VERIFIED, VERIFICATION_FAILED, \
                          VERIFICATION_LOCKED, VERIFICATION_EXPIRED, POOL_NUMBER_DEACTIVATED]";

/// Fast polling and retries, so a test sees many tries in little time.
const FAST: [(&str, &str); 2] = [
    ("MISSEDCALL_WEBHOOK_POLL_INTERVAL_MS", "20"),
    ("MISSEDCALL_WEBHOOK_RETRY_DELAYS_MS", "50"),
];

fn env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    // The first setting of a name wins: the test's own come first.
    extra.iter().copied().chain(FAST.iter().copied()).collect()
}

/// Registers an endpoint; returns its id and secret.
async fn endpoint(
    app: &TestApp,
    tenant: &TestTenant,
    url: &str,
    events: &str,
) -> TestResult<(String, String)> {
    let body = app
        .gql(
            Some(&tenant.sk),
            &format!(
                "mutation($url: String!) {{ createWebhookEndpoint(input: {{url: $url, events: {events}, \
                 description: \"tests\"}}) {{ endpoint {{ id events enabled }} secret }} }}"
            ),
            json!({"url": url}),
        )
        .await?;
    let id = str_at(&body, "/data/createWebhookEndpoint/endpoint/id")
        .ok_or_else(|| format!("no endpoint: {body}"))?;
    let secret = str_at(&body, "/data/createWebhookEndpoint/secret").ok_or("no secret")?;
    Ok((id, secret))
}

/// One whole flow; returns the session id.
async fn verified_session(app: &TestApp, tenant: &TestTenant, phone: &str) -> TestResult<String> {
    let (session, token) = app.start_session(&tenant.pk, phone).await?;
    let caller_id = app.incoming_caller_id(phone, &session).await?;
    let body = app.verify(&tenant.pk, &session, &token, &caller_id).await?;
    assert_eq!(body["data"]["verify"]["verified"], json!(true), "{body}");
    Ok(session)
}

/// Checks the Standard Webhooks headers of a request against the endpoint's secret.
#[track_caller]
fn assert_signed(received: &Received, secret: &str) {
    let key = webhook_signing::secret_key(secret).unwrap_or_default();
    let timestamp: i64 = received.timestamp.parse().unwrap_or(0);
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 300,
        "timestamp {timestamp} is not now"
    );
    assert_eq!(
        received.signature,
        webhook_signing::sign(&key, &received.id, timestamp, &received.body),
        "signature of {}",
        received.id
    );
    let hex = received.id.strip_prefix("msg_").unwrap_or("");
    assert!(hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()));
}

/// The event types each session's accepted requests carried, in arrival order.
fn by_session(received: &[Received]) -> HashMap<String, Vec<String>> {
    let mut sessions: HashMap<String, Vec<String>> = HashMap::new();
    for r in received.iter().filter(|r| r.answered == 200) {
        sessions
            .entry(r.session_id().to_owned())
            .or_default()
            .push(r.event_type().to_owned());
    }
    sessions
}

/// Polls a count until `done` holds (for up to ten seconds); the last count.
async fn eventually(app: &TestApp, sql: &str, done: impl Fn(i64) -> bool) -> TestResult<i64> {
    let mut n = app.count(sql).await?;
    for _ in 0..500 {
        if done(n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        n = app.count(sql).await?;
    }
    Ok(n)
}

async fn deliveries(app: &TestApp, tenant: &TestTenant, filter: Value) -> TestResult<Vec<Value>> {
    let body = app
        .gql(
            Some(&tenant.sk),
            "query($filter: WebhookDeliveryFilterInput) { webhookDeliveries(filter: $filter, first: 100) { \
             edges { node { id messageId eventType sessionId status attempts lastStatusCode lastError \
             deliveredAt nextAttemptAt payload } } } }",
            json!({"filter": filter}),
        )
        .await?;
    body.pointer("/data/webhookDeliveries/edges")
        .and_then(Value::as_array)
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .ok_or_else(|| format!("no deliveries: {body}").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_reaches_its_endpoints_signed_and_in_order() -> TestResult {
    // A long ring keeps calls in CALLING, so a failed call event can still apply.
    let app = TestApp::spawn_env(&env(&[("MISSEDCALL_SIMULATOR_RING_DELAY_MS", "60000")])).await?;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    let (_, secret) = endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let only_verified = Receiver::start_new().await?;
    let (_, secret_verified) =
        endpoint(&app, &tenant, &only_verified.url, "[VERIFICATION_VERIFIED]").await?;

    let verified = verified_session(&app, &tenant, "+447400100001").await?;

    let (locked, token) = app.start_session(&tenant.pk, "+447400100002").await?;
    for _ in 0..3 {
        app.verify(&tenant.pk, &locked, &token, "+14155550999")
            .await?;
    }

    let (expired, _) = app.start_session(&tenant.pk, "+447400100003").await?;
    app.sql(&format!(
        "UPDATE verification_sessions SET expires_at = now() - interval '1 second' WHERE id = '{expired}'"
    ))
    .await?;

    let (failed, _) = app.start_session(&tenant.pk, "+447400100004").await?;
    let call_id: String = {
        let mut conn = app.db.conn().await?;
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use missedcall::db::schema::verification_sessions as vs;
        vs::table
            .find(uuid::Uuid::parse_str(&failed)?)
            .select(vs::gateway_call_id)
            .first::<Option<String>>(&mut conn)
            .await?
            .ok_or("no call id")?
    };
    let state = &app.server.as_ref().ok_or("no server")?.state;
    state
        .verification
        .apply_call_event(&CallEventReport {
            gateway: "simulator",
            call_id,
            session_id: uuid::Uuid::parse_str(&failed)?,
            event: CallEvent::Failed,
        })
        .await?;

    let pool_id = {
        let mut conn = app.db.conn().await?;
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use missedcall::db::schema::pool_numbers as pn;
        pn::table
            .filter(pn::tenant_id.eq(tenant.id))
            .select(pn::id)
            .first::<uuid::Uuid>(&mut conn)
            .await?
    };
    let body = app
        .gql(
            Some(&tenant.sk),
            "mutation($id: ID!) { deactivatePoolNumber(id: $id) { active } }",
            json!({"id": pool_id.to_string()}),
        )
        .await?;
    assert_eq!(
        body["data"]["deactivatePoolNumber"]["active"],
        json!(false),
        "{body}"
    );

    let received = receiver
        .wait_for("every event", |r| {
            let sessions = by_session(r);
            sessions.get(&verified).map(Vec::len) == Some(2)
                && sessions.get(&locked).map(Vec::len) == Some(2)
                && sessions.get(&expired).map(Vec::len) == Some(2)
                && sessions.get(&failed).map(Vec::len) == Some(2)
                && r.iter()
                    .any(|r| r.event_type() == "pool.number_deactivated")
        })
        .await?;
    let sessions = by_session(&received);
    for (session, last) in [
        (&verified, "verification.verified"),
        (&locked, "verification.locked"),
        (&expired, "verification.expired"),
        (&failed, "verification.failed"),
    ] {
        assert_eq!(
            sessions[session.as_str()],
            vec!["verification.requested".to_owned(), last.to_owned()],
            "session {session}"
        );
    }
    assert_eq!(received.len(), 9, "each event once");
    for r in &received {
        assert_signed(r, &secret);
        if r.event_type().starts_with("verification.") {
            assert_eq!(r.json["data"]["country"], json!("GB"), "{}", r.json);
        }
    }
    let pool = received
        .iter()
        .find(|r| r.event_type() == "pool.number_deactivated")
        .ok_or("no pool event")?;
    assert_eq!(
        pool.json["data"]["poolNumberId"],
        json!(pool_id.to_string())
    );
    let verified_event = received
        .iter()
        .find(|r| r.event_type() == "verification.verified")
        .ok_or("no verified event")?;
    assert_eq!(verified_event.json["data"]["status"], json!("VERIFIED"));
    assert_eq!(
        verified_event.json["data"]["phoneNumber"],
        json!("+447400100001")
    );

    // The second endpoint heard only what it picked, under the same message id.
    let others = only_verified
        .wait_for("the verified event", |r| !r.is_empty())
        .await?;
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].id, verified_event.id);
    assert_signed(&others[0], &secret_verified);

    // The admin sees every delivery, delivered at the first try.
    let listed = deliveries(&app, &tenant, json!({"status": "DELIVERED"})).await?;
    assert_eq!(listed.len(), 10);
    assert!(
        listed
            .iter()
            .all(|d| d["attempts"] == json!(1) && d["lastStatusCode"] == json!(200))
    );
    let for_session = deliveries(
        &app,
        &tenant,
        json!({"sessionId": verified, "eventType": "VERIFICATION_VERIFIED"}),
    )
    .await?;
    assert_eq!(for_session.len(), 2, "one per endpoint");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_with_codes_and_writes_nothing() -> TestResult {
    let app = TestApp::spawn_env(&env(&[])).await?;
    let tenant = app.tenant("hooks-a").await?;
    let other = app.tenant("hooks-b").await?;
    let (id, _) = endpoint(
        &app,
        &tenant,
        "https://hooks.example/a",
        "[VERIFICATION_VERIFIED]",
    )
    .await?;
    let create = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }";
    for (input, code) in [
        (
            json!({"url": "ftp://hooks.example/", "events": ["VERIFICATION_VERIFIED"]}),
            "INVALID_INPUT",
        ),
        (
            json!({"url": "not a url", "events": ["VERIFICATION_VERIFIED"]}),
            "INVALID_INPUT",
        ),
        (
            json!({"url": "https://user:pw@hooks.example/", "events": ["VERIFICATION_VERIFIED"]}),
            "INVALID_INPUT",
        ),
        (
            json!({"url": format!("https://hooks.example/{}", "a".repeat(2001)), "events": ["VERIFICATION_VERIFIED"]}),
            "INVALID_INPUT",
        ),
        (
            json!({"url": "https://hooks.example/", "events": []}),
            "INVALID_INPUT",
        ),
        (
            json!({"url": "https://hooks.example/", "events": ["VERIFICATION_VERIFIED"], "description": "x".repeat(201)}),
            "INVALID_INPUT",
        ),
        (
            json!({"url": "https://hooks.example/", "events": ["verification.verified"]}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ] {
        let body = app
            .gql(Some(&tenant.sk), create, json!({"input": input}))
            .await?;
        assert_code(&body, code);
    }
    // Publishable keys reach none of it.
    let body = app
        .gql(Some(&tenant.pk), create, json!({"input": {"url": "https://hooks.example/", "events": ["VERIFICATION_VERIFIED"]}}))
        .await?;
    assert_code(&body, "FORBIDDEN");
    let body = app
        .gql(Some(&tenant.pk), "{ webhookEndpoints { id } }", json!({}))
        .await?;
    assert_code(&body, "FORBIDDEN");

    // Another tenant's ids are not found, and its endpoint is untouched.
    let update = "mutation($id: ID!, $input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(id: $id, input: $input) { endpoint { url } } }";
    for (key, id, input, code) in [
        (
            &other.sk,
            id.as_str(),
            json!({"url": "https://evil.example/"}),
            "NOT_FOUND",
        ),
        (
            &tenant.sk,
            "not-an-id",
            json!({"enabled": false}),
            "INVALID_INPUT",
        ),
        (
            &tenant.sk,
            id.as_str(),
            json!({"url": "gopher://x"}),
            "INVALID_INPUT",
        ),
        (
            &tenant.sk,
            id.as_str(),
            json!({"events": []}),
            "INVALID_INPUT",
        ),
    ] {
        let body = app
            .gql(Some(key), update, json!({"id": id, "input": input}))
            .await?;
        assert_code(&body, code);
    }
    let body = app
        .gql(
            Some(&other.sk),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
            json!({"id": id}),
        )
        .await?;
    assert_code(&body, "NOT_FOUND");
    for query in [
        "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id } }",
        "query($id: ID!) { webhookDelivery(id: $id) { id } }",
    ] {
        let body = app
            .gql(
                Some(&tenant.sk),
                query,
                json!({"id": uuid::Uuid::new_v4().to_string()}),
            )
            .await?;
        assert_code(&body, "NOT_FOUND");
    }
    for (first, after) in [
        (json!(0), json!(null)),
        (json!(101), json!(null)),
        (json!(10), json!("garbage")),
    ] {
        let body = app
            .gql(
                Some(&tenant.sk),
                "query($first: Int, $after: String) { webhookDeliveries(first: $first, after: $after) { edges { cursor } } }",
                json!({"first": first, "after": after}),
            )
            .await?;
        assert_code(&body, "INVALID_INPUT");
    }
    let body = app
        .gql(
            Some(&tenant.sk),
            "{ webhookEndpoints { url events enabled } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        body["data"]["webhookEndpoints"],
        json!([{"url": "https://hooks.example/a", "events": ["VERIFICATION_VERIFIED"], "enabled": true}])
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_endpoints")
            .await?,
        1
    );

    // At most 20 endpoints; the 21st is a conflict.
    for n in 1..20 {
        endpoint(
            &app,
            &tenant,
            &format!("https://hooks.example/{n}"),
            "[VERIFICATION_VERIFIED]",
        )
        .await?;
    }
    let body = app
        .gql(Some(&tenant.sk), create, json!({"input": {"url": "https://hooks.example/21", "events": ["VERIFICATION_VERIFIED"]}}))
        .await?;
    assert_code(&body, "CONFLICT");

    // Rotating gives a new secret; deleting removes the endpoint.
    let body = app
        .gql(
            Some(&tenant.sk),
            update,
            json!({"id": id, "input": {"rotateSecret": true, "enabled": false}}),
        )
        .await?;
    assert!(body.pointer("/errors").is_none(), "{body}");
    let body = app
        .gql(
            Some(&tenant.sk),
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {rotateSecret: true}) { secret endpoint { enabled } } }",
            json!({"id": id}),
        )
        .await?;
    assert!(
        str_at(&body, "/data/updateWebhookEndpoint/secret")
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    assert_eq!(
        body["data"]["updateWebhookEndpoint"]["endpoint"]["enabled"],
        json!(false)
    );
    let body = app
        .gql(
            Some(&tenant.sk),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
            json!({"id": id}),
        )
        .await?;
    assert_eq!(body["data"]["deleteWebhookEndpoint"]["id"], json!(id));
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_endpoints")
            .await?,
        19
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_tries_are_retried_and_later_events_wait() -> TestResult {
    let app = TestApp::spawn_env(&env(&[])).await?;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    receiver.set_mode(Mode::FailNext(3));
    let (_, secret) = endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let session = verified_session(&app, &tenant, "+447400100001").await?;
    let received = receiver
        .wait_for("both events accepted", |r| {
            by_session(r).get(&session).map(Vec::len) == Some(2)
        })
        .await?;
    // Three refusals of the first event, then it, then the second: never out of order.
    let order: Vec<(&str, u16)> = received
        .iter()
        .map(|r| (r.event_type(), r.answered))
        .collect();
    assert_eq!(
        order,
        vec![
            ("verification.requested", 500),
            ("verification.requested", 500),
            ("verification.requested", 500),
            ("verification.requested", 200),
            ("verification.verified", 200),
        ]
    );
    assert!(
        received[..4].iter().all(|r| r.id == received[0].id),
        "same message id on every try"
    );
    for r in &received {
        assert_signed(r, &secret);
    }
    let listed = deliveries(
        &app,
        &tenant,
        json!({"eventType": "VERIFICATION_REQUESTED"}),
    )
    .await?;
    assert_eq!(listed[0]["attempts"], json!(4));
    assert_eq!(listed[0]["status"], json!("DELIVERED"));
    assert_eq!(listed[0]["lastStatusCode"], json!(200));
    assert_eq!(listed[0]["lastError"], json!(null));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_gone_for_an_hour_gets_everything_in_order() -> TestResult {
    let app = TestApp::spawn_env(&env(&[])).await?;
    let tenant = app.tenant("hooks").await?;
    let mut receiver = Receiver::start_new().await?;
    endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    receiver.stop().await;

    // Flows go on while the receiver is gone; its deliveries pile up, retried.
    let app = Arc::new(app);
    let mut flows = Vec::new();
    for n in 0..12 {
        let app = app.clone();
        let tenant = tenant.clone();
        flows.push(tokio::spawn(async move {
            verified_session(&app, &tenant, &format!("+4474001002{n:02}")).await
        }));
    }
    let mut sessions = Vec::new();
    for flow in flows {
        sessions.push(flow.await??);
    }
    eventually(&app, "SELECT count(*) AS n FROM webhook_deliveries WHERE attempts >= 2 AND last_error LIKE 'request failed%'", |n| n >= 12).await?;
    // An hour passes: the events are an hour old, still well within the day of retries.
    app.sql("UPDATE webhook_deliveries SET created_at = created_at - interval '1 hour'")
        .await?;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'FAILED'")
            .await?,
        0
    );
    receiver.start().await?;
    let received = receiver
        .wait_for("every session's events", |r| {
            let by = by_session(r);
            sessions.iter().all(|s| by.get(s).map(Vec::len) == Some(2))
        })
        .await?;
    let by = by_session(&received);
    for session in &sessions {
        assert_eq!(
            by[session],
            ["verification.requested", "verification.verified"]
        );
    }
    eventually(
        &app,
        "SELECT count(*) AS n FROM webhook_deliveries WHERE status <> 'DELIVERED'",
        |n| n == 0,
    )
    .await?;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'DELIVERED'")
            .await?,
        24
    );
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_given_up_after_a_day_and_can_be_replayed() -> TestResult {
    let app = TestApp::spawn_env(&env(&[])).await?;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    receiver.set_mode(Mode::Status(503));
    endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let session = verified_session(&app, &tenant, "+447400100001").await?;
    receiver
        .wait_for("a refused try", |r| !r.is_empty())
        .await?;
    // The first event has been failing for a day.
    app.sql(
        "UPDATE webhook_deliveries SET created_at = now() - interval '25 hours' \
         WHERE event_type = 'verification.requested'",
    )
    .await?;
    eventually(
        &app,
        "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'FAILED'",
        |n| n == 1,
    )
    .await?;
    let failed = deliveries(&app, &tenant, json!({"status": "FAILED"})).await?;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["eventType"], json!("verification.requested"));
    assert_eq!(failed[0]["lastStatusCode"], json!(503));
    assert_eq!(failed[0]["nextAttemptAt"], json!(null));

    // The given-up event no longer holds back the session's next one.
    receiver.set_mode(Mode::Status(200));
    receiver
        .wait_for("the verified event", |r| {
            r.iter()
                .any(|r| r.event_type() == "verification.verified" && r.answered == 200)
        })
        .await?;

    let body = app
        .gql(
            Some(&tenant.sk),
            "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id messageId status } }",
            json!({"id": failed[0]["id"]}),
        )
        .await?;
    assert_eq!(
        body["data"]["replayWebhookDelivery"]["messageId"],
        failed[0]["messageId"]
    );
    assert_eq!(
        body["data"]["replayWebhookDelivery"]["status"],
        json!("PENDING")
    );
    let received = receiver
        .wait_for("the replay", |r| {
            r.iter()
                .any(|r| r.event_type() == "verification.requested" && r.answered == 200)
        })
        .await?;
    let replayed = received
        .iter()
        .find(|r| r.event_type() == "verification.requested" && r.answered == 200)
        .ok_or("no replay")?;
    assert_eq!(Some(replayed.id.as_str()), failed[0]["messageId"].as_str());
    assert_eq!(replayed.session_id(), session);
    let requested = deliveries(
        &app,
        &tenant,
        json!({"eventType": "VERIFICATION_REQUESTED"}),
    )
    .await?;
    let statuses: Vec<&Value> = requested.iter().map(|d| &d["status"]).collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&&json!("FAILED")));
    app.stop().await;
    Ok(())
}

fn test_settings(timeout_ms: u64) -> WebhookSettings {
    WebhookSettings {
        retry_delays: vec![Duration::from_millis(50)],
        timeout: Duration::from_millis(timeout_ms),
        poll_interval: Duration::from_millis(20),
        ..WebhookSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_when_the_sender_dies_mid_delivery() -> TestResult {
    // This instance records events but does not send them.
    let app = TestApp::spawn_env(&env(&[("MISSEDCALL_WEBHOOK_SENDER_OFF", "true")])).await?;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    receiver.set_mode(Mode::Hang);
    endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let session = verified_session(&app, &tenant, "+447400100001").await?;
    // Committed with the change, not sent: what a crash right after commit leaves.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'PENDING'")
            .await?,
        2
    );
    let state = &app.server.as_ref().ok_or("no server")?.state;
    let db: Database = state.db.clone();
    let master_key = (*state.master_key).clone();

    // A sender takes the first event and dies while the receiver is still answering.
    let (_stop, stop_rx) = watch::channel(false);
    let first = WebhookWorker::new(db.clone(), master_key.clone(), test_settings(1000))?;
    let first = tokio::spawn(first.run(stop_rx.clone()));
    receiver
        .wait_for("the first try", |r| !r.is_empty())
        .await?;
    first.abort();
    let _ = first.await;

    // Another sender picks it up once the dead one's lease runs out.
    receiver.set_mode(Mode::Status(200));
    let second = WebhookWorker::new(db, master_key, test_settings(1000))?;
    let second = tokio::spawn(second.run(stop_rx));
    let received = receiver
        .wait_for("both events", |r| {
            by_session(r).get(&session).map(Vec::len) == Some(2)
        })
        .await?;
    assert_eq!(received[0].answered, 0, "the first try hung");
    assert_eq!(received[1].id, received[0].id, "the same message again");
    assert_eq!(
        by_session(&received)[&session],
        ["verification.requested", "verification.verified"]
    );
    eventually(
        &app,
        "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'DELIVERED'",
        |n| n == 2,
    )
    .await?;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'DELIVERED'")
            .await?,
        2
    );
    second.abort();
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_send_each_event_once_in_order() -> TestResult {
    let app = TestApp::spawn_env(&env(&[])).await?;
    let sibling = app.sibling(&env(&[])).await?;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let app = Arc::new(app);
    let mut flows = Vec::new();
    for n in 0..24 {
        let app = app.clone();
        let tenant = tenant.clone();
        flows.push(tokio::spawn(async move {
            verified_session(&app, &tenant, &format!("+4474001003{n:02}")).await
        }));
    }
    let mut sessions = Vec::new();
    for flow in flows {
        sessions.push(flow.await??);
    }
    let received = receiver
        .wait_for("every session's events", |r| {
            let by = by_session(r);
            sessions.iter().all(|s| by.get(s).map(Vec::len) == Some(2))
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received_late = receiver.received();
    assert_eq!(received_late.len(), 48, "each event exactly once");
    let by = by_session(&received);
    for session in &sessions {
        assert_eq!(
            by[session],
            ["verification.requested", "verification.verified"]
        );
    }
    sibling.server.stop().await;
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_sends_what_is_due_first() -> TestResult {
    let app = TestApp::spawn_env(&env(&[("MISSEDCALL_WEBHOOK_POLL_INTERVAL_MS", "60000")])).await?;
    // Past the worker's first (empty) look at the outbox: it now sleeps for a minute.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let session = verified_session(&app, &tenant, "+447400100001").await?;
    // The worker sleeps through these (a minute's poll); stopping flushes them.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'PENDING'")
            .await?,
        2
    );
    assert!(receiver.received().is_empty());
    app.stop().await;
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        by_session(&received)[&session],
        ["verification.requested", "verification.verified"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_prunes_finished_deliveries_past_retention_only() -> TestResult {
    let app = TestApp::spawn_env(&env(&[])).await?;
    let tenant = app.tenant("hooks").await?;
    let receiver = Receiver::start_new().await?;
    let (endpoint_id, _) = endpoint(&app, &tenant, &receiver.url, ALL_EVENTS).await?;
    let session = verified_session(&app, &tenant, "+447400100001").await?;
    receiver
        .wait_for("both events", |r| {
            by_session(r).get(&session).map(Vec::len) == Some(2)
        })
        .await?;
    eventually(
        &app,
        "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'DELIVERED'",
        |n| n == 2,
    )
    .await?;
    // Fixture: the requested event was delivered 40 days ago (past the 30-day retention); the
    // verified one is still owed from 40 days ago (its endpoint is off, so it stays owed).
    app.sql(&format!(
        "UPDATE webhook_endpoints SET enabled = false WHERE id = '{endpoint_id}'; \
         UPDATE webhook_deliveries SET created_at = now() - interval '40 days'; \
         UPDATE webhook_deliveries SET status = 'PENDING' WHERE event_type = 'verification.verified'"
    ))
    .await?;
    let mut conn = app.db.conn().await?;
    let report = missedcall::maintenance::cleanup(&mut conn).await?;
    assert_eq!(report.webhook_deliveries_pruned, 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries WHERE event_type = 'verification.verified'")
            .await?,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhook_deliveries")
            .await?,
        1
    );
    app.stop().await;
    Ok(())
}
