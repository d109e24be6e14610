//! Cleanup: overdue sessions expired, personal data purged and audit rows pruned after each
//! tenant's retention period, safely from several places at once.

mod common;

use common::{TestApp, TestResult, assert_code};
use missedcall::maintenance;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn personal_data_goes_after_the_retention_period() -> TestResult {
    let app = TestApp::spawn().await?;
    let long = app.tenant("long").await?;
    let short = app.tenant("short").await?;
    let body = app
        .gql(
            Some(&short.sk),
            "mutation { updateTenantSettings(input: {retentionDays: 1}) { settings { retentionDays } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        body["data"]["updateTenantSettings"]["settings"]["retentionDays"], 1,
        "{body}"
    );
    for bad in [0, 3651] {
        let body = app
            .gql(
                Some(&short.sk),
                "mutation($d: Int!) { updateTenantSettings(input: {retentionDays: $d}) { id } }",
                json!({"d": bad}),
            )
            .await?;
        assert_code(&body, "INVALID_INPUT");
    }
    let mut ids = Vec::new();
    for (tenant, phone) in [
        (&long, "+447400100001"),
        (&long, "+447400100002"),
        (&short, "+447400100003"),
        (&short, "+447400100004"),
    ] {
        let (id, token) = app.start_session(&tenant.pk, phone).await?;
        // Let the simulated call finish, so no event is written after the ageing below.
        for _ in 0..200 {
            let body = app.session_status(&tenant.pk, &id, &token).await?;
            if body["data"]["sessionStatus"]["status"] == "CALL_ENDED" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        ids.push(id);
    }
    let [old_long, recent_long, old_short, recent_short] =
        <[String; 4]>::try_from(ids).map_err(|_| "four sessions")?;
    // Age the sessions and their audit trails.
    for (id, days) in [(&old_long, 40), (&recent_long, 5), (&old_short, 2)] {
        app.sql(&format!(
            "UPDATE verification_sessions SET created_at = now() - interval '{days} days' WHERE id = '{id}'; \
             UPDATE audit_events SET created_at = now() - interval '{days} days' WHERE session_id = '{id}'"
        ))
        .await?;
    }
    // Two cleanups at once: one does the work, neither fails, nothing is done twice.
    let (a, b) = tokio::join!(
        async {
            let mut conn = app.db.conn().await?;
            TestResult::Ok(maintenance::cleanup(&mut conn).await?)
        },
        async {
            let mut conn = app.db.conn().await?;
            TestResult::Ok(maintenance::cleanup(&mut conn).await?)
        }
    );
    let (a, b) = (a?, b?);
    assert!(a.ran || b.ran);
    assert_eq!(a.sessions_purged + b.sessions_purged, 2, "{a:?} {b:?}");
    assert!(
        a.audit_events_pruned + b.audit_events_pruned >= 4,
        "{a:?} {b:?}"
    );

    let purged = |id: &str| {
        format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE id = '{id}' \
             AND purged_at IS NOT NULL AND client_ip IS NULL AND user_agent IS NULL \
             AND phone_number LIKE '+4474*%' AND phone_number LIKE '%0_'"
        )
    };
    assert_eq!(app.count(&purged(&old_long)).await?, 1);
    assert_eq!(app.count(&purged(&old_short)).await?, 1);
    for id in [&recent_long, &recent_short] {
        let kept = app
            .count(&format!(
                "SELECT count(*) AS n FROM verification_sessions WHERE id = '{id}' \
                 AND purged_at IS NULL AND client_ip IS NOT NULL AND phone_number LIKE '+447400%'"
            ))
            .await?;
        assert_eq!(kept, 1, "a session within its retention period was purged");
    }
    let audit =
        |id: &str| format!("SELECT count(*) AS n FROM audit_events WHERE session_id = '{id}'");
    assert_eq!(app.count(&audit(&old_long)).await?, 0);
    assert_eq!(app.count(&audit(&old_short)).await?, 0);
    assert!(app.count(&audit(&recent_long)).await? > 0);
    assert!(app.count(&audit(&recent_short)).await? > 0);

    // A second run finds nothing left to do.
    let mut conn = app.db.conn().await?;
    let again = maintenance::cleanup(&mut conn).await?;
    assert!(again.ran);
    assert_eq!((again.sessions_purged, again.audit_events_pruned), (0, 0));

    // With no service running to expire them, cleanup expires the sessions that ran out.
    let mut app = app;
    if let Some(server) = app.server.take() {
        server.stop().await;
    }
    app.sql(&format!(
        "UPDATE verification_sessions SET expires_at = now() - interval '1 second' \
         WHERE id IN ('{recent_long}', '{recent_short}')"
    ))
    .await?;
    let report = maintenance::cleanup(&mut conn).await?;
    assert_eq!(report.sessions_expired, 2, "{report:?}");
    let expired = app
        .count(&format!(
            "SELECT count(*) AS n FROM verification_sessions WHERE status = 'EXPIRED' \
             AND id IN ('{recent_long}', '{recent_short}')"
        ))
        .await?;
    assert_eq!(expired, 2);
    assert_eq!(maintenance::cleanup(&mut conn).await?.sessions_expired, 0);
    app.stop().await;
    Ok(())
}
