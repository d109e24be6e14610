//! Load generator: virtual phones driving the whole flow against a running service (simulator
//! gateway), then the same SQL straight against Postgres at the same concurrency, reported side
//! by side.
//!
//! ```sh
//! loadgen flow --url http://127.0.0.1:8080 --database-url postgres://postgres@127.0.0.1:5432/missedcall \
//!   --concurrency 64 --duration 20 --service-pid $(pgrep -f 'missedcall serve')
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use missedcall::loadtest::latency::{Samples, ms};
use missedcall::loadtest::process;
use missedcall::loadtest::raw_flow::{self, RawTenant};
use missedcall::{crypto, db, tenancy, tokens};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

type LoadResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(about = "Drive missedcall with virtual phones and measure it")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The running service (simulator gateway, ring delay 0).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The service's database, as its owner: tenants are created here.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/missedcall")]
    database_url: String,
    /// Tenants to spread the phones over.
    #[arg(long, default_value_t = 4)]
    tenants: usize,
    /// Caller IDs in each tenant's pool.
    #[arg(long, default_value_t = 20)]
    pool_size: usize,
    /// The service's process, for its CPU time and peak memory.
    #[arg(long)]
    service_pid: Option<u32>,
}

#[derive(Subcommand)]
enum Mode {
    /// Whole flows from N concurrent phones, then the raw SQL limit at the same concurrency.
    Flow {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds of each phase.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Skip the raw SQL phase.
        #[arg(long)]
        no_raw: bool,
    },
    /// N WebSocket subscribers, each on its own session; then every session is verified at a
    /// steady rate and the delay from verify's answer to the subscriber's event is measured.
    Subscribe {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Sessions verified per second in the second phase.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds the subscriptions are held idle before verifying.
        #[arg(long, default_value_t = 5)]
        hold: u64,
    },
}

/// A tenant made for the run.
#[derive(Clone)]
struct Tenant {
    raw: RawTenant,
    pk: String,
    audience: String,
}

async fn make_tenants(common: &Common) -> LoadResult<Vec<Tenant>> {
    let mut conn = AsyncPgConnection::establish(&common.database_url).await?;
    let run = Uuid::new_v4().simple().to_string();
    let mut tenants = Vec::new();
    for n in 0..common.tenants {
        let slug = format!("lg-{}-{n}", &run[..8]);
        let created = tenancy::create_tenant(&mut conn, &slug, "loadgen", None).await?;
        for i in 0..common.pool_size {
            tenancy::add_pool_entry(
                &mut conn,
                created.tenant.id,
                &format!("+1415555{:04}", 100 + i),
                "",
            )
            .await?;
        }
        // Rate limits are the service's, not the measurement's: lift them for these tenants.
        missedcall::admin::settings::update(
            &mut conn,
            created.tenant.id,
            missedcall::admin::settings::SettingsChange {
                rate_limit_overrides: Some(missedcall::admin::settings::RateLimitOverrides {
                    per_phone_per_hour: Some(1_000_000),
                    per_ip_per_minute: Some(1_000_000),
                    per_tenant_per_minute: Some(1_000_000),
                    per_country_per_minute: Some(1_000_000),
                    daily_call_cap: Some(1_000_000),
                }),
                ..Default::default()
            },
        )
        .await?;
        tenants.push(Tenant {
            raw: RawTenant {
                id: created.tenant.id,
                key_hash: crypto::sha256(created.publishable_key.key.as_bytes()).to_vec(),
            },
            pk: created.publishable_key.key,
            audience: created.tenant.jwt_audience,
        });
    }
    Ok(tenants)
}

/// What the phones saw.
#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, Samples>,
    errors: BTreeMap<String, u64>,
    flows: u64,
}

struct Phone {
    http: reqwest::Client,
    url: String,
    jwks: Arc<Mutex<Value>>,
    issuer: String,
}

