//! The tenant's approval hook: before a call costs money, the request is POSTed (signed like
//! the webhooks) to the tenant's URL, which allows or denies it and may shorten or lengthen the
//! ring. A hook that fails or times out gets the tenant's chosen policy; one that keeps failing
//! has its circuit opened so requests do not wait on it.

pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::MasterKey;
use crate::db::tenants::Tenant;
use crate::gateway::breaker::{BreakerSettings, CircuitBreaker};
use crate::webhook_signing;

/// Longest reason shown to the app.
const MAX_REASON_CHARS: usize = 200;
/// Longest answer read from a hook.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// What the hook is told about a request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub session_id: Uuid,
    pub phone_number: &'a str,
    pub country: &'a str,
    pub number_type: &'a str,
    pub client_ip: Option<&'a str>,
    pub app_signature: Option<&'a str>,
    pub metadata: Option<&'a serde_json::Value>,
    /// A tenant test number: no call would be placed.
    pub test: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    allow: bool,
    reason: Option<String>,
    ring_timeout_seconds: Option<u32>,
}

/// The hook's decision, after the failure policy where the hook could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Allowed {
        /// The hook's ring timeout (3-30 s), if it set one.
        ring_timeout: Option<Duration>,
    },
    Denied {
        reason: String,
    },
}

/// How asking went, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub approval: Approval,
    /// Why the hook could not decide, when the failure policy did.
    pub failure: Option<String>,
}

/// Asks tenants' hooks over one pooled client.
pub struct ApprovalHooks {
    http: reqwest::Client,
    master_key: MasterKey,
    breakers: Mutex<HashMap<Uuid, Arc<CircuitBreaker>>>,
    breaker: BreakerSettings,
}

impl ApprovalHooks {
    pub fn new(master_key: MasterKey, breaker: BreakerSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("missedcall/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            master_key,
            breakers: Mutex::new(HashMap::new()),
            breaker,
        })
    }

    fn breaker(&self, tenant: Uuid) -> Arc<CircuitBreaker> {
        let mut breakers = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            breakers
                .entry(tenant)
                .or_insert_with(|| Arc::new(CircuitBreaker::new(self.breaker))),
        )
    }

    /// Asks the tenant's hook, if it has one; `None` when it has none.
    pub async fn ask(&self, tenant: &Tenant, request: &ApprovalRequest<'_>) -> Option<Asked> {
        let url = tenant.approval_url.as_deref()?;
        let breaker = self.breaker(tenant.id);
        let decided = if breaker.allow() {
            let decided = self.call(tenant, url, request).await;
            match &decided {
                Ok(_) => breaker.record_success(),
                Err(_) => breaker.record_outage(),
            }
            decided
        } else {
            Err("the approval hook failed repeatedly; its circuit is open".to_owned())
        };
        Some(match decided {
            Ok(approval) => Asked {
                approval,
                failure: None,
            },
            Err(failure) => {
                tracing::warn!(tenant = %tenant.slug, error = %failure, "approval hook failed");
                let approval = if tenant.approval_on_failure == "ALLOW" {
                    Approval::Allowed { ring_timeout: None }
                } else {
                    Approval::Denied {
                        reason: "the request could not be approved".to_owned(),
                    }
                };
                Asked {
                    approval,
                    failure: Some(failure),
                }
            }
        })
    }

    async fn call(
        &self,
        tenant: &Tenant,
        url: &str,
        request: &ApprovalRequest<'_>,
    ) -> Result<Approval, String> {
        let key = settings::open_key(&self.master_key, tenant)?
            .ok_or("the approval hook has no secret")?;
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let id = format!("msg_{}", request.session_id.simple());
        let timestamp = chrono::Utc::now().timestamp();
        let timeout =
            Duration::from_millis(u64::try_from(tenant.approval_timeout_ms).unwrap_or(2000));
        let mut request = self
            .http
            .post(url)
            .timeout(timeout)
            .header("content-type", "application/json");
        for (name, value) in webhook_signing::headers(&key, &id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} ms", tenant.approval_timeout_ms)
            } else {
                format!("request failed: {e}")
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("answered HTTP {status}"));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err("the answer is too large".to_owned());
        }
        let answer: Answer =
            serde_json::from_slice(&bytes).map_err(|e| format!("unreadable answer: {e}"))?;
        if answer.allow {
            let ring_timeout = match answer.ring_timeout_seconds {
                None => None,
                Some(seconds @ 3..=30) => Some(Duration::from_secs(u64::from(seconds))),
                Some(other) => return Err(format!("ringTimeoutSeconds {other} is not 3-30")),
            };
            Ok(Approval::Allowed { ring_timeout })
        } else {
            let reason: String = answer
                .reason
                .unwrap_or_else(|| "denied".to_owned())
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_REASON_CHARS)
                .collect();
            Ok(Approval::Denied { reason })
        }
    }
}
