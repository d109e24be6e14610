//! Connections that say whose rows they may touch. Row-level security (see the
//! `row_level_security` migration) lets a connection see a tenant's rows only after it declared
//! that tenant; the pool's connections act as `missedcall_app`, which cannot bypass the policies.
//! Every checkout declares its scope, so nothing is inherited from the connection's last user.

use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use diesel::QueryResult;

use super::{DbConn, DbPool, PooledConn};
use crate::error::{AppError, AppResult};

diesel::define_sql_function! {
    /// Postgres's `set_config(setting, value, is_local)`.
    fn set_config(setting: Text, value: Text, is_local: Bool) -> Text;
}

/// The role the service's pooled connections act as.
pub const APP_ROLE: &str = "missedcall_app";

/// The connection pool, handing out scoped connections only.
#[derive(Clone)]
pub struct Database {
    pool: DbPool,
}

impl Database {
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// A connection that sees only this tenant's rows.
    pub async fn for_tenant(&self, tenant_id: Uuid) -> AppResult<PooledConn> {
        self.checkout(&tenant_id.to_string(), false).await
    }

    /// A connection for the few tasks that work across tenants before one is known: key lookup,
    /// gateway callbacks, expiry, operator actions, signing keys.
    pub async fn system(&self) -> AppResult<PooledConn> {
        self.checkout("", true).await
    }

    /// Connections open and idle now.
    pub fn state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    async fn checkout(&self, tenant: &str, system: bool) -> AppResult<PooledConn> {
        let mut conn = self.pool.get_owned().await?;
        declare(&mut conn, tenant, system)
            .await
            .map_err(|err| AppError::Unavailable(format!("database scope: {err}")))?;
        Ok(conn)
    }
}

/// Declares whose rows the connection may touch: a tenant's (`tenant` is its id), or every
/// tenant's (`system`). Built with the query builder, so each connection prepares it once.
pub async fn declare(conn: &mut DbConn, tenant: &str, system: bool) -> QueryResult<()> {
    diesel::select((
        set_config("missedcall.tenant_id", tenant, false),
        set_config(
            "missedcall.system",
            if system { "on" } else { "off" },
            false,
        ),
    ))
    .execute(conn)
    .await
    .map(|_| ())
}
