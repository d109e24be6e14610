//! Test harness: a migrated template database cloned per test, the real service on an
//! ephemeral port, and a small GraphQL client that fails the test on any 5xx.
#![allow(dead_code)]

pub mod fake_twilio;
pub mod own_postgres;
pub mod own_redis;
pub mod webhook_receiver;
pub mod ws;

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use missedcall::app::{self, RunningServer};
use missedcall::config::Config;
use missedcall::tenancy;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";
pub const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const ISSUER: &str = "http://missedcall.test";
/// Held while the template is created, so parallel test processes create it once.
const TEMPLATE_LOCK: i64 = 0x6d63_7465_6d70_6c00;

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

fn template_name() -> TestResult<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files = Vec::new();
    for entry in walk(&dir)? {
        files.push((entry.clone(), std::fs::read(&entry)?));
    }
    files.sort();
    let mut hasher = Sha256::new();
    for (path, content) in files {
        let relative = path.strip_prefix(&dir).unwrap_or(&path);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(&content);
    }
    Ok(format!("mc_tpl_{}", &hex::encode(hasher.finalize())[..16]))
}

fn walk(dir: &std::path::Path) -> TestResult<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

async fn admin_conn() -> TestResult<AsyncPgConnection> {
    Ok(AsyncPgConnection::establish(&format!("{SERVER}/postgres")).await?)
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Drops test databases left behind by test processes that died more than an hour ago.
async fn drop_stale_databases(admin: &mut AsyncPgConnection) -> TestResult {
    let names: Vec<DatabaseName> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'mc\\_test\\_%'")
            .load(admin)
            .await?;
    for DatabaseName { datname } in names {
        let created = datname
            .split('_')
            .nth(2)
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|secs| secs + 3600 < unix_now()) {
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
                ))
                .await?;
        }
    }
    Ok(())
}

async fn ensure_template(admin: &mut AsyncPgConnection, name: &str) -> TestResult {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK)
        .execute(admin)
        .await?;
    let result = async {
        let ready: Option<Flag> =
            diesel::sql_query("SELECT datistemplate AS flag FROM pg_database WHERE datname = $1")
                .bind::<diesel::sql_types::Text, _>(name)
                .get_result(admin)
                .await
                .ok();
        drop_stale_databases(admin).await?;
        match ready {
            Some(Flag { flag: true }) => return Ok(()),
            Some(Flag { flag: false }) => {
                admin
                    .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                    .await?;
            }
            None => {}
        }
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        missedcall::db::run_migrations(&format!("{SERVER}/{name}")).await?;
        admin
            .batch_execute(&format!("ALTER DATABASE \"{name}\" IS_TEMPLATE true"))
            .await?;
        TestResult::Ok(())
    }
    .await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK)
        .execute(admin)
        .await?;
    result
}

