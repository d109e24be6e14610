//! Micro-benchmarks of the hot paths: phone parsing, caller-ID choice, key hashing and lookup
//! (real Postgres), JWT signing (keys from real Postgres), and GraphQL parsing and validation
//! of the mobile operations.
//!
//! `cargo bench --bench hot_paths`
// The merged GraphQL roots nest deeply; the default limit is too low to lay out their futures.
#![recursion_limit = "256"]
// A benchmark whose set-up fails has nothing to measure: stopping at once is right.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use missedcall::crypto::{MasterKey, ct_eq, sha256};
use missedcall::tokens::{TokenRequest, TokenSigner};
use missedcall::verification::phone;
use missedcall::{auth, db, graphql, tenancy};
use uuid::Uuid;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

fn phones(c: &mut Criterion) {
    c.bench_function("phone/parse_destination E.164", |b| {
        b.iter(|| phone::parse_destination(black_box("+447400123456")))
    });
    c.bench_function("phone/parse_destination formatted", |b| {
        b.iter(|| phone::parse_destination(black_box("+1 (415) 555-0123")))
    });
    c.bench_function("phone/normalize_caller_id national", |b| {
        b.iter(|| phone::normalize_caller_id(black_box("07700 900123"), black_box("GB")))
    });
}

fn caller_ids(c: &mut Criterion) {
    let range = phone::parse_pool_pattern("+46701230XXX").expect("pattern");
    let pool: Vec<_> = (0..20)
        .map(|n| phone::parse_pool_pattern(&format!("+1415555{:04}", 100 + n)).expect("pattern"))
        .collect();
    let mut rng = rand::rng();
    c.bench_function("caller_id/draw from a range", |b| {
        b.iter(|| range.draw(&mut rng))
    });
    c.bench_function("caller_id/pattern of a 20-entry pool", |b| {
        b.iter(|| phone::caller_id_pattern(black_box(&pool)))
    });
}

fn keys(c: &mut Criterion) {
    let key = "pk_3q2m8vS0aZf0yXk1L9c7H4nT2pW6eR5uB8dG1jK0";
    let stored = sha256(key.as_bytes());
    c.bench_function("api_key/hash and compare", |b| {
        b.iter(|| ct_eq(&sha256(black_box(key).as_bytes()), &stored))
    });
}

fn graphql_documents(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // No service attached: the resolvers stop where they would take the database, so this
    // measures parsing, validation, limits and dispatch.
    let schema = graphql::build_schema(None);
    let request_call = "mutation($input: RequestCallInput!) { requestCall(input: $input) { sessionId sessionToken status expiresAt callerIdPattern interceptionTimeoutSeconds } }";
    let verify = "mutation($input: VerifyInput!) { verify(input: $input) { verified status attemptsLeft token tokenExpiresAt } }";
    let vars_call = serde_json::json!({"input": {"phoneNumber": "+447400123456"}});
    let vars_verify = serde_json::json!({"input": {"sessionId": Uuid::nil(), "sessionToken": "st_x", "callerId": "+14155550100"}});
    c.bench_function("graphql/requestCall parse+validate+dispatch", |b| {
        b.iter(|| {
            let request = async_graphql::Request::new(request_call)
                .variables(async_graphql::Variables::from_json(vars_call.clone()));
            runtime.block_on(schema.execute(request))
        })
    });
    c.bench_function("graphql/verify parse+validate+dispatch", |b| {
        b.iter(|| {
            let request = async_graphql::Request::new(verify)
                .variables(async_graphql::Variables::from_json(vars_verify.clone()));
            runtime.block_on(schema.execute(request))
        })
    });
}

/// Benchmarks that need real Postgres: the key lookup and JWT signing with stored keys.
fn database(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let name = format!("mc_bench_hot_{}", Uuid::new_v4().simple());
    let url = format!("{SERVER}/{name}");
    let master = MasterKey::generate();
    let (mut conn, signer, key) = runtime.block_on(async {
        db::create_database_if_missing(&url).await.expect("create");
        db::run_migrations(&url).await.expect("migrate");
        let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
        let created = tenancy::create_tenant(&mut conn, "bench", "Bench", None)
            .await
            .expect("tenant");
        let signer = TokenSigner::load_or_init(&mut conn, &master, "http://bench".into())
            .await
            .expect("signer");
        (conn, signer, created.publishable_key.key)
    });
    c.bench_function("api_key/lookup in Postgres", |b| {
        b.iter(|| runtime.block_on(auth::authenticate(&mut conn, black_box(&key))))
    });
    let request = TokenRequest {
        audience: "bench".into(),
        phone_number: "+447400123456".into(),
        tenant_id: Uuid::now_v7(),
        session_id: Uuid::now_v7(),
        ttl_seconds: 3600,
        test: false,
    };
    c.bench_function("jwt/sign EdDSA", |b| {
        b.iter(|| signer.sign(black_box(&request)))
    });
    drop(conn);
    runtime.block_on(async {
        if let Ok(mut admin) = AsyncPgConnection::establish(&format!("{SERVER}/postgres")).await {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .await;
        }
    });
}

criterion_group!(
    benches,
    phones,
    caller_ids,
    keys,
    graphql_documents,
    database
);
criterion_main!(benches);
