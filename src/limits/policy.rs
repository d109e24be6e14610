//! Which limits apply to a request: the platform's defaults, each tenant's overrides, and the
//! keys they count under (phone, client IP or IPv6 /64, tenant, destination country).

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use super::{Layer, Rule};
use crate::admin::settings::RateLimitOverrides;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// The platform's limits; tenants may override the request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitDefaults {
    pub per_phone_per_hour: u32,
    pub per_ip_per_minute: u32,
    pub per_tenant_per_minute: u32,
    /// Past this, a destination country is throttled for the tenant (a toll-fraud spike).
    pub per_country_per_minute: u32,
    pub daily_call_cap: u32,
    pub verify_per_ip_per_minute: u32,
    /// Wrong caller IDs per phone number, across sessions, before the number is locked.
    pub failed_attempts_per_phone: u32,
    pub phone_lock: Duration,
    pub country_throttle: Duration,
}

impl Default for LimitDefaults {
    fn default() -> Self {
        Self {
            per_phone_per_hour: 5,
            per_ip_per_minute: 20,
            per_tenant_per_minute: 600,
            per_country_per_minute: 120,
            daily_call_cap: 10_000,
            verify_per_ip_per_minute: 60,
            failed_attempts_per_phone: 10,
            phone_lock: HOUR,
            country_throttle: Duration::from_secs(15 * 60),
        }
    }
}

/// What requestCall does when the limit store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutStore {
    /// Refuse: no call is placed unthrottled (the default).
    Refuse,
    /// Place the call anyway.
    Allow,
}

/// The limits of one deployment.
#[derive(Debug, Clone)]
pub struct LimitPolicy {
    pub defaults: LimitDefaults,
    /// Prefix of every key, shared with the rest of the service's Redis keys.
    pub prefix: String,
    pub without_store: WithoutStore,
}

/// The group an address is limited as: itself for IPv4, its /64 for IPv6 (one subscriber
/// usually holds a whole /64).
pub fn ip_group(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

fn limit(override_value: Option<i32>, default: u32) -> u32 {
    override_value
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(default)
}

impl LimitPolicy {
    fn key(&self, parts: &[&str]) -> String {
        format!("{}:rl:{}", self.prefix, parts.join(":"))
    }

    /// The key a throttled destination country is blocked under.
    pub fn country_block_key(&self, tenant: Uuid, country: &str) -> String {
        self.key(&["block", "country", &tenant.to_string(), country])
    }

    /// The limits of one requestCall.
    pub fn request_rules(
        &self,
        tenant: Uuid,
        overrides: &RateLimitOverrides,
        phone: &str,
        country: &str,
        ip: Option<&str>,
    ) -> Vec<Rule> {
        let d = &self.defaults;
        let t = tenant.to_string();
        let mut rules = vec![
            Rule::blocked(
                Layer::CountryThrottle,
                self.country_block_key(tenant, country),
            ),
            Rule::new(
                Layer::Phone,
                self.key(&["phone", &t, phone]),
                limit(overrides.per_phone_per_hour, d.per_phone_per_hour),
                HOUR,
            ),
        ];
        if let Some(ip) = ip {
            rules.push(Rule::new(
                Layer::Ip,
                self.key(&["ip", &t, &ip_group(ip)]),
                limit(overrides.per_ip_per_minute, d.per_ip_per_minute),
                MINUTE,
            ));
        }
        rules.extend([
            Rule::new(
                Layer::Country,
                self.key(&["country", &t, country]),
                limit(overrides.per_country_per_minute, d.per_country_per_minute),
                MINUTE,
            ),
            Rule::new(
                Layer::Tenant,
                self.key(&["tenant", &t]),
                limit(overrides.per_tenant_per_minute, d.per_tenant_per_minute),
                MINUTE,
            ),
            Rule::new(
                Layer::DailyCalls,
                self.key(&["daily", &t]),
                limit(overrides.daily_call_cap, d.daily_call_cap),
                DAY,
            ),
        ]);
        rules
    }

    /// The limits of one verify.
    pub fn verify_rules(&self, tenant: Uuid, ip: Option<&str>) -> Vec<Rule> {
        ip.map(|ip| {
            vec![Rule::new(
                Layer::VerifyIp,
                self.key(&["verify-ip", &tenant.to_string(), &ip_group(ip)]),
                self.defaults.verify_per_ip_per_minute,
                MINUTE,
            )]
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_are_grouped_by_their_64() {
        assert_eq!(ip_group("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(ip_group("2001:db8:1:2::ffff"), "2001:db8:1:2::/64");
        assert_ne!(ip_group("2001:db8:1:3::1"), ip_group("2001:db8:1:2::1"));
        assert_eq!(ip_group("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(ip_group("192.0.2.7"), "192.0.2.7");
    }
}
