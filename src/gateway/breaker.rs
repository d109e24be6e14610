//! A circuit breaker: after a run of gateway outages it fails fast for a cool-down, then lets
//! one trial call through; success closes it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive outages that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a trial call.
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is in flight.
    HalfOpen,
}

/// Thread-safe breaker state.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Whether a call may go out now; while open, no.
    pub fn allow(&self) -> bool {
        self.with_state(|state| match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        })
    }

    /// The gateway answered (even with a refusal of the destination): it is up.
    pub fn record_success(&self) {
        self.with_state(|state| *state = State::Closed { failures: 0 });
    }

    /// The gateway was down, overloaded or misconfigured.
    pub fn record_outage(&self) {
        let settings = self.settings;
        self.with_state(|state| {
            *state = match *state {
                State::Closed { failures } if failures + 1 < settings.failure_threshold => {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
                _ => State::Open {
                    until: Instant::now() + settings.open_for,
                },
            }
        });
    }

    /// Whether calls are refused right now.
    pub fn is_open(&self) -> bool {
        self.with_state(|state| matches!(*state, State::Open { until } if Instant::now() < until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_recovers_after_a_trial() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failure_threshold: 2,
            open_for: Duration::from_millis(30),
        });
        assert!(breaker.allow());
        breaker.record_outage();
        assert!(breaker.allow(), "one outage is not enough");
        breaker.record_outage();
        assert!(breaker.is_open() && !breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "trial call after the cool-down");
        assert!(!breaker.allow(), "only one trial at a time");
        breaker.record_outage();
        assert!(!breaker.allow(), "a failed trial reopens");
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow());
        breaker.record_success();
        assert!(breaker.allow() && breaker.allow());
    }
}
