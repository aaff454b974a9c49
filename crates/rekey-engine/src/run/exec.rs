//! The scheduler's view of a run: which steps are ready, in what order, and the slots they
//! share (per provider, parked while their pool is full).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use rekey_plan::{Plan, PlannedStep};
use rekey_spec::Phase;
use rekey_spec::template::{Part, Var};
use rekey_store::{RunStatus, StepRecord, StepState};
use tokio::sync::Semaphore;

use crate::provider::{Value, Values};

use super::{CredState, WriteReq, narrows};

/// Per step, whether it closes exposure: the revoke phase of a credential revoked first, and
/// the look-ups that revoke waits for (the old value read from a consumer). Steps are in
/// topological order, so one backward pass sees every dependent first.
pub(super) fn urgent(plan: &Plan, dependents: &[Vec<usize>]) -> Vec<bool> {
    let mut urgent = vec![false; plan.steps.len()];
    for i in (0..plan.steps.len()).rev() {
        urgent[i] = rekey_plan::closes_exposure(plan, i)
            || (plan.steps[i].phase == Phase::Prepare && dependents[i].iter().any(|&d| urgent[d]));
    }
    urgent
}

/// A ready step in the queue: its rank (see `Exec::rank`), then plan order.
pub(super) type Ready = ((bool, usize), Reverse<usize>);

/// (credential, runbook step) → the plan steps made from it, with their consumer label.
pub(super) type ByName = HashMap<(u32, String), Vec<(Option<String>, usize)>>;

/// The scheduler's view of a run.
pub(super) struct Exec {
    pub(super) state: Vec<StepState>,
    pub(super) outputs: Vec<Option<Values>>,
    pub(super) errors: HashMap<usize, String>,
    pub(super) deps: Vec<Vec<usize>>,
    pub(super) dependents: Vec<Vec<usize>>,
    pub(super) waiting_on: Vec<usize>,
    /// Ready steps: those that close exposure first (the revoke phase of credentials revoked
    /// first), then longest remaining chain (then plan order): long credentials start early,
    /// so the run does not end on one slow chain while the other slots sit idle. Spawned in
    /// this order, revokes also take the (first-come) provider slots first.
    pub(super) ready: BinaryHeap<Ready>,
    /// Per step, its rank in `ready`: (closes exposure, see [`urgent`]; steps on the longest
    /// path from it to the end of the plan).
    pub(super) rank: Vec<(bool, usize)>,
    pub(super) cred: Vec<CredState>,
    pub(super) inflight: Vec<usize>,
    /// Whether the step's call was ever started, in this process or before a crash (the
    /// stored attempts): a delivery that reconcile set back to `pending` may still have
    /// reached its consumer, and an irreversible step that did stays a point of no return.
    pub(super) tried: Vec<bool>,
    /// (credential, runbook step, consumer label) → plan step.
    pub(super) by_name: ByName,
}

impl Exec {
    pub(super) fn new(plan: &Plan, records: &[StepRecord]) -> Self {
        let n = plan.steps.len();
        let mut deps = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for e in &plan.edges {
            deps[e.to as usize].push(e.from as usize);
            dependents[e.from as usize].push(e.to as usize);
        }
        let mut state = vec![StepState::Pending; n];
        let mut outputs = vec![None; n];
        let mut errors = HashMap::new();
        let mut tried = vec![false; n];
        for r in records {
            let i = usize::try_from(r.idx).expect("stored index");
            if i < n {
                state[i] = r.state;
                tried[i] = r.attempts > 0 || r.state != StepState::Pending;
                if r.state == StepState::Succeeded {
                    let plain: BTreeMap<String, String> = r
                        .outputs_json
                        .as_deref()
                        .and_then(|j| serde_json::from_str(j).ok())
                        .unwrap_or_default();
                    outputs[i] = Some(
                        plain
                            .into_iter()
                            .map(|(k, v)| (k, Value::Plain(v)))
                            .collect(),
                    );
                }
                if let Some(e) = &r.error {
                    errors.insert(i, e.clone());
                }
            }
        }
        // Steps are stored in topological order: walk backwards to get each one's height.
        let mut height = vec![1usize; n];
        for i in (0..n).rev() {
            height[i] = 1 + dependents[i].iter().map(|&d| height[d]).max().unwrap_or(0);
        }
        let rank = urgent(plan, &dependents).into_iter().zip(height).collect();
        let mut by_name = ByName::new();
        for (i, s) in plan.steps.iter().enumerate() {
            by_name
                .entry((s.credential, s.step.clone()))
                .or_default()
                .push((s.consumer_label.clone(), i));
        }
        Self {
            state,
            outputs,
            errors,
            deps,
            dependents,
            waiting_on: vec![0; n],
            ready: BinaryHeap::new(),
            rank,
            cred: vec![CredState::Active; plan.credentials.len()],
            inflight: vec![0; plan.credentials.len()],
            tried,
            by_name,
        }
    }

