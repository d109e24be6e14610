//! The verification flow: request a call, verify the caller ID, follow the call's progress.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde_json::json;
use uuid::Uuid;

use super::SessionStatus;
use super::phone::{self, Destination, PoolPattern};
use crate::admin::settings::RateLimitOverrides;
use crate::admin::strength;
use crate::approval::{Approval, ApprovalHooks, ApprovalRequest};
use crate::crypto::{ct_eq, random_token, sha256};
use crate::db::audit_events::{self, NewAuditEvent};
use crate::db::scope::Database;
use crate::db::sessions::{self, NewSession, SessionRow};
use crate::db::tenants::Tenant;
use crate::db::{DbConn, allowed_countries, app_signatures, pool_numbers, test_numbers};
use crate::error::{AppError, AppResult};
use crate::events::{EventHub, SessionEvent};
use crate::gateway::router::GatewayRouter;
use crate::gateway::{CallEvent, CallEventReport, CallRequest, Gateway, GatewayError};
use crate::limits::policy::{LimitPolicy, WithoutStore};
use crate::limits::{Decision, Layer, RateLimiter};
use crate::tokens::{SignedToken, TokenRequest, TokenSigner};

/// Longest accepted caller ID and session token, checked before any work.
const MAX_CALLER_ID_LEN: usize = 64;
const MAX_SESSION_TOKEN_LEN: usize = 128;
const MAX_APP_SIGNATURE_LEN: usize = 200;
const MAX_PHONE_INPUT_LEN: usize = 64;

/// What the HTTP layer knows about the client, recorded with sessions and audit events.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A session that was started and whose call was placed.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub session_id: Uuid,
    /// Shown once; needed to verify and to watch the session.
    pub session_token: String,
    pub status: SessionStatus,
    pub expires_at: DateTime<Utc>,
    pub caller_id_pattern: String,
    pub interception_timeout_seconds: i32,
}

/// The answer to a verify call.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub verified: bool,
    pub status: SessionStatus,
    pub attempts_left: i32,
    pub token: Option<SignedToken>,
}

/// A session's state as its owner may see it.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub session_id: Uuid,
    pub status: SessionStatus,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub attempts_left: i32,
}

/// The gateway name of sessions for test numbers, which place no call.
const TEST_GATEWAY: &str = "test";

/// How a session's call is to be placed.
struct CallPlan {
    ring_timeout: Duration,
    /// The caller ID had failed lately: a placed call resets its run of failures.
    entry_was_failing: bool,
}

/// What guards the flow against abuse: rate limits, brute force, toll fraud.
pub struct Protection {
    pub limiter: Arc<RateLimiter>,
    pub policy: LimitPolicy,
    /// E.164 prefixes never called.
    pub blocked_prefixes: Vec<String>,
}

/// The flash-call flow over the database, the gateway and the token signer.
pub struct VerificationService {
    protection: Protection,
    approvals: Arc<ApprovalHooks>,
    db: Database,
    gateways: Arc<GatewayRouter>,
    signer: Arc<TokenSigner>,
    events: EventHub,
}

impl VerificationService {
    /// The flow over these parts.
    pub fn new(
        db: Database,
        gateways: Arc<GatewayRouter>,
        signer: Arc<TokenSigner>,
        events: EventHub,
        protection: Protection,
        approvals: Arc<ApprovalHooks>,
    ) -> Self {
        Self {
            protection,
            approvals,
            db,
            gateways,
            signer,
            events,
        }
    }

    /// Where status changes are published.
    pub fn events(&self) -> &EventHub {
        &self.events
    }

