//! Objects of the admin surface, built from rows; secrets never reach them.

use async_graphql::{ComplexObject, Context, Enum, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};

use super::{answer, connection};
use crate::admin;
use crate::admin::pool::PoolHealth;
use crate::admin::settings::RateLimitOverrides;
use crate::admin::strength::CountryStrength;
use crate::db::api_keys::ApiKey as ApiKeyRow;
use crate::db::app_signatures::AppSignature as AppSignatureRow;
use crate::db::audit_events::AuditEvent as AuditEventRow;
use crate::db::pool_numbers::PoolNumber as PoolNumberRow;
use crate::db::sessions::SessionRow;
use crate::db::tenants::Tenant as TenantRow;
use crate::graphql::types::SessionStatus;
use crate::verification::SessionStatus as DomainStatus;

fn id(uuid: uuid::Uuid) -> ID {
    ID(uuid.to_string())
}

/// Whether a tenant may use the API.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    fn of(row: &TenantRow) -> Self {
        if row.is_active() {
            Self::Active
        } else {
            Self::Suspended
        }
    }
}

/// Limits the tenant set for itself; null ones take the platform's defaults.
#[derive(SimpleObject, Clone, Debug)]
pub struct RateLimits {
    pub per_phone_per_hour: Option<i32>,
    pub per_ip_per_minute: Option<i32>,
    pub per_tenant_per_minute: Option<i32>,
    pub per_country_per_minute: Option<i32>,
    pub daily_call_cap: Option<i32>,
}

impl From<RateLimitOverrides> for RateLimits {
    fn from(o: RateLimitOverrides) -> Self {
        Self {
            per_phone_per_hour: o.per_phone_per_hour,
            per_ip_per_minute: o.per_ip_per_minute,
            per_tenant_per_minute: o.per_tenant_per_minute,
            per_country_per_minute: o.per_country_per_minute,
            daily_call_cap: o.daily_call_cap,
        }
    }
}

/// How a tenant's sessions behave.
#[derive(SimpleObject, Clone, Debug)]
pub struct TenantSettings {
    /// How long a session may be verified after it was requested.
    pub validity_seconds: i32,
    pub max_attempts: i32,
    pub require_app_signature: bool,
    pub jwt_audience: String,
    pub jwt_ttl_seconds: i32,
    /// requestCall refuses with POOL_TOO_WEAK when a blind guess would win more often; null: off.
    pub max_guess_probability: Option<f64>,
    pub ring_timeout_seconds: i32,
    pub interception_timeout_seconds: i32,
    pub rate_limits: RateLimits,
    /// Off: test numbers are ordinary numbers.
    pub test_numbers_enabled: bool,
    /// Days phone numbers, client addresses and the audit trail are kept.
    pub retention_days: i32,
}

/// What happens when the approval hook fails or does not answer in time.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ApprovalFailurePolicy {
    Allow,
    Deny,
}

impl ApprovalFailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "ALLOW",
            Self::Deny => "DENY",
        }
    }
}

/// The tenant's approval hook; its secret is shown only when created.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApprovalHook {
    pub url: String,
    pub timeout_ms: i32,
    pub on_failure: ApprovalFailurePolicy,
}

/// Which gateway places the tenant's calls.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    /// The platform's gateway and account.
    Platform,
    /// Twilio with the tenant's own account.
    Twilio,
}

/// The tenant's gateway; credentials are write-only.
#[derive(SimpleObject, Clone, Debug)]
pub struct TenantGateway {
    pub kind: GatewayKind,
    /// `AC…1234` for the tenant's own account.
    pub account_hint: Option<String>,
}

/// Caller IDs that may ring for destinations in one country.
#[derive(SimpleObject, Clone, Debug)]
pub struct PoolStrength {
    /// Null: destinations with no caller ID of their own country (the whole pool serves them).
    pub country: Option<String>,
    pub caller_ids: i64,
    /// `maxAttempts / callerIds`: how often a blind guess wins.
    pub guess_probability: f64,
}

impl From<CountryStrength> for PoolStrength {
    fn from(s: CountryStrength) -> Self {
        Self {
            country: s.country,
            caller_ids: s.caller_ids,
            guess_probability: s.guess_probability,
        }
    }
}

/// The tenant as its admin sees it.
#[derive(SimpleObject, Clone, Debug)]
pub struct Tenant {
    pub id: ID,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub settings: TenantSettings,
    pub gateway: TenantGateway,
    /// The worst case over every destination of `maxAttempts / caller IDs available`.
    pub guess_probability: f64,
    pub pool_strength: Vec<PoolStrength>,
    pub approval_hook: Option<ApprovalHook>,
}

