//! The real Twilio client against a local server that speaks Twilio's Calls API and posts
//! signed status callbacks back to the service. No request leaves the machine.

mod common;

use std::time::Duration;

use common::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Next, ReceivedCall};
use common::{TestApp, TestResult, assert_code, free_port, str_at};
use serde_json::Value;

const PHONE: &str = "+447400123456";

/// The service with the Twilio gateway pointed at `api_base`; `extra` overrides the defaults.
async fn twilio_app(api_base: &str, extra: &[(&str, &str)]) -> TestResult<TestApp> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let mut vars: Vec<(&str, &str)> = extra.to_vec();
    vars.extend([
        ("MISSEDCALL_GATEWAY", "twilio"),
        ("MISSEDCALL_TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("MISSEDCALL_TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("MISSEDCALL_TWILIO_API_BASE", api_base),
        ("MISSEDCALL_LISTEN", listen.as_str()),
        ("MISSEDCALL_PUBLIC_URL", public.as_str()),
        ("MISSEDCALL_GATEWAY_BACKOFF_MS", "5"),
    ]);
    TestApp::spawn_env(&vars).await
}

/// The status the session has now, as the mobile app sees it.
async fn status_of(app: &TestApp, key: &str, id: &str, token: &str) -> TestResult<String> {
    let body = app.session_status(key, id, token).await?;
    str_at(&body, "/data/sessionStatus/status").ok_or_else(|| format!("no status: {body}").into())
}