    /// Checks the request, stores a session, and has the gateway ring the phone.
    pub async fn request_call(
        &self,
        tenant: &Tenant,
        phone_input: &str,
        app_signature: Option<&str>,
        metadata: Option<&serde_json::Value>,
        client: &ClientInfo,
    ) -> AppResult<StartedSession> {
        let gateway = self.gateways.for_tenant(tenant).map_err(|err| {
            tracing::error!(tenant = %tenant.slug, error = %err, "the tenant's gateway cannot be used");
            AppError::GatewayUnavailable
        })?;
        let mut conn = self.db.for_tenant(tenant.id).await?;
        let destination = match check_request(&mut conn, tenant, phone_input, app_signature).await {
            Ok(destination) => destination,
            Err(err) => {
                record_refusal(&mut conn, tenant, client, "request.refused", &err, |d| {
                    d.insert("phone".into(), json!(phone::mask_phone(phone_input)));
                })
                .await;
                return Err(err);
            }
        };
        if let Err(err) = self
            .guard_request(&mut conn, tenant, &destination, client)
            .await
        {
            record_refusal(&mut conn, tenant, client, "request.refused", &err, |d| {
                d.insert("phone".into(), json!(phone::mask_phone(&destination.e164)));
                d.insert("country".into(), json!(destination.country));
            })
            .await;
            return Err(err);
        }
        let session_id = Uuid::now_v7();
        let test_number = if tenant.test_numbers_enabled {
            test_numbers::find(&mut conn, tenant.id, &destination.e164).await?
        } else {
            None
        };
        let app_signature = app_signature.map(str::trim).filter(|s| !s.is_empty());
        let mut ring_timeout =
            Duration::from_secs(u64::try_from(tenant.ring_timeout_seconds).unwrap_or(6));
        if tenant.approval_url.is_some() {
            // The hook may take seconds: no connection is held while it thinks.
            drop(conn);
            let asked = self
                .approvals
                .ask(
                    tenant,
                    &ApprovalRequest {
                        kind: "verification.approval",
                        session_id,
                        phone_number: &destination.e164,
                        country: &destination.country,
                        number_type: destination.number_type.as_str(),
                        client_ip: client.ip.as_deref(),
                        app_signature,
                        metadata,
                        test: test_number.is_some(),
                    },
                )
                .await;
            conn = self.db.for_tenant(tenant.id).await?;
            if let Some(asked) = asked {
                // One detail object, with the fields each outcome adds.
                let mut detail = serde_json::Map::new();
                detail.insert("sessionId".into(), json!(session_id));
                detail.insert("phone".into(), json!(phone::mask_phone(&destination.e164)));
                if let Some(failure) = &asked.failure {
                    detail.insert("hookFailure".into(), json!(failure));
                }
                let kind = match &asked.approval {
                    Approval::Allowed { ring_timeout: hook } => {
                        if let Some(hook) = hook {
                            ring_timeout = *hook;
                            detail.insert("ringTimeoutSeconds".into(), json!(hook.as_secs()));
                        }
                        "request.approved"
                    }
                    Approval::Denied { reason } => {
                        detail.insert("reason".into(), json!(reason));
                        "request.denied"
                    }
                };
                let event = NewAuditEvent::new(tenant.id, kind)
                    .ip(client.ip.as_deref())
                    .detail(serde_json::Value::Object(detail));
                audit_events::record(&mut conn, &event).await?;
                if let Approval::Denied { reason } = asked.approval {
                    return Err(AppError::RequestDenied(reason));
                }
            }
        }
        let session_token = random_token("st_", 32);
        let token_hash = sha256(session_token.as_bytes());
        let expires_at = Utc::now() + chrono::Duration::seconds(i64::from(tenant.validity_seconds));
        let is_test = test_number.is_some();
        let stored = conn
            .transaction(async |conn| {
                let (entry_id, expected_caller_id, gateway_name, failing) = match &test_number {
                    Some(test) => (None, test.caller_id.clone(), TEST_GATEWAY, false),
                    None => {
                        let Some(entry) =
                            pool_numbers::claim_next(conn, tenant.id, &destination.country).await?
                        else {
                            return Err(AppError::NoCallerIdAvailable);
                        };
                        let pattern = pool_pattern(&entry)?;
                        (
                            Some(entry.id),
                            pattern.draw(&mut rand::rng()),
                            gateway.name(),
                            entry.consecutive_failures > 0,
                        )
                    }
                };
                let row = sessions::insert(
                    conn,
                    &NewSession {
                        id: session_id,
                        tenant_id: tenant.id,
                        token_hash: &token_hash,
                        phone_number: &destination.e164,
                        country: &destination.country,
                        number_type: destination.number_type.as_str(),
                        pool_number_id: entry_id,
                        expected_caller_id: &expected_caller_id,
                        status: SessionStatus::Pending.as_str(),
                        max_attempts: tenant.max_attempts,
                        client_ip: client.ip.as_deref(),
                        user_agent: client.user_agent.as_deref(),
                        app_signature,
                        gateway: gateway_name,
                        expires_at,
                        is_test,
                        metadata,
                    },
                )
                .await?;
                let caller_id_pattern = if is_test {
                    phone::caller_id_pattern([&phone::parse_pool_pattern(&expected_caller_id)?])
                } else {
                    let active = pool_numbers::list_active(conn, tenant.id).await?;
                    let patterns = active
                        .iter()
                        .map(pool_pattern)
                        .collect::<AppResult<Vec<_>>>()?;
                    phone::caller_id_pattern(&patterns)
                };
                audit_events::record(
                    conn,
                    &NewAuditEvent::new(tenant.id, "call.requested")
                        .session(row.id)
                        .ip(client.ip.as_deref())
                        .detail(json!({
                            "phone": phone::mask_phone(&destination.e164),
                            "country": destination.country,
                            "numberType": destination.number_type.as_str(),
                            "poolNumberId": entry_id,
                            "test": is_test,
                        })),
                )
                .await?;
                Ok((row, caller_id_pattern, failing))
            })
            .await;
        let (row, caller_id_pattern, entry_was_failing) = match stored {
            Ok(stored) => stored,
            Err(err) => {
                if matches!(err, AppError::NoCallerIdAvailable) {
                    record_refusal(&mut conn, tenant, client, "request.refused", &err, |_| {})
                        .await;
                }
                return Err(err);
            }
        };
        let row = if is_test {
            self.skip_call(&mut conn, tenant, row, client).await?
        } else {
            self.place_call(
                &mut conn,
                gateway.as_ref(),
                tenant,
                row,
                client,
                CallPlan {
                    ring_timeout,
                    entry_was_failing,
                },
            )
            .await?
        };
        self.events.publish(event_of(&row)).await;
        tracing::info!(
            tenant = %tenant.slug,
            session = %row.id,
            phone = %phone::mask_phone(&row.phone_number),
            test = is_test,
            "verification started"
        );
        Ok(StartedSession {
            session_id: row.id,
            session_token,
            status: parse_status(&row.status)?,
            expires_at: row.expires_at,
            caller_id_pattern,
            interception_timeout_seconds: tenant.interception_timeout_seconds,
        })
    }

