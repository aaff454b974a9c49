//! What the stateful commands share: the runtime, the store, the actor, the fingerprint key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rekey_engine::{Fingerprinter, KeyError};
use rekey_store::Store;

use crate::cli::Global;

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A refusal the operator can fix (a key file's permissions, a missing setting): exit 2.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The store, its audit chain keyed with the installation key when the log is first written
/// (commands that only read never need the key).
pub(crate) async fn open_store(global: &Global) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(&global.database_url).await.with_context(|| {
        format!(
            "cannot open the state database {}",
            rekey_store::redact_url(&global.database_url)
        )
    })?;
    let path = key_path(global);
    let store = store.with_chain_key_loader(move || {
        let path = path.map_err(|e| e.0)?;
        load_key(&path)
            .map(|f| f.chain_key())
            .map_err(|e| e.to_string())
    });
    Ok(Arc::new(store))
}

/// The rotation history per credential, or nothing when no `SQLite` state database exists yet
/// (a read-only command does not create one).
pub(crate) fn history_if_any(
    global: &Global,
) -> anyhow::Result<std::collections::BTreeMap<String, rekey_store::CredentialHistory>> {
    let url = &global.database_url;
    if !is_postgres(url) && !Path::new(url.strip_prefix("sqlite://").unwrap_or(url)).exists() {
        return Ok(std::collections::BTreeMap::new());
    }
    runtime()?.block_on(async {
        let store = open_store(global).await?;
        let rows = store
            .rotations()
            .await
            .context("cannot read the rotation history")?;
        store.close().await;
        Ok(rekey_store::history::by_credential(&rows))
    })
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Where the installation key lives: `REKEY_FINGERPRINT_KEY_FILE`, else beside a `SQLite`
/// state database. A `PostgreSQL` database is shared by every process that writes it, each in
/// its own directory, so the key must be named: a key per directory would key one audit
/// chain, and fingerprint one run's secrets, with several keys.
pub(crate) fn key_path(global: &Global) -> Result<PathBuf, Refused> {
    if let Some(p) = std::env::var_os("REKEY_FINGERPRINT_KEY_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if is_postgres(&global.database_url) {
        return Err(Refused(
            "with a PostgreSQL state database, set REKEY_FINGERPRINT_KEY_FILE to the installation key file (32 bytes, mode 0600; created on first use) that every rekey writing this database uses".into(),
        ));
    }
    Ok(state_dir(global).join("fingerprint.key"))
}

/// Loads (creating on first use) the key at `path`; a key others may read is refused.
pub(crate) fn load_key(path: &std::path::Path) -> anyhow::Result<Fingerprinter> {
    Fingerprinter::load_or_create(path).map_err(|e| match e {
        KeyError::Refused(m) => Refused(m).into(),
        KeyError::Io(e) => anyhow::Error::from(e).context(format!(
            "cannot read or create the installation key {}",
            path.display()
        )),
    })
}

/// The folder for local files (fingerprint key, simulator ledger): beside a `SQLite` state
/// database, else `.rekey/`.
pub(crate) fn state_dir(global: &Global) -> PathBuf {
    let url = &global.database_url;
    if is_postgres(url) {
        return PathBuf::from(".rekey");
    }
    let path = PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url));
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

pub(crate) fn fingerprinter(global: &Global) -> anyhow::Result<Arc<Fingerprinter>> {
    Ok(Arc::new(load_key(&key_path(global)?)?))
}

/// Who is acting: the CI identity when there is one, else the OS user.
pub(crate) fn actor() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if var("GITHUB_ACTIONS").is_some() {
        return format!(
            "github:{} ({} run {})",
            var("GITHUB_ACTOR").unwrap_or_else(|| "unknown".into()),
            var("GITHUB_REPOSITORY").unwrap_or_default(),
            var("GITHUB_RUN_ID").unwrap_or_default()
        );
    }
    if let Some(user) = var("GITLAB_USER_LOGIN") {
        return format!(
            "gitlab:{user} (job {})",
            var("CI_JOB_ID").unwrap_or_default()
        );
    }
    let user = var("USER")
        .or_else(|| var("USERNAME"))
        .unwrap_or_else(|| "unknown".into());
    let host = var("HOSTNAME")
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}
