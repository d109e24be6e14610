//! The simulator gateway: records calls in memory and plays the phone network, so local runs,
//! tests and the demo can "receive" a flash call through `GET /simulator/calls`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{
    CallEvent, CallEventReport, CallEventSender, CallRequest, Gateway, GatewayError, PlacedCall,
};

/// Calls kept for `GET /simulator/calls`; older ones are forgotten.
const MAX_RECORDED_CALLS: usize = 10_000;

/// A call as the simulated phone network saw it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedCall {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub session_id: Uuid,
    pub placed_at: DateTime<Utc>,
    pub ring_timeout_seconds: u64,
}

/// In-memory gateway that reports RINGING after `ring_delay` and the end of the call after the
/// ring timeout (or twice the delay, whichever is shorter), as an unanswered flash call would.
pub struct SimulatorGateway {
    calls: Mutex<VecDeque<SimulatedCall>>,
    events: CallEventSender,
    ring_delay: Duration,
}

impl SimulatorGateway {
    /// A simulator sending call events to `events`.
    pub fn new(events: CallEventSender, ring_delay: Duration) -> Self {
        Self {
            calls: Mutex::new(VecDeque::new()),
            events,
            ring_delay,
        }
    }

    /// Calls placed to `to`, newest first.
    pub fn calls_to(&self, to: &str) -> Vec<SimulatedCall> {
        match self.calls.lock() {
            Ok(calls) => calls
                .iter()
                .rev()
                .filter(|call| call.to == to)
                .cloned()
                .collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .rev()
                .filter(|call| call.to == to)
                .cloned()
                .collect(),
        }
    }

    fn record(&self, call: SimulatedCall) {
        let mut calls = match self.calls.lock() {
            Ok(calls) => calls,
            Err(poisoned) => poisoned.into_inner(),
        };
        if calls.len() >= MAX_RECORDED_CALLS {
            calls.pop_front();
        }
        calls.push_back(call);
    }
}

#[async_trait]
impl Gateway for SimulatorGateway {
    fn name(&self) -> &'static str {
        "simulator"
    }

    async fn place_call(&self, request: &CallRequest) -> Result<PlacedCall, GatewayError> {
        let call_id = format!("SIM{}", Uuid::new_v4().simple());
        self.record(SimulatedCall {
            call_id: call_id.clone(),
            from: request.from.clone(),
            to: request.to.clone(),
            session_id: request.session_id,
            placed_at: Utc::now(),
            ring_timeout_seconds: request.ring_timeout.as_secs(),
        });
        let events = self.events.clone();
        let ring_delay = self.ring_delay;
        let ring_for = request.ring_timeout.min(ring_delay);
        let id = call_id.clone();
        let session_id = request.session_id;
        tokio::spawn(async move {
            let report = |event| CallEventReport {
                gateway: "simulator",
                call_id: id.clone(),
                session_id,
                event,
            };
            tokio::time::sleep(ring_delay).await;
            // A closed receiver means the service is shutting down; nothing is left to tell.
            if events.send(report(CallEvent::Ringing)).is_err() {
                return;
            }
            tokio::time::sleep(ring_for).await;
            let _ = events.send(report(CallEvent::NoAnswer));
        });
        Ok(PlacedCall { call_id })
    }

    async fn cancel_call(&self, call_id: &str) -> Result<(), GatewayError> {
        let session_id = match self.calls.lock() {
            Ok(calls) => calls
                .iter()
                .find(|call| call.call_id == call_id)
                .map(|c| c.session_id),
            Err(poisoned) => {
                let calls = poisoned.into_inner();
                calls
                    .iter()
                    .find(|call| call.call_id == call_id)
                    .map(|c| c.session_id)
            }
        };
        let Some(session_id) = session_id else {
            return Err(GatewayError::UnknownCall(call_id.to_owned()));
        };
        let _ = self.events.send(CallEventReport {
            gateway: "simulator",
            call_id: call_id.to_owned(),
            session_id,
            event: CallEvent::Canceled,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_calls_and_reports_ringing_then_end() -> Result<(), GatewayError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let gateway = SimulatorGateway::new(tx, Duration::from_millis(5));
        let placed = gateway
            .place_call(&CallRequest {
                session_id: Uuid::new_v4(),
                tenant_id: Uuid::new_v4(),
                from: "+14155550100".into(),
                to: "+447700900123".into(),
                ring_timeout: Duration::from_secs(5),
            })
            .await?;
        let calls = gateway.calls_to("+447700900123");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].from, "+14155550100");
        assert!(gateway.calls_to("+447700900999").is_empty());
        let first = rx.recv().await.map(|r| (r.call_id, r.event));
        assert_eq!(first, Some((placed.call_id.clone(), CallEvent::Ringing)));
        let second = rx.recv().await.map(|r| r.event);
        assert_eq!(second, Some(CallEvent::NoAnswer));
        assert!(gateway.cancel_call("nope").await.is_err());
        Ok(())
    }
}
