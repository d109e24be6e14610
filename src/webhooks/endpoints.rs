//! Endpoints, as a tenant's admin manages them: a URL, the events it wants, and a signing
//! secret sealed with the master key and shown once.

use chrono::Utc;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::EVENT_TYPES;
use crate::admin::{validate_label, validate_url};
use crate::crypto::MasterKey;
use crate::db::DbConn;
use crate::db::webhooks::{self, EndpointChanges, EndpointRow, NewEndpoint};
use crate::error::{AppError, AppResult};
use crate::webhook_signing;

/// Most endpoints one tenant may register.
pub const MAX_ENDPOINTS: usize = 20;

/// A change to an endpoint; `None` keeps what is there.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub rotate_secret: bool,
}

fn aad(endpoint_id: Uuid) -> Vec<u8> {
    [endpoint_id.as_bytes().as_slice(), b"webhook-endpoint"].concat()
}

/// Known event names, each once, in a stable order.
fn validate_events(events: &[String]) -> AppResult<Vec<String>> {
    if events.is_empty() {
        return Err(AppError::InvalidInput(
            "events must name at least one event".into(),
        ));
    }
    if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Err(AppError::InvalidInput(format!(
            "events: `{}` is not one of {}",
            unknown.chars().take(60).collect::<String>(),
            EVENT_TYPES.join(", ")
        )));
    }
    Ok(EVENT_TYPES
        .iter()
        .filter(|known| events.iter().any(|e| e == *known))
        .map(|known| (*known).to_owned())
        .collect())
}

/// The endpoint's signing key.
pub fn open_key(master: &MasterKey, endpoint: &EndpointRow) -> Result<Zeroizing<Vec<u8>>, String> {
    webhook_signing::open_sealed_key(
        master,
        &endpoint.secret_sealed,
        &aad(endpoint.id),
        "webhook",
    )
}

fn new_sealed_secret(
    master: &MasterKey,
    endpoint_id: Uuid,
) -> AppResult<(Zeroizing<String>, Vec<u8>)> {
    webhook_signing::new_sealed_secret(master, &aad(endpoint_id))
        .map_err(|e| AppError::Internal(format!("webhook secret: {e}")))
}

pub async fn list(conn: &mut DbConn, tenant_id: Uuid) -> AppResult<Vec<EndpointRow>> {
    Ok(webhooks::endpoints(conn, tenant_id).await?)
}

/// Registers an endpoint; its secret is returned this once.
pub async fn create(
    conn: &mut DbConn,
    master: &MasterKey,
    tenant_id: Uuid,
    url: &str,
    events: &[String],
    description: &str,
) -> AppResult<(EndpointRow, Zeroizing<String>)> {
    let url = validate_url(url)?;
    let events = validate_events(events)?;
    let description = validate_label(description)?;
    if webhooks::endpoints(conn, tenant_id).await?.len() >= MAX_ENDPOINTS {
        return Err(AppError::Conflict(format!(
            "a tenant holds at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let id = Uuid::now_v7();
    let (secret, sealed) = new_sealed_secret(master, id)?;
    let row = webhooks::insert_endpoint(
        conn,
        &NewEndpoint {
            id,
            tenant_id,
            url: &url,
            description,
            events: &events,
            secret_sealed: &sealed,
        },
    )
    .await?;
    Ok((row, secret))
}

/// Changes an endpoint; a rotated secret is returned this once.
pub async fn update(
    conn: &mut DbConn,
    master: &MasterKey,
    tenant_id: Uuid,
    id: Uuid,
    update: &EndpointUpdate,
) -> AppResult<(EndpointRow, Option<Zeroizing<String>>)> {
    let (secret, secret_sealed) = if update.rotate_secret {
        let (secret, sealed) = new_sealed_secret(master, id)?;
        (Some(secret), Some(sealed))
    } else {
        (None, None)
    };
    let changes = EndpointChanges {
        url: update.url.as_deref().map(validate_url).transpose()?,
        description: update
            .description
            .as_deref()
            .map(|d| validate_label(d).map(str::to_owned))
            .transpose()?,
        events: update.events.as_deref().map(validate_events).transpose()?,
        secret_sealed,
        enabled: update.enabled,
        updated_at: Some(Utc::now()),
    };
    let row = webhooks::update_endpoint(conn, tenant_id, id, &changes)
        .await?
        .ok_or(AppError::NotFound("webhook endpoint"))?;
    Ok((row, secret))
}

/// Removes an endpoint and its deliveries.
pub async fn delete(conn: &mut DbConn, tenant_id: Uuid, id: Uuid) -> AppResult<EndpointRow> {
    webhooks::delete_endpoint(conn, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound("webhook endpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_known_deduplicated_and_ordered() {
        let picked = validate_events(&[
            "verification.verified".to_owned(),
            "verification.requested".to_owned(),
            "verification.verified".to_owned(),
        ]);
        assert_eq!(
            picked.ok(),
            Some(vec![
                "verification.requested".to_owned(),
                "verification.verified".to_owned()
            ])
        );
        assert!(validate_events(&[]).is_err());
        assert!(validate_events(&["verification.*".to_owned()]).is_err());
    }
}
