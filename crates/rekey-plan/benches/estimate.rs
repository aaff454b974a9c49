//! The time-to-safe estimator over the incident plan of a generated inventory of 10,000
//! credentials (every one exposed: revoke first), with the documented costs and limits.
//!
//! ```text
//! cargo bench -p rekey-plan --bench estimate
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use rekey_plan::estimate::{Ask, Limits, Operators};
use rekey_plan::{Plan, PlanRequest, Selection, default_cost, estimate};
use rekey_spec::{Mode, SourceFile};

// `main` and the CLI arguments are unused here; `generate` is `pub` for the example binary.
#[path = "../../../examples/gen_inventory.rs"]
#[allow(dead_code, unreachable_pub)]
mod gen_inventory;

/// `REKEY_BENCH_SMOKE=1` (what `scripts/test` sets, with `cargo test --benches`): one short
/// pass over small inputs, so a bench that no longer runs fails the test run.
fn scale(full: usize, smoke: usize) -> usize {
    if std::env::var_os("REKEY_BENCH_SMOKE").is_some() {
        smoke
    } else {
        full
    }
}
const SEED: u64 = 1;

fn incident_plan(n: usize) -> Plan {
    let sources: Vec<Arc<SourceFile>> = gen_inventory::generate(n, SEED)
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(format!("inventory/{name}"), text.as_str())))
        .collect();
    let inventory =
        rekey_spec::parse_inventory(&sources).expect("the generated inventory is valid");
    let runbooks = rekey_spec::load_runbooks(None).expect("the bundled runbooks are valid");
    let selection = Selection::default();
    rekey_plan::compile(&PlanRequest {
        inventory: &inventory,
        runbooks: &runbooks,
        selection: &selection,
        mode: Mode::Incident,
        exposed: None,
    })
    .expect("the generated inventory plans")
}

fn bench_estimate(c: &mut Criterion) {
    let plan = incident_plan(scale(10_000, 200));
    let limits = Limits::documented();
    let began = Instant::now();
    let e = estimate(&plan, &default_cost, &limits);
    println!(
        "estimate (incident): {} credentials, {} steps, {} edges -> {} requests, in {:.0} ms\n  {}",
        e.credentials,
        e.steps,
        plan.edges.len(),
        e.requests,
        began.elapsed().as_secs_f64() * 1000.0,
        e.summary()
    );
    // The same with every manual step answered at once, for comparison.
    let mut at_once = limits.clone();
    at_once.operators = Operators {
        people: None,
        ask: Ask::AtOnce,
    };
    println!(
        "  every person answering at once: {}",
        estimate(&plan, &default_cost, &at_once).summary()
    );

    let mut group = c.benchmark_group("estimate");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("incident_10k", |b| {
        b.iter(|| estimate(black_box(&plan), &default_cost, black_box(&limits)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_estimate
}
criterion_main!(benches);