fn error_code(body: &Value) -> Option<String> {
    body.pointer("/errors/0/extensions/code")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| body.get("errors").map(|_| "UNKNOWN".to_owned()))
}

impl Phone {
    /// A phone for the service at `url`; `jwks` and `issuer` are needed only to check tokens.
    fn new(http: reqwest::Client, url: &str, jwks: Value) -> Self {
        Self {
            http,
            url: url.to_owned(),
            jwks: Arc::new(Mutex::new(jwks)),
            // The service's issuer is its public URL, which the token names.
            issuer: url.trim_end_matches('/').to_owned(),
        }
    }

    /// Asks for a call; the new session's id and token.
    async fn request_call(&self, key: &str, phone: &str) -> Result<(String, String), String> {
        let body = self
            .gql(
                key,
                "mutation($p: String!) { requestCall(input: {phoneNumber: $p}) { sessionId sessionToken } }",
                json!({"p": phone}),
            )
            .await?;
        let field = |name: &str| {
            body["data"]["requestCall"][name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "NO_SESSION".to_owned())
        };
        Ok((field("sessionId")?, field("sessionToken")?))
    }

    /// The caller ID the simulated phone saw for the session, waiting up to 10 s for the call.
    async fn read_call(&self, phone: &str, session: &str) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let calls: Value = self
                .http
                .get(format!("{}/simulator/calls", self.url))
                .query(&[("to", phone)])
                .send()
                .await
                .map_err(|_| "TRANSPORT".to_owned())?
                .json()
                .await
                .map_err(|_| "BODY".to_owned())?;
            let found = calls.as_array().and_then(|calls| {
                calls
                    .iter()
                    .find(|c| c["sessionId"].as_str() == Some(session))
                    .and_then(|c| c["from"].as_str().map(str::to_owned))
            });
            if let Some(from) = found {
                return Ok(from);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err("NO_CALL".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn gql(&self, key: &str, query: &str, variables: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .map_err(|_| "TRANSPORT".to_owned())?;
        if response.status().is_server_error() {
            return Err(format!("HTTP_{}", response.status().as_u16()));
        }
        let body: Value = response.json().await.map_err(|_| "BODY".to_owned())?;
        match error_code(&body) {
            Some(code) => Err(code),
            None => Ok(body),
        }
    }

    /// One whole flow; records each operation's latency.
    async fn flow(&self, tenant: &Tenant, phone: &str, tally: &mut Tally) -> Result<(), String> {
        let started = Instant::now();
        let (session, token) = self.request_call(&tenant.pk, phone).await?;
        tally
            .ops
            .entry("requestCall")
            .or_default()
            .record(started.elapsed());

        let started = Instant::now();
        let caller_id = self.read_call(phone, &session).await?;
        tally
            .ops
            .entry("readCall")
            .or_default()
            .record(started.elapsed());

        let started = Instant::now();
        let body = self
            .gql(
                &tenant.pk,
                "mutation($i: VerifyInput!) { verify(input: $i) { verified token } }",
                json!({"i": {"sessionId": session, "sessionToken": token, "callerId": caller_id}}),
            )
            .await?;
        tally
            .ops
            .entry("verify")
            .or_default()
            .record(started.elapsed());
        let jwt = body["data"]["verify"]["token"]
            .as_str()
            .ok_or("NOT_VERIFIED")?
            .to_owned();

        let started = Instant::now();
        self.check_token(&jwt, &tenant.audience, phone).await?;
        tally
            .ops
            .entry("checkToken")
            .or_default()
            .record(started.elapsed());
        Ok(())
    }

    async fn check_token(&self, jwt: &str, audience: &str, phone: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "BAD_TOKEN")?;
        let kid = header.kid.clone().ok_or("BAD_TOKEN")?;
        let mut jwks = self.jwks.lock().await;
        if !jwks["keys"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k["kid"] == kid.as_str()))
        {
            *jwks = self
                .http
                .get(format!("{}/.well-known/jwks.json", self.url))
                .send()
                .await
                .map_err(|_| "TRANSPORT")?
                .json()
                .await
                .map_err(|_| "BODY")?;
        }
        let jwk = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
            .cloned()
            .ok_or("UNKNOWN_KID")?;
        drop(jwks);
        let key = tokens::decoding_key_from_jwk(&jwk).map_err(|_| "BAD_JWK")?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[self.issuer.as_str()]);
        let claims = jsonwebtoken::decode::<tokens::VerificationClaims>(jwt, &key, &validation)
            .map_err(|_| "TOKEN_REJECTED")?
            .claims;
        if claims.phone_number != phone {
            return Err("WRONG_SUBJECT".to_owned());
        }
        Ok(())
    }
}