    /// A test number's session: no call, the session stands as if the call had rung and ended.
    async fn skip_call(
        &self,
        conn: &mut DbConn,
        tenant: &Tenant,
        row: SessionRow,
        client: &ClientInfo,
    ) -> AppResult<SessionRow> {
        let ended = SessionStatus::CallEnded;
        let updated = sessions::transition(conn, row.id, &ended.source_names(), ended.as_str())
            .await?
            .ok_or(AppError::Internal("test session vanished".into()))?;
        audit_events::record(
            conn,
            &NewAuditEvent::new(tenant.id, "call.skipped")
                .session(row.id)
                .ip(client.ip.as_deref())
                .detail(json!({"test": true})),
        )
        .await?;
        Ok(updated)
    }

    /// Refuses a request that would exceed a limit, brute-force a locked number or call a
    /// high-risk destination; a country whose requests spike is throttled for the tenant.
    async fn guard_request(
        &self,
        conn: &mut DbConn,
        tenant: &Tenant,
        destination: &Destination,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let protection = &self.protection;
        if protection
            .blocked_prefixes
            .iter()
            .any(|prefix| destination.e164.starts_with(prefix.as_str()))
        {
            return Err(AppError::DestinationBlocked);
        }
        self.check_phone_lock(conn, tenant, &destination.e164)
            .await?;
        let rules = protection.policy.request_rules(
            tenant.id,
            &RateLimitOverrides::of(tenant),
            &destination.e164,
            &destination.country,
            client.ip.as_deref(),
        );
        match protection.limiter.check(&rules).await {
            Ok(Decision::Allowed) => Ok(()),
            Ok(Decision::Limited { layer, retry_after }) => {
                crate::metrics::rate_limited(layer.as_str());
                if layer == Layer::Country {
                    self.throttle_country(conn, tenant, &destination.country)
                        .await;
                }
                let retry_after = if layer == Layer::Country {
                    protection.policy.defaults.country_throttle
                } else {
                    retry_after
                };
                Err(AppError::RateLimited {
                    layer: layer.as_str(),
                    retry_after_seconds: retry_after.as_secs_f64().ceil() as u64,
                })
            }
            Err(err) => match protection.policy.without_store {
                WithoutStore::Refuse => Err(AppError::RateLimitUnavailable(err.to_string())),
                WithoutStore::Allow => {
                    tracing::warn!(error = %err, "placing a call without rate limits");
                    Ok(())
                }
            },
        }
    }

