//! The binaries as an operator runs them: `missedcall serve` as its own process (stopped with
//! SIGTERM), the admin commands against the same database, `demo` against the running service,
//! and `loadgen` driving it.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{MASTER_KEY, TestDb, TestResult, free_port};
use serde_json::Value;

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    /// A failing test must not leave the service running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn env(db: &TestDb, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("MISSEDCALL_LISTEN", format!("127.0.0.1:{port}")),
        ("MISSEDCALL_MASTER_KEY", MASTER_KEY.to_owned()),
        ("MISSEDCALL_SIMULATOR_RING_DELAY_MS", "0".to_owned()),
        ("MISSEDCALL_DATABASE_POOL_SIZE", "8".to_owned()),
        ("MISSEDCALL_LIMIT_PHONE_PER_HOUR", "100000".to_owned()),
        ("MISSEDCALL_LIMIT_IP_PER_MINUTE", "100000".to_owned()),
        ("MISSEDCALL_LIMIT_TENANT_PER_MINUTE", "100000".to_owned()),
        ("MISSEDCALL_LIMIT_COUNTRY_PER_MINUTE", "100000".to_owned()),
        ("MISSEDCALL_LIMIT_VERIFY_IP_PER_MINUTE", "100000".to_owned()),
        ("MISSEDCALL_DAILY_CALL_CAP", "100000".to_owned()),
        ("MISSEDCALL_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

fn missedcall(db: &TestDb, port: u16, args: &[&str]) -> TestResult<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_missedcall"))
        .args(args)
        .envs(env(db, port))
        .output()?)
}

/// Runs a command that must succeed with `--json`, and returns its output.
fn json(db: &TestDb, port: u16, args: &[&str]) -> TestResult<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    let out = missedcall(db, port, &args)?;
    if !out.status.success() {
        return Err(format!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

async fn serve(db: &TestDb, port: u16) -> TestResult<Service> {
    let child = Command::new(env!("CARGO_BIN_EXE_missedcall"))
        .arg("serve")
        .envs(env(db, port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok(Service { child, base });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("serve did not become ready".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binaries_serve_administer_demo_and_load() -> TestResult {
    let db = TestDb::new().await?;
    let port = free_port()?;
    let mut service = serve(&db, port).await?;

    // Tenants, pools, signatures, countries, keys, cleanup.
    let created = json(
        &db,
        port,
        &["tenant", "create", "--slug", "acme", "--name", "Acme"],
    )?;
    let pk = created["publishableKey"]
        .as_str()
        .ok_or("no key")?
        .to_owned();
    assert!(
        created["secretKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("sk_"))
    );
    let listed = json(&db, port, &["tenant", "list"])?;
    assert!(listed.to_string().contains("acme"), "{listed}");
    json(
        &db,
        port,
        &[
            "pool",
            "add",
            "--tenant",
            "acme",
            "+14155550100",
            "--label",
            "main",
        ],
    )?;
    json(
        &db,
        port,
        &["pool", "add", "--tenant", "acme", "+467012300XX"],
    )?;
    let pool = json(&db, port, &["pool", "list", "--tenant", "acme"])?;
    assert!(pool.to_string().contains("+467012300XX"), "{pool}");
    json(
        &db,
        port,
        &["pool", "reactivate", "--tenant", "acme", "+14155550100"],
    )?;
    json(
        &db,
        port,
        &[
            "signature",
            "add",
            "--tenant",
            "acme",
            "--platform",
            "android",
            "FA+9qCX9VSu",
        ],
    )?;
    json(
        &db,
        port,
        &["country", "allow", "--tenant", "acme", "GB", "SE"],
    )?;
    json(&db, port, &["tenant", "suspend", "--slug", "acme"])?;
    json(&db, port, &["tenant", "reactivate", "--slug", "acme"])?;
    let rotated = json(&db, port, &["keys", "rotate", "--overlap-hours", "1"])?;
    assert!(rotated.to_string().contains("kid"), "{rotated}");
    let cleaned = json(&db, port, &["cleanup"])?;
    assert_eq!(cleaned["ran"], Value::Bool(true), "{cleaned}");
    let out = missedcall(&db, port, &["migrate"])?;
    assert!(out.status.success());
    // The text output too.
    let out = missedcall(&db, port, &["tenant", "list"])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("acme"));

    // Bad input fails clearly, with a non-zero exit and no trace of a panic.
    for args in [
        vec!["pool", "add", "--tenant", "nobody", "+14155550100"],
        vec!["pool", "add", "--tenant", "acme", "not-a-number"],
        vec![
            "signature",
            "add",
            "--tenant",
            "acme",
            "--platform",
            "windows",
            "x",
        ],
        vec!["country", "allow", "--tenant", "acme", "XX"],
        vec!["tenant", "create", "--slug", "acme", "--name", "Again"],
        vec!["tenant", "suspend", "--slug", "nobody"],
    ] {
        let out = missedcall(&db, port, &args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_missedcall"))
        .arg("migrate")
        .envs(env(&db, port))
        .env("MISSEDCALL_DATABASE_POOL_SIZE", "0")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MISSEDCALL_DATABASE_POOL_SIZE"));

    // The demo plays the app against the running service, with the tenant's key and with its own.
    let url = service.base.clone();
    for key in [Some(pk.as_str()), None] {
        let mut args = vec!["demo", "--url", url.as_str(), "--phone", "+447400123456"];
        if let Some(key) = key {
            args.extend(["--key", key]);
        }
        let demo = json(&db, port, &args)?;
        assert_eq!(demo["signatureValid"], Value::Bool(true), "{demo}");
        assert_eq!(
            demo["claims"]["phone_number_verified"],
            Value::Bool(true),
            "{demo}"
        );
    }
    let out = missedcall(
        &db,
        port,
        &["demo", "--url", &url, "--phone", "+447400123457"],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = missedcall(&db, port, &["demo", "--url", "http://127.0.0.1:9"])?;
    assert_eq!(out.status.code(), Some(1));

    // The load generator drives the service, then the raw SQL, and reports both.
    let pid = service.child.id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "flow",
            "--url",
            &url,
            "--database-url",
            &db.url,
            "--concurrency",
            "4",
        ])
        .args([
            "--duration",
            "1",
            "--tenants",
            "2",
            "--pool-size",
            "5",
            "--service-pid",
            &pid,
        ])
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("flows/s") && report.contains("raw"),
        "{report}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "subscribe",
            "--url",
            &url,
            "--database-url",
            &db.url,
            "--subscribers",
            "40",
        ])
        .args([
            "--rate",
            "100",
            "--hold",
            "1",
            "--tenants",
            "1",
            "--service-pid",
            &pid,
        ])
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("40"), "{report}");

    // SIGTERM stops it gracefully.
    let status = Command::new("kill").args(["-TERM", &pid]).status()?;
    assert!(status.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = service.child.try_wait()? {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.ok_or("serve did not stop on SIGTERM")?;
    assert!(exited.success(), "serve exited with {exited}");
    Ok(())
}
