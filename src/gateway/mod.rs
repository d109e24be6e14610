//! Telephony gateways: the `Gateway` trait and its implementations.

pub mod simulator;

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
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused this destination (invalid, unreachable, not permitted).
    #[error("destination refused by the gateway: {0}")]
    DestinationRefused(String),
    /// The gateway is down, overloaded or misconfigured; another try later may work.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    /// The call id is not known to the gateway.
    #[error("unknown call {0}")]
    UnknownCall(String),
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
