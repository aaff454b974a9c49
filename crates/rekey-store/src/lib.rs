//! Durable state: runs with their stored plans, per-step state, credential locks and the
//! hash-chained audit log, in `SQLite` (default, WAL) or `PostgreSQL`.
//!
//! The same SQL runs on both (`$1` parameters work in `SQLite` too); only the migrations differ.
//! Queries are built at run time (no `DATABASE_URL` needed to compile), as in atuin.

pub mod audit;
pub mod state;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;

pub use audit::{AuditDraft, AuditEvent, AuditProblem, ChainKey, Verification};
pub use history::{CredentialHistory, Rotation, StepCost, StepTiming};
pub use lease::{LEASE_TTL, Lease, LeaseHolder, TakeOver};
pub use state::{IllegalTransition, RunStatus, StepEvent, StepState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot prepare the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "credential `{credential}` is already being rotated by run {run_id}; wait for it, resume it, or `rekey abandon {run_id}`"
    )]
    Locked { credential: String, run_id: String },
    #[error("no run `{0}`")]
    NoRun(String),
    #[error(
        "run {run_id} is being driven by another process: {lease}; wait for it to finish, or take it over with --force if that process is stuck"
    )]
    Leased { run_id: String, lease: Box<Lease> },
    #[error(
        "this process no longer holds run {run_id}: another process took it over or abandoned it, and nothing more was written (see `rekey status {run_id}`)"
    )]
    LeaseLost { run_id: String },
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(
        "step {idx} of run {run_id} is `{actual}`, not `{expected}`: another process changed it"
    )]
    Conflict {
        run_id: String,
        idx: i64,
        expected: StepState,
        actual: String,
    },
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The installation key could not be used (missing, unreadable, loose permissions).
    #[error("{0}")]
    Key(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body against whichever pool is open.
macro_rules! with_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// The chain head `(seq, hash)` as stored, inside a transaction.
macro_rules! read_head {
    ($ex:expr) => {{
        let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional($ex)
            .await?;
        match row {
            Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?),
            None => (0, audit::GENESIS.to_owned()),
        }
    }};
}

/// Inserts one chained audit row; evaluates to its hash.
macro_rules! insert_audit {
    ($ex:expr, $key:expr, $seq:expr, $at:expr, $d:expr, $prev:expr) => {{
        let (key, seq, at, d, prev): (Option<&ChainKey>, i64, &str, &AuditDraft, &str) = ($key, $seq, $at, $d, $prev);
        let hash = audit::row_hash(key, seq, at, d, prev);
        sqlx::query("INSERT INTO audit_events (seq, at, run_id, actor, reason, credential, step, action, event, outcome, detail, fingerprint, simulated, prev_hash, hash, chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
            .bind(seq)
            .bind(at)
            .bind(d.run_id.as_deref())
            .bind(d.actor.as_str())
            .bind(d.reason.as_deref())
            .bind(d.credential.as_deref())
            .bind(d.step.as_deref())
            .bind(d.action.as_deref())
            .bind(d.event.as_str())
            .bind(d.outcome.as_str())
            .bind(d.detail.as_deref())
            .bind(d.fingerprint.as_deref())
            .bind(d.simulated)
            .bind(prev)
            .bind(hash.as_str())
            .bind(chain_version(key))
            .execute($ex)
            .await?;
        hash
    }};
}

macro_rules! event_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<_, StoreError>(AuditEvent {
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            draft: AuditDraft {
                run_id: r.try_get("run_id")?,
                actor: r.try_get("actor")?,
                reason: r.try_get("reason")?,
                credential: r.try_get("credential")?,
                step: r.try_get("step")?,
                action: r.try_get("action")?,
                event: r.try_get("event")?,
                outcome: r.try_get("outcome")?,
                detail: r.try_get("detail")?,
                fingerprint: r.try_get("fingerprint")?,
                simulated: r.try_get("simulated")?,
            },
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
            chain: r.try_get("chain")?,
        })
    }};
}

macro_rules! run_from_row {
    ($r:expr) => {{
        let r = $r;
        let status: String = r.try_get("status")?;
        Ok::<_, StoreError>(RunRecord {
            id: r.try_get("id")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            mode: r.try_get("mode")?,
            reason: r.try_get("reason")?,
            actor: r.try_get("actor")?,
            simulated: r.try_get("simulated")?,
            status: status.parse().map_err(StoreError::Corrupt)?,
            message: r.try_get("message")?,
            plan_json: r.try_get("plan_json")?,
            options_json: r.try_get("options_json")?,
        })
    }};
}

/// Runs `$body` and appends `$audit` in one transaction, retrying when another writer took
/// the next audit sequence number (or SQLite was busy). The body runs inside an async block
/// so that its `?` and `return` end this attempt, not the method: that is what lets the retry
/// see a conflict at all. `$tx` and `$at` name the transaction and the timestamp for the body.
macro_rules! with_audit {
    ($self:ident, $audit:expr, |$tx:ident, $at:ident| $body:block) => {{
        let $at = now();
        let key = $self.chain_key()?;
        let mut head = $self.head.lock().await;
        let mut outcome: Option<Result<()>> = None;
        for attempt in 0..5 {
            let res: Result<(i64, String)> = async {
                with_pool!($self, p => {
                    let mut $tx = p.begin().await?;
                    $body
                    let (seq, prev) = match head.clone() {
                        Some(h) if attempt == 0 => h,
                        _ => read_head!(&mut *$tx),
                    };
                    let hash = insert_audit!(&mut *$tx, key, seq + 1, &$at, $audit, &prev);
                    $tx.commit().await?;
                    Ok((seq + 1, hash))
                })
            }
            .await;
            match res {
                Ok(h) => {
                    *head = Some(h);
                    outcome = Some(Ok(()));
                    break;
                }
                Err(StoreError::Db(e)) if is_unique_violation(&e) || is_busy(&e) => *head = None,
                Err(e) => {
                    outcome = Some(Err(e));
                    break;
                }
            }
        }
        outcome.unwrap_or_else(|| Err(StoreError::Corrupt("could not append to the audit log after 5 attempts".into())))
    }};
}

