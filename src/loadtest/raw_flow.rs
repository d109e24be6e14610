//! The SQL one verification flow executes, statement for statement, for running straight
//! against Postgres: the database's own limit for the flow, and the baseline of its benchmarks.
//! Keep it in step with `verification::service` (requestCall, two call events, verify).

use diesel::result::Error;
use diesel::sql_types::{Array, Bytea, Double, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

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
    crate::db::scope::declare(conn, &id, tenant.is_none()).await
}

async fn authenticate(conn: &mut AsyncPgConnection, key_hash: &[u8]) -> Result<(), Error> {
    diesel::sql_query(
        "SELECT k.id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1",
    )
    .bind::<Bytea, _>(key_hash)
    .execute(conn)
    .await?;
    Ok(())
}

async fn audit(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    session: Uuid,
    kind: &str,
) -> Result<(), Error> {
    diesel::sql_query(
        "INSERT INTO audit_events (id, tenant_id, session_id, kind, ip, detail) \
         VALUES ($1, $2, $3, $4, '127.0.0.1', '{}'::jsonb)",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(session)
    .bind::<Text, _>(kind)
    .execute(conn)
    .await?;
    Ok(())
}

async fn recent_failures(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    phone: &str,
) -> Result<(), Error> {
    diesel::sql_query(
        "SELECT coalesce(sum(attempts), 0)::bigint, min(created_at) FILTER (WHERE attempts > 0) \
         FROM verification_sessions WHERE tenant_id = $1 AND phone_number = $2 \
           AND status <> 'VERIFIED' AND created_at > now() - make_interval(secs => $3)",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<Text, _>(phone)
    .bind::<Double, _>(3600.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// The statements of one `requestCall`; `declare` adds the scope declarations of its two
/// checkouts. Returns the new session's id.
pub async fn request_call(
    conn: &mut AsyncPgConnection,
    tenant: &RawTenant,
    phone: &str,
    declare_scopes: bool,
) -> Result<Uuid, Error> {
    let session = Uuid::now_v7();
    let t = tenant.id;
    if declare_scopes {
        declare(conn, None).await?;
    }
    authenticate(conn, &tenant.key_hash).await?;
    if declare_scopes {
        declare(conn, Some(t)).await?;
    }
    diesel::sql_query("SELECT country_code FROM allowed_countries WHERE tenant_id = $1")
        .bind::<SqlUuid, _>(t)
        .execute(conn)
        .await?;
    diesel::sql_query("SELECT id FROM test_numbers WHERE tenant_id = $1 AND phone_number = $2")
        .bind::<SqlUuid, _>(t)
        .bind::<Text, _>(phone)
        .execute(conn)
        .await?;
    recent_failures(conn, t, phone).await?;
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::sql_query(
            "UPDATE pool_numbers SET last_used_at = now(), call_count = call_count + 1 \
             WHERE id = (SELECT id FROM pool_numbers WHERE tenant_id = $1 AND active \
                         AND (cooldown_until IS NULL OR cooldown_until <= now()) \
                         ORDER BY (country = 'GB') DESC, last_used_at ASC NULLS FIRST, id LIMIT 1) \
             RETURNING *",
        )
        .bind::<SqlUuid, _>(t)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO verification_sessions (id, tenant_id, token_hash, phone_number, country, \
               number_type, expected_caller_id, status, max_attempts, client_ip, user_agent, \
               gateway, expires_at, is_test) \
             VALUES ($1, $2, $3, $4, 'GB', 'MOBILE', '+14155550100', 'PENDING', 3, '127.0.0.1', \
               'loadgen', 'simulator', now() + interval '5 minutes', false) RETURNING *",
        )
        .bind::<SqlUuid, _>(session)
        .bind::<SqlUuid, _>(t)
        .bind::<Bytea, _>(session.as_bytes().repeat(2))
        .bind::<Text, _>(phone)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "SELECT * FROM pool_numbers WHERE tenant_id = $1 AND active ORDER BY pattern",
        )
        .bind::<SqlUuid, _>(t)
        .execute(conn)
        .await?;
        audit(conn, t, session, "call.requested").await
    })
    .await?;
    diesel::sql_query(
        "WITH placed AS ( \
           UPDATE verification_sessions SET gateway_call_id = $2, updated_at = now(), \
             status = CASE WHEN status = ANY($3) THEN $4 ELSE status END \
           WHERE id = $1 RETURNING *), \
         audited AS ( \
           INSERT INTO audit_events (id, tenant_id, session_id, kind, ip, detail) \
           SELECT $5, tenant_id, id, 'call.placed', '127.0.0.1', '{}'::jsonb FROM placed) \
         SELECT * FROM placed",
    )
    .bind::<SqlUuid, _>(session)
    .bind::<Text, _>(format!("SIM{}", session.simple()))
    .bind::<Array<Text>, _>(vec!["PENDING"])
    .bind::<Text, _>("CALLING")
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .execute(conn)
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
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::sql_query("SELECT * FROM verification_sessions WHERE id = $1 FOR UPDATE")
            .bind::<SqlUuid, _>(session)
            .execute(conn)
            .await?;
        diesel::sql_query(
            "UPDATE verification_sessions SET call_status = $2, \
             gateway_call_id = COALESCE(gateway_call_id, $3), status = COALESCE($4, status), \
             updated_at = now() WHERE id = $1 RETURNING *",
        )
        .bind::<SqlUuid, _>(session)
        .bind::<Text, _>(status)
        .bind::<Text, _>(format!("SIM{}", session.simple()))
        .bind::<Text, _>(if status == "ringing" {
            "RINGING"
        } else {
            "CALL_ENDED"
        })
        .execute(conn)
        .await?;
        audit(conn, tenant.id, session, "call.status").await
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
    if declare_scopes {
        declare(conn, None).await?;
    }
    authenticate(conn, &tenant.key_hash).await?;
    if declare_scopes {
        declare(conn, Some(t)).await?;
    }
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::sql_query(
            "SELECT * FROM verification_sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind::<SqlUuid, _>(t)
        .bind::<SqlUuid, _>(session)
        .execute(conn)
        .await?;
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(format!("verify:{t}:{phone}"))
            .execute(conn)
            .await?;
        recent_failures(conn, t, phone).await?;
        diesel::sql_query(
            "UPDATE verification_sessions SET attempts = attempts + 1, status = 'VERIFIED', \
             verified_at = now(), updated_at = now() WHERE id = $1 RETURNING *",
        )
        .bind::<SqlUuid, _>(session)
        .execute(conn)
        .await?;
        audit(conn, t, session, "verify.succeeded").await
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
