//! Configuration from the environment, with local defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::gateway::breaker::BreakerSettings;
use crate::http::client_ip::IpNet;
use crate::limits::policy::{LimitDefaults, LimitPolicy, WithoutStore};
use crate::webhooks::WebhookSettings;

/// Which telephony gateway places calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayKind {
    /// Records calls in memory and plays the phone network; for local runs, tests and the demo.
    Simulator,
    /// Twilio's Programmable Voice REST API.
    Twilio,
}

impl GatewayKind {
    /// Parses `MISSEDCALL_GATEWAY`.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "simulator" => Ok(Self::Simulator),
            "twilio" => Ok(Self::Twilio),
            other => Err(ConfigError::Invalid {
                name: "MISSEDCALL_GATEWAY",
                reason: format!("`{other}` is not one of simulator, twilio"),
            }),
        }
    }

    /// The name stored with each session.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Simulator => "simulator",
            Self::Twilio => "twilio",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// `MISSEDCALL_MASTER_KEY`, 64 hex digits.
    Hex(String),
    /// A key file created on first start (local runs only).
    File(PathBuf),
}

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// Connections in the Postgres pool of one instance.
    pub database_pool_size: u32,
    /// Where the service's request connections log in: as `missedcall_app`, a role that
    /// cannot bypass row-level security. `DATABASE_URL` (the owner) only creates and migrates.
    pub app_database_url: String,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    pub redis_prefix: String,
    pub listen: SocketAddr,
    /// Base URL of this service as clients and gateways reach it; the JWT `iss`.
    pub public_url: String,
    pub gateway: GatewayKind,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub twilio_api_base: String,
    /// A second Twilio API base (another edge) to fail over to when the first is down.
    pub twilio_failover_api_base: Option<String>,
    /// Timeouts, retries and circuit breaker of the telephony gateway.
    pub gateway_policy: GatewayPolicy,
    pub operator_key: Option<String>,
    pub master_key: MasterKeySource,
    pub log_format: LogFormat,
    /// How long the simulator waits before reporting RINGING and then CALL_ENDED.
    pub simulator_ring_delay: Duration,
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// WebSocket limits for subscriptions.
    pub ws: WsLimits,
    /// Rate limits, brute-force and toll-fraud settings.
    pub limits: LimitPolicy,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Destinations refused as high-risk (E.164 prefixes).
    pub blocked_prefixes: Vec<String>,
    /// Production: no introspection, no GraphiQL.
    pub production: bool,
    /// How often `serve` purges and prunes past the retention periods.
    pub cleanup_interval: Duration,
    /// When a tenant's approval hook keeps failing, it is skipped for a while.
    pub approval_breaker: BreakerSettings,
    /// How tenant webhooks are sent and retried.
    pub webhooks: WebhookSettings,
}

/// How the service treats a slow or failing gateway.
#[derive(Debug, Clone, Copy)]
pub struct GatewayPolicy {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Tries per call, counting the first; only where no second call can result.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Consecutive outages that open the circuit breaker.
    pub breaker_threshold: u32,
    pub breaker_open_for: Duration,
}

