//! The session status state machine: every status writer asks it which moves are allowed.

use crate::gateway::CallEvent;

/// Where a verification session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    Pending,
    Calling,
    Ringing,
    CallEnded,
    CallFailed,
    Verified,
    Locked,
    Expired,
}

use SessionStatus::*;

/// Every status, in the order a session usually moves through them.
pub const ALL: [SessionStatus; 8] = [
    Pending, Calling, Ringing, CallEnded, CallFailed, Verified, Locked, Expired,
];

/// Allowed moves as data: `(to, from any of)`. Call progress only moves forward; the terminal
/// statuses (verified, locked, expired) are never left.
const TRANSITIONS: &[(SessionStatus, &[SessionStatus])] = &[
    (Calling, &[Pending]),
    (Ringing, &[Pending, Calling]),
    (CallEnded, &[Pending, Calling, Ringing]),
    (CallFailed, &[Pending, Calling, Ringing]),
    (
        Verified,
        &[Pending, Calling, Ringing, CallEnded, CallFailed],
    ),
    (Locked, &[Pending, Calling, Ringing, CallEnded, CallFailed]),
    (Expired, &[Pending, Calling, Ringing, CallEnded, CallFailed]),
];

impl SessionStatus {
    /// The stored and client-facing name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Pending => "PENDING",
            Calling => "CALLING",
            Ringing => "RINGING",
            CallEnded => "CALL_ENDED",
            CallFailed => "CALL_FAILED",
            Verified => "VERIFIED",
            Locked => "LOCKED",
            Expired => "EXPIRED",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        ALL.into_iter().find(|status| status.as_str() == value)
    }

    /// Verified, locked and expired sessions never change again.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Verified | Locked | Expired)
    }

    /// The statuses from which a session may move to `self`.
    pub fn sources(self) -> &'static [SessionStatus] {
        TRANSITIONS
            .iter()
            .find(|(to, _)| *to == self)
            .map(|(_, from)| *from)
            .unwrap_or(&[])
    }

    /// The stored names of [`Self::sources`], for `WHERE status = ANY(…)`.
    pub fn source_names(self) -> Vec<&'static str> {
        self.sources()
            .iter()
            .map(|status| status.as_str())
            .collect()
    }

    /// Whether a session may move from `self` to `to`.
    pub fn can_move_to(self, to: SessionStatus) -> bool {
        to.sources().contains(&self)
    }

    /// The session status a gateway call event leads to.
    pub const fn after_call_event(event: CallEvent) -> Self {
        match event {
            CallEvent::Initiated => Calling,
            // An answered flash call is hung up at once; the phone still rang.
            CallEvent::Ringing | CallEvent::Answered => Ringing,
            CallEvent::Completed | CallEvent::Busy | CallEvent::NoAnswer => CallEnded,
            CallEvent::Failed | CallEvent::Canceled => CallFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in ALL {
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SessionStatus::parse("verified"), None);
    }

    #[test]
    fn terminal_statuses_are_never_left() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                assert!(!from.can_move_to(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn call_progress_never_moves_backwards() {
        assert!(Calling.can_move_to(Ringing));
        assert!(Ringing.can_move_to(CallEnded));
        assert!(!Ringing.can_move_to(Calling));
        assert!(!CallEnded.can_move_to(Ringing));
        assert!(!CallEnded.can_move_to(CallFailed));
        assert!(!CallFailed.can_move_to(CallEnded));
        assert!(CallEnded.can_move_to(Verified));
        assert!(CallFailed.can_move_to(Locked));
    }

    #[test]
    fn every_non_terminal_status_can_end() {
        for from in ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(
                from.can_move_to(Verified) && from.can_move_to(Locked) && from.can_move_to(Expired)
            );
        }
    }
}
