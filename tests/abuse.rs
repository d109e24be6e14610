//! Abuse protection: rate limits at every layer (in Redis and in process), brute force across
//! sessions, requests carrying several verifies, toll fraud, hostile GraphQL, Redis outages.

mod common;

use std::time::Duration;

use common::own_redis::OwnRedis;
use common::{TestApp, TestResult, TestTenant, assert_code, error_code, str_at};
use serde_json::{Value, json};

const PHONE: &str = "+447400123456";

fn phone(n: u32) -> String {
    format!("+4474001{n:05}")
}

/// A requestCall sent with an `X-Forwarded-For` header.
async fn request_from(app: &TestApp, key: &str, to: &str, forwarded: &str) -> TestResult<Value> {
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .bearer_auth(key)
        .header("x-forwarded-for", forwarded)
        .json(&json!({
            "query": "mutation($p: String!) { requestCall(input: {phoneNumber: $p}) { sessionId } }",
            "variables": {"p": to},
        }))
        .send()
        .await?;
    assert!(!response.status().is_server_error());
    Ok(response.json().await?)
}

fn retry_after(body: &Value) -> Option<u64> {
    body.pointer("/errors/0/extensions/retryAfterSeconds")
        .and_then(Value::as_u64)
}

fn unique_prefix() -> String {
    format!("mc-test-{}", uuid::Uuid::new_v4().simple())
}

/// The service with limits kept in process, or in Redis under a prefix of the test's own.
async fn spawn(redis: bool, limits: &[(&str, &str)]) -> TestResult<TestApp> {
    let prefix = unique_prefix();
    let mut vars: Vec<(&str, &str)> = limits.to_vec();
    if redis {
        vars.push(("REDIS_URL", "redis://127.0.0.1:6379"));
        vars.push(("MISSEDCALL_REDIS_PREFIX", prefix.as_str()));
    }
    TestApp::spawn_env(&vars).await
}