/// A new run.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub id: &'a str,
    pub mode: &'a str,
    pub reason: Option<&'a str>,
    pub actor: &'a str,
    pub simulated: bool,
    pub plan_json: &'a str,
    pub options_json: &'a str,
    /// `(index, step id, credential id)` for every step of the plan.
    pub steps: &'a [(i64, String, String)],
    pub credentials: &'a [String],
    /// The process that creates the run holds its lease from the start.
    pub lease: Option<&'a LeaseHolder>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    pub mode: String,
    pub reason: Option<String>,
    pub actor: String,
    pub simulated: bool,
    pub status: RunStatus,
    pub message: Option<String>,
    #[serde(skip)]
    pub plan_json: String,
    #[serde(skip)]
    pub options_json: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub idx: i64,
    pub step_id: String,
    pub credential: String,
    pub state: StepState,
    pub attempts: i64,
    /// Non-secret outputs only (JSON object).
    pub outputs_json: Option<String>,
    pub error: Option<String>,
    pub updated_at: String,
}

/// `(ecosystem, name, version)` of every package in one indexed file.
pub type IndexRows = Vec<(String, String, String)>;

/// Rows per `INSERT` into `index_packages`: 3 parameters each, within both databases' limits.
const ROWS_PER_INSERT: usize = 1000;

/// `INSERT INTO index_packages … VALUES (?, ?, ?), …` for `rows` rows.
fn insert_values(pool: &Pool, rows: usize) -> String {
    format!(
        "INSERT INTO index_packages (file, name, version) VALUES {}",
        placeholders(pool, rows, 3)
    )
}