/// Phones numbered from a random start so runs do not collide.
fn phone_number(n: u64) -> String {
    format!("+447400{:06}", n % 1_000_000)
}

async fn run_flows(
    common: &Common,
    tenants: &[Tenant],
    concurrency: usize,
    duration: Duration,
) -> LoadResult<(Tally, Duration)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?;
    let jwks = http
        .get(format!("{}/.well-known/jwks.json", common.url))
        .send()
        .await?
        .json::<Value>()
        .await?;
    let phone = Arc::new(Phone::new(http, &common.url, jwks));
    let counter = Arc::new(AtomicU64::new(u64::from(rand::random::<u32>())));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (phone, counter, tenants) = (phone.clone(), counter.clone(), tenants.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let tenant = &tenants[worker % tenants.len()];
            while Instant::now() < deadline {
                let number = phone_number(counter.fetch_add(1, Ordering::Relaxed));
                match phone.flow(tenant, &number, &mut tally).await {
                    Ok(()) => tally.flows += 1,
                    Err(code) => *tally.errors.entry(code).or_default() += 1,
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await?;
        total.flows += tally.flows;
        for (op, samples) in tally.ops {
            total.ops.entry(op).or_default().merge(samples);
        }
        for (code, n) in tally.errors {
            *total.errors.entry(code).or_default() += n;
        }
    }
    Ok((total, started.elapsed()))
}

async fn run_raw(
    common: &Common,
    tenants: &[Tenant],
    concurrency: usize,
    duration: Duration,
) -> LoadResult<(u64, Duration)> {
    let url = db::with_user(&common.database_url, db::scope::APP_ROLE);
    let counter = Arc::new(AtomicU64::new(u64::from(rand::random::<u32>())));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (url, counter, done) = (url.clone(), counter.clone(), done.clone());
        let tenant = tenants[worker % tenants.len()].raw.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            while Instant::now() < deadline {
                let number = phone_number(counter.fetch_add(1, Ordering::Relaxed));
                raw_flow::flow(&mut conn, &tenant, &number, true).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            LoadResult::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

fn report_flows(
    tally: &Tally,
    elapsed: Duration,
    before: Option<process::ProcessFigures>,
    after: Option<process::ProcessFigures>,
) -> f64 {
    let rate = tally.flows as f64 / elapsed.as_secs_f64();
    println!(
        "flows: {} in {:.1} s = {rate:.0} flows/s",
        tally.flows,
        elapsed.as_secs_f64()
    );
    println!(
        "{:<12} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "operation", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (op, samples) in &tally.ops {
        if let Some(s) = samples.summary() {
            println!(
                "{op:<12} {:>8} {:>9} {:>9} {:>9} {:>9}",
                s.count,
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max)
            );
        }
    }
    if tally.errors.is_empty() {
        println!("errors: none");
    } else {
        for (code, n) in &tally.errors {
            println!("error {code}: {n}");
        }
    }
    if let (Some(before), Some(after)) = (before, after) {
        let cpu = (after.cpu - before.cpu).as_secs_f64() / elapsed.as_secs_f64();
        println!(
            "service: {:.0} % of one core, peak RSS {:.1} MiB",
            cpu * 100.0,
            after.peak_rss as f64 / (1024.0 * 1024.0)
        );
    }
    rate
}

/// A session waiting for its subscriber's event.
struct Watched {
    tenant: usize,
    session: String,
    token: String,
    caller_id: String,
}

/// Opens sessions with `concurrency` phones; each session's caller ID is read from the simulator.
async fn open_sessions(
    common: &Common,
    tenants: &[Tenant],
    count: usize,
) -> LoadResult<Vec<Watched>> {
    let phone = Arc::new(Phone::new(
        reqwest::Client::builder().tcp_nodelay(true).build()?,
        &common.url,
        Value::Null,
    ));
    let next = Arc::new(AtomicU64::new(0));
    let start = u64::from(rand::random::<u32>());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (phone, next, tenants) = (phone.clone(), next.clone(), tenants.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut opened = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count as u64 {
                    break;
                }
                let tenant = (n as usize) % tenants.len();
                let number = phone_number(start + n);
                let (session, token) = phone
                    .request_call(&tenants[tenant].pk, &number)
                    .await
                    .map_err(|code| format!("requestCall: {code}"))?;
                let caller_id = phone.read_call(&number, &session).await?;
                opened.push(Watched {
                    tenant,
                    session,
                    token,
                    caller_id,
                });
            }
            LoadResult::Ok(opened)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// One subscriber: connects, subscribes, and reports when its session is VERIFIED.
async fn subscriber(
    url: String,
    key: String,
    session: String,
    token: String,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
    arrival: tokio::sync::OwnedSemaphorePermit,
) -> LoadResult<Instant> {
    let mut arrival = Some(arrival);
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request =
        format!("{}/graphql/ws", url.replacen("http://", "ws://", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut stream, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    let send = |value: Value| Message::Text(value.to_string().into());
    stream
        .send(send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}})))
        .await?;
    stream
        .send(send(json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!, $token: String!) { sessionStatus(sessionId: $id, sessionToken: $token) { status } }",
            "variables": {"id": session, "token": token}}})))
        .await?;
    let mut announced = false;
    while let Some(message) = stream.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let value: Value = serde_json::from_str(&text)?;
        match value["type"].as_str() {
            Some("next") => {
                if !announced {
                    announced = true;
                    arrival.take();
                    let _ = ready.send(());
                }
                if value["payload"]["data"]["sessionStatus"]["status"] == "VERIFIED" {
                    return Ok(Instant::now());
                }
            }
            Some("ping") => stream.send(send(json!({"type": "pong"}))).await?,
            Some("error") => return Err(format!("subscription error: {value}").into()),
            _ => {}
        }
    }
    Err("the connection closed before VERIFIED".into())
}

