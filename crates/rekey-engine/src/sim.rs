//! The simulated provider: every action of every kind, with latency, deterministic failures and
//! a small durable ledger (its own `SQLite` file) standing in for the real provider's state.
//!
//! The ledger is what makes crash tests honest: a "key" minted by a step whose outcome was lost
//! really exists in it, and reconciliation must find and delete it.
//!
//! Secret values are never written to the ledger: a value is derived from its ledger id and a
//! random salt kept there (`simsec_<id>_<mac>`), as a real provider holds the value itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use rekey_spec::Effect;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::provider::Provider;
use crate::provider::{Call, ProviderError, Reconciled, Value, Values};

/// How the simulation behaves.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    pub latency: Duration,
    /// Probability that one call fails with a transient error.
    pub fail_rate: f64,
    pub seed: u64,
    /// Plan step ids that fail permanently (failure injection).
    pub fail_steps: BTreeSet<String>,
    /// Abort the process at the N-th crash point (crash tests).
    pub crash_at: Option<u64>,
    /// Windows in which every call to a provider fails transiently.
    pub outages: Vec<Outage>,
}

/// A simulated outage: calls to `provider` fail from `start` after the simulator opened, for
/// `duration`.
#[derive(Debug, Clone)]
pub struct Outage {
    pub provider: String,
    pub start: Duration,
    pub duration: Duration,
}

pub struct SimProvider {
    pool: SqlitePool,
    salt: String,
    options: SimOptions,
    opened: std::time::Instant,
    /// Requests made to the simulated APIs, per action (a batch is one request).
    requests: std::sync::Mutex<BTreeMap<String, u64>>,
}

/// Actions whose real API takes many at once: GitHub's `POST /credentials/revoke` (1,000
/// tokens a request) and Hugging Face's `POST /api/credentials/revoke`.
const BATCHED: &[&str] = &[
    "github.credentials.revoke",
    "huggingface.credentials.revoke",
];

/// Steps per simulated batch request.
const BATCH_LIMIT: usize = 1000;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    // A credential value: `minted_run` = the run that created it (`seed` for the original).
    "CREATE TABLE IF NOT EXISTS credential_values (id INTEGER PRIMARY KEY AUTOINCREMENT, credential TEXT NOT NULL, minted_run TEXT NOT NULL, minted_by TEXT NOT NULL, state TEXT NOT NULL, changed_by TEXT)",
    // What each consumer holds: stage `pending` or `current`.
    "CREATE TABLE IF NOT EXISTS consumer_values (credential TEXT NOT NULL, consumer TEXT NOT NULL, stage TEXT NOT NULL, value_id INTEGER NOT NULL, written_by TEXT NOT NULL, PRIMARY KEY (credential, consumer, stage))",
    // The plain fields a delivery wrote beside the secret ones (a key id): read back as written.
    "CREATE TABLE IF NOT EXISTS delivered_plain (credential TEXT NOT NULL, consumer TEXT NOT NULL, value_id INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (credential, consumer, value_id))",
    // Every successful effect; `reverted` when reconciliation removed it.
    "CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, idem_key TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, reverted INTEGER NOT NULL DEFAULT 0)",
];

impl SimProvider {
    pub async fn open(path: &Path, options: SimOptions) -> Result<Self, sqlx::Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        for stmt in SCHEMA {
            sqlx::query(*stmt).execute(&pool).await?;
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', $1)")
            .bind(hex::encode(salt))
            .execute(&pool)
            .await?;
        let salt: String = sqlx::query("SELECT value FROM meta WHERE key = 'salt'")
            .fetch_one(&pool)
            .await?
            .get(0);
        Ok(Self {
            pool,
            salt,
            options,
            opened: std::time::Instant::now(),
            requests: std::sync::Mutex::default(),
        })
    }

