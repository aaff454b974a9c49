//! Keeps the dependency index in the state database in step with the SBOMs and lockfiles on
//! disk: only files whose size or modification time changed are read again.

use std::collections::BTreeMap;
use std::path::Path;

use rekey_store::{IndexRows, IndexedFile, Store};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::sbom;

/// What a refresh found.
#[derive(Debug, Default, Serialize)]
pub struct IndexReport {
    /// Files asked for.
    pub files: usize,
    /// Files read again because they changed (or were new).
    pub reread: usize,
    /// Packages now indexed over all asked-for files.
    pub packages: i64,
    /// `(path, why)` for every file that could not be read; the rest are indexed.
    pub errors: Vec<(String, String)>,
}

/// Files read per batch, and per transaction.
const BATCH: usize = 256;

/// At least this many changed files: a bulk load (drop the lookup index, rebuild it once).
const BULK: usize = 1000;

/// Brings the index in line with `paths`: re-reads new and changed files (parsing on every
/// core while the previous batch is stored), forgets files no longer asked for, and reports
/// unreadable files without letting them stop the others. `progress(done, total)` follows
/// the changed files as they are stored.
pub async fn refresh(
    store: &Store,
    paths: &[String],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> rekey_store::Result<IndexReport> {
    let known: BTreeMap<String, IndexedFile> = store
        .index_files()
        .await?
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    let mut report = IndexReport {
        files: paths.len(),
        ..IndexReport::default()
    };
    // What the index holds for each asked-for file once this refresh is done, for the report
    // (kept as it goes instead of reading the whole table back).
    let mut outcome: BTreeMap<&str, (i64, Option<String>)> = BTreeMap::new();
    let mut todo: Vec<(String, std::fs::Metadata)> = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) => {
                let same = known.get(path).is_some_and(|k| {
                    k.size == i64::try_from(meta.len()).unwrap_or(-1)
                        && k.mtime == mtime(&meta)
                        && k.error.is_none()
                });
                if same {
                    let k = &known[path];
                    outcome.insert(path, (k.packages, None));
                } else {
                    todo.push((path.clone(), meta));
                }
            }
            Err(e) => {
                let error = format!("cannot read: {e}");
                if known.get(path).and_then(|k| k.error.as_deref()) != Some(error.as_str()) {
                    // Refused (a NUL in the path): reported all the same, just not stored.
                    store
                        .index_replace_many(&[(unread(path, error.clone()), Vec::new())])
                        .await?;
                }
                outcome.insert(path, (0, Some(error)));
            }
        }
    }
    if todo.len() >= BULK {
        store.index_bulk_begin().await?;
    }
    report.reread = todo.len();
    let total = todo.len() as u64;

    // Parsing (CPU on every core) overlaps with storing (one writer): a reader thread keeps
    // up to two parsed batches ready.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(IndexedFile, IndexRows)>>(2);
    let reader = std::thread::spawn(move || {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        for batch in todo.chunks(BATCH) {
            let parsed = std::thread::scope(|scope| {
                let per = batch.len().div_ceil(threads).max(1);
                let handles: Vec<_> = batch
                    .chunks(per)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|(path, meta)| read_one(path, meta))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("index readers do not panic"))
                    .collect()
            });
            if tx.blocking_send(parsed).is_err() {
                return; // the writer failed and said why
            }
        }
    });
    let mut stored = Ok(());
    let mut written: Vec<(String, i64, Option<String>)> = Vec::new();
    while let Some(parsed) = rx.recv().await {
        let refused: BTreeMap<String, String> = match store.index_replace_many(&parsed).await {
            Ok(refused) => refused.into_iter().collect(),
            Err(e) => {
                stored = Err(e);
                break;
            }
        };
        written.extend(parsed.into_iter().map(|(f, _)| match refused.get(&f.path) {
            Some(why) => (f.path, 0, Some(why.clone())),
            None => (f.path, f.packages, f.error),
        }));
        progress(written.len() as u64, total);
    }
    drop(rx);
    reader.join().expect("index reader does not panic");
    stored?;
    // Also repairs the lookup index a killed bulk build left out.
    store.index_bulk_end().await?;
    let wanted: std::collections::BTreeSet<&str> = paths.iter().map(String::as_str).collect();
    for path in known.keys().filter(|p| !wanted.contains(p.as_str())) {
        store.index_remove(path).await?;
    }
    for (path, packages, error) in &written {
        outcome.insert(path.as_str(), (*packages, error.clone()));
    }
    for (path, (packages, error)) in outcome {
        report.packages += packages;
        if let Some(e) = error {
            report.errors.push((path.to_owned(), e));
        }
    }
    Ok(report)
}

/// Longest package name or version the index takes, in bytes: far beyond any real one
/// (npm allows 214 characters), and within what `PostgreSQL` can index (about 2.7 kB a row).
const MAX_FIELD: usize = 1024;

/// Why the index cannot hold this package, if it cannot: the same answer on `SQLite` and
/// `PostgreSQL` (which refuses a NUL in text and over-long index entries), so the whole file is
/// reported unreadable rather than half-indexed.
fn storable(p: &crate::Package) -> Option<String> {
    let shown = |s: &str| {
        let mut short: String = s.chars().take(40).collect();
        if short.len() < s.len() {
            short.push('…');
        }
        short.escape_debug().to_string()
    };
    [("name", &p.name), ("version", &p.version)]
        .into_iter()
        .find_map(|(what, value)| {
            if value.contains('\0') {
                Some(format!(
                    "package {what} `{}` contains a NUL byte",
                    shown(value)
                ))
            } else if value.len() > MAX_FIELD {
                Some(format!(
                    "package {what} `{}` is too long ({} bytes; at most {MAX_FIELD})",
                    shown(value),
                    value.len()
                ))
            } else {
                None
            }
        })
}

fn mtime(meta: &std::fs::Metadata) -> String {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(|| "-".into(), |d| d.as_nanos().to_string())
}

fn unread(path: &str, error: String) -> IndexedFile {
    IndexedFile {
        path: path.to_owned(),
        size: 0,
        mtime: "-".into(),
        sha256: String::new(),
        format: None,
        error: Some(error),
        packages: 0,
        indexed_at: rekey_store::now(),
    }
}

/// Reads and parses one file; any failure is recorded on the file, not returned.
fn read_one(path: &str, meta: &std::fs::Metadata) -> (IndexedFile, IndexRows) {
    let bytes = match std::fs::read(Path::new(path)) {
        Ok(b) => b,
        Err(e) => return (unread(path, format!("cannot read: {e}")), Vec::new()),
    };
    let mut file = IndexedFile {
        path: path.to_owned(),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mtime: mtime(meta),
        sha256: hex::encode(Sha256::digest(&bytes)),
        format: None,
        error: None,
        packages: 0,
        indexed_at: rekey_store::now(),
    };
    let text = String::from_utf8_lossy(&bytes);
    match sbom::parse(&text) {
        Ok(parsed) => {
            file.format = Some(format!("{:?}", parsed.format));
            if let Some(why) = parsed.packages.iter().find_map(storable) {
                file.error = Some(why);
                return (file, Vec::new());
            }
            let rows: IndexRows = parsed
                .packages
                .into_iter()
                .map(|p| (p.ecosystem.purl_type().to_owned(), p.name, p.version))
                .collect();
            file.packages = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            (file, rows)
        }
        Err(e) => {
            file.error = Some(e.to_string());
            (file, Vec::new())
        }
    }
}