/// A database of its own for one test, cloned from the migrated template; dropped on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestResult<Self> {
        let template = template_name()?;
        let mut admin = admin_conn().await?;
        ensure_template(&mut admin, &template).await?;
        let name = format!(
            "mc_test_{}_{}",
            unix_now(),
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let mut last_err = None;
        for _ in 0..50 {
            match admin
                .batch_execute(&format!(
                    "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                ))
                .await
            {
                Ok(()) => {
                    return Ok(Self {
                        url: format!("{SERVER}/{name}"),
                        name,
                    });
                }
                // The template is briefly "accessed by other users" right after migrating.
                Err(err) => {
                    last_err = Some(err);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(format!("cannot clone the template: {last_err:?}").into())
    }

    pub async fn conn(&self) -> TestResult<AsyncPgConnection> {
        Ok(AsyncPgConnection::establish(&self.url).await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the DROP.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = admin_conn().await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A second service instance sharing a test's database.
pub struct Instance {
    pub base: String,
    pub server: RunningServer,
}

/// A tenant created for a test, with its keys.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: Uuid,
    pub slug: String,
    pub pk: String,
    pub sk: String,
}

/// The running service over its own database.
pub struct TestApp {
    pub server: Option<RunningServer>,
    pub api: Api,
    pub db: TestDb,
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// An HTTP client for one instance of the service.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> TestResult<Self> {
        Ok(Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// Posts a GraphQL request; fails on any 5xx. Returns the JSON body.
    pub async fn gql(&self, key: Option<&str>, query: &str, variables: Value) -> TestResult<Value> {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("user-agent", "missedcall-tests/1.0")
            .json(&json!({"query": query, "variables": variables}));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status();
        assert!(!status.is_server_error(), "server error {status}");
        Ok(response.json().await?)
    }

    pub async fn request_call(&self, key: &str, phone: &str) -> TestResult<Value> {
        self.gql(
            Some(key),
            "mutation($input: RequestCallInput!) { requestCall(input: $input) { sessionId sessionToken \
             status expiresAt callerIdPattern interceptionTimeoutSeconds } }",
            json!({"input": {"phoneNumber": phone}}),
        )
        .await
    }

    pub async fn request_call_with_signature(
        &self,
        key: &str,
        phone: &str,
        signature: Option<&str>,
    ) -> TestResult<Value> {
        self.gql(
            Some(key),
            "mutation($input: RequestCallInput!) { requestCall(input: $input) { sessionId sessionToken status } }",
            json!({"input": {"phoneNumber": phone, "appSignature": signature}}),
        )
        .await
    }

    /// Requests a call and returns (session id, session token), failing on any error.
    pub async fn start_session(&self, key: &str, phone: &str) -> TestResult<(String, String)> {
        let body = self.request_call(key, phone).await?;
        let id = str_at(&body, "/data/requestCall/sessionId")
            .ok_or_else(|| format!("no session: {body}"))?;
        let token = str_at(&body, "/data/requestCall/sessionToken").ok_or("no token")?;
        Ok((id, token))
    }

    pub async fn verify(
        &self,
        key: &str,
        session_id: &str,
        token: &str,
        caller_id: &str,
    ) -> TestResult<Value> {
        self.gql(
            Some(key),
            "mutation($input: VerifyInput!) { verify(input: $input) { verified status attemptsLeft token tokenExpiresAt } }",
            json!({"input": {"sessionId": session_id, "sessionToken": token, "callerId": caller_id}}),
        )
        .await
    }

    pub async fn session_status(
        &self,
        key: &str,
        session_id: &str,
        token: &str,
    ) -> TestResult<Value> {
        self.gql(
            Some(key),
            "query($id: ID!, $token: String!) { sessionStatus(sessionId: $id, sessionToken: $token) { sessionId status at reason } }",
            json!({"id": session_id, "token": token}),
        )
        .await
    }

    /// The caller ID the simulated phone saw for this session.
    pub async fn incoming_caller_id(&self, phone: &str, session_id: &str) -> TestResult<String> {
        for _ in 0..100 {
            let calls: Value = self
                .http
                .get(format!("{}/simulator/calls", self.base))
                .query(&[("to", phone)])
                .send()
                .await?
                .json()
                .await?;
            if let Some(from) = calls.as_array().and_then(|calls| {
                calls
                    .iter()
                    .find(|c| c["sessionId"].as_str() == Some(session_id))
                    .and_then(|c| c["from"].as_str().map(str::to_owned))
            }) {
                return Ok(from);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("no simulated call to {phone} for {session_id}").into())
    }

    pub async fn get_json(&self, path: &str) -> TestResult<(reqwest::StatusCode, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }
}

pub fn test_config(db_url: &str) -> TestResult<Config> {
    test_config_with(db_url, &[])
}

/// The test configuration with some variables overridden.
pub fn test_config_with(db_url: &str, overrides: &[(&str, &str)]) -> TestResult<Config> {
    let vars = [
        ("DATABASE_URL", db_url),
        ("MISSEDCALL_LISTEN", "127.0.0.1:0"),
        ("MISSEDCALL_PUBLIC_URL", ISSUER),
        ("MISSEDCALL_MASTER_KEY", MASTER_KEY),
        ("MISSEDCALL_DATABASE_POOL_SIZE", "8"),
        ("MISSEDCALL_SIMULATOR_RING_DELAY_MS", "20"),
        // Tests drive many requests from one address; the abuse tests set their own limits.
        ("MISSEDCALL_LIMIT_PHONE_PER_HOUR", "100000"),
        ("MISSEDCALL_LIMIT_IP_PER_MINUTE", "100000"),
        ("MISSEDCALL_LIMIT_TENANT_PER_MINUTE", "100000"),
        ("MISSEDCALL_LIMIT_COUNTRY_PER_MINUTE", "100000"),
        ("MISSEDCALL_DAILY_CALL_CAP", "100000"),
        ("MISSEDCALL_LIMIT_VERIFY_IP_PER_MINUTE", "100000"),
        ("MISSEDCALL_PHONE_MAX_FAILED_ATTEMPTS", "100000"),
    ];
    Ok(Config::from_lookup(|name| {
        overrides
            .iter()
            .chain(vars.iter())
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    })?)
}

impl TestApp {
    pub async fn spawn() -> TestResult<Self> {
        let db = TestDb::new().await?;
        let config = test_config(&db.url)?;
        Self::spawn_with(db, config).await
    }

    /// The service with some configuration overridden.
    pub async fn spawn_env(overrides: &[(&str, &str)]) -> TestResult<Self> {
        let db = TestDb::new().await?;
        let config = test_config_with(&db.url, overrides)?;
        Self::spawn_with(db, config).await
    }

    /// Another instance of the service on the same database.
    pub async fn sibling(&self, overrides: &[(&str, &str)]) -> TestResult<Instance> {
        let server = app::spawn(test_config_with(&self.db.url, overrides)?).await?;
        Ok(Instance {
            base: format!("http://{}", server.addr),
            server,
        })
    }

    pub async fn spawn_with(db: TestDb, config: Config) -> TestResult<Self> {
        let server = app::spawn(config).await?;
        let api = Api::new(&format!("http://{}", server.addr))?;
        Ok(Self {
            server: Some(server),
            api,
            db,
        })
    }

    /// Creates a tenant (through the same code as the CLI) with one caller ID in its pool.
    pub async fn tenant(&self, slug: &str) -> TestResult<TestTenant> {
        let tenant = self.tenant_without_pool(slug).await?;
        self.add_pool(&tenant, "+14155550100").await?;
        Ok(tenant)
    }

    pub async fn tenant_without_pool(&self, slug: &str) -> TestResult<TestTenant> {
        let mut conn = self.db.conn().await?;
        let created = tenancy::create_tenant(&mut conn, slug, &format!("{slug} app"), None).await?;
        Ok(TestTenant {
            id: created.tenant.id,
            slug: slug.to_owned(),
            pk: created.publishable_key.key,
            sk: created.secret_key.key,
        })
    }

    pub async fn add_pool(&self, tenant: &TestTenant, pattern: &str) -> TestResult {
        let mut conn = self.db.conn().await?;
        tenancy::add_pool_entry(&mut conn, tenant.id, pattern, "test").await?;
        Ok(())
    }

    pub async fn sql(&self, statement: &str) -> TestResult {
        let mut conn = self.db.conn().await?;
        conn.batch_execute(statement).await?;
        Ok(())
    }

    pub async fn count(&self, query: &str) -> TestResult<i64> {
        let mut conn = self.db.conn().await?;
        let row: Count = diesel::sql_query(query).get_result(&mut conn).await?;
        Ok(row.n)
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

/// A port free right now, for a service whose public URL must be known before it starts.
pub fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn str_at(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> Option<String> {
    str_at(body, "/errors/0/extensions/code")
}

/// Asserts the body is an error with this code, and returns the body for more checks.
#[track_caller]
pub fn assert_code(body: &Value, code: &str) {
    assert_eq!(
        error_code(body).as_deref(),
        Some(code),
        "expected {code}, got {body}"
    );
}