    /// Throttles a destination country for the tenant after a spike, and says so once in the
    /// audit log.
    async fn throttle_country(&self, conn: &mut DbConn, tenant: &Tenant, country: &str) {
        let protection = &self.protection;
        let key = protection.policy.country_block_key(tenant.id, country);
        let duration = protection.policy.defaults.country_throttle;
        match protection.limiter.block(&key, duration).await {
            Ok(true) => {
                tracing::warn!(tenant = %tenant.slug, country, "destination country throttled after a spike");
                let event = NewAuditEvent::new(tenant.id, "destination.throttled").detail(json!({
                    "country": country,
                    "seconds": duration.as_secs(),
                }));
                if let Err(err) = audit_events::record(conn, &event).await {
                    tracing::error!(error = %err, "could not record a throttled destination");
                }
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "could not throttle a destination country"),
        }
    }

    /// Refuses when the phone number had too many wrong caller IDs lately, across sessions.
    async fn check_phone_lock(
        &self,
        conn: &mut DbConn,
        tenant: &Tenant,
        phone_number: &str,
    ) -> AppResult<()> {
        let defaults = &self.protection.policy.defaults;
        let window = defaults.phone_lock;
        let failures =
            sessions::recent_failures(conn, tenant.id, phone_number, window.as_secs_f64()).await?;
        if failures.failed_attempts < i64::from(defaults.failed_attempts_per_phone) {
            return Ok(());
        }
        let until = failures
            .oldest
            .map(|oldest| oldest + chrono::Duration::from_std(window).unwrap_or_default())
            .unwrap_or_else(Utc::now);
        Err(AppError::PhoneLocked {
            retry_after_seconds: (until - Utc::now()).num_seconds().max(1).unsigned_abs(),
        })
    }

    async fn place_call(
        &self,
        conn: &mut DbConn,
        gateway: &dyn Gateway,
        tenant: &Tenant,
        row: SessionRow,
        client: &ClientInfo,
        plan: CallPlan,
    ) -> AppResult<SessionRow> {
        let request = CallRequest {
            session_id: row.id,
            tenant_id: tenant.id,
            from: row.expected_caller_id.clone(),
            to: row.phone_number.clone(),
            ring_timeout: plan.ring_timeout,
        };
        let started = std::time::Instant::now();
        let placed = gateway.place_call(&request).await;
        crate::metrics::call(
            gateway.name(),
            match &placed {
                Ok(_) => "placed",
                Err(GatewayError::DestinationUnreachable(_)) => "destination_unreachable",
                Err(GatewayError::DestinationNotPermitted(_)) => "destination_not_permitted",
                Err(GatewayError::CallerIdRejected(_)) => "caller_id_rejected",
                Err(GatewayError::Rejected(_)) => "rejected",
                Err(GatewayError::Unavailable { .. }) => "unavailable",
                Err(GatewayError::Misconfigured(_)) => "misconfigured",
                Err(GatewayError::UnknownCall(_)) => "unknown_call",
            },
            started.elapsed(),
        );
        match placed {
            Ok(placed) => {
                let calling = SessionStatus::Calling;
                let updated = sessions::record_call_placed(
                    conn,
                    row.id,
                    &placed.call_id,
                    &calling.source_names(),
                    calling.as_str(),
                    &NewAuditEvent::new(tenant.id, "call.placed")
                        .session(row.id)
                        .ip(client.ip.as_deref())
                        .detail(json!({"gateway": gateway.name(), "callId": placed.call_id})),
                )
                .await?
                .ok_or(AppError::Internal(
                    "session vanished while placing its call".into(),
                ))?;
                if let Some(entry) = row.pool_number_id.filter(|_| plan.entry_was_failing) {
                    pool_numbers::record_success(conn, entry).await?;
                }
                Ok(updated)
            }
            Err(gateway_error) => {
                tracing::warn!(
                    tenant = %tenant.slug,
                    session = %row.id,
                    error = %gateway_error,
                    "call placement failed"
                );
                let failed = SessionStatus::CallFailed;
                let changed = conn.transaction(async |conn| {
                    let changed = sessions::record_call_failed(
                        conn,
                        row.id,
                        &gateway_error.to_string(),
                        &failed.source_names(),
                        failed.as_str(),
                    )
                    .await?;
                    // Only a refused caller ID is the pool entry's fault.
                    if let (GatewayError::CallerIdRejected(_), Some(entry)) =
                        (&gateway_error, row.pool_number_id)
                    {
                        record_pool_failure(conn, tenant.id, entry).await?;
                    }
                    audit_events::record(
                        conn,
                        &NewAuditEvent::new(tenant.id, "call.failed")
                            .session(row.id)
                            .ip(client.ip.as_deref())
                            .detail(json!({"gateway": gateway.name(), "reason": gateway_error.to_string()})),
                    )
                    .await?;
                    Ok::<_, AppError>(changed)
                })
                .await?;
                if let Some(changed) = changed {
                    self.events.publish(event_of(&changed)).await;
                }
                Err(match gateway_error {
                    GatewayError::DestinationUnreachable(_) => AppError::DestinationUnreachable,
                    GatewayError::DestinationNotPermitted(_) => AppError::DestinationNotPermitted,
                    GatewayError::Unavailable { .. } | GatewayError::Misconfigured(_) => {
                        AppError::GatewayUnavailable
                    }
                    GatewayError::CallerIdRejected(_)
                    | GatewayError::Rejected(_)
                    | GatewayError::UnknownCall(_) => AppError::CallFailed,
                })
            }
        }
    }

