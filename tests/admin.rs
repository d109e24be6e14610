//! Tenant administration over GraphQL: every query and mutation, their bad inputs, and the wall
//! between tenants.

mod common;

use common::{TestApp, TestResult, TestTenant, assert_code, error_code, str_at};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use serde_json::{Value, json};

const PHONE: &str = "+447400123456";

#[derive(QueryableByName)]
struct Snapshot {
    #[diesel(sql_type = Text)]
    s: String,
}

/// Every row of the tenant, in every tenant table, as one canonical text.
async fn snapshot(app: &TestApp, tenant: &TestTenant) -> TestResult<String> {
    use diesel_async::RunQueryDsl;
    let id = tenant.id;
    let query = format!(
        "SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') AS s FROM ( \
           SELECT to_jsonb(t)::text AS x FROM tenants t WHERE id = '{id}' \
           UNION ALL SELECT (to_jsonb(k) - 'last_used_at')::text FROM api_keys k WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(p)::text FROM pool_numbers p WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(a)::text FROM app_signatures a WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(c)::text FROM allowed_countries c WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(s)::text FROM verification_sessions s WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(e)::text FROM audit_events e WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(n)::text FROM test_numbers n WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(w)::text FROM webhook_endpoints w WHERE tenant_id = '{id}' \
           UNION ALL SELECT to_jsonb(d)::text FROM webhook_deliveries d WHERE tenant_id = '{id}') q"
    );
    let mut conn = app.db.conn().await?;
    let row: Snapshot = diesel::sql_query(query).get_result(&mut conn).await?;
    Ok(row.s)
}

/// Runs an admin document and returns `data.<field>`, failing on any error.
async fn ok(app: &TestApp, key: &str, document: &str, vars: Value) -> TestResult<Value> {
    let body = app.gql(Some(key), document, vars).await?;
    if body.get("errors").is_some() {
        return Err(format!("{document}: {body}").into());
    }
    let data = body.get("data").cloned().ok_or("no data")?;
    let first = data
        .as_object()
        .and_then(|o| o.values().next().cloned())
        .ok_or("empty data")?;
    Ok(first)
}

/// A tenant with one of everything an admin can own.
struct Owned {
    test_number_id: String,
    pool_id: String,
    signature_id: String,
    key_id: String,
    session_id: String,
    endpoint_id: String,
    delivery_id: String,
}

