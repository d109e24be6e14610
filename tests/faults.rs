//! Postgres restarted under load: while it is gone the service answers with a clear error
//! code, afterwards it recovers by itself, and no session is lost, duplicated or half-verified.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::own_postgres::OwnPostgres;
use common::{Api, TestResult, error_code, str_at, test_config_with};
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use missedcall::app;
use serde_json::json;
use tokio::sync::Mutex;

/// What a virtual phone was told about one session.
#[derive(Debug, Default, Clone)]
struct Told {
    verified: bool,
}

#[derive(Default)]
struct Record {
    sessions: HashMap<String, Told>,
    /// Error codes seen, by phase.
    codes: BTreeMap<String, usize>,
    /// Answers with a status other than 200.
    bad_statuses: Vec<u16>,
    flows_after_restart: usize,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Bool)]
    consistent: bool,
}

/// Posts one GraphQL request; records a non-200 answer instead of failing.
async fn post(
    api: &Api,
    key: &str,
    query: &str,
    variables: serde_json::Value,
    record: &Mutex<Record>,
) -> Option<serde_json::Value> {
    let response = api
        .http
        .post(format!("{}/graphql", api.base))
        .bearer_auth(key)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    if status != 200 {
        record.lock().await.bad_statuses.push(status);
    }
    response.json().await.ok()
}

async fn flow(
    api: &Api,
    key: &str,
    phone: &str,
    record: &Mutex<Record>,
    restarted: &AtomicBool,
) -> Option<()> {
    let body = post(
        api,
        key,
        "mutation($p: String!) { requestCall(input: {phoneNumber: $p}) { sessionId sessionToken } }",
        json!({"p": phone}),
        record,
    )
    .await?;
    let Some(session) = str_at(&body, "/data/requestCall/sessionId") else {
        let code = error_code(&body).unwrap_or_else(|| "NO_CODE".into());
        *record.lock().await.codes.entry(code).or_default() += 1;
        return None;
    };
    let token = str_at(&body, "/data/requestCall/sessionToken")?;
    record
        .lock()
        .await
        .sessions
        .insert(session.clone(), Told::default());
    let caller_id = api.incoming_caller_id(phone, &session).await.ok()?;
    // A verify that failed for the outage is tried again, as an app would.
    for _ in 0..50 {
        let body = post(
            api,
            key,
            "mutation($i: VerifyInput!) { verify(input: $i) { verified } }",
            json!({"i": {"sessionId": session, "sessionToken": token, "callerId": caller_id}}),
            record,
        )
        .await?;
        if body["data"]["verify"]["verified"] == json!(true) {
            let mut record = record.lock().await;
            if let Some(told) = record.sessions.get_mut(&session) {
                told.verified = true;
            }
            if AtomicBool::load(restarted, Ordering::SeqCst) {
                record.flows_after_restart += 1;
            }
            return Some(());
        }
        let code = error_code(&body).unwrap_or_else(|| "NO_CODE".into());
        *record.lock().await.codes.entry(code.clone()).or_default() += 1;
        if code != "SERVICE_UNAVAILABLE" {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_load_loses_nothing() -> TestResult {
    let pg = OwnPostgres::start()?;
    let url = pg.url("missedcall_fault");
    let config = test_config_with(&url, &[("MISSEDCALL_DATABASE_POOL_SIZE", "4")])?;
    let server = app::spawn(config).await?;
    let api = Arc::new(Api::new(&format!("http://{}", server.addr))?);
    let tenant = {
        let mut conn = AsyncPgConnection::establish(&url).await?;
        let created =
            missedcall::tenancy::create_tenant(&mut conn, "faults", "Faults", None).await?;
        missedcall::tenancy::add_pool_entry(&mut conn, created.tenant.id, "+14155550100", "t")
            .await?;
        created.publishable_key.key
    };

    let record = Arc::new(Mutex::new(Record::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let mut phones = Vec::new();
    for phone in 0..6 {
        let (api, key, record, stop, restarted) = (
            api.clone(),
            tenant.clone(),
            record.clone(),
            stop.clone(),
            restarted.clone(),
        );
        phones.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !AtomicBool::load(&stop, Ordering::SeqCst) {
                n += 1;
                let number = format!("+4474005{phone:02}{:03}", n % 1000);
                if flow(&api, &key, &number, &record, &restarted)
                    .await
                    .is_none()
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = record.lock().await.sessions.len();
    assert!(before > 0, "no flow completed before the restart");
    pg.stop_server()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_server()?;
    pg.wait_until_up()?;
    restarted.store(true, Ordering::SeqCst);
    // Recovery is the service's own doing: the test only waits for flows to complete again.
    for _ in 0..200 {
        if record.lock().await.flows_after_restart >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for phone in phones {
        phone.await?;
    }
    server.stop().await;

    let record = record.lock().await;
    assert!(
        record.flows_after_restart >= 10,
        "the service did not recover: {} flows after the restart",
        record.flows_after_restart
    );
    assert!(
        record.bad_statuses.is_empty(),
        "non-200 answers: {:?}",
        record.bad_statuses
    );
    let unclear: Vec<_> = record
        .codes
        .keys()
        .filter(|code| code.as_str() != "SERVICE_UNAVAILABLE")
        .collect();
    assert!(
        unclear.is_empty(),
        "unclear answers during the outage: {:?}",
        record.codes
    );
    assert!(
        record
            .codes
            .get("SERVICE_UNAVAILABLE")
            .copied()
            .unwrap_or(0)
            > 0,
        "the outage was never seen"
    );

    // Every session a phone was given exists once, and what it was told is what is stored.
    use diesel_async::RunQueryDsl;
    let mut conn = AsyncPgConnection::establish(&url).await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT id::text AS id, status, \
           (status <> 'VERIFIED' OR verified_at IS NOT NULL) AND attempts <= max_attempts AS consistent \
         FROM verification_sessions",
    )
    .load(&mut conn)
    .await?;
    let stored: HashMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    assert_eq!(stored.len(), rows.len());
    for (session, told) in &record.sessions {
        let row = stored
            .get(session.as_str())
            .ok_or_else(|| format!("session {session} was lost"))?;
        assert!(row.consistent, "session {session} is half-written");
        if told.verified {
            assert_eq!(
                row.status, "VERIFIED",
                "session {session} was told verified"
            );
        }
    }
    for row in &rows {
        assert!(row.consistent, "session {} is half-written", row.id);
    }
    Ok(())
}
