//! The application: state built once from `Config`, background tasks, and the router.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::approval::ApprovalHooks;
use crate::config::{Config, GatewayKind, MasterKeySource};
use crate::crypto::MasterKey;
use crate::db::{self, scope::Database};
use crate::events::EventHub;
use crate::gateway::breaker::BreakerSettings;
use crate::gateway::failover::FailoverGateway;
use crate::gateway::router::GatewayRouter;
use crate::gateway::simulator::SimulatorGateway;
use crate::gateway::twilio::{TwilioGateway, TwilioSettings};
use crate::gateway::{CallEventReport, Gateway};
use crate::graphql::{self, AppSchema};
use crate::http;
use crate::limits::{LocalLimiter, RateLimiter, RedisLimiter};
use crate::tokens::TokenSigner;
use crate::verification::VerificationService;
use crate::verification::service::Protection;
use crate::webhooks::worker::WebhookWorker;

/// How often each instance re-reads signing keys, so a rotation reaches every instance.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// How often overdue sessions are expired; watchers also expire their own session on time.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
const EXPIRY_SWEEP_BATCH: i64 = 500;

/// Shared state handed to handlers and resolvers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Database,
    pub signer: Arc<TokenSigner>,
    pub verification: Arc<VerificationService>,
    /// Present when the simulator is the configured gateway.
    pub simulator: Option<Arc<SimulatorGateway>>,
    /// Turns true when the server shuts down; subscriptions then close with 1001.
    pub going_away: watch::Receiver<bool>,
    /// Seals tenants' gateway credentials.
    pub master_key: Arc<MasterKey>,
    pub schema: AppSchema,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] db::DbSetupError),
    #[error("master key: {0}")]
    MasterKey(#[from] crate::crypto::CryptoError),
    #[error("signing keys: {0}")]
    Tokens(#[from] crate::tokens::TokenError),
    #[error("redis: {0}")]
    Redis(String),
    #[error("gateway: {0}")]
    Gateway(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The Twilio gateway from the configuration, with failover to a second API base if set.
/// The Twilio client settings this configuration gives, for an account and an API base.
fn twilio_settings(
    config: &Config,
    account_sid: &str,
    auth_token: &str,
    api_base: &str,
) -> TwilioSettings {
    let policy = config.gateway_policy;
    TwilioSettings {
        account_sid: account_sid.to_owned(),
        auth_token: auth_token.to_owned(),
        api_base: api_base.to_owned(),
        status_callback_url: format!("{}/gateways/twilio/status", config.public_url),
        connect_timeout: policy.connect_timeout,
        request_timeout: policy.request_timeout,
        max_attempts: policy.max_attempts,
        backoff_base: policy.backoff_base,
        backoff_cap: policy.backoff_cap,
        breaker: BreakerSettings {
            failure_threshold: policy.breaker_threshold,
            open_for: policy.breaker_open_for,
        },
    }
}

fn twilio_gateway(config: &Config) -> Result<Arc<dyn Gateway>, StartError> {
    let (Some(account_sid), Some(auth_token)) =
        (&config.twilio_account_sid, &config.twilio_auth_token)
    else {
        return Err(StartError::Gateway(
            "MISSEDCALL_GATEWAY=twilio needs MISSEDCALL_TWILIO_ACCOUNT_SID and MISSEDCALL_TWILIO_AUTH_TOKEN"
                .into(),
        ));
    };
    let build = |base: &str| {
        TwilioGateway::new(twilio_settings(config, account_sid, auth_token, base))
            .map(|gateway| Arc::new(gateway) as Arc<dyn Gateway>)
            .map_err(|err| StartError::Gateway(err.to_string()))
    };
    let primary = build(&config.twilio_api_base)?;
    Ok(match &config.twilio_failover_api_base {
        Some(base) => Arc::new(FailoverGateway::new(primary, build(base)?)),
        None => primary,
    })
}

/// Loads the master key from the environment or the local key file.
pub fn load_master_key(config: &Config) -> Result<MasterKey, StartError> {
    match &config.master_key {
        MasterKeySource::Hex(hex) => Ok(MasterKey::from_hex(hex)?),
        MasterKeySource::File(path) => {
            let (key, created) = MasterKey::load_or_create_file(path)?;
            if created {
                tracing::warn!(
                    path = %path.display(),
                    "created a local master key file; production must set MISSEDCALL_MASTER_KEY"
                );
            } else {
                tracing::warn!(
                    path = %path.display(),
                    "using the local master key file; production must set MISSEDCALL_MASTER_KEY"
                );
            }
            Ok(key)
        }
    }
}

/// Creates the database when missing and applies pending migrations.
pub async fn prepare_database(config: &Config) -> Result<(), StartError> {
    if db::create_database_if_missing(&config.database_url).await? {
        tracing::info!(database = %db::mask_url(&config.database_url), "created database");
    }
    let applied = db::run_migrations(&config.database_url).await?;
    if applied > 0 {
        tracing::info!(applied, "applied migrations");
    }
    Ok(())
}

/// A built application: its state, its router and its background tasks.
pub struct App {
    pub state: AppState,
    pub router: Router,
    tasks: Vec<JoinHandle<()>>,
    /// Sends webhooks (unless this instance leaves that to others); flushed, not aborted, on
    /// shutdown.
    webhook_worker: Option<JoinHandle<()>>,
    /// Tells long-lived connections (subscriptions) that the server is going away.
    going_away: watch::Sender<bool>,
}

impl App {
    /// Prepares the database and builds everything the service needs.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let config = Arc::new(config);
        crate::metrics::install();
        let master_key = load_master_key(&config)?;
        prepare_database(&config).await?;
        let database =
            Database::new(db::build_pool(&config.database_url, config.database_pool_size).await?);
        let signer = {
            let mut conn = database
                .system()
                .await
                .map_err(|e| db::DbSetupError::Pool(e.to_string()))?;
            Arc::new(
                TokenSigner::load_or_init(&mut conn, &master_key, config.public_url.clone())
                    .await?,
            )
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (gateway, simulator): (Arc<dyn Gateway>, _) = match config.gateway {
            GatewayKind::Simulator => {
                let simulator = Arc::new(SimulatorGateway::new(
                    events_tx,
                    config.simulator_ring_delay,
                ));
                (simulator.clone(), Some(simulator))
            }
            GatewayKind::Twilio => (twilio_gateway(&config)?, None),
        };
        let events = match &config.redis_url {
            Some(url) => EventHub::with_redis(url, &config.redis_prefix)
                .await
                .map_err(|err| StartError::Redis(err.to_string()))?,
            None => EventHub::in_process(),
        };
        let gateways = Arc::new(GatewayRouter::new(
            gateway,
            twilio_settings(&config, "", "", &config.twilio_api_base),
            master_key.clone(),
        ));
        let limiter = match &config.redis_url {
            Some(url) => RateLimiter::Redis(
                RedisLimiter::new(url).map_err(|err| StartError::Redis(err.to_string()))?,
            ),
            None => RateLimiter::Local(LocalLimiter::default()),
        };
        let verification = Arc::new(VerificationService::new(
            database.clone(),
            gateways,
            signer.clone(),
            events.clone(),
            Protection {
                limiter: Arc::new(limiter),
                policy: config.limits.clone(),
                blocked_prefixes: config.blocked_prefixes.clone(),
            },
            Arc::new(
                ApprovalHooks::new(master_key.clone(), config.approval_breaker)
                    .map_err(|err| StartError::Gateway(err.to_string()))?,
            ),
        ));
        let (going_away, going_away_rx) = watch::channel(false);
        let mut state = AppState {
            config: config.clone(),
            db: database.clone(),
            signer: signer.clone(),
            verification: verification.clone(),
            simulator,
            going_away: going_away_rx,
            master_key: Arc::new(master_key.clone()),
            schema: graphql::build_schema(None),
        };
        state.schema = graphql::build_schema(Some(state.clone()));
        let webhook_worker = if config.webhooks.send {
            let worker = WebhookWorker::new(
                database.clone(),
                master_key.clone(),
                config.webhooks.clone(),
            )
            .map_err(|err| StartError::Gateway(err.to_string()))?;
            Some(tokio::spawn(worker.run(going_away.subscribe())))
        } else {
            None
        };
        let tasks = vec![
            tokio::spawn(expire_overdue_sessions(verification.clone())),
            tokio::spawn(drain_call_events(verification, events_rx)),
            tokio::spawn(reload_signing_keys(database.clone(), signer, master_key)),
            tokio::spawn(clean_up_periodically(database, config.cleanup_interval)),
        ];
        let router = http::router(state.clone());
        Ok(Self {
            state,
            router,
            tasks,
            webhook_worker,
            going_away,
        })
    }

    /// Serves on `listener` until `shutdown` turns true; in-flight requests finish first.
    pub async fn serve(
        self,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Small GraphQL and WebSocket messages must not wait for Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        let going_away = self.going_away;
        let result = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        break;
                    }
                }
                // Requests in flight finish; subscriptions are told to go.
                let _ = going_away.send(true);
            })
            .await;
        for task in self.tasks {
            task.abort();
        }
        // The going-away signal also stops the webhook worker, which sends what is due first.
        if let Some(worker) = self.webhook_worker {
            let _ = worker.await;
        }
        result
    }
}

