//! The cost of the second wall: the statements of one requestCall (`loadtest::raw_flow`), run at
//! the same concurrency against the same Postgres three ways: as the owner with nothing
//! declared (no wall), as the owner declaring scopes (the round trips of the wall, policies
//! bypassed), and as `missedcall_app` declaring scopes (what the service does). Rounds rotate so
//! every variant sees the same machine noise; medians and ratios are printed.
//!
//! `cargo bench --bench rls_cost` (env: BENCH_CONCURRENCY, BENCH_ROUNDS, BENCH_ROUND_MS).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use missedcall::db;
use missedcall::db::scope::APP_ROLE;
use missedcall::loadtest::raw_flow::{self, RawTenant};
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

struct Variant {
    label: &'static str,
    url: String,
    declare: bool,
}

/// requestCalls completed per second by `concurrency` connections for `duration`.
async fn round(
    variant: &Variant,
    tenants: &[RawTenant],
    concurrency: u64,
    duration: Duration,
) -> BenchResult<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (done, url, declare) = (done.clone(), variant.url.clone(), variant.declare);
        let tenant = tenants[worker as usize % tenants.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            let mut n = worker * 1_000_000;
            while Instant::now() < deadline {
                n += 1;
                raw_flow::request_call(
                    &mut conn,
                    &tenant,
                    &format!("+447400{:06}", n % 1_000_000),
                    declare,
                )
                .await?;
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
        tenants.push(RawTenant {
            id: created.tenant.id,
            key_hash: missedcall::crypto::sha256(created.publishable_key.key.as_bytes()).to_vec(),
        });
    }
    drop(owner);
    let variants = [
        Variant {
            label: "without the wall (owner, nothing declared)",
            url: owner_url.clone(),
            declare: false,
        },
        Variant {
            label: "declaring scopes only (owner: policies bypassed)",
            url: owner_url.clone(),
            declare: true,
        },
        Variant {
            label: "with the wall (missedcall_app + scopes)",
            url: db::with_user(&owner_url, APP_ROLE),
            declare: true,
        },
    ];
    for variant in &variants {
        round(variant, &tenants, concurrency, Duration::from_millis(500)).await?;
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let duration = Duration::from_millis(round_ms);
    for r in 0..rounds as usize {
        for i in 0..variants.len() {
            let index = (i + r) % variants.len();
            figures[index].push(round(&variants[index], &tenants, concurrency, duration).await?);
        }
    }
    let baseline = median(&mut figures[0].clone());
    println!(
        "rls_cost: one requestCall's statements, concurrency {concurrency}, {rounds} rounds of {round_ms} ms, medians:"
    );
    for (variant, values) in variants.iter().zip(figures.iter_mut()) {
        let m = median(values);
        println!(
            "  {:<52} {m:>8.0} requests/s  ratio {:.3}",
            variant.label,
            m / baseline
        );
    }
    let mut admin = AsyncPgConnection::establish(&format!("{SERVER}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}
