//! Connections that say whose rows they may touch. Row-level security (see the
//! `row_level_security` migration) lets a connection see a tenant's rows only after it declared
//! that tenant; the pool's connections act as `missedcall_app`, which cannot bypass the policies.
//! Every checkout declares its scope, so nothing is inherited from the connection's last user.

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{DbPool, PooledConn};
use crate::error::{AppError, AppResult};

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
        diesel::sql_query(
            "SELECT set_config('missedcall.tenant_id', $1, false), \
                    set_config('missedcall.system', $2, false)",
        )
        .bind::<Text, _>(tenant)
        .bind::<Text, _>(if system { "on" } else { "off" })
        .execute(&mut conn)
        .await
        .map_err(|err| AppError::Unavailable(format!("database scope: {err}")))?;
        Ok(conn)
    }
}
