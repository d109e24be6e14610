//! A tenant's settings: validated against the same bounds the database enforces, written in
//! one statement.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::in_range;
use crate::db::DbConn;
use crate::db::schema::tenants;
use crate::db::tenants::Tenant;
use crate::error::{AppError, AppResult};

/// Limits a tenant may set for itself; unset ones take the platform's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitOverrides {
    pub per_phone_per_hour: Option<i32>,
    pub per_ip_per_minute: Option<i32>,
    pub per_tenant_per_minute: Option<i32>,
    pub per_country_per_minute: Option<i32>,
    pub daily_call_cap: Option<i32>,
}

impl RateLimitOverrides {
    /// The overrides stored with a tenant; a malformed document counts as none.
    pub fn of(tenant: &Tenant) -> Self {
        serde_json::from_value(tenant.rate_limit_overrides.clone()).unwrap_or_default()
    }

    fn validate(&self) -> AppResult<()> {
        let fields = [
            ("perPhonePerHour", self.per_phone_per_hour),
            ("perIpPerMinute", self.per_ip_per_minute),
            ("perTenantPerMinute", self.per_tenant_per_minute),
            ("perCountryPerMinute", self.per_country_per_minute),
            ("dailyCallCap", self.daily_call_cap),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                in_range(field, value, 1..=1_000_000)?;
            }
        }
        Ok(())
    }
}

/// A change to the settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub name: Option<String>,
    pub validity_seconds: Option<i32>,
    pub max_attempts: Option<i32>,
    pub require_app_signature: Option<bool>,
    pub jwt_audience: Option<String>,
    pub jwt_ttl_seconds: Option<i32>,
    /// `Some(None)` removes the cap.
    pub max_guess_probability: Option<Option<f64>>,
    pub ring_timeout_seconds: Option<i32>,
    pub interception_timeout_seconds: Option<i32>,
    pub rate_limit_overrides: Option<RateLimitOverrides>,
    pub test_numbers_enabled: Option<bool>,
    pub retention_days: Option<i32>,
}

#[derive(AsChangeset)]
#[diesel(table_name = tenants)]
struct Changes {
    name: Option<String>,
    validity_seconds: Option<i32>,
    max_attempts: Option<i32>,
    require_app_signature: Option<bool>,
    jwt_audience: Option<String>,
    jwt_ttl_seconds: Option<i32>,
    max_guess_probability: Option<Option<f64>>,
    ring_timeout_seconds: Option<i32>,
    interception_timeout_seconds: Option<i32>,
    rate_limit_overrides: Option<serde_json::Value>,
    test_numbers_enabled: Option<bool>,
    retention_days: Option<i32>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

fn text_setting(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    value
        .map(|value| {
            let value = value.trim().to_owned();
            if value.is_empty()
                || value.chars().count() > 200
                || value.chars().any(char::is_control)
            {
                Err(AppError::InvalidInput(format!(
                    "{field} must be 1-200 printable characters"
                )))
            } else {
                Ok(value)
            }
        })
        .transpose()
}

impl SettingsChange {
    fn validated(self) -> AppResult<Changes> {
        let range = |field: &str, value: Option<i32>, bounds| {
            value.map(|v| in_range(field, v, bounds)).transpose()
        };
        if let Some(Some(p)) = self.max_guess_probability
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(AppError::InvalidInput(
                "maxGuessProbability must be above 0 and at most 1".into(),
            ));
        }
        if let Some(overrides) = &self.rate_limit_overrides {
            overrides.validate()?;
        }
        Ok(Changes {
            name: text_setting("name", self.name)?,
            validity_seconds: range("validitySeconds", self.validity_seconds, 30..=3600)?,
            max_attempts: range("maxAttempts", self.max_attempts, 1..=10)?,
            require_app_signature: self.require_app_signature,
            jwt_audience: text_setting("jwtAudience", self.jwt_audience)?,
            jwt_ttl_seconds: range("jwtTtlSeconds", self.jwt_ttl_seconds, 60..=2_592_000)?,
            max_guess_probability: self.max_guess_probability,
            ring_timeout_seconds: range("ringTimeoutSeconds", self.ring_timeout_seconds, 3..=30)?,
            interception_timeout_seconds: range(
                "interceptionTimeoutSeconds",
                self.interception_timeout_seconds,
                5..=300,
            )?,
            rate_limit_overrides: self
                .rate_limit_overrides
                .map(|o| serde_json::to_value(o).unwrap_or_default()),
            test_numbers_enabled: self.test_numbers_enabled,
            retention_days: range("retentionDays", self.retention_days, 1..=3650)?,
            updated_at: chrono::Utc::now(),
        })
    }
}

/// Applies a change to the tenant's settings; nothing is written unless every value is valid.
pub async fn update(
    conn: &mut DbConn,
    tenant_id: Uuid,
    change: SettingsChange,
) -> AppResult<Tenant> {
    let changes = change.validated()?;
    diesel::update(tenants::table.find(tenant_id))
        .set(&changes)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("tenant"))
}
