//! Coalesced calls (issue 10): an incident over 2,000 GitHub PATs revokes them in at most two
//! requests, each step still with its own write-ahead record, outcome and audit rows, through
//! faults, crashes and a token the API refuses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekey_engine::{
    Call, Engine, EngineConfig, Observer, Outage, Provider, ProviderError, Providers, Reconciled,
    SimOptions, SimProvider, Values, idempotency_key,
};
use rekey_plan::{Plan, PlanRequest, PlannedStep, Selection};
use rekey_spec::Mode;
use rekey_store::{RunStatus, StepState};

use crate::engine::{Rig, assert_converged, rig};
use crate::harness::{Workspace, inventory_from};

const REVOKE: &str = "github.credentials.revoke";

/// `n` classic PATs, each delivered to one Secrets Manager secret.
fn pats_yaml(n: usize) -> String {
    let mut y = String::from("credentials:\n");
    for k in 0..n {
        let _ = write!(
            y,
            "  - id: pat-{k:04}\n    kind: github_classic_pat\n    github_user: bot-{k}\n    token_name: tok-{k}\n    delivered_to:\n      - aws_secrets_manager: {{ secret_id: ci/pat-{k:04} }}\n"
        );
    }
    y
}

/// An incident plan (every credential exposed: revoke first) over `yaml`.
fn incident(yaml: &str) -> Plan {
    let inv = inventory_from("pats.yaml", yaml).unwrap();
    let rb = crate::harness::bundled_runbooks();
    rekey_plan::compile(&PlanRequest {
        inventory: &inv,
        runbooks: &rb,
        selection: &Selection::default(),
        mode: Mode::Incident,
        exposed: None,
    })
    .unwrap()
}

fn revokes(plan: &Plan) -> Vec<&PlannedStep> {
    plan.steps.iter().filter(|s| s.action == REVOKE).collect()
}

async fn states(rig: &Rig, run: &str) -> BTreeMap<String, (StepState, i64)> {
    rig.engine
        .store
        .steps(run)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.step_id, (r.state, r.attempts)))
        .collect()
}

