//! Webhook endpoints and their deliveries.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::types::{PageInfo, page_edges};
use super::{answer, connection, secret};
use crate::admin::sessions::Cursor;
use crate::app::AppState;
use crate::db::webhooks::{DeliveryRow, EndpointRow};
use crate::graphql::types::parse_id;
use crate::webhooks::EVENT_TYPES;
use crate::webhooks::deliveries::{self, DeliveryFilter};
use crate::webhooks::endpoints::{self, EndpointUpdate};
use crate::webhooks::worker::message_id;

/// An event a webhook endpoint can receive.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookEventType {
    /// `verification.requested`: a session was created and its call is being placed.
    VerificationRequested,
    /// `verification.verified`: the right caller ID came back.
    VerificationVerified,
    /// `verification.failed`: the call could not be completed.
    VerificationFailed,
    /// `verification.locked`: too many wrong caller IDs.
    VerificationLocked,
    /// `verification.expired`: the session ran out of time.
    VerificationExpired,
    /// `pool.number_deactivated`: a caller ID left the pool.
    PoolNumberDeactivated,
}

/// In the order of [`EVENT_TYPES`], which holds their wire names.
const EVENTS: [WebhookEventType; 6] = [
    WebhookEventType::VerificationRequested,
    WebhookEventType::VerificationVerified,
    WebhookEventType::VerificationFailed,
    WebhookEventType::VerificationLocked,
    WebhookEventType::VerificationExpired,
    WebhookEventType::PoolNumberDeactivated,
];

impl WebhookEventType {
    /// The `type` field of the payload.
    pub fn wire_name(self) -> &'static str {
        EVENTS
            .iter()
            .position(|kind| *kind == self)
            .and_then(|i| EVENT_TYPES.get(i))
            .copied()
            .unwrap_or("")
    }

    fn from_wire(name: &str) -> Option<Self> {
        EVENT_TYPES
            .iter()
            .position(|wire| *wire == name)
            .and_then(|i| EVENTS.get(i))
            .copied()
    }
}

fn wire_names(events: &[WebhookEventType]) -> Vec<String> {
    events.iter().map(|e| e.wire_name().to_owned()).collect()
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Not sent yet, or being retried.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Retries ran out; replay it to try again.
    Failed,
}

