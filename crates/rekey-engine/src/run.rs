//! Executing a stored plan: write-ahead step state, bounded concurrency, retries, the failure
//! policy, reconciliation on resume, and secrets that live only in memory.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rekey_plan::{Plan, PlannedStep};
use rekey_spec::template::{Part, Var};
use rekey_spec::{Consumer, Effect};
use rekey_store::{
    AuditDraft, LEASE_TTL, LeaseHolder, NewRun, RunRecord, RunStatus, StepEvent, StepRecord,
    StepState, Store, StoreError, TakeOver, Transition,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::batch::{BatchTask, Gathering};
use crate::fingerprint::Fingerprinter;
use crate::history;
use crate::provider::{
    Call, ErrorKind, Provider, ProviderError, Reconciled, Reports, Value, Values, plain_json,
};

mod exec;
mod task;

use exec::{Exec, Slots};
pub(crate) use task::{TaskCtx, backoff, next_try_at, sleep_without_slot};
use task::{WriteReq, log_report, writer};

/// Recorded as the error of a step being redone because its secret was lost.
const REDO_MARK: &str = "redo: the new value's secret was lost with a crashed process";

/// Tuning of a run.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Steps in flight at once, across all providers.
    pub concurrency: usize,
    /// Steps in flight at once per provider (AWS, GitHub, …).
    pub per_provider: usize,
    pub step_timeout: Duration,
    /// How long a step keeps retrying transient errors and rate limits before it fails
    /// (permanent errors fail at once). A provider may ask for more for some actions
    /// ([`Provider::retry_budget`]: a new key that is still propagating).
    pub retry_budget: Duration,
    pub backoff_base: Duration,
    /// The longest backoff between tries; a server's `Retry-After` is waited even past it.
    pub backoff_max: Duration,
    /// How long a ready step whose provider takes many in one request
    /// ([`Provider::batch_limit`]) waits for others of the same action: the wait starts again
    /// each time one joins, up to `batch_max_wait`.
    pub batch_window: Duration,
    /// The longest a step is held to gather a batch.
    pub batch_max_wait: Duration,
    pub actor: String,
    pub reason: Option<String>,
    /// Abort at the N-th crash point (crash tests).
    pub crash_at: Option<u64>,
    /// Testing aid: call every action twice with the same idempotency key, to prove that
    /// running a step again changes nothing.
    pub repeat_calls: bool,
    /// This process, as the holder of the run's owner lease.
    pub holder: LeaseHolder,
    /// Whether `resume` may take a live lease from another process (`--force`).
    pub take_over: TakeOver,
    /// Credentials whose lost value, possibly live in a consumer that cannot be read back,
    /// an operator allowed to be minted again (`resume --mint-again`): the lost value is
    /// revoked and the new one overwrites those consumers.
    pub mint_again: MintAgain,
}

/// Which credentials `resume` may mint again although their lost value may be live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MintAgain {
    #[default]
    None,
    Only(std::collections::BTreeSet<String>),
    All,
}

impl MintAgain {
    fn allows(&self, credential: &str) -> bool {
        match self {
            Self::None => false,
            Self::Only(ids) => ids.contains(credential),
            Self::All => true,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            per_provider: 8,
            step_timeout: Duration::from_mins(2),
            retry_budget: Duration::from_mins(2),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(20),
            batch_window: Duration::from_millis(250),
            batch_max_wait: Duration::from_secs(5),
            actor: "unknown".into(),
            reason: None,
            crash_at: None,
            repeat_calls: false,
            holder: LeaseHolder::this_process(),
            take_over: TakeOver::IfDead,
            mint_again: MintAgain::None,
        }
    }
}

/// Which provider serves which step.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: HashMap<String, Arc<dyn Provider>>,
    fallback: Option<Arc<dyn Provider>>,
}

impl Providers {
    /// Every step goes to one provider (the simulator).
    pub fn all(p: Arc<dyn Provider>) -> Self {
        Self {
            by_name: HashMap::new(),
            fallback: Some(p),
        }
    }

    #[must_use]
    pub fn with(mut self, name: &str, p: Arc<dyn Provider>) -> Self {
        self.by_name.insert(name.to_owned(), p);
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_name
            .get(name)
            .cloned()
            .or_else(|| self.fallback.clone())
    }
}

/// Something that wants to watch a run (progress bars, plain lines).
pub trait Observer: Send + Sync {
    fn step_finished(&self, _step: &PlannedStep, _state: StepState) {}
    fn message(&self, _text: &str) {}
}

/// A run's result.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    pub message: Option<String>,
    pub time_to_safe: rekey_plan::TimeToSafe,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored plan of run {0} cannot be read: {1}")]
    Plan(String, String),
    #[error("run {0} is {1}: nothing to resume")]
    Finished(String, RunStatus),
    #[error("no provider for `{0}` in this build; rehearse with --simulate")]
    NoProvider(String),
    #[error("cannot run {0}: {1}; rehearse with --simulate")]
    Unsupported(String, String),
    #[error("a consumer or target is not there, so nothing was changed:\n  - {}", .0.join("\n  - "))]
    Preflight(Vec<String>),
    /// What a run trusts on resume (its plan, options, step outputs) no longer matches what its
    /// keyed audit rows recorded: someone wrote the database.
    #[error(
        "run {0}: {1}; someone with write access to the state database changed it, so the run is not resumed and nothing was changed (compare `rekey audit show --run {0}`; start a new run or `rekey abandon {0}`)"
    )]
    Tampered(String, String),
    /// A run whose creation recorded no keyed hash of its plan (started by an earlier rekey).
    #[error(
        "run {0}: {1}, so its stored plan cannot be checked: it is not resumed and nothing was changed (finish it with the rekey that started it, or `rekey abandon {0}` and start a new run)"
    )]
    Unchecked(String, String),
}

