//! Rate limits: a set of rules checked atomically in one step (one Redis round trip, or one
//! lock in process). A request passes only when every rule allows it, and only a passing
//! request consumes quota.

pub mod gcra;
mod local;
pub mod policy;
mod redis_store;

use std::time::Duration;

pub use local::LocalLimiter;
pub use redis_store::RedisLimiter;

/// The layers a request is limited at; the name is shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Phone,
    Ip,
    Tenant,
    Country,
    DailyCalls,
    /// A destination country throttled after a spike.
    CountryThrottle,
    VerifyIp,
}

impl Layer {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Ip => "ip",
            Self::Tenant => "tenant",
            Self::Country => "country",
            Self::DailyCalls => "daily_calls",
            Self::CountryThrottle => "country_throttle",
            Self::VerifyIp => "verify_ip",
        }
    }
}

/// One limit: at most `limit` requests per `period` for `key`, bursts included. A rule with
/// `limit == 0` is a block: it refuses while its key exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub layer: Layer,
    pub key: String,
    pub limit: u32,
    pub period: Duration,
}

impl Rule {
    pub fn new(layer: Layer, key: String, limit: u32, period: Duration) -> Self {
        Self {
            layer,
            key,
            limit,
            period,
        }
    }

    /// Refuses while `key` is blocked (see [`RateLimiter::block`]).
    pub fn blocked(layer: Layer, key: String) -> Self {
        Self::new(layer, key, 0, Duration::ZERO)
    }
}

/// What a check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { layer: Layer, retry_after: Duration },
}

/// The limit store could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store unavailable: {0}")]
pub struct LimitStoreError(pub String);

/// Where limits are kept: Redis across instances, or this process.
pub enum RateLimiter {
    Local(LocalLimiter),
    Redis(RedisLimiter),
}

impl RateLimiter {
    /// Checks every rule; consumes quota only when all allow.
    pub async fn check(&self, rules: &[Rule]) -> Result<Decision, LimitStoreError> {
        if rules.is_empty() {
            return Ok(Decision::Allowed);
        }
        match self {
            Self::Local(local) => Ok(local.check(rules)),
            Self::Redis(redis) => redis.check(rules).await,
        }
    }

    /// Blocks `key` for `duration`; true when it was not blocked already.
    pub async fn block(&self, key: &str, duration: Duration) -> Result<bool, LimitStoreError> {
        match self {
            Self::Local(local) => Ok(local.block(key, duration)),
            Self::Redis(redis) => redis.block(key, duration).await,
        }
    }
}