    pub(super) fn init_ready(&mut self, plan: &Plan) {
        for i in 0..plan.steps.len() {
            self.waiting_on[i] = self.deps[i]
                .iter()
                .filter(|&&d| self.state[d] != StepState::Succeeded)
                .count();
            if self.waiting_on[i] == 0
                && matches!(
                    self.state[i],
                    StepState::Pending | StepState::WaitingForOperator
                )
            {
                self.ready.push((self.rank[i], Reverse(i)));
            }
        }
    }

    pub(super) fn release_dependents(&mut self, i: usize) {
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.waiting_on[d] = self.waiting_on[d].saturating_sub(1);
            if self.waiting_on[d] == 0
                && matches!(
                    self.state[d],
                    StepState::Pending | StepState::WaitingForOperator
                )
            {
                self.ready.push((self.rank[d], Reverse(d)));
            }
        }
    }

    /// The step that `steps.NAME` means for step `i`: the same consumer's when both are
    /// per-consumer.
    pub(super) fn referenced(&self, plan: &Plan, i: usize, name: &str) -> Option<usize> {
        let s = &plan.steps[i];
        let candidates = self.by_name.get(&(s.credential, name.to_owned()))?;
        // Per-consumer steps pair with the same consumer's; otherwise the step is unique.
        candidates
            .iter()
            .find(|(label, _)| label.is_some() && *label == s.consumer_label)
            .or_else(|| (candidates.len() == 1).then(|| &candidates[0]))
            .map(|&(_, j)| j)
    }

    /// Steps whose inputs use a secret output of step `s`.
    pub(super) fn secret_users(&self, plan: &Plan, s: usize) -> Vec<usize> {
        let src = &plan.steps[s];
        let secret: Vec<&str> = src
            .outputs
            .iter()
            .filter(|o| o.secret)
            .map(|o| o.name.as_str())
            .collect();
        let cred = &plan.credentials[src.credential as usize];
        cred.steps
            .iter()
            .map(|&u| u as usize)
            .filter(|&u| {
                plan.steps[u].inputs.values().flat_map(rekey_spec::Template::vars).any(|v| {
                    matches!(v, Var::StepOutput { step, output } if secret.contains(&output.as_str()) && self.referenced(plan, u, step) == Some(s))
                })
            })
            .collect()
    }

    /// Fills a step's inputs from earlier outputs (secrets stay secret). Any input that
    /// cannot be filled is an error: the step must not run with it missing.
    pub(super) fn resolve_inputs(
        &self,
        plan: &Plan,
        run_id: &str,
        i: usize,
    ) -> Result<Values, String> {
        let step = &plan.steps[i];
        let mut values = Values::new();
        for (name, t) in &step.inputs {
            values.insert(name.clone(), self.resolve_input(plan, run_id, i, name, t)?);
        }
        Ok(values)
    }

    /// The inputs that can still be filled, for an undo or a reconcile after a crash (a lost
    /// secret leaves its input out). A narrowing input that cannot be filled is still an
    /// error: without it the call would touch more than the step meant to.
    pub(super) fn resolve_available(
        &self,
        plan: &Plan,
        run_id: &str,
        i: usize,
    ) -> Result<Values, String> {
        let step = &plan.steps[i];
        let mut values = Values::new();
        for (name, t) in &step.inputs {
            match self.resolve_input(plan, run_id, i, name, t) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) if narrows(&step.action, name) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(values)
    }

    pub(super) fn resolve_input(
        &self,
        plan: &Plan,
        run_id: &str,
        i: usize,
        name: &str,
        t: &rekey_spec::Template,
    ) -> Result<Value, String> {
        let step = &plan.steps[i];
        let mut text = String::new();
        let mut secret = false;
        for part in &t.parts {
            match part {
                Part::Text(s) => text.push_str(s),
                Part::Var(Var::Run { .. }) => text.push_str(run_id),
                Part::Var(Var::StepOutput { step: from, output }) => {
                    let j = self.referenced(plan, i, from).ok_or_else(|| {
                        format!("input `{name}` names step `{from}`, which is not in the plan")
                    })?;
                    let v = self.outputs[j]
                        .as_ref()
                        .and_then(|o| o.get(output))
                        .ok_or_else(|| format!("input `{name}` needs output `{output}` of `{}`, which is not available", plan.steps[j].id))?;
                    secret |= v.is_secret();
                    text.push_str(v.expose());
                }
                Part::Var(v) => {
                    return Err(format!("input `{name}` has an unfilled variable {v}"));
                }
            }
        }
        // A selector that resolves to nothing or to a secret would silently widen the call
        // ("every key but ''" is every key): stop the step instead.
        if narrows(&step.action, name) && (secret || text.trim().is_empty()) {
            return Err(format!(
                "input `{name}` narrows what `{}` touches but resolved to {}; refusing to widen the call",
                step.action,
                if secret { "a secret value" } else { "nothing" }
            ));
        }
        Ok(if secret {
            Value::secret(text)
        } else {
            Value::Plain(text)
        })
    }

    pub(super) fn verdict(&self, plan: &Plan) -> (RunStatus, Option<String>) {
        let mut problems = Vec::new();
        let mut status = RunStatus::Succeeded;
        let rank = |s: RunStatus| match s {
            RunStatus::Succeeded => 0,
            RunStatus::Failed => 1,
            RunStatus::Paused => 2,
            _ => 3,
        };
        let worst = |s: RunStatus, status: &mut RunStatus| {
            if rank(s) > rank(*status) {
                *status = s;
            }
        };
        for (c, cred) in plan.credentials.iter().enumerate() {
            let unfinished = cred
                .steps
                .iter()
                .any(|&s| self.state[s as usize] != StepState::Succeeded);
            match self.cred[c] {
                CredState::Active if !unfinished => {}
                CredState::Active => {
                    // Waiting on a helper that waits for an operator: it goes on once the
                    // operator answers, so the run is paused, not stopped.
                    if let Some(h) = self.paused_helper(plan, c) {
                        problems.push(format!(
                            "{}: waits for {h}, which waits for an operator",
                            cred.id
                        ));
                        worst(RunStatus::Paused, &mut status);
                    } else {
                        problems.push(format!("{}: blocked by a credential it waits for", cred.id));
                        worst(RunStatus::NeedsOperator, &mut status);
                    }
                }
                CredState::Paused => {
                    let waiting: Vec<&str> = cred
                        .steps
                        .iter()
                        .filter(|&&s| self.state[s as usize] == StepState::WaitingForOperator)
                        .map(|&s| plan.steps[s as usize].id.as_str())
                        .collect();
                    problems.push(format!(
                        "{}: waiting for an operator at {}",
                        cred.id,
                        waiting.join(", ")
                    ));
                    worst(RunStatus::Paused, &mut status);
                }
                CredState::RolledBack => {
                    let failed = self.failed_step(plan, c);
                    problems.push(format!("{}: rolled back after {failed}", cred.id));
                    worst(RunStatus::Failed, &mut status);
                }
                CredState::NeedsOperator | CredState::Halting => {
                    let failed = self.failed_step(plan, c);
                    problems.push(format!("{}: stopped for an operator (past its point of no return); {failed}; fix the cause and `rekey resume`", cred.id));
                    worst(RunStatus::NeedsOperator, &mut status);
                }
                CredState::UndoFailed => {
                    problems.push(format!("{}: UNDO FAILED, the provider may hold a half-done rotation; inspect it by hand", cred.id));
                    worst(RunStatus::NeedsOperator, &mut status);
                }
            }
        }
        (status, (!problems.is_empty()).then(|| problems.join("; ")))
    }

    /// Whether step `i`, not gathered into its batch yet, is on its way: its credential has a
    /// step in flight.
    pub(super) fn coming(&self, plan: &Plan, i: usize) -> bool {
        let c = plan.steps[i].credential as usize;
        self.state[i] == StepState::Pending
            && self.cred[c] == CredState::Active
            && self.inflight[c] > 0
    }

    /// How each credential's part ended, for the history (`None`: not ended: paused, blocked).
    pub(super) fn outcomes(&self, plan: &Plan) -> Vec<Option<&'static str>> {
        use rekey_store::history::outcome;
        plan.credentials
            .iter()
            .enumerate()
            .map(|(c, cred)| match self.cred[c] {
                CredState::Active
                    if cred
                        .steps
                        .iter()
                        .all(|&s| self.state[s as usize] == StepState::Succeeded) =>
                {
                    Some(outcome::ROTATED)
                }
                CredState::RolledBack => Some(outcome::ROLLED_BACK),
                CredState::NeedsOperator | CredState::Halting => Some(outcome::NEEDS_OPERATOR),
                CredState::UndoFailed => Some(outcome::UNDO_FAILED),
                CredState::Active | CredState::Paused => None,
            })
            .collect()
    }

    /// The `rotate_with` helper (or a helper of it, transitively) that credential `c` waits for
    /// and that is paused for an operator, if any; helpers that are merely unfinished are
    /// followed, any other state ends the search.
    pub(super) fn paused_helper<'p>(&self, plan: &'p Plan, c: usize) -> Option<&'p str> {
        let mut cur = c;
        // `rotate_with` cycles are refused when the inventory is loaded; the bound is a guard.
        for _ in 0..plan.credentials.len() {
            let helper = plan.credentials[cur]
                .helper
                .as_ref()
                .filter(|h| h.in_plan)?;
            let h = plan.credentials.iter().position(|x| x.id == helper.id)?;
            match self.cred[h] {
                CredState::Paused => return Some(plan.credentials[h].id.as_str()),
                CredState::Active => cur = h,
                _ => return None,
            }
        }
        None
    }

    pub(super) fn failed_step(&self, plan: &Plan, c: usize) -> String {
        plan.credentials[c]
            .steps
            .iter()
            .map(|&s| s as usize)
            .find_map(|s| {
                self.errors
                    .get(&s)
                    .map(|e| format!("{} failed: {e}", plan.steps[s].id))
            })
            .unwrap_or_else(|| "a failure".into())
    }
}