/// Binds `addr` (port 0 picks a free port) and serves in the background.
pub async fn spawn(config: Config) -> Result<RunningServer, StartError> {
    let addr = config.listen;
    let app = App::build(config).await?;
    let state = app.state.clone();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let handle = tokio::spawn(async move {
        if let Err(err) = app.serve(listener, shutdown_rx).await {
            tracing::error!(error = %err, "server stopped with an error");
        }
    });
    Ok(RunningServer {
        addr: local_addr,
        state,
        shutdown,
        handle,
    })
}

/// A server running in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.handle.await;
    }
}

async fn drain_call_events(
    service: Arc<VerificationService>,
    mut events: mpsc::UnboundedReceiver<CallEventReport>,
) {
    while let Some(report) = events.recv().await {
        if let Err(err) = service.apply_call_event(&report).await {
            tracing::error!(error = %err, call = %report.call_id, "could not apply a call event");
        }
    }
}

/// Expires sessions nobody touched by their expiry, so their watchers hear `EXPIRED` in time.
async fn expire_overdue_sessions(service: Arc<VerificationService>) {
    let mut interval = tokio::time::interval(EXPIRY_SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        loop {
            match service.expire_overdue(EXPIRY_SWEEP_BATCH).await {
                Ok(n) if n as i64 == EXPIRY_SWEEP_BATCH => continue,
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "could not expire overdue sessions");
                    break;
                }
            }
        }
    }
}

async fn clean_up_periodically(db: Database, every: Duration) {
    let mut interval = tokio::time::interval(every);
    loop {
        interval.tick().await;
        let cleaned = match db.system().await {
            Ok(mut conn) => crate::maintenance::cleanup(&mut conn)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match cleaned {
            Ok(report)
                if report.sessions_expired
                    + report.sessions_purged
                    + report.audit_events_pruned
                    + report.webhook_deliveries_pruned
                    > 0 =>
            {
                tracing::info!(
                    sessions_expired = report.sessions_expired,
                    sessions_purged = report.sessions_purged,
                    audit_events_pruned = report.audit_events_pruned,
                    webhook_deliveries_pruned = report.webhook_deliveries_pruned,
                    "cleaned up"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cleanup failed"),
        }
    }
}

async fn reload_signing_keys(db: Database, signer: Arc<TokenSigner>, master_key: MasterKey) {
    let mut interval = tokio::time::interval(KEY_RELOAD_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        let reloaded = match db.system().await {
            Ok(mut conn) => signer
                .reload(&mut conn, &master_key)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = reloaded {
            tracing::warn!(error = %err, "could not reload signing keys");
        }
    }
}
