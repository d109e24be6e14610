//! The tenant, its settings and its gateway.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject};

use super::types::{ApprovalFailurePolicy, GatewayKind, Tenant};
use super::{answer, connection, secret};
use crate::admin::gateway::{GatewayChoice, TwilioCredentials};
use crate::admin::settings::{RateLimitOverrides, SettingsChange};
use crate::admin::{self, strength};
use crate::app::AppState;
use crate::approval::{self, settings::HookSettings};
use crate::db::DbConn;
use crate::db::tenants::{self, Tenant as TenantRow};
use crate::error::{AppError, AppResult};

/// Rate limits to override; every field replaces the stored set (null: platform default).
#[derive(InputObject, Default)]
pub struct RateLimitsInput {
    pub per_phone_per_hour: Option<i32>,
    pub per_ip_per_minute: Option<i32>,
    pub per_tenant_per_minute: Option<i32>,
    pub per_country_per_minute: Option<i32>,
    pub daily_call_cap: Option<i32>,
}

/// Settings to change; omitted fields stay as they are.
#[derive(InputObject, Default)]
pub struct TenantSettingsInput {
    pub name: Option<String>,
    pub validity_seconds: Option<i32>,
    pub max_attempts: Option<i32>,
    pub require_app_signature: Option<bool>,
    pub jwt_audience: Option<String>,
    pub jwt_ttl_seconds: Option<i32>,
    /// Null removes the cap.
    pub max_guess_probability: MaybeUndefined<f64>,
    pub ring_timeout_seconds: Option<i32>,
    pub interception_timeout_seconds: Option<i32>,
    pub rate_limits: Option<RateLimitsInput>,
    pub test_numbers_enabled: Option<bool>,
    /// Days phone numbers, client addresses and the audit trail are kept (1-3650).
    pub retention_days: Option<i32>,
}

/// The approval hook to ask before each call.
#[derive(InputObject)]
pub struct ApprovalHookInput {
    /// Where requests are POSTed (http or https).
    pub url: String,
    /// How long to wait for an answer, 100-10000 ms.
    #[graphql(default = 2000)]
    pub timeout_ms: i32,
    /// What happens when the hook fails or times out.
    #[graphql(default_with = "ApprovalFailurePolicy::Deny")]
    pub on_failure: ApprovalFailurePolicy,
    /// Replace the signing secret even when one exists.
    #[graphql(default)]
    pub rotate_secret: bool,
}

/// The tenant with its hook; `secret` only when one was created now.
#[derive(SimpleObject)]
pub struct ApprovalHookPayload {
    pub tenant: Tenant,
    /// `whsec_…`: verify the `webhook-signature` header with it. Shown once.
    pub secret: Option<String>,
}

/// The gateway to use; Twilio needs the account's SID and auth token (write-only).
#[derive(InputObject)]
pub struct TenantGatewayInput {
    pub kind: GatewayKind,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
}

/// The tenant as its admin sees it, with its pool's strength.
pub async fn view(conn: &mut DbConn, row: &TenantRow) -> AppResult<Tenant> {
    let strength = strength::by_country(conn, row.id, row.max_attempts).await?;
    Ok(Tenant::new(row, strength))
}

#[derive(Default)]
pub struct TenantQuery;

#[Object]
impl TenantQuery {
    /// The tenant of this secret key.
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(
            tenants::find(&mut conn, principal.tenant.id)
                .await
                .map_err(AppError::from)
                .and_then(|row| row.ok_or(AppError::NotFound("tenant"))),
        )?;
        answer(view(&mut conn, &row).await)
    }
}

#[derive(Default)]
pub struct TenantMutation;

#[Object]
impl TenantMutation {
    /// Changes settings; nothing is written unless every value is valid.
    async fn update_tenant_settings(
        &self,
        ctx: &Context<'_>,
        input: TenantSettingsInput,
    ) -> async_graphql::Result<Tenant> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let change = SettingsChange {
            name: input.name,
            validity_seconds: input.validity_seconds,
            max_attempts: input.max_attempts,
            require_app_signature: input.require_app_signature,
            jwt_audience: input.jwt_audience,
            jwt_ttl_seconds: input.jwt_ttl_seconds,
            max_guess_probability: match input.max_guess_probability {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(p) => Some(Some(p)),
            },
            ring_timeout_seconds: input.ring_timeout_seconds,
            interception_timeout_seconds: input.interception_timeout_seconds,
            rate_limit_overrides: input.rate_limits.map(|r| RateLimitOverrides {
                per_phone_per_hour: r.per_phone_per_hour,
                per_ip_per_minute: r.per_ip_per_minute,
                per_tenant_per_minute: r.per_tenant_per_minute,
                per_country_per_minute: r.per_country_per_minute,
                daily_call_cap: r.daily_call_cap,
            }),
            test_numbers_enabled: input.test_numbers_enabled,
            retention_days: input.retention_days,
        };
        let row = answer(admin::settings::update(&mut conn, principal.tenant.id, change).await)?;
        answer(view(&mut conn, &row).await)
    }

    /// Sets the hook asked before each call; a signing secret is created (and shown) the first
    /// time or on `rotateSecret`.
    async fn set_approval_hook(
        &self,
        ctx: &Context<'_>,
        input: ApprovalHookInput,
    ) -> async_graphql::Result<ApprovalHookPayload> {
        let principal = secret(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let current = answer(
            tenants::find(&mut conn, principal.tenant.id)
                .await
                .map_err(AppError::from)
                .and_then(|row| row.ok_or(AppError::NotFound("tenant"))),
        )?;
        let (row, secret) = answer(
            approval::settings::set(
                &mut conn,
                &state.master_key,
                &current,
                &HookSettings {
                    url: input.url,
                    timeout_ms: input.timeout_ms,
                    on_failure: input.on_failure.as_str(),
                    rotate_secret: input.rotate_secret,
                },
            )
            .await,
        )?;
        Ok(ApprovalHookPayload {
            tenant: answer(view(&mut conn, &row).await)?,
            secret,
        })
    }

    /// Stops asking a hook.
    async fn remove_approval_hook(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        let principal = secret(ctx).await?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(approval::settings::remove(&mut conn, principal.tenant.id).await)?;
        answer(view(&mut conn, &row).await)
    }

    /// Chooses the gateway; the tenant's own Twilio credentials are sealed and never shown.
    async fn set_tenant_gateway(
        &self,
        ctx: &Context<'_>,
        input: TenantGatewayInput,
    ) -> async_graphql::Result<Tenant> {
        let principal = secret(ctx).await?;
        let state = ctx.data::<AppState>()?;
        let choice = match input.kind {
            GatewayKind::Platform => GatewayChoice::Platform,
            GatewayKind::Twilio => {
                let (Some(account_sid), Some(auth_token)) =
                    (input.twilio_account_sid, input.twilio_auth_token)
                else {
                    return answer(Err(AppError::InvalidInput(
                        "TWILIO needs twilioAccountSid and twilioAuthToken".into(),
                    )));
                };
                GatewayChoice::OwnTwilio(TwilioCredentials {
                    account_sid: account_sid.trim().to_owned(),
                    auth_token: auth_token.trim().to_owned(),
                })
            }
        };
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let row = answer(
            admin::gateway::set(&mut conn, &state.master_key, principal.tenant.id, choice).await,
        )?;
        answer(view(&mut conn, &row).await)
    }
}
