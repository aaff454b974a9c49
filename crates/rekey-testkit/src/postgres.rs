//! A throwaway `PostgreSQL` cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::{ADMIN_PASSWORD, OLD_APP_PASSWORD, chown, command_as, free_port, is_root};

/// A `PostgreSQL` cluster in a temp folder ([`PgCluster::path`]: the data folder `data`, the
/// server log `log`, the socket), listening on 127.0.0.1 only, stopped (`-m immediate`) on
/// drop.
///
/// Over TCP every role logs in with SCRAM-SHA-256: `postgres` (superuser, password
/// [`ADMIN_PASSWORD`]) and `app` (LOGIN, password [`OLD_APP_PASSWORD`]).
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
}

/// `$REKEY_PG_BIN`, or the newest `/usr/lib/postgresql/*/bin` holding `initdb`.
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

impl PgCluster {
    /// `initdb`, `pg_ctl start`, then sets the passwords (see [`PgCluster`]).
    pub async fn start() -> Self {
        let bin = find_bin().expect(
            "PostgreSQL server binaries not found: install them (Debian: `apt-get install postgresql-15`) or set REKEY_PG_BIN to the folder holding initdb and pg_ctl; ./scripts/peers.sh installs them",
        );
        let dir = tempfile::Builder::new()
            .prefix("rekey-pg-")
            .tempdir()
            .unwrap();
        // initdb refuses to run as root: run the cluster as the `postgres` user then.
        let as_postgres = is_root();
        if as_postgres {
            chown("postgres", dir.path());
        }
        let port = free_port();
        let data = dir.path().join("data");
        let c = Self {
            dir,
            bin,
            as_postgres,
            port,
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
        // The admin logs in without a password until it has one.
        c.write_hba(true);
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
        let mut conn = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("postgres")
            .database("postgres")
            .connect()
            .await
            .unwrap();
        for sql in [
            format!("ALTER ROLE postgres PASSWORD '{ADMIN_PASSWORD}'"),
            format!("CREATE ROLE app LOGIN PASSWORD '{OLD_APP_PASSWORD}'"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        c.write_hba(false);
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        c
    }

    fn write_hba(&self, admin_trusted: bool) {
        let mut hba = String::from("local all all trust\n");
        if admin_trusted {
            hba.push_str("host all postgres 127.0.0.1/32 trust\n");
        }
        hba.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(self.dir.path().join("data/pg_hba.conf"), hba).unwrap();
    }

    /// `tool` of the server's binaries, as `postgres` when the tests run as root.
    fn tool(&self, tool: &str) -> Command {
        command_as(&self.bin.join(tool), self.as_postgres.then_some("postgres"))
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let out = self
            .tool(tool)
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

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's folder: `data/` (with `pg_hba.conf`), the server log `log`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `postgres://postgres:ADMIN_PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> String {
        self.database_url("postgres")
    }

    /// The admin's connection string to `database`.
    pub fn database_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Connection options for `user` with `password` to the database `postgres`.
    pub fn options(&self, user: &str, password: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(user)
            .password(password)
            .database("postgres")
    }

    /// Logs in as `user` over TCP: the connection, or the server's SQLSTATE (`28P01`: wrong
    /// password) or another error's text.
    pub async fn login(&self, user: &str, password: &str) -> Result<PgConnection, String> {
        self.options(user, password)
            .connect()
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) => d.code().unwrap_or_default().into_owned(),
                other => other.to_string(),
            })
    }

    /// A connection as the admin `postgres`.
    pub async fn admin(&self) -> PgConnection {
        self.login("postgres", ADMIN_PASSWORD).await.unwrap()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .tool("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
