//! The flash-call flow over real HTTP against a per-test Postgres database.

mod common;

use common::{ISSUER, TestApp, TestResult, assert_code, error_code, str_at};
use serde_json::{Value, json};

const PHONE: &str = "+447400123456";

async fn decode_token(
    app: &TestApp,
    token: &str,
    audience: &str,
) -> TestResult<missedcall::tokens::VerificationClaims> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.clone().ok_or("no kid")?;
    let (status, jwks) = app.get_json("/.well-known/jwks.json").await?;
    assert_eq!(status, 200);
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| {
            keys.iter()
                .find(|k| k["kid"].as_str() == Some(kid.as_str()))
        })
        .ok_or("kid not in JWKS")?;
    let key = missedcall::tokens::decoding_key_from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    Ok(jsonwebtoken::decode(token, &key, &validation)?.claims)
}

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_issues_a_token_that_checks_against_the_jwks() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert!(body.get("errors").is_none(), "{body}");
    let started = &body["data"]["requestCall"];
    assert_eq!(started["status"], "CALLING");
    assert_eq!(started["interceptionTimeoutSeconds"], 30);
    assert_eq!(started["callerIdPattern"], r"^\+14155550100$");
    let session_id = started["sessionId"].as_str().ok_or("no id")?;
    let token = started["sessionToken"].as_str().ok_or("no token")?;
    assert!(token.starts_with("st_") && token.len() > 40);

    let caller_id = app.incoming_caller_id(PHONE, session_id).await?;
    assert_eq!(caller_id, "+14155550100");
    let verified = app.verify(&acme.pk, session_id, token, &caller_id).await?;
    let payload = &verified["data"]["verify"];
    assert_eq!(payload["verified"], true, "{verified}");
    assert_eq!(payload["status"], "VERIFIED");
    assert_eq!(payload["attemptsLeft"], 2);
    let jwt = payload["token"].as_str().ok_or("no jwt")?;
    assert!(payload["tokenExpiresAt"].is_string());

    let claims = decode_token(&app, jwt, "acme").await?;
    assert_eq!(claims.sub, PHONE);
    assert_eq!(claims.phone_number, PHONE);
    assert!(claims.phone_number_verified);
    assert_eq!(claims.tenant_id, acme.id.to_string());
    assert_eq!(claims.jti, session_id);
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.exp - claims.iat, 3600);

    // The token of tenant acme must fail the audience check of another tenant.
    assert!(decode_token(&app, jwt, "other").await.is_err());
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_id_in_national_format_verifies() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    app.add_pool(&acme, "+447700900999").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let caller_id = app.incoming_caller_id(PHONE, &id).await?;
    // A UK destination prefers the UK caller ID, which the phone may show as 07700 900999.
    assert_eq!(caller_id, "+447700900999");
    let verified = app.verify(&acme.pk, &id, &token, "07700 900999").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true, "{verified}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_caller_id_then_right_verifies() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let wrong = app.verify(&acme.pk, &id, &token, "+14155550199").await?;
    assert!(
        wrong.get("errors").is_none(),
        "a wrong caller ID is not an error: {wrong}"
    );
    assert_eq!(wrong["data"]["verify"]["verified"], false);
    assert_eq!(wrong["data"]["verify"]["attemptsLeft"], 2);
    assert!(wrong["data"]["verify"]["token"].is_null());
    let garbage = app.verify(&acme.pk, &id, &token, "not a number").await?;
    assert_eq!(garbage["data"]["verify"]["attemptsLeft"], 1);
    let right = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(right["data"]["verify"]["verified"], true, "{right}");
    assert_eq!(right["data"]["verify"]["attemptsLeft"], 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn session_locks_at_max_attempts() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    for left in [2, 1] {
        let body = app.verify(&acme.pk, &id, &token, "+19999999999").await?;
        assert_eq!(body["data"]["verify"]["attemptsLeft"], left);
    }
    let last = app.verify(&acme.pk, &id, &token, "+19999999999").await?;
    assert_eq!(last["data"]["verify"]["status"], "LOCKED", "{last}");
    assert_eq!(last["data"]["verify"]["attemptsLeft"], 0);
    // Even the right caller ID is refused now.
    let after = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_code(&after, "SESSION_LOCKED");
    let status = app.session_status(&acme.pk, &id, &token).await?;
    assert_eq!(status["data"]["sessionStatus"]["status"], "LOCKED");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_session_is_refused_and_marked_expired() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    app.sql(&format!(
        "UPDATE verification_sessions SET expires_at = now() - interval '1 second' WHERE id = '{id}'"
    ))
    .await?;
    let body = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_code(&body, "SESSION_EXPIRED");
    let status = app.session_status(&acme.pk, &id, &token).await?;
    assert_eq!(status["data"]["sessionStatus"]["status"], "EXPIRED");
    // The refusal used no attempt.
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint AS n FROM verification_sessions WHERE id = '{id}'"
        ))
        .await?;
    assert_eq!(attempts, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn second_verify_returns_already_used() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let first = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(first["data"]["verify"]["verified"], true);
    let replay = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_code(&replay, "ALREADY_USED");
    assert!(replay["data"].is_null());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_session_token_is_refused_without_using_an_attempt() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, _token) = app.start_session(&acme.pk, PHONE).await?;
    let body = app
        .verify(&acme.pk, &id, "st_wrong", "+14155550100")
        .await?;
    assert_code(&body, "INVALID_SESSION_TOKEN");
    let status = app.session_status(&acme.pk, &id, "st_wrong").await?;
    assert_code(&status, "INVALID_SESSION_TOKEN");
    let attempts = app
        .count(&format!(
            "SELECT attempts::bigint AS n FROM verification_sessions WHERE id = '{id}'"
        ))
        .await?;
    assert_eq!(attempts, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_key_sees_no_session() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let globex = app.tenant("globex").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    // Even with the right session token, another tenant's key finds nothing to verify or watch.
    let body = app.verify(&globex.pk, &id, &token, "+14155550100").await?;
    assert_code(&body, "SESSION_NOT_FOUND");
    let status = app.session_status(&globex.pk, &id, &token).await?;
    assert_code(&status, "SESSION_NOT_FOUND");
    let unknown = app
        .verify(
            &acme.pk,
            &uuid::Uuid::new_v4().to_string(),
            &token,
            "+14155550100",
        )
        .await?;
    assert_code(&unknown, "SESSION_NOT_FOUND");
    // The session is untouched and still verifies for its own tenant.
    let ok = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(ok["data"]["verify"]["verified"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn app_signature_is_checked_when_required() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let mut conn = app.db.conn().await?;
    missedcall::tenancy::add_app_signature(&mut conn, acme.id, "android", "FA+9qCX9VSu", "release")
        .await?;
    app.sql(&format!(
        "UPDATE tenants SET require_app_signature = true WHERE id = '{}'",
        acme.id
    ))
    .await?;
    let missing = app
        .request_call_with_signature(&acme.pk, PHONE, None)
        .await?;
    assert_code(&missing, "INVALID_APP_SIGNATURE");
    let wrong = app
        .request_call_with_signature(&acme.pk, PHONE, Some("wrongsig123"))
        .await?;
    assert_code(&wrong, "INVALID_APP_SIGNATURE");
    let long = "x".repeat(500);
    let too_long = app
        .request_call_with_signature(&acme.pk, PHONE, Some(&long))
        .await?;
    assert_code(&too_long, "INVALID_APP_SIGNATURE");
    let good = app
        .request_call_with_signature(&acme.pk, PHONE, Some("FA+9qCX9VSu"))
        .await?;
    assert!(good.get("errors").is_none(), "{good}");
    // Refusals placed no call and stored no session.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn disallowed_country_is_refused() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let mut conn = app.db.conn().await?;
    missedcall::tenancy::allow_countries(&mut conn, acme.id, &["us".to_owned()]).await?;
    let refused = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&refused, "COUNTRY_NOT_ALLOWED");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("GB")
    );
    let allowed = app.request_call(&acme.pk, "+16502530000").await?;
    assert!(allowed.get("errors").is_none(), "{allowed}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_phone_numbers_are_refused() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let long = "+4".repeat(40);
    for input in [
        "",
        "+",
        "+447700900123",
        "07400123456",
        "+44 7700 90012a",
        "+999123456789",
        "+1",
        &long,
        "☎️",
        "+44\u{0}7400123456",
    ] {
        let body = app.request_call(&acme.pk, input).await?;
        assert_code(&body, "INVALID_PHONE_NUMBER");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn risky_number_types_are_refused() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    // Premium rate, shared cost, voicemail, pager, personal number, UAN, toll free, fixed line.
    let risky = [
        "+449012345678",
        "+34901123456",
        "+41860123456789",
        "+447640123456",
        "+447012345678",
        "+445512345678",
        "+448001234567",
        "+441212345678",
    ];
    for input in risky {
        let body = app.request_call(&acme.pk, input).await?;
        assert_code(&body, "NUMBER_TYPE_NOT_ALLOWED");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE kind = 'request.refused'")
            .await?,
        8
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_tenant_is_refused() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    app.sql(&format!(
        "UPDATE tenants SET status = 'SUSPENDED' WHERE id = '{}'",
        acme.id
    ))
    .await?;
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&body, "TENANT_SUSPENDED");
    let body = app
        .gql(Some(&acme.sk), "{ viewer { slug } }", json!({}))
        .await?;
    assert_code(&body, "TENANT_SUSPENDED");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_key_is_refused() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    app.sql(&format!(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = '{}' AND kind = 'PUBLISHABLE'",
        acme.id
    ))
    .await?;
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&body, "API_KEY_REVOKED");
    // The secret key of the same tenant still works.
    let viewer = app
        .gql(Some(&acme.sk), "{ viewer { slug keyKind } }", json!({}))
        .await?;
    assert_eq!(viewer["data"]["viewer"]["keyKind"], "SECRET");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_unknown_keys_are_unauthenticated() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let request = "mutation { requestCall(input: {phoneNumber: \"+447400123456\"}) { sessionId } }";
    let long = format!("pk_{}", "a".repeat(500));
    for key in [
        None,
        Some("pk_nope"),
        Some("garbage"),
        Some(""),
        Some(long.as_str()),
    ] {
        let body = app.gql(key, request, json!({})).await?;
        assert_code(&body, "UNAUTHENTICATED");
    }
    // A publishable key presented as a secret one (or vice versa) is not a key at all.
    let swapped = format!("sk_{}", &acme.pk[3..]);
    assert_code(
        &app.gql(Some(&swapped), request, json!({})).await?,
        "UNAUTHENTICATED",
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_pool_is_a_clear_error() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant_without_pool("acme").await?;
    let body = app.request_call(&acme.pk, PHONE).await?;
    assert_code(&body, "NO_CALLER_ID_AVAILABLE");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM verification_sessions")
            .await?,
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_codes_not_server_errors() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;

    let raw = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await?;
    assert_code(&body, "BAD_REQUEST");

    let syntax = app
        .gql(Some(&acme.pk), "mutation { requestCall(", json!({}))
        .await?;
    assert_code(&syntax, "GRAPHQL_VALIDATION_FAILED");
    let unknown_field = app.gql(Some(&acme.pk), "{ nope }", json!({})).await?;
    assert_code(&unknown_field, "GRAPHQL_VALIDATION_FAILED");
    let bad_variable = app
        .gql(
            Some(&acme.pk),
            "mutation($input: VerifyInput!) { verify(input: $input) { verified } }",
            json!({"input": {"sessionId": id}}),
        )
        .await?;
    assert_code(&bad_variable, "GRAPHQL_VALIDATION_FAILED");

    let bad_id = app
        .verify(&acme.pk, "not-a-uuid", &token, "+14155550100")
        .await?;
    assert_code(&bad_id, "INVALID_INPUT");
    let empty = app.verify(&acme.pk, &id, &token, "   ").await?;
    assert_code(&empty, "INVALID_INPUT");
    let long = app.verify(&acme.pk, &id, &token, &"1".repeat(65)).await?;
    assert_code(&long, "INVALID_INPUT");
    let long_token = app
        .verify(&acme.pk, &id, &"t".repeat(1000), "+14155550100")
        .await?;
    assert_code(&long_token, "INVALID_SESSION_TOKEN");
    let deep = format!("{{ viewer {} }}", "{ slug ".repeat(20) + &"}".repeat(20));
    assert!(error_code(&app.gql(Some(&acme.pk), &deep, json!({})).await?).is_some());

    let huge = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{}\"}}", "a".repeat(200_000)))
        .send()
        .await?;
    assert_eq!(huge.status(), 413);
    // None of that used an attempt.
    let verified = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["attemptsLeft"], 2, "{verified}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn call_progress_moves_the_session_forward() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    let mut seen = Vec::new();
    for _ in 0..200 {
        let body = app.session_status(&acme.pk, &id, &token).await?;
        let status = str_at(&body, "/data/sessionStatus/status").ok_or("no status")?;
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "CALL_ENDED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        seen.last().map(String::as_str),
        Some("CALL_ENDED"),
        "{seen:?}"
    );
    // Only forward moves were seen.
    let order = ["CALLING", "RINGING", "CALL_ENDED"];
    let positions: Vec<_> = seen
        .iter()
        .filter_map(|s| order.iter().position(|o| o == s))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // Verification still works after the call ended.
    let verified = app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    assert_eq!(verified["data"]["verify"]["verified"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_draw_random_caller_ids_within_the_range() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant_without_pool("acme").await?;
    app.add_pool(&acme, "+4477009001XX").await?;
    let mut seen = std::collections::HashSet::new();
    for i in 0..10 {
        let phone = format!("+4474001235{i:02}");
        let body = app.request_call(&acme.pk, &phone).await?;
        assert_eq!(
            body["data"]["requestCall"]["callerIdPattern"],
            r"^\+4477009001\d{2}$"
        );
        let id = str_at(&body, "/data/requestCall/sessionId").ok_or("no id")?;
        let token = str_at(&body, "/data/requestCall/sessionToken").ok_or("no token")?;
        let caller_id = app.incoming_caller_id(&phone, &id).await?;
        assert!(
            caller_id.starts_with("+4477009001") && caller_id.len() == 13,
            "{caller_id}"
        );
        seen.insert(caller_id.clone());
        let verified = app.verify(&acme.pk, &id, &token, &caller_id).await?;
        assert_eq!(verified["data"]["verify"]["verified"], true);
    }
    // 10 draws from 100 numbers: all equal would mean the digits are not random.
    assert!(seen.len() > 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_and_outcomes_are_audited_with_the_client_ip() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let (id, token) = app.start_session(&acme.pk, PHONE).await?;
    app.verify(&acme.pk, &id, &token, "+10000000000").await?;
    app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    app.verify(&acme.pk, &id, &token, "+14155550100").await?;
    let kinds_with_ip = app
        .count(&format!(
            "SELECT count(DISTINCT kind) AS n FROM audit_events WHERE session_id = '{id}' \
             AND ip = '127.0.0.1' AND kind IN ('call.requested', 'call.placed', 'verify.failed', 'verify.succeeded')"
        ))
        .await?;
    assert_eq!(kinds_with_ip, 4);
    let refused = app
        .count("SELECT count(*) AS n FROM audit_events WHERE kind = 'verify.refused' AND detail->>'code' = 'ALREADY_USED'")
        .await?;
    assert_eq!(refused, 1);
    // Full phone numbers never reach the audit detail.
    let leaks = app
        .count("SELECT count(*) AS n FROM audit_events WHERE detail::text LIKE '%7400123456%'")
        .await?;
    assert_eq!(leaks, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_jwks_are_served() -> TestResult {
    let app = TestApp::spawn().await?;
    let health = app.http.get(format!("{}/healthz", app.base)).send().await?;
    assert_eq!(health.status(), 200);
    let (status, ready) = app.get_json("/readyz").await?;
    assert_eq!(
        (status.as_u16(), ready["status"].as_str()),
        (200, Some("ready"))
    );
    let (status, jwks) = app.get_json("/.well-known/jwks.json").await?;
    assert_eq!(status, 200);
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key["kid"].is_string() && key.get("d").is_none());
    let (status, _) = app.get_json("/simulator/calls").await?;
    assert_eq!(status, 400);
    let (status, _) = app.get_json("/nope").await?;
    assert_eq!(status, 404);
    let graphiql = app.http.get(format!("{}/graphql", app.base)).send().await?;
    assert_eq!(graphiql.status(), 200);
    Ok(())
}
