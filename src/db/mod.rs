//! Postgres access: pool, database creation, embedded migrations, generated schema, and one
//! module per table.

pub mod allowed_countries;
pub mod api_keys;
pub mod app_signatures;
pub mod audit_events;
pub mod pool_numbers;
pub mod schema;
pub mod scope;
pub mod sessions;
pub mod tenants;
pub mod test_numbers;
pub mod webhooks;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// A pooled async Postgres connection.
pub type DbConn = diesel_async::AsyncPgConnection;
/// The connection pool shared by the service.
pub type DbPool = diesel_async::pooled_connection::bb8::Pool<DbConn>;
/// A connection taken from the pool, owned (returned to the pool when dropped).
pub type PooledConn = diesel_async::pooled_connection::bb8::PooledConnection<'static, DbConn>;
/// Error when a connection cannot be taken from the pool.
pub type PoolError = diesel_async::pooled_connection::bb8::RunError;

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating, so instances starting together migrate once.
const MIGRATION_LOCK_KEY: i64 = 0x6d69_7373_6564_0001;

/// Errors of database set-up (creation, migration, pool building).
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("database URL `{0}` has no database name")]
    NoDatabaseName(String),
    #[error("database name `{0}` must be letters, digits and underscores")]
    BadDatabaseName(String),
    #[error("cannot connect to Postgres: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
}

/// Splits `postgres://…/name?opts` into the URL of the `postgres` maintenance database and `name`.
fn split_database_url(url: &str) -> Result<(String, String), DbSetupError> {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let Some((server, name)) = without_query.rsplit_once('/') else {
        return Err(DbSetupError::NoDatabaseName(mask_url(url)));
    };
    if name.is_empty() || server.ends_with('/') {
        return Err(DbSetupError::NoDatabaseName(mask_url(url)));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbSetupError::BadDatabaseName(name.to_owned()));
    }
    let admin = match query {
        Some(query) => format!("{server}/postgres?{query}"),
        None => format!("{server}/postgres"),
    };
    Ok((admin, name.to_owned()))
}

/// The URL with any password replaced, for messages.
pub fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn create_database_if_missing(url: &str) -> Result<bool, DbSetupError> {
    let (admin_url, name) = split_database_url(url)?;
    let mut conn = DbConn::establish(&admin_url).await?;
    let existing: Count =
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await?;
    if existing.n > 0 {
        return Ok(false);
    }
    // The name was checked to be [A-Za-z0-9_]+, so quoting it is enough.
    match conn
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
    {
        Ok(()) => Ok(true),
        // Another instance created it between our check and our CREATE.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(false)
        }
        Err(err) => Err(err.into()),
    }
}

/// Applies pending embedded migrations; returns how many ran. Needs the multi-thread runtime.
pub async fn run_migrations(url: &str) -> Result<usize, DbSetupError> {
    let mut conn = DbConn::establish(url).await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.len())
        .map_err(|err| DbSetupError::Migration(err.to_string()));
    let mut conn = harness.into_inner();
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await?;
    applied
}

/// The same database URL logging in as `user`, without the owner's password.
pub fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}@{host}{tail}")
}

/// Builds the connection pool.
pub async fn build_pool(url: &str, max_size: u32) -> Result<DbPool, DbSetupError> {
    let manager = AsyncDieselConnectionManager::<DbConn>::new(url);
    DbPool::builder()
        .max_size(max_size)
        // Fail a request quickly when Postgres is gone instead of queueing it for 30 s.
        .connection_timeout(std::time::Duration::from_secs(5))
        // Recycle connections so a Postgres restart or failover is healed by itself.
        .max_lifetime(Some(std::time::Duration::from_secs(30 * 60)))
        .build(manager)
        .await
        .map_err(|err| DbSetupError::Pool(err.to_string()))
}

/// True when a diesel error means Postgres went away (restart, failover, cut connection) rather
/// than the statement being wrong: the request may simply be tried again.
pub fn is_connection_lost(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    const GONE: [&str; 8] = [
        "terminating connection",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        "server closed the connection",
        "connection closed",
        "error communicating with the server",
        "broken pipe",
    ];
    match err {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            GONE.iter().any(|gone| message.contains(gone))
        }
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

/// True when a diesel error is a unique-constraint violation (a client conflict, not a fault).
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_database_url() -> Result<(), DbSetupError> {
        let (admin, name) = split_database_url("postgres://u:p@h:5432/missedcall?sslmode=disable")?;
        assert_eq!(admin, "postgres://u:p@h:5432/postgres?sslmode=disable");
        assert_eq!(name, "missedcall");
        assert!(split_database_url("postgres://h:5432/").is_err());
        assert!(split_database_url("postgres://h/x;drop").is_err());
        Ok(())
    }

    #[test]
    fn masks_password() {
        assert_eq!(
            mask_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn the_app_url_swaps_the_user_only() {
        assert_eq!(
            with_user(
                "postgres://postgres:secret@db:5432/missedcall?sslmode=require",
                "app"
            ),
            "postgres://app@db:5432/missedcall?sslmode=require"
        );
        assert_eq!(
            with_user("postgres://127.0.0.1/mc", "app"),
            "postgres://app@127.0.0.1/mc"
        );
        assert_eq!(with_user("postgres://u@h", "app"), "postgres://app@h");
    }
}
