//! The run engine with a no-op provider and durable `SQLite` state.
//!
//! ```text
//! cargo bench -p rekey --bench engine
//! ```
//!
//! - `no_latency`: engine overhead per step (write-ahead state + audit chain in `SQLite`, WAL)
//!   with zero-latency simulated providers. Target ≥ 2,000 steps/s.
//! - `latency_50ms_c64`: every call takes 50 ms, 64 in flight. Target ≥ 90 % of 64 / 50 ms
//!   = 1,280 steps/s.
//! - `resume_10k`: resume of a 10,000-step run killed with 64 steps in flight (reconcile them,
//!   check every secret dependency, finish). Target ≤ 2 s.
//!
//! Each prints steps/s once, beside criterion's timings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use rekey_engine::{
    Call, Engine, EngineConfig, Fingerprinter, MintAgain, Provider, ProviderError, Providers,
    Reconciled, Value, Values,
};
use rekey_plan::{Plan, PlanRequest, Selection};
use rekey_spec::{Mode, SourceFile};
use rekey_store::Store;

#[path = "../../../examples/gen_inventory.rs"]
#[allow(dead_code, unreachable_pub)]
mod gen_inventory;

/// A drill plan over `n` generated credentials, without manual steps (a simulated operator
/// answers those, but they would skew a throughput figure).
fn plan(n: usize) -> Plan {
    let files = gen_inventory::generate(n, 7);
    let sources: Vec<Arc<SourceFile>> = files
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(name.clone(), text.as_str())))
        .collect();
    let inventory = rekey_spec::parse_inventory(&sources).expect("valid inventory");
    let runbooks = rekey_spec::load_runbooks(None).expect("valid runbooks");
    rekey_plan::compile(&PlanRequest {
        inventory: &inventory,
        runbooks: &runbooks,
        selection: &Selection::default(),
        mode: Mode::Drill,
        exposed: None,
    })
    .expect("plan")
}

/// `REKEY_BENCH_SMOKE=1` (what `scripts/test` sets, with `cargo test --benches`): one short
/// pass over small inputs, so a bench that no longer runs fails the test run.
fn scale(full: usize, smoke: usize) -> usize {
    if std::env::var_os("REKEY_BENCH_SMOKE").is_some() {
        smoke
    } else {
        full
    }
}

static KEY: std::sync::LazyLock<Arc<Fingerprinter>> =
    std::sync::LazyLock::new(|| Arc::new(Fingerprinter::ephemeral()));

/// A provider that does nothing but wait: the engine's own cost is what is left.
struct Noop {
    latency: Duration,
    /// Calls that complete; later calls hang (a process killed with steps in flight).
    stall_after: usize,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Provider for Noop {
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.stall_after {
            std::future::pending::<()>().await;
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(call
            .step
            .outputs
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    if o.secret {
                        Value::secret(format!("noop-{}", call.idempotency_key))
                    } else {
                        Value::Plain(format!("noop-{}", o.name))
                    },
                )
            })
            .collect())
    }

    async fn undo(&self, _call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn reconcile(&self, _call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        Ok(Reconciled::NotDone)
    }

    /// A capture is read again by its pinned version, as Secrets Manager does.
    async fn reread(
        &self,
        call: &Call<'_>,
        outputs: &Values,
    ) -> Result<Option<Values>, ProviderError> {
        let mut values = outputs.clone();
        for o in call.step.outputs.iter().filter(|o| o.secret) {
            values.insert(
                o.name.clone(),
                Value::secret(format!("noop-{}", call.idempotency_key)),
            );
        }
        Ok(Some(values))
    }
}

async fn engine(
    dir: &std::path::Path,
    latency: Duration,
    concurrency: usize,
    stall_after: usize,
) -> Engine {
    let store = Store::open(dir.join("state.db").to_str().unwrap())
        .await
        .unwrap();
    Engine {
        store: Arc::new(store),
        providers: Providers::all(Arc::new(Noop {
            latency,
            stall_after,
            calls: AtomicUsize::new(0),
        })),
        // One installation key for every engine, as `.rekey/fingerprint.key` is: a resume
        // checks what it reads again against fingerprints the killed run recorded.
        fingerprints: Arc::clone(&KEY),
        config: EngineConfig {
            concurrency,
            per_provider: concurrency,
            actor: "bench".into(),
            // The "killed" run's engine lived in this process: its lease holder is alive as
            // far as the lease can tell, so the resume takes the run over as an operator would.
            take_over: rekey_store::TakeOver::Force,
            // Values lost with the killed process may be live in write-only consumers (GitHub
            // Actions secrets): the operator confirmed minting them again.
            mint_again: MintAgain::All,
            ..EngineConfig::default()
        },
        simulated: true,
        observer: None,
    }
}

