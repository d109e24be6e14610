//! Every migration's `down.sql` reverses its `up.sql`, and migrating twice is a no-op.

mod common;

use common::{Count, SERVER, TestResult};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use diesel_migrations::MigrationHarness;

const TABLES: &str = "SELECT count(*) AS n FROM information_schema.tables \
                      WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'";

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_revert_and_reapply() -> TestResult {
    let name = format!("mc_mig_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{SERVER}/{name}");
    assert!(missedcall::db::create_database_if_missing(&url).await?);
    assert!(!missedcall::db::create_database_if_missing(&url).await?);
    let applied = missedcall::db::run_migrations(&url).await?;
    assert!(applied >= 1);
    assert_eq!(missedcall::db::run_migrations(&url).await?, 0);

    let mut conn = AsyncPgConnection::establish(&url).await?;
    let tables: Count = diesel::sql_query(TABLES).get_result(&mut conn).await?;
    assert_eq!(tables.n, 11);

    let mut harness = AsyncMigrationHarness::new(conn);
    harness
        .revert_all_migrations(missedcall::db::MIGRATIONS)
        .map_err(|e| e.to_string())?;
    let mut conn = harness.into_inner();
    let tables: Count = diesel::sql_query(TABLES).get_result(&mut conn).await?;
    assert_eq!(tables.n, 0, "down.sql left tables behind");
    drop(conn);

    assert_eq!(missedcall::db::run_migrations(&url).await?, applied);
    let mut admin = AsyncPgConnection::establish(&format!("{SERVER}/postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}
