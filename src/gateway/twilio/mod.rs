//! Twilio Programmable Voice over its REST API: places the flash call with inline TwiML that
//! hangs up if answered, maps Twilio's error codes, retries only where no second call can
//! result, and trips a circuit breaker on outages.

pub mod signature;

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use serde::Deserialize;

use super::breaker::{BreakerSettings, CircuitBreaker};
use super::{CallRequest, Gateway, GatewayError, PlacedCall};

/// Answered flash calls end at once.
const HANG_UP_TWIML: &str = "<Response><Hangup/></Response>";
/// Twilio's answer when a call can no longer be canceled (it is in progress).
const CALL_NOT_CANCELABLE: u32 = 21220;

/// How the Twilio client behaves.
#[derive(Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: String,
    /// `https://api.twilio.com`, or a local server in tests.
    pub api_base: String,
    /// Where Twilio posts status callbacks (`…/gateways/twilio/status`).
    pub status_callback_url: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Tries per call, counting the first.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub breaker: BreakerSettings,
}

impl std::fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSettings")
            .field(
                "account",
                &crate::admin::gateway::account_hint(&self.account_sid),
            )
            .field("api_base", &self.api_base)
            .field("status_callback_url", &self.status_callback_url)
            .finish_non_exhaustive()
    }
}

/// The Twilio gateway.
pub struct TwilioGateway {
    http: reqwest::Client,
    settings: TwilioSettings,
    breaker: CircuitBreaker,
}

#[derive(Deserialize)]
struct CallResource {
    sid: String,
}

#[derive(Deserialize, Default)]
struct TwilioErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

impl TwilioGateway {
    /// A client with the settings' timeouts.
    pub fn new(settings: TwilioSettings) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("missedcall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GatewayError::unavailable_before_sending(e.to_string()))?;
        let breaker = CircuitBreaker::new(settings.breaker);
        Ok(Self {
            http,
            settings,
            breaker,
        })
    }

    fn account_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}",
            self.settings.api_base.trim_end_matches('/'),
            self.settings.account_sid
        )
    }

    async fn post(
        &self,
        url: &str,
        form: &[(&str, String)],
    ) -> Result<reqwest::Response, GatewayError> {
        self.http
            .post(url)
            .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|err| {
                // A connection never made cannot have created a call; a timeout after sending can.
                if err.is_connect() {
                    GatewayError::unavailable_before_sending(format!(
                        "cannot connect to Twilio: {err}"
                    ))
                } else if err.is_timeout() {
                    GatewayError::unavailable_after_sending("Twilio did not answer in time")
                } else {
                    GatewayError::unavailable_after_sending(format!("Twilio request failed: {err}"))
                }
            })
    }

    async fn create_call(&self, form: &[(&str, String)]) -> Result<PlacedCall, GatewayError> {
        let response = self
            .post(&format!("{}/Calls.json", self.account_url()), form)
            .await?;
        let status = response.status();
        if status.is_success() {
            let call: CallResource = response.json().await.map_err(|e| {
                GatewayError::unavailable_after_sending(format!("unreadable Twilio answer: {e}"))
            })?;
            return Ok(PlacedCall { call_id: call.sid });
        }
        let body: TwilioErrorBody = response.json().await.unwrap_or_default();
        Err(map_error(
            status.as_u16(),
            body.code,
            body.message.as_deref().unwrap_or(""),
        ))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .settings
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.settings.backoff_cap);
        // Full jitter over the upper half keeps retries of many instances apart.
        exponential.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// Twilio's documented error codes, mapped to what the service can tell its client.
