//! The cost of the second wall: the statements of one requestCall, run at the same concurrency
//! against the same Postgres twice: as the owner with no row-level security in the way (the
//! baseline), and as `missedcall_app` through a tenant-scoped checkout (what the service does).
//! Rounds alternate so both see the same machine noise; medians and their ratio are printed.
//!
//! `cargo bench --bench rls_cost` (env: BENCH_CONCURRENCY, BENCH_ROUNDS, BENCH_ROUND_MS).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::sql_types::{Bytea, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use missedcall::db::scope::{APP_ROLE, Database};
use missedcall::db::{self, DbPool};
use uuid::Uuid;

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";
const TENANTS: usize = 8;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The statements of one requestCall after authentication: claim a caller ID, store the
/// session, audit it, read it back.
async fn one_request(conn: &mut AsyncPgConnection, tenant: Uuid) -> BenchResult {
    let session = Uuid::now_v7();
    diesel::sql_query(
        "UPDATE pool_numbers SET last_used_at = now(), call_count = call_count + 1 \
         WHERE id = (SELECT id FROM pool_numbers WHERE tenant_id = $1 AND active \
                     AND (cooldown_until IS NULL OR cooldown_until <= now()) \
                     ORDER BY (country = 'GB') DESC, last_used_at ASC NULLS FIRST, id LIMIT 1) \
         RETURNING id",
    )
    .bind::<SqlUuid, _>(tenant)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO verification_sessions (id, tenant_id, token_hash, phone_number, country, \
           number_type, expected_caller_id, status, max_attempts, gateway, expires_at) \
         VALUES ($1, $2, $3, '+447400123456', 'GB', 'MOBILE', '+14155550100', 'CALLING', 3, \
           'simulator', now() + interval '5 minutes')",
    )
    .bind::<SqlUuid, _>(session)
    .bind::<SqlUuid, _>(tenant)
    .bind::<Bytea, _>(session.as_bytes().repeat(2))
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO audit_events (id, tenant_id, session_id, kind, ip) \
         VALUES ($1, $2, $3, 'call.requested', $4)",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(session)
    .bind::<Text, _>("127.0.0.1")
    .execute(conn)
    .await?;
    diesel::sql_query("SELECT id FROM verification_sessions WHERE tenant_id = $1 AND id = $2")
        .bind::<SqlUuid, _>(tenant)
        .bind::<SqlUuid, _>(session)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone)]
enum Wall {
    /// Owner connections: row-level security does not apply.
    Off(DbPool),
    /// The service's way: `missedcall_app`, a tenant declared on every checkout.
    On(Database),
}

/// Requests completed per second by `concurrency` tasks for `duration`.
async fn round(
    wall: &Wall,
    tenants: &[Uuid],
    concurrency: u64,
    duration: Duration,
) -> BenchResult<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (wall, done, tenants) = (wall.clone(), done.clone(), tenants.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut n = worker as usize;
            while Instant::now() < deadline {
                let tenant = tenants[n % tenants.len()];
                n += 1;
                match &wall {
                    Wall::Off(pool) => {
                        let mut conn = pool.get().await?;
                        one_request(&mut conn, tenant).await?;
                    }
                    Wall::On(database) => {
                        let mut conn = database.for_tenant(tenant).await?;
                        one_request(&mut conn, tenant).await?;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            BenchResult::Ok(())
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await??;
    }
    Ok(AtomicU64::load(&done, Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

#[tokio::main]
async fn main() -> BenchResult {
    let concurrency = env_or("BENCH_CONCURRENCY", 16);
    let rounds = env_or("BENCH_ROUNDS", 7);
    let round_ms = env_or("BENCH_ROUND_MS", 3000);
    let name = format!("mc_bench_rls_{}", Uuid::new_v4().simple());
    let owner_url = format!("{SERVER}/{name}");
    db::create_database_if_missing(&owner_url).await?;
    db::run_migrations(&owner_url).await?;
    let mut owner = AsyncPgConnection::establish(&owner_url).await?;
    let mut tenants = Vec::new();
    for n in 0..TENANTS {
        let created =
            missedcall::tenancy::create_tenant(&mut owner, &format!("bench-{n}"), "Bench", None)
                .await?;
        for pattern in ["+14155550100", "+447700900XXX"] {
            missedcall::tenancy::add_pool_entry(&mut owner, created.tenant.id, pattern, "").await?;
        }
        tenants.push(created.tenant.id);
    }
    let pool_size = u32::try_from(concurrency)?;
    let off = Wall::Off(db::build_pool(&owner_url, pool_size).await?);
    let on = Wall::On(Database::new(
        db::build_pool(&db::with_user(&owner_url, APP_ROLE), pool_size).await?,
    ));
    // Warm both pools and the caches.
    round(&off, &tenants, concurrency, Duration::from_millis(500)).await?;
    round(&on, &tenants, concurrency, Duration::from_millis(500)).await?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let duration = Duration::from_millis(round_ms);
    for r in 0..rounds {
        // Alternate which goes first so drift hits both alike.
        if r.is_multiple_of(2) {
            without.push(round(&off, &tenants, concurrency, duration).await?);
            with.push(round(&on, &tenants, concurrency, duration).await?);
        } else {
            with.push(round(&on, &tenants, concurrency, duration).await?);
            without.push(round(&off, &tenants, concurrency, duration).await?);
        }
    }
    let (without, with) = (median(&mut without), median(&mut with));
    println!(
        "rls_cost: concurrency {concurrency}, {rounds} rounds of {round_ms} ms, medians:\n  \
         without the wall (owner, no RLS):        {without:>8.0} requests/s\n  \
         with the wall (missedcall_app + scope):   {with:>8.0} requests/s\n  \
         ratio with/without: {:.3}",
        with / without
    );
    drop(off);
    drop(on);
    drop(owner);
    let mut admin = AsyncPgConnection::establish(&format!("{SERVER}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}
