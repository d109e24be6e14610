//! `missedcall demo`: the whole flow against a running service, as a mobile app would do it:
//! request a call, pick up the simulated call, verify the caller ID, and check the token
//! against the published JWKS.

use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::auth::{self, KeyKind};
use crate::config::Config;
use crate::db::DbConn;
use crate::error::AppError;
use crate::tenancy;
use crate::tokens::{VerificationClaims, decoding_key_from_jwk};

const DEMO_TENANT: &str = "demo";
const DEMO_CALLER_ID: &str = "+14155550100";

/// Options of `missedcall demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Base URL of the running service (default: http://MISSEDCALL_LISTEN).
    #[arg(long)]
    pub url: Option<String>,
    /// The phone number to verify.
    #[arg(long, default_value = "+447400123456")]
    pub phone: String,
    /// A publishable key to use; without one the demo provisions the `demo` tenant itself.
    #[arg(long)]
    pub key: Option<String>,
    /// Print one JSON object instead of the steps.
    #[arg(long)]
    pub json: bool,
}

/// Why the demo could not finish.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot reach the service at {url}: {source}; is `missedcall serve` running?")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the service answered {code}: {message}")]
    Api { code: String, message: String },
    #[error("unexpected answer from the service: {0}")]
    Unexpected(String),
    #[error("no simulated call reached {0}; is the service using the simulator gateway?")]
    NoCall(String),
    #[error("the token does not verify against the JWKS: {0}")]
    BadToken(String),
    #[error("provisioning the demo tenant: {0}")]
    Provision(#[from] AppError),
}

/// Runs the demo and prints each step.
pub async fn run(args: DemoArgs, config: &Config) -> Result<(), DemoError> {
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen))
        .trim_end_matches('/')
        .to_owned();
    let key = match args.key.clone() {
        Some(key) => key,
        None => provision(config).await?,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| DemoError::Unexpected(e.to_string()))?;
    let api = Api {
        client: &client,
        base: &base,
        key: &key,
    };
    let step = |text: String| {
        if !args.json {
            println!("{text}");
        }
    };

    let viewer = api
        .graphql("query { viewer { tenantId slug jwtAudience } }", json!({}))
        .await?;
    let audience = text_at(&viewer, &["viewer", "jwtAudience"])?;
    step(format!(
        "1. tenant {} (audience {audience})",
        text_at(&viewer, &["viewer", "slug"])?
    ));

    let requested = api
        .graphql(
            "mutation($input: RequestCallInput!) { requestCall(input: $input) { sessionId sessionToken \
             status expiresAt callerIdPattern interceptionTimeoutSeconds } }",
            json!({"input": {"phoneNumber": args.phone}}),
        )
        .await?;
    let session_id = text_at(&requested, &["requestCall", "sessionId"])?;
    let session_token = text_at(&requested, &["requestCall", "sessionToken"])?;
    step(format!(
        "2. requestCall({}) -> session {session_id}, status {}, incoming calls match {}",
        args.phone,
        text_at(&requested, &["requestCall", "status"])?,
        text_at(&requested, &["requestCall", "callerIdPattern"])?,
    ));

    let caller_id = api.wait_for_call(&args.phone, &session_id).await?;
    step(format!(
        "3. the phone rings: incoming call from {caller_id} (rejected by the app)"
    ));

    let verified = api
        .graphql(
            "mutation($input: VerifyInput!) { verify(input: $input) { verified status attemptsLeft \
             token tokenExpiresAt } }",
            json!({"input": {"sessionId": session_id, "sessionToken": session_token, "callerId": caller_id}}),
        )
        .await?;
    let token = text_at(&verified, &["verify", "token"])?;
    step(format!(
        "4. verify(callerId {caller_id}) -> verified {}, status {}",
        verified.pointer("/verify/verified").unwrap_or(&Value::Null),
        text_at(&verified, &["verify", "status"])?,
    ));
    step(format!("   token: {token}"));

    let claims = api.check_token(&token, &audience).await?;
    let claims_json =
        serde_json::to_value(&claims).map_err(|e| DemoError::Unexpected(e.to_string()))?;
    if args.json {
        println!(
            "{}",
            json!({"sessionId": session_id, "callerId": caller_id, "token": token, "claims": claims_json,
                   "signatureValid": true})
        );
    } else {
        println!("5. token signature checks against {base}/.well-known/jwks.json; claims:");
        println!(
            "{}",
            serde_json::to_string_pretty(&claims_json)
                .map_err(|e| DemoError::Unexpected(e.to_string()))?
        );
    }
    Ok(())
}

