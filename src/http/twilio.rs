//! `POST /gateways/twilio/status`: Twilio's call status callbacks. The signature is checked
//! exactly as Twilio computes it before anything is read; then the call's session moves
//! forward (never backwards) through the same path as every other call event.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use zeroize::Zeroizing;

use crate::admin::gateway::own_twilio;
use crate::app::AppState;
use crate::db::{sessions, tenants};
use crate::error::AppResult;
use crate::gateway::twilio::signature;
use crate::gateway::{CallEvent, CallEventReport};

const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// What Twilio gets back: nothing to do.
const EMPTY_TWIML: &str = "<Response/>";

fn twiml_ok() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        EMPTY_TWIML,
    )
        .into_response()
}

/// The auth token of the Twilio account that placed this session's call, when the session's
/// tenant uses its own account.
async fn tenant_token(state: &AppState, session_id: Uuid) -> AppResult<Option<Zeroizing<String>>> {
    let mut conn = state.db.system().await?;
    let Some(tenant_id) = sessions::tenant_of(&mut conn, session_id).await? else {
        return Ok(None);
    };
    let Some(tenant) = tenants::find(&mut conn, tenant_id).await? else {
        return Ok(None);
    };
    Ok(own_twilio(&state.master_key, &tenant)?
        .map(|credentials| Zeroizing::new(credentials.auth_token.clone())))
}

/// Handles one status callback.
pub async fn status_callback(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(params) => params,
        Err(_) => return (StatusCode::BAD_REQUEST, "expected a form body").into_response(),
    };
    // Twilio signs the URL it was given: our public URL with this path and query.
    let path_and_query = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let url = format!("{}{}", state.config.public_url, path_and_query);
    let presented = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let session_id = uri.query().and_then(|query| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find(|(key, _)| key == "session")
            .and_then(|(_, value)| Uuid::parse_str(&value).ok())
    });
    let platform_signed = state
        .config
        .twilio_auth_token
        .as_deref()
        .is_some_and(|token| signature::is_valid(token, &url, &params, presented));
    let signed = platform_signed
        || match session_id {
            Some(session_id) => match tenant_token(&state, session_id).await {
                Ok(Some(token)) => signature::is_valid(&token, &url, &params, presented),
                Ok(None) => false,
                Err(err) => {
                    tracing::error!(error = %err, "could not read a tenant's Twilio account");
                    return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
                }
            },
            None => false,
        };
    if !signed {
        tracing::warn!("refused a Twilio callback with a bad signature");
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    let field = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let (Some(session_id), Some(call_id), Some(event)) = (
        session_id,
        field("CallSid"),
        field("CallStatus").and_then(CallEvent::from_twilio),
    ) else {
        tracing::warn!("acknowledged a Twilio callback that names no known session or status");
        return twiml_ok();
    };
    let report = CallEventReport {
        gateway: "twilio",
        call_id: call_id.to_owned(),
        session_id,
        event,
    };
    match state.verification.apply_call_event(&report).await {
        Ok(_) => twiml_ok(),
        Err(err) => {
            tracing::error!(error = %err, call = %call_id, "could not apply a Twilio callback");
            // Twilio may retry; the session is left as it was.
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}