impl WebhookDeliveryStatus {
    fn stored(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    fn parse(stored: &str) -> Self {
        match stored {
            "DELIVERED" => Self::Delivered,
            "FAILED" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A URL that receives the tenant's events, signed the Standard Webhooks way.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookEndpoint {
    pub id: ID,
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEventType>,
    /// Disabled endpoints keep their deliveries pending until enabled again.
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&EndpointRow> for WebhookEndpoint {
    fn from(row: &EndpointRow) -> Self {
        Self {
            id: ID(row.id.to_string()),
            url: row.url.clone(),
            description: row.description.clone(),
            events: row
                .events
                .iter()
                .filter_map(|e| WebhookEventType::from_wire(e))
                .collect(),
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An endpoint and its signing secret, which is shown this once.
#[derive(SimpleObject)]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`; present when created or rotated.
    pub secret: Option<String>,
}

/// One event sent (or to be sent) to one endpoint.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDelivery {
    pub id: ID,
    /// The `webhook-id` header: the same for every endpoint, retry and replay of the event.
    pub message_id: String,
    pub endpoint_id: ID,
    pub event_type: String,
    pub session_id: Option<ID>,
    /// The body sent.
    pub payload: Json<serde_json::Value>,
    pub status: WebhookDeliveryStatus,
    pub attempts: i32,
    /// When the next try is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&DeliveryRow> for WebhookDelivery {
    fn from(row: &DeliveryRow) -> Self {
        let status = WebhookDeliveryStatus::parse(&row.status);
        Self {
            id: ID(row.id.to_string()),
            message_id: message_id(row.event_id),
            endpoint_id: ID(row.endpoint_id.to_string()),
            event_type: row.event_type.clone(),
            session_id: row.session_id.map(|id| ID(id.to_string())),
            payload: Json(row.payload.clone()),
            status,
            attempts: row.attempts,
            next_attempt_at: (status == WebhookDeliveryStatus::Pending)
                .then_some(row.next_attempt_at),
            last_attempt_at: row.last_attempt_at,
            last_status_code: row.last_status_code,
            last_error: row.last_error.clone(),
            delivered_at: row.delivered_at,
            created_at: row.created_at,
        }
    }
}

/// A delivery and its cursor.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDeliveryEdge {
    pub cursor: String,
    pub node: WebhookDelivery,
}

/// A page of deliveries, newest first.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDeliveryConnection {
    pub edges: Vec<WebhookDeliveryEdge>,
    pub page_info: PageInfo,
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    pub url: String,
    pub events: Vec<WebhookEventType>,
    #[graphql(default)]
    pub description: String,
}

/// Every field is optional; what is left out stays.
#[derive(InputObject, Default)]
pub struct UpdateWebhookEndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEventType>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    /// A new secret replaces the old one at once; it is returned this once.
    #[graphql(default)]
    pub rotate_secret: bool,
}

/// Which deliveries to list; every field narrows.
#[derive(InputObject, Default)]
pub struct WebhookDeliveryFilterInput {
    pub endpoint_id: Option<ID>,
    pub session_id: Option<ID>,
    pub status: Option<WebhookDeliveryStatus>,
    pub event_type: Option<WebhookEventType>,
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The tenant's webhook endpoints, oldest first.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let rows = answer(endpoints::list(&mut conn, principal.tenant.id).await)?;
        Ok(rows.iter().map(WebhookEndpoint::from).collect())
    }

    /// The tenant's webhook deliveries, newest first (at most 100 a page).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<WebhookDeliveryFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        let principal = secret(ctx).await?;
        let filter = filter.unwrap_or_default();
        let filter = DeliveryFilter {
            endpoint_id: filter
                .endpoint_id
                .as_ref()
                .map(|id| parse_id(id, "endpointId"))
                .transpose()?,
            session_id: filter
                .session_id
                .as_ref()
                .map(|id| parse_id(id, "sessionId"))
                .transpose()?,
            status: filter.status.map(WebhookDeliveryStatus::stored),
            event_type: filter.event_type.map(|e| e.wire_name().to_owned()),
        };
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let page = answer(
            deliveries::list(
                &mut conn,
                principal.tenant.id,
                &filter,
                first,
                after.as_deref(),
            )
            .await,
        )?;
        let (edges, page_info) = page_edges(
            &page,
            after.as_deref(),
            |row| Cursor {
                created_at: row.created_at,
                id: row.id,
            },
            |cursor, row| WebhookDeliveryEdge {
                cursor,
                node: WebhookDelivery::from(row),
            },
        );
        Ok(WebhookDeliveryConnection { edges, page_info })
    }

    /// One delivery of the tenant.
    async fn webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(deliveries::find(&mut conn, principal.tenant.id, id).await)?;
        Ok(WebhookDelivery::from(&row))
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Registers an endpoint for the events picked; its secret is shown this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let principal = secret(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let (row, secret) = answer(
            endpoints::create(
                &mut conn,
                &state.master_key,
                principal.tenant.id,
                &input.url,
                &wire_names(&input.events),
                &input.description,
            )
            .await,
        )?;
        Ok(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint::from(&row),
            secret: Some(secret.to_string()),
        })
    }

    /// Changes an endpoint; a rotated secret is shown this once.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let principal = secret(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let id = parse_id(&id, "id")?;
        let update = EndpointUpdate {
            url: input.url,
            description: input.description,
            events: input.events.as_deref().map(wire_names),
            enabled: input.enabled,
            rotate_secret: input.rotate_secret,
        };
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let (row, secret) = answer(
            endpoints::update(
                &mut conn,
                &state.master_key,
                principal.tenant.id,
                id,
                &update,
            )
            .await,
        )?;
        Ok(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint::from(&row),
            secret: secret.map(|s| s.to_string()),
        })
    }

    /// Removes an endpoint and its deliveries.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(endpoints::delete(&mut conn, principal.tenant.id, id).await)?;
        Ok(WebhookEndpoint::from(&row))
    }

    /// Sends a delivery again (same `webhook-id`), as a new delivery due now.
    async fn replay_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(deliveries::replay(&mut conn, principal.tenant.id, id).await)?;
        Ok(WebhookDelivery::from(&row))
    }
}
