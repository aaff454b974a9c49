//! The provider conformance suite: one set of checks every provider implementation runs against
//! its real server, through the [`Provider`] trait, the way the engine calls it.
//!
//! A [`Subject`] is one credential of one kind on a running server (moto, `PostgreSQL`,
//! `MariaDB`) with one consumer the test can read, and its bundled-runbook plan in one mode. The
//! suite walks the plan in order; every step's provider must `support` it, and then:
//!
//! 1. **crash before the call** (step `started`, nothing sent): `reconcile` changes nothing; it
//!    may only answer "done" if the call then changes nothing either, never for a mint or for a
//!    revoke whose old value still works;
//! 2. **rollback**: after the call, a step that changes something and is not irreversible is
//!    undone with its outputs. The undo restores what the suite saw before the step (which
//!    values work, how many exist, what the consumer serves) or fails loudly and changes
//!    nothing; a second undo (a crash interrupted the first) changes nothing more. Then the step
//!    runs again;
//! 3. **lost outcome** (the call took effect, the answer was lost): `reconcile` is asked with
//!    the inputs the engine has after a restart (plain outputs only). "Done" must carry every
//!    declared output, none of them secret, and change nothing. "Not done" on a mint must leave
//!    no extra value (a kind that holds two values must have deleted the orphan already), and
//!    the engine's re-run must converge: an orphan never keeps working;
//! 4. **the same call again** (a retry after a timeout): no extra value, the same server state;
//!    a mint's earlier value, whose answer counts as lost, stops working;
//! 5. **undo of a step that failed part-way**: as 2, with no outputs to go by;
//! 6. **what the step is for**, against the server itself, not the provider's answer:
//!    - mint: a new value, its secret parts as [`Value::Secret`], redacted in `Debug` and absent
//!      from the stored (plain) JSON; the server accepts it; a kind with one value per
//!      credential refuses the old one from now on;
//!    - deliver: the consumer holds the new value (read straight from it), and `read_back`, the
//!      engine's recovery of a minted secret lost in a crash, gives the minted secret back;
//!    - verify: succeeds with the new value and fails with a wrong one;
//!    - revoke (disable / delete): the server refuses the old value for real (moto with
//!      signature checks on, a real `PostgreSQL` / `MariaDB` login);
//!    - after every step: the old value works exactly until its revoke, the new one from its
//!      mint on, and the credential never has more values than the kind allows.
//!
//! At the end: only the new value exists and works, the consumer serves it (nothing pending),
//! verifying the old value fails, and every step run with a wrong admin secret fails without
//! changing anything. Then no secret — the old and every minted value, the admin secret, the
//! wrong admin secret, the wrong values given to verify — appears in any error message, `Debug`
//! of outputs, reconcile answers or read-back documents, stored JSON, or any `tracing` event or
//! span field emitted while a provider call ran (all levels, all targets, SDKs and drivers
//! included).
//!
//! Every class of check is shown to fail on a provider with one defect (`catches_*` below).
//! Not covered: undo with the outputs of a *repeated* or reconciled call (the AWS deactivate
//! step then reports nothing deactivated, so its undo reactivates nothing).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rekey_engine::provider::plain_json;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::{Plan, PlannedStep};
use rekey_spec::template::Part;
use rekey_spec::{Effect, Mode, Var};

use crate::harness;

/// The run id of every suite call; idempotency keys derive from it and the step id.
const RUN: &str = "run-conformance";

/// What a reader of the consumer gets, read without the provider under test.
pub(crate) struct ConsumerView {
    /// The value readers are given (Secrets Manager `AWSCURRENT`, the env file's line).
    pub(crate) current: Option<String>,
    /// A value written but not yet current (Secrets Manager `AWSPENDING`); `None` for
    /// consumers that are live when written.
    pub(crate) pending: Option<String>,
}

/// One credential on a real server, set up for the suite.
///
/// A *value* of the credential is shaped like the outputs of its mint step (an IAM key is
/// `access_key_id` + `secret_access_key`, a password is `password`), so the suite can feed the old
/// value, a minted one or a wrong one to the steps that use the mint's outputs.
pub(crate) trait Subject {
    /// For messages: the kind and the server.
    fn name(&self) -> String;
    /// The credential's plan (one credential, one consumer the subject can read).
    fn plan(&self) -> &Plan;
    /// The provider the engine gives `step` (by `step.provider`).
    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider>;
    /// The same provider with a wrong admin secret ([`Subject::secrets`] holds it), or `None`
    /// when the step's provider has no admin secret (a local file).
    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>>;
    /// The value before the run.
    fn old_value(&self) -> Values;
    /// Whether the old value lives on next to a new one until it is revoked (IAM's two keys),
    /// rather than ending when the new one is set (a role's one password).
    fn holds_two(&self) -> bool;
    /// Secrets the suite does not see otherwise: the admin secret and the wrong one.
    fn secrets(&self) -> Vec<String>;
    /// Whether the server accepts `value` (a login, a signed call) right now.
    async fn accepts(&self, value: &Values) -> bool;
    /// How many values of the credential exist at the server (IAM keys of the user; 1 for a
    /// password).
    async fn values(&self) -> usize;
    /// Everything at the server that a step may change, free of secrets (hashes instead):
    /// compared before and after calls that must change nothing.
    async fn snapshot(&self) -> String;
    /// The consumer's contents.
    async fn consumer(&self) -> ConsumerView;
}

