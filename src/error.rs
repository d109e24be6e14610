//! Error enums of the service layer and the one table of client-facing codes.
//!
//! Everything a client may see goes through [`ErrorCode`]; internal detail (database
//! messages, gateway bodies, key material) is logged and never sent.

use std::fmt;

/// The stable `extensions.code` values clients rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    ApiKeyRevoked,
    TenantSuspended,
    Forbidden,
    BadRequest,
    GraphqlValidationFailed,
    InvalidInput,
    InvalidPhoneNumber,
    NumberTypeNotAllowed,
    CountryNotAllowed,
    InvalidAppSignature,
    NoCallerIdAvailable,
    PoolTooWeak,
    CallFailed,
    DestinationUnreachable,
    DestinationNotPermitted,
    GatewayUnavailable,
    SessionNotFound,
    InvalidSessionToken,
    SessionExpired,
    SessionLocked,
    AlreadyUsed,
    RateLimited,
    RateLimitUnavailable,
    PhoneLocked,
    DestinationBlocked,
    RequestDenied,
    MultipleVerifyNotAllowed,
    TooManyAliases,
    TooManySubscriptions,
    SubscriberTooSlow,
    NotFound,
    Conflict,
    ServiceUnavailable,
    InternalError,
}

impl ErrorCode {
    /// Every code, for catalogues and checks.
    pub const ALL: [ErrorCode; 35] = [
        Self::Unauthenticated,
        Self::ApiKeyRevoked,
        Self::TenantSuspended,
        Self::Forbidden,
        Self::BadRequest,
        Self::GraphqlValidationFailed,
        Self::InvalidInput,
        Self::InvalidPhoneNumber,
        Self::NumberTypeNotAllowed,
        Self::CountryNotAllowed,
        Self::InvalidAppSignature,
        Self::NoCallerIdAvailable,
        Self::PoolTooWeak,
        Self::CallFailed,
        Self::DestinationUnreachable,
        Self::DestinationNotPermitted,
        Self::GatewayUnavailable,
        Self::SessionNotFound,
        Self::InvalidSessionToken,
        Self::SessionExpired,
        Self::SessionLocked,
        Self::AlreadyUsed,
        Self::RateLimited,
        Self::RateLimitUnavailable,
        Self::PhoneLocked,
        Self::DestinationBlocked,
        Self::RequestDenied,
        Self::MultipleVerifyNotAllowed,
        Self::TooManyAliases,
        Self::TooManySubscriptions,
        Self::SubscriberTooSlow,
        Self::NotFound,
        Self::Conflict,
        Self::ServiceUnavailable,
        Self::InternalError,
    ];

