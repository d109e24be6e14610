//! The SQL one verification flow executes, statement for statement (the same `db` functions the
//! service calls, so the same prepared statements), for running straight against Postgres: the
//! database's own limit for the flow, and the baseline of its benchmarks. What it leaves out is
//! everything that is not SQL: HTTP, GraphQL, the gateway, events, signing.

use diesel::result::Error;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::db::audit_events::{self, NewAuditEvent};
use crate::db::sessions::{self, NewSession};
use crate::db::{allowed_countries, api_keys, pool_numbers, scope, test_numbers};
use crate::verification::SessionStatus;

/// One tenant as the raw flow uses it.
#[derive(Debug, Clone)]
pub struct RawTenant {
    pub id: Uuid,
    /// SHA-256 of its publishable key.
    pub key_hash: Vec<u8>,
}

/// Declares the connection's scope, as every checkout of the service does.
pub async fn declare(conn: &mut AsyncPgConnection, tenant: Option<Uuid>) -> Result<(), Error> {
    let id = tenant.map(|t| t.to_string()).unwrap_or_default();
    scope::declare(conn, &id, tenant.is_none()).await
}

/// The key lookup of every request, in the system scope when `declare_scopes`, then the
/// tenant's scope for the rest.
async fn authenticate(
    conn: &mut AsyncPgConnection,
    tenant: &RawTenant,
    declare_scopes: bool,
) -> Result<(), Error> {
    if declare_scopes {
        declare(conn, None).await?;
    }
    api_keys::find_by_hash(conn, &tenant.key_hash).await?;
    if declare_scopes {
        declare(conn, Some(tenant.id)).await?;
    }
    Ok(())
}

/// The statements of one `requestCall`. Returns the new session's id.
pub async fn request_call(
    conn: &mut AsyncPgConnection,
    tenant: &RawTenant,
    phone: &str,
    declare_scopes: bool,
) -> Result<Uuid, Error> {
    let t = tenant.id;
    let session = Uuid::now_v7();
    authenticate(conn, tenant, declare_scopes).await?;
    allowed_countries::list(conn, t).await?;
    test_numbers::find(conn, t, phone).await?;
    sessions::recent_failures(conn, t, phone, 3600.0).await?;
    let token_hash = session.as_bytes().repeat(2);
    conn.transaction::<_, Error, _>(async |conn| {
        let entry = pool_numbers::claim_next(conn, t, "GB").await?;
        sessions::insert(
            conn,
            &NewSession {
                id: session,
                tenant_id: t,
                token_hash: &token_hash,
                phone_number: phone,
                country: "GB",
                number_type: "MOBILE",
                pool_number_id: entry.map(|e| e.id),
                expected_caller_id: "+14155550100",
                status: SessionStatus::Pending.as_str(),
                max_attempts: 3,
                client_ip: Some("127.0.0.1"),
                user_agent: Some("loadgen"),
                app_signature: None,
                gateway: "simulator",
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
                is_test: false,
                metadata: None,
            },
        )
        .await?;
        pool_numbers::list_active(conn, t).await?;
        audit_events::record(
            conn,
            &NewAuditEvent::new(t, "call.requested").session(session),
        )
        .await
    })
    .await?;
    let calling = SessionStatus::Calling;
    sessions::record_call_placed(
        conn,
        session,
        &format!("SIM{}", session.simple()),
        &calling.source_names(),
        calling.as_str(),
        &NewAuditEvent::new(t, "call.placed").session(session),
    )
    .await?;
    Ok(session)
}

/// The statements of one call event (the simulator reports two per call).
pub async fn call_event(
    conn: &mut AsyncPgConnection,
    tenant: &RawTenant,
    session: Uuid,
    status: &str,
    declare_scopes: bool,
) -> Result<(), Error> {
    if declare_scopes {
        declare(conn, None).await?;
    }
    let target = if status == "ringing" {
        SessionStatus::Ringing
    } else {
        SessionStatus::CallEnded
    };
    conn.transaction::<_, Error, _>(async |conn| {
        sessions::lock_by_id(conn, session).await?;
        sessions::record_call_progress(
            conn,
            session,
            &format!("SIM{}", session.simple()),
            status,
            Some(target.as_str()),
        )
        .await?;
        audit_events::record(
            conn,
            &NewAuditEvent::new(tenant.id, "call.status").session(session),
        )
        .await
    })
    .await
}

/// The statements of one successful `verify`.
pub async fn verify(
    conn: &mut AsyncPgConnection,
    tenant: &RawTenant,
    session: Uuid,
    phone: &str,
    declare_scopes: bool,
) -> Result<(), Error> {
    let t = tenant.id;
    authenticate(conn, tenant, declare_scopes).await?;
    conn.transaction::<_, Error, _>(async |conn| {
        sessions::find_for_update(conn, t, session).await?;
        sessions::lock_phone(conn, t, phone).await?;
        sessions::recent_failures(conn, t, phone, 3600.0).await?;
        sessions::mark_verified(conn, session).await?;
        audit_events::record(
            conn,
            &NewAuditEvent::new(t, "verify.succeeded").session(session),
        )
        .await
    })
    .await
}

/// One whole flow: request, two call events, verify.
pub async fn flow(
    conn: &mut AsyncPgConnection,
    tenant: &RawTenant,
    phone: &str,
    declare_scopes: bool,
) -> Result<(), Error> {
    let session = request_call(conn, tenant, phone, declare_scopes).await?;
    call_event(conn, tenant, session, "ringing", declare_scopes).await?;
    call_event(conn, tenant, session, "no-answer", declare_scopes).await?;
    verify(conn, tenant, session, phone, declare_scopes).await
}
