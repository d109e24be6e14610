//! Failover: when the primary gateway is down in a way that placed no call, the secondary
//! places it. Both must report status under the same gateway name.

use std::sync::Arc;

use async_trait::async_trait;

use super::{CallRequest, Gateway, GatewayError, PlacedCall};

/// A primary gateway with a fallback.
pub struct FailoverGateway {
    primary: Arc<dyn Gateway>,
    secondary: Arc<dyn Gateway>,
}

impl FailoverGateway {
    /// `secondary` must have the same name as `primary` (e.g. Twilio through another edge).
    pub fn new(primary: Arc<dyn Gateway>, secondary: Arc<dyn Gateway>) -> Self {
        Self { primary, secondary }
    }
}

#[async_trait]
impl Gateway for FailoverGateway {
    fn name(&self) -> &'static str {
        self.primary.name()
    }

    async fn place_call(&self, request: &CallRequest) -> Result<PlacedCall, GatewayError> {
        match self.primary.place_call(request).await {
            Err(err) if err.placed_no_call() => {
                tracing::warn!(error = %err, "primary gateway unavailable; failing over");
                self.secondary.place_call(request).await
            }
            other => other,
        }
    }

    async fn cancel_call(&self, call_id: &str) -> Result<(), GatewayError> {
        match self.primary.cancel_call(call_id).await {
            Ok(()) => Ok(()),
            Err(_) => self.secondary.cancel_call(call_id).await,
        }
    }
}
