//! The command line: `serve`, `migrate`, `tenant`, `pool`, `signature`, `country`, `keys`, `demo`.

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::app::{self, StartError};
use crate::config::{Config, ConfigError};
use crate::db::{self, DbConn, pool_numbers};
use crate::error::AppError;
use crate::{admin, demo, maintenance, tenancy, tokens};

/// missedcall: phone-number verification by flash call.
#[derive(Debug, Parser)]
#[command(name = "missedcall", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (creates and migrates the database first).
    Serve,
    /// Create the database when missing and apply pending migrations.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's caller-ID pool.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Manage a tenant's app signatures.
    #[command(subcommand)]
    Signature(SignatureCommand),
    /// Manage a tenant's allowed destination countries.
    #[command(subcommand)]
    Country(CountryCommand),
    /// Manage JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Expire overdue sessions, purge phone numbers and addresses past each tenant's retention
    /// period, and prune old audit rows and webhook deliveries (serve does this every hour too).
    Cleanup {
        #[command(flatten)]
        output: Output,
    },
    /// Run the whole flow against a running local service, as a mobile app would.
    Demo(demo::DemoArgs),
}

/// `tenant …`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its id and first keys (shown once).
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// The `aud` of the tenant's tokens (default: the slug).
        #[arg(long)]
        audience: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List every tenant.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Refuse every key of a tenant from now on.
    Suspend {
        #[arg(long)]
        slug: String,
        #[command(flatten)]
        output: Output,
    },
    /// Let a suspended tenant in again.
    Reactivate {
        #[arg(long)]
        slug: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `pool …`
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Add a caller ID (+14155550100) or a range whose last digits are X (+467012300XX).
    Add {
        #[arg(long)]
        tenant: String,
        pattern: String,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        output: Output,
    },
    /// Put a deactivated or cooling-down caller ID back into service.
    Reactivate {
        #[arg(long)]
        tenant: String,
        pattern: String,
        #[command(flatten)]
        output: Output,
    },
    /// List the tenant's caller IDs with their usage and health.
    List {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `signature …`
#[derive(Debug, Subcommand)]
pub enum SignatureCommand {
    /// Register an app signature (Android app hash or iOS bundle id).
    Add {
        #[arg(long)]
        tenant: String,
        /// android or ios
        #[arg(long)]
        platform: String,
        signature: String,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `country …`
#[derive(Debug, Subcommand)]
pub enum CountryCommand {
    /// Allow destination countries (ISO 3166 alpha-2); once any is listed, others are refused.
    Allow {
        #[arg(long)]
        tenant: String,
        #[arg(required = true)]
        codes: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Start signing with a new key; the old one stays published for the overlap.
    Rotate {
        /// Hours the old key stays in the JWKS.
        #[arg(long, default_value_t = 24)]
        overlap_hours: u32,
        #[command(flatten)]
        output: Output,
    },
}

/// `--json`: print machine-readable output.
#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{}: {}", .0.code(), .0.client_message_or_detail())]
    App(#[from] AppError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl AppError {
    fn client_message_or_detail(&self) -> String {
        // The operator at the terminal may see internal detail.
        self.to_string()
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, config: Config) -> Result<(), CliError> {
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            app::prepare_database(&config).await?;
            println!("database is migrated");
            Ok(())
        }
        Command::Tenant(TenantCommand::Create {
            slug,
            name,
            audience,
            output,
        }) => {
            let mut conn = connect(&config).await?;
            let created =
                tenancy::create_tenant(&mut conn, &slug, &name, audience.as_deref()).await?;
            print(
                output,
                json!({
                    "tenantId": created.tenant.id,
                    "slug": created.tenant.slug,
                    "name": created.tenant.name,
                    "audience": created.tenant.jwt_audience,
                    "publishableKey": created.publishable_key.key,
                    "secretKey": created.secret_key.key,
                }),
                || {
                    format!(
                        "created tenant {} ({})\npublishable key: {}\nsecret key:      {}\n\
                         (the keys are shown once; store them now)",
                        created.tenant.slug,
                        created.tenant.id,
                        created.publishable_key.key,
                        created.secret_key.key
                    )
                },
            );
            Ok(())
        }
        Command::Cleanup { output } => {
            let mut conn = connect(&config).await?;
            let report = maintenance::cleanup(&mut conn)
                .await
                .map_err(AppError::from)?;
            print(
                output,
                json!({"ran": report.ran, "sessionsExpired": report.sessions_expired,
                       "sessionsPurged": report.sessions_purged,
                       "auditEventsPruned": report.audit_events_pruned,
                       "webhookDeliveriesPruned": report.webhook_deliveries_pruned}),
                || {
                    if report.ran {
                        format!(
                            "expired {} sessions, purged {}, pruned {} audit events and {} webhook deliveries",
                            report.sessions_expired,
                            report.sessions_purged,
                            report.audit_events_pruned,
                            report.webhook_deliveries_pruned
                        )
                    } else {
                        "another instance is cleaning up; nothing done".to_owned()
                    }
                },
            );
            Ok(())
        }
        Command::Tenant(TenantCommand::List { output }) => {
            let mut conn = connect(&config).await?;
            let tenants = admin::operator::list(&mut conn).await?;
            let rows: Vec<_> = tenants
                .iter()
                .map(|t| json!({"id": t.id, "slug": t.slug, "name": t.name, "status": t.status}))
                .collect();
            print(output, json!(rows), || {
                tenants
                    .iter()
                    .map(|t| format!("{:<24} {:<10} {}", t.slug, t.status, t.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Command::Tenant(TenantCommand::Suspend { slug, output }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &slug).await?;
            let tenant = admin::operator::suspend(&mut conn, tenant.id).await?;
            print(
                output,
                json!({"slug": tenant.slug, "status": tenant.status}),
                || format!("{} is suspended: its keys are refused", tenant.slug),
            );
            Ok(())
        }
        Command::Tenant(TenantCommand::Reactivate { slug, output }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &slug).await?;
            let tenant = admin::operator::reactivate(&mut conn, tenant.id).await?;
            print(
                output,
                json!({"slug": tenant.slug, "status": tenant.status}),
                || format!("{} is active again", tenant.slug),
            );
            Ok(())
        }
        Command::Pool(PoolCommand::Add {
            tenant,
            pattern,
            label,
            output,
        }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &tenant).await?;
            let entry = tenancy::add_pool_entry(&mut conn, tenant.id, &pattern, &label).await?;
            print(
                output,
                json!({"id": entry.id, "pattern": entry.pattern, "country": entry.country,
                       "randomDigits": entry.random_digits}),
                || {
                    format!(
                        "added {} ({}) to the pool of {}",
                        entry.pattern, entry.country, tenant.slug
                    )
                },
            );
            Ok(())
        }
        Command::Pool(PoolCommand::Reactivate {
            tenant,
            pattern,
            output,
        }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &tenant).await?;
            let entry = pool_numbers::reactivate(&mut conn, tenant.id, &pattern)
                .await
                .map_err(AppError::from)?
                .ok_or(AppError::NotFound("pool number"))?;
            print(
                output,
                json!({"id": entry.id, "pattern": entry.pattern, "active": true}),
                || format!("{} is back in the pool of {}", entry.pattern, tenant.slug),
            );
            Ok(())
        }
        Command::Pool(PoolCommand::List { tenant, output }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &tenant).await?;
            let entries = pool_numbers::list(&mut conn, tenant.id)
                .await
                .map_err(AppError::from)?;
            let now = chrono::Utc::now();
            let health = |entry: &pool_numbers::PoolNumber| {
                if !entry.active {
                    "deactivated"
                } else if entry.cooldown_until.is_some_and(|until| until > now) {
                    "cooling down"
                } else {
                    "ok"
                }
            };
            let rows: Vec<_> = entries
                .iter()
                .map(|e| {
                    json!({"id": e.id, "pattern": e.pattern, "country": e.country,
                           "label": e.label, "active": e.active, "health": health(e),
                           "callCount": e.call_count, "failureCount": e.failure_count,
                           "consecutiveFailures": e.consecutive_failures,
                           "cooldownUntil": e.cooldown_until, "lastUsedAt": e.last_used_at})
                })
                .collect();
            print(output, json!(rows), || {
                let mut text = format!(
                    "{:<18} {:<7} {:<12} {:>8} {:>8}  label",
                    "caller ID", "country", "health", "calls", "failures"
                );
                for e in &entries {
                    text.push_str(&format!(
                        "\n{:<18} {:<7} {:<12} {:>8} {:>8}  {}",
                        e.pattern,
                        e.country,
                        health(e),
                        e.call_count,
                        e.failure_count,
                        e.label
                    ));
                }
                text
            });
            Ok(())
        }
        Command::Signature(SignatureCommand::Add {
            tenant,
            platform,
            signature,
            label,
            output,
        }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &tenant).await?;
            let added =
                tenancy::add_app_signature(&mut conn, tenant.id, &platform, &signature, &label)
                    .await?;
            print(
                output,
                json!({"id": added.id, "platform": added.platform, "signature": added.signature}),
                || {
                    format!(
                        "added {} signature {} to {}",
                        added.platform, added.signature, tenant.slug
                    )
                },
            );
            Ok(())
        }
        Command::Country(CountryCommand::Allow {
            tenant,
            codes,
            output,
        }) => {
            let mut conn = connect(&config).await?;
            let tenant = tenancy::tenant_by_slug(&mut conn, &tenant).await?;
            let allowed = tenancy::allow_countries(&mut conn, tenant.id, &codes).await?;
            print(output, json!({"allowedCountries": allowed}), || {
                format!("{} now allows: {}", tenant.slug, allowed.join(", "))
            });
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate {
            overlap_hours,
            output,
        }) => {
            let master_key = app::load_master_key(&config)?;
            let mut conn = connect(&config).await?;
            let overlap = chrono::Duration::hours(i64::from(overlap_hours));
            let kid = tokens::rotate(&mut conn, &master_key, overlap)
                .await
                .map_err(AppError::from)?;
            print(
                output,
                json!({"kid": kid, "overlapHours": overlap_hours}),
                || {
                    format!(
                        "now signing with key {kid}; older keys stay published for {overlap_hours} h"
                    )
                },
            );
            Ok(())
        }
        Command::Demo(args) => Ok(demo::run(args, &config).await?),
    }
}

async fn serve(config: Config) -> Result<(), CliError> {
    let listen = config.listen;
    let app = app::App::build(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    tracing::info!(%listen, "missedcall is serving");
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    });
    app.serve(listener, shutdown_rx).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Prepares the database and opens one connection for an administrative command.
async fn connect(config: &Config) -> Result<DbConn, CliError> {
    use diesel_async::AsyncConnection;
    app::prepare_database(config).await?;
    DbConn::establish(&config.database_url)
        .await
        .map_err(|err| CliError::Start(StartError::Database(db::DbSetupError::Connect(err))))
}

fn print(output: Output, value: serde_json::Value, text: impl FnOnce() -> String) {
    if output.json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}