/// Runs the whole suite on `s`.
pub(crate) async fn run<S: Subject>(s: &S) {
    let log = LogCapture::install();
    let mut suite = Suite::new(s, log.clone());
    suite.before().await;
    for i in 0..s.plan().steps.len() {
        suite.step(i).await;
    }
    suite.after().await;
    suite.misconfigured().await;
    suite.nothing_shows_a_secret();
}

// ---------------------------------------------------------------------------------------------
// The suite

struct Suite<'s, S: Subject> {
    s: &'s S,
    plan: &'s Plan,
    name: String,
    log: LogCapture,
    /// What the engine holds in memory, by runbook step name.
    outputs: BTreeMap<String, Values>,
    old: Values,
    /// Whether the old value must still work.
    old_alive: bool,
    /// The runbook name of the mint step, once it ran.
    mint: Option<String>,
    /// Every secret seen: must never be shown.
    secrets: Vec<String>,
    /// Everything a person or a log could see: (what, text).
    shown: Vec<(String, String)>,
    errors: usize,
    /// Steps called already: a later call of one is `tried_before` (a retry, a resume).
    called: std::collections::HashSet<String>,
}

/// What the suite sees of a credential (compared before a step and after its undo).
#[derive(PartialEq, Eq)]
struct State {
    /// Whether the old value works.
    old: bool,
    /// Whether the minted value works, once there is one.
    new: Option<bool>,
    /// How many values exist.
    values: usize,
    /// What the consumer serves (it holds secrets: `Debug` shows hashes).
    current: Option<String>,
    pending: Option<String>,
}

impl fmt::Debug for State {
    /// The consumer's contents as hashes: they hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = |v: &Option<String>| v.as_deref().map(|t| harness::digest(t.as_bytes()));
        f.debug_struct("State")
            .field("old_works", &self.old)
            .field("new_works", &self.new)
            .field("values", &self.values)
            .field("consumer_current", &hash(&self.current))
            .field("consumer_pending", &hash(&self.pending))
            .finish()
    }
}

/// A step a rollback undoes: one that changes something and is not marked irreversible.
fn reversible(step: &PlannedStep) -> bool {
    !step.irreversible
        && matches!(
            step.effect,
            Effect::Create | Effect::Write | Effect::Disable
        )
}

fn key(step: &PlannedStep) -> String {
    rekey_engine::run::idempotency_key(RUN, &step.id)
}

fn call<'a>(plan: &'a Plan, step: &'a PlannedStep, inputs: &'a Values, key: &'a str) -> Call<'a> {
    Call {
        run_id: RUN,
        step,
        credential: &plan.credentials[step.credential as usize],
        inputs,
        idempotency_key: key,
        attempt: 1,
        tried_before: false,
        reports: rekey_engine::Reports::default(),
    }
}

fn secret_texts(values: &Values) -> impl Iterator<Item = String> + '_ {
    values
        .values()
        .filter(|v| v.is_secret())
        .map(|v| v.expose().to_owned())
}

/// `values` with every secret replaced by a fresh random string (plain parts kept).
fn wrong(values: &Values) -> Values {
    values
        .iter()
        .map(|(k, v)| {
            let v = if v.is_secret() {
                let mut raw = [0u8; 24];
                getrandom::fill(&mut raw).unwrap();
                let text: String = raw.iter().fold(String::from("Wr0ng"), |mut s, b| {
                    write!(s, "{b:02x}").unwrap();
                    s
                });
                Value::secret(text)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Whether a delivery takes the mint's output `name` (an npm token's `key` stays with rekey).
fn delivered_output(plan: &Plan, name: &str) -> bool {
    plan.steps
        .iter()
        .filter(|s| s.action == "consumer.deliver")
        .flat_map(|s| s.inputs.values())
        .flat_map(|t| t.parts.iter())
        .any(|p| matches!(p, Part::Var(Var::StepOutput { output, .. }) if output == name))
}

/// What the engine still has after a restart: plain outputs only (secrets lived in memory).
fn durable(outputs: &BTreeMap<String, Values>) -> BTreeMap<String, Values> {
    outputs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter()
                    .filter(|(_, x)| !x.is_secret())
                    .map(|(n, x)| (n.clone(), x.clone()))
                    .collect(),
            )
        })
        .collect()
}

impl<'s, S: Subject> Suite<'s, S> {
    fn new(s: &'s S, log: LogCapture) -> Self {
        let old = s.old_value();
        let mut secrets = s.secrets();
        secrets.extend(secret_texts(&old));
        Self {
            s,
            plan: s.plan(),
            name: s.name(),
            log,
            outputs: BTreeMap::new(),
            old,
            old_alive: true,
            mint: None,
            secrets,
            shown: Vec::new(),
            errors: 0,
            called: std::collections::HashSet::new(),
        }
    }

