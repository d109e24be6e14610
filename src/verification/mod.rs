//! The verification flow: phone rules, caller-ID choice, attempts, state machine.

pub mod phone;
pub mod service;
pub mod state;

pub use service::{ClientInfo, SessionState, StartedSession, VerificationService, VerifyOutcome};
pub use state::SessionStatus;
