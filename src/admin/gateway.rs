//! A tenant's own gateway account. The credentials are sealed with the master key, bound to the
//! tenant's id, and never returned: queries see only which account (`AC…1234`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::MasterKey;
use crate::db::DbConn;
use crate::db::schema::tenants;
use crate::db::tenants::Tenant;
use crate::error::{AppError, AppResult};

/// A Twilio account's credentials.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct TwilioCredentials {
    pub account_sid: String,
    pub auth_token: String,
}

impl std::fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account", &account_hint(&self.account_sid))
            .finish_non_exhaustive()
    }
}

/// Which gateway places a tenant's calls.
#[derive(Debug, Clone)]
pub enum GatewayChoice {
    /// The platform's configured gateway and account.
    Platform,
    /// Twilio, with the tenant's own account.
    OwnTwilio(TwilioCredentials),
}

/// What may be shown of an account id: its kind and last four characters.
pub fn account_hint(account_sid: &str) -> String {
    let tail: String = account_sid
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{}…{tail}", account_sid.get(..2).unwrap_or(""))
}

fn validate(credentials: &TwilioCredentials) -> AppResult<()> {
    let sid = &credentials.account_sid;
    if sid.len() != 34 || !sid.starts_with("AC") || !sid[2..].chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(AppError::InvalidInput(
            "twilioAccountSid must be AC followed by 32 hexadecimal digits".into(),
        ));
    }
    let token = &credentials.auth_token;
    if !(16..=128).contains(&token.len()) || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::InvalidInput(
            "twilioAuthToken must be 16-128 printable characters".into(),
        ));
    }
    Ok(())
}

/// Sets the tenant's gateway.
pub async fn set(
    conn: &mut DbConn,
    master: &MasterKey,
    tenant_id: Uuid,
    choice: GatewayChoice,
) -> AppResult<Tenant> {
    let (gateway, sealed, hint) = match &choice {
        GatewayChoice::Platform => (None, None, None),
        GatewayChoice::OwnTwilio(credentials) => {
            validate(credentials)?;
            let plain = zeroize::Zeroizing::new(
                serde_json::to_vec(credentials)
                    .map_err(|e| AppError::Internal(format!("serializing credentials: {e}")))?,
            );
            let sealed = master
                .seal(&plain, tenant_id.as_bytes())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            (
                Some("twilio"),
                Some(sealed),
                Some(account_hint(&credentials.account_sid)),
            )
        }
    };
    diesel::update(tenants::table.find(tenant_id))
        .set((
            tenants::gateway.eq(gateway),
            tenants::gateway_credentials_sealed.eq(sealed),
            tenants::gateway_account_hint.eq(hint),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("tenant"))
}

/// The tenant's own Twilio credentials, if it set any.
pub fn own_twilio(master: &MasterKey, tenant: &Tenant) -> AppResult<Option<TwilioCredentials>> {
    let Some(sealed) = &tenant.gateway_credentials_sealed else {
        return Ok(None);
    };
    let plain = master
        .open(sealed, tenant.id.as_bytes())
        .map_err(|e| AppError::Internal(format!("tenant gateway credentials: {e}")))?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| AppError::Internal(format!("tenant gateway credentials: {e}")))
}