fn phone(n: u32) -> String {
    format!("+4474001{n:05}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_call_carries_every_field_with_basic_auth() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.field("To"), Some(PHONE));
    assert_eq!(call.field("From"), Some("+14155550100"));
    assert_eq!(call.field("Twiml"), Some("<Response><Hangup/></Response>"));
    let timeout: u64 = call.field("Timeout").ok_or("no Timeout")?.parse()?;
    assert!((1..=30).contains(&timeout), "ring timeout {timeout}");
    assert_eq!(
        call.field("StatusCallback"),
        Some(format!("{}/gateways/twilio/status?session={id}", app.base).as_str())
    );
    assert_eq!(call.field("StatusCallbackMethod"), Some("POST"));
    assert_eq!(
        call.fields("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    let sid = call.sid.clone().ok_or("call not created")?;
    let stored = app
        .count(&format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE id = '{id}' \
             AND gateway = 'twilio' AND gateway_call_id = '{sid}'"
        ))
        .await?;
    assert_eq!(stored, 1);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALLING");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_fail_once_without_retrying() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(
        &fake.base,
        &[("MISSEDCALL_TWILIO_AUTH_TOKEN", "not-the-token")],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&body, "GATEWAY_UNAVAILABLE");
    // The fake refused the Basic credentials; trying again could not help.
    assert_eq!((fake.attempts(), fake.calls().len()), (1, 0));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_move_the_session_forward_only() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let call = fake.call_to(PHONE).ok_or("no call")?;

    assert_eq!(fake.callback(&call, "initiated").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALLING");
    assert_eq!(fake.callback(&call, "ringing").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "RINGING");
    // Duplicates and late arrivals of earlier statuses change nothing.
    assert_eq!(fake.callback(&call, "ringing").await?, 200);
    assert_eq!(fake.callback(&call, "initiated").await?, 200);
    assert_eq!(fake.callback(&call, "queued").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "RINGING");
    assert_eq!(fake.callback(&call, "no-answer").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALL_ENDED");
    // A failure reported after the call ended does not rewrite how it ended.
    assert_eq!(fake.callback(&call, "failed").await?, 200);
    assert_eq!(fake.callback(&call, "ringing").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALL_ENDED");

    let verified = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    for late in ["ringing", "completed", "failed", "canceled", "busy"] {
        assert_eq!(fake.callback(&call, late).await?, 200);
    }
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "VERIFIED");
    let verified_rows = app
        .count(&format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE id = '{id}' \
             AND status = 'VERIFIED' AND verified_at IS NOT NULL AND failure_reason IS NULL"
        ))
        .await?;
    assert_eq!(verified_rows, 1);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_call_is_reported_to_the_app() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let call = fake.call_to(PHONE).ok_or("no call")?;
    assert_eq!(fake.callback(&call, "ringing").await?, 200);
    assert_eq!(fake.callback(&call, "failed").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALL_FAILED");
    assert_eq!(fake.callback(&call, "completed").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALL_FAILED");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_with_a_bad_signature_are_forbidden_and_change_nothing() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let call = fake.call_to(PHONE).ok_or("no call")?;
    let url = call.field("StatusCallback").ok_or("no url")?.to_owned();
    let sign = |url: &str, params: &[(String, String)]| {
        missedcall::gateway::twilio::signature::compute(AUTH_TOKEN, url, params)
    };
    let params = fake.callback_params(&call, "ringing");
    let good = sign(&url, &params);

    // No signature at all.
    assert_eq!(fake.post_callback(&url, &params, None).await?, 403);
    // A signature from another token.
    let forged = missedcall::gateway::twilio::signature::compute("another-token", &url, &params);
    assert_eq!(fake.post_callback(&url, &params, Some(&forged)).await?, 403);
    // A tampered signature.
    let mut flipped = good.clone().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped)?;
    assert_eq!(
        fake.post_callback(&url, &params, Some(&flipped)).await?,
        403
    );
    // A tampered parameter under the original signature.
    let mut tampered = params.clone();
    for (key, value) in &mut tampered {
        if key == "CallStatus" {
            *value = "failed".into();
        }
    }
    assert_eq!(fake.post_callback(&url, &tampered, Some(&good)).await?, 403);
    // An added parameter under the original signature.
    let mut extended = params.clone();
    extended.push(("Extra".into(), "1".into()));
    assert_eq!(fake.post_callback(&url, &extended, Some(&good)).await?, 403);
    // The signature of one session's URL replayed against another's.
    let other_url = url.replace(&id, &uuid::Uuid::new_v4().to_string());
    assert_eq!(
        fake.post_callback(&other_url, &params, Some(&good)).await?,
        403
    );
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALLING");

    assert_eq!(fake.post_callback(&url, &params, Some(&good)).await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "RINGING");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_for_unknown_calls_are_acknowledged() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let mut stranger: ReceivedCall = fake.call_to(PHONE).ok_or("no call")?;
    let unknown_session = uuid::Uuid::new_v4();
    let url = format!(
        "{}/gateways/twilio/status?session={unknown_session}",
        app.base
    );
    stranger.sid = Some("CA00000000000000000000000000000000".into());
    for (key, value) in &mut stranger.form {
        if key == "StatusCallback" {
            value.clone_from(&url);
        }
    }
    assert_eq!(fake.callback(&stranger, "ringing").await?, 200);
    // Without the session parameter at all.
    let bare = format!("{}/gateways/twilio/status", app.base);
    let params = fake.callback_params(&stranger, "completed");
    let signature = missedcall::gateway::twilio::signature::compute(AUTH_TOKEN, &bare, &params);
    assert_eq!(
        fake.post_callback(&bare, &params, Some(&signature)).await?,
        200
    );
    // The right session with another call's SID does not move it.
    let mut wrong_sid = fake.call_to(PHONE).ok_or("no call")?;
    wrong_sid.sid = Some("CA11111111111111111111111111111111".into());
    assert_eq!(fake.callback(&wrong_sid, "ringing").await?, 200);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALLING");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_twilio_error_maps_to_a_precise_code() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(
        &fake.base,
        &[("MISSEDCALL_GATEWAY_BREAKER_THRESHOLD", "1000")],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    // (HTTP status, Twilio code, client code, requests Twilio should have seen)
    let cases: [(u16, u32, &str, usize); 13] = [
        (400, 21211, "DESTINATION_UNREACHABLE", 1),
        (400, 21214, "DESTINATION_UNREACHABLE", 1),
        (400, 21217, "DESTINATION_UNREACHABLE", 1),
        (400, 13224, "DESTINATION_UNREACHABLE", 1),
        (400, 21215, "DESTINATION_NOT_PERMITTED", 1),
        (400, 21216, "DESTINATION_NOT_PERMITTED", 1),
        (400, 13227, "DESTINATION_NOT_PERMITTED", 1),
        (400, 21210, "CALL_FAILED", 1),
        (400, 21212, "CALL_FAILED", 1),
        (401, 20003, "GATEWAY_UNAVAILABLE", 1),
        // Too many requests / queue full: nothing was created, so it is tried again.
        (429, 20429, "GATEWAY_UNAVAILABLE", 3),
        // A server error may have created the call: never tried twice.
        (500, 20500, "GATEWAY_UNAVAILABLE", 1),
        (503, 20503, "GATEWAY_UNAVAILABLE", 1),
    ];
    for (n, (http, code, expected, requests)) in cases.into_iter().enumerate() {
        let to = phone(u32::try_from(n)?);
        fake.script(std::iter::repeat_n(Next::Error { http, code }, requests));
        let before = fake.calls().len();
        let body = app.request_call(&acme.pk, &to).await?;
        assert_code(&body, expected);
        assert_eq!(
            fake.calls().len() - before,
            requests,
            "Twilio {code}: wrong number of requests"
        );
        let failed = app
            .count(&format!(
                "SELECT count(*) AS n FROM verification_sessions s \
                 WHERE s.status = 'CALL_FAILED' AND s.failure_reason LIKE '%{code}%' \
                 AND EXISTS (SELECT 1 FROM audit_events a WHERE a.session_id = s.id \
                   AND a.kind = 'call.failed')"
            ))
            .await?;
        assert_eq!(failed, 1, "Twilio {code}: session not recorded as failed");
    }
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_call_is_retried_then_placed() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    fake.script([Next::Error {
        http: 429,
        code: 20429,
    }]);
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].form, calls[1].form,
        "the retry must send the same call"
    );
    assert!(calls[0].sid.is_none() && calls[1].sid.is_some());
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALLING");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_twilio_times_out_and_is_not_called_twice() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[("MISSEDCALL_GATEWAY_TIMEOUT_MS", "300")]).await?;
    let acme = app.tenant("acme").await?;
    fake.script([Next::Slow(Duration::from_secs(3))]);
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&body, "GATEWAY_UNAVAILABLE");
    // The call may exist at Twilio: a second request could ring the phone twice.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.calls().len(), 1);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_circuit_opens_on_an_outage_and_closes_after_it() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(
        &fake.base,
        &[
            ("MISSEDCALL_GATEWAY_BREAKER_THRESHOLD", "2"),
            ("MISSEDCALL_GATEWAY_BREAKER_OPEN_MS", "500"),
        ],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    let outage = Next::Error {
        http: 503,
        code: 20503,
    };
    fake.script([outage.clone(), outage]);
    for n in 0..2 {
        assert_code(
            &app.request_call(&acme.pk, &phone(n)).await?,
            "GATEWAY_UNAVAILABLE",
        );
    }
    assert_eq!(fake.calls().len(), 2);
    // Open: refused at once, Twilio not asked.
    for n in 2..5 {
        assert_code(
            &app.request_call(&acme.pk, &phone(n)).await?,
            "GATEWAY_UNAVAILABLE",
        );
    }
    assert_eq!(fake.calls().len(), 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Half-open: one trial call goes through and closes the circuit.
    app.start_session(&acme.pk, &phone(5)).await?;
    app.start_session(&acme.pk, &phone(6)).await?;
    assert_eq!(fake.calls().len(), 4);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_fail_over_to_the_second_gateway_only_when_none_was_placed() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let dead = format!("http://127.0.0.1:{}", free_port()?);
    let app = twilio_app(
        &dead,
        &[("MISSEDCALL_TWILIO_FAILOVER_API_BASE", fake.base.as_str())],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    assert_eq!(fake.calls().len(), 1);
    assert_eq!(status_of(&app, &acme.pk, &id, &token).await?, "CALLING");
    app.stop().await;

    // A primary that may have created the call is not second-guessed by the secondary.
    let primary = FakeTwilio::start().await?;
    let secondary = FakeTwilio::start().await?;
    let app = twilio_app(
        &primary.base,
        &[(
            "MISSEDCALL_TWILIO_FAILOVER_API_BASE",
            secondary.base.as_str(),
        )],
    )
    .await?;
    let acme = app.tenant("acme").await?;
    primary.script([Next::Error {
        http: 502,
        code: 20500,
    }]);
    assert_code(
        &app.request_call(&acme.pk, PHONE).await?,
        "GATEWAY_UNAVAILABLE",
    );
    assert_eq!((primary.calls().len(), secondary.calls().len()), (1, 0));
    // A primary that refused before creating anything is.
    primary.script(std::iter::repeat_n(
        Next::Error {
            http: 429,
            code: 20429,
        },
        3,
    ));
    app.start_session(&acme.pk, &phone(1)).await?;
    assert_eq!((primary.calls().len(), secondary.calls().len()), (4, 1));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn verifying_while_the_phone_rings_hangs_the_call_up() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let call = fake.call_to(PHONE).ok_or("no call")?;
    let sid = call.sid.clone().ok_or("no sid")?;
    assert_eq!(fake.callback(&call, "ringing").await?, 200);
    let verified = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    let mut updates = Vec::new();
    for _ in 0..100 {
        updates = fake.updates();
        if !updates.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].0, sid);
    assert_eq!(updates[0].1, [("Status".to_owned(), "canceled".to_owned())]);

    // A call that already ended is left alone.
    let (id, token) = app.start_session(&acme.pk, &phone(1)).await?;
    let call = fake.call_to(&phone(1)).ok_or("no call")?;
    assert_eq!(fake.callback(&call, "no-answer").await?, 200);
    let verified = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.updates().len(), 1);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_id_that_keeps_failing_is_cooled_down_then_deactivated() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let app = twilio_app(&fake.base, &[]).await?;
    let acme = app.tenant("acme").await?;
    let unverified = Next::Error {
        http: 400,
        code: 21210,
    };
    let health = "SELECT count(*) AS n FROM pool_numbers WHERE pattern = '+14155550100'";
    for n in 0..10u32 {
        fake.script([unverified.clone()]);
        assert_code(&app.request_call(&acme.pk, &phone(n)).await?, "CALL_FAILED");
        let failures = n + 1;
        let cooling = app
            .count(&format!(
                "{health} AND consecutive_failures = {failures} AND cooldown_until > now()"
            ))
            .await?;
        assert_eq!(cooling == 1, failures >= 3, "after {failures} failures");
        if failures == 3 {
            // Cooling down: the only caller ID is not offered.
            let body = app.request_call(&acme.pk, &phone(99)).await?;
            assert!(body.get("errors").is_some(), "{body}");
            assert_eq!(fake.calls().len(), 3);
        }
        app.sql("UPDATE pool_numbers SET cooldown_until = NULL")
            .await?;
    }
    assert_eq!(app.count(&format!("{health} AND NOT active")).await?, 1);
    let announced = app
        .count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = '{}' \
             AND kind = 'pool.number_deactivated'",
            acme.id
        ))
        .await?;
    assert_eq!(announced, 1);
    let body: Value = app.request_call(&acme.pk, &phone(100)).await?;
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(fake.calls().len(), 10);

    // Reactivation puts it back with a clean record, for its own tenant only.
    let other = app.tenant_without_pool("other").await?;
    let mut conn = app.db.conn().await?;
    let reactivate = missedcall::db::pool_numbers::reactivate;
    assert!(
        reactivate(&mut conn, other.id, "+14155550100")
            .await?
            .is_none()
    );
    let back = reactivate(&mut conn, acme.id, "+14155550100")
        .await?
        .ok_or("not found")?;
    assert!(back.active && back.consecutive_failures == 0 && back.cooldown_until.is_none());
    assert_eq!(back.failure_count, 10);
    app.start_session(&acme.pk, &phone(103)).await?;
    app.sql("UPDATE pool_numbers SET active = false WHERE pattern = '+14155550100'")
        .await?;

    // A success resets the run of failures of a healthy entry.
    app.add_pool(&acme, "+14155550101").await?;
    fake.script([unverified]);
    assert_code(
        &app.request_call(&acme.pk, &phone(101)).await?,
        "CALL_FAILED",
    );
    app.start_session(&acme.pk, &phone(102)).await?;
    let reset = app
        .count(
            "SELECT count(*) AS n FROM pool_numbers WHERE pattern = '+14155550101' \
             AND consecutive_failures = 0 AND failure_count = 1",
        )
        .await?;
    assert_eq!(reset, 1);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_calls_through_its_own_twilio_account() -> TestResult {
    let fake = FakeTwilio::start().await?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    // The platform itself uses the simulator; only `own` brings a Twilio account.
    let app = TestApp::spawn_env(&[
        ("MISSEDCALL_TWILIO_API_BASE", fake.base.as_str()),
        ("MISSEDCALL_LISTEN", listen.as_str()),
        ("MISSEDCALL_PUBLIC_URL", public.as_str()),
    ])
    .await?;
    let own = app.tenant("own").await?;
    let shared = app.tenant("shared").await?;
    let set = app
        .gql(
            Some(&own.sk),
            "mutation($sid: String!, $token: String!) { setTenantGateway(input: {kind: TWILIO, twilioAccountSid: $sid, twilioAuthToken: $token}) { gateway { kind } } }",
            serde_json::json!({"sid": ACCOUNT_SID, "token": AUTH_TOKEN}),
        )
        .await?;
    assert_eq!(
        set["data"]["setTenantGateway"]["gateway"]["kind"], "TWILIO",
        "{set}"
    );

    let (id, token) = app.start_session(&own.pk, PHONE).await?;
    let call = fake
        .call_to(PHONE)
        .ok_or("the tenant's call did not reach its account")?;
    // The shared tenant still rings through the platform's simulator.
    let (shared_id, _) = app.start_session(&shared.pk, &phone(1)).await?;
    app.incoming_caller_id(&phone(1), &shared_id).await?;
    assert_eq!(fake.calls().len(), 1);

    // Callbacks are signed with the tenant's token; the platform has none.
    assert_eq!(fake.callback(&call, "ringing").await?, 200);
    assert_eq!(status_of(&app, &own.pk, &id, &token).await?, "RINGING");
    let url = call.field("StatusCallback").ok_or("no url")?.to_owned();
    let params = fake.callback_params(&call, "failed");
    let forged = missedcall::gateway::twilio::signature::compute("someone-else", &url, &params);
    assert_eq!(fake.post_callback(&url, &params, Some(&forged)).await?, 403);
    assert_eq!(status_of(&app, &own.pk, &id, &token).await?, "RINGING");

    // Verifying hangs up through the tenant's account.
    let verified = app.verify(&own.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    for _ in 0..100 {
        if !fake.updates().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.updates().len(), 1);

    // Back on the platform's gateway, nothing reaches the tenant's account.
    app.gql(
        Some(&own.sk),
        "mutation { setTenantGateway(input: {kind: PLATFORM}) { id } }",
        serde_json::json!({}),
    )
    .await?;
    let (id, _) = app.start_session(&own.pk, &phone(2)).await?;
    app.incoming_caller_id(&phone(2), &id).await?;
    assert_eq!(fake.calls().len(), 1);
    app.stop().await;
    Ok(())
}
