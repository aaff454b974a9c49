//! The `PostgreSQL` backend against a real, throwaway `PostgreSQL` cluster on 127.0.0.1.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Workspace;

/// A `PostgreSQL` cluster in a temp folder, stopped on drop.
pub(crate) struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub(crate) port: u16,
    pub(crate) url: String,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REKEY_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    pub(crate) fn start() -> Self {
        let bin = find_bin().expect(
            "PostgreSQL server binaries not found: install them (Debian: `apt-get install postgresql-15`) or set REKEY_PG_BIN to the folder holding initdb and pg_ctl; `./scripts/test` installs them",
        );
        let dir = tempfile::Builder::new()
            .prefix("rekey-pg-")
            .tempdir()
            .unwrap();
        // initdb refuses to run as root: run the cluster as the `postgres` user then.
        let as_postgres = is_root();
        if as_postgres {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path())
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        let mut c = Self {
            dir,
            bin,
            as_postgres,
            port,
            url: String::new(),
        };
        c.pg(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
            c.dir.path().display()
        );
        let log = c.dir.path().join("log");
        c.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        c.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        c
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend() {
    let pg = PgCluster::start();
    assert!(pg.path().exists());
    crate::engine::store_conformance(&pg.url).await;

    // The binary against PostgreSQL: a simulated run, a crash, a resume, the audit chain.
    let ws = Workspace::example();
    // Fresh database: the conformance test above left its own runs and tampered row 2.
    let admin = rekey_store::Store::open(&pg.url).await.unwrap();
    admin
        .execute_raw("CREATE DATABASE rekey_cli".into())
        .await
        .unwrap();
    admin.close().await;
    let url = format!("{}/rekey_cli", pg.url.rsplit_once('/').unwrap().0);
    let env = [("REKEY_DATABASE_URL", url.as_str())];
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web,gh-secrets-writer",
        ],
        &[env[0], ("REKEY_SIM_CRASH_AT", "17")],
    );
    assert_eq!(r.code, None, "{}", r.stderr);
    let ids = ws.run_ids(&env);
    assert_eq!(ids.len(), 1);
    let busy = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
        ],
        &env,
    );
    assert_eq!(
        busy.code,
        Some(2),
        "the lock holds across processes: {}",
        busy.stderr
    );
    let r = ws.rekey(&["resume", &ids[0]], &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v = ws.rekey(&["audit", "verify"], &env);
    assert_eq!(v.code, Some(0), "{}", v.stderr);
    let s = ws.rekey(&["status", &ids[0]], &env);
    assert!(
        s.stdout.contains(&format!("run {}: succeeded", ids[0])),
        "{}",
        s.stdout
    );
    // The dependency index on PostgreSQL: bulk builds, in-place refreshes, removals.
    crate::incident::large_reindex(&ws, &env);
}
