//! A PostgreSQL server of a test's own: `initdb` in a temporary folder, its own port, stopped
//! and started again by the test. As root, the server runs as the `postgres` user (it refuses
//! root).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::TestResult;

pub struct OwnPostgres {
    pub port: u16,
    dir: PathBuf,
    as_root: bool,
}

/// The folder that holds `initdb`, `pg_ctl` and `postgres`.
fn bin_dir() -> TestResult<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    if dir.join("pg_ctl").exists() {
        return Ok(dir);
    }
    // Debian keeps the server's tools beside the version, not in pg_config's folder.
    for entry in std::fs::read_dir("/usr/lib/postgresql")? {
        let candidate = entry?.path().join("bin");
        if candidate.join("pg_ctl").exists() {
            return Ok(candidate);
        }
    }
    Err("no pg_ctl found".into())
}

impl OwnPostgres {
    pub fn start() -> TestResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("mc-pg-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let uid = Command::new("id").arg("-u").output()?;
        let as_root = String::from_utf8(uid.stdout)?.trim() == "0";
        let pg = Self { port, dir, as_root };
        if as_root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()?;
            if !status.success() {
                return Err("cannot hand the folder to postgres".into());
            }
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        )?;
        pg.start_server()?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> TestResult {
        let program = bin_dir()?.join(tool);
        let mut command = if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let status = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{tool} {args:?} failed: {status}").into())
        }
    }

    /// The owner's URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn start_server(&self) -> TestResult {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server the way an operator's restart does: connections are cut at once.
    pub fn stop_server(&self) -> TestResult {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
    }

    pub fn wait_until_up(&self) -> TestResult {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err("postgres did not come up".into())
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