    /// Counts an attempt and compares the caller ID in constant time; on a match the session is
    /// verified exactly once and a signed token returned.
    pub async fn verify(
        &self,
        tenant: &Tenant,
        session_id: Uuid,
        session_token: &str,
        caller_id: &str,
        client: &ClientInfo,
    ) -> AppResult<VerifyOutcome> {
        if caller_id.trim().is_empty() {
            return Err(AppError::InvalidInput("callerId must not be empty".into()));
        }
        if caller_id.len() > MAX_CALLER_ID_LEN {
            return Err(AppError::InvalidInput(format!(
                "callerId must be at most {MAX_CALLER_ID_LEN} characters"
            )));
        }
        if session_token.len() > MAX_SESSION_TOKEN_LEN {
            return Err(AppError::InvalidSessionToken);
        }
        let token_hash = sha256(session_token.as_bytes());
        let rules = self
            .protection
            .policy
            .verify_rules(tenant.id, client.ip.as_deref());
        match self.protection.limiter.check(&rules).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Limited { layer, retry_after }) => {
                crate::metrics::rate_limited(layer.as_str());
                return Err(AppError::RateLimited {
                    layer: layer.as_str(),
                    retry_after_seconds: retry_after.as_secs_f64().ceil() as u64,
                });
            }
            // Attempts are counted in Postgres: verify stays safe without the limit store.
            Err(err) => tracing::warn!(error = %err, "verifying without the per-IP limit"),
        }
        let mut conn = self.db.for_tenant(tenant.id).await?;
        let decided = conn
            .transaction(async |conn| {
                let decision = self
                    .decide_verify(conn, tenant, session_id, &token_hash, caller_id, client)
                    .await?;
                Ok::<_, AppError>(decision)
            })
            .await?;
        if let Some(changed) = &decided.changed {
            self.events.publish(event_of(changed)).await;
        }
        match decided.answer {
            Answer::Refused(err) => {
                record_refusal(&mut conn, tenant, client, "verify.refused", &err, |d| {
                    d.insert("sessionId".into(), json!(session_id));
                })
                .await;
                Err(err)
            }
            Answer::Answered {
                outcome,
                cancel_call,
            } => {
                if let Some(call_id) = cancel_call {
                    let gateway = self
                        .gateways
                        .for_tenant(tenant)
                        .unwrap_or_else(|_| Arc::clone(self.gateways.platform()));
                    // Best effort and off the request path: the phone may stop ringing by itself.
                    tokio::spawn(async move {
                        if let Err(err) = gateway.cancel_call(&call_id).await {
                            tracing::debug!(error = %err, "could not end the call after verification");
                        }
                    });
                }
                Ok(outcome)
            }
        }
    }

    async fn decide_verify(
        &self,
        conn: &mut DbConn,
        tenant: &Tenant,
        session_id: Uuid,
        token_hash: &[u8; 32],
        caller_id: &str,
        client: &ClientInfo,
    ) -> AppResult<VerifyDecision> {
        let Some(row) = sessions::find_for_update(conn, tenant.id, session_id).await? else {
            return Ok(VerifyDecision::refused(AppError::SessionNotFound));
        };
        if !ct_eq(&row.token_hash, token_hash) {
            return Ok(VerifyDecision::refused(AppError::InvalidSessionToken));
        }
        let status = parse_status(&row.status)?;
        match status {
            SessionStatus::Verified => return Ok(VerifyDecision::refused(AppError::AlreadyUsed)),
            SessionStatus::Locked => return Ok(VerifyDecision::refused(AppError::SessionLocked)),
            SessionStatus::Expired => return Ok(VerifyDecision::refused(AppError::SessionExpired)),
            _ => {}
        }
        if row.expires_at <= Utc::now() {
            let changed = expire(conn, &row).await?;
            return Ok(VerifyDecision {
                answer: Answer::Refused(AppError::SessionExpired),
                changed,
            });
        }
        sessions::lock_phone(conn, tenant.id, &row.phone_number).await?;
        if let Err(err) = self.check_phone_lock(conn, tenant, &row.phone_number).await {
            return Ok(VerifyDecision::refused(err));
        }
        let matched =
            phone::normalize_caller_id(caller_id, &row.country).is_some_and(|normalized| {
                ct_eq(normalized.as_bytes(), row.expected_caller_id.as_bytes())
            });
        let event = |kind| {
            NewAuditEvent::new(tenant.id, kind)
                .session(row.id)
                .ip(client.ip.as_deref())
        };
        if matched {
            // The attempt is counted in the same statement that verifies.
            let verified = sessions::mark_verified(conn, row.id).await?;
            let attempts = verified.attempts;
            let attempts_left = (row.max_attempts - attempts).max(0);
            let token = self.signer.sign(&TokenRequest {
                audience: tenant.jwt_audience.clone(),
                phone_number: verified.phone_number.clone(),
                tenant_id: tenant.id,
                session_id: verified.id,
                ttl_seconds: i64::from(tenant.jwt_ttl_seconds),
                test: row.is_test,
            })?;
            audit_events::record(
                conn,
                &event("verify.succeeded").detail(json!({"attempt": attempts})),
            )
            .await?;
            let still_ringing = matches!(status, SessionStatus::Calling | SessionStatus::Ringing);
            return Ok(VerifyDecision {
                answer: Answer::Answered {
                    outcome: VerifyOutcome {
                        verified: true,
                        status: SessionStatus::Verified,
                        attempts_left,
                        token: Some(token),
                    },
                    cancel_call: row.gateway_call_id.clone().filter(|_| still_ringing),
                },
                changed: Some(verified),
            });
        }
        let attempts = sessions::add_attempt(conn, row.id).await?;
        let attempts_left = (row.max_attempts - attempts).max(0);
        let mut changed = None;
        let status = if attempts >= row.max_attempts {
            let locked = SessionStatus::Locked;
            changed =
                sessions::transition(conn, row.id, &locked.source_names(), locked.as_str()).await?;
            audit_events::record(
                conn,
                &event("verify.locked").detail(json!({"attempt": attempts})),
            )
            .await?;
            locked
        } else {
            audit_events::record(
                conn,
                &event("verify.failed")
                    .detail(json!({"attempt": attempts, "attemptsLeft": attempts_left})),
            )
            .await?;
            status
        };
        Ok(VerifyDecision {
            answer: Answer::Answered {
                outcome: VerifyOutcome {
                    verified: false,
                    status,
                    attempts_left,
                    token: None,
                },
                cancel_call: None,
            },
            changed,
        })
    }

    /// The session's current state for its owner (the session token is required).
    pub async fn session_state(
        &self,
        tenant: &Tenant,
        session_id: Uuid,
        session_token: &str,
    ) -> AppResult<SessionState> {
        if session_token.len() > MAX_SESSION_TOKEN_LEN {
            return Err(AppError::InvalidSessionToken);
        }
        let token_hash = sha256(session_token.as_bytes());
        let mut conn = self.db.for_tenant(tenant.id).await?;
        let Some(mut row) = sessions::find(&mut conn, tenant.id, session_id).await? else {
            return Err(AppError::SessionNotFound);
        };
        if !ct_eq(&row.token_hash, &token_hash) {
            return Err(AppError::InvalidSessionToken);
        }
        if row.expires_at <= Utc::now() && !parse_status(&row.status)?.is_terminal() {
            let changed = conn
                .transaction(async |conn| {
                    match sessions::find_for_update(conn, tenant.id, session_id).await? {
                        Some(locked) => expire(conn, &locked).await,
                        None => Err(AppError::SessionNotFound),
                    }
                })
                .await?;
            if let Some(changed) = changed {
                self.events.publish(event_of(&changed)).await;
                row = changed;
            } else if let Some(current) = sessions::find(&mut conn, tenant.id, session_id).await? {
                row = current;
            }
        }
        Ok(SessionState {
            session_id: row.id,
            status: parse_status(&row.status)?,
            at: row.updated_at,
            reason: row.failure_reason.clone(),
            expires_at: row.expires_at,
            attempts_left: (row.max_attempts - row.attempts).max(0),
        })
    }

    /// Applies a gateway's report about a call to its session, never moving it backwards.
    pub async fn apply_call_event(
        &self,
        report: &CallEventReport,
    ) -> AppResult<Option<SessionStatus>> {
        let mut conn = self.db.system().await?;
        let moved = conn
            .transaction(async |conn| {
                let Some(row) = sessions::lock_by_id(conn, report.session_id).await? else {
                    tracing::warn!(call = %report.call_id, "call event for an unknown session");
                    return Ok::<_, AppError>(None);
                };
                let known_call = row
                    .gateway_call_id
                    .as_deref()
                    .is_none_or(|id| id == report.call_id);
                if row.gateway != report.gateway || !known_call {
                    tracing::warn!(call = %report.call_id, "call event does not match its session");
                    return Ok(None);
                }
                let current = parse_status(&row.status)?;
                let target = SessionStatus::after_call_event(report.event);
                let moved = current.can_move_to(target);
                let updated = sessions::record_call_progress(
                    conn,
                    row.id,
                    &report.call_id,
                    report.event.as_str(),
                    moved.then_some(target.as_str()),
                )
                .await?;
                if report.event == CallEvent::Failed
                    && moved
                    && let Some(entry) = row.pool_number_id
                {
                    record_pool_failure(conn, row.tenant_id, entry).await?;
                }
                audit_events::record(
                    conn,
                    &NewAuditEvent::new(row.tenant_id, "call.status")
                        .session(row.id)
                        .detail(json!({
                            "gateway": report.gateway,
                            "callStatus": report.event.as_str(),
                            "sessionStatus": updated.status,
                            "moved": moved,
                        })),
                )
                .await?;
                Ok(moved.then_some(updated))
            })
            .await?;
        let Some(row) = moved else {
            return Ok(None);
        };
        self.events.publish(event_of(&row)).await;
        Ok(SessionStatus::parse(&row.status))
    }

    /// Expires sessions whose validity passed untouched, at most `limit` at a time, and
    /// announces each; safe to run on several instances at once.
    pub async fn expire_overdue(&self, limit: i64) -> AppResult<usize> {
        let mut conn = self.db.system().await?;
        let expired = SessionStatus::Expired;
        let rows = conn
            .transaction(async |conn| {
                let rows = sessions::expire_overdue(
                    conn,
                    &expired.source_names(),
                    expired.as_str(),
                    limit,
                )
                .await?;
                for row in &rows {
                    audit_events::record(
                        conn,
                        &NewAuditEvent::new(row.tenant_id, "session.expired").session(row.id),
                    )
                    .await?;
                }
                Ok::<_, AppError>(rows)
            })
            .await?;
        for row in &rows {
            self.events.publish(event_of(row)).await;
        }
        Ok(rows.len())
    }
}

