//! Which gateway places a tenant's calls: the platform's, or Twilio with the tenant's own
//! account. Tenant clients are built once and rebuilt when the tenant's settings change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::twilio::{TwilioGateway, TwilioSettings};
use super::{Gateway, GatewayError};
use crate::admin::gateway::own_twilio;
use crate::crypto::MasterKey;
use crate::db::tenants::Tenant;

/// A tenant's own client, stamped with the tenant's `updated_at` it was built from.
type OwnGateway = (DateTime<Utc>, Arc<dyn Gateway>);

/// Picks the gateway for each tenant.
pub struct GatewayRouter {
    platform: Arc<dyn Gateway>,
    /// Timeouts, retries, breaker and callback URL for tenants' own Twilio accounts.
    twilio: TwilioSettings,
    master_key: MasterKey,
    own: Mutex<HashMap<Uuid, OwnGateway>>,
}

impl GatewayRouter {
    /// `twilio` carries everything but the credentials, which come from each tenant.
    pub fn new(platform: Arc<dyn Gateway>, twilio: TwilioSettings, master_key: MasterKey) -> Self {
        Self {
            platform,
            twilio,
            master_key,
            own: Mutex::new(HashMap::new()),
        }
    }

    /// The platform's gateway.
    pub fn platform(&self) -> &Arc<dyn Gateway> {
        &self.platform
    }

    /// The gateway that places this tenant's calls.
    pub fn for_tenant(&self, tenant: &Tenant) -> Result<Arc<dyn Gateway>, GatewayError> {
        if tenant.gateway_credentials_sealed.is_none() {
            return Ok(Arc::clone(&self.platform));
        }
        let mut own = self.own.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((stamp, gateway)) = own.get(&tenant.id)
            && *stamp == tenant.updated_at
        {
            return Ok(Arc::clone(gateway));
        }
        let credentials = own_twilio(&self.master_key, tenant)
            .map_err(|err| GatewayError::Misconfigured(err.to_string()))?
            .ok_or_else(|| GatewayError::Misconfigured("no credentials".into()))?;
        let settings = TwilioSettings {
            account_sid: credentials.account_sid.clone(),
            auth_token: credentials.auth_token.clone(),
            ..self.twilio.clone()
        };
        let gateway: Arc<dyn Gateway> = Arc::new(TwilioGateway::new(settings)?);
        own.insert(tenant.id, (tenant.updated_at, Arc::clone(&gateway)));
        Ok(gateway)
    }
}