fn throughput(c: &mut Criterion, name: &str, plan: &Plan, latency: Duration, concurrency: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let steps = plan.steps.len();
    let mut group = c.benchmark_group("engine");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_millis(500));
    let mut best = f64::MAX;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let e = rt.block_on(engine(dir.path(), latency, concurrency, usize::MAX));
                let start = Instant::now();
                let out = rt.block_on(e.start(plan, "run-bench", "{}")).unwrap();
                let took = start.elapsed();
                assert_eq!(
                    out.status,
                    rekey_store::RunStatus::Succeeded,
                    "{:?}",
                    out.message
                );
                best = best.min(took.as_secs_f64());
                total += took;
            }
            total
        });
    });
    group.finish();
    #[allow(clippy::cast_precision_loss)]
    let rate = steps as f64 / best;
    println!("engine/{name}: {steps} steps, best {best:.3} s = {rate:.0} steps/s");
}

/// Runs `plan` until all but the last ~`left` steps are done, with 64 in flight, then kills
/// the run (drops every future, as a SIGKILL would stop them) and keeps a copy of its state.
fn killed_run(rt: &tokio::runtime::Runtime, plan: &Plan, left: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(rt.block_on(engine(
        dir.path(),
        Duration::ZERO,
        64,
        plan.steps.len() - left,
    )));
    let p = plan.clone();
    let e2 = Arc::clone(&e);
    let task = rt.spawn(async move { e2.start(&p, "run-bench", "{}").await });
    // Wait until progress stops: every remaining ready step hangs in the provider.
    let mut last = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = rt
            .block_on(e.store.steps("run-bench"))
            .map(|s| {
                s.iter()
                    .filter(|r| r.state == rekey_store::StepState::Succeeded)
                    .count()
                    .to_string()
            })
            .unwrap_or_default();
        if now == last && !now.is_empty() && now != "0" {
            break;
        }
        last = now;
    }
    task.abort();
    let _ = rt.block_on(task);
    rt.block_on(e.store.close());
    drop(e);
    dir
}

fn resume_10k(c: &mut Criterion, plan: &Plan) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let killed = killed_run(&rt, plan, 300);
    let started = rt.block_on(async {
        let store = Store::open(killed.path().join("state.db").to_str().unwrap())
            .await
            .unwrap();
        let n = store
            .steps("run-bench")
            .await
            .unwrap()
            .iter()
            .filter(|r| r.state == rekey_store::StepState::Started)
            .count();
        store.close().await;
        n
    });
    let mut group = c.benchmark_group("engine");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("resume_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                for f in [
                    "state.db",
                    "state.db-wal",
                    "state.db-shm",
                    "fingerprint.key",
                ] {
                    let _ = std::fs::copy(killed.path().join(f), dir.path().join(f));
                }
                let e = rt.block_on(engine(dir.path(), Duration::ZERO, 64, usize::MAX));
                let start = Instant::now();
                let out = rt
                    .block_on(e.resume("run-bench", &BTreeMap::new()))
                    .unwrap();
                total += start.elapsed();
                assert_eq!(
                    out.status,
                    rekey_store::RunStatus::Succeeded,
                    "{:?}",
                    out.message
                );
            }
            total
        });
    });
    group.finish();
    println!(
        "engine/resume_10k: {} steps in the plan, {started} in flight when killed, ~300 left to run",
        plan.steps.len()
    );
}

fn benches(c: &mut Criterion) {
    let small = plan(scale(500, 50));
    throughput(c, "no_latency", &small, Duration::ZERO, 64);
    throughput(c, "latency_50ms_c64", &small, Duration::from_millis(50), 64);
    let large = plan(scale(1_700, 100));
    resume_10k(c, &large);
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
