//! Retries by a time budget (issue 16): transient faults and outages are waited out, a
//! permanent error still fails at once, and the budget bounds how long a step waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey_engine::{EngineConfig, Outage, SimOptions};
use rekey_plan::{PlanRequest, Selection};
use rekey_spec::{Mode, SourceFile};
use rekey_store::RunStatus;

use crate::engine::{assert_converged, plan_for, rig};

#[path = "../../examples/gen_inventory.rs"]
#[allow(dead_code, unreachable_pub)]
pub(crate) mod gen_inventory;

/// Audit events of a run whose `event` is `name`.
async fn events(store: &rekey_store::Store, run: &str, name: &str) -> Vec<rekey_store::AuditEvent> {
    store
        .audit_events(Some(run))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.draft.event == name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_calls_failing_over_a_thousand_credentials_still_converges() {
    let files = gen_inventory::generate(1_000, 7);
    let sources: Vec<Arc<SourceFile>> = files
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(name.clone(), text.as_str())))
        .collect();
    let inventory = rekey_spec::parse_inventory(&sources).unwrap();
    let runbooks = rekey_spec::load_runbooks(None).unwrap();
    let plan = rekey_plan::compile(&PlanRequest {
        inventory: &inventory,
        runbooks: &runbooks,
        selection: &Selection::default(),
        mode: Mode::Drill,
        exposed: None,
    })
    .unwrap();
    assert_eq!(plan.credentials.len(), 1_000);
    let options = SimOptions {
        fail_rate: 0.2,
        seed: 3,
        ..SimOptions::default()
    };
    let config = EngineConfig {
        concurrency: 64,
        per_provider: 32,
        backoff_max: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let rig = rig(&plan, options, config).await;
    let t = Instant::now();
    let outcome = rig.engine.start(&plan, "run-flaky", "{}").await.unwrap();
    eprintln!(
        "{} steps at a 20 % fail rate in {:?}",
        plan.steps.len(),
        t.elapsed()
    );
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{:?}",
        outcome.message
    );
    assert_converged(&rig.sim, &plan, "run-flaky", true).await;
    let retries = events(&rig.engine.store, "run-flaky", "step_retry").await;
    // A fifth of the calls fail: roughly a quarter as many retries as steps.
    assert!(
        retries.len() > plan.steps.len() / 8,
        "{} retries for {} steps",
        retries.len(),
        plan.steps.len()
    );
    let detail = retries[0].draft.detail.as_deref().unwrap();
    assert!(
        detail.starts_with("attempt 1 transient: simulated transient failure; next try in "),
        "{detail}"
    );
    assert!(rig.engine.store.verify_audit().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_outage_is_waited_out_while_other_providers_go_on() {
    let plan = plan_for(
        &["aws-deploy-web", "gh-secrets-writer", "pg-web-app"],
        Mode::Drill,
    );
    let options = SimOptions {
        latency: Duration::from_millis(20),
        outages: vec![Outage {
            provider: "aws".into(),
            start: Duration::ZERO,
            duration: Duration::from_secs(30),
        }],
        ..SimOptions::default()
    };
    let config = EngineConfig {
        backoff_max: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let rig = rig(&plan, options, config).await;
    let t = Instant::now();
    let outcome = rig.engine.start(&plan, "run-outage", "{}").await.unwrap();
    let took = t.elapsed();
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{:?}",
        outcome.message
    );
    assert!(
        took >= Duration::from_secs(30),
        "done in {took:?}, inside the outage"
    );
    assert_converged(&rig.sim, &plan, "run-outage", true).await;

    let store = &rig.engine.store;
    let retries = events(store, "run-outage", "step_retry").await;
    assert!(!retries.is_empty());
    for r in &retries {
        assert!(
            r.draft.credential.as_deref() == Some("aws-deploy-web")
                && r.draft
                    .detail
                    .as_deref()
                    .unwrap()
                    .contains("simulated outage of aws"),
            "{:?}",
            r.draft.detail
        );
    }
    // The other credentials finished before the first AWS step got through.
    let succeeded = events(store, "run-outage", "step_succeeded").await;
    let first_aws = succeeded
        .iter()
        .find(|e| e.draft.credential.as_deref() == Some("aws-deploy-web"))
        .unwrap()
        .seq;
    // The writer token (aws-deploy-web's `rotate_with` helper, rotated first) keeps its old
    // value until the AWS key's deliveries, which authenticate with it, are done: only its
    // revoke waits.
    let step_of = |e: &&rekey_store::AuditEvent| e.draft.step.clone().unwrap_or_default();
    for c in ["gh-secrets-writer", "pg-web-app"] {
        let last = succeeded
            .iter()
            .filter(|e| e.draft.credential.as_deref() == Some(c))
            .filter(|e| !step_of(e).ends_with("/revoke-old"))
            .map(|e| e.seq)
            .max()
            .unwrap();
        assert!(last < first_aws, "{c} waited for the AWS outage");
    }
    let writer_revoked = succeeded
        .iter()
        .find(|e| step_of(e) == "gh-secrets-writer/revoke-old")
        .unwrap()
        .seq;
    let aws_delivered = succeeded
        .iter()
        .filter(|e| step_of(e).starts_with("aws-deploy-web/deliver"))
        .map(|e| e.seq)
        .max()
        .unwrap();
    assert!(aws_delivered < writer_revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_bounds_the_wait_and_a_permanent_error_fails_at_once() {
    // An outage longer than the budget: the step gives up when the budget is spent.
    let plan = plan_for(&["aws-deploy-web"], Mode::Drill);
    let options = SimOptions {
        outages: vec![Outage {
            provider: "aws".into(),
            start: Duration::ZERO,
            duration: Duration::from_mins(10),
        }],
        ..SimOptions::default()
    };
    let config = EngineConfig {
        retry_budget: Duration::from_secs(2),
        backoff_max: Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let rig = rig(&plan, options, config).await;
    let t = Instant::now();
    let outcome = rig.engine.start(&plan, "run-down", "{}").await.unwrap();
    let took = t.elapsed();
    assert_ne!(outcome.status, RunStatus::Succeeded);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "gave up after {took:?} with a 2 s budget"
    );
    let failed = events(&rig.engine.store, "run-down", "step_failed").await;
    let error = failed[0].draft.detail.as_deref().unwrap();
    assert!(
        error.contains("simulated outage of aws") && error.contains("the retry budget is 2s"),
        "{error}"
    );

    // A permanent error: one call, no retry, rolled back.
    let step = plan
        .steps
        .iter()
        .find(|s| s.step == "create")
        .unwrap()
        .id
        .clone();
    let options = SimOptions {
        fail_steps: [step.clone()].into(),
        ..SimOptions::default()
    };
    let rig = crate::engine::rig(&plan, options, EngineConfig::default()).await;
    let outcome = rig.engine.start(&plan, "run-perm", "{}").await.unwrap();
    assert_eq!(outcome.status, RunStatus::Failed, "{:?}", outcome.message);
    assert!(
        events(&rig.engine.store, "run-perm", "step_retry")
            .await
            .is_empty()
    );
    let steps = rig.engine.store.steps("run-perm").await.unwrap();
    let s = steps.iter().find(|s| s.step_id == step).unwrap();
    assert_eq!(s.attempts, 1, "a permanent error is not retried");
}
