//! `rekey scorecard` over a generated inventory of 10,000 credentials with a year of history
//! (four rotations each): applying the history, coverage and per-kind medians, and the
//! time-to-safe estimate (the whole inventory planned as an incident and scheduled). The
//! target is one second on the reference machine.
//!
//! ```text
//! cargo bench -p rekey-report --bench scorecard
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use rekey_spec::{Inventory, Runbooks, SourceFile};
use rekey_store::{Rotation, StepCost};

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

fn inventory(n: usize) -> (Inventory, Runbooks) {
    let sources: Vec<Arc<SourceFile>> = gen_inventory::generate(n, 1)
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(format!("inventory/{name}"), text.as_str())))
        .collect();
    let inventory =
        rekey_spec::parse_inventory(&sources).expect("the generated inventory is valid");
    let runbooks = rekey_spec::load_runbooks(None).expect("the bundled runbooks are valid");
    (inventory, runbooks)
}

/// Four real rotations a credential over the last year, one in ten of them needing a person.
fn history(inv: &Inventory) -> Vec<Rotation> {
    let end: jiff::Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
    let mut rows = Vec::new();
    for (i, c) in (0_i64..).zip(&inv.credentials) {
        for q in 0..4_i64 {
            let finished = end - jiff::SignedDuration::from_hours(24 * 91 * q + i % 24);
            let human_ms = if i % 10 == 0 { 600_000 } else { 0 };
            rows.push(Rotation {
                run_id: format!("run-q{q}"),
                credential: c.id.clone(),
                kind: c.kind.as_str().to_owned(),
                mode: "drill".into(),
                simulated: false,
                outcome: "rotated".into(),
                started_at: finished - jiff::SignedDuration::from_secs(30),
                finished_at: finished,
                duration_ms: 30_000 + human_ms,
                human_ms,
                steps: vec![StepCost {
                    step: format!("{}/create", c.id),
                    action: "aws.iam.create_access_key".into(),
                    provider: "aws".into(),
                    effect: "create".into(),
                    ms: 800 + (i % 7) * 100,
                    human_ms: 0,
                }],
            });
        }
    }
    rows.sort_by_key(|r| r.finished_at);
    rows
}

fn scorecard(inv: &Inventory, runbooks: &Runbooks, rows: &[Rotation]) -> rekey_report::Scorecard {
    let mut inv = inv.clone();
    let by = rekey_store::history::by_credential(rows);
    rekey_report::scorecard::apply_history(&mut inv, &by, false);
    let tts = rekey_report::estimate::time_to_safe(&inv, runbooks, rows, 16, 8);
    rekey_report::scorecard::compute(&inv, rows, "2026-11-23".parse().unwrap(), tts)
}

fn bench_scorecard(c: &mut Criterion) {
    let (inv, runbooks) = inventory(scale(10_000, 200));
    let rows = history(&inv);
    let began = Instant::now();
    let card = scorecard(&inv, &runbooks, &rows);
    println!(
        "scorecard: {} credentials, {} history rows, in {:.0} ms\n  {}",
        card.credentials,
        rows.len(),
        began.elapsed().as_secs_f64() * 1000.0,
        card.time_to_safe
            .as_ref()
            .map_or("no estimate", |e| e.summary.as_str())
    );
    assert!(card.time_to_safe.is_some(), "{:?}", card.time_to_safe_note);

    let mut group = c.benchmark_group("scorecard_10k");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(scale(20, 1) as u64));
    group.bench_function("scorecard", |b| {
        b.iter(|| black_box(scorecard(&inv, &runbooks, &rows)));
    });
    group.finish();
}

criterion_group!(benches, bench_scorecard);
criterion_main!(benches);
