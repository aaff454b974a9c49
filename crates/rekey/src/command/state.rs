//! What the stateful commands share: the runtime, the store, the actor, the fingerprint key.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use rekey_engine::Fingerprinter;
use rekey_store::Store;

use crate::cli::Global;

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) async fn open_store(global: &Global) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(&global.database_url).await.with_context(|| {
        format!(
            "cannot open the state database {}",
            rekey_store::redact_url(&global.database_url)
        )
    })?;
    Ok(Arc::new(store))
}

/// The folder for local files (fingerprint key, simulator ledger): beside a `SQLite` state
/// database, else `.rekey/`.
pub(crate) fn state_dir(global: &Global) -> PathBuf {
    let url = &global.database_url;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return PathBuf::from(".rekey");
    }
    let path = PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url));
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

pub(crate) fn fingerprinter(global: &Global) -> anyhow::Result<Arc<Fingerprinter>> {
    let path = std::env::var_os("REKEY_FINGERPRINT_KEY_FILE")
        .map_or_else(|| state_dir(global).join("fingerprint.key"), PathBuf::from);
    let f = Fingerprinter::load_or_create(&path).with_context(|| {
        format!(
            "cannot read or create the fingerprint key {}",
            path.display()
        )
    })?;
    Ok(Arc::new(f))
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