/// `(?, ?), (?, ?), …` (`rows` × `columns`) for SQLite, `($1, $2), ($3, $4), …` for PostgreSQL.
/// SQLite gets `?`: numbered parameters make its binding quadratic (each is looked up by name).
fn placeholders(pool: &Pool, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            match pool {
                Pool::Sqlite(_) => sql.push('?'),
                Pool::Postgres(_) => {
                    let _ = write!(sql, "${}", r * columns + c + 1);
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// Ecosystem → name → id in `index_names`. Probed once per indexed component, so with a
/// fast hash: the keys are package names, not attacker-chosen collisions worth `SipHash`.
type NameIds = HashMap<String, HashMap<String, i64, FastHash>, FastHash>;
type FastHash = foldhash::fast::RandomState;

fn name_id(ids: &NameIds, ecosystem: &str, name: &str) -> Option<i64> {
    ids.get(ecosystem).and_then(|m| m.get(name)).copied()
}

/// A file in the dependency index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexedFile {
    pub path: String,
    pub size: i64,
    pub mtime: String,
    pub sha256: String,
    pub format: Option<String>,
    /// Why the file could not be read; its packages are then absent from the index.
    pub error: Option<String>,
    pub packages: i64,
    pub indexed_at: String,
}

/// One step change: checked against the state machine, written with its audit event in one
/// transaction.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub run_id: &'a str,
    pub idx: i64,
    pub from: StepState,
    pub event: StepEvent,
    pub outputs_json: Option<&'a str>,
    pub error: Option<&'a str>,
    pub bump_attempts: bool,
    pub audit: Option<AuditDraft>,
}

/// Per-transition results, and the new chain head if anything was appended.
type BatchOutcome = (Vec<Result<StepState>>, Option<(i64, String)>);

pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn chain_version(key: Option<&ChainKey>) -> i64 {
    if key.is_some() {
        audit::CHAIN_KEYED
    } else {
        audit::CHAIN_PLAIN
    }
}

/// Where the chain key comes from: set, loaded on first use, or absent.
enum KeySlot {
    Keyed(ChainKey),
    /// No key was given: rows go on the plain chain (tests that use the store directly).
    Plain,
    Failed(String),
}

type KeyLoader = Box<dyn FnOnce() -> Result<ChainKey, String> + Send>;

pub struct Store {
    pool: Pool,
    /// The chain head `(seq, hash)` as this process last wrote it; re-read on a conflict with
    /// another writer.
    head: Mutex<Option<(i64, String)>>,
    url: String,
    /// `(ecosystem, name)` → id in `index_names`, as committed; ids never change, so the
    /// map stays true however many processes write.
    /// Keyed by ecosystem, then name, so a lookup borrows instead of allocating.
    index_names: std::sync::Mutex<NameIds>,
    /// The lease holder this process writes steps as (see [`Store::fence`]).
    fence: std::sync::Mutex<Option<String>>,
    /// The audit chain key, loaded when the log is first written or verified: commands that
    /// only read runs or the index never need the installation key.
    chain: std::sync::OnceLock<KeySlot>,
    load_key: std::sync::Mutex<Option<KeyLoader>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key slot prints `ChainKey([REDACTED])`, never key bytes.
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("url", &self.url)
            .field("chain", &self.chain.get())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keyed(k) => k.fmt(f),
            Self::Plain => f.write_str("Plain"),
            Self::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store at `url`: `sqlite://PATH` / a plain path, or
    /// `postgres://…`. Migrations are applied.
    pub async fn open(url: &str) -> Result<Self> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            sqlx::migrate!("../../migrations/postgres")
                .run(&pool)
                .await?;
            Pool::Postgres(pool)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)?;
            }
            let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives a process crash; only an OS crash may lose
                // the last transactions, never corrupt the file.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                // 64 MB of page cache: indexing millions of components touches B-tree pages
                // all over; the default 2 MB makes that disk-bound.
                .pragma("cache_size", "-65536")
                // Lets CREATE INDEX sort on more than one core (a bulk index build).
                .pragma("threads", "4");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await?;
            // Two rekey commands at once on a new state file would both create its tables
            // (SQLite has no lock for sqlx's migrator to take): one migrates at a time.
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(format!("{path}.migrate-lock"))?;
            lock.lock()?;
            sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
            drop(lock);
            Pool::Sqlite(pool)
        };
        Ok(Self {
            pool,
            head: Mutex::new(None),
            url: redact_url(url),
            index_names: std::sync::Mutex::default(),
            fence: std::sync::Mutex::default(),
            chain: std::sync::OnceLock::new(),
            load_key: std::sync::Mutex::new(None),
        })
    }

    /// Loads the chain key with `load` the first time the log is written or verified.
    #[must_use]
    pub fn with_chain_key_loader(
        self,
        load: impl FnOnce() -> Result<ChainKey, String> + Send + 'static,
    ) -> Self {
        *self.load_key.lock().expect("not poisoned") = Some(Box::new(load));
        self
    }

    /// Keys the audit chain. Setting the same key again is fine; another key is refused (one
    /// store, one installation).
    pub fn set_chain_key(&self, key: ChainKey) -> Result<()> {
        let mut key = Some(key);
        let slot = self.chain.get_or_init(|| {
            *self.load_key.lock().expect("not poisoned") = None;
            KeySlot::Keyed(key.take().expect("taken once"))
        });
        match (slot, key) {
            (_, None) => Ok(()),
            (KeySlot::Keyed(k), Some(new)) if k.same_as(&new) => Ok(()),
            (KeySlot::Failed(e), _) => Err(StoreError::Key(e.clone())),
            (KeySlot::Plain, _) => Err(StoreError::Key(
                "this store already wrote unkeyed audit rows: key it before its first write".into(),
            )),
            (KeySlot::Keyed(_), _) => Err(StoreError::Key(
                "the audit log is already keyed with another installation key".into(),
            )),
        }
    }

    /// The chain key (`None`: no key was given, the plain chain), loading it if needed.
    fn chain_key(&self) -> Result<Option<&ChainKey>> {
        let slot = self.chain.get_or_init(|| {
            let load = self.load_key.lock().expect("not poisoned").take();
            match load.map(|f| f()) {
                Some(Ok(k)) => KeySlot::Keyed(k),
                Some(Err(e)) => KeySlot::Failed(e),
                None => KeySlot::Plain,
            }
        });
        match slot {
            KeySlot::Keyed(k) => Ok(Some(k)),
            KeySlot::Plain => Ok(None),
            KeySlot::Failed(e) => Err(StoreError::Key(e.clone())),
        }
    }

    /// Refuses a key that did not write the last keyed row: a lost key replaced by a new
    /// one, or another installation's, would otherwise fork the chain into rows no single key
    /// verifies.
    pub async fn check_chain_head(&self) -> Result<()> {
        let Some(key) = self.chain_key()? else {
            return Ok(());
        };
        let sql = "SELECT seq, at, run_id, actor, reason, credential, step, action, event, outcome, detail, fingerprint, simulated, prev_hash, hash, chain FROM audit_events ORDER BY seq DESC LIMIT 1";
        let head: Option<AuditEvent> = with_pool!(self, p => {
            match sqlx::query(sql).fetch_optional(p).await? {
                Some(r) => Some(event_from_row!(&r)?),
                None => None,
            }
        });
        match head {
            Some(e) if e.chain != audit::CHAIN_PLAIN && !audit::authentic(key, &e) => {
                Err(StoreError::Key(format!(
                    "the audit log's last row ({}) was not written with this installation key: the key file is not the one that wrote this database (restore that one, or point REKEY_FINGERPRINT_KEY_FILE at it), or the row was edited (`rekey audit verify`); nothing was written",
                    e.seq
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether `e` is a keyed row written with this store's key (so not by a mere writer of
    /// the database). `false` without a key.
    pub fn authentic(&self, e: &AuditEvent) -> Result<bool> {
        Ok(self.chain_key()?.is_some_and(|k| audit::authentic(k, e)))
    }

    /// The URL with any password removed, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await);
    }

    /// Creates a run, its steps and its credential locks atomically. A credential held by an
    /// active run refuses the whole run and names the other run.
    pub async fn create_run(&self, run: &NewRun<'_>, audit: AuditDraft) -> Result<()> {
        // Rehearsals lock apart from real rotations: a stuck simulated run never blocks an
        // incident, and a real run never blocks a rehearsal.
        let lock_key = |c: &str| {
            if run.simulated {
                format!("sim:{c}")
            } else {
                c.to_owned()
            }
        };
        with_audit!(self, &audit, |tx, at| {
            for c in run.credentials {
                let holder: Option<String> =
                    sqlx::query("SELECT run_id FROM credential_locks WHERE credential = $1")
                        .bind(lock_key(c))
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.get::<String, _>(0));
                if let Some(run_id) = holder {
                    return Err(StoreError::Locked {
                        credential: c.clone(),
                        run_id,
                    });
                }
            }
            sqlx::query("INSERT INTO runs (id, created_at, updated_at, mode, reason, actor, simulated, status, message, plan_json, options_json) VALUES ($1, $2, $2, $3, $4, $5, $6, $7, NULL, $8, $9)")
                    .bind(run.id).bind(&at).bind(run.mode).bind(run.reason).bind(run.actor).bind(run.simulated)
                    .bind(RunStatus::Running.as_str()).bind(run.plan_json).bind(run.options_json)
                    .execute(&mut *tx).await?;
            for c in run.credentials {
                // The primary key makes two runs racing for a credential fail here.
                let ins = sqlx::query("INSERT INTO credential_locks (credential, run_id, acquired_at) VALUES ($1, $2, $3)")
                        .bind(lock_key(c)).bind(run.id).bind(&at)
                        .execute(&mut *tx).await;
                if let Err(e) = ins {
                    if is_unique_violation(&e) {
                        return Err(StoreError::Locked {
                            credential: c.clone(),
                            run_id: "another run (created just now)".into(),
                        });
                    }
                    return Err(e.into());
                }
            }
            if let Some(me) = run.lease {
                sqlx::query("INSERT INTO run_leases (run_id, holder, host, pid, renewed_at, expires_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(run.id).bind(&me.id).bind(&me.host).bind(me.pid).bind(&at)
                    .bind(lease::now_ms() + lease::ttl_ms(LEASE_TTL))
                    .execute(&mut *tx).await?;
            }
            // Multi-row inserts: a 10,000-step plan is stored in a few statements.
            for chunk in run.steps.chunks(500) {
                let mut sql = String::from(
                    "INSERT INTO steps (run_id, idx, step_id, credential, state, attempts, updated_at) VALUES ",
                );
                for k in 0..chunk.len() {
                    let b = 4 + k * 3;
                    if k > 0 {
                        sql.push_str(", ");
                    }
                    let _ = write!(
                        sql,
                        "($1, CAST(${b} AS BIGINT), ${}, ${}, $2, 0, $3)",
                        b + 1,
                        b + 2
                    );
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(run.id)
                    .bind(StepState::Pending.as_str())
                    .bind(&at);
                for (idx, step_id, cred) in chunk {
                    q = q.bind(idx).bind(step_id).bind(cred);
                }
                q.execute(&mut *tx).await?;
            }
        })
    }

    /// Applies one step transition (checked by the state machine and, in the database, by
    /// `WHERE state = from`) together with its audit event.
    pub async fn transition(&self, t: Transition<'_>) -> Result<StepState> {
        self.transitions(std::slice::from_ref(&t))
            .await?
            .pop()
            .expect("one result per transition")
    }

    /// Applies many step transitions in one transaction (group commit): each is checked on its
    /// own and gets its own result; the audit events are chained in order. One commit for a
    /// whole batch is what lets many steps in flight share the cost of durability.
    pub async fn transitions(&self, batch: &[Transition<'_>]) -> Result<Vec<Result<StepState>>> {
        let at = now();
        let key = self.chain_key()?;
        let mut head = self.head.lock().await;
        for attempt in 0..5 {
            // Two statements per batch whatever its size: one UPDATE … FROM (VALUES …)
            // RETURNING for the steps, one multi-row INSERT for their audit events.
            let planned: Vec<Result<StepState>> = batch
                .iter()
                .map(|t| t.from.next(t.event).map_err(StoreError::from))
                .collect();
            let valid: Vec<usize> = (0..batch.len()).filter(|&i| planned[i].is_ok()).collect();
            let fence: Option<String> = self.fence.lock().expect("not poisoned").clone();
            // In an async block, so `?` ends this attempt and reaches the retry below.
            let res: Result<BatchOutcome> = async { with_pool!(self, p => {
                let mut tx = p.begin().await?;
                let mut updated: std::collections::HashSet<(String, i64)> = std::collections::HashSet::new();
                for chunk in valid.chunks(256) {
                    let mut sql = String::from("UPDATE steps SET state = v.column4, outputs_json = COALESCE(v.column5, steps.outputs_json), error = v.column6, attempts = steps.attempts + v.column7, updated_at = $1 FROM (VALUES ");
                    for (k, _) in chunk.iter().enumerate() {
                        let b = 2 + k * 7;
                        if k > 0 {
                            sql.push_str(", ");
                        }
                        let _ = write!(sql, "(${b}, CAST(${} AS BIGINT), ${}, ${}, ${}, ${}, CAST(${} AS BIGINT))", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6);
                    }
                    // Fenced by the run's lease: a process another one took the run from cannot
                    // write a step (its next `started` fails before its provider call).
                    let h = 2 + chunk.len() * 7;
                    let _ = write!(sql, ") AS v WHERE steps.run_id = v.column1 AND steps.idx = v.column2 AND steps.state = v.column3 AND (CAST(${h} AS TEXT) IS NULL OR NOT EXISTS (SELECT 1 FROM run_leases l WHERE l.run_id = steps.run_id AND l.holder <> CAST(${h} AS TEXT))) RETURNING steps.run_id, steps.idx");
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&at);
                    for &i in chunk {
                        let t = &batch[i];
                        let to = *planned[i].as_ref().expect("valid transitions only");
                        q = q.bind(t.run_id).bind(t.idx).bind(t.from.as_str()).bind(to.as_str()).bind(t.outputs_json).bind(t.error).bind(i64::from(t.bump_attempts));
                    }
                    q = q.bind(fence.clone());
                    for r in q.fetch_all(&mut *tx).await? {
                        updated.insert((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
                    }
                }
                let mut results = Vec::with_capacity(batch.len());
                let mut rows: Vec<(i64, String, &AuditDraft, String)> = Vec::new();
                let (mut seq, mut prev) = match head.clone() {
                    Some(h) if attempt == 0 => h,
                    _ => read_head!(&mut *tx),
                };
                for (i, t) in batch.iter().enumerate() {
                    let to = match &planned[i] {
                        Ok(to) => *to,
                        Err(StoreError::Illegal(e)) => {
                            results.push(Err(StoreError::Illegal(e.clone())));
                            continue;
                        }
                        Err(_) => unreachable!("planned holds illegal transitions only"),
                    };
                    if !updated.contains(&(t.run_id.to_owned(), t.idx)) {
                        let actual: Option<String> = sqlx::query("SELECT state FROM steps WHERE run_id = $1 AND idx = $2")
                            .bind(t.run_id).bind(t.idx).fetch_optional(&mut *tx).await?.map(|r| r.get(0));
                        // Unchanged, yet not written: the lease fence refused it.
                        if actual.as_deref() == Some(t.from.as_str()) && fence.is_some() {
                            results.push(Err(StoreError::LeaseLost { run_id: t.run_id.to_owned() }));
                            continue;
                        }
                        results.push(Err(StoreError::Conflict { run_id: t.run_id.to_owned(), idx: t.idx, expected: t.from, actual: actual.unwrap_or_else(|| "missing".into()) }));
                        continue;
                    }
                    if let Some(audit) = &t.audit {
                        let hash = audit::row_hash(key, seq + 1, &at, audit, &prev);
                        rows.push((seq + 1, prev.clone(), audit, hash.clone()));
                        seq += 1;
                        prev = hash;
                    }
                    results.push(Ok(to));
                }
                for chunk in rows.chunks(256) {
                    let mut sql = String::from("INSERT INTO audit_events (seq, at, run_id, actor, reason, credential, step, action, event, outcome, detail, fingerprint, simulated, prev_hash, hash, chain) VALUES ");
                    for k in 0..chunk.len() {
                        let b = 1 + k * 16;
                        if k > 0 {
                            sql.push_str(", ");
                        }
                        let ps: Vec<String> = (b..b + 16).map(|n| format!("${n}")).collect();
                        let _ = write!(sql, "({})", ps.join(", "));
                    }
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (seq, prev, d, hash) in chunk {
                        q = q.bind(*seq).bind(at.as_str()).bind(d.run_id.as_deref()).bind(d.actor.as_str()).bind(d.reason.as_deref())
                            .bind(d.credential.as_deref()).bind(d.step.as_deref()).bind(d.action.as_deref()).bind(d.event.as_str())
                            .bind(d.outcome.as_str()).bind(d.detail.as_deref()).bind(d.fingerprint.as_deref()).bind(d.simulated)
                            .bind(prev.as_str()).bind(hash.as_str()).bind(chain_version(key));
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                let chain = (!rows.is_empty()).then_some((seq, prev));
                Ok((results, chain))
            }) }
            .await;
            match res {
                Ok((results, chain)) => {
                    if chain.is_some() {
                        *head = chain;
                    }
                    return Ok(results);
                }
                Err(StoreError::Db(e)) if is_unique_violation(&e) || is_busy(&e) => {
                    *head = None;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Corrupt(
            "could not append to the audit log after 5 attempts".into(),
        ))
    }

    /// Sets a run's status (and message) with an audit event; terminal statuses release the
    /// run's credential locks in the same transaction.
    pub async fn set_run_status(
        &self,
        run_id: &str,
        status: RunStatus,
        message: Option<&str>,
        audit: AuditDraft,
    ) -> Result<()> {
        with_audit!(self, &audit, |tx, at| {
            let n = sqlx::query(
                "UPDATE runs SET status = $1, message = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(status.as_str())
            .bind(message)
            .bind(&at)
            .bind(run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::NoRun(run_id.to_owned()));
            }
            if status.is_terminal() {
                sqlx::query("DELETE FROM credential_locks WHERE run_id = $1")
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
        })
    }

    /// Appends one audit event on its own.
    pub async fn append_audit(&self, audit: AuditDraft) -> Result<()> {
        with_audit!(self, &audit, |tx, at| {})
    }

    pub async fn run(&self, id: &str) -> Result<RunRecord> {
        let row = with_pool!(self, p => {
            sqlx::query("SELECT id, created_at, updated_at, mode, reason, actor, simulated, status, message, plan_json, options_json FROM runs WHERE id = $1")
                .bind(id).fetch_optional(p).await?.map(|r| run_from_row!(&r))
        });
        row.ok_or_else(|| StoreError::NoRun(id.to_owned()))?
    }

    /// Every run, newest first.
    pub async fn runs(&self) -> Result<Vec<RunRecord>> {
        with_pool!(self, p => {
            sqlx::query("SELECT id, created_at, updated_at, mode, reason, actor, simulated, status, message, '' AS plan_json, '' AS options_json FROM runs ORDER BY created_at DESC, id DESC")
                .fetch_all(p).await?.iter().map(|r| run_from_row!(r)).collect()
        })
    }

    pub async fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>> {
        with_pool!(self, p => {
            sqlx::query("SELECT idx, step_id, credential, state, attempts, outputs_json, error, updated_at FROM steps WHERE run_id = $1 ORDER BY idx")
                .bind(run_id).fetch_all(p).await?.iter().map(|r| {
                    let state: String = r.try_get("state")?;
                    Ok(StepRecord {
                        idx: r.try_get("idx")?,
                        step_id: r.try_get("step_id")?,
                        credential: r.try_get("credential")?,
                        state: state.parse().map_err(StoreError::Corrupt)?,
                        attempts: r.try_get("attempts")?,
                        outputs_json: r.try_get("outputs_json")?,
                        error: r.try_get("error")?,
                        updated_at: r.try_get("updated_at")?,
                    })
                }).collect()
        })
    }

    /// Audit events in chain order, optionally of one run.
    pub async fn audit_events(&self, run_id: Option<&str>) -> Result<Vec<AuditEvent>> {
        let sql = "SELECT seq, at, run_id, actor, reason, credential, step, action, event, outcome, detail, fingerprint, simulated, prev_hash, hash, chain FROM audit_events WHERE ($1 IS NULL OR run_id = $1) ORDER BY seq";
        with_pool!(self, p => {
            sqlx::query(sql).bind(run_id).fetch_all(p).await?.iter().map(|r| event_from_row!(r)).collect()
        })
    }

    /// Audit events `first..=last` (of every run), in chain order.
    pub async fn audit_span(&self, first: i64, last: i64) -> Result<Vec<AuditEvent>> {
        let sql = "SELECT seq, at, run_id, actor, reason, credential, step, action, event, outcome, detail, fingerprint, simulated, prev_hash, hash, chain FROM audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq";
        with_pool!(self, p => {
            sqlx::query(sql).bind(first).bind(last).fetch_all(p).await?.iter().map(|r| event_from_row!(r)).collect()
        })
    }

    /// Checks the whole chain (with this store's key, if it has one).
    pub async fn verify_audit(&self) -> Result<Vec<AuditProblem>> {
        Ok(self.verify_audit_from(None).await?.problems)
    }

    /// Checks the whole chain, and that it still holds the row hashed `head` (exported
    /// earlier) with every row after it verifying.
    pub async fn verify_audit_from(&self, head: Option<&str>) -> Result<Verification> {
        let key = self.chain_key()?;
        Ok(audit::verify_from(
            &self.audit_events(None).await?,
            key,
            head,
        ))
    }

    /// What the dependency index knows about each file.
    pub async fn index_files(&self) -> Result<Vec<IndexedFile>> {
        with_pool!(self, p => {
            sqlx::query("SELECT path, size, mtime, sha256, format, error, packages, indexed_at FROM index_files ORDER BY path")
                .fetch_all(p).await?.iter().map(|r| Ok(IndexedFile {
                    path: r.try_get("path")?,
                    size: r.try_get("size")?,
                    mtime: r.try_get("mtime")?,
                    sha256: r.try_get("sha256")?,
                    format: r.try_get("format")?,
                    error: r.try_get("error")?,
                    packages: r.try_get("packages")?,
                    indexed_at: r.try_get("indexed_at")?,
                })).collect()
        })
    }

    /// Replaces everything the index holds for one file, atomically.
    pub async fn index_replace(
        &self,
        file: &IndexedFile,
        packages: &[(String, String, String)],
    ) -> Result<()> {
        self.index_replace_retrying(&[(file.clone(), packages.to_vec())])
            .await
    }

    /// Replaces what the index holds for many files in one transaction (a full build commits
    /// a few hundred files at a time instead of one).
    ///
    /// A file whose rows the database refuses (PostgreSQL takes no NUL in text and no index
    /// entry over about 2.7 kB) must not stop the others: the batch is then tried file by
    /// file, each refused file is recorded as unreadable with the database's reason, and the
    /// refused files come back as `(path, why)` — also one whose very record is refused (a NUL
    /// in its path), which then stays out of the index.
    pub async fn index_replace_many(
        &self,
        files: &[(IndexedFile, IndexRows)],
    ) -> Result<Vec<(String, String)>> {
        match self.index_replace_retrying(files).await {
            Err(e) if files.len() > 1 && is_refusal(&e) => {}
            Err(e) if is_refusal(&e) => return self.index_refused(&files[0].0, &e).await,
            r => return r.map(|()| Vec::new()),
        }
        let mut refused = Vec::new();
        for one in files {
            match self.index_replace_retrying(std::slice::from_ref(one)).await {
                Ok(()) => {}
                Err(e) if is_refusal(&e) => refused.extend(self.index_refused(&one.0, &e).await?),
                Err(e) => return Err(e),
            }
        }
        Ok(refused)
    }

    /// Records `file` as unreadable because the database refused its rows with `e`.
    async fn index_refused(
        &self,
        file: &IndexedFile,
        e: &StoreError,
    ) -> Result<Vec<(String, String)>> {
        let why = format!("the database refused its packages: {}", refusal_reason(e));
        let unreadable = IndexedFile {
            format: None,
            error: Some(why.clone()),
            packages: 0,
            ..file.clone()
        };
        match self
            .index_replace_retrying(&[(unreadable, Vec::new())])
            .await
        {
            Err(e) if !is_refusal(&e) => Err(e),
            _ => Ok(vec![(file.path.clone(), why)]),
        }
    }

    async fn index_replace_retrying(&self, files: &[(IndexedFile, IndexRows)]) -> Result<()> {
        // Two indexers at once: PostgreSQL may still pick one as a deadlock or serialization
        // victim (and SQLite may stay busy past its timeout). The batch is one transaction,
        // so it is simply tried again.
        let mut attempt = 0;
        loop {
            match self.index_replace_once(files).await {
                Err(StoreError::Db(e)) if attempt < 4 && is_contention(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                r => return r,
            }
        }
    }

    async fn index_replace_once(&self, files: &[(IndexedFile, IndexRows)]) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let insert_full = insert_values(&self.pool, ROWS_PER_INSERT);
        let (insert_names, select_names, delete_rows) = match self.pool {
            Pool::Sqlite(_) => (
                // `WHERE true` tells SQLite's parser the ON CONFLICT is not a join clause.
                "INSERT INTO index_names (ecosystem, name) SELECT value ->> 0, value ->> 1 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING",
                "SELECT n.id, n.ecosystem, n.name FROM json_each($1) AS j JOIN index_names AS n ON n.ecosystem = j.value ->> 0 AND n.name = j.value ->> 1",
                "DELETE FROM index_packages WHERE file IN (SELECT value FROM json_each($1))",
            ),
            Pool::Postgres(_) => (
                "INSERT INTO index_names (ecosystem, name) SELECT e ->> 0, e ->> 1 FROM jsonb_array_elements($1::jsonb) AS e ON CONFLICT DO NOTHING",
                "SELECT n.id, n.ecosystem, n.name FROM jsonb_array_elements($1::jsonb) AS e JOIN index_names AS n ON n.ecosystem = e ->> 0 AND n.name = e ->> 1",
                "DELETE FROM index_packages WHERE file IN (SELECT e::bigint FROM jsonb_array_elements_text($1::jsonb) AS e)",
            ),
        };
        // Each row's name id, or its place among the names this store has not seen yet: one
        // hash probe per row.
        let mut missing: Vec<(&str, &str)> = Vec::new();
        let resolved: Vec<Vec<(Result<i64, usize>, &str)>> = {
            let known = self.index_names.lock().expect("not poisoned");
            let mut slot: HashMap<(&str, &str), usize, FastHash> = HashMap::default();
            files
                .iter()
                .map(|(_, rows)| {
                    rows.iter()
                        .map(|(e, n, v)| {
                            let id = name_id(&known, e, n).ok_or_else(|| {
                                *slot.entry((e.as_str(), n.as_str())).or_insert_with(|| {
                                    missing.push((e.as_str(), n.as_str()));
                                    missing.len() - 1
                                })
                            });
                            (id, v.as_str())
                        })
                        .collect()
                })
                .collect()
        };
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            // Ids read inside this transaction join the shared map only once it commits: a
            // rolled-back id may be handed to another name later.
            let mut fresh: Vec<Option<i64>> = vec![None; missing.len()];
            if !missing.is_empty() {
                // In one order for every writer: two PostgreSQL writers inserting the same
                // names in different orders would deadlock.
                let mut sorted = missing.clone();
                sorted.sort_unstable();
                let json = serde_json::to_string(&sorted).expect("strings serialize");
                sqlx::query(insert_names).bind(&json).execute(&mut *tx).await?;
                let slots: HashMap<(&str, &str), usize, FastHash> =
                    missing.iter().enumerate().map(|(i, k)| (*k, i)).collect();
                for r in sqlx::query(select_names).bind(&json).fetch_all(&mut *tx).await? {
                    let (ecosystem, name): (&str, &str) = (r.try_get(1)?, r.try_get(2)?);
                    // A name the database stored differently from how it was sent: refused.
                    let slot = slots.get(&(ecosystem, name)).ok_or_else(|| {
                        StoreError::Corrupt(format!("the package name {name:?} came back changed"))
                    })?;
                    fresh[*slot] = Some(r.try_get(0)?);
                }
            }
            // The file rows in one statement: a batch names each path once (the last wins).
            let mut last: HashMap<&str, usize, FastHash> = HashMap::default();
            for (i, (file, _)) in files.iter().enumerate() {
                last.insert(file.path.as_str(), i);
            }
            let keep: Vec<usize> = (0..files.len()).filter(|&i| last[files[i].0.path.as_str()] == i).collect();
            let sql = format!(
                "INSERT INTO index_files (path, size, mtime, sha256, format, error, packages, indexed_at) VALUES {} \
                 ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, sha256 = excluded.sha256, format = excluded.format, \
                 error = excluded.error, packages = excluded.packages, indexed_at = excluded.indexed_at RETURNING id, path",
                placeholders(&self.pool, keep.len(), 8)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for &i in &keep {
                let file = &files[i].0;
                q = q.bind(&file.path).bind(file.size).bind(&file.mtime).bind(&file.sha256).bind(file.format.as_deref())
                    .bind(file.error.as_deref()).bind(file.packages).bind(&file.indexed_at);
            }
            let mut id_of: HashMap<String, i64, FastHash> = HashMap::default();
            for r in q.fetch_all(&mut *tx).await? {
                id_of.insert(r.try_get(1)?, r.try_get(0)?);
            }
            let mut rows: Vec<(i64, i64, &str)> = Vec::with_capacity(resolved.iter().map(Vec::len).sum());
            let mut ids: Vec<i64> = Vec::with_capacity(keep.len());
            // In id order, so the rows append to the table's key order.
            let mut order: Vec<(i64, usize)> = keep.iter().map(|&i| (id_of[files[i].0.path.as_str()], i)).collect();
            order.sort_unstable();
            for (id, i) in order {
                ids.push(id);
                let start = rows.len();
                for &(name, v) in &resolved[i] {
                    let name = match name {
                        Ok(id) => id,
                        Err(slot) => fresh[slot].ok_or_else(|| {
                            StoreError::Corrupt("a package name was not stored as sent".to_owned())
                        })?,
                    };
                    rows.push((id, name, v));
                }
                // Sorted, the rows append to the file's key range.
                rows[start..].sort_unstable();
            }
            // Each file's old rows go, always: another process may have indexed the same file
            // a moment ago. One statement for the batch (a key-range seek per file).
            let ids = serde_json::to_string(&ids).expect("numbers serialize");
            sqlx::query(delete_rows).bind(ids).execute(&mut *tx).await?;
            // A file may list a package twice (nested components); the key holds it once.
            rows.dedup();
            // Many rows per statement: each statement is a round trip to the database (for
            // SQLite, to its worker thread), and binding beats encoding rows as JSON for the
            // database to parse again.
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let sql = if chunk.len() == ROWS_PER_INSERT { insert_full.as_str() } else { &insert_values(&self.pool, chunk.len()) };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(chunk.len() == ROWS_PER_INSERT);
                for &(file, name, version) in chunk {
                    q = q.bind(file).bind(name).bind(version);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            let mut known = self.index_names.lock().expect("not poisoned");
            for ((ecosystem, name), id) in missing.iter().zip(fresh) {
                let Some(id) = id else { continue };
                known.entry((*ecosystem).to_owned()).or_default().insert((*name).to_owned(), id);
            }
            Ok(())
        })
    }

    /// For a large (re)build: drops the lookup index so rows go in at the speed of an
    /// append; [`Store::index_bulk_end`] builds it again in one sorted pass. If the process
    /// dies in between, lookups are slow but right, and the next refresh restores it.
    pub async fn index_bulk_begin(&self) -> Result<()> {
        with_pool!(self, p => {
            sqlx::query("DROP INDEX IF EXISTS index_packages_name").execute(p).await?;
            Ok(())
        })
    }

    /// (Re)creates the lookup index if missing; cheap when it exists.
    pub async fn index_bulk_end(&self) -> Result<()> {
        let sql = match self.pool {
            // SQLite's index on a WITHOUT ROWID table carries the primary key: covering.
            Pool::Sqlite(_) => {
                "CREATE INDEX IF NOT EXISTS index_packages_name ON index_packages (name)"
            }
            Pool::Postgres(_) => {
                "CREATE INDEX IF NOT EXISTS index_packages_name ON index_packages (name, file, version)"
            }
        };
        with_pool!(self, p => {
            match sqlx::query(sql).execute(p).await {
                // PostgreSQL: another process created it at the same moment.
                Err(e) if is_unique_violation(&e) => Ok(()),
                r => r.map(drop).map_err(Into::into),
            }
        })
    }

    /// Forgets files no longer named by any service.
    pub async fn index_remove(&self, path: &str) -> Result<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            // The file row first, as index_replace_many locks it: one lock order.
            let id: Option<i64> = sqlx::query_scalar("DELETE FROM index_files WHERE path = $1 RETURNING id").bind(path).fetch_optional(&mut *tx).await?;
            if let Some(id) = id {
                sqlx::query("DELETE FROM index_packages WHERE file = $1").bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// `(path, version)` of every indexed file holding `ecosystem/name`, at `version` if given.
    pub async fn index_lookup(
        &self,
        ecosystem: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        with_pool!(self, p => {
            sqlx::query(
                "SELECT f.path, p.version FROM index_names AS n \
                 JOIN index_packages AS p ON p.name = n.id JOIN index_files AS f ON f.id = p.file \
                 WHERE n.ecosystem = $1 AND n.name = $2 AND ($3 IS NULL OR p.version = $3) ORDER BY f.path, p.version",
            )
            .bind(ecosystem).bind(name).bind(version)
            .fetch_all(p).await?.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        })
    }

    /// Runs a raw statement (tests use this to tamper with the log).
    pub async fn execute_raw(&self, sql: String) -> Result<u64> {
        with_pool!(self, p => Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(p).await?.rows_affected()))
    }
}

/// Whether the database refused the data itself (so another file's rows may still go in),
/// rather than failing: PostgreSQL's data exceptions (22xxx: a NUL byte, an untranslatable
/// character) and program limits (54xxx: an index row too large), SQLite's "too big" and
/// type mismatches, a value the driver cannot encode, or a name that came back changed.
fn is_refusal(e: &StoreError) -> bool {
    match e {
        StoreError::Corrupt(_) | StoreError::Db(sqlx::Error::Encode(_)) => true,
        StoreError::Db(sqlx::Error::Database(d)) => d.code().is_some_and(|c| {
            c.starts_with("22") || c.starts_with("54") || matches!(c.as_ref(), "18" | "20" | "25")
        }),
        _ => false,
    }
}

fn refusal_reason(e: &StoreError) -> String {
    match e {
        StoreError::Db(sqlx::Error::Database(d)) => d.message().to_owned(),
        e => e.to_string(),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// A transaction lost to another writer: a PostgreSQL deadlock (40P01) or serialization
/// failure (40001), or SQLite still locked.
fn is_contention(e: &sqlx::Error) -> bool {
    is_busy(e)
        || matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.message().contains("database is locked"))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        // The last `@` ends the user info: a password may itself contain `@`.
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

// After the macros it uses.
pub mod history;
mod lease;
