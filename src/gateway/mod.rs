//! Telephony gateways: the `Gateway` trait and its implementations.

pub mod breaker;
pub mod failover;
pub mod router;
pub mod simulator;
pub mod twilio;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A flash call to place.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    /// Caller ID to present, E.164.
    pub from: String,
    /// Destination, E.164.
    pub to: String,
    /// How long the phone may ring before the gateway gives up.
    pub ring_timeout: Duration,
}

/// A call the gateway accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedCall {
    /// The gateway's id for the call (Twilio's CallSid).
    pub call_id: String,
}

impl CallEvent {
    /// Twilio's `CallStatus` values.
    pub fn from_twilio(status: &str) -> Option<Self> {
        Some(match status {
            "queued" | "initiated" => Self::Initiated,
            "ringing" => Self::Ringing,
            "in-progress" | "answered" => Self::Answered,
            "completed" => Self::Completed,
            "busy" => Self::Busy,
            "no-answer" => Self::NoAnswer,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }
}

/// What the gateway reports about a call as it progresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    Initiated,
    Ringing,
    Answered,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallEvent {
    /// The raw call status recorded with the session.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A call event on its way to the session it belongs to.
#[derive(Debug, Clone)]
pub struct CallEventReport {
    pub gateway: &'static str,
    pub call_id: String,
    /// The session the call was placed for; known to the gateway from the request, so an event
    /// that overtakes the recording of the call id still finds its session.
    pub session_id: Uuid,
    pub event: CallEvent,
}

/// Where gateways send call events; the service drains the other end.
pub type CallEventSender = mpsc::UnboundedSender<CallEventReport>;

/// Why a gateway could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The destination cannot be called: invalid, unreachable or not routable.
    #[error("destination unreachable: {0}")]
    DestinationUnreachable(String),
    /// The account may not call this destination (geographic permissions).
    #[error("destination not permitted: {0}")]
    DestinationNotPermitted(String),
    /// The caller ID was refused (unverified or invalid): the pool entry is at fault.
    #[error("caller ID rejected: {0}")]
    CallerIdRejected(String),
    /// The gateway refused the request for another reason an operator must look at.
    #[error("call rejected by the gateway: {0}")]
    Rejected(String),
    /// Down, overloaded or misconfigured. `retry_safe` when no call can have been created, so
    /// trying again (or elsewhere) cannot ring the phone twice.
    #[error("gateway unavailable: {reason}")]
    Unavailable { reason: String, retry_safe: bool },
    /// The gateway refused our credentials or account: no call was created, and trying again
    /// cannot help until an operator acts.
    #[error("gateway misconfigured: {0}")]
    Misconfigured(String),
    /// The call id is not known to the gateway.
    #[error("unknown call {0}")]
    UnknownCall(String),
}

impl GatewayError {
    /// An outage after which no call can exist.
    pub fn unavailable_before_sending(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            retry_safe: true,
        }
    }

    /// An outage after which a call may or may not exist.
    pub fn unavailable_after_sending(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            retry_safe: false,
        }
    }

    /// Whether no call can have been created, so another gateway may place it.
    pub fn placed_no_call(&self) -> bool {
        self.is_retry_safe() || matches!(self, Self::Misconfigured(_))
    }

    /// Whether another attempt through the same gateway cannot place a second call.
    pub fn is_retry_safe(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                retry_safe: true,
                ..
            }
        )
    }
}

/// A telephony provider that can place and end short calls.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// The name stored with each session (`simulator`, `twilio`).
    fn name(&self) -> &'static str;

    /// Places the call; events about it arrive later through the event sender.
    async fn place_call(&self, request: &CallRequest) -> Result<PlacedCall, GatewayError>;

    /// Ends a call that may still be ringing.
    async fn cancel_call(&self, call_id: &str) -> Result<(), GatewayError>;
}
