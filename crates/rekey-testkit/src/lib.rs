//! Throwaway servers for rekey's tests, each on 127.0.0.1 and a free port, gone when dropped:
//!
//! - [`Moto`]: a moto server (IAM, STS, Secrets Manager) from `.peers/moto-venv`, with an
//!   admin user and signature checks ([`Moto::setup`]);
//! - [`PgCluster`]: a `PostgreSQL` cluster (`initdb`/`pg_ctl`) with password authentication;
//! - [`MariaDb`]: a `MariaDB` server (`mariadb-install-db`/`mariadbd`) with password
//!   authentication;
//! - [`GithubFake`]: GitHub's REST API in process (wiremock): Actions secrets it decrypts,
//!   tokens, `/credentials/revoke`, Apps, injected faults;
//! - [`OktaFake`] and [`Auth0Fake`]: their client-secret management APIs and token endpoints
//!   in process, answering tokens only for live secrets, with injected faults (`faults.rs`).
//! - [`HuggingfaceFake`]: the Hugging Face Hub's `whoami-v2` and leaked-token revocation in
//!   process (wiremock), injected faults.
//! - [`Verdaccio`]: a real npm registry (Verdaccio 6.8.0 from `.peers/verdaccio`) with
//!   htpasswd accounts, and [`FaultProxy`] to put seeded faults in front of it;
//! - [`NpmFake`]: npm's token API in process (wiremock) with what Verdaccio lacks: OTP
//!   challenges, token names, npm's masked values, paged lists.
//! - [`GcpFake`]: Google's IAM service-account keys API and OAuth 2 token endpoint in process
//!   (wiremock): real RSA key files, JWT signatures verified, injected faults.
//!
//! `./scripts/peers.sh` installs them; a test whose server is missing fails with a message
//! saying so (it never passes silently). When the tests run as root, the database servers run
//! as `postgres` / `mysql` (they refuse root).
//!
//! Both database servers know the same two accounts: the admin (`postgres` / `admin`, password
//! [`ADMIN_PASSWORD`]) and `app` (password [`OLD_APP_PASSWORD`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub mod auth0;
pub mod faults;
pub mod gcp;
pub mod github;
pub mod huggingface;
mod mariadb;
mod moto;
pub mod npm_fake;
pub mod okta;
mod postgres;
pub mod verdaccio;

pub use auth0::Auth0Fake;
pub use gcp::GcpFake;
pub use github::GithubFake;
pub use huggingface::HuggingfaceFake;
pub use mariadb::MariaDb;
pub use moto::{
    AccessKey, Answer, Moto, MotoAccounts, StandIn, access_keys, aws_error, create_key,
};
pub use npm_fake::NpmFake;
pub use okta::OktaFake;
pub use postgres::PgCluster;
pub use verdaccio::{FaultProxy, Verdaccio};

/// The admin password of the throwaway database servers: tests check it never shows up.
pub const ADMIN_PASSWORD: &str = "Adm1n-Pa55word-Never-Shown";
/// The password of the user `app` before a rotation.
pub const OLD_APP_PASSWORD: &str = "0ld-App-Pa55word";

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the tests run as root (`initdb` and `mariadbd` refuse to).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The repository root (where `.peers/` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `exe`, run as `user` through `runuser` when given.
pub fn command_as(exe: &Path, user: Option<&str>) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

/// Hands `path` (recursively) to `user`.
pub fn chown(user: &str, path: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:{user}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {user} {}", path.display());
}

/// The first of `names` found on `PATH` or in the usual system folders.
pub fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Calls `f` every 20 ms until it returns `Some`, for at most `limit`; panics naming `what`
/// after that.
pub fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
