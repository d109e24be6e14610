//! `GET /metrics` in the Prometheus text format, with counters that move with the flow.

mod common;

use common::ws::WsClient;
use common::{TestApp, TestResult, assert_code};

const PHONE: &str = "+447400123456";

async fn scrape(app: &TestApp) -> TestResult<String> {
    let response = app.http.get(format!("{}/metrics", app.base)).send().await?;
    assert_eq!(response.status(), 200);
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{kind}");
    Ok(response.text().await?)
}

/// The value of the sample whose name and labels contain every fragment.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(name) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_move_with_the_flow() -> TestResult {
    let app = TestApp::spawn_env(&[("MISSEDCALL_LIMIT_PHONE_PER_HOUR", "2")]).await?;
    let acme = app.tenant("acme").await?;
    let tenant = format!("tenant=\"{}\"", acme.id);

    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let caller_id = app.incoming_caller_id(PHONE, &id).await?;
    let mut ws = WsClient::ready(&app.base, &acme.pk).await?;
    ws.subscribe("s", &id, &token).await?;
    ws.next_status("s").await?;
    let during = scrape(&app).await?;
    assert!(
        sample(&during, "missedcall_subscriptions_open", &[]) >= 1.0,
        "{during}"
    );

    app.verify(&acme.pk, &id, &token, "+15555550000").await?;
    app.verify(&acme.pk, &id, &token, &caller_id).await?;
    app.start_session(&acme.pk, PHONE).await?;
    assert_code(&app.request_call(&acme.pk, PHONE).await?, "RATE_LIMITED");
    assert_code(
        &app.request_call(&acme.pk, "12").await?,
        "INVALID_PHONE_NUMBER",
    );

    let text = scrape(&app).await?;
    let requests = |outcome: &str| {
        sample(
            &text,
            "missedcall_requests_total",
            &[&tenant, &format!("outcome=\"{outcome}\"")],
        )
    };
    assert_eq!(requests("started"), 2.0, "{text}");
    assert_eq!(requests("RATE_LIMITED"), 1.0);
    assert_eq!(requests("INVALID_PHONE_NUMBER"), 1.0);
    let verifications = |outcome: &str| {
        sample(
            &text,
            "missedcall_verifications_total",
            &[&tenant, &format!("outcome=\"{outcome}\"")],
        )
    };
    assert_eq!(verifications("wrong_caller_id"), 1.0);
    assert_eq!(verifications("verified"), 1.0);
    assert!(
        sample(
            &text,
            "missedcall_calls_total",
            &["gateway=\"simulator\"", "result=\"placed\""]
        ) >= 2.0
    );
    assert!(
        sample(
            &text,
            "missedcall_gateway_request_seconds_count",
            &["gateway=\"simulator\""]
        ) >= 2.0
    );
    assert!(sample(&text, "missedcall_rate_limited_total", &["layer=\"phone\""]) >= 1.0);
    assert!(
        sample(
            &text,
            "missedcall_http_request_seconds_count",
            &["route=\"/graphql\"", "status=\"200\""]
        ) >= 6.0
    );
    assert!(sample(&text, "missedcall_db_connections", &["state=\"open\""]) >= 1.0);
    assert!(
        text.contains("# TYPE missedcall_http_request_seconds histogram"),
        "{text}"
    );
    app.stop().await;
    Ok(())
}
