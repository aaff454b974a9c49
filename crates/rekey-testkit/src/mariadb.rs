//! A throwaway `MariaDB` server.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx::{ConnectOptions, Connection};

use crate::{ADMIN_PASSWORD, OLD_APP_PASSWORD, chown, command_as, find_exe, free_port, is_root};

/// A `MariaDB` server in a temp folder ([`MariaDb::path`]: `data/`, `tmp/`, the error log
/// `err.log`, `pid`, `sock`), listening on 127.0.0.1 only, killed on drop.
///
/// Over TCP: `admin`@`%` (all privileges, with grant option; password [`ADMIN_PASSWORD`])
/// and `app`@`%` (no privileges; password [`OLD_APP_PASSWORD`]). `root` has no password and
/// is only used to set up.
pub struct MariaDb {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

/// Connection options to 127.0.0.1:`port`; no password at all when `password` is empty (an
/// empty one would still be sent, and refused).
fn options(port: u16, user: &str, password: &str) -> MySqlConnectOptions {
    let o = MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username(user);
    if password.is_empty() {
        o
    } else {
        o.password(password)
    }
}

impl MariaDb {
    /// `mariadb-install-db`, `mariadbd`, waits (up to a minute) until it answers, then makes
    /// the accounts (see [`MariaDb`]).
    pub async fn start() -> Self {
        let (Some(server), Some(install)) = (
            find_exe(&["mariadbd", "mysqld"]),
            find_exe(&["mariadb-install-db", "mysql_install_db"]),
        ) else {
            panic!(
                "MariaDB server binaries (mariadbd, mariadb-install-db) not found: run ./scripts/peers.sh (Debian: `apt-get install mariadb-server`)"
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("rekey-mariadb-")
            .tempdir()
            .unwrap();
        // mariadbd refuses root: run it as `mysql` then.
        let as_mysql = is_root();
        let command = |exe: &Path| command_as(exe, as_mysql.then_some("mysql"));
        let data = dir.path().join("data");
        // A private tmpdir: servers set up side by side must not share temporary files.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        if as_mysql {
            chown("mysql", dir.path());
        }
        let out = command(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = command(&server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("err.log").display()
            ))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        let m = Self { dir, child, port };
        // Root logs in over TCP without a password until the server is set up.
        let deadline = Instant::now() + Duration::from_mins(1);
        let mut root = loop {
            match options(port, "root", "").connect().await {
                Ok(c) => break c,
                // The server answers: starting is over, setting up failed.
                Err(sqlx::Error::Database(e)) => panic!("MariaDB refused root: {e}"),
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "MariaDB did not start: {e}\n{}",
                        std::fs::read_to_string(m.dir.path().join("err.log")).unwrap_or_default()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        for sql in [
            format!("CREATE USER 'admin'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'"),
            "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION".to_owned(),
            format!("CREATE USER 'app'@'%' IDENTIFIED BY '{OLD_APP_PASSWORD}'"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut root)
                .await
                .unwrap();
        }
        root.close().await.unwrap();
        m
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's folder: `data/`, `err.log`, …
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `mysql://admin:ADMIN_PASSWORD@127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("mysql://admin:{ADMIN_PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// Connection options for `user` with `password` (none when empty).
    pub fn options(&self, user: &str, password: &str) -> MySqlConnectOptions {
        options(self.port, user, password)
    }

    /// Logs in as `user` over TCP: the connection, or the server's error number (`1045`:
    /// access denied, `4151`: account locked) or another error's text.
    pub async fn login(&self, user: &str, password: &str) -> Result<MySqlConnection, String> {
        self.options(user, password)
            .connect()
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) => d
                    .try_downcast_ref::<MySqlDatabaseError>()
                    .map_or_else(|| d.to_string(), |m| m.number().to_string()),
                other => other.to_string(),
            })
    }

    /// A connection as `admin`.
    pub async fn admin(&self) -> MySqlConnection {
        self.login("admin", ADMIN_PASSWORD).await.unwrap()
    }

    /// Creates the user `user`@`%` (no privileges) with `password`.
    pub async fn create_user(&self, user: &str, password: &str) {
        let mut admin = self.admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        admin.close().await.unwrap();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // The server itself (runuser may not pass the signal on), then its parent.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).output();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