/// Limits of GraphQL subscription connections.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// Subscriptions one connection may hold open at once.
    pub max_subscriptions: usize,
    /// A connection that has not completed `connection_init` by then is closed (4408).
    pub init_timeout: Duration,
    /// How often the server pings, so proxies and clients see the connection alive.
    pub keepalive: Duration,
    /// A connection without any subscription for this long is closed.
    pub idle_timeout: Duration,
    /// A client that does not take a message within this time is disconnected.
    pub send_timeout: Duration,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/missedcall";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_TWILIO_API_BASE: &str = "https://api.twilio.com";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let listen_text = get("MISSEDCALL_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            name: "MISSEDCALL_LISTEN",
            reason: format!("`{listen_text}` is not host:port (e.g. 127.0.0.1:8080)"),
        })?;
        let public_url = get("MISSEDCALL_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "MISSEDCALL_PUBLIC_URL",
                reason: "must start with http:// or https://".into(),
            });
        }
        let gateway = match get("MISSEDCALL_GATEWAY") {
            Some(value) => GatewayKind::parse(&value)?,
            None => GatewayKind::Simulator,
        };
        let master_key = match get("MISSEDCALL_MASTER_KEY") {
            Some(hex) => MasterKeySource::Hex(hex),
            None => MasterKeySource::File(
                get("MISSEDCALL_MASTER_KEY_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(".missedcall/master.key")),
            ),
        };
        let log_format = match get("MISSEDCALL_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "MISSEDCALL_LOG_FORMAT",
                    reason: format!("`{other}` is not one of text, json"),
                });
            }
        };
        Ok(Self {
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            database_pool_size: parse_number(&get, "MISSEDCALL_DATABASE_POOL_SIZE", 16, 1..=1000)?,
            app_database_url: get("MISSEDCALL_APP_DATABASE_URL").unwrap_or_else(|| {
                crate::db::with_user(
                    &get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
                    crate::db::scope::APP_ROLE,
                )
            }),
            redis_url: get("REDIS_URL"),
            redis_prefix: get("MISSEDCALL_REDIS_PREFIX").unwrap_or_else(|| "missedcall".to_owned()),
            listen,
            public_url,
            gateway,
            twilio_account_sid: get("MISSEDCALL_TWILIO_ACCOUNT_SID"),
            twilio_auth_token: get("MISSEDCALL_TWILIO_AUTH_TOKEN"),
            twilio_api_base: get("MISSEDCALL_TWILIO_API_BASE")
                .unwrap_or_else(|| DEFAULT_TWILIO_API_BASE.to_owned()),
            twilio_failover_api_base: get("MISSEDCALL_TWILIO_FAILOVER_API_BASE"),
            gateway_policy: GatewayPolicy {
                connect_timeout: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_GATEWAY_CONNECT_TIMEOUT_MS",
                    2_000,
                    10..=60_000,
                )?),
                request_timeout: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_GATEWAY_TIMEOUT_MS",
                    5_000,
                    10..=120_000,
                )?),
                max_attempts: parse_number(&get, "MISSEDCALL_GATEWAY_MAX_ATTEMPTS", 3, 1..=10)?,
                backoff_base: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_GATEWAY_BACKOFF_MS",
                    100,
                    1..=10_000,
                )?),
                backoff_cap: Duration::from_secs(2),
                breaker_threshold: parse_number(
                    &get,
                    "MISSEDCALL_GATEWAY_BREAKER_THRESHOLD",
                    5,
                    1..=1000,
                )?,
                breaker_open_for: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_GATEWAY_BREAKER_OPEN_MS",
                    30_000,
                    10..=3_600_000,
                )?),
            },
            operator_key: get("MISSEDCALL_OPERATOR_KEY"),
            master_key,
            log_format,
            simulator_ring_delay: Duration::from_millis(parse_number(
                &get,
                "MISSEDCALL_SIMULATOR_RING_DELAY_MS",
                1500,
                0..=3_600_000,
            )?),
            ws: WsLimits {
                max_subscriptions: parse_number(
                    &get,
                    "MISSEDCALL_WS_MAX_SUBSCRIPTIONS",
                    16,
                    1..=1000,
                )?,
                init_timeout: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_WS_INIT_TIMEOUT_MS",
                    10_000,
                    100..=600_000,
                )?),
                keepalive: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_WS_KEEPALIVE_MS",
                    15_000,
                    100..=600_000,
                )?),
                idle_timeout: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_WS_IDLE_TIMEOUT_MS",
                    60_000,
                    100..=3_600_000,
                )?),
                send_timeout: Duration::from_secs(10),
            },
            max_body_bytes: parse_number(
                &get,
                "MISSEDCALL_MAX_BODY_BYTES",
                64 * 1024,
                1024..=10 << 20,
            )?,
            limits: parse_limits(&get)?,
            trusted_proxies: parse_trusted_proxies(&get)?,
            blocked_prefixes: parse_blocked_prefixes(&get)?,
            production: parse_flag(&get, "MISSEDCALL_PRODUCTION")?,
            cleanup_interval: Duration::from_secs(parse_number(
                &get,
                "MISSEDCALL_CLEANUP_INTERVAL_SECONDS",
                3600,
                1..=86_400,
            )?),
            approval_breaker: BreakerSettings {
                failure_threshold: parse_number(
                    &get,
                    "MISSEDCALL_APPROVAL_BREAKER_THRESHOLD",
                    5,
                    1..=1000,
                )?,
                open_for: Duration::from_millis(parse_number(
                    &get,
                    "MISSEDCALL_APPROVAL_BREAKER_OPEN_MS",
                    30_000,
                    10..=3_600_000,
                )?),
            },
            webhooks: parse_webhooks(&get)?,
        })
    }
}

/// International premium, satellite and shared-cost ranges that toll fraud favours; a flash
/// call never needs them.
pub const DEFAULT_BLOCKED_PREFIXES: &[&str] = &[
    "+870", "+871", "+872", "+873", "+874", "+881", "+882", "+883", "+888", "+979", "+991",
];

fn parse_flag(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None | Some("" | "0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name,
            reason: format!("`{other}` is not true or false"),
        }),
    }
}