pub fn map_error(http_status: u16, code: Option<u32>, message: &str) -> GatewayError {
    let detail = match code {
        Some(code) => format!("Twilio {code}: {message}"),
        None => format!("HTTP {http_status}: {message}"),
    };
    match (code, http_status) {
        // Invalid 'To', not reachable, not valid, invalid for <Dial>, not routable.
        (Some(21211 | 21214 | 21217 | 21401 | 13224 | 21612), _) => {
            GatewayError::DestinationUnreachable(detail)
        }
        // Geo permissions refuse the destination, or international calling is off.
        (Some(21215 | 21216 | 13227), _) => GatewayError::DestinationNotPermitted(detail),
        // 'From' not verified or invalid, caller ID required or invalid.
        (Some(21210 | 21212 | 21213 | 13214), _) => GatewayError::CallerIdRejected(detail),
        // Too many requests: refused before any call was created.
        (Some(20429), _) | (_, 429) => GatewayError::unavailable_before_sending(detail),
        // Authentication failed or account suspended: the operator must act.
        (Some(20003 | 20005 | 10001), _) | (_, 401 | 403) => {
            GatewayError::Misconfigured(format!("authentication: {detail}"))
        }
        (_, 500..=599) => GatewayError::unavailable_after_sending(detail),
        _ => GatewayError::Rejected(detail),
    }
}

#[async_trait]
impl Gateway for TwilioGateway {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn place_call(&self, request: &CallRequest) -> Result<PlacedCall, GatewayError> {
        if !self.breaker.allow() {
            return Err(GatewayError::unavailable_before_sending(
                "circuit open after repeated Twilio outages",
            ));
        }
        let callback = format!(
            "{}?session={}",
            self.settings.status_callback_url, request.session_id
        );
        let mut form = vec![
            ("To", request.to.clone()),
            ("From", request.from.clone()),
            ("Twiml", HANG_UP_TWIML.to_owned()),
            ("Timeout", request.ring_timeout.as_secs().max(1).to_string()),
            ("StatusCallback", callback),
            ("StatusCallbackMethod", "POST".to_owned()),
        ];
        for event in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", event.to_owned()));
        }
        let mut attempt = 1;
        loop {
            match self.create_call(&form).await {
                Ok(placed) => {
                    self.breaker.record_success();
                    return Ok(placed);
                }
                Err(err) if err.is_retry_safe() && attempt < self.settings.max_attempts => {
                    tracing::debug!(attempt, error = %err, "retrying Twilio call creation");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err @ (GatewayError::Unavailable { .. } | GatewayError::Misconfigured(_))) => {
                    self.breaker.record_outage();
                    return Err(err);
                }
                Err(err) => {
                    // Twilio answered: it is up, it refused this call.
                    self.breaker.record_success();
                    return Err(err);
                }
            }
        }
    }

    async fn cancel_call(&self, call_id: &str) -> Result<(), GatewayError> {
        let url = format!("{}/Calls/{call_id}.json", self.account_url());
        for status in ["canceled", "completed"] {
            let response = self.post(&url, &[("Status", status.to_owned())]).await?;
            let http_status = response.status();
            if http_status.is_success() {
                return Ok(());
            }
            let body: TwilioErrorBody = response.json().await.unwrap_or_default();
            match (http_status.as_u16(), body.code) {
                (404, _) => return Err(GatewayError::UnknownCall(call_id.to_owned())),
                // Already answered: hang it up instead.
                (_, Some(CALL_NOT_CANCELABLE)) if status == "canceled" => continue,
                (code, twilio_code) => {
                    return Err(map_error(
                        code,
                        twilio_code,
                        body.message.as_deref().unwrap_or(""),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_error_codes_map_to_precise_errors() {
        assert!(matches!(
            map_error(400, Some(21211), "Invalid 'To'"),
            GatewayError::DestinationUnreachable(_)
        ));
        assert!(matches!(
            map_error(400, Some(21215), "Geo"),
            GatewayError::DestinationNotPermitted(_)
        ));
        assert!(matches!(
            map_error(400, Some(21210), "From"),
            GatewayError::CallerIdRejected(_)
        ));
        assert!(map_error(429, Some(20429), "Too many").is_retry_safe());
        let auth = map_error(401, Some(20003), "auth");
        assert!(!auth.is_retry_safe() && auth.placed_no_call());
        let server = map_error(503, None, "down");
        assert!(matches!(
            server,
            GatewayError::Unavailable {
                retry_safe: false,
                ..
            }
        ));
        assert!(matches!(
            map_error(400, Some(21601), "?"),
            GatewayError::Rejected(_)
        ));
    }
}