    fn new_value(&self) -> Option<Values> {
        self.mint.as_ref().map(|m| self.outputs[m].clone())
    }

    fn show(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.shown.push((what.into(), text.into()));
    }

    /// Calls `p.execute`, recording what it shows and the secrets it returns.
    async fn execute_with(
        &mut self,
        p: &dyn Provider,
        step: &PlannedStep,
        inputs: &Values,
    ) -> Result<Values, ProviderError> {
        self.secrets.extend(secret_texts(inputs));
        let key = key(step);
        let tried_before = !self.called.insert(step.id.clone());
        let r = {
            let _on = self.log.on();
            p.execute(&Call {
                tried_before,
                ..call(self.plan, step, inputs, &key)
            })
            .await
        };
        match &r {
            Ok(v) => {
                self.secrets.extend(secret_texts(v));
                self.show(
                    format!("Debug of the outputs of {}", step.id),
                    format!("{v:?}"),
                );
                self.show(format!("stored outputs of {}", step.id), plain_json(v));
            }
            Err(e) => {
                self.errors += 1;
                self.show(format!("error of {}", step.id), e.to_string());
                self.show(
                    format!("Debug of the error of {}", step.id),
                    format!("{e:?}"),
                );
            }
        }
        r
    }

    /// Runs `step` with the inputs the engine would resolve now; it must succeed.
    async fn exec(&mut self, step: &PlannedStep, what: &str) -> Values {
        let inputs = harness::resolve(step, RUN, &self.outputs)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", self.name, step.id));
        let p = self.s.provider(step);
        match self.execute_with(p.as_ref(), step, &inputs).await {
            Ok(v) => {
                self.check_outputs(step, &v, what);
                v
            }
            Err(e) => panic!("{}: {} ({what}) failed: {e}", self.name, step.id),
        }
    }

    /// Asks `reconcile` about `step` with the inputs the engine has after a restart (none at
    /// all when one of them was a secret that died with the process).
    async fn reconcile(&mut self, step: &PlannedStep, when: &str) -> Reconciled {
        let inputs = harness::resolve(step, RUN, &durable(&self.outputs)).unwrap_or_default();
        let key = key(step);
        let p = self.s.provider(step);
        let r = {
            let _on = self.log.on();
            p.reconcile(&Call {
                tried_before: true,
                ..call(self.plan, step, &inputs, &key)
            })
            .await
        };
        let r = r.unwrap_or_else(|e| panic!("{}: reconcile {} ({when}): {e}", self.name, step.id));
        self.show(format!("Debug of reconcile {}", step.id), format!("{r:?}"));
        if let Reconciled::Done(v) = &r {
            self.show(
                format!("stored reconciled outputs of {}", step.id),
                plain_json(v),
            );
        }
        r
    }