async fn run_subscribers(
    common: &Common,
    tenants: &[Tenant],
    count: usize,
    rate: u64,
    hold: Duration,
) -> LoadResult {
    let sessions = open_sessions(common, tenants, count).await?;
    println!("== {count} subscribers, each on its own session; verified at {rate}/s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = common.service_pid.and_then(process::read);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut subscribers = Vec::with_capacity(count);
    let connect_started = Instant::now();
    // Clients arrive as fast as the service takes them: at most 64 handshakes in flight.
    let arriving = Arc::new(tokio::sync::Semaphore::new(64));
    for watched in &sessions {
        let arrival = arriving.clone().acquire_owned().await?;
        subscribers.push(tokio::spawn(subscriber(
            common.url.clone(),
            tenants[watched.tenant].pk.clone(),
            watched.session.clone(),
            watched.token.clone(),
            ready_tx.clone(),
            arrival,
        )));
    }
    let mut held = 0;
    while held < count {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(())) => held += 1,
            _ => break,
        }
    }
    println!(
        "held: {held} subscriptions, all subscribed in {:.1} s",
        connect_started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(hold).await;
    let idle = common.service_pid.and_then(process::read);
    if let (Some(before), Some(idle)) = (before, idle) {
        let grown = idle.rss.saturating_sub(before.rss) as f64;
        println!(
            "service RSS: {:.1} MiB before, {:.1} MiB holding them = {:.1} KiB per subscription",
            before.rss as f64 / 1048576.0,
            idle.rss as f64 / 1048576.0,
            grown / 1024.0 / held.max(1) as f64
        );
    }
    // Verify every session at a steady rate; remember when each answer came.
    let phone = Arc::new(Phone::new(
        reqwest::Client::builder().tcp_nodelay(true).build()?,
        &common.url,
        Value::Null,
    ));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let verify_started = Instant::now();
    let mut answers = Vec::with_capacity(count);
    for (n, watched) in sessions.iter().enumerate() {
        let due = verify_started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let (phone, key) = (phone.clone(), tenants[watched.tenant].pk.clone());
        let input = json!({"i": {"sessionId": watched.session, "sessionToken": watched.token, "callerId": watched.caller_id}});
        answers.push(tokio::spawn(async move {
            let result = phone
                .gql(
                    &key,
                    "mutation($i: VerifyInput!) { verify(input: $i) { verified } }",
                    input,
                )
                .await;
            (result.is_ok(), Instant::now())
        }));
    }
    let mut answered = Vec::with_capacity(count);
    for answer in answers {
        answered.push(answer.await?);
    }
    // Subscribers that never get their event count as failures: all of them share one deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut delays = Samples::default();
    let mut failures = 0;
    for ((ok, answered), subscriber) in answered.into_iter().zip(subscribers) {
        if !ok {
            subscriber.abort();
            failures += 1;
            continue;
        }
        match tokio::time::timeout_at(deadline, subscriber).await {
            Ok(Ok(Ok(event))) => delays.record(event.saturating_duration_since(answered)),
            _ => failures += 1,
        }
    }
    println!(
        "verified: {count} in {:.1} s ({:.0}/s), failures {failures}",
        verify_started.elapsed().as_secs_f64(),
        count as f64 / verify_started.elapsed().as_secs_f64()
    );
    if let Some(s) = delays.summary() {
        println!(
            "delay from verify's answer to the event: p50 {} ms, p99 {} ms, max {} ms",
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> LoadResult {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Flow {
            common,
            concurrency,
            duration,
            no_raw,
        } => {
            let tenants = make_tenants(&common).await?;
            let duration = Duration::from_secs(duration);
            // Warm up connections and caches.
            run_flows(&common, &tenants, concurrency, Duration::from_secs(2)).await?;
            let before = common.service_pid.and_then(process::read);
            let (tally, elapsed) = run_flows(&common, &tenants, concurrency, duration).await?;
            let after = common.service_pid.and_then(process::read);
            println!(
                "== service, {concurrency} concurrent phones, {} tenants, pool {}",
                common.tenants, common.pool_size
            );
            let service_rate = report_flows(&tally, elapsed, before, after);
            if !no_raw {
                let (raw, elapsed) = run_raw(&common, &tenants, concurrency, duration).await?;
                let raw_rate = raw as f64 / elapsed.as_secs_f64();
                println!(
                    "== raw SQL of the same flows, {concurrency} connections as missedcall_app"
                );
                println!(
                    "flows: {raw} in {:.1} s = {raw_rate:.0} flows/s",
                    elapsed.as_secs_f64()
                );
                println!("service / raw SQL = {:.3}", service_rate / raw_rate);
            }
        }
        Mode::Subscribe {
            common,
            subscribers,
            rate,
            hold,
        } => {
            let tenants = make_tenants(&common).await?;
            run_subscribers(
                &common,
                &tenants,
                subscribers,
                rate,
                Duration::from_secs(hold),
            )
            .await?;
        }
    }
    Ok(())
}