/// Ensures the `demo` tenant with one caller ID exists and returns a fresh publishable key.
async fn provision(config: &Config) -> Result<String, DemoError> {
    use diesel_async::AsyncConnection;
    let mut conn = DbConn::establish(&config.database_url)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let tenant = match tenancy::tenant_by_slug(&mut conn, DEMO_TENANT).await {
        Ok(tenant) => tenant,
        Err(AppError::NotFound(_)) => {
            tenancy::create_tenant(&mut conn, DEMO_TENANT, "Demo app", None)
                .await?
                .tenant
        }
        Err(err) => return Err(err.into()),
    };
    match tenancy::add_pool_entry(&mut conn, tenant.id, DEMO_CALLER_ID, "demo").await {
        Ok(_) | Err(AppError::Conflict(_)) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(
        auth::create_key(&mut conn, tenant.id, KeyKind::Publishable, "demo")
            .await?
            .key,
    )
}

struct Api<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    key: &'a str,
}

impl Api<'_> {
    /// Sends a request and reads its JSON body.
    async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<Value, DemoError> {
        request
            .send()
            .await
            .map_err(|source| DemoError::Unreachable {
                url: self.base.to_owned(),
                source,
            })?
            .json()
            .await
            .map_err(|e| DemoError::Unexpected(e.to_string()))
    }

    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, DemoError> {
        let response = self
            .fetch(
                self.client
                    .post(format!("{}/graphql", self.base))
                    .bearer_auth(self.key)
                    .json(&json!({"query": query, "variables": variables})),
            )
            .await?;
        if let Some(error) = response.pointer("/errors/0") {
            return Err(DemoError::Api {
                code: error
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
            });
        }
        response
            .get("data")
            .cloned()
            .ok_or_else(|| DemoError::Unexpected("no data".into()))
    }

    /// Polls the simulator's phone for the call placed for this session.
    async fn wait_for_call(&self, phone: &str, session_id: &str) -> Result<String, DemoError> {
        for _ in 0..50 {
            let calls = self
                .fetch(
                    self.client
                        .get(format!("{}/simulator/calls", self.base))
                        .query(&[("to", phone)]),
                )
                .await?;
            let from = calls.as_array().and_then(|calls| {
                calls
                    .iter()
                    .find(|call| call.get("sessionId").and_then(Value::as_str) == Some(session_id))
                    .and_then(|call| call.get("from").and_then(Value::as_str))
            });
            if let Some(from) = from {
                return Ok(from.to_owned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(DemoError::NoCall(phone.to_owned()))
    }

    /// Verifies the token's signature with the key its `kid` names in the JWKS.
    async fn check_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<VerificationClaims, DemoError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| DemoError::BadToken(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| DemoError::BadToken("no kid in the header".into()))?;
        let jwks = self
            .fetch(
                self.client
                    .get(format!("{}/.well-known/jwks.json", self.base)),
            )
            .await?;
        let jwk = jwks
            .get("keys")
            .and_then(Value::as_array)
            .and_then(|keys| {
                keys.iter()
                    .find(|k| k.get("kid").and_then(Value::as_str) == Some(&kid))
            })
            .ok_or_else(|| DemoError::BadToken(format!("kid {kid} is not in the JWKS")))?;
        let key = decoding_key_from_jwk(jwk).map_err(|e| DemoError::BadToken(e.to_string()))?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[audience]);
        jsonwebtoken::decode::<VerificationClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| DemoError::BadToken(e.to_string()))
    }
}

fn text_at(value: &Value, path: &[&str]) -> Result<String, DemoError> {
    let mut current = value;
    for segment in path {
        current = current
            .get(segment)
            .ok_or_else(|| DemoError::Unexpected(format!("missing {}", path.join("."))))?;
    }
    current
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| DemoError::Unexpected(format!("{} is not text", path.join("."))))
}
