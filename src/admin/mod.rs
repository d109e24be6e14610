//! What a tenant's admin (secret key) and the operator may do, shared by the GraphQL API and
//! the CLI. Every function takes the tenant it acts for and touches only that tenant's rows;
//! an id of another tenant is simply not found.

pub mod access;
pub mod gateway;
pub mod keys;
pub mod operator;
pub mod pool;
pub mod sessions;
pub mod settings;
pub mod statistics;
pub mod strength;
pub mod test_numbers;

use crate::error::{AppError, AppResult};

/// Longest free-text label on any admin object.
pub const MAX_LABEL_CHARS: usize = 200;

/// Checks a label's length and characters.
pub fn validate_label(label: &str) -> AppResult<&str> {
    let label = label.trim();
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(AppError::InvalidInput(format!(
            "label must be at most {MAX_LABEL_CHARS} printable characters"
        )));
    }
    Ok(label)
}

/// Checks a URL the service will POST to: http(s), a host, no credentials, at most 2,000
/// characters.
pub fn validate_url(url: &str) -> AppResult<String> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| AppError::InvalidInput("url is not a valid URL".into()))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(AppError::InvalidInput(
            "url must be http(s)://host/…".into(),
        ));
    }
    if url.len() > 2000 {
        return Err(AppError::InvalidInput(
            "url is longer than 2000 characters".into(),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AppError::InvalidInput(
            "url must not carry credentials".into(),
        ));
    }
    Ok(url.to_owned())
}

/// Checks that `value` lies in `range`, naming the field when it does not.
pub fn in_range(field: &str, value: i32, range: std::ops::RangeInclusive<i32>) -> AppResult<i32> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(AppError::InvalidInput(format!(
            "{field} must be between {} and {}",
            range.start(),
            range.end()
        )))
    }
}
