//! Tenant provisioning shared by the CLI and the admin API: tenants, pool entries, app
//! signatures and allowed countries, each validated before it is written.

use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::auth::{self, CreatedKey, KeyKind};
use crate::db::allowed_countries;
use crate::db::app_signatures::{self, AppSignature, NewAppSignature};
use crate::db::pool_numbers::{self, NewPoolNumber, PoolNumber};
use crate::db::tenants::{self, NewTenant, Tenant};
use crate::db::{DbConn, is_unique_violation};
use crate::error::{AppError, AppResult};
use crate::verification::phone;

/// A new tenant with its first publishable and secret keys (shown once).
#[derive(Debug)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub publishable_key: CreatedKey,
    pub secret_key: CreatedKey,
}

/// Checks a slug: 2–63 of lowercase letters, digits and dashes, starting with a letter or digit.
pub fn validate_slug(slug: &str) -> AppResult<()> {
    let ok = (2..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(AppError::InvalidInput(
            "slug must be 2-63 lowercase letters, digits or dashes, not starting with a dash"
                .into(),
        ))
    }
}

/// Creates a tenant and its first pair of keys in one transaction.
pub async fn create_tenant(
    conn: &mut DbConn,
    slug: &str,
    name: &str,
    audience: Option<&str>,
) -> AppResult<CreatedTenant> {
    validate_slug(slug)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::InvalidInput(
            "name must be 1-200 characters".into(),
        ));
    }
    let audience = audience
        .map(str::trim)
        .map(str::to_owned)
        .unwrap_or_else(|| slug.to_owned());
    if audience.is_empty() || audience.chars().count() > 200 {
        return Err(AppError::InvalidInput(
            "audience must be 1-200 characters".into(),
        ));
    }
    conn.transaction(async |conn| {
        let tenant = tenants::insert(
            conn,
            &NewTenant {
                id: Uuid::now_v7(),
                slug,
                name,
                jwt_audience: &audience,
            },
        )
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                AppError::Conflict(format!("a tenant with slug `{slug}` already exists"))
            } else {
                err.into()
            }
        })?;
        let publishable_key =
            auth::create_key(conn, tenant.id, KeyKind::Publishable, "default").await?;
        let secret_key = auth::create_key(conn, tenant.id, KeyKind::Secret, "default").await?;
        Ok(CreatedTenant {
            tenant,
            publishable_key,
            secret_key,
        })
    })
    .await
}

/// The tenant with this slug, or NOT_FOUND.
pub async fn tenant_by_slug(conn: &mut DbConn, slug: &str) -> AppResult<Tenant> {
    tenants::find_by_slug(conn, slug)
        .await?
        .ok_or(AppError::NotFound("tenant"))
}

/// Adds a caller ID (`+14155550100`) or a range (`+467012300XX`) to the tenant's pool.
pub async fn add_pool_entry(
    conn: &mut DbConn,
    tenant_id: Uuid,
    pattern: &str,
    label: &str,
) -> AppResult<PoolNumber> {
    let parsed = phone::parse_pool_pattern(pattern)?;
    if label.chars().count() > 200 {
        return Err(AppError::InvalidInput(
            "label must be at most 200 characters".into(),
        ));
    }
    let canonical = parsed.pattern();
    pool_numbers::insert(
        conn,
        &NewPoolNumber {
            id: Uuid::now_v7(),
            tenant_id,
            pattern: &canonical,
            prefix: &parsed.prefix,
            random_digits: i32::from(parsed.random_digits),
            country: &parsed.country,
            label,
        },
    )
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            AppError::Conflict(format!("{canonical} is already in the pool"))
        } else {
            err.into()
        }
    })
}

/// The platforms an app signature can belong to.
pub fn parse_platform(platform: &str) -> AppResult<&'static str> {
    match platform.trim().to_ascii_uppercase().as_str() {
        "ANDROID" => Ok("ANDROID"),
        "IOS" => Ok("IOS"),
        _ => Err(AppError::InvalidInput(
            "platform must be ANDROID or IOS".into(),
        )),
    }
}

/// Adds an app signature (Android app hash or iOS bundle id) to the tenant's list.
pub async fn add_app_signature(
    conn: &mut DbConn,
    tenant_id: Uuid,
    platform: &str,
    signature: &str,
    label: &str,
) -> AppResult<AppSignature> {
    let platform = parse_platform(platform)?;
    let signature = signature.trim();
    if signature.is_empty()
        || signature.chars().count() > 200
        || signature.chars().any(char::is_control)
    {
        return Err(AppError::InvalidInput(
            "signature must be 1-200 printable characters".into(),
        ));
    }
    app_signatures::insert(
        conn,
        &NewAppSignature {
            id: Uuid::now_v7(),
            tenant_id,
            platform,
            signature,
            label,
        },
    )
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            AppError::Conflict("this app signature is already listed".into())
        } else {
            err.into()
        }
    })
}

/// Normalizes ISO 3166-1 alpha-2 codes, refusing codes libphonenumber does not know.
pub fn parse_country_codes(codes: &[String]) -> AppResult<Vec<String>> {
    codes
        .iter()
        .map(|code| {
            let upper = code.trim().to_ascii_uppercase();
            if upper.len() == 2 && upper.parse::<phonenumber::country::Id>().is_ok() {
                Ok(upper)
            } else {
                Err(AppError::InvalidInput(format!(
                    "`{code}` is not an ISO 3166 alpha-2 country code"
                )))
            }
        })
        .collect()
}

/// Adds countries to the tenant's whitelist (an empty whitelist allows every country).
pub async fn allow_countries(
    conn: &mut DbConn,
    tenant_id: Uuid,
    codes: &[String],
) -> AppResult<Vec<String>> {
    let codes = parse_country_codes(codes)?;
    if codes.is_empty() {
        return Err(AppError::InvalidInput("name at least one country".into()));
    }
    allowed_countries::allow(conn, tenant_id, &codes).await?;
    Ok(allowed_countries::list(conn, tenant_id).await?)
}
