//! Error messages follow `Accept-Language` (English, Spanish, Russian); codes never change.

mod common;

use common::{TestApp, TestResult};
use serde_json::{Value, json};

async fn request_in(
    app: &TestApp,
    key: &str,
    phone: &str,
    language: Option<&str>,
) -> TestResult<Value> {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.base))
        .bearer_auth(key)
        .json(&json!({
            "query": "mutation($p: String!) { requestCall(input: {phoneNumber: $p}) { sessionId } }",
            "variables": {"p": phone},
        }));
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    Ok(request.send().await?.json().await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_follow_the_callers_language_and_codes_do_not() -> TestResult {
    let app = TestApp::spawn().await?;
    let acme = app.tenant("acme").await?;
    let english = request_in(&app, &acme.pk, "12", None).await?;
    let spanish = request_in(&app, &acme.pk, "12", Some("es-ES,es;q=0.9,en;q=0.5")).await?;
    let russian = request_in(&app, &acme.pk, "12", Some("ru")).await?;
    let german = request_in(&app, &acme.pk, "12", Some("de-DE")).await?;
    for body in [&english, &spanish, &russian, &german] {
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INVALID_PHONE_NUMBER",
            "{body}"
        );
    }
    let message = |body: &Value| {
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        message(&english).contains("international format"),
        "{english}"
    );
    assert_eq!(message(&german), message(&english));
    assert!(
        message(&spanish).starts_with("El número de teléfono no es válido"),
        "{spanish}"
    );
    assert!(
        message(&russian).starts_with("Неверный номер телефона"),
        "{russian}"
    );
    // The English detail stays available.
    assert_eq!(
        spanish["errors"][0]["extensions"]["detail"],
        message(&english).as_str()
    );

    // Errors from the parser and from authentication are translated too.
    let body: Value = app
        .http
        .post(format!("{}/graphql", app.base))
        .header("accept-language", "es")
        .json(&json!({"query": "{ viewer { slug "}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        body["errors"][0]["message"],
        "La consulta GraphQL no es válida."
    );
    let body = request_in(&app, "pk_unknown", "+447400123456", Some("ru")).await?;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(
        body["errors"][0]["message"],
        "Ключ API отсутствует или недействителен."
    );
    app.stop().await;
    Ok(())
}
