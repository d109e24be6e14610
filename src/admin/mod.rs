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