/// The slots steps share while a run is scheduled.
pub(super) struct Slots {
    /// Calls in flight.
    pub(super) calls: Arc<Semaphore>,
    /// Step tasks in flight (twice the calls: some are writing their records).
    pub(super) global: Arc<Semaphore>,
    pub(super) per_provider: HashMap<String, Arc<Semaphore>>,
    /// Step tasks one slot pool may have out at once (twice its call slots, as the global).
    pub(super) pool_cap: usize,
    /// Step tasks out per slot pool, and the pool of each, by step (a batch is one task,
    /// counted by its first member, and never held back).
    pub(super) pool_tasks: HashMap<String, usize>,
    pub(super) task_pool: HashMap<usize, String>,
    /// Ready steps set aside while their pool is full, best first; as many as the pool has
    /// room for go back to `ready` at each turn of the loop.
    pub(super) parked: HashMap<String, BinaryHeap<Ready>>,
    pub(super) writer: tokio::sync::mpsc::UnboundedSender<WriteReq>,
}

impl Slots {
    /// The pool of `step` if it has all its tasks out: a task spawned now would only wait
    /// for the provider's slot while holding a task slot other providers could use.
    pub(super) fn full_pool(&self, step: &PlannedStep) -> Option<String> {
        let pool = step.slot_pool();
        self.pool_tasks
            .get(pool.as_ref())
            .is_some_and(|&n| n >= self.pool_cap)
            .then(|| pool.into_owned())
    }

    /// Puts back into `ready` the best parked steps of each pool, as many as it has room for.
    pub(super) fn unpark(&mut self, ready: &mut BinaryHeap<Ready>) {
        self.parked.retain(|pool, heap| {
            let out = self.pool_tasks.get(pool).copied().unwrap_or(0);
            for _ in out..self.pool_cap {
                let Some(r) = heap.pop() else { break };
                ready.push(r);
            }
            !heap.is_empty()
        });
    }

    /// A task of `pool` is out, counted by step `i` (a batch's first member).
    pub(super) fn task_started(&mut self, i: usize, pool: String) {
        *self.pool_tasks.entry(pool.clone()).or_default() += 1;
        self.task_pool.insert(i, pool);
    }

    pub(super) fn task_ended(&mut self, i: usize) {
        if let Some(pool) = self.task_pool.remove(&i)
            && let Some(n) = self.pool_tasks.get_mut(&pool)
        {
            *n -= 1;
        }
    }
}
