//! The generic cell rate algorithm: each key keeps a theoretical arrival time (TAT). A request
//! at `now` passes when `TAT - period + interval <= now`, and moves the TAT on by one interval
//! (`period / limit`). It allows `limit` requests at once, then one per interval, and needs one
//! number per key. The Redis script implements the same steps.

/// Microseconds.
pub type Micros = i64;

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Passes; store this TAT.
    Allow { new_tat: Micros },
    /// Refused; retry after this long.
    Deny { retry_after: Micros },
}

/// One GCRA step for a key whose stored TAT is `tat` (None: never seen).
pub fn step(tat: Option<Micros>, now: Micros, limit: u32, period: Micros) -> Step {
    if limit == 0 {
        return Step::Deny {
            retry_after: period.max(1),
        };
    }
    let interval = (period / i64::from(limit)).max(1);
    let tat = tat.unwrap_or(now).max(now);
    let allow_at = tat + interval - period;
    if allow_at > now {
        Step::Deny {
            retry_after: allow_at - now,
        }
    } else {
        Step::Allow {
            new_tat: tat + interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Micros = 1_000_000;

    #[test]
    fn a_burst_up_to_the_limit_then_one_per_interval() {
        let mut tat = None;
        for _ in 0..5 {
            match step(tat, 0, 5, 60 * SECOND) {
                Step::Allow { new_tat } => tat = Some(new_tat),
                Step::Deny { .. } => panic!("refused within the limit"),
            }
        }
        assert_eq!(
            step(tat, 0, 5, 60 * SECOND),
            Step::Deny {
                retry_after: 12 * SECOND
            }
        );
        assert!(matches!(
            step(tat, 12 * SECOND, 5, 60 * SECOND),
            Step::Allow { .. }
        ));
    }

    #[test]
    fn an_idle_key_starts_afresh() {
        let tat = Some(10 * SECOND);
        assert_eq!(
            step(tat, 1000 * SECOND, 1, 60 * SECOND),
            Step::Allow {
                new_tat: 1060 * SECOND
            }
        );
    }
}