    /// Outputs are exactly the declared ones, the secret ones (and only those) as secrets.
    fn check_outputs(&self, step: &PlannedStep, values: &Values, what: &str) {
        let declared: BTreeMap<&str, bool> = step
            .outputs
            .iter()
            .map(|o| (o.name.as_str(), o.secret))
            .collect();
        let got: BTreeMap<&str, bool> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.is_secret()))
            .collect();
        assert_eq!(
            got, declared,
            "{}: {} ({what}) gives its declared outputs (name → secret)",
            self.name, step.id
        );
    }

    async fn before(&mut self) {
        let s = self.s;
        assert!(
            s.accepts(&self.old).await,
            "{}: the old value works before the run",
            self.name
        );
        assert_eq!(
            s.values().await,
            1,
            "{}: one value before the run",
            self.name
        );
        // The check itself can fail: a wrong value is refused.
        assert!(
            !s.accepts(&wrong(&self.old)).await,
            "{}: the server refuses a wrong value",
            self.name
        );
        assert!(
            self.plan.steps.iter().any(|st| st.effect == Effect::Create),
            "{}: the plan mints a value",
            self.name
        );
    }

    async fn step(&mut self, i: usize) {
        let s = self.s;
        let plan = self.plan;
        let step = &plan.steps[i];
        let id = step.id.clone();
        let name = self.name.clone();
        let mints = step.effect == Effect::Create;
        let revokes = matches!(step.effect, Effect::Disable | Effect::Delete);
        assert!(
            s.provider(step).supports(step).is_ok(),
            "{name}: the provider of {id} does not support it"
        );

        // 1. The process died after recording `started`, before the call.
        let before = s.snapshot().await;
        let state_before = self.state().await;
        let early = self.reconcile(step, "before any call").await;
        assert_eq!(
            s.snapshot().await,
            before,
            "{name}: reconcile {id} before any call changed the server"
        );
        let early_done = matches!(early, Reconciled::Done(_));
        if early_done {
            assert!(
                !mints,
                "{name}: reconcile says the mint {id} is done before it ran"
            );
            assert!(
                !(revokes && self.old_alive),
                "{name}: reconcile says the revoke {id} is done while the old value still works"
            );
        }

        // 2. The call; then a later failure rolls the credential back (undo, twice: a crash
        //    may interrupt it) and the step runs again.
        let mut latest = self.exec(step, "first call").await;
        if early_done {
            assert_eq!(
                s.snapshot().await,
                before,
                "{name}: reconcile said {id} was done before it ran, yet running it changed the server"
            );
        }
        if reversible(step) {
            latest = self
                .undo_and_redo(
                    step,
                    &latest,
                    latest.clone(),
                    &state_before,
                    "with its outputs",
                )
                .await;
        }

        // 3. The latest call's outcome was lost.
        let count_before = state_before.values;
        let lost = latest;
        let after_lost = s.snapshot().await;
        match self.reconcile(step, "after a lost outcome").await {
            Reconciled::Done(v) => {
                assert!(
                    !mints,
                    "{name}: reconcile adopts the mint {id}, whose secret is lost"
                );
                self.check_outputs(step, &v, "reconciled");
                assert_eq!(
                    s.snapshot().await,
                    after_lost,
                    "{name}: reconcile changed the server for {id}, which it found done"
                );
                self.outputs.insert(step.step.clone(), v);
            }
            Reconciled::NotDone => {
                if mints {
                    assert_eq!(
                        s.values().await,
                        count_before,
                        "{name}: after reconcile of the lost {id}, its value (an orphan) still exists"
                    );
                    if s.holds_two() {
                        assert!(
                            !s.accepts(&lost).await,
                            "{name}: reconcile of {id} answered not done, but the orphan still works"
                        );
                    }
                }
                // The engine runs the step again.
                let again = self.exec(step, "again after reconcile").await;
                if mints {
                    assert!(
                        !s.accepts(&lost).await,
                        "{name}: the value minted by the lost {id} still works after the step ran again"
                    );
                } else {
                    assert_eq!(
                        s.snapshot().await,
                        after_lost,
                        "{name}: {id} run again after reconcile did not end where the lost call did"
                    );
                }
                self.outputs.insert(step.step.clone(), again);
            }
        }

        // 4. The same call again (a retry whose earlier answer never arrived).
        let settled = s.snapshot().await;
        let count = s.values().await;
        let first = self.outputs[&step.step].clone();
        let repeat = self.exec(step, "repeated").await;
        assert_eq!(
            s.values().await,
            count,
            "{name}: repeating {id} left another value (a duplicate)"
        );
        if mints {
            assert!(
                !s.accepts(&first).await,
                "{name}: repeating the mint {id} left the earlier value working (an orphan)"
            );
        } else {
            assert_eq!(
                s.snapshot().await,
                settled,
                "{name}: repeating {id} with the same idempotency key changed the server"
            );
        }
        self.outputs.insert(step.step.clone(), repeat);

        // 5. Undo of a step that failed part-way: no outputs to go by.
        if reversible(step) {
            let made = self.outputs[&step.step].clone();
            let redone = self
                .undo_and_redo(step, &made, Values::new(), &state_before, "without outputs")
                .await;
            self.outputs.insert(step.step.clone(), redone);
        }

        // 6. What the step is for.
        match step.effect {
            Effect::Create => self.minted(step),
            Effect::Disable | Effect::Delete => self.old_alive = false,
            Effect::Write if step.action == "consumer.deliver" => self.delivered(step).await,
            Effect::Verify => self.verify_refuses(step, None).await,
            _ => {}
        }
        self.invariants(&id).await;
    }

    /// What the suite can see of the credential: which values work, how many exist, what the
    /// consumer serves.
    async fn state(&self) -> State {
        let s = self.s;
        let new = match self.new_value() {
            Some(v) => Some(s.accepts(&v).await),
            None => None,
        };
        let view = s.consumer().await;
        State {
            old: s.accepts(&self.old).await,
            new,
            values: s.values().await,
            current: view.current,
            pending: view.pending,
        }
    }

    /// Undoes `step`, whose latest call gave `made`, passing `outputs` (what the engine still
    /// has), as a rollback does: it must restore `before`, or fail loudly and change nothing; a
    /// second undo (a crash interrupted the first) changes nothing more. Then runs the step
    /// again; returns its new outputs.
    async fn undo_and_redo(
        &mut self,
        step: &PlannedStep,
        made: &Values,
        outputs: Values,
        before: &State,
        how: &str,
    ) -> Values {
        let s = self.s;
        let name = self.name.clone();
        let id = &step.id;
        let done = s.snapshot().await;
        if self.undo(step, &outputs).await.is_err() {
            assert_eq!(
                s.snapshot().await,
                done,
                "{name}: undo {id} ({how}) failed, yet changed the server (half undone)"
            );
            // A loud refusal: the step's effect stands.
            return made.clone();
        }
        let undone = self.state().await;
        assert_eq!(
            &undone, before,
            "{name}: undo {id} ({how}) did not restore the state before the step"
        );
        if step.effect == Effect::Create {
            assert!(
                !s.accepts(made).await,
                "{name}: undo {id} ({how}) left the minted value working"
            );
        }
        let snapshot = s.snapshot().await;
        let again = self.undo(step, &outputs).await;
        assert!(
            again.is_ok(),
            "{name}: undo {id} ({how}) a second time failed"
        );
        assert_eq!(
            s.snapshot().await,
            snapshot,
            "{name}: undo {id} ({how}) a second time changed the server again"
        );
        assert_eq!(
            &self.state().await,
            before,
            "{name}: undo {id} ({how}) a second time left another state than the one before the step"
        );
        self.exec(step, "redone after undo").await
    }

    async fn undo(&mut self, step: &PlannedStep, outputs: &Values) -> Result<(), ProviderError> {
        let inputs = harness::resolve(step, RUN, &self.outputs).unwrap_or_default();
        let key = key(step);
        let p = self.s.provider(step);
        let r = {
            let _on = self.log.on();
            p.undo(
                &Call {
                    tried_before: true,
                    ..call(self.plan, step, &inputs, &key)
                },
                outputs,
            )
            .await
        };
        if let Err(e) = &r {
            self.errors += 1;
            self.show(format!("error of undo {}", step.id), e.to_string());
            self.show(
                format!("Debug of the error of undo {}", step.id),
                format!("{e:?}"),
            );
        }
        r
    }

    /// A mint's outputs: a secret new value, redacted, accepted by the server.
    fn minted(&mut self, step: &PlannedStep) {
        let name = &self.name;
        let id = &step.id;
        let new = self.outputs[&step.step].clone();
        let secrets: Vec<String> = secret_texts(&new).collect();
        assert!(
            !secrets.is_empty(),
            "{name}: the mint {id} gives its new value as a secret output"
        );
        let debug = format!("{new:?}");
        let stored = plain_json(&new);
        for secret in &secrets {
            assert!(secret.len() >= 20, "{name}: {id} mints a strong value");
            assert!(
                !secret_texts(&self.old).any(|o| o == *secret),
                "{name}: {id} minted the old value again"
            );
            assert!(
                !debug.contains(secret.as_str()),
                "{name}: Debug of the outputs of {id} shows the secret"
            );
            assert!(
                !stored.contains(secret.as_str()),
                "{name}: the stored outputs of {id} hold the secret"
            );
        }
        assert!(
            debug.contains("REDACTED"),
            "{name}: Debug of the outputs of {id} marks the secret as redacted: {debug}"
        );
        self.mint = Some(step.step.clone());
        if !self.s.holds_two() {
            // One value per credential: setting the new one ends the old.
            self.old_alive = false;
        }
    }

    /// The consumer holds the new value, and reading it back recovers the minted secret.
    async fn delivered(&mut self, step: &PlannedStep) {
        let name = self.name.clone();
        let id = &step.id;
        let mint = self.mint.clone().expect("delivery after the mint");
        let new = self.outputs[&mint].clone();
        let view = self.s.consumer().await;
        let doc = view
            .pending
            .or(view.current)
            .unwrap_or_else(|| panic!("{name}: after {id} the consumer holds no value"));
        for (k, v) in new.iter().filter(|(k, _)| delivered_output(self.plan, k)) {
            assert!(
                doc.contains(v.expose()),
                "{name}: after {id} the consumer lacks `{k}` of the new value"
            );
        }
        for old in secret_texts(&self.old) {
            assert!(!doc.contains(&old), "{name}: {id} delivered the old secret");
        }

        // The engine's recovery of a minted secret lost in a crash: read it back from the
        // consumer (with no inputs: they held the lost secret), field by field.
        let key = key(step);
        let none = Values::new();
        let p = self.s.provider(step);
        let doc = {
            let _on = self.log.on();
            p.read_back(&call(self.plan, step, &none, &key)).await
        };
        let doc = doc
            .unwrap_or_else(|e| panic!("{name}: read_back {id}: {e}"))
            .unwrap_or_else(|| panic!("{name}: read_back {id}: the consumer cannot be read"));
        self.show(
            format!("Debug of the document read back from {id}"),
            format!("{doc:?}"),
        );
        let mut recovered = Values::new();
        for (field, t) in &step.inputs {
            if let [Part::Var(Var::StepOutput { step: from, output })] = t.parts.as_slice()
                && *from == mint
                && let Some(v) = doc.get(field)
            {
                recovered.insert(output.clone(), Value::Secret(v.clone()));
            }
        }
        for (k, v) in new.iter().filter(|(_, v)| v.is_secret()) {
            let got = recovered
                .get(k)
                .unwrap_or_else(|| panic!("{name}: read_back {id} does not give `{k}` back"));
            assert!(
                got.expose() == v.expose(),
                "{name}: read_back {id} gives back another `{k}` than the one minted"
            );
        }
        // The recovered value works.
        let mut adopted = new.clone();
        adopted.extend(recovered);
        assert!(
            self.s.accepts(&adopted).await,
            "{name}: the value read back from {id} is refused"
        );
    }

    /// The verify step refuses a wrong value (and the old one, when given).
    async fn verify_refuses(&mut self, step: &PlannedStep, value: Option<Values>) {
        let name = self.name.clone();
        let Some(mint) = self.mint.clone() else {
            return;
        };
        let (what, value) = match value {
            Some(v) => ("the old value", v),
            None => ("a wrong value", wrong(&self.outputs[&mint])),
        };
        let mut outputs = self.outputs.clone();
        outputs.insert(mint, value);
        let inputs = harness::resolve(step, RUN, &outputs)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", step.id));
        let p = self.s.provider(step);
        let r = self.execute_with(p.as_ref(), step, &inputs).await;
        assert!(r.is_err(), "{name}: {} accepts {what}", step.id);
    }

    /// After every step: the old value works exactly until revoked, the new one from its mint
    /// on; never more values than the kind holds.
    async fn invariants(&mut self, after: &str) {
        let s = self.s;
        let name = &self.name;
        let old_works = s.accepts(&self.old).await;
        if self.old_alive {
            assert!(
                old_works,
                "{name}: after {after}, the old value stopped working"
            );
        } else {
            assert!(
                !old_works,
                "{name}: after {after}, the server still accepts the old value"
            );
        }
        if let Some(new) = self.new_value() {
            assert!(
                s.accepts(&new).await,
                "{name}: after {after}, the server refuses the new value"
            );
        }
        let n = s.values().await;
        let most = if s.holds_two() { 2 } else { 1 };
        // Revoking first by deleting (an npm token) leaves none until the mint.
        let least = usize::from(self.old_alive || self.mint.is_some());
        assert!(
            (least..=most).contains(&n),
            "{name}: after {after}, the credential has {n} values ({least} to {most} allowed)"
        );
    }

    /// The end state: only the new value, served by the consumer; the old one refused.
    async fn after(&mut self) {
        let s = self.s;
        let name = self.name.clone();
        let new = self
            .new_value()
            .unwrap_or_else(|| panic!("{name}: nothing was minted"));
        assert!(
            !self.old_alive,
            "{name}: the plan never revoked the old value"
        );
        assert!(
            !s.accepts(&self.old).await,
            "{name}: the old value still works"
        );
        assert!(s.accepts(&new).await, "{name}: the new value does not work");
        assert_eq!(s.values().await, 1, "{name}: exactly one value is left");
        let view = s.consumer().await;
        assert!(
            view.pending.is_none(),
            "{name}: the consumer still has a pending value"
        );
        let current = view
            .current
            .unwrap_or_else(|| panic!("{name}: the consumer has no current value"));
        for (k, v) in new.iter().filter(|(k, _)| delivered_output(self.plan, k)) {
            assert!(
                current.contains(v.expose()),
                "{name}: the consumer does not serve `{k}` of the new value"
            );
        }
        for old in secret_texts(&self.old) {
            assert!(
                !current.contains(&old),
                "{name}: the consumer still serves the old secret"
            );
        }
        // The provider's own verification refuses the old value now.
        let plan = self.plan;
        for step in plan.steps.iter().filter(|st| st.effect == Effect::Verify) {
            self.verify_refuses(step, Some(self.old.clone())).await;
        }
    }

    /// Every step with a wrong admin secret: fails (except a login check, which uses the
    /// value under test, not the admin), changes nothing.
    async fn misconfigured(&mut self) {
        let s = self.s;
        let name = self.name.clone();
        let before = s.snapshot().await;
        let plan = self.plan;
        let mut tried = 0;
        for step in &plan.steps {
            let Some(p) = s.misconfigured(step) else {
                continue;
            };
            tried += 1;
            let inputs = harness::resolve(step, RUN, &self.outputs)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", step.id));
            let r = self.execute_with(p.as_ref(), step, &inputs).await;
            if step.effect != Effect::Verify {
                assert!(
                    r.is_err(),
                    "{name}: {} succeeded with a wrong admin secret",
                    step.id
                );
            }
        }
        assert!(
            tried > 0,
            "{name}: no step has an admin secret to get wrong"
        );
        assert_eq!(
            s.snapshot().await,
            before,
            "{name}: steps that failed for a wrong admin secret changed the server"
        );
        let new = self.new_value().expect("minted");
        assert!(
            s.accepts(&new).await,
            "{name}: failed steps broke the new value"
        );
    }

    fn nothing_shows_a_secret(&mut self) {
        let name = &self.name;
        let log = self.log.text();
        assert!(
            log.contains("rekey_providers"),
            "{name}: the providers' own log events were captured"
        );
        assert!(self.errors >= 3, "{name}: errors were provoked and checked");
        let mut secrets = self.secrets.clone();
        secrets.sort();
        secrets.dedup();
        secrets.retain(|x| x.len() >= 8);
        for (what, text) in self
            .shown
            .iter()
            .map(|(w, t)| (w.as_str(), t.as_str()))
            .chain([("the log of the provider calls", log.as_str())])
        {
            for secret in &secrets {
                // The text is not printed: it holds the secret.
                assert!(
                    !text.contains(secret.as_str()),
                    "{name}: a secret value ({} characters) shows in {what}",
                    secret.len()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Log capture: every `tracing` event and span field (all levels, all targets) emitted on this
// thread while a provider call runs. The conformance tests use the current-thread runtime, so
// tasks the SDKs and drivers spawn run here too.

#[derive(Clone)]
pub(crate) struct LogCapture {
    text: Arc<Mutex<String>>,
    on: Arc<AtomicBool>,
    _guard: Arc<tracing::subscriber::DefaultGuard>,
}

pub(crate) struct CaptureOn<'a>(&'a AtomicBool);

impl Drop for CaptureOn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl LogCapture {
    pub(crate) fn install() -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let on = Arc::new(AtomicBool::new(false));
        let guard = tracing::subscriber::set_default(Capture {
            text: Arc::clone(&text),
            on: Arc::clone(&on),
            next: AtomicU64::new(1),
        });
        Self {
            text,
            on,
            _guard: Arc::new(guard),
        }
    }

    /// Captures until the returned guard is dropped.
    pub(crate) fn on(&self) -> CaptureOn<'_> {
        self.on.store(true, Ordering::SeqCst);
        CaptureOn(&self.on)
    }

    pub(crate) fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }
}

