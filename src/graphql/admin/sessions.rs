//! Sessions, one session with its audit trail, and the audit log.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::types::{
    AuditEvent, AuditEventConnection, AuditEventEdge, Session, SessionConnection, SessionEdge,
    page_edges,
};
use super::{answer, connection, secret};
use crate::admin::sessions::{self, Cursor, SessionFilter};
use crate::graphql::types::{SessionStatus, parse_id};
use crate::verification::SessionStatus as DomainStatus;

/// Which sessions to list; every field narrows.
#[derive(InputObject, Default)]
pub struct SessionFilterInput {
    pub statuses: Option<Vec<SessionStatus>>,
    /// In international format; matched on its E.164 form.
    pub phone_number: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

fn domain(status: SessionStatus) -> DomainStatus {
    match status {
        SessionStatus::Pending => DomainStatus::Pending,
        SessionStatus::Calling => DomainStatus::Calling,
        SessionStatus::Ringing => DomainStatus::Ringing,
        SessionStatus::CallEnded => DomainStatus::CallEnded,
        SessionStatus::CallFailed => DomainStatus::CallFailed,
        SessionStatus::Verified => DomainStatus::Verified,
        SessionStatus::Locked => DomainStatus::Locked,
        SessionStatus::Expired => DomainStatus::Expired,
    }
}

#[derive(Default)]
pub struct SessionsQuery;

#[Object]
impl SessionsQuery {
    /// The tenant's sessions, newest first (Relay-style cursors; at most 100 a page).
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        filter: Option<SessionFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SessionConnection> {
        let principal = secret(ctx).await?;
        let filter = filter.unwrap_or_default();
        let filter = SessionFilter {
            statuses: filter
                .statuses
                .unwrap_or_default()
                .into_iter()
                .map(domain)
                .collect(),
            phone_number: filter.phone_number,
            created_from: filter.created_from,
            created_before: filter.created_before,
        };
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let page = answer(
            sessions::list(
                &mut conn,
                principal.tenant.id,
                &filter,
                first,
                after.as_deref(),
            )
            .await,
        )?;
        let (edges, page_info) = page_edges(
            &page,
            after.as_deref(),
            |row| Cursor {
                created_at: row.created_at,
                id: row.id,
            },
            |cursor, row| SessionEdge {
                cursor,
                node: Session::from(row),
            },
        );
        Ok(SessionConnection { edges, page_info })
    }

    /// One session of the tenant.
    async fn session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Session> {
        let principal = secret(ctx).await?;
        let id = parse_id(&id, "id")?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let (row, _) = answer(sessions::detail(&mut conn, principal.tenant.id, id).await)?;
        Ok(Session::from(&row))
    }

    /// The tenant's audit log, newest first, optionally of one kind or one session.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        kind: Option<String>,
        session_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let principal = secret(ctx).await?;
        let session_id = session_id
            .as_ref()
            .map(|id| parse_id(id, "sessionId"))
            .transpose()?;
        let mut conn = connection(ctx, principal.tenant.id).await?;
        let page = answer(
            sessions::audit_log(
                &mut conn,
                principal.tenant.id,
                kind.as_deref(),
                session_id,
                first,
                after.as_deref(),
            )
            .await,
        )?;
        let (edges, page_info) = page_edges(
            &page,
            after.as_deref(),
            |row| Cursor {
                created_at: row.created_at,
                id: row.id,
            },
            |cursor, row| AuditEventEdge {
                cursor,
                node: AuditEvent::from(row),
            },
        );
        Ok(AuditEventConnection { edges, page_info })
    }
}
