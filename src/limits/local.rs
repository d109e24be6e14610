//! Limits kept in this process, with the same semantics as the Redis store.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::gcra::{self, Micros, Step};
use super::{Decision, Rule};

/// Keys kept before idle ones are swept.
const SWEEP_AT: usize = 100_000;

#[derive(Default)]
struct State {
    tats: HashMap<String, Micros>,
    /// Blocked keys and when the block ends.
    blocks: HashMap<String, Micros>,
}

/// In-process limits (no `REDIS_URL`).
#[derive(Default)]
pub struct LocalLimiter {
    state: Mutex<State>,
}

fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl LocalLimiter {
    pub fn check(&self, rules: &[Rule]) -> Decision {
        let now = now_micros();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.tats.len() > SWEEP_AT {
            state.tats.retain(|_, tat| *tat > now);
            state.blocks.retain(|_, until| *until > now);
        }
        let mut updates = Vec::with_capacity(rules.len());
        for rule in rules {
            if rule.limit == 0 {
                if let Some(until) = state.blocks.get(&rule.key).filter(|until| **until > now) {
                    return Decision::Limited {
                        layer: rule.layer,
                        retry_after: Duration::from_micros(u64::try_from(until - now).unwrap_or(0)),
                    };
                }
                continue;
            }
            let tat = state.tats.get(&rule.key).copied();
            match gcra::step(tat, now, rule.limit, micros(rule.period)) {
                Step::Allow { new_tat } => updates.push((rule.key.clone(), new_tat)),
                Step::Deny { retry_after } => {
                    return Decision::Limited {
                        layer: rule.layer,
                        retry_after: Duration::from_micros(u64::try_from(retry_after).unwrap_or(0)),
                    };
                }
            }
        }
        state.tats.extend(updates);
        Decision::Allowed
    }

    pub fn block(&self, key: &str, duration: Duration) -> bool {
        let now = now_micros();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.blocks.get(key).is_some_and(|until| *until > now) {
            return false;
        }
        state.blocks.insert(key.to_owned(), now + micros(duration));
        true
    }
}
