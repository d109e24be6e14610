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

/// The statements of one requestCall as the service runs them: the key lookup, the request
/// checks, the session written in a transaction, the placed call recorded.
async fn one_request(conn: &mut AsyncPgConnection, tenant: Uuid, key_hash: &[u8]) -> BenchResult {
    let session = Uuid::now_v7();
    diesel::sql_query(
        "SELECT k.id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1",
    )
    .bind::<Bytea, _>(key_hash)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM app_signatures WHERE tenant_id = $1 AND signature = 'x')",
    )
    .bind::<SqlUuid, _>(tenant)
    .execute(conn)
    .await?;
    diesel::sql_query("SELECT country_code FROM allowed_countries WHERE tenant_id = $1")
        .bind::<SqlUuid, _>(tenant)
        .execute(conn)
        .await?;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
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
             VALUES ($1, $2, $3, '+447400123456', 'GB', 'MOBILE', '+14155550100', 'PENDING', 3, \
               'simulator', now() + interval '5 minutes')",
        )
        .bind::<SqlUuid, _>(session)
        .bind::<SqlUuid, _>(tenant)
        .bind::<Bytea, _>(session.as_bytes().repeat(2))
        .execute(conn)
        .await?;
        diesel::sql_query("SELECT pattern FROM pool_numbers WHERE tenant_id = $1 AND active")
            .bind::<SqlUuid, _>(tenant)
            .execute(conn)
            .await?;
        audit(conn, tenant, session, "call.requested").await
    })
    .await?;
    diesel::sql_query(
        "UPDATE verification_sessions SET status = 'CALLING', gateway_call_id = $2, \
           updated_at = now() WHERE id = $1 AND status = 'PENDING'",
    )
    .bind::<SqlUuid, _>(session)
    .bind::<Text, _>(session.to_string())
    .execute(conn)
    .await?;
    audit(conn, tenant, session, "call.placed").await?;
    Ok(())
}

async fn audit(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    session: Uuid,
    kind: &str,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO audit_events (id, tenant_id, session_id, kind, ip) \
         VALUES ($1, $2, $3, $4, '127.0.0.1')",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(session)
    .bind::<Text, _>(kind)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone)]
enum Wall {
    /// Owner connections: row-level security does not apply, nothing is declared.
    Off(DbPool),
    /// Owner connections declaring the tenant: the round trip of the wall without its policies.
    DeclareOnly(Database),
    /// The service's way: `missedcall_app`, a tenant declared on every checkout.
    On(Database),
}

/// Requests completed per second by `concurrency` tasks for `duration`.
async fn round(
    wall: &Wall,
    tenants: &[(Uuid, Vec<u8>)],
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
                let (tenant, key_hash) = &tenants[n % tenants.len()];
                n += 1;
                match &wall {
                    Wall::Off(pool) => {
                        let mut conn = pool.get().await?;
                        one_request(&mut conn, *tenant, key_hash).await?;
                    }
                    Wall::DeclareOnly(database) | Wall::On(database) => {
                        // The service looks the key up in a system scope, then works in the
                        // tenant's.
                        let mut conn = database.system().await?;
                        drop(conn);
                        conn = database.for_tenant(*tenant).await?;
                        one_request(&mut conn, *tenant, key_hash).await?;
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
        let hash = missedcall::crypto::sha256(created.publishable_key.key.as_bytes()).to_vec();
        tenants.push((created.tenant.id, hash));
    }
    let pool_size = u32::try_from(concurrency)?;
    let walls = [
        (
            "without the wall (owner, no RLS, nothing declared)",
            Wall::Off(db::build_pool(&owner_url, pool_size).await?),
        ),
        (
            "declaring scopes only (owner: policies bypassed)",
            Wall::DeclareOnly(Database::new(db::build_pool(&owner_url, pool_size).await?)),
        ),
        (
            "with the wall (missedcall_app + scopes)",
            Wall::On(Database::new(
                db::build_pool(&db::with_user(&owner_url, APP_ROLE), pool_size).await?,
            )),
        ),
    ];
    for (_, wall) in &walls {
        round(wall, &tenants, concurrency, Duration::from_millis(500)).await?;
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); walls.len()];
    let duration = Duration::from_millis(round_ms);
    for r in 0..rounds {
        // Rotate which goes first so drift hits every mode alike.
        for i in 0..walls.len() {
            let index = (i + r as usize) % walls.len();
            figures[index].push(round(&walls[index].1, &tenants, concurrency, duration).await?);
        }
    }
    let baseline = median(&mut figures[0].clone());
    println!(
        "rls_cost: one requestCall's statements, concurrency {concurrency}, {rounds} rounds of {round_ms} ms, medians:"
    );
    for ((label, _), values) in walls.iter().zip(figures.iter_mut()) {
        let m = median(values);
        println!(
            "  {label:<52} {m:>8.0} requests/s  ratio {:.3}",
            m / baseline
        );
    }
    drop(walls);
    drop(owner);
    let mut admin = AsyncPgConnection::establish(&format!("{SERVER}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}