/// Labels of the hashes in a `run_created` row's detail.
const PLAN_SHA256: &str = "plan sha256 ";
const OPTIONS_SHA256: &str = "options sha256 ";

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The idempotency key of a step in a run: stable across retries and resumes.
pub fn idempotency_key(run_id: &str, step_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(run_id.as_bytes());
    h.update([0]);
    h.update(step_id.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// A new run id: sortable by time, unique.
pub fn new_run_id() -> String {
    let mut r = [0u8; 3];
    getrandom::fill(&mut r).expect("the OS has randomness");
    let ts = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
    format!("run-{ts}-{}", hex::encode(r))
}

pub struct Engine {
    pub store: Arc<Store>,
    pub providers: Providers,
    pub fingerprints: Arc<Fingerprinter>,
    pub config: EngineConfig,
    pub simulated: bool,
    pub observer: Option<Arc<dyn Observer>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredState {
    Active,
    /// A step failed; no new steps start; decide when in-flight steps are done.
    Halting,
    RolledBack,
    NeedsOperator,
    UndoFailed,
    Paused,
}

/// What a task reports back to the scheduler.
pub(crate) enum TaskResult {
    Succeeded(Values),
    Waiting,
    Failed(String),
}

impl Engine {
    fn audit(
        &self,
        run_id: &str,
        step: Option<&PlannedStep>,
        cred: Option<&str>,
        event: &str,
        outcome: &str,
    ) -> AuditDraft {
        AuditDraft {
            run_id: Some(run_id.to_owned()),
            actor: self.config.actor.clone(),
            reason: self.config.reason.clone(),
            credential: cred.map(str::to_owned),
            step: step.map(|s| s.id.clone()),
            action: step.map(|s| s.action.clone()),
            event: event.to_owned(),
            outcome: outcome.to_owned(),
            detail: None,
            fingerprint: None,
            simulated: self.simulated,
        }
    }

    /// Appends an audit event about step `step` of its credential, with a detail.
    async fn audit_step(
        &self,
        run_id: &str,
        plan: &Plan,
        step: &PlannedStep,
        event: &str,
        outcome: &str,
        detail: String,
    ) -> Result<(), EngineError> {
        let cred = &plan.credentials[step.credential as usize].id;
        let mut a = self.audit(run_id, Some(step), Some(cred), event, outcome);
        a.detail = Some(detail);
        Ok(self.store.append_audit(a).await?)
    }

    /// Refuses, before anything runs, a plan with a step no provider of this build can do.
    pub fn check(&self, plan: &Plan) -> Result<(), EngineError> {
        for s in &plan.steps {
            if s.effect == Effect::Human && !self.simulated {
                continue;
            }
            match self.providers.get(&s.provider) {
                None => return Err(EngineError::NoProvider(s.provider.clone())),
                Some(p) => p
                    .supports(s)
                    .map_err(|why| EngineError::Unsupported(s.id.clone(), why))?,
            }
        }
        Ok(())
    }

    /// Asks each provider to confirm that what the plan's steps touch exists, before anything
    /// changes; every problem is reported, not only the first.
    pub async fn preflight(&self, plan: &Plan) -> Result<(), EngineError> {
        if self.simulated {
            return Ok(());
        }
        let mut checks = JoinSet::new();
        let slots = Arc::new(Semaphore::new(16));
        for s in &plan.steps {
            if s.effect == Effect::Human {
                continue;
            }
            let Some(p) = self.providers.get(&s.provider) else {
                continue;
            };
            let step = s.clone();
            let slots = Arc::clone(&slots);
            checks.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("semaphore open");
                let mut last = None;
                for attempt in 0..3u32 {
                    match p.preflight(&step).await {
                        Ok(()) => return None,
                        Err(e) if e.kind == ErrorKind::Permanent => {
                            return Some(format!("{}: {e}", step.id));
                        }
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                last.map(|e| format!("{}: {e}", step.id))
            });
        }
        let mut problems = Vec::new();
        while let Some(r) = checks.join_next().await {
            if let Some(p) = r.expect("preflight checks do not panic") {
                problems.push(p);
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        problems.sort();
        problems.dedup();
        Err(EngineError::Preflight(problems))
    }

    /// Stores the plan as a new run (taking its credential locks) and executes it.
    pub async fn start(
        &self,
        plan: &Plan,
        run_id: &str,
        options_json: &str,
    ) -> Result<RunOutcome, EngineError> {
        self.check(plan)?;
        self.preflight(plan).await?;
        self.store.set_chain_key(self.fingerprints.chain_key())?;
        self.store.check_chain_head().await?;
        let plan_json = serde_json::to_string(plan).expect("plans serialize");
        let steps: Vec<(i64, String, String)> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    i64::try_from(i).expect("few steps"),
                    s.id.clone(),
                    plan.credentials[s.credential as usize].id.clone(),
                )
            })
            .collect();
        let credentials: Vec<String> = plan.credentials.iter().map(|c| c.id.clone()).collect();
        let mut audit = self.audit(run_id, None, None, "run_created", "ok");
        // The hashes of what resume will trust, in a row only the key holder can write.
        audit.detail = Some(format!(
            "mode {}, {} credential(s), {} step(s){}; {PLAN_SHA256}{}, {OPTIONS_SHA256}{}",
            plan.mode.as_str(),
            plan.credentials.len(),
            plan.steps.len(),
            if self.simulated { ", simulated" } else { "" },
            sha256_hex(&plan_json),
            sha256_hex(options_json),
        ));
        self.store
            .create_run(
                &NewRun {
                    id: run_id,
                    mode: plan.mode.as_str(),
                    reason: self.config.reason.as_deref(),
                    actor: &self.config.actor,
                    simulated: self.simulated,
                    plan_json: &plan_json,
                    options_json,
                    steps: &steps,
                    credentials: &credentials,
                    lease: Some(&self.config.holder),
                },
                audit,
            )
            .await?;
        let records = self.store.steps(run_id).await?;
        self.execute_leased(run_id, plan, records, &BTreeMap::new())
            .await
    }

    /// Continues a run from its stored plan and step states, after reconciling whatever a crash
    /// left unknown. `operator_inputs` answer manual steps (step id → value).
    pub async fn resume(
        &self,
        run_id: &str,
        operator_inputs: &BTreeMap<String, SecretString>,
    ) -> Result<RunOutcome, EngineError> {
        let run = self.store.run(run_id).await?;
        if run.status.is_terminal() {
            return Err(EngineError::Finished(run_id.to_owned(), run.status));
        }
        self.store.set_chain_key(self.fingerprints.chain_key())?;
        self.store.check_chain_head().await?;
        self.check_stored_run(&run).await?;
        let plan: Plan = serde_json::from_str(&run.plan_json)
            .map_err(|e| EngineError::Plan(run_id.to_owned(), e.to_string()))?;
        // One process drives a run: refused (naming the holder) while another one is alive.
        let previous = self
            .store
            .take_lease(
                run_id,
                &self.config.holder,
                LEASE_TTL,
                self.config.take_over,
            )
            .await?;
        // It may have finished (or been abandoned) since it was read: nobody else can now.
        let status = match self.store.run(run_id).await {
            Ok(r) => r.status,
            Err(e) => {
                let _ = self.store.release_lease(run_id, &self.config.holder).await;
                return Err(e.into());
            }
        };
        if status.is_terminal() {
            let _ = self.store.release_lease(run_id, &self.config.holder).await;
            return Err(EngineError::Finished(run_id.to_owned(), status));
        }
        let mut audit = self.audit(run_id, None, None, "run_resumed", "ok");
        audit.detail = previous.map(|l| format!("took the run over from {l}"));
        let records = match self
            .store
            .set_run_status(run_id, RunStatus::Running, None, audit)
            .await
        {
            Ok(()) => self.store.steps(run_id).await,
            Err(e) => Err(e),
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                let _ = self.store.release_lease(run_id, &self.config.holder).await;
                return Err(e.into());
            }
        };
        self.execute_leased(run_id, &plan, records, operator_inputs)
            .await
    }

    /// Executes while holding the run's lease: a heartbeat renews it; a process that loses
    /// it (taken over, abandoned) starts no new step and records no verdict; the lease is given
    /// up at the end, also on an error.
    async fn execute_leased(
        &self,
        run_id: &str,
        plan: &Plan,
        records: Vec<StepRecord>,
        operator_inputs: &BTreeMap<String, SecretString>,
    ) -> Result<RunOutcome, EngineError> {
        self.store.fence(&self.config.holder);
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let heartbeat = {
            let store = Arc::clone(&self.store);
            let me = self.config.holder.clone();
            let run = run_id.to_owned();
            let lost = Arc::clone(&lost);
            tokio::spawn(async move {
                let mut renewed = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(LEASE_TTL / 3).await;
                    match store.renew_lease(&run, &me, LEASE_TTL).await {
                        Ok(true) => renewed = tokio::time::Instant::now(),
                        Ok(false) => {
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            tracing::warn!(run = %run, "the run's lease was taken over: no new step starts");
                            break;
                        }
                        // Unrenewed for most of its life, the lease may expire and be taken:
                        // stop starting steps before that can happen.
                        Err(e) if renewed.elapsed() > LEASE_TTL * 2 / 3 => {
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            tracing::warn!(run = %run, error = %e, "cannot renew the run's lease: no new step starts");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(run = %run, error = %e, "cannot renew the run's lease");
                        }
                    }
                }
            })
        };
        let r = self
            .execute(run_id, plan, records, operator_inputs, &lost)
            .await;
        heartbeat.abort();
        if r.is_err() {
            let _ = self.store.release_lease(run_id, &self.config.holder).await;
        }
        r
    }

    /// After an operator abandoned run `run_id`: lets each provider remove what it kept only
    /// for a step of this run that started ([`Provider::abandon`]), auditing what they report.
    /// Best effort: returns what could not be removed, one line per step.
    pub async fn abandon_steps(&self, run_id: &str) -> Result<Vec<String>, EngineError> {
        let run = self.store.run(run_id).await?;
        let plan: Plan = serde_json::from_str(&run.plan_json)
            .map_err(|e| EngineError::Plan(run_id.to_owned(), e.to_string()))?;
        let records = self.store.steps(run_id).await?;
        let ex = Exec::new(&plan, &records);
        let mut failed = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            if ex.state[i] == StepState::Pending || step.effect == Effect::Human {
                continue;
            }
            let Some(p) = self.providers.get(&step.provider) else {
                continue;
            };
            let key = idempotency_key(run_id, &step.id);
            let done = match ex.resolve_available(&plan, run_id, i) {
                Ok(inputs) => {
                    let call = Self::call(run_id, &plan, i, &inputs, &key);
                    let done = p.abandon(&call).await;
                    self.write_reports(run_id, &plan, i, &call.reports).await?;
                    done.map_err(|e| e.message)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                failed.push(format!("{}: {e}", step.id));
            }
        }
        Ok(failed)
    }

    /// Checks what resume trusts against the keyed audit rows written with it: the plan and
    /// options (hashed in `run_created`) and each step's stored plain outputs (in its last
    /// `step_succeeded`/`step_reconciled_done`). Reads only.
    async fn check_stored_run(&self, run: &RunRecord) -> Result<(), EngineError> {
        let tampered = |why: String| EngineError::Tampered(run.id.clone(), why);
        let events = self.store.audit_events(Some(&run.id)).await?;
        let Some(created) = events.iter().find(|e| e.draft.event == "run_created") else {
            return Err(tampered(
                "the audit log has no record of its creation".into(),
            ));
        };
        if created.chain == rekey_store::audit::CHAIN_PLAIN {
            // Created by a rekey that neither keyed the chain nor hashed plans, or rewritten
            // to look so by a writer without the key: the two cannot be told apart, and
            // trusting it would let such a writer choose where new values go.
            return Err(EngineError::Unchecked(
                run.id.clone(),
                "its creation is on the unkeyed audit chain (started by an earlier rekey, or rewritten without the installation key)".into(),
            ));
        }
        if !self.store.authentic(created)? {
            return Err(tampered(
                "the audit row that created it does not match its keyed hash (edited, or written with another installation key)".into(),
            ));
        }
        // The log from the run's creation to its last row (and the row after, which must
        // follow it): every row keyed and linked, so none of the run's rows was deleted or
        // moved (an older success row cannot stand in for the last one).
        let last = events.last().map_or(created.seq, |e| e.seq);
        let span = self.store.audit_span(created.seq, last + 1).await?;
        let mut prev: Option<&rekey_store::AuditEvent> = None;
        for e in &span {
            let linked = prev.is_none_or(|p| e.seq == p.seq + 1 && e.prev_hash == p.hash);
            if !linked || !self.store.authentic(e)? {
                return Err(tampered(format!(
                    "its audit log was changed at row {} (rows edited, deleted, inserted or reordered, or written with another installation key)",
                    e.seq
                )));
            }
            prev = Some(e);
        }
        if prev.is_none_or(|p| p.seq < last) {
            return Err(tampered(format!(
                "its audit log was cut back before row {last}"
            )));
        }
        let detail = created.draft.detail.as_deref().unwrap_or_default();
        for (label, stored, what) in [
            (PLAN_SHA256, &run.plan_json, "plan"),
            (OPTIONS_SHA256, &run.options_json, "options"),
        ] {
            let recorded = detail
                .split_once(label)
                .map(|(_, rest)| rest.get(..64).unwrap_or(rest));
            if recorded != Some(sha256_hex(stored).as_str()) {
                return Err(tampered(format!(
                    "the stored {what} changed since it was created (its sha256 is not the one recorded in the run's creation)"
                )));
            }
        }
        // Each step's last success, in one pass (a run may have 10,000 steps).
        let mut last: HashMap<&str, &rekey_store::AuditEvent> = HashMap::new();
        for e in &events {
            if let (Some(step), "step_succeeded" | "step_reconciled_done") =
                (e.draft.step.as_deref(), e.draft.event.as_str())
            {
                last.insert(step, e);
            }
        }
        for r in self.store.steps(&run.id).await? {
            let Some(stored) = &r.outputs_json else {
                continue;
            };
            let recorded = last.get(r.step_id.as_str());
            let same = |detail: Option<&str>| {
                let parse = |j: &str| serde_json::from_str::<serde_json::Value>(j).ok();
                parse(detail.unwrap_or("{}")).is_some_and(|v| Some(v) == parse(stored))
            };
            match recorded {
                Some(e) if self.store.authentic(e)? && same(e.draft.detail.as_deref()) => {}
                _ => {
                    return Err(tampered(format!(
                        "the stored outputs of step `{}` are not the ones its audit log recorded",
                        r.step_id
                    )));
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    async fn execute(
        &self,
        run_id: &str,
        plan: &Plan,
        records: Vec<StepRecord>,
        operator_inputs: &BTreeMap<String, SecretString>,
        lost: &std::sync::atomic::AtomicBool,
    ) -> Result<RunOutcome, EngineError> {
        let n = plan.steps.len();
        let mut ex = Exec::new(plan, &records);

        // 1. Reconcile steps whose outcome was lost, and finish interrupted undos.
        for i in 0..n {
            match ex.state[i] {
                StepState::Started => self.reconcile(run_id, plan, &mut ex, i).await?,
                StepState::Failed if run_status_allows_retry(&records) => {
                    self.transition(
                        run_id,
                        plan,
                        &mut ex,
                        i,
                        StepEvent::Retry,
                        None,
                        None,
                        Some("retry_after_operator"),
                    )
                    .await?;
                }
                StepState::UndoStarted | StepState::Undone
                    if ex.errors.get(&i).map(String::as_str) == Some(REDO_MARK) =>
                {
                    // A redo (lost secret) interrupted by a crash: finish it.
                    self.redo_step(run_id, plan, &mut ex, i).await?;
                }
                StepState::UndoStarted | StepState::Undone | StepState::UndoFailed => {
                    let c = plan.steps[i].credential as usize;
                    if ex.cred[c] == CredState::Active {
                        ex.cred[c] = if ex.state[i] == StepState::UndoFailed {
                            CredState::UndoFailed
                        } else {
                            CredState::Halting
                        };
                    }
                }
                _ => {}
            }
        }
        // 2. Secrets needed by unfinished steps but lost with a crashed process: read them
        //    back from a consumer that holds them, or mint again.
        self.recover_secrets(run_id, plan, &mut ex).await?;
        // Credentials whose rollback was interrupted finish it now.
        for c in 0..plan.credentials.len() {
            if ex.cred[c] == CredState::Halting {
                self.settle_credential(run_id, plan, &mut ex, c).await?;
            }
        }

        // 3. Schedule.
        ex.init_ready(plan);
        let mut gathering = Gathering::new(
            plan,
            &ex.state,
            |i| self.batch_limit(&plan.steps[i]),
            self.config.batch_window,
            self.config.batch_max_wait,
        );
        // Calls in flight are bounded by `concurrency`; up to as many more tasks may be writing
        // their `started` record meanwhile, so no call slot waits on a commit.
        let (write_tx, write_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut slots = Slots {
            calls: Arc::new(Semaphore::new(self.config.concurrency.max(1))),
            global: Arc::new(Semaphore::new(self.config.concurrency.max(1) * 2)),
            per_provider: HashMap::new(),
            pool_cap: self.config.per_provider.max(1) * 2,
            pool_tasks: HashMap::new(),
            task_pool: HashMap::new(),
            parked: HashMap::new(),
            writer: write_tx,
        };
        let mut tasks: JoinSet<Vec<(usize, TaskResult)>> = JoinSet::new();
        let writer_task = tokio::spawn(writer(Arc::clone(&self.store), write_rx));
        // A task slot that came free while every ready step was waiting for one.
        let mut spare: Option<tokio::sync::OwnedSemaphorePermit> = None;
        loop {
            if lost.load(std::sync::atomic::Ordering::SeqCst) {
                ex.ready.clear();
                slots.parked.clear();
                gathering.clear();
            }
            slots.unpark(&mut ex.ready);
            let mut blocked = false;
            while let Some((rank, Reverse(i))) = ex.ready.pop() {
                let c = plan.steps[i].credential as usize;
                if ex.state[i] != StepState::Pending && ex.state[i] != StepState::WaitingForOperator
                {
                    continue;
                }
                if ex.cred[c] != CredState::Active {
                    continue;
                }
                if gathering.is_batched(i) {
                    gathering.join(i, tokio::time::Instant::now());
                    continue;
                }
                // A due batch of revokes goes before any one step takes the slot: it closes
                // exposure for all its members at once (otherwise single urgent steps, while
                // there are any, keep it waiting for a free slot).
                if gathering
                    .due(
                        tokio::time::Instant::now(),
                        false,
                        |j| ex.coming(plan, j),
                        |j| ex.rank[j].0,
                    )
                    .is_some()
                {
                    ex.ready.push((rank, Reverse(i)));
                    break;
                }
                // A ready step whose provider has all its tasks out waits aside, while the
                // steps of other providers behind it go (no head-of-line blocking).
                if let Some(pool) = slots.full_pool(&plan.steps[i]) {
                    slots
                        .parked
                        .entry(pool)
                        .or_default()
                        .push((rank, Reverse(i)));
                    continue;
                }
                let Some(permit) = spare
                    .take()
                    .or_else(|| Arc::clone(&slots.global).try_acquire_owned().ok())
                else {
                    ex.ready.push((rank, Reverse(i)));
                    blocked = true;
                    break;
                };
                let inputs = match ex.resolve_inputs(plan, run_id, i) {
                    Ok(v) => v,
                    Err(msg) => {
                        spare = Some(permit);
                        self.fail_unresolved(run_id, plan, &mut ex, i, &msg).await?;
                        continue;
                    }
                };
                let step = &plan.steps[i];
                let manual_real = step.effect == Effect::Human && !self.simulated;
                let provider = if manual_real {
                    None
                } else {
                    self.providers.get(&step.provider)
                };
                let operator = operator_inputs.get(&step.id).cloned();
                let ctx = self.task_ctx(&mut slots, run_id, plan, &mut ex, i, Some(permit));
                tasks.spawn(async move { vec![(i, ctx.run(provider, inputs, operator).await)] });
            }
            // Gathered steps whose batch is due; nothing in flight or ready can add to a batch
            // when idle.
            let idle = tasks.is_empty() && ex.ready.is_empty();
            while !blocked
                && let Some(k) = gathering.due(
                    tokio::time::Instant::now(),
                    idle,
                    |i| ex.coming(plan, i),
                    |_| true,
                )
            {
                let Some(permit) = spare
                    .take()
                    .or_else(|| Arc::clone(&slots.global).try_acquire_owned().ok())
                else {
                    blocked = true;
                    break;
                };
                let mut members = Vec::new();
                for i in gathering.take(k) {
                    let c = plan.steps[i].credential as usize;
                    if !matches!(
                        ex.state[i],
                        StepState::Pending | StepState::WaitingForOperator
                    ) || ex.cred[c] != CredState::Active
                    {
                        continue;
                    }
                    match ex.resolve_inputs(plan, run_id, i) {
                        Ok(inputs) => members.push((i, inputs)),
                        Err(msg) => {
                            self.fail_unresolved(run_id, plan, &mut ex, i, &msg).await?;
                        }
                    }
                }
                let provider = members
                    .first()
                    .and_then(|(i, _)| self.providers.get(&plan.steps[*i].provider));
                let Some(provider) = provider else {
                    spare = Some(permit);
                    continue;
                };
                if members.len() == 1 {
                    // Alone after all: an ordinary call.
                    let (i, inputs) = members.pop().expect("one");
                    let ctx = self.task_ctx(&mut slots, run_id, plan, &mut ex, i, Some(permit));
                    tasks.spawn(
                        async move { vec![(i, ctx.run(Some(provider), inputs, None).await)] },
                    );
                    continue;
                }
                // Counted as one task of its pool (by its first member), so the pool's single
                // steps wait while it is out; a due batch itself is never held back.
                let lead = members[0].0;
                slots.task_started(lead, plan.steps[lead].slot_pool().into_owned());
                let members = members
                    .into_iter()
                    .map(|(i, inputs)| {
                        (
                            self.task_ctx(&mut slots, run_id, plan, &mut ex, i, None),
                            inputs,
                        )
                    })
                    .collect();
                let batch = BatchTask {
                    members,
                    task_slot: tokio::sync::Mutex::new(Some(permit)),
                };
                tasks.spawn(batch.run(provider));
            }
            // (A step put back behind a due batch that came to nothing is still ready.)
            if tasks.is_empty() && gathering.is_empty() && ex.ready.is_empty() {
                if slots.parked.is_empty() {
                    break;
                }
                // Nothing is out, so every pool has room: the parked steps go back next turn.
                slots.pool_tasks.clear();
                slots.task_pool.clear();
                continue;
            }
            let deadline = gathering.next_deadline();
            let joined = tokio::select! {
                biased;
                joined = tasks.join_next(), if !tasks.is_empty() => joined,
                permit = Arc::clone(&slots.global).acquire_owned(), if blocked => {
                    spare = Some(permit.expect("semaphore open"));
                    None
                }
                // (A due batch waiting for a slot waits on the branch above.)
                () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() && !blocked => None,
            };
            let Some(joined) = joined else {
                continue;
            };
            for (i, result) in joined.expect("step tasks do not panic") {
                slots.task_ended(i);
                self.finished(run_id, plan, &mut ex, i, result).await?;
            }
        }

        drop(slots);
        let _ = writer_task.await;

        // 4. The run's verdict, and the history of every credential whose part ended.
        let (status, message) = ex.verdict(plan);
        // Derived from the log: a failure to record it must not keep the run from ending. A
        // process that lost the run writes nothing more (its verdict is refused below).
        let recorded = if lost.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(rekey_plan::TimeToSafe::default())
        } else {
            self.record_history(run_id, plan, &ex).await
        };
        let time_to_safe = match recorded {
            Ok(t) => t,
            Err(e) => {
                let text = format!("the rotation history of run {run_id} was not recorded: {e}");
                tracing::warn!("{text}");
                if let Some(o) = &self.observer {
                    o.message(&text);
                }
                rekey_plan::TimeToSafe::default()
            }
        };
        let mut audit = self.audit(run_id, None, None, "run_finished", status.as_str());
        audit.detail.clone_from(&message);
        self.store
            .finish_run(
                run_id,
                &self.config.holder,
                status,
                message.as_deref(),
                audit,
            )
            .await?;
        Ok(RunOutcome {
            run_id: run_id.to_owned(),
            status,
            message,
            time_to_safe,
        })
    }

    /// Records the history rows of the credentials whose part ended, and the run's
    /// time-to-safe (audited, for the summary and `status --json`).
    async fn record_history(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &Exec,
    ) -> Result<rekey_plan::TimeToSafe, StoreError> {
        let events = self.store.audit_events(Some(run_id)).await?;
        let timings = rekey_store::history::step_timings(&events);
        let rows = history::rotations(run_id, plan, self.simulated, &ex.outcomes(plan), &timings);
        self.store.record_rotations(&rows).await?;
        let time_to_safe = history::time_to_safe(plan, &ex.state, &timings);
        let mut audit = self.audit(run_id, None, None, "time_to_safe", "ok");
        audit.detail = Some(serde_json::to_string(&time_to_safe).expect("figures serialize"));
        self.store.append_audit(audit).await?;
        Ok(time_to_safe)
    }

    /// How many steps like `step` its provider takes in one request, when more than one.
    fn batch_limit(&self, step: &PlannedStep) -> Option<usize> {
        if step.effect == Effect::Human && !self.simulated {
            return None;
        }
        self.providers
            .get(&step.provider)?
            .batch_limit(step)
            .filter(|&n| n > 1)
    }

    /// A step whose inputs cannot be filled (a plan/engine mismatch) fails before any call, so
    /// the failure policy applies.
    async fn fail_unresolved(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        i: usize,
        msg: &str,
    ) -> Result<(), EngineError> {
        self.transition(
            run_id,
            plan,
            ex,
            i,
            StepEvent::Start,
            None,
            None,
            Some("step_started"),
        )
        .await?;
        self.transition(
            run_id,
            plan,
            ex,
            i,
            StepEvent::Fail,
            None,
            Some(msg),
            Some("step_failed"),
        )
        .await?;
        ex.cred[plan.steps[i].credential as usize] = CredState::Halting;
        Ok(())
    }

    /// The task of step `i`, counted in flight for its credential. `permit`: its task slot
    /// (`None` for a step of a batch, which holds one slot for all).
    fn task_ctx(
        &self,
        slots: &mut Slots,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        i: usize,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> TaskCtx {
        let step = &plan.steps[i];
        let c = step.credential as usize;
        let pool = step.slot_pool().into_owned();
        let sem = Arc::clone(
            slots
                .per_provider
                .entry(pool.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_provider.max(1)))),
        );
        if permit.is_some() {
            slots.task_started(i, pool);
        }
        ex.inflight[c] += 1;
        let tried_before = ex.tried[i];
        ex.tried[i] = true;
        TaskCtx {
            calls: Arc::clone(&slots.calls),
            provider_slots: sem,
            tasks: Arc::clone(&slots.global),
            task_slot: tokio::sync::Mutex::new(permit),
            store: Arc::clone(&self.store),
            observer: self.observer.clone(),
            writer: slots.writer.clone(),
            fingerprints: Arc::clone(&self.fingerprints),
            config: self.config.clone(),
            simulated: self.simulated,
            run_id: run_id.to_owned(),
            step: step.clone(),
            credential: plan.credentials[c].clone(),
            from: ex.state[i],
            idx: i,
            tried_before,
        }
    }

    /// Takes in what a task reported for step `i`.
    async fn finished(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        i: usize,
        result: TaskResult,
    ) -> Result<(), EngineError> {
        let c = plan.steps[i].credential as usize;
        ex.inflight[c] -= 1;
        match result {
            TaskResult::Succeeded(values) => {
                ex.state[i] = StepState::Succeeded;
                ex.outputs[i] = Some(values);
                ex.release_dependents(i);
                self.notify(&plan.steps[i], StepState::Succeeded);
            }
            TaskResult::Waiting => {
                ex.state[i] = StepState::WaitingForOperator;
                if ex.cred[c] == CredState::Active {
                    ex.cred[c] = CredState::Paused;
                }
                self.notify(&plan.steps[i], StepState::WaitingForOperator);
            }
            TaskResult::Failed(msg) => {
                ex.state[i] = StepState::Failed;
                ex.errors.insert(i, msg);
                if matches!(ex.cred[c], CredState::Active | CredState::Paused) {
                    ex.cred[c] = CredState::Halting;
                }
                self.notify(&plan.steps[i], StepState::Failed);
            }
        }
        if ex.cred[c] == CredState::Halting && ex.inflight[c] == 0 {
            self.settle_credential(run_id, plan, ex, c).await?;
        }
        Ok(())
    }

    fn notify(&self, step: &PlannedStep, state: StepState) {
        if let Some(o) = &self.observer {
            o.step_finished(step, state);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn transition(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        i: usize,
        event: StepEvent,
        outputs_json: Option<&str>,
        error: Option<&str>,
        audit_event: Option<&str>,
    ) -> Result<(), EngineError> {
        let step = &plan.steps[i];
        let audit = audit_event.map(|e| {
            let mut a = self.audit(
                run_id,
                Some(step),
                Some(&plan.credentials[step.credential as usize].id),
                e,
                // The event says whether it went wrong; `error` also carries the redo mark (so a
                // crash mid-redo is finished), which is no failure.
                if matches!(event, StepEvent::Fail | StepEvent::UndoFail) {
                    "error"
                } else {
                    "ok"
                },
            );
            a.detail = error.map(str::to_owned);
            // Plain outputs go in the keyed log too, so resume can check the stored ones.
            if event == StepEvent::Succeed && error.is_none() {
                a.detail = outputs_json.filter(|j| *j != "{}").map(str::to_owned);
            }
            a
        });
        let to = self
            .store
            .transition(Transition {
                run_id,
                idx: i64::try_from(i).expect("few steps"),
                from: ex.state[i],
                event,
                outputs_json,
                error,
                bump_attempts: event == StepEvent::Start,
                audit,
            })
            .await?;
        ex.state[i] = to;
        if event == StepEvent::Start {
            ex.tried[i] = true;
        }
        Ok(())
    }

    fn call<'a>(
        run_id: &'a str,
        plan: &'a Plan,
        i: usize,
        inputs: &'a Values,
        key: &'a str,
    ) -> Call<'a> {
        let step = &plan.steps[i];
        Call {
            run_id,
            step,
            credential: &plan.credentials[step.credential as usize],
            inputs,
            idempotency_key: key,
            attempt: 1,
            // Reconciling and undoing follow a call that was made.
            tried_before: true,
            reports: Reports::default(),
        }
    }

    /// Audits what a provider call of step `i` reported (see [`Reports`]).
    async fn write_reports(
        &self,
        run_id: &str,
        plan: &Plan,
        i: usize,
        reports: &Reports,
    ) -> Result<(), EngineError> {
        let step = &plan.steps[i];
        for r in reports.take() {
            log_report(step, &r);
            let cred = &plan.credentials[step.credential as usize].id;
            let mut a = self.audit(run_id, Some(step), Some(cred), r.event, r.outcome);
            a.detail = Some(r.detail);
            self.store.append_audit(a).await?;
        }
        Ok(())
    }

    async fn reconcile(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        i: usize,
    ) -> Result<(), EngineError> {
        let step = &plan.steps[i];
        let key = idempotency_key(run_id, &step.id);
        let resolved = ex.resolve_available(plan, run_id, i);
        let inputs = resolved.clone().unwrap_or_default();
        let found = if let Err(e) = resolved {
            Err(ProviderError::permanent(e))
        } else if step.effect == Effect::Human && !self.simulated {
            Ok(Reconciled::NotDone)
        } else {
            match self.providers.get(&step.provider) {
                Some(p) => {
                    let call = Self::call(run_id, plan, i, &inputs, &key);
                    let found = p.reconcile(&call).await;
                    self.write_reports(run_id, plan, i, &call.reports).await?;
                    found
                }
                None => Err(ProviderError::permanent(format!(
                    "no provider for {}",
                    step.provider
                ))),
            }
        };
        match found {
            Ok(Reconciled::Done(values)) if !step.outputs.iter().any(|o| o.secret) => {
                let json = plain_json(&values);
                self.transition(
                    run_id,
                    plan,
                    ex,
                    i,
                    StepEvent::Succeed,
                    Some(&json),
                    None,
                    Some("step_reconciled_done"),
                )
                .await?;
                ex.outputs[i] = Some(values);
            }
            Ok(_) => {
                self.transition(
                    run_id,
                    plan,
                    ex,
                    i,
                    StepEvent::Retry,
                    None,
                    None,
                    Some("step_reconciled_not_done"),
                )
                .await?;
            }
            Err(e) => {
                let msg = format!("reconciliation failed: {e}");
                ex.errors.insert(i, msg.clone());
                self.transition(
                    run_id,
                    plan,
                    ex,
                    i,
                    StepEvent::Fail,
                    None,
                    Some(&msg),
                    Some("step_failed"),
                )
                .await?;
                let c = step.credential as usize;
                ex.cred[c] = CredState::Halting;
            }
        }
        Ok(())
    }

    /// Finds succeeded steps whose secret outputs are still needed but gone from memory.
    async fn recover_secrets(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
    ) -> Result<(), EngineError> {
        for s in 0..plan.steps.len() {
            let step = &plan.steps[s];
            if ex.state[s] != StepState::Succeeded || !step.outputs.iter().any(|o| o.secret) {
                continue;
            }
            let users = ex.secret_users(plan, s);
            if users.iter().all(|&u| ex.state[u] == StepState::Succeeded) {
                continue;
            }
            // Read back from a consumer that received the value and can be read. Only the
            // outputs the mint declares secret come from the read-back; plain outputs stay the
            // stored ones, and a read-back that disagrees with them or with the mint's recorded
            // fingerprint is not the value this run minted.
            let minted = self.minted_fingerprints(run_id, step).await?;
            // The fingerprint proves what a consumer holds, so a delivery whose outcome was
            // lost in the crash can be read too (after the ones known to have succeeded).
            let mut recovered: Option<Values> = None;
            // Deliveries that may hold the new value (they were called) but could not be
            // checked: a write-only consumer, or a read-back that kept failing.
            let mut unchecked: Vec<String> = Vec::new();
            let mut deliveries: Vec<usize> = users
                .iter()
                .copied()
                .filter(|&u| plan.steps[u].action == "consumer.deliver")
                .collect();
            deliveries.sort_by_key(|&u| ex.state[u] != StepState::Succeeded);
            for &u in &deliveries {
                let us = &plan.steps[u];
                let called = ex.tried[u] && ex.state[u] != StepState::Undone;
                let readable = us.target.as_ref().is_some_and(Consumer::readable);
                let Some(p) = self.providers.get(&us.provider).filter(|_| readable) else {
                    if called {
                        unchecked.push(format!("{} (cannot be read back)", us.id));
                    }
                    continue;
                };
                let doc = match self.read_back(run_id, plan, u, p.as_ref()).await {
                    Ok(Some(doc)) => doc,
                    // Nothing there: the new value did not reach this consumer.
                    Ok(None) => continue,
                    Err(e) => {
                        self.audit_step(
                            run_id,
                            plan,
                            step,
                            "secret_recovery_failed",
                            "error",
                            format!("read-back from `{}`: {e}", us.id),
                        )
                        .await?;
                        if called {
                            unchecked.push(format!("{} (read-back failed: {e})", us.id));
                        }
                        continue;
                    }
                };
                match Self::check_read_back(
                    ex,
                    plan,
                    s,
                    u,
                    &doc,
                    minted.as_ref(),
                    &self.fingerprints,
                ) {
                    Ok(Some(values)) => {
                        recovered = Some(values);
                        break;
                    }
                    Ok(None) => {}
                    // A delivery that may never have been written holds the old value.
                    Err(_) if ex.state[u] != StepState::Succeeded => {}
                    Err(why) => {
                        self.audit_step(
                            run_id,
                            plan,
                            step,
                            "secret_recovery_rejected",
                            "error",
                            format!("read-back from `{}`: {why}", us.id),
                        )
                        .await?;
                    }
                }
            }
            if let Some(values) = recovered {
                let why = "the new value was read back from a consumer after a restart";
                self.audit_step(run_id, plan, step, "secret_recovered", "ok", why.to_owned())
                    .await?;
                ex.outputs[s] = Some(values);
                continue;
            }
            let cred = step.credential as usize;
            // Minting again undoes this mint: never while a consumer may be using its value,
            // unless an operator said so.
            let cred_id = &plan.credentials[cred].id;
            if !unchecked.is_empty() && self.config.mint_again.allows(cred_id) {
                let why = format!(
                    "the operator allowed minting again although the lost value may be live in: {}",
                    unchecked.join("; ")
                );
                self.audit_step(run_id, plan, step, "mint_again_confirmed", "ok", why)
                    .await?;
            } else if !unchecked.is_empty() {
                ex.cred[cred] = CredState::NeedsOperator;
                let msg = format!(
                    "the value `{}` minted was lost in a crash and may be live in: {}; rekey does not delete a value that may be in use. Fix what kept it from being read and `rekey resume {run_id}`; or `rekey resume {run_id} --mint-again {cred_id}` to revoke it and deliver a new one (those consumers' users fail until it arrives)",
                    step.id,
                    unchecked.join("; ")
                );
                ex.errors.insert(s, msg.clone());
                self.audit_step(
                    run_id,
                    plan,
                    step,
                    "credential_needs_operator",
                    "error",
                    msg,
                )
                .await?;
                continue;
            }
            // The OLD value, captured before the rotation so it can be revoked: read again the
            // version the capture pinned, checked against the fingerprint recorded then.
            // Reading "the current value" now would return the new value once a consumer holds
            // it, and the revoke would hit that. If the pinned version cannot be read, stop for
            // a person.
            if step.action == "consumer.read_current"
                && let Some(values) = self
                    .reread_capture(run_id, plan, ex, s, minted.as_ref())
                    .await?
            {
                let why = "the captured value was read again from the version pinned when it was captured";
                self.audit_step(run_id, plan, step, "secret_recovered", "ok", why.to_owned())
                    .await?;
                ex.outputs[s] = Some(values);
                continue;
            }
            let delivered = plan.credentials[cred].steps.iter().any(|&d| {
                plan.steps[d as usize].action == "consumer.deliver"
                    && ex.state[d as usize] != StepState::Pending
            });
            if step.action == "consumer.read_current" && delivered {
                ex.cred[cred] = CredState::NeedsOperator;
                let msg = "the old value, captured to revoke it, was lost in a crash after the new value was delivered: revoke the old value by hand, then `rekey abandon` this run";
                ex.errors.insert(s, msg.to_owned());
                self.audit_step(
                    run_id,
                    plan,
                    step,
                    "credential_needs_operator",
                    "error",
                    msg.to_owned(),
                )
                .await?;
                continue;
            }
            // Mint again: remove the value nobody can use, and redo what used it.
            let mut redo = vec![s];
            redo.extend(
                users
                    .iter()
                    .copied()
                    .filter(|&u| ex.state[u] == StepState::Succeeded),
            );
            for &r in &redo {
                if !self.redo_step(run_id, plan, ex, r).await? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The pinned version of what capture step `s` read, if its provider can read it again
    /// and every secret in it matches the fingerprint recorded at capture time.
    async fn reread_capture(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &Exec,
        s: usize,
        minted: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<Values>, EngineError> {
        let step = &plan.steps[s];
        let (Some(p), Some(minted)) = (self.providers.get(&step.provider), minted) else {
            return Ok(None);
        };
        let mut stored = ex.outputs[s].clone().unwrap_or_default();
        stored.retain(|_, v| !v.is_secret());
        let key = idempotency_key(run_id, &step.id);
        let inputs = Values::new();
        let call = Self::call(run_id, plan, s, &inputs, &key);
        let read = match p.reread(&call, &stored).await {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::debug!(step = %step.id, error = %e, "the pinned version cannot be read again");
                return Ok(None);
            }
        };
        let mut values = stored;
        for o in step.outputs.iter().filter(|o| o.secret) {
            let (Some(v), Some(want)) = (read.get(&o.name), minted.get(&o.name)) else {
                return Ok(None);
            };
            if self.fingerprints.fingerprint(v.expose()) != *want {
                return Ok(None);
            }
            values.insert(o.name.clone(), v.clone());
        }
        Ok(Some(values))
    }

    /// Reads a consumer back for recovery, retrying transient errors within the run's retry
    /// budget: a read-back that cannot be done is never taken as "nothing there".
    async fn read_back(
        &self,
        run_id: &str,
        plan: &Plan,
        u: usize,
        p: &dyn Provider,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        let key = idempotency_key(run_id, &plan.steps[u].id);
        let inputs = Values::new();
        let deadline = tokio::time::Instant::now() + self.config.retry_budget;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let call = Self::call(run_id, plan, u, &inputs, &key);
            let e = match tokio::time::timeout(self.config.step_timeout, p.read_back(&call)).await {
                Ok(Ok(doc)) => return Ok(doc),
                Ok(Err(e)) => e,
                Err(_) => ProviderError::transient(format!(
                    "no answer within {:?}",
                    self.config.step_timeout
                )),
            };
            let retry_after = match e.kind {
                ErrorKind::Permanent | ErrorKind::NeedsInput => return Err(e),
                ErrorKind::Transient => None,
                ErrorKind::RateLimited(ra) => ra,
            };
            let wait = backoff(&self.config, attempt, retry_after);
            if tokio::time::Instant::now() + wait > deadline {
                return Err(e);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// The keyed fingerprints (`output=fp`) the audit log recorded when step `step` last
    /// succeeded in this run; `None` if it recorded none.
    async fn minted_fingerprints(
        &self,
        run_id: &str,
        step: &PlannedStep,
    ) -> Result<Option<BTreeMap<String, String>>, EngineError> {
        let events = self.store.audit_events(Some(run_id)).await?;
        Ok(events
            .iter()
            .rev()
            .find(|e| {
                e.draft.step.as_deref() == Some(step.id.as_str())
                    && e.draft.event == "step_succeeded"
            })
            .and_then(|e| e.draft.fingerprint.as_deref())
            .map(|f| {
                f.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            }))
    }

    /// Rebuilds mint `s`'s outputs from what consumer step `u` holds (`None` if it holds
    /// not all of its secrets), or says why the document is not what this run minted. Secret outputs come from the document, each
    /// checked against the fingerprint recorded at mint time; plain outputs stay the stored
    /// ones, and the document must agree with them.
    fn check_read_back(
        ex: &Exec,
        plan: &Plan,
        s: usize,
        u: usize,
        doc: &BTreeMap<String, SecretString>,
        minted: Option<&BTreeMap<String, String>>,
        fingerprints: &Fingerprinter,
    ) -> Result<Option<Values>, String> {
        let step = &plan.steps[s];
        let mut values = ex.outputs[s].clone().unwrap_or_default();
        values.retain(|_, v| !v.is_secret());
        for (field, t) in &plan.steps[u].inputs {
            let [Part::Var(Var::StepOutput { step: from, output })] = t.parts.as_slice() else {
                continue;
            };
            if ex.referenced(plan, u, from) != Some(s) {
                continue;
            }
            let Some(read) = doc.get(field) else {
                continue;
            };
            let read = read.expose_secret();
            if step.outputs.iter().any(|o| o.secret && o.name == *output) {
                let want = minted.and_then(|m| m.get(output)).ok_or_else(|| {
                    format!("no fingerprint of `{output}` was recorded when it was minted")
                })?;
                // Fingerprints made with another installation key never match.
                if let Err(why) = fingerprints.check(read, want) {
                    return Err(format!(
                        "field `{field}` does not match the fingerprint of the minted `{output}`: {why}"
                    ));
                }
                values.insert(output.clone(), Value::secret(read));
            } else {
                match values.get(output) {
                    Some(v) if v.expose() == read => {}
                    Some(_) => {
                        return Err(format!(
                            "field `{field}` differs from the stored output `{output}`"
                        ));
                    }
                    None => return Err(format!("the stored outputs have no `{output}`")),
                }
            }
        }
        // A consumer that takes other fields (only the user name, say) has nothing to give.
        if step
            .outputs
            .iter()
            .any(|o| o.secret && !values.contains_key(&o.name))
        {
            return Ok(None);
        }
        Ok(Some(values))
    }

    async fn provider_undo(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &Exec,
        i: usize,
    ) -> Result<Result<(), ProviderError>, EngineError> {
        let step = &plan.steps[i];
        let key = idempotency_key(run_id, &step.id);
        let outputs = ex.outputs[i].clone().unwrap_or_default();
        let inputs = match ex.resolve_available(plan, run_id, i) {
            Ok(inputs) => inputs,
            Err(e) => return Ok(Err(ProviderError::permanent(e))),
        };
        if step.effect == Effect::Human && !self.simulated {
            return Ok(Ok(()));
        }
        match self.providers.get(&step.provider) {
            Some(p) => {
                let call = Self::call(run_id, plan, i, &inputs, &key);
                let done = p.undo(&call, &outputs).await;
                self.write_reports(run_id, plan, i, &call.reports).await?;
                Ok(done)
            }
            None => Ok(Err(ProviderError::permanent("no provider"))),
        }
    }

    /// Calls the provider's undo for a step in `undo_started` and records the outcome; an
    /// undo that fails marks the credential `undo_failed`. `mark` is kept as the step's error
    /// (the redo mark). `false` if the undo failed.
    async fn undo_step(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        i: usize,
        mark: Option<&str>,
    ) -> Result<bool, EngineError> {
        let step = &plan.steps[i];
        // A delivery undone only to be delivered again is overwritten by the redo anyway: a
        // consumer that cannot restore its old value (an env file) does not stop it.
        let result = match self.provider_undo(run_id, plan, ex, i).await? {
            Err(e) if mark == Some(REDO_MARK) && step.action == "consumer.deliver" => {
                tracing::debug!(step = %step.id, error = %e, "not undone before it is delivered again");
                Ok(())
            }
            r => r,
        };
        match result {
            Ok(()) => {
                self.transition(
                    run_id,
                    plan,
                    ex,
                    i,
                    StepEvent::UndoFinish,
                    None,
                    mark,
                    Some("step_undone"),
                )
                .await?;
                Ok(true)
            }
            Err(e) => {
                let msg = format!("undo failed: {e}");
                self.transition(
                    run_id,
                    plan,
                    ex,
                    i,
                    StepEvent::UndoFail,
                    None,
                    Some(&msg),
                    Some("step_undo_failed"),
                )
                .await?;
                ex.cred[step.credential as usize] = CredState::UndoFailed;
                Ok(false)
            }
        }
    }

    /// Undoes a step whose secret output was lost (or one that used it) and sets it pending
    /// again. Every transition carries [`REDO_MARK`], so a crash in the middle is finished as
    /// a redo on the next resume, not mistaken for a rollback. `false` if the undo failed.
    async fn redo_step(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        r: usize,
    ) -> Result<bool, EngineError> {
        if matches!(ex.state[r], StepState::Succeeded | StepState::UndoStarted) {
            if ex.state[r] == StepState::Succeeded {
                self.transition(
                    run_id,
                    plan,
                    ex,
                    r,
                    StepEvent::UndoStart,
                    None,
                    Some(REDO_MARK),
                    Some("step_redo_undo_started"),
                )
                .await?;
            }
            if !self.undo_step(run_id, plan, ex, r, Some(REDO_MARK)).await? {
                return Ok(false);
            }
        }
        if ex.state[r] == StepState::Undone {
            self.transition(
                run_id,
                plan,
                ex,
                r,
                StepEvent::Redo,
                None,
                None,
                Some("step_redo"),
            )
            .await?;
            ex.errors.remove(&r);
        }
        Ok(true)
    }

    /// After a failure, once nothing of the credential is in flight: roll back if no
    /// irreversible step has started, else stop for an operator.
    async fn settle_credential(
        &self,
        run_id: &str,
        plan: &Plan,
        ex: &mut Exec,
        c: usize,
    ) -> Result<(), EngineError> {
        let cred = &plan.credentials[c];
        // Started ever, not only in this process: reconcile sets a delivery whose answer was
        // lost back to `pending`, but it may have reached its consumer.
        let started = |s: u32| ex.tried[s as usize] && ex.state[s as usize] != StepState::Undone;
        let irreversible_started = cred
            .steps
            .iter()
            .any(|&s| plan.steps[s as usize].irreversible && started(s));
        // Revoke first: an exposed value that was disabled stays disabled. Undoing the revoke
        // would re-enable a compromised credential, so this is a point of no return too —
        // from the moment a revoke step started: one that failed half-way (one key of two
        // turned off) must not be undone either.
        let exposed_revoked = cred.strategy == rekey_plan::Strategy::RevokeFirst
            && cred
                .steps
                .iter()
                .any(|&s| plan.steps[s as usize].phase == rekey_spec::Phase::Revoke && started(s));
        if irreversible_started || exposed_revoked {
            ex.cred[c] = CredState::NeedsOperator;
            let mut a = self.audit(
                run_id,
                None,
                Some(&cred.id),
                "credential_needs_operator",
                "error",
            );
            a.detail = Some(
                "a step failed after an irreversible step: retried, now stopped for an operator"
                    .into(),
            );
            self.store.append_audit(a).await?;
            return Ok(());
        }
        for &s in cred.steps.iter().rev() {
            let i = s as usize;
            if !matches!(
                ex.state[i],
                StepState::Succeeded | StepState::Failed | StepState::UndoStarted
            ) {
                continue;
            }
            if ex.state[i] != StepState::UndoStarted {
                self.transition(
                    run_id,
                    plan,
                    ex,
                    i,
                    StepEvent::UndoStart,
                    None,
                    None,
                    Some("step_undo_started"),
                )
                .await?;
            }
            if !self.undo_step(run_id, plan, ex, i, None).await? {
                return Ok(());
            }
        }
        ex.cred[c] = CredState::RolledBack;
        Ok(())
    }
}

/// Whether input `name` of `action` narrows what the call touches (see `Param::narrows`).
fn narrows(action: &str, name: &str) -> bool {
    rekey_spec::action::action(action)
        .and_then(|a| a.input(name))
        .is_some_and(|p| p.narrows)
}

fn run_status_allows_retry(_records: &[StepRecord]) -> bool {
    // A resumed run retries its failed steps: the operator resumed it after fixing the cause.
    true
}
