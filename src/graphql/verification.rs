//! Mobile-app operations: request a call, verify the caller ID, read a session's status.

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{client_info, principal};
use super::types::{SessionStatus, parse_id};
use crate::app::AppState;
use crate::error::AppError;
use crate::verification::SessionStatus as DomainStatus;

/// Largest `metadata` accepted, serialized.
const MAX_METADATA_BYTES: usize = 2048;

/// Ask for a verification call.
#[derive(InputObject)]
pub struct RequestCallInput {
    /// The phone number to verify, in international format (`+14155550123`).
    pub phone_number: String,
    /// The app's signature (Android app hash or iOS bundle id), when the tenant requires one.
    pub app_signature: Option<String>,
    /// A JSON object passed to the tenant's approval hook and kept with the session (at most
    /// 2 KiB).
    pub metadata: Option<Json<serde_json::Value>>,
}

/// A started verification.
#[derive(SimpleObject)]
pub struct RequestCallPayload {
    pub session_id: ID,
    /// Shown once: needed to verify and to watch the session.
    pub session_token: String,
    pub status: SessionStatus,
    pub expires_at: DateTime<Utc>,
    /// A regular expression the incoming caller ID (E.164) matches; intercept such calls.
    pub caller_id_pattern: String,
    /// How long the app should wait for the call before offering a retry.
    pub interception_timeout_seconds: i32,
}

/// The caller ID the app saw.
#[derive(InputObject)]
pub struct VerifyInput {
    pub session_id: ID,
    pub session_token: String,
    /// The incoming number as the phone showed it.
    pub caller_id: String,
}

/// The outcome of a verify call. A wrong caller ID is not an error: `verified` is false.
#[derive(SimpleObject)]
pub struct VerifyPayload {
    pub verified: bool,
    pub status: SessionStatus,
    pub attempts_left: i32,
    /// A JWT the tenant's backend checks against `/.well-known/jwks.json`.
    pub token: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// A session's status at a moment.
#[derive(SimpleObject)]
pub struct SessionStatusEvent {
    pub session_id: ID,
    pub status: SessionStatus,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// Mutations of the verification flow.
#[derive(Default)]
pub struct VerificationMutation;

#[Object]
impl VerificationMutation {
    /// Rings the phone once from a caller ID of the tenant's pool.
    async fn request_call(
        &self,
        ctx: &Context<'_>,
        input: RequestCallInput,
    ) -> async_graphql::Result<RequestCallPayload> {
        let principal = principal(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let metadata = input.metadata.map(|json| json.0);
        if let Some(metadata) = &metadata {
            let size = serde_json::to_vec(metadata).map_or(usize::MAX, |bytes| bytes.len());
            if !metadata.is_object() || size > MAX_METADATA_BYTES {
                return Err(AppError::InvalidInput(format!(
                    "metadata must be a JSON object of at most {MAX_METADATA_BYTES} bytes"
                ))
                .extend());
            }
        }
        let started = state
            .verification
            .request_call(
                &principal.tenant,
                &input.phone_number,
                input.app_signature.as_deref(),
                metadata.as_ref(),
                &client_info(ctx),
            )
            .await
            .inspect(|_| crate::metrics::request(principal.tenant.id, "started"))
            .map_err(|err| {
                crate::metrics::request(principal.tenant.id, err.code().as_str());
                err.extend()
            })?;
        Ok(RequestCallPayload {
            session_id: ID(started.session_id.to_string()),
            session_token: started.session_token,
            status: started.status.into(),
            expires_at: started.expires_at,
            caller_id_pattern: started.caller_id_pattern,
            interception_timeout_seconds: started.interception_timeout_seconds,
        })
    }

    /// Checks the caller ID the app saw; on a match returns a signed token, exactly once.
    async fn verify(
        &self,
        ctx: &Context<'_>,
        input: VerifyInput,
    ) -> async_graphql::Result<VerifyPayload> {
        let principal = principal(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let session_id = parse_id(&input.session_id, "sessionId")?;
        let outcome = state
            .verification
            .verify(
                &principal.tenant,
                session_id,
                &input.session_token,
                &input.caller_id,
                &client_info(ctx),
            )
            .await
            .inspect(|outcome| {
                let label = match (outcome.verified, outcome.status) {
                    (true, _) => "verified",
                    (false, DomainStatus::Locked) => "locked",
                    (false, _) => "wrong_caller_id",
                };
                crate::metrics::verification(principal.tenant.id, label);
            })
            .map_err(|err| {
                crate::metrics::verification(principal.tenant.id, err.code().as_str());
                err.extend()
            })?;
        Ok(VerifyPayload {
            verified: outcome.verified,
            status: outcome.status.into(),
            attempts_left: outcome.attempts_left,
            token_expires_at: outcome.token.as_ref().map(|t| t.expires_at),
            token: outcome.token.map(|t| t.token),
        })
    }
}

/// Queries of the verification flow.
#[derive(Default)]
pub struct VerificationQuery;

#[Object]
impl VerificationQuery {
    /// A session's current status, for apps that poll instead of subscribing.
    async fn session_status(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
        session_token: String,
    ) -> async_graphql::Result<SessionStatusEvent> {
        let principal = principal(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let session_id = parse_id(&session_id, "sessionId")?;
        let current = state
            .verification
            .session_state(&principal.tenant, session_id, &session_token)
            .await
            .map_err(|err| err.extend())?;
        Ok(SessionStatusEvent {
            session_id: ID(current.session_id.to_string()),
            status: current.status.into(),
            at: current.at,
            reason: current.reason,
        })
    }
}
