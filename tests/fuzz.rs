//! Arbitrary input at phone parsing, caller-ID normalization, pool patterns and the GraphQL
//! endpoint: nothing panics, nothing answers 5xx, and whatever parses is well-formed.

mod common;

use common::{TestApp, TestResult};
use missedcall::verification::phone;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

/// Strings that look like phone numbers more often than random text would.
fn phoneish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[+0-9 ()./\\-]{0,40}",
        "\\+[0-9]{1,20}",
        "00[0-9]{0,18}",
        "\\+[0-9]{1,12}[xX]{0,8}",
        "[\\PC]{0,64}",
    ]
}

proptest! {
    #![proptest_config(Config::with_cases(2000))]

    #[test]
    fn destination_parsing_never_panics(input in phoneish()) {
        if let Ok(destination) = phone::parse_destination(&input) {
            prop_assert!(destination.e164.starts_with('+'));
            prop_assert!(destination.e164[1..].chars().all(|c| c.is_ascii_digit()));
            prop_assert!(destination.e164.len() <= 16);
            prop_assert_eq!(destination.country.len(), 2);
        }
    }

    #[test]
    fn caller_id_normalization_never_panics(input in phoneish(), country in "[A-Za-z]{0,3}") {
        if let Some(normalized) = phone::normalize_caller_id(&input, &country) {
            prop_assert!(normalized.starts_with('+'));
            prop_assert!(normalized[1..].chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn pool_patterns_never_panic(input in phoneish()) {
        if let Ok(pattern) = phone::parse_pool_pattern(&input) {
            prop_assert!(pattern.prefix.starts_with('+'));
            prop_assert!(pattern.random_digits <= 6);
        }
    }
}

#[test]
fn the_graphql_endpoint_never_answers_5xx() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    let (app, tenant) = runtime.block_on(async {
        let app = TestApp::spawn().await?;
        let tenant = app.tenant("fuzz").await?;
        TestResult::Ok((app, tenant))
    })?;
    let http = reqwest::Client::new();
    let url = format!("{}/graphql", app.base);
    let mut runner = TestRunner::new(Config::with_cases(300));
    let strategy = (
        prop_oneof![
            any::<String>(),
            "[{}()a-zA-Z0-9_:$!@. \"\\n]{0,80}",
            Just("mutation($p: String!) { requestCall(input: {phoneNumber: $p}) { sessionId } }".to_owned()),
            Just("mutation($s: ID!, $t: String!, $c: String!) { verify(input: {sessionId: $s, sessionToken: $t, callerId: $c}) { verified } }".to_owned()),
        ],
        phoneish(),
        any::<String>(),
        prop_oneof![Just(None), Just(Some(tenant.pk.clone())), Just(Some(tenant.sk.clone())), any::<String>().prop_map(Some)],
    );
    let result = runner.run(&strategy, |(query, text, other, key)| {
        let status = runtime
            .block_on(async {
                let mut request = http.post(&url).json(&json!({
                    "query": query,
                    "variables": {"p": text, "s": other, "t": text, "c": other},
                }));
                if let Some(key) = &key
                    && let Ok(value) =
                        reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                {
                    request = request.header("authorization", value);
                }
                request.send().await.map(|r| r.status())
            })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!status.is_server_error(), "{} for {:?}", status, query);
        Ok(())
    });
    // Raw bodies that are not JSON at all.
    let mut raw = TestRunner::new(Config::with_cases(200));
    let raw_result = raw.run(&proptest::collection::vec(any::<u8>(), 0..512), |body| {
        let status = runtime
            .block_on(
                http.post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send(),
            )
            .map(|r| r.status())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!status.is_server_error(), "{}", status);
        Ok(())
    });
    runtime.block_on(app.stop());
    result.map_err(|e| e.to_string())?;
    raw_result.map_err(|e| e.to_string())?;
    Ok(())
}