struct Capture {
    text: Arc<Mutex<String>>,
    on: Arc<AtomicBool>,
    next: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Capture {
    fn capture(&self, meta: &tracing::Metadata<'_>, record: impl FnOnce(&mut Fields<'_>)) {
        if !self.on.load(Ordering::SeqCst) {
            return;
        }
        let mut line = format!("{} {} {}:", meta.level(), meta.target(), meta.name());
        record(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().unwrap().push_str(&line);
    }
}

impl tracing::Subscriber for Capture {
    fn register_callsite(
        &self,
        _meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }

    fn enabled(&self, _meta: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.capture(span.metadata(), |f| span.record(f));
        tracing::span::Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        if !self.on.load(Ordering::SeqCst) {
            return;
        }
        let mut line = String::from("span record:");
        values.record(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().unwrap().push_str(&line);
    }

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        self.capture(event.metadata(), |f| event.record(f));
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------------------------
// The subjects

#[tokio::test]
async fn aws_iam_access_key_drill() {
    run(&crate::aws::AwsSubject::start(Mode::Drill).await).await;
}

#[tokio::test]
async fn aws_iam_access_key_incident() {
    run(&crate::aws::AwsSubject::start(Mode::Incident).await).await;
}

#[tokio::test]
async fn postgres_password_drill() {
    run(&crate::postgres::PgSubject::start(Mode::Drill).await).await;
}

#[tokio::test]
async fn postgres_password_incident() {
    run(&crate::postgres::PgSubject::start(Mode::Incident).await).await;
}

#[tokio::test]
async fn mysql_password_drill() {
    run(&crate::mysql::MysqlSubject::start(Mode::Drill).await).await;
}

#[tokio::test]
async fn mysql_password_incident() {
    run(&crate::mysql::MysqlSubject::start(Mode::Incident).await).await;
}

#[tokio::test]
async fn okta_client_secret_drill() {
    run(&crate::oauth::OktaSubject::start(Mode::Drill).await).await;
}

#[tokio::test]
async fn okta_client_secret_incident() {
    run(&crate::oauth::OktaSubject::start(Mode::Incident).await).await;
}

#[tokio::test]
async fn auth0_client_secret_drill() {
    run(&crate::oauth::Auth0Subject::start(Mode::Drill).await).await;
}

#[tokio::test]
async fn auth0_client_secret_incident() {
    run(&crate::oauth::Auth0Subject::start(Mode::Incident).await).await;
}

#[tokio::test]
async fn npm_granular_token_drill() {
    run(&crate::npm::NpmSubject::start(Mode::Drill)).await;
}

#[tokio::test]
async fn npm_granular_token_incident() {
    run(&crate::npm::NpmSubject::start(Mode::Incident)).await;
}

#[tokio::test]
async fn npm_classic_token_drill() {
    run(&crate::npm::NpmSubject::classic(Mode::Drill)).await;
}

#[tokio::test]
async fn npm_classic_token_incident() {
    run(&crate::npm::NpmSubject::classic(Mode::Incident)).await;
}

// ---------------------------------------------------------------------------------------------
// The suite catches broken providers: each of these wraps a real provider with one defect.

/// One defect of a provider.
#[derive(Clone, Copy)]
enum Defect {
    /// `reconcile` answers "not done" without looking: the lost call's value stays.
    ReconcileForgets,
    /// `reconcile` answers "done" without looking.
    ReconcileClaimsDone,
    /// A disable or delete answers `Ok` and does nothing.
    RevokeDoesNothing,
    /// A login check answers `Ok` whatever the value.
    VerifyAlwaysOk,
    /// A delivery answers `Ok` and writes nothing.
    DeliverDoesNothing,
    /// `undo` answers `Ok` and does nothing.
    UndoDoesNothing,
    /// A mint gives its secret as a plain output.
    SecretAsPlain,
    /// Errors quote the step's inputs.
    ErrorQuotesInputs,
    /// A mint logs its outputs.
    LogsOutputs,
}

struct Broken {
    inner: Arc<dyn Provider>,
    defect: Defect,
}

/// Every declared output, empty and plain.
fn empty_outputs(step: &PlannedStep) -> Values {
    step.outputs
        .iter()
        .map(|o| (o.name.clone(), Value::Plain(String::new())))
        .collect()
}

#[async_trait::async_trait]
impl Provider for Broken {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        self.inner.supports(step)
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let effect = call.step.effect;
        match self.defect {
            Defect::RevokeDoesNothing if matches!(effect, Effect::Disable | Effect::Delete) => {
                Ok(empty_outputs(call.step))
            }
            Defect::VerifyAlwaysOk if effect == Effect::Verify => Ok(empty_outputs(call.step)),
            Defect::DeliverDoesNothing if call.step.action == "consumer.deliver" => {
                Ok(empty_outputs(call.step))
            }
            Defect::SecretAsPlain if effect == Effect::Create => {
                let v = self.inner.execute(call).await?;
                Ok(v.into_iter()
                    .map(|(k, x)| (k, Value::Plain(x.expose().to_owned())))
                    .collect())
            }
            Defect::ErrorQuotesInputs => self.inner.execute(call).await.map_err(|mut e| {
                for v in call.inputs.values() {
                    e.message.push(' ');
                    e.message.push_str(v.expose());
                }
                e
            }),
            Defect::LogsOutputs if effect == Effect::Create => {
                let v = self.inner.execute(call).await?;
                for x in v.values() {
                    tracing::trace!(value = x.expose(), "minted");
                }
                Ok(v)
            }
            _ => self.inner.execute(call).await,
        }
    }

    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        match self.defect {
            Defect::UndoDoesNothing => Ok(()),
            _ => self.inner.undo(call, outputs).await,
        }
    }

    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        match self.defect {
            Defect::ReconcileForgets => Ok(Reconciled::NotDone),
            Defect::ReconcileClaimsDone => Ok(Reconciled::Done(empty_outputs(call.step))),
            _ => self.inner.reconcile(call).await,
        }
    }

