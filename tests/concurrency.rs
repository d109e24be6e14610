//! Races decided by the database, exercised with real concurrency.

mod common;

use std::sync::Arc;

use common::{TestApp, TestResult, error_code, str_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_verifies_yield_exactly_one_token() -> TestResult {
    let app = Arc::new(TestApp::spawn().await?);
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, "+447400123456").await?;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (app, key, id, token) = (app.clone(), acme.pk.clone(), id.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            app.verify(&key, &id, &token, "+14155550100").await
        }));
    }
    let (mut tokens, mut already_used, mut other) = (0, 0, Vec::new());
    for task in tasks {
        let body = task.await??;
        if str_at(&body, "/data/verify/token").is_some() {
            tokens += 1;
        } else if error_code(&body).as_deref() == Some("ALREADY_USED") {
            already_used += 1;
        } else {
            other.push(body);
        }
    }
    assert_eq!(
        (tokens, already_used),
        (1, 99),
        "unexpected answers: {other:?}"
    );
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint AS n FROM verification_sessions WHERE id = '{id}'"
        ))
        .await?;
    assert_eq!(attempts, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_requests_for_distinct_numbers_all_succeed() -> TestResult {
    let app = Arc::new(TestApp::spawn().await?);
    let acme = app.tenant("acme").await?;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (app, key) = (app.clone(), acme.pk.clone());
        tasks.push(tokio::spawn(async move {
            app.request_call(&key, &format!("+4474001234{i:02}")).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let body = task.await??;
        let id = str_at(&body, "/data/requestCall/sessionId")
            .ok_or_else(|| format!("failed: {body}"))?;
        ids.insert(id);
    }
    assert_eq!(ids.len(), 100);
    assert_eq!(
        app.count("SELECT count(DISTINCT id) AS n FROM verification_sessions")
            .await?,
        100
    );
    assert_eq!(
        app.count("SELECT call_count AS n FROM pool_numbers")
            .await?,
        100
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_guesses_never_exceed_max_attempts() -> TestResult {
    let app = Arc::new(TestApp::spawn().await?);
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, "+447400123456").await?;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (app, key, id, token) = (app.clone(), acme.pk.clone(), id.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            app.verify(&key, &id, &token, &format!("+1999000{i:04}"))
                .await
        }));
    }
    let mut answered = 0;
    for task in tasks {
        let body = task.await??;
        if body["data"]["verify"]["verified"] == false {
            answered += 1;
        } else {
            assert_eq!(
                error_code(&body).as_deref(),
                Some("SESSION_LOCKED"),
                "{body}"
            );
        }
    }
    assert_eq!(answered, 3);
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint AS n FROM verification_sessions WHERE id = '{id}'"
        ))
        .await?;
    assert_eq!(attempts, 3);
    Ok(())
}
