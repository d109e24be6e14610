//! `sessionStatus` over WebSocket: order, authorization, expiry, limits, fan-out across
//! instances through Redis, and Redis restarts.

mod common;

use std::sync::Arc;

use common::own_redis::OwnRedis;
use common::ws::{Incoming, WsClient};
use common::{TestApp, TestResult, str_at};
use serde_json::json;

const PHONE: &str = "+447400123456";
/// The simulated phone rings this long after the call is placed: long enough for a subscriber
/// to see CALLING first.
const SLOW_RING: (&str, &str) = ("MISSEDCALL_SIMULATOR_RING_DELAY_MS", "1500");
/// A phone that never rings during a test.
const NO_RING: (&str, &str) = ("MISSEDCALL_SIMULATOR_RING_DELAY_MS", "3600000");

fn redis_prefix() -> String {
    format!("mctest-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_sees_current_status_then_every_change_until_verified() -> TestResult {
    let app = TestApp::spawn_env(&[SLOW_RING]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    client.subscribe("1", &id, &token).await?;
    let first = client.next_status("1").await?;
    assert_eq!(
        (first["status"].as_str(), first["sessionId"].as_str()),
        (Some("CALLING"), Some(id.as_str()))
    );
    let ringing = client.next_status("1").await?;
    assert_eq!(ringing["status"], "RINGING");
    let verified = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true);
    let (rest, error) = client.statuses("1").await?;
    assert_eq!((rest, error), (vec!["VERIFIED".to_owned()], None));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_sees_changes_made_through_another_via_redis() -> TestResult {
    let prefix = redis_prefix();
    let redis = [
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("MISSEDCALL_REDIS_PREFIX", prefix.as_str()),
        SLOW_RING,
    ];
    let a = TestApp::spawn_env(&redis).await?;
    let b = a.sibling(&redis).await?;
    let acme = a.tenant("acme").await?;
    let b_app = common::Api::new(&b.base)?;
    let body = b_app.request_call(&acme.pk, PHONE).await?;
    let id = str_at(&body, "/data/requestCall/sessionId").ok_or("no session")?;
    let token = str_at(&body, "/data/requestCall/sessionToken").ok_or("no token")?;
    let mut client = WsClient::ready(&a.base, &acme.pk).await?;
    client.subscribe("s", &id, &token).await?;
    assert_eq!(client.next_status("s").await?["status"], "CALLING");
    // B's simulator rings the phone; A hears of it through Redis.
    assert_eq!(client.next_status("s").await?["status"], "RINGING");
    let caller_id = b_app.incoming_caller_id(PHONE, &id).await?;
    let verified = b_app.verify(&acme.pk, &id, &token, &caller_id).await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    assert_eq!(
        client.statuses("s").await?,
        (vec!["VERIFIED".to_owned()], None)
    );
    b.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_gets_the_final_status_across_a_redis_restart() -> TestResult {
    let mut redis = OwnRedis::start()?;
    let url = redis.url();
    let env = [("REDIS_URL", url.as_str()), NO_RING];
    let a = TestApp::spawn_env(&env).await?;
    let b = a.sibling(&env).await?;
    let acme = a.tenant("acme").await?;
    let (id, token) = a.start_session(&acme.pk, PHONE).await?;
    let mut client = WsClient::ready(&a.base, &acme.pk).await?;
    client.subscribe("s", &id, &token).await?;
    assert_eq!(client.next_status("s").await?["status"], "CALLING");

    redis.stop()?;
    // Verified through B while Redis is down: B cannot publish, A's listener is disconnected.
    let b_app = common::Api::new(&b.base)?;
    let verified = b_app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    redis.restart()?;
    // A reconnects, resyncs from Postgres, and the subscriber still gets the final status.
    assert_eq!(
        client.statuses("s").await?,
        (vec!["VERIFIED".to_owned()], None)
    );
    b.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_other_tenant_and_unknown_session_get_errors_not_data() -> TestResult {
    let app = TestApp::spawn_env(&[NO_RING]).await?;
    let acme = app.tenant("acme").await?;
    let globex = app.tenant("globex").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;

    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    client.subscribe("bad-token", &id, "st_wrong").await?;
    assert_eq!(
        client.statuses("bad-token").await?,
        (vec![], Some("INVALID_SESSION_TOKEN".into()))
    );
    client
        .subscribe("unknown", &uuid::Uuid::new_v4().to_string(), &token)
        .await?;
    assert_eq!(
        client.statuses("unknown").await?,
        (vec![], Some("SESSION_NOT_FOUND".into()))
    );
    client.subscribe("bad-id", "nope", &token).await?;
    assert_eq!(
        client.statuses("bad-id").await?,
        (vec![], Some("INVALID_INPUT".into()))
    );

    let mut other = WsClient::ready(&app.base, &globex.pk).await?;
    other.subscribe("theirs", &id, &token).await?;
    assert_eq!(
        other.statuses("theirs").await?,
        (vec![], Some("SESSION_NOT_FOUND".into()))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_without_a_valid_key_are_closed_with_4403() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    for key in [None, Some("pk_nope"), Some("garbage")] {
        let mut client = WsClient::connect(&app.base).await?;
        match client.init(key).await? {
            Incoming::Closed(Some(4403), reason) => {
                assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}")
            }
            other => return Err(format!("expected 4403 for {key:?}, got {other:?}").into()),
        }
    }
    app.sql(&format!(
        "UPDATE tenants SET status = 'SUSPENDED' WHERE id = '{}'",
        acme.id
    ))
    .await?;
    let mut client = WsClient::connect(&app.base).await?;
    match client.init(Some(&acme.pk)).await? {
        Incoming::Closed(Some(4403), reason) => {
            assert!(reason.starts_with("TENANT_SUSPENDED"), "{reason}")
        }
        other => return Err(format!("expected 4403, got {other:?}").into()),
    }
    // Subscribing before connection_init is refused too.
    let mut early = WsClient::connect(&app.base).await?;
    early
        .subscribe("1", &uuid::Uuid::new_v4().to_string(), "st_x")
        .await?;
    assert!(matches!(early.next().await?, Incoming::Closed(Some(_), _)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untouched_session_emits_expired_when_its_time_comes() -> TestResult {
    let app = TestApp::spawn_env(&[NO_RING]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    app.sql(&format!(
        "UPDATE verification_sessions SET expires_at = now() + interval '1 second' WHERE id = '{id}'"
    ))
    .await?;
    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    client.subscribe("e", &id, &token).await?;
    assert_eq!(client.next_status("e").await?["status"], "CALLING");
    let expired = client.next_status("e").await?;
    assert_eq!(expired["status"], "EXPIRED");
    // The event is stamped at or after the expiry, and the stream then completes.
    let at: chrono::DateTime<chrono::Utc> = expired["at"].as_str().ok_or("no at")?.parse()?;
    let expires_at = app
        .count(&format!(
            "SELECT (extract(epoch from expires_at) * 1000)::bigint AS n FROM verification_sessions WHERE id = '{id}'"
        ))
        .await?;
    assert!(
        at.timestamp_millis() >= expires_at,
        "{at} before the expiry"
    );
    assert_eq!(client.statuses("e").await?, (vec![], None));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_session_sends_its_final_status_and_completes() -> TestResult {
    let app = TestApp::spawn_env(&[NO_RING]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    client.subscribe("done", &id, &token).await?;
    assert_eq!(
        client.statuses("done").await?,
        (vec!["VERIFIED".to_owned()], None)
    );
    // The connection stays usable for another subscription.
    let (id2, token2) = app.start_session(&acme.pk, "+447400123457").await?;
    client.subscribe("next", &id2, &token2).await?;
    assert_eq!(client.next_status("next").await?["status"], "CALLING");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_graphql_ws_protocol_works_too() -> TestResult {
    let app = TestApp::spawn_env(&[NO_RING]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let mut client = WsClient::connect_with(&app.base, "graphql-ws").await?;
    assert_eq!(
        client.init(Some(&acme.pk)).await?,
        Incoming::Json(json!({"type": "connection_ack"}))
    );
    client.subscribe("1", &id, &token).await?;
    assert_eq!(client.next_status("1").await?["status"], "CALLING");
    app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(
        client.statuses("1").await?,
        (vec!["VERIFIED".to_owned()], None)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_limits_are_enforced() -> TestResult {
    let app = TestApp::spawn_env(&[
        NO_RING,
        ("MISSEDCALL_WS_MAX_SUBSCRIPTIONS", "2"),
        ("MISSEDCALL_WS_INIT_TIMEOUT_MS", "300"),
        ("MISSEDCALL_WS_IDLE_TIMEOUT_MS", "500"),
    ])
    .await?;
    let acme = app.tenant("acme").await?;
    let mut sessions = Vec::new();
    for phone in ["+447400123456", "+447400123457", "+447400123458"] {
        sessions.push(app.start_session(&acme.pk, phone).await?);
    }
    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    for (n, (id, token)) in sessions.iter().enumerate() {
        client.subscribe(&n.to_string(), id, token).await?;
    }
    // Two subscriptions get their first event; the third is refused and completed.
    let mut outcomes = std::collections::BTreeMap::new();
    while outcomes.len() < 3 {
        let Incoming::Json(value) = client.next().await? else {
            return Err("connection closed".into());
        };
        let id = value["id"].as_str().unwrap_or("?").to_owned();
        let outcome = value["payload"]["errors"][0]["extensions"]["code"]
            .as_str()
            .or(value["payload"]["data"]["sessionStatus"]["status"].as_str());
        if let Some(outcome) = outcome {
            outcomes.insert(id, outcome.to_owned());
        }
    }
    let mut seen: Vec<_> = outcomes.values().cloned().collect();
    seen.sort();
    assert_eq!(seen, ["CALLING", "CALLING", "TOO_MANY_SUBSCRIPTIONS"]);

    // A connection that never initialises is closed.
    let mut silent = WsClient::connect(&app.base).await?;
    assert_eq!(
        silent.next().await?,
        Incoming::Closed(Some(4408), "Connection initialisation timeout".into())
    );
    // A connection without subscriptions is closed once idle.
    let mut idle = WsClient::ready(&app.base, &acme.pk).await?;
    assert_eq!(
        idle.next().await?,
        Incoming::Closed(Some(1000), "idle".into())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_subscribers_each_receive_their_own_events() -> TestResult {
    const N: usize = 1000;
    let app =
        Arc::new(TestApp::spawn_env(&[NO_RING, ("MISSEDCALL_DATABASE_POOL_SIZE", "16")]).await?);
    let acme = app.tenant("acme").await?;
    let mut sessions = Vec::with_capacity(N);
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let (app, key) = (app.clone(), acme.pk.clone());
            tasks.push(tokio::spawn(async move {
                app.start_session(&key, &format!("+4474001{i:05}")).await
            }));
        }
        for task in tasks {
            sessions.push(task.await??);
        }
    }
    let mut clients = Vec::with_capacity(N);
    for (id, token) in &sessions {
        let mut client = WsClient::ready(&app.base, &acme.pk).await?;
        client.subscribe("s", id, token).await?;
        clients.push((id.clone(), client));
    }
    let subscribers: Vec<_> = clients
        .into_iter()
        .map(|(id, mut client)| {
            tokio::spawn(async move {
                let first = client.next_status("s").await?;
                let (rest, error) = client.statuses("s").await?;
                TestResult::Ok((id, first, rest, error))
            })
        })
        .collect();
    for chunk in sessions.chunks(50) {
        let mut tasks = Vec::new();
        for (id, token) in chunk {
            let (app, key, id, token) = (app.clone(), acme.pk.clone(), id.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                app.verify(&key, &id, &token, "+14155550100").await
            }));
        }
        for task in tasks {
            let body = task.await??;
            assert_eq!(body["data"]["verify"]["verified"], true, "{body}");
        }
    }
    for subscriber in subscribers {
        let (id, first, rest, error) = subscriber.await??;
        assert_eq!(first["sessionId"].as_str(), Some(id.as_str()));
        assert_eq!(first["status"], "CALLING");
        assert_eq!(
            (rest, error),
            (vec!["VERIFIED".to_owned()], None),
            "subscriber of {id}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn lockout_is_announced_and_ends_the_stream() -> TestResult {
    let app = TestApp::spawn_env(&[NO_RING]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    client.subscribe("l", &id, &token).await?;
    assert_eq!(client.next_status("l").await?["status"], "CALLING");
    for _ in 0..3 {
        app.verify(&acme.pk, &id, &token, "+19999999999").await?;
    }
    assert_eq!(
        client.statuses("l").await?,
        (vec!["LOCKED".to_owned()], None)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn shutting_down_closes_subscriptions_with_going_away() -> TestResult {
    let app = TestApp::spawn_env(&[NO_RING]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, "+447400123456").await?;
    let mut client = WsClient::ready(&app.base, &acme.pk).await?;
    client.subscribe("s", &id, &token).await?;
    client.next_status("s").await?;
    let stopping = tokio::spawn(app.stop());
    match client.next().await? {
        Incoming::Closed(code, reason) => {
            assert_eq!(code, Some(1001), "{reason}");
        }
        other => return Err(format!("expected a close, got {other:?}").into()),
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), stopping).await??;
    Ok(())
}