fn parse_limits(get: &impl Fn(&str) -> Option<String>) -> Result<LimitPolicy, ConfigError> {
    let d = LimitDefaults::default();
    let n = |name, default| parse_number(get, name, default, 1..=100_000_000u32);
    let secs = |name, default: Duration| {
        parse_number(get, name, default.as_secs(), 1..=604_800).map(Duration::from_secs)
    };
    let without_store = match get("MISSEDCALL_LIMITS_WITHOUT_REDIS").as_deref() {
        None | Some("refuse") => WithoutStore::Refuse,
        Some("allow") => WithoutStore::Allow,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "MISSEDCALL_LIMITS_WITHOUT_REDIS",
                reason: format!("`{other}` is not one of refuse, allow"),
            });
        }
    };
    Ok(LimitPolicy {
        defaults: LimitDefaults {
            per_phone_per_hour: n("MISSEDCALL_LIMIT_PHONE_PER_HOUR", d.per_phone_per_hour)?,
            per_ip_per_minute: n("MISSEDCALL_LIMIT_IP_PER_MINUTE", d.per_ip_per_minute)?,
            per_tenant_per_minute: n(
                "MISSEDCALL_LIMIT_TENANT_PER_MINUTE",
                d.per_tenant_per_minute,
            )?,
            per_country_per_minute: n(
                "MISSEDCALL_LIMIT_COUNTRY_PER_MINUTE",
                d.per_country_per_minute,
            )?,
            daily_call_cap: n("MISSEDCALL_DAILY_CALL_CAP", d.daily_call_cap)?,
            verify_per_ip_per_minute: n(
                "MISSEDCALL_LIMIT_VERIFY_IP_PER_MINUTE",
                d.verify_per_ip_per_minute,
            )?,
            failed_attempts_per_phone: n(
                "MISSEDCALL_PHONE_MAX_FAILED_ATTEMPTS",
                d.failed_attempts_per_phone,
            )?,
            phone_lock: secs("MISSEDCALL_PHONE_LOCK_SECONDS", d.phone_lock)?,
            country_throttle: secs("MISSEDCALL_COUNTRY_THROTTLE_SECONDS", d.country_throttle)?,
        },
        prefix: get("MISSEDCALL_REDIS_PREFIX").unwrap_or_else(|| "missedcall".to_owned()),
        without_store,
    })
}

fn parse_trusted_proxies(get: &impl Fn(&str) -> Option<String>) -> Result<Vec<IpNet>, ConfigError> {
    get("MISSEDCALL_TRUSTED_PROXIES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            IpNet::parse(entry).ok_or_else(|| ConfigError::Invalid {
                name: "MISSEDCALL_TRUSTED_PROXIES",
                reason: format!("`{entry}` is not an address or CIDR network"),
            })
        })
        .collect()
}

fn parse_blocked_prefixes(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let Some(list) = get("MISSEDCALL_BLOCKED_PREFIXES") else {
        return Ok(DEFAULT_BLOCKED_PREFIXES
            .iter()
            .map(|p| (*p).to_owned())
            .collect());
    };
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let digits = entry.strip_prefix('+').unwrap_or(entry);
            if !digits.is_empty()
                && digits.len() <= 15
                && digits.chars().all(|c| c.is_ascii_digit())
            {
                Ok(format!("+{digits}"))
            } else {
                Err(ConfigError::Invalid {
                    name: "MISSEDCALL_BLOCKED_PREFIXES",
                    reason: format!("`{entry}` is not a +digits prefix"),
                })
            }
        })
        .collect()
}

fn parse_webhooks(get: &impl Fn(&str) -> Option<String>) -> Result<WebhookSettings, ConfigError> {
    let defaults = WebhookSettings::default();
    let name = "MISSEDCALL_WEBHOOK_RETRY_DELAYS_MS";
    let retry_delays = match get(name) {
        None => defaults.retry_delays,
        Some(text) => text
            .split(',')
            .map(|part| match part.trim().parse::<u64>() {
                Ok(ms @ 1..=86_400_000) => Ok(Duration::from_millis(ms)),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: format!("`{part}` is not a delay from 1 to 86400000 ms"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let ms = |name, default: Duration, range| {
        parse_number(
            get,
            name,
            u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            range,
        )
        .map(Duration::from_millis)
    };
    Ok(WebhookSettings {
        retry_delays,
        give_up_after: ms(
            "MISSEDCALL_WEBHOOK_GIVE_UP_AFTER_MS",
            defaults.give_up_after,
            1..=30 * 86_400_000,
        )?,
        timeout: ms(
            "MISSEDCALL_WEBHOOK_TIMEOUT_MS",
            defaults.timeout,
            100..=60_000,
        )?,
        poll_interval: ms(
            "MISSEDCALL_WEBHOOK_POLL_INTERVAL_MS",
            defaults.poll_interval,
            10..=60_000,
        )?,
        batch: defaults.batch,
        send: !parse_flag(get, "MISSEDCALL_WEBHOOK_SENDER_OFF")?,
    })
}

fn parse_number<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = get(name) else {
        return Ok(default);
    };
    match text.parse::<T>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!(
                "`{text}` is not a number from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_local() -> Result<(), ConfigError> {
        let cfg = config(&[])?;
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.public_url, "http://127.0.0.1:8080");
        assert_eq!(cfg.gateway, GatewayKind::Simulator);
        assert!(cfg.redis_url.is_none());
        assert!(matches!(cfg.master_key, MasterKeySource::File(_)));
        Ok(())
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("MISSEDCALL_LISTEN", "nowhere"),
            ("MISSEDCALL_GATEWAY", "carrier-pigeon"),
            ("MISSEDCALL_PUBLIC_URL", "ftp://x"),
            ("MISSEDCALL_DATABASE_POOL_SIZE", "0"),
            ("MISSEDCALL_LOG_FORMAT", "xml"),
        ] {
            let err = config(&[(name, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with(name), "{name}={value} gave `{err}`");
        }
    }
}