    async fn read_back(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, secrecy::SecretString>>, ProviderError> {
        self.inner.read_back(call).await
    }
}

/// `S` with every provider given `defect`.
struct Defective<S> {
    s: S,
    defect: Defect,
}

impl<S: Subject> Subject for Defective<S> {
    fn name(&self) -> String {
        self.s.name()
    }

    fn plan(&self) -> &Plan {
        self.s.plan()
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        Arc::new(Broken {
            inner: self.s.provider(step),
            defect: self.defect,
        })
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        self.s.misconfigured(step)
    }

    fn old_value(&self) -> Values {
        self.s.old_value()
    }

    fn holds_two(&self) -> bool {
        self.s.holds_two()
    }

    fn secrets(&self) -> Vec<String> {
        self.s.secrets()
    }

    async fn accepts(&self, value: &Values) -> bool {
        self.s.accepts(value).await
    }

    async fn values(&self) -> usize {
        self.s.values().await
    }

    async fn snapshot(&self) -> String {
        self.s.snapshot().await
    }

    async fn consumer(&self) -> ConsumerView {
        self.s.consumer().await
    }
}

async fn aws(defect: Defect) {
    let s = crate::aws::AwsSubject::start(Mode::Drill).await;
    run(&Defective { s, defect }).await;
}

#[tokio::test]
#[should_panic(expected = "its value (an orphan) still exists")]
async fn catches_an_orphan_left_by_reconcile() {
    aws(Defect::ReconcileForgets).await;
}

/// The panic message of `f`, run to its end (`None` if it did not panic).
async fn panic_of(f: impl Future<Output = ()> + 'static) -> Option<String> {
    let local = tokio::task::LocalSet::new();
    match local
        .run_until(async move { tokio::task::spawn_local(f).await })
        .await
    {
        Ok(()) => None,
        Err(e) => {
            let p = e.into_panic();
            Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default(),
            )
        }
    }
}