/// Each revoke step has its own `started` and `succeeded` audit rows, in that order.
async fn assert_audited_per_step(rig: &Rig, plan: &Plan, run: &str) {
    let events = rig.engine.store.audit_events(Some(run)).await.unwrap();
    for s in revokes(plan) {
        let mine: Vec<&str> = events
            .iter()
            .filter(|e| e.draft.step.as_deref() == Some(s.id.as_str()))
            .map(|e| e.draft.event.as_str())
            .filter(|e| *e != "step_retry")
            .collect();
        assert_eq!(mine, ["step_started", "step_succeeded"], "{}", s.id);
    }
    assert!(rig.engine.store.verify_audit().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_exposed_pats_are_revoked_in_two_requests() {
    let plan = incident(&pats_yaml(2_000));
    assert_eq!(revokes(&plan).len(), 2_000);
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    let t = Instant::now();
    let out = rig.engine.start(&plan, "run-2k", "{}").await.unwrap();
    eprintln!(
        "{} steps, {} revoke requests, in {:?}",
        plan.steps.len(),
        rig.sim.requests(REVOKE),
        t.elapsed()
    );
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    assert!(
        rig.sim.requests(REVOKE) <= 2,
        "{} requests to revoke 2,000 tokens",
        rig.sim.requests(REVOKE)
    );
    // Every token revoked exactly once: one new value each, every step's effect once.
    assert_converged(&rig.sim, &plan, "run-2k", true).await;
    assert_audited_per_step(&rig, &plan, "run-2k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_requests_failing_still_revokes_every_token_once() {
    let plan = incident(&pats_yaml(400));
    for seed in [1, 2, 3] {
        let options = SimOptions {
            fail_rate: 0.2,
            seed,
            ..SimOptions::default()
        };
        let config = EngineConfig {
            backoff_max: Duration::from_millis(100),
            ..EngineConfig::default()
        };
        let rig = rig(&plan, options, config).await;
        let out = rig.engine.start(&plan, "run-flaky", "{}").await.unwrap();
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
        assert_converged(&rig.sim, &plan, "run-flaky", true).await;
        assert_audited_per_step(&rig, &plan, "run-flaky").await;
        eprintln!("seed {seed}: {} revoke requests", rig.sim.requests(REVOKE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_an_outage_is_retried_as_a_batch() {
    let plan = incident(&pats_yaml(50));
    let options = SimOptions {
        outages: vec![Outage {
            provider: "github".into(),
            start: Duration::ZERO,
            duration: Duration::from_secs(1),
        }],
        ..SimOptions::default()
    };
    let config = EngineConfig {
        backoff_max: Duration::from_millis(400),
        ..EngineConfig::default()
    };
    let rig = rig(&plan, options, config).await;
    let out = rig.engine.start(&plan, "run-outage", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    assert_converged(&rig.sim, &plan, "run-outage", true).await;
    let requests = rig.sim.requests(REVOKE);
    // Each try is one request for all 50 tokens: a few, not 50 per try.
    assert!((2..20).contains(&requests), "{requests} requests");
    let events = rig
        .engine
        .store
        .audit_events(Some("run-outage"))
        .await
        .unwrap();
    for s in revokes(&plan) {
        let retries = events
            .iter()
            .filter(|e| e.draft.step.as_deref() == Some(s.id.as_str()))
            .filter(|e| e.draft.event == "step_retry")
            .count();
        assert_eq!(
            u64::try_from(retries).unwrap(),
            requests - 1,
            "{}: each failed request is a retry of every step in it",
            s.id
        );
    }
    let st = states(&rig, "run-outage").await;
    for s in revokes(&plan) {
        assert_eq!(st[&s.id], (StepState::Succeeded, 1), "{}", s.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_api_refuses_fails_only_its_own_step() {
    let plan = incident(&pats_yaml(5));
    let options = SimOptions {
        fail_steps: ["pat-0002/revoke-old".to_owned()].into(),
        ..SimOptions::default()
    };
    let rig = rig(&plan, options, EngineConfig::default()).await;
    let out = rig.engine.start(&plan, "run-perm", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::NeedsOperator, "{:?}", out.message);
    let message = out.message.unwrap();
    assert!(
        message.contains("pat-0002") && !message.contains("pat-0001"),
        "{message}"
    );
    assert_eq!(rig.sim.requests(REVOKE), 1, "one request for all five");
    let st = states(&rig, "run-perm").await;
    assert_eq!(st["pat-0002/revoke-old"], (StepState::Failed, 1));
    let summary = rig.sim.summary("run-perm").await.unwrap();
    for k in 0..5 {
        let id = format!("pat-{k:04}");
        let active = &summary.active[&id];
        assert_eq!(active.len(), 1, "{id}: {active:?}");
        if k == 2 {
            // Not revoked, and (revoking first) not rolled back either: an operator decides.
            assert_eq!(active[0].1, "seed", "{id}");
        } else {
            assert_eq!(active[0].1, "run-perm", "{id}");
            assert_eq!(st[&format!("{id}/revoke-old")].0, StepState::Succeeded);
            assert_eq!(summary.effects.get(&format!("{id}/revoke-old")), Some(&1));
        }
    }
}

/// Of each call of a batch request: step id, idempotency key, attempt, whether the token
/// input is secret.
type Seen = (String, String, u32, bool);

/// The simulator, recording each batch request's calls and reporting something per call.
struct Recording {
    sim: Arc<SimProvider>,
    batches: Mutex<Vec<Vec<Seen>>>,
}

#[async_trait::async_trait]
impl Provider for Recording {
    fn batch_limit(&self, step: &PlannedStep) -> Option<usize> {
        self.sim.batch_limit(step).map(|_| 3)
    }
    async fn execute_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        self.batches.lock().unwrap().push(
            calls
                .iter()
                .map(|c| {
                    let token = c
                        .inputs
                        .get("token")
                        .is_some_and(rekey_engine::Value::is_secret);
                    (
                        c.step.id.clone(),
                        c.idempotency_key.to_owned(),
                        c.attempt,
                        token,
                    )
                })
                .collect(),
        );
        for c in calls {
            c.reports.warning(format!("seen {}", c.credential.id));
        }
        self.sim.execute_batch(calls).await
    }
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.sim.execute(call).await
    }
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        self.sim.undo(call, outputs).await
    }
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        self.sim.reconcile(call).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_calls_are_built_as_single_calls_and_their_reports_audited_per_step() {
    let plan = incident(&pats_yaml(7));
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    let rec = Arc::new(Recording {
        sim: rig.sim.clone(),
        batches: Mutex::default(),
    });
    let engine = Engine {
        providers: Providers::all(rec.clone()),
        ..crate::engine::clone_engine(&rig.engine)
    };
    let out = engine.start(&plan, "run-rec", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    let batches = rec.batches.lock().unwrap().clone();
    // A limit of 3: 7 revokes in requests of at most 3 (a lone one goes as a single call).
    assert!(
        batches.iter().all(|b| (2..=3).contains(&b.len())),
        "{batches:?}"
    );
    let batched: usize = batches.iter().map(Vec::len).sum();
    assert!(batched >= 6, "{batches:?}");
    for (step, key, attempt, secret_token) in batches.iter().flatten() {
        assert_eq!(*key, idempotency_key("run-rec", step), "{step}");
        assert_eq!(*attempt, 1);
        assert!(
            secret_token,
            "{step}: the token input is the captured secret"
        );
    }
    let events = engine.store.audit_events(Some("run-rec")).await.unwrap();
    for (step, ..) in batches.iter().flatten() {
        let warnings: Vec<_> = events
            .iter()
            .filter(|e| {
                e.draft.step.as_deref() == Some(step) && e.draft.event == "provider_warning"
            })
            .collect();
        assert_eq!(warnings.len(), 1, "{step}");
        let cred = step.split('/').next().unwrap();
        assert_eq!(warnings[0].draft.credential.as_deref(), Some(cred));
        assert_eq!(
            warnings[0].draft.detail.as_deref(),
            Some(format!("seen {cred}").as_str())
        );
    }
    assert_converged(&rig.sim, &plan, "run-rec", true).await;
}

/// The simulator, whose batch requests never answer once `after` of them were made (the
/// process dies with them in flight); `before`: whether the request is carried out first.
struct Hangs {
    sim: Arc<SimProvider>,
    carried_out: bool,
}

#[async_trait::async_trait]
impl Provider for Hangs {
    fn batch_limit(&self, step: &PlannedStep) -> Option<usize> {
        self.sim.batch_limit(step)
    }
    async fn execute_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        if self.carried_out {
            let _ = self.sim.execute_batch(calls).await;
        }
        std::future::pending().await
    }
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.sim.execute(call).await
    }
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        self.sim.undo(call, outputs).await
    }
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        self.sim.reconcile(call).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_batch_request_is_reconciled_step_by_step() {
    let plan = incident(&pats_yaml(20));
    for carried_out in [true, false] {
        let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
        let hangs = Engine {
            providers: Providers::all(Arc::new(Hangs {
                sim: rig.sim.clone(),
                carried_out,
            })),
            ..crate::engine::clone_engine(&rig.engine)
        };
        // "Killed" with the request in flight: every revoke step is left `started`.
        let killed =
            tokio::time::timeout(Duration::from_secs(3), hangs.start(&plan, "run-k", "{}")).await;
        assert!(killed.is_err(), "the run hung in the request");
        let st = states(&rig, "run-k").await;
        for s in revokes(&plan) {
            assert_eq!(st[&s.id].0, StepState::Started, "{}", s.id);
        }
        let before = rig.sim.requests(REVOKE);
        let resumed = Engine {
            config: EngineConfig {
                take_over: rekey_store::TakeOver::Force,
                ..rig.engine.config.clone()
            },
            ..crate::engine::clone_engine(&rig.engine)
        };
        let out = resumed.resume("run-k", &BTreeMap::new()).await.unwrap();
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
        assert_converged(&rig.sim, &plan, "run-k", true).await;
        let events = rig.engine.store.audit_events(Some("run-k")).await.unwrap();
        let reconciled = |event: &str| {
            events
                .iter()
                .filter(|e| e.draft.event == event && e.draft.action.as_deref() == Some(REVOKE))
                .count()
        };
        if carried_out {
            // Found done, each on its own: no new request.
            assert_eq!(reconciled("step_reconciled_done"), 20);
            assert_eq!(rig.sim.requests(REVOKE), before);
        } else {
            // Not done: run again, as one batch.
            assert_eq!(reconciled("step_reconciled_not_done"), 20);
            assert_eq!(rig.sim.requests(REVOKE), before + 1);
        }
    }
}

/// When each step finished.
#[derive(Default)]
struct Times(Mutex<Vec<(Instant, String)>>);

impl Observer for Times {
    fn step_finished(&self, step: &PlannedStep, _state: StepState) {
        self.0
            .lock()
            .unwrap()
            .push((Instant::now(), step.id.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_providers_go_on_while_a_batch_gathers() {
    // Three PATs, one of which never reaches its revoke (its capture fails): the other two
    // wait out the window for it, while an AWS key's rotation goes on.
    let mut yaml = pats_yaml(3);
    yaml.push_str("  - id: aws-key\n    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - aws_secrets_manager: { secret_id: ci/aws }\n");
    let plan = incident(&yaml);
    let window = Duration::from_millis(1500);
    let options = SimOptions {
        latency: Duration::from_millis(30),
        fail_steps: ["pat-0001/capture-old".to_owned()].into(),
        ..SimOptions::default()
    };
    let config = EngineConfig {
        batch_window: window,
        batch_max_wait: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let rig = rig(&plan, options, config).await;
    let times = Arc::new(Times::default());
    let engine = Engine {
        observer: Some(times.clone()),
        ..crate::engine::clone_engine(&rig.engine)
    };
    let t = Instant::now();
    let out = engine.start(&plan, "run-mixed", "{}").await.unwrap();
    assert_ne!(out.status, RunStatus::Succeeded);
    let times = times.0.lock().unwrap().clone();
    let at = |id: &str| {
        times.iter().find(|(_, s)| s == id).map_or_else(
            || panic!("{id} did not finish: {times:?}"),
            |(t0, _)| t0.duration_since(t),
        )
    };
    let aws_done = times
        .iter()
        .filter(|(_, s)| s.starts_with("aws-key/"))
        .map(|(t0, _)| t0.duration_since(t))
        .max()
        .unwrap();
    let revoked = at("pat-0000/revoke-old").min(at("pat-0002/revoke-old"));
    assert!(
        aws_done < revoked,
        "the AWS key finished at {aws_done:?}, after the gathered revokes at {revoked:?}"
    );
    assert!(
        aws_done < window,
        "the AWS key took {aws_done:?}: it waited for the window"
    );
    assert_eq!(rig.sim.requests(REVOKE), 1);
}

// ---------------------------------------------------------------------------------------------
// The real binary.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_boundary_of_a_batched_incident_then_resume() {
    let n_pats = 3;
    let yaml = pats_yaml(n_pats);
    let plan = incident(&yaml);
    let mut crashes = 0;
    for n in 1.. {
        let ws = Workspace::empty();
        std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
        std::fs::write(ws.path().join("inventory/credentials.yaml"), &yaml).unwrap();
        let at = n.to_string();
        let r = ws.rekey(
            &["run", "--simulate", "--yes", "--mode", "incident"],
            &[("REKEY_SIM_CRASH_AT", &at)],
        );
        let context = format!("crash point {n}");
        if r.code == Some(0) {
            finish(&ws, &plan, "undisturbed").await;
            break;
        }
        assert_eq!(r.code, None, "{context}: {:?}\n{}", r.code, r.stderr);
        crashes += 1;
        finish(&ws, &plan, &context).await;
    }
    // Four per step of each PAT's other steps, plus the revokes' own.
    assert!(crashes > 20 * n_pats, "only {crashes} crash points");
}

/// Resumes a crashed run to the end; every step succeeded and took effect once.
async fn finish(ws: &Workspace, plan: &Plan, context: &str) {
    let ids = ws.run_ids(&[]);
    if ids.is_empty() {
        return;
    }
    let run_id = &ids[0];
    let status = ws.rekey(&["status", run_id, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    if v["status"] != "succeeded" {
        let r = ws.rekey(&["resume", run_id], &[]);
        assert_eq!(
            r.code,
            Some(0),
            "{context}: resume\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
    let sim = SimProvider::open(
        &ws.path().join(".rekey/sim-ledger.db"),
        SimOptions::default(),
    )
    .await
    .unwrap();
    assert_converged(&sim, plan, run_id, true).await;
    let verify = ws.rekey(&["audit", "verify"], &[]);
    assert_eq!(verify.code, Some(0), "{context}: {}", verify.stderr);
}

/// The simulator without `batch_limit`: what every provider was before batching.
struct Unbatched(Arc<SimProvider>);

#[async_trait::async_trait]
impl Provider for Unbatched {
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.0.execute(call).await
    }
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        self.0.undo(call, outputs).await
    }
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        self.0.reconcile(call).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_batch_limit_each_token_is_its_own_request() {
    let plan = incident(&pats_yaml(200));
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    let engine = Engine {
        providers: Providers::all(Arc::new(Unbatched(rig.sim.clone()))),
        ..crate::engine::clone_engine(&rig.engine)
    };
    let out = engine.start(&plan, "run-1by1", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    assert_eq!(rig.sim.requests(REVOKE), 200);
    assert_converged(&rig.sim, &plan, "run-1by1", true).await;
}

/// A due batch of revokes takes the next slot even while single revokes are ready: it closes
/// exposure for every member at once. Three PATs (their look-ups rank first) and thirty npm
/// tokens, one call at a time: the PATs' one revoke request goes before most npm deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_batch_of_revokes_goes_before_single_revokes() {
    let mut yaml = pats_yaml(3);
    for k in 0..30 {
        let _ = write!(
            yaml,
            "  - id: npm-{k:02}\n    kind: npm_granular_token\n    npm_user: pub-{k}\n    token_key: key-{k}\n    password_env: NPM_PASSWORD\n    delivered_to:\n      - aws_secrets_manager: {{ secret_id: ci/npm-{k:02} }}\n"
        );
    }
    let plan = incident(&yaml);
    let options = SimOptions {
        latency: Duration::from_millis(20),
        ..SimOptions::default()
    };
    let config = EngineConfig {
        concurrency: 1,
        ..EngineConfig::default()
    };
    let rig = rig(&plan, options, config).await;
    let times = Arc::new(Times::default());
    let engine = Engine {
        observer: Some(times.clone()),
        ..crate::engine::clone_engine(&rig.engine)
    };
    let out = engine.start(&plan, "run-first", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    let times = times.0.lock().unwrap().clone();
    let order: Vec<&str> = times.iter().map(|(_, s)| s.as_str()).collect();
    let revoked = order
        .iter()
        .position(|s| *s == "pat-0000/revoke-old")
        .unwrap();
    let deletes_before = order[..revoked]
        .iter()
        .filter(|s| s.ends_with("/delete-exposed"))
        .count();
    assert!(
        deletes_before < 10,
        "{deletes_before} npm deletes went before the due batch of PAT revokes: {order:?}"
    );
    assert_eq!(rig.sim.requests(REVOKE), 1);
}
