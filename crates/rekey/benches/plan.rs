//! `rekey plan` over a generated inventory of 10,000 credentials.
//!
//! ```text
//! cargo bench -p rekey --bench plan
//! ```
//!
//! Three measurements: reading and checking the inventory (from memory, plus the bundled
//! runbooks), compiling the drill plan over every credential, and the whole pipeline as
//! `rekey plan --format json` runs it (parse, compile, render JSON), minus file reads and
//! the write to stdout.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use rekey_plan::{Plan, PlanRequest, Selection};
use rekey_spec::{Inventory, Mode, Runbooks, SourceFile};

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

fn sources(files: &[(String, String)]) -> Vec<Arc<SourceFile>> {
    files
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(format!("inventory/{name}"), text.as_str())))
        .collect()
}

fn parse(files: &[(String, String)]) -> (Inventory, Runbooks) {
    let inventory =
        rekey_spec::parse_inventory(&sources(files)).expect("the generated inventory is valid");
    let runbooks = rekey_spec::load_runbooks(None).expect("the bundled runbooks are valid");
    (inventory, runbooks)
}

fn compile(inventory: &Inventory, runbooks: &Runbooks) -> Plan {
    let selection = Selection::default();
    let req = PlanRequest {
        inventory,
        runbooks,
        selection: &selection,
        mode: Mode::Drill,
        exposed: None,
    };
    rekey_plan::compile(&req).expect("the generated inventory plans")
}

fn bench_plan(c: &mut Criterion) {
    let files = gen_inventory::generate(scale(10_000, 200), SEED);
    let (inventory, runbooks) = parse(&files);
    let plan = compile(&inventory, &runbooks);
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    println!(
        "rekey plan (drill): {} credentials ({} KiB of YAML in {} files) -> {} steps, {} edges, {} KiB of JSON",
        inventory.credentials.len(),
        bytes / 1024,
        files.len(),
        plan.steps.len(),
        plan.edges.len(),
        rekey_plan::render_json(&plan).len() / 1024
    );
    drop(plan);

    let mut group = c.benchmark_group("rekey_plan_10k");
    // Each iteration takes a large fraction of a second: one or a few per sample.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("parse_inventory+runbooks", |b| {
        b.iter(|| parse(black_box(&files)));
    });
    group.bench_function("compile_drill", |b| {
        b.iter(|| compile(black_box(&inventory), black_box(&runbooks)));
    });
    group.bench_function("parse+compile+render_json", |b| {
        b.iter(|| {
            let (inventory, runbooks) = parse(black_box(&files));
            let plan = compile(&inventory, &runbooks);
            rekey_plan::render_json(&plan)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(12));
    targets = bench_plan
}
criterion_main!(benches);
