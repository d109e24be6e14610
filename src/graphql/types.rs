//! GraphQL types shared by the domains.

use async_graphql::{Enum, ErrorExtensions, ID};
use uuid::Uuid;

use crate::error::AppError;
use crate::verification::SessionStatus as DomainStatus;

/// Where a verification session stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "SessionStatus")]
pub enum SessionStatus {
    /// Created; the call is being placed.
    Pending,
    /// The gateway accepted the call.
    Calling,
    /// The phone is ringing.
    Ringing,
    /// The call ended (rejected, unanswered or hung up): the caller ID was shown.
    CallEnded,
    /// The call could not be completed.
    CallFailed,
    /// Verified; a token was issued.
    Verified,
    /// Too many wrong caller IDs.
    Locked,
    /// The validity period passed.
    Expired,
}

impl From<DomainStatus> for SessionStatus {
    fn from(status: DomainStatus) -> Self {
        match status {
            DomainStatus::Pending => Self::Pending,
            DomainStatus::Calling => Self::Calling,
            DomainStatus::Ringing => Self::Ringing,
            DomainStatus::CallEnded => Self::CallEnded,
            DomainStatus::CallFailed => Self::CallFailed,
            DomainStatus::Verified => Self::Verified,
            DomainStatus::Locked => Self::Locked,
            DomainStatus::Expired => Self::Expired,
        }
    }
}

/// Parses a client-supplied id, naming the field when it is not a UUID.
pub fn parse_id(id: &ID, field: &str) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::InvalidInput(format!("{field} is not a valid id")).extend())
}
