//! HTTP routes: GraphQL, JWKS, health, and the simulator's phone.

pub mod client_ip;
pub mod twilio;
pub mod ws;

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::error::ErrorCode;
use crate::graphql::context::RequestAuth;
use crate::i18n::{self, Language};
use crate::verification::ClientInfo;

/// Longest User-Agent kept with a session.
const MAX_USER_AGENT_LEN: usize = 256;

/// All routes of the service.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/gateways/twilio/status", post(twilio::status_callback))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/simulator/calls", get(simulator_calls))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(time_request))
        .with_state(state)
}

/// Records each request's duration by route and status.
async fn time_request(
    route: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = route.map_or_else(|| "unmatched".to_owned(), |r| r.as_str().to_owned());
    let response = next.run(request).await;
    crate::metrics::http(route, response.status().as_u16(), started.elapsed());
    response
}

/// Prometheus exposition of this process's metrics.
async fn metrics(State(state): State<AppState>) -> Response {
    let (open, idle) = state.db.state();
    crate::metrics::database_pool(open, idle);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

/// A GraphQL-shaped error response for failures before execution.
fn graphql_error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = json!({"data": null, "errors": [{"message": message, "extensions": {"code": code.as_str()}}]});
    (status, Json(body)).into_response()
}

async fn graphql(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return graphql_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "batched requests are not accepted: send one GraphQL request per HTTP request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the body must be a JSON GraphQL request: {\"query\": \"…\", \"variables\": {…}}",
            );
        }
    };
    let header_text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let auth = RequestAuth::from_header(header_text(header::AUTHORIZATION));
    let client = ClientInfo {
        ip: Some(
            client_ip::client_ip(
                peer.ip(),
                header_text(HeaderName::from_static("x-forwarded-for")),
                &state.config.trusted_proxies,
            )
            .to_string(),
        ),
        user_agent: header_text(header::USER_AGENT)
            .map(|agent| agent.chars().take(MAX_USER_AGENT_LEN).collect()),
    };
    let mut response = state.schema.execute(request.data(auth).data(client)).await;
    let language = Language::negotiate(header_text(header::ACCEPT_LANGUAGE));
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        // Parse and validation errors come from async-graphql without a code; give them one.
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::GraphqlValidationFailed.as_str());
        }
        let code = match extensions.get("code") {
            Some(async_graphql::Value::String(name)) => i18n::code_named(name),
            _ => None,
        };
        if let Some(translated) = code.and_then(|code| i18n::message(code, language)) {
            extensions.set("detail", std::mem::take(&mut error.message));
            error.message = translated.to_owned();
        }
    }
    Json(response).into_response()
}

async fn graphiql(State(state): State<AppState>) -> Response {
    if state.config.production {
        return (StatusCode::NOT_FOUND, "GraphiQL is off in production").into_response();
    }
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("missedcall")
            .finish(),
    )
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.signer.jwks()),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    use diesel_async::RunQueryDsl;
    let ready = match state.db.system().await {
        Ok(mut conn) => diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if ready {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": "down"})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct CallsQuery {
    to: Option<String>,
}

async fn simulator_calls(
    State(state): State<AppState>,
    Query(query): Query<CallsQuery>,
) -> Response {
    let Some(simulator) = state.simulator.as_ref() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "the simulator gateway is not configured"})),
        )
            .into_response();
    };
    let Some(to) = query
        .to
        .as_deref()
        .map(str::trim)
        .filter(|to| !to.is_empty())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "give the destination as ?to=+E164"})),
        )
            .into_response();
    };
    Json(simulator.calls_to(to)).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}
