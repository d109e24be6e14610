//! Limits kept in Redis: every rule of a check in one Lua script, so a check is one round trip
//! and atomic across instances.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::Pool;

use super::{Decision, Layer, LimitStoreError, Rule};

/// KEYS: the rules' keys. ARGV: limit and period (µs) per rule; limit 0 means "blocked while
/// the key exists". Returns {1} when allowed, else {0, rule index (1-based), retry after µs}.
const CHECK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  if limit == 0 then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > 0 then
      return {0, i, ttl * 1000}
    end
  else
    local interval = math.max(math.floor(period / limit), 1)
    local tat = tonumber(redis.call('GET', KEYS[i])) or now
    if tat < now then tat = now end
    local allow_at = tat + interval - period
    if allow_at > now then
      return {0, i, allow_at - now}
    end
    tats[i] = tat + interval
  end
end
for i = 1, #KEYS do
  if tats[i] then
    local ttl = math.max(math.ceil((tats[i] - now) / 1000), 1)
    redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', ttl)
  end
end
return {1}
";

/// Limits in Redis.
pub struct RedisLimiter {
    pool: Pool<RedisConnectionManager>,
    script: redis::Script,
}

impl RedisLimiter {
    /// A limiter over a small pool that gives up quickly while Redis is away.
    pub fn new(url: &str) -> Result<Self, LimitStoreError> {
        let manager =
            RedisConnectionManager::new(url).map_err(|e| LimitStoreError(e.to_string()))?;
        let pool = Pool::builder()
            .max_size(16)
            .connection_timeout(Duration::from_millis(500))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            script: redis::Script::new(CHECK),
        })
    }

    pub async fn check(&self, rules: &[Rule]) -> Result<Decision, LimitStoreError> {
        let mut invocation = self.script.prepare_invoke();
        for rule in rules {
            invocation
                .key(&rule.key)
                .arg(rule.limit)
                .arg(u64::try_from(rule.period.as_micros()).unwrap_or(u64::MAX));
        }
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| LimitStoreError(e.to_string()))?;
        let answer: Vec<i64> = invocation
            .invoke_async(&mut *conn)
            .await
            .map_err(|e| LimitStoreError(e.to_string()))?;
        match answer.as_slice() {
            [1] => Ok(Decision::Allowed),
            [0, index, retry_after] => {
                let layer = usize::try_from(*index)
                    .ok()
                    .and_then(|i| rules.get(i.wrapping_sub(1)))
                    .map_or(Layer::Tenant, |rule| rule.layer);
                Ok(Decision::Limited {
                    layer,
                    retry_after: Duration::from_micros(u64::try_from(*retry_after).unwrap_or(0)),
                })
            }
            other => Err(LimitStoreError(format!("unexpected answer {other:?}"))),
        }
    }

    pub async fn block(&self, key: &str, duration: Duration) -> Result<bool, LimitStoreError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| LimitStoreError(e.to_string()))?;
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(
                u64::try_from(duration.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .query_async(&mut *conn)
            .await
            .map_err(|e| LimitStoreError(e.to_string()))?;
        Ok(set.is_some())
    }
}