/// What verify decided under the row lock, and the row when its status changed.
struct VerifyDecision {
    answer: Answer,
    changed: Option<SessionRow>,
}

enum Answer {
    Refused(AppError),
    Answered {
        outcome: VerifyOutcome,
        cancel_call: Option<String>,
    },
}

impl VerifyDecision {
    fn refused(err: AppError) -> Self {
        Self {
            answer: Answer::Refused(err),
            changed: None,
        }
    }
}

/// The event announcing a row's current status.
pub fn event_of(row: &SessionRow) -> SessionEvent {
    SessionEvent {
        session_id: row.id,
        status: row.status.clone(),
        at: row.updated_at,
        reason: row.failure_reason.clone(),
    }
}

/// Counts a failure against a pool entry; announces it in the audit log when the entry was
/// deactivated for failing too often.
async fn record_pool_failure(conn: &mut DbConn, tenant_id: Uuid, entry: Uuid) -> AppResult<()> {
    let health = pool_numbers::record_failure(conn, entry).await?;
    if let Some(health) = health
        && health.deactivated_now
    {
        tracing::warn!(pool_number = %entry, "caller ID deactivated after repeated failures");
        audit_events::record(
            conn,
            &NewAuditEvent::new(tenant_id, "pool.number_deactivated").detail(json!({
                "poolNumberId": entry,
                "consecutiveFailures": health.consecutive_failures,
            })),
        )
        .await?;
    }
    Ok(())
}