async fn populate(app: &TestApp, tenant: &TestTenant) -> TestResult<Owned> {
    let pool = ok(
        app,
        &tenant.sk,
        "mutation { addPoolNumber(input: {pattern: \"+467012300XX\", label: \"block\"}) { id } }",
        json!({}),
    )
    .await?;
    let signature = ok(
        app,
        &tenant.sk,
        "mutation { addAppSignature(input: {platform: ANDROID, signature: \"FA+9qCX9VSu\"}) { id } }",
        json!({}),
    )
    .await?;
    let key = ok(
        app,
        &tenant.sk,
        "mutation { createApiKey(input: {kind: PUBLISHABLE, label: \"ios\"}) { apiKey { id } key } }",
        json!({}),
    )
    .await?;
    ok(
        app,
        &tenant.sk,
        "mutation { setAllowedCountries(countryCodes: [\"GB\", \"SE\"]) }",
        json!({}),
    )
    .await?;
    let test_number = ok(
        app,
        &tenant.sk,
        "mutation { addTestNumber(input: {phoneNumber: \"+447400999999\", callerId: \"+15005550006\"}) { id } }",
        json!({}),
    )
    .await?;
    // Nothing listens there; the endpoint is disabled once it has a delivery, so the delivery
    // rests while the test looks at it.
    let endpoint = ok(
        app,
        &tenant.sk,
        "mutation { createWebhookEndpoint(input: {url: \"http://127.0.0.1:9/hooks\", \
         events: [VERIFICATION_REQUESTED]}) { endpoint { id } } }",
        json!({}),
    )
    .await?;
    let endpoint_id = str_at(&endpoint, "/endpoint/id").ok_or("endpoint id")?;
    let (session_id, token) = app.start_session(&tenant.pk, PHONE).await?;
    ok(
        app,
        &tenant.sk,
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { secret } }",
        json!({"id": endpoint_id}),
    )
    .await?;
    let deliveries = ok(
        app,
        &tenant.sk,
        "{ webhookDeliveries { edges { node { id } } } }",
        json!({}),
    )
    .await?;
    let delivery_id = str_at(&deliveries, "/edges/0/node/id").ok_or("delivery id")?;
    // Let the simulated call finish so the session rests while the test looks at it.
    for _ in 0..200 {
        let body = app.session_status(&tenant.pk, &session_id, &token).await?;
        if body["data"]["sessionStatus"]["status"] == "CALL_ENDED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(Owned {
        test_number_id: str_at(&test_number, "/id").ok_or("test number id")?,
        pool_id: str_at(&pool, "/id").ok_or("pool id")?,
        signature_id: str_at(&signature, "/id").ok_or("signature id")?,
        key_id: str_at(&key, "/apiKey/id").ok_or("key id")?,
        session_id,
        endpoint_id,
        delivery_id,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_objects_are_not_found_and_stay_unchanged() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let b = app.tenant("tenant-b").await?;
    let owned = populate(&app, &a).await?;
    populate(&app, &b).await?;
    let before = snapshot(&app, &a).await?;

    let by_id: [(&str, &str); 13] = [
        (
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {url: \"https://b.example/\"}) { secret } }",
            &owned.endpoint_id,
        ),
        (
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
            &owned.endpoint_id,
        ),
        (
            "mutation($id: ID!) { replayWebhookDelivery(id: $id) { id } }",
            &owned.delivery_id,
        ),
        (
            "query($id: ID!) { webhookDelivery(id: $id) { id payload } }",
            &owned.delivery_id,
        ),
        (
            "mutation($id: ID!) { removeTestNumber(id: $id) { id } }",
            &owned.test_number_id,
        ),
        (
            "mutation($id: ID!) { updatePoolNumber(id: $id, input: {label: \"mine\", active: false}) { id } }",
            &owned.pool_id,
        ),
        (
            "mutation($id: ID!) { deactivatePoolNumber(id: $id) { id } }",
            &owned.pool_id,
        ),
        (
            "mutation($id: ID!) { removePoolNumber(id: $id) { id } }",
            &owned.pool_id,
        ),
        (
            "mutation($id: ID!) { removeAppSignature(id: $id) { id } }",
            &owned.signature_id,
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            &owned.key_id,
        ),
        (
            "query($id: ID!) { session(id: $id) { id phoneNumber } }",
            &owned.session_id,
        ),
        (
            "query($id: ID!) { session(id: $id) { id auditTrail { id } } }",
            &owned.session_id,
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            &a.id.to_string(),
        ),
    ];
    for (document, id) in by_id {
        let body = app.gql(Some(&b.sk), document, json!({"id": id})).await?;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("NOT_FOUND"),
            "{document}: {body}"
        );
        assert!(body["data"].is_null(), "{document} leaked data: {body}");
    }

    // Lists with B's key hold none of A's objects.
    let lists = [
        "{ poolNumbers { id pattern } }",
        "{ appSignatures { id } }",
        "{ apiKeys { id prefix } }",
        "{ sessions(first: 100) { edges { node { id phoneNumber } } } }",
        "{ auditLog(first: 100) { edges { node { id sessionId } } } }",
        "{ tenant { id slug } }",
        "{ testNumbers { id phoneNumber } }",
        "{ webhookEndpoints { id url } }",
        "{ webhookDeliveries(first: 100) { edges { node { id payload } } } }",
    ];
    let a_ids = [
        owned.test_number_id.as_str(),
        owned.pool_id.as_str(),
        owned.signature_id.as_str(),
        owned.key_id.as_str(),
        owned.session_id.as_str(),
        owned.endpoint_id.as_str(),
        owned.delivery_id.as_str(),
    ];
    for document in lists {
        let data = ok(&app, &b.sk, document, json!({})).await?;
        let text = data.to_string();
        for id in a_ids.iter().chain([a.id.to_string().as_str()].iter()) {
            assert!(!text.contains(id), "{document} shows A's {id}: {text}");
        }
    }
    let trail = ok(
        &app,
        &b.sk,
        "query($s: ID!) { auditLog(sessionId: $s) { edges { node { id } } } }",
        json!({"s": owned.session_id}),
    )
    .await?;
    assert_eq!(trail["edges"], json!([]));
    let tenant = ok(&app, &b.sk, "{ tenant { id } }", json!({})).await?;
    assert_eq!(tenant["id"], b.id.to_string());

    // B's own changes never reach A, even for the same pattern or signature.
    for document in [
        "mutation { updateTenantSettings(input: {maxAttempts: 5, name: \"B!\"}) { id } }",
        "mutation { setAllowedCountries(countryCodes: []) }",
        "mutation { disallowCountries(countryCodes: [\"GB\"]) }",
        "mutation { importPoolNumbers(entries: [{pattern: \"+14155550177\"}]) { id } }",
    ] {
        ok(&app, &b.sk, document, json!({})).await?;
    }
    assert_eq!(snapshot(&app, &a).await?, before, "A's rows changed");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn publishable_keys_reach_none_of_the_admin_surface() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let some_id = uuid::Uuid::new_v4().to_string();
    let documents = [
        "{ tenant { id } }",
        "{ poolNumbers { id } }",
        "{ appSignatures { id } }",
        "{ allowedCountries }",
        "{ apiKeys { id } }",
        "{ sessions { edges { cursor } } }",
        "query($id: ID!) { session(id: $id) { id } }",
        "{ auditLog { edges { cursor } } }",
        "{ statistics(from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\") { requests } }",
        "mutation { updateTenantSettings(input: {maxAttempts: 5}) { id } }",
        "mutation { setTenantGateway(input: {kind: PLATFORM}) { id } }",
        "mutation { addPoolNumber(input: {pattern: \"+14155550111\"}) { id } }",
        "mutation { importPoolNumbers(entries: [{pattern: \"+14155550111\"}]) { id } }",
        "mutation($id: ID!) { updatePoolNumber(id: $id, input: {label: \"x\"}) { id } }",
        "mutation($id: ID!) { deactivatePoolNumber(id: $id) { id } }",
        "mutation($id: ID!) { removePoolNumber(id: $id) { id } }",
        "mutation { addAppSignature(input: {platform: IOS, signature: \"com.acme\"}) { id } }",
        "mutation($id: ID!) { removeAppSignature(id: $id) { id } }",
        "mutation { setAllowedCountries(countryCodes: [\"GB\"]) }",
        "mutation { allowCountries(countryCodes: [\"GB\"]) }",
        "mutation { disallowCountries(countryCodes: [\"GB\"]) }",
        "mutation { createApiKey(input: {kind: SECRET}) { key } }",
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        "{ testNumbers { id } }",
        "mutation { addTestNumber(input: {phoneNumber: \"+447400999998\", callerId: \"+15005550006\"}) { id } }",
        "mutation($id: ID!) { removeTestNumber(id: $id) { id } }",
        "mutation { setApprovalHook(input: {url: \"https://example.com/hook\"}) { secret } }",
        "mutation { removeApprovalHook { id } }",
    ];
    let before = snapshot(&app, &a).await?;
    for document in documents {
        let vars = if document.contains("$id") {
            json!({"id": some_id})
        } else {
            json!({})
        };
        let body = app.gql(Some(&a.pk), document, vars.clone()).await?;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("FORBIDDEN"),
            "{document}: {body}"
        );
        let body = app.gql(None, document, vars).await?;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{document}: {body}"
        );
    }
    // Secret keys are not the operator key.
    for document in [
        "{ tenants { id } }",
        "mutation { createTenant(input: {slug: \"evil\", name: \"Evil\"}) { secretKey } }",
    ] {
        let body = app.gql(Some(&a.sk), document, json!({})).await?;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("FORBIDDEN"),
            "{document}: {body}"
        );
    }
    assert_eq!(snapshot(&app, &a).await?, before);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_get_precise_codes_and_write_nothing() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let owned = populate(&app, &a).await?;
    let before = snapshot(&app, &a).await?;
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        // Unknown and malformed ids.
        (
            "mutation($id: ID!) { updatePoolNumber(id: $id, input: {label: \"x\"}) { id } }",
            json!({"id": unknown}),
            "NOT_FOUND",
        ),
        (
            "mutation($id: ID!) { removePoolNumber(id: $id) { id } }",
            json!({"id": "not-a-uuid"}),
            "INVALID_INPUT",
        ),
        (
            "mutation($id: ID!) { removeAppSignature(id: $id) { id } }",
            json!({"id": unknown}),
            "NOT_FOUND",
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({"id": unknown}),
            "NOT_FOUND",
        ),
        (
            "query($id: ID!) { session(id: $id) { id } }",
            json!({"id": unknown}),
            "NOT_FOUND",
        ),
        (
            "query($id: ID!) { session(id: $id) { id } }",
            json!({"id": "1; DROP TABLE tenants"}),
            "INVALID_INPUT",
        ),
        // Malformed numbers and ranges.
        (
            "mutation($p: String!) { addPoolNumber(input: {pattern: $p}) { id } }",
            json!({"p": "14155550100"}),
            "INVALID_PHONE_NUMBER",
        ),
        (
            "mutation($p: String!) { addPoolNumber(input: {pattern: $p}) { id } }",
            json!({"p": "+1415555XX00"}),
            "INVALID_PHONE_NUMBER",
        ),
        (
            "mutation($p: String!) { addPoolNumber(input: {pattern: $p}) { id } }",
            json!({"p": "+4670XXXXXXX"}),
            "INVALID_PHONE_NUMBER",
        ),
        (
            "mutation($p: String!) { addPoolNumber(input: {pattern: $p}) { id } }",
            json!({"p": ""}),
            "INVALID_PHONE_NUMBER",
        ),
        (
            "mutation($p: String!) { addPoolNumber(input: {pattern: $p}) { id } }",
            json!({"p": "+1".repeat(40)}),
            "INVALID_PHONE_NUMBER",
        ),
        (
            "mutation { addPoolNumber(input: {pattern: \"+14155550199\", weight: 0}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { addPoolNumber(input: {pattern: \"+14155550199\", label: \"\\u0000\"}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        // Duplicates.
        (
            "mutation { addPoolNumber(input: {pattern: \"+467012300xx\"}) { id } }",
            json!({}),
            "CONFLICT",
        ),
        (
            "mutation { addPoolNumber(input: {pattern: \"+14155550100\"}) { id } }",
            json!({}),
            "CONFLICT",
        ),
        (
            "mutation { addAppSignature(input: {platform: IOS, signature: \"FA+9qCX9VSu\"}) { id } }",
            json!({}),
            "CONFLICT",
        ),
        (
            "mutation { addAppSignature(input: {platform: IOS, signature: \"  \"}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        // Imports are all or nothing.
        (
            "mutation { importPoolNumbers(entries: [{pattern: \"+14155550101\"}, {pattern: \"nope\"}]) { id } }",
            json!({}),
            "INVALID_PHONE_NUMBER",
        ),
        (
            "mutation { importPoolNumbers(entries: [{pattern: \"+14155550101\"}, {pattern: \"+14155550101\"}]) { id } }",
            json!({}),
            "CONFLICT",
        ),
        (
            "mutation { importPoolNumbers(entries: [{pattern: \"+14155550101\"}, {pattern: \"+14155550100\"}]) { id } }",
            json!({}),
            "CONFLICT",
        ),
        (
            "mutation { importPoolNumbers(entries: [{pattern: \"+14155550101\"}, {pattern: \"+14155550102\", weight: 5000}]) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { importPoolNumbers(entries: []) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        // Unknown country codes.
        (
            "mutation { setAllowedCountries(countryCodes: [\"GB\", \"XX\"]) }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { allowCountries(countryCodes: [\"GBR\"]) }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { disallowCountries(countryCodes: [\"\"]) }",
            json!({}),
            "INVALID_INPUT",
        ),
        // Out-of-range settings, alone or with valid ones.
        (
            "mutation { updateTenantSettings(input: {maxAttempts: 0}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {name: \"ok\", maxAttempts: 11}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {validitySeconds: 29}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {jwtTtlSeconds: 59}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {ringTimeoutSeconds: 31}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {interceptionTimeoutSeconds: 4}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {maxGuessProbability: 0}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {maxGuessProbability: 1.5}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {jwtAudience: \"\"}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { updateTenantSettings(input: {rateLimits: {dailyCallCap: -1}}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { setTenantGateway(input: {kind: TWILIO}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { setTenantGateway(input: {kind: TWILIO, twilioAccountSid: \"AC1\", twilioAuthToken: \"0123456789abcdef\"}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "mutation { createApiKey(input: {kind: SECRET, label: \"\\u0007\"}) { key } }",
            json!({}),
            "INVALID_INPUT",
        ),
        // Paging.
        (
            "{ sessions(first: 0) { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "{ sessions(first: 101) { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "{ sessions(after: \"garbage\") { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "{ auditLog(after: \"MTox\") { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "{ sessions(filter: {phoneNumber: \"12\"}) { edges { cursor } } }",
            json!({}),
            "INVALID_PHONE_NUMBER",
        ),
        // Statistics ranges.
        (
            "{ statistics(from: \"2026-01-02T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { requests } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "{ statistics(from: \"2020-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\") { requests } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "{ statistics(from: \"2026-01-01T00:00:00Z\", to: \"2026-03-01T00:00:00Z\", bucket: HOUR) { requests } }",
            json!({}),
            "INVALID_INPUT",
        ),
    ];
    for (document, vars, code) in cases {
        let body = app.gql(Some(&a.sk), document, vars).await?;
        assert_eq!(
            error_code(&body).as_deref(),
            Some(code),
            "{document}: {body}"
        );
        assert!(body["data"].is_null(), "{document}: {body}");
    }
    assert_eq!(
        snapshot(&app, &a).await?,
        before,
        "a refused change wrote something"
    );
    // The pool entry is still there and usable.
    ok(
        &app,
        &a.sk,
        "mutation($id: ID!) { updatePoolNumber(id: $id, input: {weight: 3}) { weight } }",
        json!({"id": owned.pool_id}),
    )
    .await?;
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_is_managed_and_its_strength_shown_and_enforced() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let tenant = ok(
        &app,
        &a.sk,
        "{ tenant { guessProbability poolStrength { country callerIds guessProbability } settings { maxAttempts maxGuessProbability } } }",
        json!({}),
    )
    .await?;
    assert_eq!(tenant["guessProbability"], 1.0);
    assert_eq!(tenant["settings"]["maxGuessProbability"], Value::Null);

    let imported = ok(
        &app,
        &a.sk,
        "mutation { importPoolNumbers(entries: [{pattern: \"+447700900XXX\", label: \"uk block\", weight: 2}, {pattern: \"+14155550101\"}]) { id pattern callerIds health weight } }",
        json!({}),
    )
    .await?;
    assert_eq!(imported[0]["callerIds"], 1000);
    assert_eq!(imported[0]["weight"], 2);
    assert_eq!(imported[1]["health"], "OK");
    let tenant = ok(
        &app,
        &a.sk,
        "{ tenant { guessProbability poolStrength { country callerIds guessProbability } } }",
        json!({}),
    )
    .await?;
    let strength = tenant["poolStrength"].as_array().ok_or("no strength")?;
    let gb = strength
        .iter()
        .find(|s| s["country"] == "GB")
        .ok_or("no GB")?;
    assert_eq!(gb["callerIds"], 1000);
    assert!((gb["guessProbability"].as_f64().ok_or("p")? - 0.003).abs() < 1e-9);
    let us = strength
        .iter()
        .find(|s| s["country"] == "US")
        .ok_or("no US")?;
    assert_eq!(us["callerIds"], 2);
    assert_eq!(tenant["guessProbability"], 1.0);

    // A cap of 1 %: UK destinations have 1000 caller IDs, US ones 2.
    ok(
        &app,
        &a.sk,
        "mutation { updateTenantSettings(input: {maxGuessProbability: 0.01}) { id } }",
        json!({}),
    )
    .await?;
    app.start_session(&a.pk, PHONE).await?;
    let body = app.request_call(&a.pk, "+14155550123").await?;
    assert_code(&body, "POOL_TOO_WEAK");
    // Deactivating the block makes the UK weak too; reactivating restores it.
    let block = str_at(&imported, "/0/id").ok_or("id")?;
    let deactivated = ok(
        &app,
        &a.sk,
        "mutation($id: ID!) { deactivatePoolNumber(id: $id) { active health } }",
        json!({"id": block}),
    )
    .await?;
    assert_eq!(deactivated["health"], "DEACTIVATED");
    assert_code(&app.request_call(&a.pk, PHONE).await?, "POOL_TOO_WEAK");
    ok(
        &app,
        &a.sk,
        "mutation($id: ID!) { updatePoolNumber(id: $id, input: {active: true, label: \"back\"}) { label } }",
        json!({"id": block}),
    )
    .await?;
    app.start_session(&a.pk, PHONE).await?;
    // Removing the cap lets the weak destination through.
    ok(
        &app,
        &a.sk,
        "mutation { updateTenantSettings(input: {maxGuessProbability: null}) { settings { maxGuessProbability } } }",
        json!({}),
    )
    .await?;
    app.start_session(&a.pk, "+14155550123").await?;
    let removed = ok(
        &app,
        &a.sk,
        "mutation($id: ID!) { removePoolNumber(id: $id) { pattern } }",
        json!({"id": block}),
    )
    .await?;
    assert_eq!(removed["pattern"], "+447700900XXX");
    let pool = ok(
        &app,
        &a.sk,
        "{ poolNumbers { pattern callCount } }",
        json!({}),
    )
    .await?;
    assert_eq!(pool.as_array().map(Vec::len), Some(2));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_change_the_flow() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let updated = ok(
        &app,
        &a.sk,
        "mutation { updateTenantSettings(input: {maxAttempts: 1, interceptionTimeoutSeconds: 12, jwtAudience: \"acme-prod\", rateLimits: {dailyCallCap: 500}}) { settings { maxAttempts interceptionTimeoutSeconds jwtAudience rateLimits { dailyCallCap perIpPerMinute } } } }",
        json!({}),
    )
    .await?;
    assert_eq!(updated["settings"]["maxAttempts"], 1);
    assert_eq!(updated["settings"]["rateLimits"]["dailyCallCap"], 500);
    assert_eq!(
        updated["settings"]["rateLimits"]["perIpPerMinute"],
        Value::Null
    );
    let body = app.request_call(&a.pk, PHONE).await?;
    assert_eq!(
        body["data"]["requestCall"]["interceptionTimeoutSeconds"],
        12
    );
    let id = str_at(&body, "/data/requestCall/sessionId").ok_or("id")?;
    let token = str_at(&body, "/data/requestCall/sessionToken").ok_or("token")?;
    let wrong = app.verify(&a.pk, &id, &token, "+15555550000").await?;
    assert_eq!(wrong["data"]["verify"]["status"], "LOCKED", "{wrong}");

    // Require app signatures: unregistered apps are refused.
    ok(
        &app,
        &a.sk,
        "mutation { updateTenantSettings(input: {requireAppSignature: true}) { id } }",
        json!({}),
    )
    .await?;
    let refused = app
        .request_call_with_signature(&a.pk, PHONE, Some("unknown"))
        .await?;
    assert_code(&refused, "INVALID_APP_SIGNATURE");
    ok(
        &app,
        &a.sk,
        "mutation { addAppSignature(input: {platform: ANDROID, signature: \"FA+9qCX9VSu\"}) { id } }",
        json!({}),
    )
    .await?;
    let accepted = app
        .request_call_with_signature(&a.pk, PHONE, Some("FA+9qCX9VSu"))
        .await?;
    assert!(accepted.get("errors").is_none(), "{accepted}");

    // Countries: allow, disallow, replace.
    let list = ok(
        &app,
        &a.sk,
        "mutation { allowCountries(countryCodes: [\"se\", \"US\"]) }",
        json!({}),
    )
    .await?;
    assert_eq!(list, json!(["SE", "US"]));
    assert_code(
        &app.request_call_with_signature(&a.pk, PHONE, Some("FA+9qCX9VSu"))
            .await?,
        "COUNTRY_NOT_ALLOWED",
    );
    let list = ok(
        &app,
        &a.sk,
        "mutation { disallowCountries(countryCodes: [\"SE\"]) }",
        json!({}),
    )
    .await?;
    assert_eq!(list, json!(["US"]));
    let list = ok(
        &app,
        &a.sk,
        "mutation { setAllowedCountries(countryCodes: []) }",
        json!({}),
    )
    .await?;
    assert_eq!(list, json!([]));
    assert_eq!(
        ok(&app, &a.sk, "{ allowedCountries }", json!({})).await?,
        json!([])
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_shown_once_listed_by_prefix_and_revoked() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let created = ok(
        &app,
        &a.sk,
        "mutation { createApiKey(input: {kind: SECRET, label: \"ci\"}) { key apiKey { id kind prefix label revokedAt } } }",
        json!({}),
    )
    .await?;
    let key = str_at(&created, "/key").ok_or("key")?;
    let prefix = str_at(&created, "/apiKey/prefix").ok_or("prefix")?;
    assert!(key.starts_with("sk_") && key.starts_with(&prefix) && prefix.len() < key.len());
    assert_eq!(created["apiKey"]["kind"], "SECRET");
    let stored = app
        .count(&format!(
            "SELECT count(*) AS n FROM api_keys WHERE prefix = '{prefix}' \
             AND key_hash = sha256('{key}'::bytea)"
        ))
        .await?;
    assert_eq!(stored, 1, "only the hash is stored");
    let listed = ok(&app, &key, "{ apiKeys { prefix label kind } }", json!({})).await?;
    assert!(
        !listed.to_string().contains(&key),
        "a listing shows a whole key"
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
    let secret_only = ok(
        &app,
        &key,
        "{ apiKeys(prefix: \"sk_\") { kind } }",
        json!({}),
    )
    .await?;
    assert_eq!(secret_only, json!([{"kind": "SECRET"}, {"kind": "SECRET"}]));
    let by_prefix = ok(
        &app,
        &key,
        "query($p: String) { apiKeys(prefix: $p) { label } }",
        json!({"p": prefix}),
    )
    .await?;
    assert_eq!(by_prefix, json!([{"label": "ci"}]));
    assert_code(
        &app.gql(Some(&key), "{ apiKeys(prefix: \"%\") { id } }", json!({}))
            .await?,
        "INVALID_INPUT",
    );

    let id = str_at(&created, "/apiKey/id").ok_or("id")?;
    let revoked = ok(
        &app,
        &a.sk,
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({"id": id}),
    )
    .await?;
    assert!(revoked["revokedAt"].is_string());
    let again = ok(
        &app,
        &a.sk,
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({"id": id}),
    )
    .await?;
    assert_eq!(again["revokedAt"], revoked["revokedAt"]);
    let refused = app.gql(Some(&key), "{ tenant { id } }", json!({})).await?;
    assert_code(&refused, "API_KEY_REVOKED");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_credentials_are_write_only_and_sealed() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let sid = "AC0123456789abcdef0123456789abcdef";
    let token = "f00dfacef00dfacef00dfacef00dface";
    let tenant = ok(
        &app,
        &a.sk,
        "mutation($sid: String!, $token: String!) { setTenantGateway(input: {kind: TWILIO, twilioAccountSid: $sid, twilioAuthToken: $token}) { gateway { kind accountHint } } }",
        json!({"sid": sid, "token": token}),
    )
    .await?;
    assert_eq!(tenant["gateway"]["kind"], "TWILIO");
    assert_eq!(tenant["gateway"]["accountHint"], "AC…cdef");
    let everything = app
        .gql(
            Some(&a.sk),
            "{ tenant { id slug name status settings { jwtAudience } gateway { kind accountHint } } auditLog { edges { node { detail } } } }",
            json!({}),
        )
        .await?
        .to_string();
    assert!(
        !everything.contains(token) && !everything.contains(sid),
        "{everything}"
    );
    let plain = app
        .count(&format!(
            "SELECT count(*) AS n FROM tenants WHERE id = '{}' AND gateway = 'twilio' \
             AND position('{token}'::bytea IN gateway_credentials_sealed) = 0 \
             AND position('{sid}'::bytea IN gateway_credentials_sealed) = 0",
            a.id
        ))
        .await?;
    assert_eq!(plain, 1, "credentials stored in the clear");
    let back = ok(
        &app,
        &a.sk,
        "mutation { setTenantGateway(input: {kind: PLATFORM}) { gateway { kind accountHint } } }",
        json!({}),
    )
    .await?;
    assert_eq!(
        back["gateway"],
        json!({"kind": "PLATFORM", "accountHint": null})
    );
    let cleared = app
        .count(&format!(
            "SELECT count(*) AS n FROM tenants WHERE id = '{}' AND gateway IS NULL \
             AND gateway_credentials_sealed IS NULL",
            a.id
        ))
        .await?;
    assert_eq!(cleared, 1);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_page_stably_while_new_ones_arrive() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let mut existing = Vec::new();
    for n in 0..23u32 {
        let (id, _) = app.start_session(&a.pk, &format!("+4474001{n:05}")).await?;
        existing.push(id);
    }
    existing.reverse();
    let writer = {
        let api = common::Api::new(&app.base)?;
        let pk = a.pk.clone();
        tokio::spawn(async move {
            for n in 100..130u32 {
                let _ = api.request_call(&pk, &format!("+4474001{n:05}")).await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let started = existing.first().cloned().ok_or("no sessions")?;
    // The listing starts at the newest session that existed before paging began.
    let first_page = ok(
        &app,
        &a.sk,
        "query($f: SessionFilterInput) { sessions(first: 100, filter: $f) { edges { cursor node { id } } } }",
        json!({"f": {"statuses": null}}),
    )
    .await?;
    let start_cursor = first_page["edges"]
        .as_array()
        .and_then(|edges| edges.iter().find(|e| e["node"]["id"] == started.as_str()))
        .and_then(|e| e["cursor"].as_str())
        .ok_or("newest existing session not listed")?
        .to_owned();
    seen.push(started.clone());
    after = after.or(Some(start_cursor));
    loop {
        let page = ok(
            &app,
            &a.sk,
            "query($after: String) { sessions(first: 4, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }",
            json!({"after": after}),
        )
        .await?;
        for edge in page["edges"].as_array().ok_or("edges")? {
            seen.push(edge["node"]["id"].as_str().ok_or("id")?.to_owned());
        }
        assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = str_at(&page, "/pageInfo/endCursor");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    writer.await?;
    assert_eq!(seen, existing, "pages skipped or repeated sessions");

    // Filters: by status and by phone in any accepted format.
    let by_phone = ok(
        &app,
        &a.sk,
        "{ sessions(filter: {phoneNumber: \"+44 7400 100003\"}) { edges { node { phoneNumber status } } } }",
        json!({}),
    )
    .await?;
    assert_eq!(by_phone["edges"].as_array().map(Vec::len), Some(1));
    assert_eq!(by_phone["edges"][0]["node"]["phoneNumber"], "+447400100003");
    let verified = ok(
        &app,
        &a.sk,
        "{ sessions(filter: {statuses: [VERIFIED, LOCKED]}) { edges { node { id } } pageInfo { hasNextPage } } }",
        json!({}),
    )
    .await?;
    assert_eq!(verified["edges"], json!([]));
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_shows_its_audit_trail() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let (id, token) = app.start_session(&a.pk, PHONE).await?;
    let caller_id = app.incoming_caller_id(PHONE, &id).await?;
    app.verify(&a.pk, &id, &token, "+15555550000").await?;
    app.verify(&a.pk, &id, &token, &caller_id).await?;
    let session = ok(
        &app,
        &a.sk,
        "query($id: ID!) { session(id: $id) { id status attempts callerId phoneNumber gateway auditTrail { kind ip } } }",
        json!({"id": id}),
    )
    .await?;
    assert_eq!(session["status"], "VERIFIED");
    assert_eq!(session["attempts"], 2);
    assert_eq!(session["callerId"], caller_id);
    let kinds: Vec<&str> = session["auditTrail"]
        .as_array()
        .ok_or("trail")?
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"call.requested"), "{kinds:?}");
    assert!(kinds.contains(&"call.placed"), "{kinds:?}");
    let failed = kinds.iter().position(|k| *k == "verify.failed");
    let succeeded = kinds.iter().position(|k| *k == "verify.succeeded");
    assert!(failed.is_some() && failed < succeeded, "{kinds:?}");
    let log = ok(
        &app,
        &a.sk,
        "query($id: ID!) { auditLog(sessionId: $id, first: 2) { edges { node { kind } } pageInfo { hasNextPage endCursor } } }",
        json!({"id": id}),
    )
    .await?;
    assert_eq!(log["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(log["pageInfo"]["hasNextPage"], true);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_match_a_known_fixture() -> TestResult {
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let b = app.tenant("tenant-b").await?;
    app.add_pool(&a, "+447700900XXX").await?;
    // Twelve sessions on 2026-03-01/02 with known outcomes; one of tenant B's must not count.
    let fixture = format!(
        "WITH p AS (SELECT id, pattern FROM pool_numbers WHERE tenant_id = '{a}') \
         INSERT INTO verification_sessions (id, tenant_id, token_hash, phone_number, country, \
           number_type, pool_number_id, expected_caller_id, status, attempts, max_attempts, \
           gateway, gateway_call_id, call_status, failure_reason, created_at, expires_at, verified_at) \
         SELECT gen_random_uuid(), '{a}', sha256(v.n::text::bytea), v.phone, v.country, 'MOBILE', \
           (SELECT id FROM p WHERE pattern = v.pool), '+14155550100', v.status, 1, 3, 'simulator', \
           v.call, v.call_status, v.reason, v.created::timestamptz, v.created::timestamptz + interval '5 minutes', \
           v.created::timestamptz + make_interval(secs => v.secs) \
         FROM (VALUES \
           (1, '+447400000001', 'GB', '+447700900XXX', 'VERIFIED', 'c1', 'no-answer', NULL, '2026-03-01 10:00:00+00', 10.0), \
           (2, '+447400000002', 'GB', '+447700900XXX', 'VERIFIED', 'c2', 'no-answer', NULL, '2026-03-01 10:30:00+00', 20.0), \
           (3, '+447400000003', 'GB', '+447700900XXX', 'VERIFIED', 'c3', 'no-answer', NULL, '2026-03-01 11:00:00+00', 30.0), \
           (4, '+14155550001', 'US', '+14155550100', 'VERIFIED', 'c4', 'busy', NULL, '2026-03-01 12:00:00+00', 40.0), \
           (5, '+14155550002', 'US', '+14155550100', 'LOCKED', 'c5', 'no-answer', NULL, '2026-03-01 12:00:00+00', NULL), \
           (6, '+14155550003', 'US', '+14155550100', 'EXPIRED', 'c6', 'no-answer', NULL, '2026-03-01 13:00:00+00', NULL), \
           (7, '+14155550004', 'US', '+14155550100', 'EXPIRED', 'c7', 'failed', NULL, '2026-03-02 09:00:00+00', NULL), \
           (8, '+14155550005', 'US', '+14155550100', 'CALL_FAILED', NULL, NULL, 'gateway unavailable', '2026-03-02 09:00:00+00', NULL), \
           (9, '+14155550006', 'US', '+14155550100', 'CALL_FAILED', 'c9', 'failed', NULL, '2026-03-02 09:30:00+00', NULL), \
           (10, '+4915100000001', 'DE', '+14155550100', 'CALLING', 'c10', 'ringing', NULL, '2026-03-02 10:00:00+00', NULL), \
           (11, '+447400000011', 'GB', '+447700900XXX', 'VERIFIED', 'c11', 'no-answer', NULL, '2026-03-02 23:59:59+00', 50.0), \
           (12, '+447400000012', 'GB', '+447700900XXX', 'VERIFIED', 'c12', 'no-answer', NULL, '2026-03-03 00:00:00+00', 5.0) \
         ) AS v(n, phone, country, pool, status, call, call_status, reason, created, secs)",
        a = a.id
    );
    app.sql(&fixture).await?;
    app.sql(&format!(
        "INSERT INTO verification_sessions (id, tenant_id, token_hash, phone_number, country, \
           number_type, expected_caller_id, status, max_attempts, gateway, created_at, expires_at) \
         VALUES (gen_random_uuid(), '{}', sha256('b'::bytea), '+447400000099', 'GB', 'MOBILE', \
           '+14155550100', 'VERIFIED', 3, 'simulator', '2026-03-01 10:00:00+00', now())",
        b.id
    ))
    .await?;
    let stats = ok(
        &app,
        &a.sk,
        "{ statistics(from: \"2026-03-01T00:00:00Z\", to: \"2026-03-03T00:00:00Z\", bucket: DAY) { \
           requests callsPlaced verified conversionRate medianSecondsToVerify \
           failuresByReason { reason count } byCountry { key requests callsPlaced verified } \
           byCallerId { key requests verified } buckets { start requests callsPlaced verified } } }",
        json!({}),
    )
    .await?;
    // Session 12 is outside [from, to); B's session is another tenant's.
    assert_eq!(stats["requests"], 11);
    assert_eq!(stats["callsPlaced"], 10);
    assert_eq!(stats["verified"], 5);
    assert!((stats["conversionRate"].as_f64().ok_or("rate")? - 5.0 / 11.0).abs() < 1e-9);
    assert_eq!(stats["medianSecondsToVerify"], 30.0);
    assert_eq!(
        stats["failuresByReason"],
        json!([
            {"reason": "CALL_FAILED", "count": 2},
            {"reason": "CALL_NOT_PLACED", "count": 1},
            {"reason": "EXPIRED", "count": 1},
            {"reason": "TOO_MANY_ATTEMPTS", "count": 1},
        ])
    );
    assert_eq!(
        stats["byCountry"],
        json!([
            {"key": "US", "requests": 6, "callsPlaced": 5, "verified": 1},
            {"key": "GB", "requests": 4, "callsPlaced": 4, "verified": 4},
            {"key": "DE", "requests": 1, "callsPlaced": 1, "verified": 0},
        ])
    );
    assert_eq!(
        stats["byCallerId"],
        json!([
            {"key": "+14155550100", "requests": 7, "verified": 1},
            {"key": "+447700900XXX", "requests": 4, "verified": 4},
        ])
    );
    assert_eq!(
        stats["buckets"],
        json!([
            {"start": "2026-03-01T00:00:00+00:00", "requests": 6, "callsPlaced": 6, "verified": 4},
            {"start": "2026-03-02T00:00:00+00:00", "requests": 5, "callsPlaced": 4, "verified": 1},
        ])
    );
    let hourly = ok(
        &app,
        &a.sk,
        "{ statistics(from: \"2026-03-01T10:00:00Z\", to: \"2026-03-01T13:00:00Z\", bucket: HOUR) { requests buckets { requests } } }",
        json!({}),
    )
    .await?;
    assert_eq!(hourly["requests"], 5);
    assert_eq!(
        hourly["buckets"],
        json!([{"requests": 2}, {"requests": 1}, {"requests": 2}])
    );
    let empty = ok(
        &app,
        &a.sk,
        "{ statistics(from: \"2025-01-01T00:00:00Z\", to: \"2025-01-03T00:00:00Z\") { requests conversionRate medianSecondsToVerify buckets { requests } } }",
        json!({}),
    )
    .await?;
    assert_eq!(
        empty,
        json!({"requests": 0, "conversionRate": 0.0, "medianSecondsToVerify": null,
               "buckets": [{"requests": 0}, {"requests": 0}]})
    );
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_creates_lists_suspends_and_reactivates_tenants() -> TestResult {
    let operator_key = "op_test_0123456789abcdef0123456789abcdef";
    let app = TestApp::spawn_env(&[("MISSEDCALL_OPERATOR_KEY", operator_key)]).await?;
    let created = ok(
        &app,
        operator_key,
        "mutation { createTenant(input: {slug: \"newco\", name: \"New Co\"}) { tenant { id slug status } publishableKey secretKey } }",
        json!({}),
    )
    .await?;
    let id = str_at(&created, "/tenant/id").ok_or("id")?;
    let sk = str_at(&created, "/secretKey").ok_or("sk")?;
    assert_eq!(created["tenant"]["status"], "ACTIVE");
    let body = app
        .gql(
            Some(operator_key),
            "mutation { createTenant(input: {slug: \"newco\", name: \"Again\"}) { secretKey } }",
            json!({}),
        )
        .await?;
    assert_code(&body, "CONFLICT");
    let body = app
        .gql(
            Some(operator_key),
            "mutation { createTenant(input: {slug: \"-bad\", name: \"Bad\"}) { secretKey } }",
            json!({}),
        )
        .await?;
    assert_code(&body, "INVALID_INPUT");
    let tenants = ok(&app, operator_key, "{ tenants { slug } }", json!({})).await?;
    assert_eq!(tenants, json!([{"slug": "newco"}]));

    let suspended = ok(
        &app,
        operator_key,
        "mutation($id: ID!) { suspendTenant(id: $id) { status } }",
        json!({"id": id}),
    )
    .await?;
    assert_eq!(suspended["status"], "SUSPENDED");
    assert_code(
        &app.gql(Some(&sk), "{ tenant { id } }", json!({})).await?,
        "TENANT_SUSPENDED",
    );
    ok(
        &app,
        operator_key,
        "mutation($id: ID!) { reactivateTenant(id: $id) { status } }",
        json!({"id": id}),
    )
    .await?;
    ok(&app, &sk, "{ tenant { id } }", json!({})).await?;
    assert_code(
        &app.gql(
            Some(operator_key),
            "mutation($id: ID!) { suspendTenant(id: $id) { status } }",
            json!({"id": uuid::Uuid::new_v4().to_string()}),
        )
        .await?,
        "NOT_FOUND",
    );
    assert_code(
        &app.gql(Some("op_wrong"), "{ tenants { slug } }", json!({}))
            .await?,
        "FORBIDDEN",
    );

    let (_, jwks) = app.get_json("/.well-known/jwks.json").await?;
    let rotated = ok(
        &app,
        operator_key,
        "mutation { rotateSigningKey(overlapHours: 1) { kid } }",
        json!({}),
    )
    .await?;
    let kid = str_at(&rotated, "/kid").ok_or("kid")?;
    let (_, after) = app.get_json("/.well-known/jwks.json").await?;
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .ok_or("keys")?
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&kid.as_str()), "{kids:?}");
    assert_eq!(kids.len(), jwks["keys"].as_array().map_or(0, Vec::len) + 1);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_api_is_off_without_its_key() -> TestResult {
    let app = TestApp::spawn().await?;
    let body = app
        .gql(Some("anything"), "{ tenants { slug } }", json!({}))
        .await?;
    assert_code(&body, "FORBIDDEN");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn row_level_security_hides_other_tenants_rows_from_the_service_role() -> TestResult {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
    let app = TestApp::spawn().await?;
    let a = app.tenant("tenant-a").await?;
    let b = app.tenant("tenant-b").await?;
    populate(&app, &a).await?;
    populate(&app, &b).await?;
    let before = snapshot(&app, &a).await?;
    let app_url = missedcall::db::with_user(&app.db.url, missedcall::db::scope::APP_ROLE);
    let mut conn = AsyncPgConnection::establish(&app_url).await?;
    let count = async |conn: &mut AsyncPgConnection, sql: &str| -> TestResult<i64> {
        let row: common::Count = diesel::sql_query(sql).get_result(conn).await?;
        Ok(row.n)
    };
    let tables = [
        ("tenants", "id"),
        ("api_keys", "tenant_id"),
        ("pool_numbers", "tenant_id"),
        ("app_signatures", "tenant_id"),
        ("allowed_countries", "tenant_id"),
        ("verification_sessions", "tenant_id"),
        ("audit_events", "tenant_id"),
        ("test_numbers", "tenant_id"),
        ("webhook_endpoints", "tenant_id"),
        ("webhook_deliveries", "tenant_id"),
    ];
    // Declaring nothing shows nothing.
    for (table, _) in tables {
        assert_eq!(
            count(&mut conn, &format!("SELECT count(*) AS n FROM {table}")).await?,
            0
        );
    }
    conn.batch_execute(&format!(
        "SELECT set_config('missedcall.tenant_id', '{}', false)",
        b.id
    ))
    .await?;
    for (table, column) in tables {
        let of_a = format!(
            "SELECT count(*) AS n FROM {table} WHERE {column} = '{}'",
            a.id
        );
        assert_eq!(count(&mut conn, &of_a).await?, 0, "{table} shows A's rows");
        let all = format!("SELECT count(*) AS n FROM {table}");
        let of_b = format!(
            "SELECT count(*) AS n FROM {table} WHERE {column} = '{}'",
            b.id
        );
        assert_eq!(
            count(&mut conn, &all).await?,
            count(&mut conn, &of_b).await?
        );
        assert!(
            count(&mut conn, &of_b).await? > 0,
            "{table} hides B's own rows"
        );
    }
    // Writes to A's rows touch nothing or are refused.
    let a_id = a.id;
    assert_eq!(
        diesel::sql_query(format!(
            "UPDATE pool_numbers SET label = 'owned' WHERE tenant_id = '{a_id}'"
        ))
        .execute(&mut conn)
        .await?,
        0
    );
    assert_eq!(
        diesel::sql_query(format!(
            "DELETE FROM verification_sessions WHERE tenant_id = '{a_id}'"
        ))
        .execute(&mut conn)
        .await?,
        0
    );
    assert_eq!(
        diesel::sql_query("UPDATE tenants SET name = 'owned'")
            .execute(&mut conn)
            .await?,
        1,
        "only B's own tenant row is visible"
    );
    let refused = [
        format!(
            "INSERT INTO app_signatures (id, tenant_id, platform, signature) \
             VALUES (gen_random_uuid(), '{a_id}', 'IOS', 'com.evil')"
        ),
        format!("UPDATE pool_numbers SET tenant_id = '{a_id}'"),
        format!("INSERT INTO allowed_countries (tenant_id, country_code) VALUES ('{a_id}', 'FR')"),
        // The role cannot lift the wall itself.
        "ALTER TABLE pool_numbers DISABLE ROW LEVEL SECURITY".to_owned(),
        "SET ROLE postgres".to_owned(),
    ];
    for statement in refused {
        assert!(
            conn.batch_execute(&statement).await.is_err(),
            "{statement} was allowed"
        );
    }
    drop(conn);
    assert_eq!(snapshot(&app, &a).await?, before, "A's rows changed");

    // The service's own connections: a tenant scope sees only that tenant's rows, even for a
    // query that forgets to filter.
    let pool = missedcall::db::build_pool(&app_url, 2).await?;
    let database = missedcall::db::scope::Database::new(pool);
    let mut scoped = database.for_tenant(b.id).await?;
    let all_pool = "SELECT count(*) AS n FROM pool_numbers";
    let b_pool = count(&mut scoped, all_pool).await?;
    drop(scoped);
    let mut system = database.system().await?;
    let every_pool = count(&mut system, all_pool).await?;
    assert!(every_pool > b_pool && b_pool > 0);
    let row: Snapshot = diesel::sql_query("SELECT current_user::text AS s")
        .get_result(&mut system)
        .await?;
    assert_eq!(row.s, "missedcall_app");
    drop(system);
    // Scopes never leak from one checkout to the next.
    let mut again = database.for_tenant(a.id).await?;
    let a_pool = count(&mut again, all_pool).await?;
    assert_eq!(a_pool + b_pool, every_pool);
    app.stop().await;
    Ok(())
}
