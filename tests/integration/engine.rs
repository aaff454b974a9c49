//! The engine in-process, against the simulated provider: failure injection at every step of
//! every bundled runbook, idempotency, locks, and the step state machine in the store.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rekey_engine::{Engine, EngineConfig, Fingerprinter, Providers, SimOptions, SimProvider};
use rekey_plan::{Plan, PlanRequest, Selection};
use rekey_spec::{CredentialKind, Mode};
use rekey_store::{RunStatus, StepState, Store};

use crate::harness::{bundled_runbooks, example_inventory};

pub(crate) struct Rig {
    pub(crate) engine: Engine,
    pub(crate) sim: Arc<SimProvider>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn rig(plan: &Plan, options: SimOptions, config: EngineConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    rig_in(dir, plan, options, config, None).await
}

pub(crate) async fn rig_in(
    dir: tempfile::TempDir,
    plan: &Plan,
    options: SimOptions,
    config: EngineConfig,
    url: Option<&str>,
) -> Rig {
    let db = dir.path().join("state.db");
    let store = Store::open(url.unwrap_or(db.to_str().unwrap()))
        .await
        .unwrap();
    let sim = Arc::new(
        SimProvider::open(&dir.path().join("ledger.db"), options)
            .await
            .unwrap(),
    );
    sim.seed(plan.credentials.iter().map(|c| c.id.as_str()))
        .await
        .unwrap();
    let engine = Engine {
        store: Arc::new(store),
        providers: Providers::all(sim.clone()),
        fingerprints: Arc::new(Fingerprinter::ephemeral()),
        config: EngineConfig {
            actor: "test".into(),
            backoff_base: std::time::Duration::from_millis(1),
            ..config
        },
        simulated: true,
        observer: None,
    };
    Rig {
        engine,
        sim,
        _dir: dir,
    }
}

pub(crate) fn plan_for(ids: &[&str], mode: Mode) -> Plan {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let sel = Selection {
        credentials: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..Selection::default()
    };
    rekey_plan::compile(&PlanRequest {
        inventory: &inv,
        runbooks: &rb,
        selection: &sel,
        mode,
        exposed: None,
    })
    .unwrap()
}

/// The example credential of each kind.
fn one_per_kind() -> Vec<String> {
    let inv = example_inventory();
    CredentialKind::ALL
        .iter()
        .map(|k| {
            inv.credentials
                .iter()
                .find(|c| c.kind == *k)
                .unwrap()
                .id
                .clone()
        })
        .collect()
}

/// After a successful run: each credential has exactly one active value, minted by this run,
/// every step took effect exactly once, and every consumer that stages holds the new value.
pub(crate) async fn assert_converged(
    sim: &SimProvider,
    plan: &Plan,
    run_id: &str,
    exactly_once: bool,
) {
    let summary = sim.summary(run_id).await.unwrap();
    for c in &plan.credentials {
        let active = summary.active.get(&c.id).cloned().unwrap_or_default();
        assert_eq!(
            active.len(),
            1,
            "{}: expected one active value, found {active:?}",
            c.id
        );
        assert_eq!(
            active[0].1, run_id,
            "{}: the active value was not minted by the run",
            c.id
        );
        for &s in &c.steps {
            let step = &plan.steps[s as usize];
            if step.action == "consumer.promote" {
                let key = format!("{}/{}", c.id, step.consumer_label.as_deref().unwrap());
                assert_eq!(
                    summary.current.get(&key),
                    Some(&active[0].0),
                    "{key} does not hold the new value"
                );
            }
        }
    }
    if exactly_once {
        for s in &plan.steps {
            assert_eq!(
                summary.effects.get(&s.id),
                Some(&1),
                "{} took effect {:?} times",
                s.id,
                summary.effects.get(&s.id)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_at_every_step_of_every_runbook() {
    for id in one_per_kind() {
        for mode in [Mode::Drill, Mode::Incident] {
            let plan = plan_for(&[id.as_str()], mode);
            let cred = &plan.credentials[0];
            for &failing in &cred.steps {
                let step = &plan.steps[failing as usize];
                let options = SimOptions {
                    fail_steps: [step.id.clone()].into(),
                    ..SimOptions::default()
                };
                let rig = rig(
                    &plan,
                    options,
                    EngineConfig {
                        concurrency: 1,
                        ..EngineConfig::default()
                    },
                )
                .await;
                let run_id = format!("run-fail-{failing}");
                let outcome = rig.engine.start(&plan, &run_id, "{}").await.unwrap();
                let states: BTreeMap<String, StepState> = rig
                    .engine
                    .store
                    .steps(&run_id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.step_id, r.state))
                    .collect();
                let ctx = format!(
                    "{id} {mode:?}, failing {}: {:?} {:?}\n{states:#?}",
                    step.id, outcome.status, outcome.message
                );
                // Past the point of no return: an irreversible step has started, or (revoke
                // first) revoking the exposed value has (a half-done revoke is not undone).
                let point_of_no_return =
                    cred.steps
                        .iter()
                        .map(|&s| &plan.steps[s as usize])
                        .any(|s| {
                            let started =
                                !matches!(states[&s.id], StepState::Pending | StepState::Undone);
                            (s.irreversible && started)
                                || (mode == Mode::Incident
                                    && s.phase == rekey_spec::Phase::Revoke
                                    && started)
                        });
                let summary = rig.sim.summary(&run_id).await.unwrap();
                let active = summary.active.get(&id).cloned().unwrap_or_default();
                if point_of_no_return {
                    assert_eq!(outcome.status, RunStatus::NeedsOperator, "{ctx}");
                    assert_eq!(states[&step.id], StepState::Failed, "{ctx}");
                    assert!(
                        outcome
                            .message
                            .as_deref()
                            .unwrap_or_default()
                            .contains("failed"),
                        "{ctx}"
                    );
                } else {
                    assert_eq!(outcome.status, RunStatus::Failed, "{ctx}");
                    // Rolled back in reverse: nothing of the rotation is left.
                    for (s, st) in &states {
                        assert!(
                            matches!(st, StepState::Pending | StepState::Undone),
                            "{ctx}: {s} is {st}"
                        );
                    }
                    assert_eq!(active.len(), 1, "{ctx}: {active:?}");
                    assert_eq!(
                        active[0].1, "seed",
                        "{ctx}: the original value is active again"
                    );
                    assert!(
                        summary
                            .current
                            .keys()
                            .all(|k| !k.starts_with(&format!("{id}/"))),
                        "{ctx}"
                    );
                }
                assert!(rig.engine.store.verify_audit().await.unwrap().is_empty());
                // Undo events come in reverse order of the steps they undo.
                let undone: Vec<i64> = rig
                    .engine
                    .store
                    .audit_events(Some(&run_id))
                    .await
                    .unwrap()
                    .iter()
                    .filter(|e| e.draft.event == "step_undone")
                    .map(|e| {
                        plan.step(e.draft.step.as_deref().unwrap())
                            .unwrap()
                            .0
                            .into()
                    })
                    .collect();
                assert!(
                    undone.windows(2).all(|w| w[0] > w[1]),
                    "{ctx}: undo order {undone:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_idempotent() {
    let ids = one_per_kind();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for mode in [Mode::Drill, Mode::Incident] {
        let plan = plan_for(&refs, mode);
        let rig = rig(
            &plan,
            SimOptions::default(),
            EngineConfig {
                repeat_calls: true,
                ..EngineConfig::default()
            },
        )
        .await;
        let outcome = rig.engine.start(&plan, "run-twice", "{}").await.unwrap();
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "{:?}",
            outcome.message
        );
        assert_converged(&rig.sim, &plan, "run-twice", false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let plan = plan_for(
        &[
            "aws-deploy-web",
            "gh-secrets-writer",
            "pg-admin",
            "pg-web-app",
        ],
        Mode::Drill,
    );
    let options = SimOptions {
        fail_rate: 0.3,
        seed: 7,
        ..SimOptions::default()
    };
    let rig = rig(
        &plan,
        options,
        EngineConfig {
            retry_budget: std::time::Duration::from_secs(30),
            ..EngineConfig::default()
        },
    )
    .await;
    let outcome = rig.engine.start(&plan, "run-flaky", "{}").await.unwrap();
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{:?}",
        outcome.message
    );
    let steps = rig.engine.store.steps("run-flaky").await.unwrap();
    assert!(
        steps.iter().any(|s| s.attempts == 1),
        "each try of a step is counted once"
    );
    assert_converged(&rig.sim, &plan, "run-flaky", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_per_credential() {
    let plan = plan_for(&["aws-deploy-web", "hf-ml-read"], Mode::Drill);
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("state.db").display().to_string();
    let store = Store::open(&url).await.unwrap();
    let steps: Vec<(i64, String, String)> = vec![(0, "x".into(), "aws-deploy-web".into())];
    let new = |id: &'static str, creds: &'static [String]| rekey_store::NewRun {
        id,
        mode: "drill",
        reason: None,
        actor: "t",
        simulated: true,
        plan_json: "{}",
        options_json: "{}",
        steps: &[],
        credentials: creds,
        lease: None,
    };
    let held: &'static [String] = Box::leak(Box::new(["aws-deploy-web".to_owned()]));
    store
        .create_run(
            &rekey_store::NewRun {
                steps: &steps,
                ..new("run-a", held)
            },
            rekey_store::AuditDraft {
                actor: "t".into(),
                event: "run_created".into(),
                outcome: "ok".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = store
        .create_run(
            &new("run-b", held),
            rekey_store::AuditDraft {
                actor: "t".into(),
                event: "run_created".into(),
                outcome: "ok".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`aws-deploy-web` is already being rotated by run run-a"),
        "{err}"
    );
    assert!(
        matches!(
            store.run("run-b").await,
            Err(rekey_store::StoreError::NoRun(_))
        ),
        "nothing of the refused run is stored"
    );
    // A rehearsal and a real rotation lock apart: a stuck simulated run never blocks an
    // incident.
    store
        .create_run(
            &rekey_store::NewRun {
                simulated: false,
                ..new("run-real", held)
            },
            rekey_store::AuditDraft {
                actor: "t".into(),
                event: "run_created".into(),
                outcome: "ok".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = store
        .create_run(
            &rekey_store::NewRun {
                simulated: false,
                ..new("run-real-2", held)
            },
            rekey_store::AuditDraft::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("by run run-real;"), "{err}");
    // The engine refuses too, naming the run.
    let rig = rig_in(
        tempfile::tempdir().unwrap(),
        &plan,
        SimOptions::default(),
        EngineConfig::default(),
        Some(&url),
    )
    .await;
    let err = rig.engine.start(&plan, "run-c", "{}").await.unwrap_err();
    assert!(err.to_string().contains("run run-a"), "{err}");
    // A finished run frees its credentials.
    store
        .set_run_status(
            "run-a",
            RunStatus::Abandoned,
            None,
            rekey_store::AuditDraft {
                actor: "t".into(),
                event: "run_abandoned".into(),
                outcome: "ok".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let outcome = rig.engine.start(&plan, "run-c", "{}").await.unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    drop(dir);
}

/// The store's own contract, run against `SQLite` here and `PostgreSQL` in `postgres.rs`.
pub(crate) async fn store_conformance(url: &str) {
    use rekey_store::StepEvent as E;
    let store = Store::open(url).await.unwrap();
    let audit = |e: &str| rekey_store::AuditDraft {
        actor: "t".into(),
        event: e.into(),
        outcome: "ok".into(),
        run_id: Some("run-1".into()),
        ..Default::default()
    };
    let steps = vec![
        (0, "c/a".to_owned(), "c".to_owned()),
        (1, "c/b".to_owned(), "c".to_owned()),
    ];
    let creds = vec!["c".to_owned()];
    store
        .create_run(
            &rekey_store::NewRun {
                id: "run-1",
                mode: "drill",
                reason: Some("drill-1"),
                actor: "t",
                simulated: true,
                plan_json: "{}",
                options_json: "{}",
                steps: &steps,
                credentials: &creds,
                lease: None,
            },
            audit("run_created"),
        )
        .await
        .unwrap();
    let t = |from, event, audit: Option<rekey_store::AuditDraft>| rekey_store::Transition {
        run_id: "run-1",
        idx: 0,
        from,
        event,
        outputs_json: Some("{\"id\":\"k1\"}"),
        error: None,
        bump_attempts: true,
        audit,
    };
    assert_eq!(
        store
            .transition(t(StepState::Pending, E::Start, Some(audit("step_started"))))
            .await
            .unwrap(),
        StepState::Started
    );
    // Illegal transitions are rejected before anything is written.
    assert!(matches!(
        store
            .transition(t(StepState::Pending, E::Succeed, None))
            .await,
        Err(rekey_store::StoreError::Illegal(_))
    ));
    // A stale `from` (another process moved the step) is a conflict, not an overwrite.
    assert!(matches!(
        store
            .transition(t(StepState::Pending, E::Start, None))
            .await,
        Err(rekey_store::StoreError::Conflict { .. })
    ));
    store
        .transition(t(
            StepState::Started,
            E::Succeed,
            Some(audit("step_succeeded")),
        ))
        .await
        .unwrap();
    let recs = store.steps("run-1").await.unwrap();
    assert_eq!(
        (
            recs[0].state,
            recs[0].attempts,
            recs[0].outputs_json.as_deref()
        ),
        (StepState::Succeeded, 2, Some("{\"id\":\"k1\"}"))
    );
    assert_eq!(recs[1].state, StepState::Pending);
    // Locks: held while running, refused to another run, released when finished.
    let err = store
        .create_run(
            &rekey_store::NewRun {
                id: "run-2",
                mode: "drill",
                reason: None,
                actor: "t",
                simulated: true,
                plan_json: "{}",
                options_json: "{}",
                steps: &[],
                credentials: &creds,
                lease: None,
            },
            audit("run_created"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, rekey_store::StoreError::Locked { ref run_id, .. } if run_id == "run-1"),
        "{err}"
    );
    store
        .set_run_status("run-1", RunStatus::Succeeded, None, audit("run_finished"))
        .await
        .unwrap();
    store
        .create_run(
            &rekey_store::NewRun {
                id: "run-2",
                mode: "drill",
                reason: None,
                actor: "t",
                simulated: true,
                plan_json: "{}",
                options_json: "{}",
                steps: &[],
                credentials: &creds,
                lease: None,
            },
            audit("run_created"),
        )
        .await
        .unwrap();
    // The chain: intact, then each kind of tampering is named.
    let events = store.audit_events(None).await.unwrap();
    assert_eq!(events.len(), 5);
    assert!(rekey_store::audit::verify(&events).is_empty());
    assert_eq!(store.audit_events(Some("run-1")).await.unwrap().len(), 5);
    // The dependency index: replace, look up, bulk, forget.
    let file = |path: &str, n: i64| rekey_store::IndexedFile {
        path: path.into(),
        size: 1,
        mtime: "1".into(),
        sha256: String::new(),
        format: Some("PackageLock".into()),
        error: None,
        packages: n,
        indexed_at: rekey_store::now(),
    };
    let row = |n: &str, v: &str| ("npm".to_owned(), n.to_owned(), v.to_owned());
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    store
        .index_replace(
            &file("a.json", 2),
            &[row("axios", "1.14.1"), row("@ctrl/tinycolor", "4.1.1")],
        )
        .await
        .unwrap();
    store.index_bulk_begin().await.unwrap();
    store
        .index_replace_many(&[(file("b.json", 1), vec![row("axios", "1.14.0")])])
        .await
        .unwrap();
    store.index_bulk_end().await.unwrap();
    assert_eq!(
        store.index_lookup("npm", "axios", None).await.unwrap(),
        [pair("a.json", "1.14.1"), pair("b.json", "1.14.0")]
    );
    assert_eq!(
        store
            .index_lookup("npm", "@ctrl/tinycolor", Some("4.1.1"))
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .index_replace(&file("a.json", 1), &[row("axios", "1.14.2")])
        .await
        .unwrap();
    assert!(
        store
            .index_lookup("npm", "axios", Some("1.14.1"))
            .await
            .unwrap()
            .is_empty()
    );
    store.index_remove("b.json").await.unwrap();
    assert_eq!(
        store.index_lookup("npm", "axios", None).await.unwrap(),
        [pair("a.json", "1.14.2")]
    );
    assert_eq!(store.index_files().await.unwrap().len(), 1);
    lease_conformance(&store, url).await;
    store
        .execute_raw("UPDATE audit_events SET detail = 'edited' WHERE seq = 2".into())
        .await
        .unwrap();
    let problems = store.verify_audit().await.unwrap();
    assert_eq!(
        problems
            .iter()
            .map(|p| p.problem.as_str())
            .collect::<Vec<_>>(),
        ["row 2: its content does not match its hash (edited)"]
    );
    store.close().await;
    let _ = Path::new(url);
}

/// Run owner leases: one holder at a time, taken over only from a holder that is gone (or by
/// force), and a holder that lost its lease cannot record a verdict.
async fn lease_conformance(store: &Store, url: &str) {
    use rekey_store::{LeaseHolder, StoreError, TakeOver};
    use std::time::Duration;

    let holder = |n: &str, pid: i64| LeaseHolder {
        id: format!("{n}-{pid}"),
        ..LeaseHolder {
            pid,
            ..LeaseHolder::this_process()
        }
    };
    let me = i64::from(std::process::id());
    let (a, b) = (holder("a", me), holder("b", me));
    let ttl = rekey_store::LEASE_TTL;
    let creds = ["lease-cred".to_owned()];
    store
        .create_run(
            &rekey_store::NewRun {
                id: "run-lease",
                mode: "drill",
                reason: None,
                actor: "t",
                simulated: false,
                plan_json: "{}",
                options_json: "{}",
                steps: &[(0, "lease-step".to_owned(), "lease-cred".to_owned())],
                credentials: &creds,
                lease: Some(&a),
            },
            rekey_store::AuditDraft {
                run_id: Some("run-lease".into()),
                actor: "t".into(),
                event: "run_created".into(),
                outcome: "ok".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let done = |event: &str| rekey_store::AuditDraft {
        run_id: Some("run-lease".into()),
        actor: "t".into(),
        event: event.into(),
        outcome: "ok".into(),
        ..Default::default()
    };
    // A live holder (this very process) keeps it; the refusal names it.
    let err = store
        .take_lease("run-lease", &b, ttl, TakeOver::IfDead)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Leased { lease, .. } if lease.holder == a.id),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("pid {me}")), "{err}");
    assert!(store.renew_lease("run-lease", &a, ttl).await.unwrap());
    assert!(!store.renew_lease("run-lease", &b, ttl).await.unwrap());
    // By force: b holds it, and a can neither renew nor record a verdict.
    let previous = store
        .take_lease("run-lease", &b, ttl, TakeOver::Force)
        .await
        .unwrap();
    assert_eq!(previous.map(|l| l.holder), Some(a.id.clone()));
    assert!(!store.renew_lease("run-lease", &a, ttl).await.unwrap());
    let err = store
        .finish_run(
            "run-lease",
            &a,
            RunStatus::Succeeded,
            None,
            done("run_finished"),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::LeaseLost { .. }), "{err}");
    // Nor write a step: the lease fences step writes.
    let fenced = Store::open(url).await.unwrap();
    fenced.fence(&a);
    let err = fenced
        .transition(rekey_store::Transition {
            run_id: "run-lease",
            idx: 0,
            from: StepState::Pending,
            event: rekey_store::StepEvent::Start,
            outputs_json: None,
            error: None,
            bump_attempts: true,
            audit: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::LeaseLost { .. }), "{err}");
    fenced.close().await;
    assert_eq!(
        store.run("run-lease").await.unwrap().status,
        RunStatus::Running
    );
    // An expired lease is free.
    store
        .take_lease("run-lease", &b, Duration::ZERO, TakeOver::IfDead)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .take_lease("run-lease", &a, ttl, TakeOver::IfDead)
        .await
        .unwrap();
    // A holder on this host whose process is gone is taken over at once.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = i64::from(child.id());
    child.wait().unwrap();
    let dead = holder("dead", gone);
    store
        .take_lease("run-lease", &dead, ttl, TakeOver::Force)
        .await
        .unwrap();
    let previous = store
        .take_lease("run-lease", &b, ttl, TakeOver::IfDead)
        .await
        .unwrap();
    assert_eq!(previous.map(|l| l.holder), Some(dead.id.clone()));
    // Two processes racing for a dead holder's run: exactly one gets it.
    store
        .take_lease("run-lease", &dead, ttl, TakeOver::Force)
        .await
        .unwrap();
    let (racer_c, racer_d) = (holder("c", me), holder("d", me));
    // Two connections pools, as two processes have, released together.
    let other = Store::open(url).await.unwrap();
    let start = tokio::sync::Barrier::new(2);
    let (rc, rd) = tokio::join!(
        async {
            start.wait().await;
            store
                .take_lease("run-lease", &racer_c, ttl, TakeOver::IfDead)
                .await
        },
        async {
            start.wait().await;
            other
                .take_lease("run-lease", &racer_d, ttl, TakeOver::IfDead)
                .await
        }
    );
    other.close().await;
    assert_eq!(
        u8::from(rc.is_ok()) + u8::from(rd.is_ok()),
        1,
        "{rc:?} {rd:?}"
    );
    let winner = if rc.is_ok() { &racer_c } else { &racer_d };
    store
        .finish_run(
            "run-lease",
            winner,
            RunStatus::Abandoned,
            None,
            done("run_abandoned"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.run("run-lease").await.unwrap().status,
        RunStatus::Abandoned
    );
    assert_eq!(store.lease("run-lease").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    store_conformance(dir.path().join("s.db").to_str().unwrap()).await;
}

/// The simulator, but reading "the current value" returns whatever a consumer holds now, as
/// Secrets Manager would.
struct NoReread(Arc<SimProvider>);

#[async_trait::async_trait]
impl rekey_engine::Provider for NoReread {
    async fn execute(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Values, rekey_engine::ProviderError> {
        self.0.execute(call).await
    }
    async fn undo(
        &self,
        call: &rekey_engine::Call<'_>,
        outputs: &rekey_engine::Values,
    ) -> Result<(), rekey_engine::ProviderError> {
        self.0.undo(call, outputs).await
    }
    async fn reconcile(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Reconciled, rekey_engine::ProviderError> {
        self.0.reconcile(call).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_old_value_is_not_read_again_after_delivery() {
    // Crashed after promote, before the old token was revoked: its captured value is gone.
    let plan = plan_for(&["gh-secrets-writer"], Mode::Drill);
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    assert_eq!(
        rig.engine.start(&plan, "run-1", "{}").await.unwrap().status,
        RunStatus::Succeeded
    );
    let revoke = plan.step("gh-secrets-writer/revoke-old").unwrap().0;
    rig.engine
        .store
        .execute_raw(format!(
            "UPDATE steps SET state = 'pending' WHERE run_id = 'run-1' AND idx = {revoke}"
        ))
        .await
        .unwrap();
    rig.engine
        .store
        .execute_raw("UPDATE runs SET status = 'running' WHERE id = 'run-1'".into())
        .await
        .unwrap();
    let engine = Engine {
        providers: Providers::all(Arc::new(NoReread(rig.sim.clone()))),
        ..clone_engine(&rig.engine)
    };
    let out = engine.resume("run-1", &BTreeMap::new()).await.unwrap();
    assert_eq!(out.status, RunStatus::NeedsOperator, "{:?}", out.message);
    assert!(
        out.message
            .unwrap()
            .contains("revoke the old value by hand")
    );
    let states = rig.engine.store.steps("run-1").await.unwrap();
    assert_eq!(
        states
            .iter()
            .find(|s| s.step_id == "gh-secrets-writer/revoke-old")
            .unwrap()
            .state,
        StepState::Pending,
        "nothing was revoked"
    );
}

pub(crate) fn clone_engine(e: &Engine) -> Engine {
    Engine {
        store: Arc::clone(&e.store),
        providers: e.providers.clone(),
        fingerprints: Arc::clone(&e.fingerprints),
        config: e.config.clone(),
        simulated: e.simulated,
        observer: None,
    }
}

/// Records which steps reached the provider; `source` steps answer an empty plain output and
/// a secret one, so a later step's selector can be made to resolve to either.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

const SOURCE_SECRET: &str = "s3cr3t-not-a-key-id";

#[async_trait::async_trait]
impl rekey_engine::Provider for Recorder {
    async fn execute(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Values, rekey_engine::ProviderError> {
        self.0.lock().unwrap().push(call.step.id.clone());
        Ok(if call.step.step == "source" {
            rekey_engine::Values::from([
                (
                    "empty".to_owned(),
                    rekey_engine::Value::Plain(String::new()),
                ),
                (
                    "token".to_owned(),
                    rekey_engine::Value::secret(SOURCE_SECRET),
                ),
            ])
        } else {
            rekey_engine::Values::new()
        })
    }
    async fn undo(
        &self,
        _call: &rekey_engine::Call<'_>,
        _outputs: &rekey_engine::Values,
    ) -> Result<(), rekey_engine::ProviderError> {
        Ok(())
    }
    async fn reconcile(
        &self,
        _call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Reconciled, rekey_engine::ProviderError> {
        Ok(rekey_engine::Reconciled::NotDone)
    }
}

/// The rule of the action registry, for every action: an input that narrows a call and
/// resolves to nothing or to a secret stops the step before the provider is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowing_input_that_resolves_to_nothing_or_a_secret_stops_the_step() {
    use rekey_plan::{Edge, EdgeKind, OutputDecl, PlannedStep};
    use rekey_spec::template::Template;

    let base = plan_for(&["aws-deploy-web"], Mode::Drill);
    let mut checked = 0;
    for action in rekey_spec::action::ACTIONS {
        for param in action.inputs.iter().filter(|p| p.narrows) {
            for (what, template) in [
                ("nothing", "{{ steps.source.outputs.empty }}"),
                ("a secret", "{{ steps.source.outputs.token }}"),
                ("nothing", ""),
                ("nothing", "  "),
            ] {
                let source = PlannedStep {
                    id: "c/source".into(),
                    step: "source".into(),
                    action: "test.source".into(),
                    provider: "test".into(),
                    inputs: BTreeMap::new(),
                    outputs: vec![
                        OutputDecl {
                            name: "empty".into(),
                            secret: false,
                        },
                        OutputDecl {
                            name: "token".into(),
                            secret: true,
                        },
                    ],
                    consumer: None,
                    consumer_label: None,
                    target: None,
                    manual: None,
                    irreversible: false,
                    ..base.steps[0].clone()
                };
                let mut inputs: BTreeMap<String, Template> = action
                    .inputs
                    .iter()
                    .filter(|p| p.required)
                    .map(|p| (p.name.to_owned(), Template::literal("x")))
                    .collect();
                inputs.insert(param.name.to_owned(), Template::parse(template).unwrap());
                let target = PlannedStep {
                    id: "c/target".into(),
                    step: "target".into(),
                    action: action.name.into(),
                    provider: "test".into(),
                    effect: action.effect,
                    inputs,
                    outputs: Vec::new(),
                    ..source.clone()
                };
                let mut plan = base.clone();
                plan.credentials.truncate(1);
                plan.credentials[0].steps = vec![0, 1];
                plan.credentials[0].first_irreversible = None;
                plan.credentials[0].helper = None;
                plan.steps = vec![source, target];
                plan.edges = vec![Edge {
                    from: 0,
                    to: 1,
                    kind: EdgeKind::Needs,
                }];
                let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
                let recorder = Arc::new(Recorder::default());
                let engine = Engine {
                    providers: Providers::all(recorder.clone()),
                    ..clone_engine(&rig.engine)
                };
                let label = format!("{}.{} = {template:?} ({what})", action.name, param.name);
                let out = engine.start(&plan, "run-1", "{}").await.unwrap();
                assert_ne!(out.status, RunStatus::Succeeded, "{label}");
                assert_eq!(
                    *recorder.0.lock().unwrap(),
                    ["c/source"],
                    "{label}: the provider was called"
                );
                let steps = engine.store.steps("run-1").await.unwrap();
                assert_eq!(steps[1].state, StepState::Failed, "{label}");
                let error = steps[1].error.clone().unwrap_or_default();
                assert!(
                    error.contains(param.name) && error.contains(what),
                    "{label}: {error}"
                );
                assert!(!error.contains(SOURCE_SECRET), "{label}: the error leaks");
                checked += 1;
            }
        }
    }
    // AWS, GCP, npm, Okta and MySQL selectors, four ways each.
    assert!(checked >= 4 * 12, "only {checked} cases");
}

/// The simulator, but reading a consumer back fails (a transient error, `failures` times; for
/// ever with `usize::MAX`).
struct FlakyReadBack {
    sim: Arc<SimProvider>,
    failures: usize,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl rekey_engine::Provider for FlakyReadBack {
    async fn execute(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Values, rekey_engine::ProviderError> {
        self.sim.execute(call).await
    }
    async fn undo(
        &self,
        call: &rekey_engine::Call<'_>,
        outputs: &rekey_engine::Values,
    ) -> Result<(), rekey_engine::ProviderError> {
        self.sim.undo(call, outputs).await
    }
    async fn reconcile(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Reconciled, rekey_engine::ProviderError> {
        self.sim.reconcile(call).await
    }
    async fn read_back(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<Option<BTreeMap<String, secrecy::SecretString>>, rekey_engine::ProviderError> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n < self.failures {
            return Err(rekey_engine::ProviderError::transient(
                "secretsmanager: service unavailable",
            ));
        }
        self.sim.read_back(call).await
    }
}

/// A finished drill of `aws-deploy-web` set back to just after its deliveries: the process that
/// held the new key "crashed" there, so its secret is gone from memory.
async fn crashed_after_deliveries(rig: &Rig, plan: &Plan) {
    assert_eq!(
        rig.engine.start(plan, "run-1", "{}").await.unwrap().status,
        RunStatus::Succeeded
    );
    let last_delivery = plan
        .steps
        .iter()
        .rposition(|s| s.action == "consumer.deliver")
        .unwrap();
    rig.engine
        .store
        .execute_raw(format!(
            "UPDATE steps SET state = 'pending' WHERE run_id = 'run-1' AND idx > {last_delivery}"
        ))
        .await
        .unwrap();
    rig.engine
        .store
        .execute_raw("UPDATE runs SET status = 'running' WHERE id = 'run-1'".into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_back_that_keeps_failing_stops_for_an_operator_and_deletes_nothing() {
    let plan = plan_for(&["aws-deploy-web"], Mode::Drill);
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    crashed_after_deliveries(&rig, &plan).await;
    let create = plan.step("aws-deploy-web/create").unwrap().0;
    let engine = Engine {
        providers: Providers::all(Arc::new(FlakyReadBack {
            sim: rig.sim.clone(),
            failures: usize::MAX,
            calls: 0.into(),
        })),
        config: EngineConfig {
            retry_budget: std::time::Duration::from_millis(50),
            ..rig.engine.config.clone()
        },
        ..clone_engine(&rig.engine)
    };
    let out = engine.resume("run-1", &BTreeMap::new()).await.unwrap();
    assert_eq!(out.status, RunStatus::NeedsOperator, "{:?}", out.message);
    let message = out.message.unwrap();
    assert!(
        message.contains("may be live") && message.contains("read-back failed"),
        "{message}"
    );
    // The new key, live in the write-only GitHub secrets, was neither undone nor minted again.
    let states = rig.engine.store.steps("run-1").await.unwrap();
    assert_eq!(states[create as usize].state, StepState::Succeeded);
    let events = rig.engine.store.audit_events(Some("run-1")).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e.draft.event.starts_with("step_redo") || e.draft.event == "step_undone"),
        "nothing undone or redone"
    );
    assert!(
        events
            .iter()
            .any(|e| e.draft.event == "secret_recovery_failed"),
        "the failed read-back is audited"
    );
    assert!(message.contains("--mint-again aws-deploy-web"), "{message}");
    // The operator allows minting again: the run finishes with one new value.
    let engine = Engine {
        config: EngineConfig {
            mint_again: rekey_engine::MintAgain::Only(["aws-deploy-web".to_owned()].into()),
            ..engine.config.clone()
        },
        ..clone_engine(&engine)
    };
    let out = engine.resume("run-1", &BTreeMap::new()).await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    let events = rig.engine.store.audit_events(Some("run-1")).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.draft.event == "mint_again_confirmed")
    );
    assert!(
        events.iter().any(|e| e.draft.event == "step_redo"
            && e.draft.step.as_deref() == Some("aws-deploy-web/create")),
        "minted again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_back_that_fails_for_a_while_is_retried_and_recovers() {
    let plan = plan_for(&["aws-deploy-web"], Mode::Drill);
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    crashed_after_deliveries(&rig, &plan).await;
    let engine = Engine {
        providers: Providers::all(Arc::new(FlakyReadBack {
            sim: rig.sim.clone(),
            failures: 3,
            calls: 0.into(),
        })),
        ..clone_engine(&rig.engine)
    };
    let out = engine.resume("run-1", &BTreeMap::new()).await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.message);
    let events = rig.engine.store.audit_events(Some("run-1")).await.unwrap();
    assert!(events.iter().any(|e| e.draft.event == "secret_recovered"));
    assert!(
        !events
            .iter()
            .any(|e| e.draft.event.starts_with("step_redo")),
        "the key was not minted again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_answer_was_lost_still_counts_as_maybe_live() {
    // Crashed while the Secrets Manager delivery was in flight (its answer lost: reconcile
    // sets it back to pending), before any write-only delivery started; its read-back fails.
    let plan = plan_for(&["aws-deploy-web"], Mode::Drill);
    let rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    assert_eq!(
        rig.engine.start(&plan, "run-1", "{}").await.unwrap().status,
        RunStatus::Succeeded
    );
    let sm = plan
        .step("aws-deploy-web/deliver[secretsmanager:prod/web/aws-deploy]")
        .unwrap()
        .0;
    for sql in [
        format!(
            "UPDATE steps SET state = 'pending', attempts = 0, outputs_json = NULL WHERE run_id = 'run-1' AND idx > {sm}"
        ),
        format!(
            "UPDATE steps SET state = 'started', outputs_json = NULL WHERE run_id = 'run-1' AND idx = {sm}"
        ),
        "UPDATE runs SET status = 'running' WHERE id = 'run-1'".to_owned(),
    ] {
        rig.engine.store.execute_raw(sql).await.unwrap();
    }
    let engine = Engine {
        providers: Providers::all(Arc::new(FlakyReadBack {
            sim: rig.sim.clone(),
            failures: usize::MAX,
            calls: 0.into(),
        })),
        config: EngineConfig {
            retry_budget: std::time::Duration::from_millis(50),
            ..rig.engine.config.clone()
        },
        ..clone_engine(&rig.engine)
    };
    let out = engine.resume("run-1", &BTreeMap::new()).await.unwrap();
    assert_eq!(out.status, RunStatus::NeedsOperator, "{:?}", out.message);
    assert!(
        out.message
            .unwrap()
            .contains("secretsmanager:prod/web/aws-deploy] (read-back failed"),
        "the delivery reconcile set back to pending is named"
    );
    let events = rig.engine.store.audit_events(Some("run-1")).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e.draft.event.starts_with("step_redo")),
        "the mint was not undone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waiting_for_an_operator_runs_after_its_capture_is_redone() {
    // A real (not simulated) run pauses for the new token; on resume the capture of the old
    // one cannot be read again (an env file keeps no versions) and is redone before anything
    // was delivered. The step that waited must then run, not stay blocked.
    let plan = plan_for(&["gh-secrets-writer"], Mode::Drill);
    let mut rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    rig.engine.simulated = false;
    rig.engine.providers = Providers::all(Arc::new(NoReread(rig.sim.clone())));
    let out = rig.engine.start(&plan, "run-1", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::Paused, "{:?}", out.message);
    let answers: BTreeMap<String, secrecy::SecretString> = [(
        "gh-secrets-writer/create".to_owned(),
        secrecy::SecretString::from("github_pat_new-value"),
    )]
    .into();
    let out = rig.engine.resume("run-1", &answers).await.unwrap();
    // The step that waited ran (the simulator then refuses to deliver a value it did not
    // mint, which is beside the point here); before, the run ended "blocked by a credential
    // it waits for" with the answer unused.
    let message = out.message.unwrap_or_default();
    assert!(!message.contains("blocked"), "{message}");
    let states = rig.engine.store.steps("run-1").await.unwrap();
    let create = states
        .iter()
        .find(|s| s.step_id == "gh-secrets-writer/create")
        .unwrap();
    assert!(
        matches!(create.state, StepState::Succeeded | StepState::Undone),
        "{:?}: {message}",
        create.state
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_waiting_for_a_paused_helper_leaves_the_run_paused() {
    // gh-secrets-writer (the helper that writes aws-deploy-web's Actions secrets) pauses for
    // its new token; aws-deploy-web cannot deliver until it is verified. The run is paused
    // (exit 3, answer and resume), not stopped for an operator as if something had failed.
    let plan = plan_for(&["gh-secrets-writer", "aws-deploy-web"], Mode::Drill);
    let mut rig = rig(&plan, SimOptions::default(), EngineConfig::default()).await;
    rig.engine.simulated = false;
    let out = rig.engine.start(&plan, "run-1", "{}").await.unwrap();
    assert_eq!(out.status, RunStatus::Paused, "{:?}", out.message);
    let message = out.message.unwrap_or_default();
    assert!(
        message
            .contains("aws-deploy-web: waits for gh-secrets-writer, which waits for an operator"),
        "{message}"
    );
}

/// A call the test picks by its step and credential.
type Pick = fn(&rekey_engine::Call<'_>) -> bool;

/// The simulator, with the calls `hold` picks held until the test lets them go (GitHub's paced
/// writes at their slowest, a hung provider); calls `after_held` picks start only once one is
/// held. Counts the held calls, and the calls `watch` picks once they returned.
struct Gate {
    sim: Arc<SimProvider>,
    hold: Pick,
    after_held: Pick,
    watch: Pick,
    release: tokio::sync::Semaphore,
    held: std::sync::atomic::AtomicUsize,
    watched: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl rekey_engine::Provider for Gate {
    async fn execute(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Values, rekey_engine::ProviderError> {
        use std::sync::atomic::Ordering::SeqCst;
        let hold = (self.hold)(call);
        if hold {
            self.held.fetch_add(1, SeqCst);
            let _ = self.release.acquire().await.unwrap();
        } else if (self.after_held)(call) {
            while self.held.load(SeqCst) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let r = self.sim.execute(call).await;
        if !hold && (self.watch)(call) {
            self.watched.fetch_add(1, SeqCst);
        }
        r
    }
    async fn undo(
        &self,
        call: &rekey_engine::Call<'_>,
        outputs: &rekey_engine::Values,
    ) -> Result<(), rekey_engine::ProviderError> {
        self.sim.undo(call, outputs).await
    }
    async fn reconcile(
        &self,
        call: &rekey_engine::Call<'_>,
    ) -> Result<rekey_engine::Reconciled, rekey_engine::ProviderError> {
        self.sim.reconcile(call).await
    }
}

/// What a run under [`Gate`] did while the held calls were held.
struct WhileHeld {
    /// Whether `watch` saw the calls it waited for within 20 s.
    went_on: bool,
    held: usize,
    watched: usize,
}

/// Runs `plan` under [`Gate`] until `watch` saw `want` calls (or 20 s passed), then lets the
/// held calls go; the run must then succeed.
async fn run_held(
    plan: &Plan,
    config: EngineConfig,
    gate: (Pick, Pick, Pick),
    want: usize,
) -> WhileHeld {
    use std::sync::atomic::Ordering::SeqCst;
    let rig = rig(plan, SimOptions::default(), config).await;
    let (hold, after_held, watch) = gate;
    let gate = Arc::new(Gate {
        sim: rig.sim.clone(),
        hold,
        after_held,
        watch,
        release: tokio::sync::Semaphore::new(0),
        held: 0.into(),
        watched: 0.into(),
    });
    let engine = Engine {
        providers: Providers::all(gate.clone()),
        ..clone_engine(&rig.engine)
    };
    let run = {
        let plan = plan.clone();
        tokio::spawn(async move { engine.start(&plan, "run-1", "{}").await })
    };
    let went_on = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while gate.watched.load(SeqCst) < want {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok();
    let out = WhileHeld {
        went_on,
        held: gate.held.load(SeqCst),
        watched: gate.watched.load(SeqCst),
    };
    gate.release.add_permits(1000);
    let end = tokio::time::timeout(std::time::Duration::from_mins(1), run)
        .await
        .expect("the run ends once the held calls go")
        .unwrap()
        .unwrap();
    assert_eq!(end.status, RunStatus::Succeeded, "{:?}", end.message);
    out
}

/// Consumer steps take the slots of their consumer type, not one pool for all: with one slot
/// per provider, a delivery to Secrets Manager goes on while an Actions-secret delivery is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_consumer_type_does_not_hold_the_slots_of_another() {
    let plan = plan_for(&["gh-ci-classic", "pg-web-app"], Mode::Drill);
    let config = EngineConfig {
        per_provider: 1,
        ..EngineConfig::default()
    };
    let actions: Pick = |c| {
        c.step.action == "consumer.deliver"
            && matches!(
                c.step.target,
                Some(rekey_spec::Consumer::GithubActionsSecret { .. })
            )
    };
    let pg: Pick = |c| c.credential.id == "pg-web-app";
    let pg_delivery: Pick =
        |c| c.credential.id == "pg-web-app" && c.step.action == "consumer.deliver";
    let r = run_held(&plan, config, (actions, pg, pg_delivery), 1).await;
    assert!(r.held >= 1, "no Actions-secret delivery was held");
    assert!(
        r.went_on,
        "pg-web-app's Secrets Manager delivery waited for the held Actions-secret delivery"
    );
}

/// A provider whose calls hang keeps neither the call slots nor the task slots from the
/// others: its second step waits for the provider's one slot without holding a call slot,
/// and its further steps wait unspawned. With two call slots, PostgreSQL's steps go on while
/// both npm tokens' steps are held (before, the waiting npm step held the other call slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_provider_does_not_hold_the_call_slots_of_another() {
    let plan = plan_for(
        &["npm-publish", "npm-legacy-laptop", "pg-web-app"],
        Mode::Incident,
    );
    held_provider_leaves_room(plan).await;
}

/// With six npm tokens held, npm has two tasks out (its one slot, and one waiting for it);
/// the rest wait unspawned, so PostgreSQL's steps get the task slots (before, the npm steps
/// took all four).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_provider_does_not_take_every_task_slot() {
    // The example inventory, with six copies of npm-publish's entry.
    let src = crate::harness::repo_root().join("inventory");
    let dir = tempfile::tempdir().unwrap();
    let mut ids = vec!["pg-web-app".to_owned()];
    for f in ["hosts.yaml", "services.yaml", "credentials.yaml"] {
        let mut text = std::fs::read_to_string(src.join(f)).unwrap();
        if f == "credentials.yaml" {
            let start = text.find("  - id: npm-publish\n").unwrap();
            let len = text[start + 4..].find("  - id: ").unwrap() + 4;
            let entry = text[start..start + len].to_owned();
            for k in 0..6 {
                let id = format!("npm-copy-{k}");
                text.push_str(&entry.replace("npm-publish", &id));
                ids.push(id);
            }
        }
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    std::os::unix::fs::symlink(src.join("sboms"), dir.path().join("sboms")).unwrap();
    let inv = rekey_spec::load_inventory(dir.path()).unwrap();
    let plan = rekey_plan::compile(&PlanRequest {
        inventory: &inv,
        runbooks: &bundled_runbooks(),
        selection: &Selection {
            credentials: ids,
            ..Selection::default()
        },
        mode: Mode::Incident,
        exposed: None,
    })
    .unwrap();
    held_provider_leaves_room(plan).await;
}

/// Runs `plan` with two call slots and one per provider, every npm call held until all of
/// pg-web-app's steps were called.
async fn held_provider_leaves_room(plan: Plan) {
    let config = EngineConfig {
        concurrency: 2,
        per_provider: 1,
        ..EngineConfig::default()
    };
    let pg_steps = plan
        .steps
        .iter()
        .filter(|s| plan.credentials[s.credential as usize].id == "pg-web-app")
        .count();
    let npm: Pick = |c| c.step.provider == "npm";
    let pg: Pick = |c| c.credential.id == "pg-web-app";
    let r = run_held(&plan, config, (npm, |_| false, pg), pg_steps).await;
    assert!(
        r.went_on,
        "pg-web-app made {} of its {pg_steps} calls while npm was held",
        r.watched
    );
    // npm's one slot was taken by a held call, the only npm call made meanwhile.
    assert_eq!(
        r.held, 1,
        "npm calls in flight while held, with one npm slot"
    );
}