/// Refusals that need no database are answered before a connection is taken.
async fn check_request(
    conn: &mut DbConn,
    tenant: &Tenant,
    phone_input: &str,
    app_signature: Option<&str>,
) -> AppResult<Destination> {
    if phone_input.len() > MAX_PHONE_INPUT_LEN {
        return Err(AppError::InvalidPhoneNumber(
            "phone number is too long".into(),
        ));
    }
    let app_signature = app_signature.map(str::trim).filter(|s| !s.is_empty());
    if let Some(signature) = app_signature
        && signature.len() > MAX_APP_SIGNATURE_LEN
    {
        return Err(AppError::InvalidAppSignature("app signature is too long"));
    }
    if tenant.require_app_signature {
        match app_signature {
            None => {
                return Err(AppError::InvalidAppSignature(
                    "this app must send its app signature",
                ));
            }
            Some(signature) if !app_signatures::exists(conn, tenant.id, signature).await? => {
                return Err(AppError::InvalidAppSignature(
                    "this app signature is not registered",
                ));
            }
            Some(_) => {}
        }
    }
    let destination = phone::parse_destination(phone_input)?;
    if !destination.number_type.can_receive_flash_call() {
        return Err(AppError::NumberTypeNotAllowed(
            destination.number_type.as_str().to_owned(),
        ));
    }
    let allowed = allowed_countries::list(conn, tenant.id).await?;
    if !allowed.is_empty() && !allowed.contains(&destination.country) {
        return Err(AppError::CountryNotAllowed(destination.country.clone()));
    }
    if let Some(cap) = tenant.max_guess_probability {
        let caller_ids = strength::for_destination(conn, tenant.id, &destination.country).await?;
        let probability = strength::guess_probability(tenant.max_attempts, caller_ids);
        if probability > cap {
            return Err(AppError::PoolTooWeak { probability, cap });
        }
    }
    Ok(destination)
}