    /// The SCREAMING_SNAKE_CASE code put in `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::ApiKeyRevoked => "API_KEY_REVOKED",
            Self::TenantSuspended => "TENANT_SUSPENDED",
            Self::Forbidden => "FORBIDDEN",
            Self::BadRequest => "BAD_REQUEST",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::InvalidInput => "INVALID_INPUT",
            Self::InvalidPhoneNumber => "INVALID_PHONE_NUMBER",
            Self::NumberTypeNotAllowed => "NUMBER_TYPE_NOT_ALLOWED",
            Self::CountryNotAllowed => "COUNTRY_NOT_ALLOWED",
            Self::InvalidAppSignature => "INVALID_APP_SIGNATURE",
            Self::NoCallerIdAvailable => "NO_CALLER_ID_AVAILABLE",
            Self::PoolTooWeak => "POOL_TOO_WEAK",
            Self::CallFailed => "CALL_FAILED",
            Self::DestinationUnreachable => "DESTINATION_UNREACHABLE",
            Self::DestinationNotPermitted => "DESTINATION_NOT_PERMITTED",
            Self::GatewayUnavailable => "GATEWAY_UNAVAILABLE",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::InvalidSessionToken => "INVALID_SESSION_TOKEN",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::SessionLocked => "SESSION_LOCKED",
            Self::AlreadyUsed => "ALREADY_USED",
            Self::RateLimited => "RATE_LIMITED",
            Self::RateLimitUnavailable => "RATE_LIMIT_UNAVAILABLE",
            Self::PhoneLocked => "PHONE_LOCKED",
            Self::DestinationBlocked => "DESTINATION_BLOCKED",
            Self::RequestDenied => "REQUEST_DENIED",
            Self::MultipleVerifyNotAllowed => "MULTIPLE_VERIFY_NOT_ALLOWED",
            Self::TooManyAliases => "TOO_MANY_ALIASES",
            Self::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
            Self::SubscriberTooSlow => "SUBSCRIBER_TOO_SLOW",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of the service layer (auth, verification flow, administration).
///
/// The `Display` text of client-caused variants is the message the client sees;
/// the internal variants carry detail for the log only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or invalid API key; send `Authorization: Bearer pk_…` or `sk_…`")]
    Unauthenticated,
    #[error("this API key has been revoked")]
    ApiKeyRevoked,
    #[error("this tenant is suspended")]
    TenantSuspended,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    InvalidPhoneNumber(String),
    #[error("phone numbers of type {0} cannot be verified")]
    NumberTypeNotAllowed(String),
    #[error("phone numbers from {0} are not allowed for this app")]
    CountryNotAllowed(String),
    #[error("{0}")]
    InvalidAppSignature(&'static str),
    #[error("no caller ID is available in this tenant's pool")]
    NoCallerIdAvailable,
    #[error(
        "the caller-ID pool is too small for this destination: a blind guess would win with \
         probability {probability:.4}, above the tenant's cap of {cap}"
    )]
    PoolTooWeak { probability: f64, cap: f64 },
    #[error("the verification call could not be placed")]
    CallFailed,
    #[error("this phone number cannot be called")]
    DestinationUnreachable,
    #[error("calls to this destination are not enabled for this service")]
    DestinationNotPermitted,
    #[error("the telephony gateway is unavailable; retry shortly")]
    GatewayUnavailable,
    #[error("verification session not found")]
    SessionNotFound,
    #[error("the session token does not match this session")]
    InvalidSessionToken,
    #[error("this verification session has expired")]
    SessionExpired,
    #[error("this verification session is locked after too many attempts")]
    SessionLocked,
    #[error("this verification session has already been used")]
    AlreadyUsed,
    #[error("at most {0} subscriptions may be open on one connection")]
    TooManySubscriptions(usize),
    #[error("this subscriber fell behind and was dropped; subscribe again")]
    SubscriberTooSlow,
    #[error("too many requests ({layer} limit); retry in {retry_after_seconds} s")]
    RateLimited {
        layer: &'static str,
        retry_after_seconds: u64,
    },
    #[error("calls cannot be requested right now; retry shortly")]
    RateLimitUnavailable(String),
    #[error("too many wrong caller IDs for this phone number; retry in {retry_after_seconds} s")]
    PhoneLocked { retry_after_seconds: u64 },
    #[error("calls to this destination are blocked as high-risk")]
    DestinationBlocked,
    #[error("the request was denied: {0}")]
    RequestDenied(String),
    #[error("a request may verify one session: send one `verify` field")]
    MultipleVerifyNotAllowed,
    #[error("at most {0} aliases per request")]
    TooManyAliases(usize),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The client-facing code of this error.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::ApiKeyRevoked => ErrorCode::ApiKeyRevoked,
            Self::TenantSuspended => ErrorCode::TenantSuspended,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::InvalidPhoneNumber(_) => ErrorCode::InvalidPhoneNumber,
            Self::NumberTypeNotAllowed(_) => ErrorCode::NumberTypeNotAllowed,
            Self::CountryNotAllowed(_) => ErrorCode::CountryNotAllowed,
            Self::InvalidAppSignature(_) => ErrorCode::InvalidAppSignature,
            Self::NoCallerIdAvailable => ErrorCode::NoCallerIdAvailable,
            Self::PoolTooWeak { .. } => ErrorCode::PoolTooWeak,
            Self::CallFailed => ErrorCode::CallFailed,
            Self::DestinationUnreachable => ErrorCode::DestinationUnreachable,
            Self::DestinationNotPermitted => ErrorCode::DestinationNotPermitted,
            Self::GatewayUnavailable => ErrorCode::GatewayUnavailable,
            Self::SessionNotFound => ErrorCode::SessionNotFound,
            Self::InvalidSessionToken => ErrorCode::InvalidSessionToken,
            Self::SessionExpired => ErrorCode::SessionExpired,
            Self::SessionLocked => ErrorCode::SessionLocked,
            Self::AlreadyUsed => ErrorCode::AlreadyUsed,
            Self::TooManySubscriptions(_) => ErrorCode::TooManySubscriptions,
            Self::SubscriberTooSlow => ErrorCode::SubscriberTooSlow,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::RateLimitUnavailable(_) => ErrorCode::RateLimitUnavailable,
            Self::PhoneLocked { .. } => ErrorCode::PhoneLocked,
            Self::DestinationBlocked => ErrorCode::DestinationBlocked,
            Self::RequestDenied(_) => ErrorCode::RequestDenied,
            Self::MultipleVerifyNotAllowed => ErrorCode::MultipleVerifyNotAllowed,
            Self::TooManyAliases(_) => ErrorCode::TooManyAliases,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// The message a client may see: internal detail is replaced by a generic text.
    pub fn client_message(&self) -> String {
        match self {
            Self::Unavailable(_) => "the service is temporarily unavailable; retry shortly".into(),
            Self::RateLimitUnavailable(_) => {
                "calls cannot be requested right now; retry shortly".into()
            }
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// Seconds a client should wait before trying again, when the error says.
    pub const fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_seconds,
                ..
            }
            | Self::PhoneLocked {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// Shorthand for an internal error from any displayable cause.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => Self::NotFound("record"),
            other if crate::db::is_connection_lost(&other) => {
                Self::Unavailable(format!("database connection lost: {other}"))
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<crate::db::PoolError> for AppError {
    fn from(err: crate::db::PoolError) -> Self {
        Self::Unavailable(format!("database pool: {err}"))
    }
}

impl async_graphql::ErrorExtensions for AppError {
    /// The GraphQL error a client sees: the client message and `extensions.code`.
    fn extend(&self) -> async_graphql::Error {
        if matches!(self, Self::Internal(_) | Self::Unavailable(_)) {
            tracing::error!(error = %self, "request failed");
        }
        if let Self::RateLimitUnavailable(detail) = self {
            tracing::warn!(detail = %detail, "refused a call: the rate-limit store is unavailable");
        }
        let code = self.code().as_str();
        let retry_after = self.retry_after_seconds();
        let reason = match self {
            Self::RequestDenied(reason) => Some(reason.clone()),
            _ => None,
        };
        async_graphql::Error::new(self.client_message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(seconds) = retry_after {
                ext.set("retryAfterSeconds", seconds);
            }
            if let Some(reason) = &reason {
                ext.set("reason", reason.as_str());
            }
        })
    }
}

/// Result alias of the service layer.
pub type AppResult<T> = Result<T, AppError>;