impl Tenant {
    pub fn new(row: &TenantRow, strength: Vec<CountryStrength>) -> Self {
        Self {
            id: id(row.id),
            slug: row.slug.clone(),
            name: row.name.clone(),
            status: TenantStatus::of(row),
            created_at: row.created_at,
            updated_at: row.updated_at,
            settings: TenantSettings {
                validity_seconds: row.validity_seconds,
                max_attempts: row.max_attempts,
                require_app_signature: row.require_app_signature,
                jwt_audience: row.jwt_audience.clone(),
                jwt_ttl_seconds: row.jwt_ttl_seconds,
                max_guess_probability: row.max_guess_probability,
                ring_timeout_seconds: row.ring_timeout_seconds,
                interception_timeout_seconds: row.interception_timeout_seconds,
                rate_limits: RateLimitOverrides::of(row).into(),
                test_numbers_enabled: row.test_numbers_enabled,
                retention_days: row.retention_days,
            },
            approval_hook: row.approval_url.as_ref().map(|url| ApprovalHook {
                url: url.clone(),
                timeout_ms: row.approval_timeout_ms,
                on_failure: if row.approval_on_failure == "ALLOW" {
                    ApprovalFailurePolicy::Allow
                } else {
                    ApprovalFailurePolicy::Deny
                },
            }),
            gateway: TenantGateway {
                kind: if row.gateway_credentials_sealed.is_some() {
                    GatewayKind::Twilio
                } else {
                    GatewayKind::Platform
                },
                account_hint: row.gateway_account_hint.clone(),
            },
            guess_probability: admin::strength::worst(&strength),
            pool_strength: strength.into_iter().map(Into::into).collect(),
        }
    }
}

/// A tenant as the operator sees it.
#[derive(SimpleObject, Clone, Debug)]
pub struct TenantSummary {
    pub id: ID,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
}

impl From<&TenantRow> for TenantSummary {
    fn from(row: &TenantRow) -> Self {
        Self {
            id: id(row.id),
            slug: row.slug.clone(),
            name: row.name.clone(),
            status: TenantStatus::of(row),
            created_at: row.created_at,
        }
    }
}

/// A pool entry's health.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PoolNumberHealth {
    Ok,
    /// Failed several times in a row; not offered until `cooldownUntil`.
    CoolingDown,
    /// Inactive: set by an admin or after repeated failures.
    Deactivated,
}

/// A caller ID or a range in the pool.
#[derive(SimpleObject, Clone, Debug)]
pub struct PoolNumber {
    pub id: ID,
    /// `+14155550100`, or `+467012300XX` for a range.
    pub pattern: String,
    pub country: String,
    pub label: String,
    pub active: bool,
    pub weight: i32,
    /// How many caller IDs the entry stands for.
    pub caller_ids: i64,
    pub health: PoolNumberHealth,
    pub call_count: i64,
    pub failure_count: i64,
    pub consecutive_failures: i32,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&PoolNumberRow> for PoolNumber {
    fn from(row: &PoolNumberRow) -> Self {
        Self {
            id: id(row.id),
            pattern: row.pattern.clone(),
            country: row.country.clone(),
            label: row.label.clone(),
            active: row.active,
            weight: row.weight,
            caller_ids: admin::pool::caller_ids(row),
            health: match admin::pool::health(row) {
                PoolHealth::Ok => PoolNumberHealth::Ok,
                PoolHealth::CoolingDown => PoolNumberHealth::CoolingDown,
                PoolHealth::Deactivated => PoolNumberHealth::Deactivated,
            },
            call_count: row.call_count,
            failure_count: row.failure_count,
            consecutive_failures: row.consecutive_failures,
            cooldown_until: row.cooldown_until,
            last_used_at: row.last_used_at,
            created_at: row.created_at,
        }
    }
}

/// The platform an app signature belongs to.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AppPlatform {
    Android,
    Ios,
}

impl AppPlatform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Android => "ANDROID",
            Self::Ios => "IOS",
        }
    }
}

/// An app allowed to request calls (Android app hash or iOS bundle id).
#[derive(SimpleObject, Clone, Debug)]
pub struct AppSignature {
    pub id: ID,
    pub platform: AppPlatform,
    pub signature: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

impl From<&AppSignatureRow> for AppSignature {
    fn from(row: &AppSignatureRow) -> Self {
        Self {
            id: id(row.id),
            platform: if row.platform == "IOS" {
                AppPlatform::Ios
            } else {
                AppPlatform::Android
            },
            signature: row.signature.clone(),
            label: row.label.clone(),
            created_at: row.created_at,
        }
    }
}

/// An API key's kind.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyKindName {
    /// `pk_…`: in the mobile app; requests and verifies calls only.
    Publishable,
    /// `sk_…`: on the tenant's servers; administers the tenant.
    Secret,
}