/// Marks a locked, overdue session expired; the row when its status changed.
async fn expire(conn: &mut DbConn, row: &SessionRow) -> AppResult<Option<SessionRow>> {
    let expired = SessionStatus::Expired;
    let updated =
        sessions::transition(conn, row.id, &expired.source_names(), expired.as_str()).await?;
    if updated.is_some() {
        audit_events::record(
            conn,
            &NewAuditEvent::new(row.tenant_id, "session.expired").session(row.id),
        )
        .await?;
    }
    Ok(updated)
}

/// Records a refused request in the audit log; a failure to record is logged, not returned,
/// so the client still gets the precise refusal.
async fn record_refusal(
    conn: &mut DbConn,
    tenant: &Tenant,
    client: &ClientInfo,
    kind: &str,
    err: &AppError,
    fill: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) {
    let mut detail = serde_json::Map::new();
    detail.insert("code".into(), json!(err.code().as_str()));
    fill(&mut detail);
    let event = NewAuditEvent::new(tenant.id, kind)
        .ip(client.ip.as_deref())
        .detail(serde_json::Value::Object(detail));
    if let Err(audit_err) = audit_events::record(conn, &event).await {
        tracing::error!(error = %audit_err, "could not record a refusal in the audit log");
    }
}

fn parse_status(value: &str) -> AppResult<SessionStatus> {
    SessionStatus::parse(value)
        .ok_or_else(|| AppError::Internal(format!("unknown session status {value}")))
}

fn pool_pattern(entry: &pool_numbers::PoolNumber) -> AppResult<PoolPattern> {
    let random_digits = u8::try_from(entry.random_digits).map_err(|_| {
        AppError::Internal(format!("pool entry {} has bad random digits", entry.id))
    })?;
    Ok(PoolPattern {
        prefix: entry.prefix.clone(),
        random_digits,
        country: entry.country.clone(),
    })
}