async fn phone_limit(redis: bool) -> TestResult {
    let app = spawn(redis, &[("MISSEDCALL_LIMIT_PHONE_PER_HOUR", "2")]).await?;
    let acme = app.tenant("acme").await?;
    app.start_session(&acme.pk, PHONE).await?;
    app.start_session(&acme.pk, PHONE).await?;
    let refused = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&refused, "RATE_LIMITED");
    let wait = retry_after(&refused).ok_or("no retryAfterSeconds")?;
    assert!((1790..=1800).contains(&wait), "retry after {wait}");
    // Another number, and the same number at another tenant, are not affected.
    app.start_session(&acme.pk, &phone(1)).await?;
    let other = app.tenant("other").await?;
    app.start_session(&other.pk, PHONE).await?;
    // A refusal consumed nothing and wrote no session.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE tenant_id = '{}' AND phone_number = '{PHONE}'",
            acme.id
        ))
        .await?,
        2
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_phone_limit_holds_in_process() -> TestResult {
    phone_limit(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_phone_limit_holds_in_redis() -> TestResult {
    phone_limit(true).await
}

async fn ip_limit_resets(redis: bool) -> TestResult {
    // 30 a minute: one every 2 s after the burst.
    let app = spawn(redis, &[("MISSEDCALL_LIMIT_IP_PER_MINUTE", "30")]).await?;
    let acme = app.tenant("acme").await?;
    for n in 0..30 {
        app.start_session(&acme.pk, &phone(n)).await?;
    }
    let refused = app.request_call(&acme.pk, &phone(30)).await?;
    assert_code(&refused, "RATE_LIMITED");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ip")),
        "{refused}"
    );
    let wait = retry_after(&refused).ok_or("no retryAfterSeconds")?;
    assert!((1..=2).contains(&wait), "retry after {wait}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.start_session(&acme.pk, &phone(31)).await?;
    assert_code(
        &app.request_call(&acme.pk, &phone(32)).await?,
        "RATE_LIMITED",
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ip_limit_resets_in_process() -> TestResult {
    ip_limit_resets(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ip_limit_resets_in_redis() -> TestResult {
    ip_limit_resets(true).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_clients_are_limited_per_64_behind_a_trusted_proxy() -> TestResult {
    let app = spawn(
        true,
        &[
            ("MISSEDCALL_LIMIT_IP_PER_MINUTE", "2"),
            ("MISSEDCALL_TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
        ],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    let same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"];
    for (n, ip) in same_64.iter().enumerate() {
        let body = request_from(&app, &acme.pk, &phone(n as u32), ip).await?;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let body = request_from(&app, &acme.pk, &phone(3), "2001:db8:1:2::77").await?;
    assert_code(&body, "RATE_LIMITED");
    // The neighbouring /64 and an IPv4 client have their own budgets.
    let body = request_from(&app, &acme.pk, &phone(4), "2001:db8:1:3::1").await?;
    assert!(body.get("errors").is_none(), "{body}");
    let body = request_from(&app, &acme.pk, &phone(5), "198.51.100.7, 127.0.0.1").await?;
    assert!(body.get("errors").is_none(), "{body}");
    let ips = app
        .count(
            "SELECT count(DISTINCT client_ip) AS n FROM verification_sessions \
             WHERE client_ip IN ('2001:db8:1:2::1', '2001:db8:1:3::1', '198.51.100.7')",
        )
        .await?;
    assert_eq!(ips, 3, "the client IP recorded is the forwarded one");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_peer_cannot_choose_its_address() -> TestResult {
    let app = spawn(false, &[("MISSEDCALL_LIMIT_IP_PER_MINUTE", "2")]).await?;
    let acme = app.tenant("acme").await?;
    for n in 0..2 {
        let body = request_from(&app, &acme.pk, &phone(n), &format!("203.0.113.{n}")).await?;
        assert!(body.get("errors").is_none(), "{body}");
    }
    // A fresh forwarded address buys nothing: the socket's address is what counts.
    let body = request_from(&app, &acme.pk, &phone(2), "203.0.113.99").await?;
    assert_code(&body, "RATE_LIMITED");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions WHERE client_ip = '127.0.0.1'")
            .await?,
        2
    );
    app.stop().await;
    Ok(())
}

async fn set_limits(app: &TestApp, tenant: &TestTenant, limits: Value) -> TestResult {
    let body = app
        .gql(
            Some(&tenant.sk),
            "mutation($l: RateLimitsInput!) { updateTenantSettings(input: {rateLimits: $l}) { id } }",
            json!({"l": limits}),
        )
        .await?;
    assert!(body.get("errors").is_none(), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_limits_and_overrides() -> TestResult {
    let app = spawn(true, &[("MISSEDCALL_LIMIT_TENANT_PER_MINUTE", "3")]).await?;
    let acme = app.tenant("acme").await?;
    let strict = app.tenant("strict").await?;
    let generous = app.tenant("generous").await?;
    set_limits(&app, &strict, json!({"perTenantPerMinute": 1})).await?;
    set_limits(&app, &generous, json!({"perTenantPerMinute": 10})).await?;
    for n in 0..3 {
        app.start_session(&acme.pk, &phone(n)).await?;
    }
    let body = app.request_call(&acme.pk, &phone(3)).await?;
    assert_code(&body, "RATE_LIMITED");
    assert!(body.to_string().contains("tenant"), "{body}");
    app.start_session(&strict.pk, &phone(10)).await?;
    assert_code(
        &app.request_call(&strict.pk, &phone(11)).await?,
        "RATE_LIMITED",
    );
    for n in 20..25 {
        app.start_session(&generous.pk, &phone(n)).await?;
    }
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_cap_stops_calls() -> TestResult {
    let app = spawn(true, &[("MISSEDCALL_DAILY_CALL_CAP", "3")]).await?;
    let acme = app.tenant("acme").await?;
    let small = app.tenant("small").await?;
    set_limits(&app, &small, json!({"dailyCallCap": 1})).await?;
    for n in 0..3 {
        app.start_session(&acme.pk, &phone(n)).await?;
    }
    let body = app.request_call(&acme.pk, &phone(3)).await?;
    assert_code(&body, "RATE_LIMITED");
    assert!(body.to_string().contains("daily_calls"), "{body}");
    let wait = retry_after(&body).ok_or("no retry")?;
    assert!(wait > 20_000, "the cap is per day: {wait}");
    app.start_session(&small.pk, &phone(10)).await?;
    assert_code(
        &app.request_call(&small.pk, &phone(11)).await?,
        "RATE_LIMITED",
    );
    app.stop().await;
    Ok(())
}

async fn spike_throttle(redis: bool) -> TestResult {
    let app = spawn(
        redis,
        &[
            ("MISSEDCALL_LIMIT_COUNTRY_PER_MINUTE", "3"),
            ("MISSEDCALL_COUNTRY_THROTTLE_SECONDS", "600"),
        ],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    for n in 0..3 {
        app.start_session(&acme.pk, &phone(n)).await?;
    }
    for n in 3..8 {
        let body = app.request_call(&acme.pk, &phone(n)).await?;
        assert_code(&body, "RATE_LIMITED");
        assert_eq!(retry_after(&body), Some(600), "{body}");
    }
    let throttled = app
        .count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = '{}' \
             AND kind = 'destination.throttled' AND detail->>'country' = 'GB'",
            acme.id
        ))
        .await?;
    assert_eq!(throttled, 1, "one audit event per throttle");
    // Other countries, and other tenants calling the same country, go on.
    app.start_session(&acme.pk, "+14155550123").await?;
    let other = app.tenant("other").await?;
    app.start_session(&other.pk, &phone(9)).await?;
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spike_towards_one_country_throttles_it_in_redis() -> TestResult {
    spike_throttle(true).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spike_towards_one_country_throttles_it_in_process() -> TestResult {
    spike_throttle(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn new_sessions_do_not_buy_new_guesses() -> TestResult {
    let app = spawn(false, &[("MISSEDCALL_PHONE_MAX_FAILED_ATTEMPTS", "4")]).await?;
    let acme = app.tenant("acme").await?;
    let wrong = "+15555550000";
    let (first, token) = app.start_session(&acme.pk, PHONE).await?;
    for _ in 0..3 {
        app.verify(&acme.pk, &first, &token, wrong).await?;
    }
    let (second, token) = app.start_session(&acme.pk, PHONE).await?;
    let body = app.verify(&acme.pk, &second, &token, wrong).await?;
    assert_eq!(body["data"]["verify"]["verified"], false, "{body}");
    // Four wrong guesses for this number: even the right caller ID is refused now.
    let caller_id = app.incoming_caller_id(PHONE, &second).await?;
    let body = app.verify(&acme.pk, &second, &token, &caller_id).await?;
    assert_code(&body, "PHONE_LOCKED");
    let wait = retry_after(&body).ok_or("no retry")?;
    assert!((3500..=3600).contains(&wait), "{wait}");
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint AS n FROM verification_sessions WHERE id = '{second}'"
        ))
        .await?;
    assert_eq!(attempts, 1, "a refused verify counted an attempt");
    assert_code(&app.request_call(&acme.pk, PHONE).await?, "PHONE_LOCKED");
    // Other numbers are not affected.
    let (id, token) = app.start_session(&acme.pk, &phone(1)).await?;
    let caller_id = app.incoming_caller_id(&phone(1), &id).await?;
    let body = app.verify(&acme.pk, &id, &token, &caller_id).await?;
    assert_eq!(body["data"]["verify"]["verified"], true, "{body}");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_verifies_across_sessions_never_exceed_the_phone_budget() -> TestResult {
    let app = spawn(false, &[("MISSEDCALL_PHONE_MAX_FAILED_ATTEMPTS", "5")]).await?;
    let acme = app.tenant("acme").await?;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(app.start_session(&acme.pk, PHONE).await?);
    }
    let mut tasks = Vec::new();
    for round in 0..3 {
        for (id, token) in &sessions {
            let api = common::Api::new(&app.base)?;
            let (pk, id, token) = (acme.pk.clone(), id.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let _ = round;
                api.verify(&pk, &id, &token, "+15555550000").await
            }));
        }
    }
    let mut counted = 0;
    for task in tasks {
        let body = task.await??;
        if error_code(&body).is_none() {
            counted += 1;
        }
    }
    let total = app
        .count(&format!(
            "SELECT sum(attempts)::bigint AS n FROM verification_sessions WHERE tenant_id = '{}'",
            acme.id
        ))
        .await?;
    assert_eq!(total, 5, "attempts across sessions exceeded the budget");
    assert_eq!(counted, 5);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_may_carry_one_verify() -> TestResult {
    let app = spawn(false, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let vars = json!({"i": {"sessionId": id, "sessionToken": token, "callerId": "+15555550000"}});
    let documents = [
        "mutation($i: VerifyInput!) { a: verify(input: $i) { verified } b: verify(input: $i) { verified } }",
        "mutation($i: VerifyInput!) { verify(input: $i) { verified } b: verify(input: $i) { verified } }",
        "mutation($i: VerifyInput!) { ...A ...B } fragment A on Mutation { a: verify(input: $i) { verified } } fragment B on Mutation { b: verify(input: $i) { verified } }",
        "mutation($i: VerifyInput!) { ... on Mutation { a: verify(input: $i) { verified } } b: verify(input: $i) { verified } }",
        "mutation($i: VerifyInput!) { ...A } fragment A on Mutation { ...B a: verify(input: $i) { verified } } fragment B on Mutation { ...A b: verify(input: $i) { verified } }",
    ];
    for document in documents {
        let body = app.gql(Some(&acme.pk), document, vars.clone()).await?;
        let code = error_code(&body);
        assert!(
            code.as_deref() == Some("MULTIPLE_VERIFY_NOT_ALLOWED")
                || code.as_deref() == Some("GRAPHQL_VALIDATION_FAILED"),
            "{document}: {body}"
        );
        assert!(body["data"].is_null(), "{body}");
    }
    // A batch is refused whole.
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .bearer_auth(&acme.pk)
        .body(
            json!([
                {"query": documents[0], "variables": vars},
                {"query": documents[0], "variables": vars}
            ])
            .to_string(),
        )
        .header("content-type", "application/json")
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_code(&body, "BAD_REQUEST");
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint AS n FROM verification_sessions WHERE id = '{id}'"
        ))
        .await?;
    assert_eq!(attempts, 0, "a refused request counted attempts");
    // One aliased verify is fine, and counts once.
    let body = app
        .gql(
            Some(&acme.pk),
            "mutation($i: VerifyInput!) { mine: verify(input: $i) { attemptsLeft } }",
            vars,
        )
        .await?;
    assert_eq!(body["data"]["mine"]["attemptsLeft"], 2, "{body}");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_graphql_is_answered_cleanly() -> TestResult {
    let app = spawn(false, &[]).await?;
    let acme = app.tenant("acme").await?;
    let aliases: String = (0..31)
        .map(|n| format!("a{n}: viewer {{ slug }} "))
        .collect();
    let cases: Vec<(String, &str)> = vec![
        (format!("{{ {aliases} }}"), "TOO_MANY_ALIASES"),
        ("{ viewer { slug ".to_owned(), "GRAPHQL_VALIDATION_FAILED"),
        ("mutation { nope }".to_owned(), "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ viewer { slug } } }}}}".to_owned(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ viewer { slug } }".to_owned(), ""),
    ];
    for (query, code) in cases {
        let body = app.gql(Some(&acme.sk), &query, json!({})).await?;
        if code.is_empty() {
            assert!(body.get("errors").is_none(), "{query}: {body}");
        } else {
            assert_eq!(error_code(&body).as_deref(), Some(code), "{query}: {body}");
        }
    }
    // Deep nesting is refused by the depth limit.
    let nested = format!(
        "{{ __schema {{ {}name{} }} }}",
        "types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ".repeat(2),
        " } } } } } } } } }".repeat(2)
    );
    let body = app.gql(Some(&acme.pk), &nested, json!({})).await?;
    assert!(error_code(&body).is_some(), "{body}");
    // Oversized bodies (non-JSON ones: verification_flow).
    let big = "x".repeat(70 * 1024);
    let response = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body(json!({"query": big}).to_string())
        .send()
        .await?;
    assert_eq!(response.status(), 413);
    // Introspection and GraphiQL are on outside production.
    let body = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await?;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    assert_eq!(
        app.http
            .get(format!("{}/graphql", app.base))
            .send()
            .await?
            .status(),
        200
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn production_mode_turns_introspection_and_graphiql_off() -> TestResult {
    let app = spawn(false, &[("MISSEDCALL_PRODUCTION", "true")]).await?;
    let body = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await?;
    assert_code(&body, "FORBIDDEN");
    assert!(body["data"].is_null(), "{body}");
    let body = app
        .gql(None, "{ __type(name: \"Query\") { name } }", json!({}))
        .await?;
    assert_code(&body, "FORBIDDEN");
    assert_eq!(
        app.http
            .get(format!("{}/graphql", app.base))
            .send()
            .await?
            .status(),
        404
    );
    // The API itself works.
    let acme = app.tenant("acme").await?;
    app.start_session(&acme.pk, PHONE).await?;
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn high_risk_prefixes_are_never_called() -> TestResult {
    let app = spawn(
        false,
        &[("MISSEDCALL_BLOCKED_PREFIXES", "+44740010, +1900")],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    assert_code(
        &app.request_call(&acme.pk, &phone(1)).await?,
        "DESTINATION_BLOCKED",
    );
    app.start_session(&acme.pk, PHONE).await?;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE kind = 'request.refused' AND detail->>'code' = 'DESTINATION_BLOCKED'")
            .await?,
        1
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_calls_are_refused_and_verify_goes_on() -> TestResult {
    let mut redis = OwnRedis::start()?;
    let url = redis.url();
    let prefix = unique_prefix();
    let app = TestApp::spawn_env(&[
        ("REDIS_URL", url.as_str()),
        ("MISSEDCALL_REDIS_PREFIX", prefix.as_str()),
    ])
    .await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let caller_id = app.incoming_caller_id(PHONE, &id).await?;
    redis.stop()?;
    let body = app.request_call(&acme.pk, &phone(1)).await?;
    assert_code(&body, "RATE_LIMIT_UNAVAILABLE");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE phone_number = '{}'",
            phone(1)
        ))
        .await?,
        0,
        "a call was placed unthrottled"
    );
    let body = app.verify(&acme.pk, &id, &token, &caller_id).await?;
    assert_eq!(body["data"]["verify"]["verified"], true, "{body}");
    redis.restart()?;
    let mut recovered = false;
    for _ in 0..50 {
        let body = app.request_call(&acme.pk, &phone(2)).await?;
        if str_at(&body, "/data/requestCall/sessionId").is_some() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "requestCall did not recover after Redis came back"
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_calls_may_be_allowed_by_configuration() -> TestResult {
    let mut redis = OwnRedis::start()?;
    let url = redis.url();
    let app = TestApp::spawn_env(&[
        ("REDIS_URL", url.as_str()),
        ("MISSEDCALL_LIMITS_WITHOUT_REDIS", "allow"),
    ])
    .await?;
    let acme = app.tenant("acme").await?;
    redis.stop()?;
    app.start_session(&acme.pk, PHONE).await?;
    app.stop().await;
    Ok(())
}