/// Each defect, on a user of its own of one `MariaDB` server, stops the suite with the
/// message of the check that is meant to catch it.
#[tokio::test]
async fn catches_defective_providers() {
    let db = Arc::new(rekey_testkit::MariaDb::start().await);
    let cases = [
        (
            Defect::ReconcileClaimsDone,
            Mode::Incident,
            "is done while the old value still works",
        ),
        (
            Defect::RevokeDoesNothing,
            Mode::Incident,
            "the server still accepts the old value",
        ),
        (
            Defect::UndoDoesNothing,
            Mode::Incident,
            "did not restore the state before the step",
        ),
        (Defect::VerifyAlwaysOk, Mode::Drill, "accepts a wrong value"),
        (
            Defect::DeliverDoesNothing,
            Mode::Drill,
            "the consumer lacks",
        ),
        (
            Defect::SecretAsPlain,
            Mode::Drill,
            "gives its declared outputs",
        ),
        (Defect::ErrorQuotesInputs, Mode::Drill, "shows in error of"),
        (
            Defect::LogsOutputs,
            Mode::Drill,
            "shows in the log of the provider calls",
        ),
    ];
    for (n, (defect, mode, expected)) in cases.into_iter().enumerate() {
        let s = crate::mysql::MysqlSubject::on(Arc::clone(&db), &format!("app{n}"), mode).await;
        // Boxed: with TLS in sqlx the suite's future is too large for the stack lint.
        let message = Box::pin(panic_of(async move { run(&Defective { s, defect }).await }))
            .await
            .unwrap_or_else(|| panic!("the suite passed a provider with defect {n}"));
        assert!(
            message.contains(expected),
            "defect {n} stopped the suite with another message than `{expected}`: {message}"
        );
    }
}