    /// Gives every credential of a plan its original ("seed") value if it has none yet.
    pub async fn seed(&self, credentials: impl Iterator<Item = &str>) -> Result<(), sqlx::Error> {
        for c in credentials {
            let n: i64 =
                sqlx::query("SELECT COUNT(*) FROM credential_values WHERE credential = $1")
                    .bind(c)
                    .fetch_one(&self.pool)
                    .await?
                    .get(0);
            if n == 0 {
                sqlx::query("INSERT INTO credential_values (credential, minted_run, minted_by, state) VALUES ($1, 'seed', 'seed', 'active')")
                    .bind(c)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    /// The secret of a value id: derived, never stored.
    fn secret_of(&self, id: i64) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.salt.as_bytes())
            .expect("any key length");
        mac.update(&id.to_le_bytes());
        format!(
            "simsec_{id}_{}",
            &hex::encode(mac.finalize().into_bytes())[..24]
        )
    }

    /// The value id inside a secret, if it is one of ours and authentic.
    fn id_of(&self, secret: &str) -> Option<i64> {
        let id: i64 = secret
            .strip_prefix("simsec_")?
            .split('_')
            .next()?
            .parse()
            .ok()?;
        (self.secret_of(id) == secret).then_some(id)
    }

    /// A deterministic coin for (seed, step, attempt).
    fn flaky(&self, call: &Call<'_>) -> bool {
        if self.options.fail_rate <= 0.0 {
            return false;
        }
        let mut h = Sha256::new();
        h.update(self.options.seed.to_le_bytes());
        h.update(call.idempotency_key.as_bytes());
        h.update(call.attempt.to_le_bytes());
        let d = h.finalize();
        let x = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
        #[allow(clippy::cast_precision_loss)]
        let p = x as f64 / u64::MAX as f64;
        p < self.options.fail_rate
    }

    /// Whether a request fails transiently: one coin per request, so a batch request fails
    /// or gets through as a whole.
    fn flaky_request(&self, calls: &[Call<'_>]) -> bool {
        if self.options.fail_rate <= 0.0 {
            return false;
        }
        let mut h = Sha256::new();
        h.update(self.options.seed.to_le_bytes());
        for c in calls {
            h.update(c.idempotency_key.as_bytes());
        }
        h.update(calls.first().map_or(0, |c| c.attempt).to_le_bytes());
        let d = h.finalize();
        let x = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
        #[allow(clippy::cast_precision_loss)]
        let p = x as f64 / u64::MAX as f64;
        p < self.options.fail_rate
    }

    /// Counts a request to the simulated API of `action`.
    fn count(&self, action: &str) {
        *self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(action.to_owned())
            .or_default() += 1;
    }

    /// Requests made so far for `action` (a batch counts once), failed ones included.
    pub fn requests(&self, action: &str) -> u64 {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(action)
            .copied()
            .unwrap_or(0)
    }

    /// The outage `provider` is in now, if any.
    fn outage(&self, provider: &str) -> Option<&Outage> {
        let now = self.opened.elapsed();
        self.options
            .outages
            .iter()
            .find(|o| o.provider == provider && o.start <= now && now < o.start + o.duration)
    }

    async fn record_effect(&self, call: &Call<'_>) -> Result<(), ProviderError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        Self::record_effect_on(&mut conn, call).await
    }

    async fn record_effect_on(
        conn: &mut SqliteConnection,
        call: &Call<'_>,
    ) -> Result<(), ProviderError> {
        sqlx::query("INSERT INTO effects (idem_key, run_id, step) VALUES ($1, $2, $3)")
            .bind(call.idempotency_key)
            .bind(call.run_id)
            .bind(&call.step.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Retires the old values of every call of a batch and records the effects, all in one
    /// transaction: the request takes effect as a whole or not at all.
    async fn retire_all(&self, calls: &[&Call<'_>], to: &str) -> Result<(), ProviderError> {
        // IMMEDIATE: a deferred transaction that reads, then writes after another connection
        // committed, fails at once in WAL mode instead of waiting its turn.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        for c in calls {
            self.retire_on(&mut tx, c, to).await?;
            Self::record_effect_on(&mut tx, c).await?;
        }
        tx.commit().await.map_err(db)
    }

    /// Mints (or, for the same idempotency key, returns again) a value.
    async fn mint(&self, call: &Call<'_>) -> Result<i64, ProviderError> {
        let existing: Option<i64> = sqlx::query(
            "SELECT id FROM credential_values WHERE minted_by = $1 AND state = 'active'",
        )
        .bind(call.idempotency_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|r| r.get(0));
        if let Some(id) = existing {
            return Ok(id);
        }
        let id: i64 = sqlx::query("INSERT INTO credential_values (credential, minted_run, minted_by, state) VALUES ($1, $2, $3, 'active') RETURNING id")
            .bind(&call.credential.id)
            .bind(call.run_id)
            .bind(call.idempotency_key)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .get(0);
        Ok(id)
    }

    fn outputs_for(&self, call: &Call<'_>, id: i64) -> Values {
        call.step
            .outputs
            .iter()
            .map(|o| {
                let v = if o.secret {
                    Value::secret(self.secret_of(id))
                } else {
                    Value::Plain(format!("sim-{}-{id}", o.name))
                };
                (o.name.clone(), v)
            })
            .collect()
    }

    /// Value ids named by `except_*` inputs (`sim-<output>-<id>`) or carried in secret inputs.
    fn named_ids(&self, call: &Call<'_>, prefix: &str) -> Vec<i64> {
        call.inputs
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter_map(|(_, v)| match v {
                Value::Plain(s) => s.rsplit('-').next()?.parse().ok(),
                Value::Secret(_) => self.id_of(v.expose()),
            })
            .collect()
    }

    /// Disables or deletes the credential's old values: those not minted by this run.
    async fn retire(&self, call: &Call<'_>, to: &str) -> Result<(), ProviderError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        self.retire_on(&mut conn, call, to).await
    }

    async fn retire_on(
        &self,
        conn: &mut SqliteConnection,
        call: &Call<'_>,
        to: &str,
    ) -> Result<(), ProviderError> {
        let keep = self.named_ids(call, "except");
        let rows = sqlx::query("SELECT id, state FROM credential_values WHERE credential = $1 AND minted_run != $2 AND state != 'deleted'")
            .bind(&call.credential.id)
            .bind(call.run_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        for r in rows {
            let id: i64 = r.get(0);
            let state: String = r.get(1);
            if keep.contains(&id) || state == to {
                continue;
            }
            sqlx::query("UPDATE credential_values SET state = $1, changed_by = $2 WHERE id = $3")
                .bind(to)
                .bind(call.idempotency_key)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    /// The value id a step delivers or verifies: from its secret inputs.
    fn input_value_id(&self, call: &Call<'_>) -> Option<i64> {
        call.inputs
            .values()
            .filter(|v| v.is_secret())
            .find_map(|v| self.id_of(v.expose()))
    }

    fn crash_point(&self) {
        crash_point(self.options.crash_at);
    }
}

static CRASH_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Aborts the process (no cleanup, like SIGKILL) at the configured crash point.
pub fn crash_point(at: Option<u64>) {
    if let Some(at) = at {
        let n = CRASH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == at {
            eprintln!("rekey: simulated crash at crash point {n}");
            std::process::abort();
        }
    }
}

// By value so that it reads `.map_err(db)`.
#[allow(clippy::needless_pass_by_value)]
fn db(e: sqlx::Error) -> ProviderError {
    ProviderError::transient(format!("simulated provider ledger: {e}"))
}

#[async_trait]
impl Provider for SimProvider {
    async fn reread(
        &self,
        call: &Call<'_>,
        outputs: &Values,
    ) -> Result<Option<Values>, ProviderError> {
        // `read_current` pinned the value it read as `sim-version-{id}`.
        let Some(id) = outputs
            .get("version")
            .and_then(|v| v.expose().strip_prefix("sim-version-"))
            .and_then(|id| id.parse::<i64>().ok())
        else {
            return Ok(None);
        };
        Ok(Some(self.outputs_for(call, id)))
    }

    fn batch_limit(&self, step: &rekey_plan::PlannedStep) -> Option<usize> {
        BATCHED
            .contains(&step.action.as_str())
            .then_some(BATCH_LIMIT)
    }

    /// One request for the whole batch: one latency, one fault coin, one outage check; the
    /// old values of every call are retired in one ledger transaction. A `--sim-fail` step
    /// fails on its own (the API rejects that token), the others go through.
    async fn execute_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        let Some(first) = calls.first() else {
            return Vec::new();
        };
        let retiring = match first.step.effect {
            Effect::Disable => "inactive",
            Effect::Delete => "deleted",
            _ => "",
        };
        if retiring.is_empty() || calls.iter().any(|c| c.step.action != first.step.action) {
            // Not a request this simulator batches: one per call.
            let mut out = Vec::with_capacity(calls.len());
            for c in calls {
                out.push(self.execute(c).await);
            }
            return out;
        }
        self.count(&first.step.action);
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        let all = |e: ProviderError| vec![Err(e); calls.len()];
        if let Some(o) = self.outage(&first.step.provider) {
            return all(ProviderError::transient(format!(
                "simulated outage of {} (503 Service Unavailable)",
                o.provider
            )));
        }
        if self.flaky_request(calls) {
            return all(ProviderError::transient("simulated transient failure"));
        }
        let ok: Vec<&Call<'_>> = calls
            .iter()
            .filter(|c| !self.options.fail_steps.contains(&c.step.id))
            .collect();
        if let Err(e) = self.retire_all(&ok, retiring).await {
            return all(e);
        }
        self.crash_point();
        calls
            .iter()
            .map(|c| {
                if self.options.fail_steps.contains(&c.step.id) {
                    Err(ProviderError::permanent(format!(
                        "simulated failure of {}",
                        c.step.id
                    )))
                } else {
                    Ok(c.step
                        .outputs
                        .iter()
                        .map(|o| (o.name.clone(), Value::Plain("sim-done".into())))
                        .collect())
                }
            })
            .collect()
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.count(&call.step.action);
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        if self.options.fail_steps.contains(&call.step.id) {
            return Err(ProviderError::permanent(format!(
                "simulated failure of {}",
                call.step.id
            )));
        }
        if let Some(o) = self.outage(&call.step.provider) {
            return Err(ProviderError::transient(format!(
                "simulated outage of {} (503 Service Unavailable)",
                o.provider
            )));
        }
        if self.flaky(call) {
            return Err(ProviderError::transient("simulated transient failure"));
        }
        let step = call.step;
        let outputs = match (step.effect, step.action.as_str()) {
            (Effect::Create, _) | (Effect::Human, "manual.provide_secret") => {
                let id = self.mint(call).await?;
                // One value at a time (a role's password, an Auth0 secret): the new one
                // replaces the old, as the real provider does. A kind can hold two values with
                // one provider and one with another (Okta vs Auth0): an irreversible mint is
                // one whose old value dies with it.
                if call.credential.kind.capabilities().max_overlap == Some(1) || step.irreversible {
                    self.retire(call, "deleted").await?;
                }
                self.outputs_for(call, id)
            }
            (Effect::Write, "consumer.deliver") => {
                let id = self
                    .input_value_id(call)
                    .ok_or_else(|| ProviderError::permanent("nothing to deliver"))?;
                sqlx::query("INSERT INTO consumer_values (credential, consumer, stage, value_id, written_by) VALUES ($1, $2, 'pending', $3, $4) ON CONFLICT (credential, consumer, stage) DO UPDATE SET value_id = excluded.value_id, written_by = excluded.written_by")
                    .bind(&call.credential.id)
                    .bind(step.consumer_label.as_deref().unwrap_or("-"))
                    .bind(id)
                    .bind(call.idempotency_key)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                let plain: BTreeMap<&str, &str> = call
                    .inputs
                    .iter()
                    .filter(|(_, v)| !v.is_secret())
                    .map(|(k, v)| (k.as_str(), v.expose()))
                    .collect();
                sqlx::query("INSERT INTO delivered_plain (credential, consumer, value_id, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (credential, consumer, value_id) DO UPDATE SET doc = excluded.doc")
                    .bind(&call.credential.id)
                    .bind(step.consumer_label.as_deref().unwrap_or("-"))
                    .bind(id)
                    .bind(serde_json::to_string(&plain).expect("strings serialize"))
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                [(
                    "version".to_owned(),
                    Value::Plain(format!("sim-version-{id}")),
                )]
                .into()
            }
            (Effect::Write, "consumer.promote") => {
                let label = step.consumer_label.as_deref().unwrap_or("-");
                sqlx::query("INSERT INTO consumer_values (credential, consumer, stage, value_id, written_by) SELECT credential, consumer, 'current', value_id, $3 FROM consumer_values WHERE credential = $1 AND consumer = $2 AND stage = 'pending' ON CONFLICT (credential, consumer, stage) DO UPDATE SET value_id = excluded.value_id, written_by = excluded.written_by")
                    .bind(&call.credential.id)
                    .bind(label)
                    .bind(call.idempotency_key)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Values::new()
            }
            // E.g. making room: nothing to simulate, but later steps may read its outputs.
            (Effect::Write, _) => call
                .step
                .outputs
                .iter()
                .map(|o| (o.name.clone(), Value::Plain(format!("sim-{}", o.name))))
                .collect(),
            (Effect::Read | Effect::Human, "consumer.read_current") => {
                let id: Option<i64> = sqlx::query("SELECT id FROM credential_values WHERE credential = $1 AND minted_run != $2 AND state = 'active' ORDER BY id DESC LIMIT 1")
                    .bind(&call.credential.id)
                    .bind(call.run_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|r| r.get(0));
                let id = id.ok_or_else(|| ProviderError::permanent("no current value to read"))?;
                self.outputs_for(call, id)
            }
            (Effect::Read, _) => call
                .step
                .outputs
                .iter()
                .map(|o| (o.name.clone(), Value::Plain("sim-unknown".into())))
                .collect(),
            (Effect::Verify, _) => {
                let id = self
                    .input_value_id(call)
                    .ok_or_else(|| ProviderError::permanent("nothing to verify"))?;
                let state: Option<String> =
                    sqlx::query("SELECT state FROM credential_values WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?
                        .map(|r| r.get(0));
                if state.as_deref() != Some("active") {
                    return Err(ProviderError::permanent(
                        "verification failed: the new value is not accepted",
                    ));
                }
                call.step
                    .outputs
                    .iter()
                    .map(|o| (o.name.clone(), Value::Plain(format!("sim-{}", o.name))))
                    .collect()
            }
            (Effect::Disable, _) => {
                self.retire(call, "inactive").await?;
                call.step
                    .outputs
                    .iter()
                    .map(|o| (o.name.clone(), Value::Plain("sim-done".into())))
                    .collect()
            }
            (Effect::Delete | Effect::Human, _) => {
                self.retire(call, "deleted").await?;
                call.step
                    .outputs
                    .iter()
                    .map(|o| (o.name.clone(), Value::Plain("sim-done".into())))
                    .collect()
            }
        };
        self.crash_point();
        self.record_effect(call).await?;
        Ok(outputs)
    }

    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        let step = call.step;
        match (step.effect, step.action.as_str()) {
            (Effect::Create, _) | (Effect::Human, "manual.provide_secret") => {
                sqlx::query("UPDATE credential_values SET state = 'deleted', changed_by = 'undo' WHERE minted_by = $1")
                    .bind(call.idempotency_key)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
            }
            (Effect::Write, _) => {
                sqlx::query("DELETE FROM consumer_values WHERE written_by = $1")
                    .bind(call.idempotency_key)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
            }
            (Effect::Disable, _) => {
                sqlx::query("UPDATE credential_values SET state = 'active', changed_by = 'undo' WHERE changed_by = $1 AND state = 'inactive'")
                    .bind(call.idempotency_key)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
            }
            _ => {}
        }
        sqlx::query("UPDATE effects SET reverted = 1 WHERE idem_key = $1")
            .bind(call.idempotency_key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        // A value minted by the lost call is an orphan: its secret died with the process.
        if matches!(call.step.effect, Effect::Create) || call.step.action == "manual.provide_secret"
        {
            let n = sqlx::query("UPDATE credential_values SET state = 'deleted', changed_by = 'reconcile' WHERE minted_by = $1 AND state != 'deleted'")
                .bind(call.idempotency_key)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
            if n > 0 {
                tracing::info!(step = %call.step.id, "reconcile: removed a value minted by a step whose outcome was lost");
            }
        }
        // A revoke whose outcome was lost may well have happened: ask whether the old value
        // is still there. Calling it again may be impossible (a revoked token cannot be
        // captured again), so "already done" must be recognized.
        let step = call.step;
        let retiring = match (step.effect, step.action.as_str()) {
            (Effect::Disable, _) => Some("('active')"),
            (Effect::Delete, _) | (Effect::Human, "manual.confirm") => {
                Some("('active', 'inactive')")
            }
            _ => None,
        };
        if let Some(states) = retiring {
            let keep = self.named_ids(call, "except");
            let remaining: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM credential_values WHERE credential = $1 AND minted_run != $2 AND state IN {states}"
            )))
            .bind(&call.credential.id)
            .bind(call.run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .filter(|id| !keep.contains(id))
            .collect();
            let done: i64 =
                sqlx::query("SELECT COUNT(*) FROM effects WHERE idem_key = $1 AND reverted = 0")
                    .bind(call.idempotency_key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?
                    .get(0);
            if remaining.is_empty() {
                if done == 0 {
                    self.record_effect(call).await?;
                }
                let outputs = step
                    .outputs
                    .iter()
                    .map(|o| (o.name.clone(), Value::Plain("sim-done".into())))
                    .collect();
                return Ok(Reconciled::Done(outputs));
            }
        }
        sqlx::query("UPDATE effects SET reverted = 1 WHERE idem_key = $1")
            .bind(call.idempotency_key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(Reconciled::NotDone)
    }

    async fn read_back(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        let Some(target) = &call.step.target else {
            return Ok(None);
        };
        if !target.readable() {
            return Ok(None);
        }
        let id: Option<i64> = sqlx::query("SELECT value_id FROM consumer_values WHERE credential = $1 AND consumer = $2 AND stage = 'pending'")
            .bind(&call.credential.id)
            .bind(call.step.consumer_label.as_deref().unwrap_or("-"))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| r.get(0));
        let Some(id) = id else {
            return Ok(None);
        };
        let plain: BTreeMap<String, String> = sqlx::query("SELECT doc FROM delivered_plain WHERE credential = $1 AND consumer = $2 AND value_id = $3")
            .bind(&call.credential.id)
            .bind(call.step.consumer_label.as_deref().unwrap_or("-"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .and_then(|r| serde_json::from_str(&r.get::<String, _>(0)).ok())
            .unwrap_or_default();
        // The document delivered: its plain fields as written, every secret field the same
        // simulated value.
        Ok(Some(
            call.step
                .inputs
                .keys()
                .map(|k| {
                    let v = plain.get(k).cloned().unwrap_or_else(|| self.secret_of(id));
                    (k.clone(), SecretString::from(v))
                })
                .collect(),
        ))
    }
}

/// What the ledger says about the end state (for tests and `rekey status --simulate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSummary {
    /// Active values per credential, with the run that minted each.
    pub active: BTreeMap<String, Vec<(i64, String)>>,
    /// Non-reverted effects per plan step id of the run.
    pub effects: BTreeMap<String, i64>,
    /// Current consumer values per `credential/consumer`.
    pub current: BTreeMap<String, i64>,
}

impl SimProvider {
    pub async fn summary(&self, run_id: &str) -> Result<LedgerSummary, sqlx::Error> {
        let mut active: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for r in sqlx::query("SELECT credential, id, minted_run FROM credential_values WHERE state = 'active' ORDER BY id")
            .fetch_all(&self.pool)
            .await?
        {
            active.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
        }
        let mut effects = BTreeMap::new();
        for r in sqlx::query(
            "SELECT step, COUNT(*) FROM effects WHERE run_id = $1 AND reverted = 0 GROUP BY step",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?
        {
            effects.insert(r.get(0), r.get(1));
        }
        let mut current = BTreeMap::new();
        for r in sqlx::query(
            "SELECT credential, consumer, value_id FROM consumer_values WHERE stage = 'current'",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let c: String = r.get(0);
            let k: String = r.get(1);
            current.insert(format!("{c}/{k}"), r.get(2));
        }
        Ok(LedgerSummary {
            active,
            effects,
            current,
        })
    }

    /// Every value id the ledger has ever held.
    pub async fn all_value_ids(&self) -> Result<Vec<i64>, sqlx::Error> {
        Ok(sqlx::query("SELECT id FROM credential_values ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// The simulated secret of a value id (tests search outputs for it).
    pub fn secret_for_test(&self, id: i64) -> String {
        self.secret_of(id)
    }
}