/// An API key; the key itself is shown once, at creation.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "ApiKey")]
pub struct ApiKey {
    pub id: ID,
    pub kind: KeyKindName,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyRow> for ApiKey {
    fn from(row: &ApiKeyRow) -> Self {
        Self {
            id: id(row.id),
            kind: if row.kind == "SECRET" {
                KeyKindName::Secret
            } else {
                KeyKindName::Publishable
            },
            prefix: row.prefix.clone(),
            label: row.label.clone(),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// One audit event.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditEvent {
    pub id: ID,
    /// `call.requested`, `call.placed`, `verify.succeeded`, `pool.number_deactivated`, …
    pub kind: String,
    pub session_id: Option<ID>,
    pub ip: Option<String>,
    pub detail: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<&AuditEventRow> for AuditEvent {
    fn from(row: &AuditEventRow) -> Self {
        Self {
            id: id(row.id),
            kind: row.kind.clone(),
            session_id: row.session_id.map(id),
            ip: row.ip.clone(),
            detail: Json(row.detail.clone()),
            created_at: row.created_at,
        }
    }
}

/// A verification session as the tenant's admin sees it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Session {
    pub id: ID,
    pub phone_number: String,
    pub country: String,
    pub number_type: String,
    pub status: SessionStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The caller ID that rang; shown once the session is over.
    pub caller_id: Option<String>,
    pub pool_number_id: Option<ID>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub app_signature: Option<String>,
    pub gateway: String,
    pub gateway_call_id: Option<String>,
    pub call_status: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    /// Requested for a test number: no call was placed.
    pub test: bool,
    pub metadata: Option<Json<serde_json::Value>>,
    #[graphql(skip)]
    pub tenant_id: uuid::Uuid,
    #[graphql(skip)]
    pub session_id: uuid::Uuid,
}

impl From<&SessionRow> for Session {
    fn from(row: &SessionRow) -> Self {
        let status = DomainStatus::parse(&row.status).unwrap_or(DomainStatus::Pending);
        Self {
            id: id(row.id),
            phone_number: row.phone_number.clone(),
            country: row.country.clone(),
            number_type: row.number_type.clone(),
            status: status.into(),
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            caller_id: status.is_terminal().then(|| row.expected_caller_id.clone()),
            pool_number_id: row.pool_number_id.map(id),
            client_ip: row.client_ip.clone(),
            user_agent: row.user_agent.clone(),
            app_signature: row.app_signature.clone(),
            gateway: row.gateway.clone(),
            gateway_call_id: row.gateway_call_id.clone(),
            call_status: row.call_status.clone(),
            failure_reason: row.failure_reason.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
            verified_at: row.verified_at,
            test: row.is_test,
            metadata: row.metadata.clone().map(Json),
            tenant_id: row.tenant_id,
            session_id: row.id,
        }
    }
}

#[ComplexObject]
impl Session {
    /// Every event of this session, oldest first.
    async fn audit_trail(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AuditEvent>> {
        let mut conn = connection(ctx, self.tenant_id).await?;
        let rows = answer(
            crate::db::audit_events::for_session(&mut conn, self.tenant_id, self.session_id)
                .await
                .map_err(Into::into),
        )?;
        Ok(rows.iter().map(AuditEvent::from).collect())
    }
}

/// Where a page ends and whether another follows.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A session and its cursor.
#[derive(SimpleObject, Clone, Debug)]
pub struct SessionEdge {
    pub cursor: String,
    pub node: Session,
}

/// A page of sessions, newest first.
#[derive(SimpleObject, Clone, Debug)]
pub struct SessionConnection {
    pub edges: Vec<SessionEdge>,
    pub page_info: PageInfo,
}

/// An audit event and its cursor.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditEventEdge {
    pub cursor: String,
    pub node: AuditEvent,
}

/// A page of the audit log, newest first.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditEventConnection {
    pub edges: Vec<AuditEventEdge>,
    pub page_info: PageInfo,
}

/// The page info of edges in order.
pub fn page_info(cursors: &[String], after: Option<&str>, has_next_page: bool) -> PageInfo {
    PageInfo {
        has_next_page,
        has_previous_page: after.is_some(),
        start_cursor: cursors.first().cloned(),
        end_cursor: cursors.last().cloned(),
    }
}

/// The edges of a keyset page and its page info: `key` locates a row, `edge` makes its edge
/// from its cursor.
pub fn page_edges<R, E>(
    page: &crate::admin::sessions::Page<R>,
    after: Option<&str>,
    key: impl Fn(&R) -> crate::admin::sessions::Cursor,
    edge: impl Fn(String, &R) -> E,
) -> (Vec<E>, PageInfo) {
    let cursors: Vec<String> = page.items.iter().map(|row| key(row).encode()).collect();
    let info = page_info(&cursors, after, page.has_next_page);
    let edges = cursors
        .into_iter()
        .zip(&page.items)
        .map(|(cursor, row)| edge(cursor, row))
        .collect();
    (edges, info)
}

/// A number that verifies without a call.
#[derive(SimpleObject, Clone, Debug)]
pub struct TestNumber {
    pub id: ID,
    pub phone_number: String,
    /// The caller ID that verifies it.
    pub caller_id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

impl From<&crate::db::test_numbers::TestNumber> for TestNumber {
    fn from(row: &crate::db::test_numbers::TestNumber) -> Self {
        Self {
            id: id(row.id),
            phone_number: row.phone_number.clone(),
            caller_id: row.caller_id.clone(),
            label: row.label.clone(),
            created_at: row.created_at,
        }
    }
}
