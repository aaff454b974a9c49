//! `rekey drill`, `rekey report` and `rekey scorecard`: practice, evidence, and the estimate.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rekey_plan::{PlanRequest, Selection};
use rekey_report::{RunReport, Scorecard};
use rekey_spec::{Inventory, Mode};
use rekey_store::{Rotation, Store};

use super::run::{check_sim, confirm, options_from, outcome, start_run_as};
use super::state;
use crate::cli::{DrillArgs, Global, ReportArgs, ReportFormat, ScorecardArgs};
use crate::report::{Failure, printable};

fn bad_input(message: impl std::fmt::Display) -> Failure {
    Failure::Exit {
        code: 2,
        message: format!("error: {message}"),
    }
}

/// The rotation history, oldest first.
pub(crate) async fn history(store: &Store) -> anyhow::Result<Vec<Rotation>> {
    store
        .rotations()
        .await
        .context("cannot read the rotation history")
}

/// The credentials a drill rotates, by the flags: due ones, a sample, or a selection.
fn pick(inv: &Inventory, args: &DrillArgs, today: jiff::civil::Date) -> Result<Pick, Failure> {
    if args.due {
        let until = today
            .checked_add(jiff::Span::new().days(i64::from(args.within.unwrap_or(0))))
            .map_err(|e| bad_input(format!("--within: {e}")))?;
        let ids = inv
            .credentials
            .iter()
            .filter(|c| c.is_due(until))
            .map(|c| c.id.clone())
            .collect();
        return Ok(Pick::Ids(ids));
    }
    if let Some(n) = args.sample {
        let seed = args.exec.sim.seed.unwrap_or_else(|| fastrand::u64(..));
        return Ok(Pick::Sample(sample(inv, n, seed), seed));
    }
    let sel = args.selection.to_selection();
    if sel.is_all() {
        return Err(bad_input(
            "say what to drill: --due, --sample N, or --credential/--service/--kind",
        ));
    }
    Ok(Pick::Selection(sel))
}

enum Pick {
    Ids(Vec<String>),
    Sample(Vec<String>, u64),
    Selection(Selection),
}

/// `n` credentials at random (seeded): one of each kind first, as far as `n` allows, then the
/// rest from what is left. Inventory order is kept in the answer, so plans diff well.
fn sample(inv: &Inventory, n: usize, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut by_kind: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in inv.credentials.iter().enumerate() {
        by_kind.entry(c.kind.as_str()).or_default().push(i);
    }
    let mut kinds: Vec<Vec<usize>> = by_kind.into_values().collect();
    rng.shuffle(&mut kinds);
    let mut chosen = Vec::new();
    let mut rest = Vec::new();
    for mut group in kinds {
        rng.shuffle(&mut group);
        if chosen.len() < n {
            chosen.push(group.remove(0));
        }
        rest.extend(group);
    }
    rng.shuffle(&mut rest);
    chosen.extend(rest.into_iter().take(n.saturating_sub(chosen.len())));
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|i| inv.credentials[i].id.clone())
        .collect()
}

pub(crate) fn run(global: &Global, args: &DrillArgs) -> Result<(), Failure> {
    check_sim(&args.exec.sim, true)?;
    let format = args
        .report
        .as_deref()
        .map(ReportFormat::of_path)
        .transpose()
        .map_err(bad_input)?;
    let (mut inventory, runbooks) = super::load(global)?;
    let today = super::today(global);
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let by = rekey_store::history::by_credential(&history(&store).await?);
        // What rekey rotated counts; a rehearsal counts for rehearsals only.
        rekey_report::scorecard::apply_history(&mut inventory, &by, args.exec.sim.simulate);
        let selection = match pick(&inventory, args, today)? {
            Pick::Ids(ids) | Pick::Sample(ids, _) if ids.is_empty() => {
                println!(
                    "nothing is due{}",
                    if args.sample.is_some() {
                        " (the inventory is empty)"
                    } else {
                        ""
                    }
                );
                store.close().await;
                return Ok(());
            }
            Pick::Ids(ids) => Selection {
                credentials: ids,
                ..Selection::default()
            },
            Pick::Sample(ids, seed) => {
                eprintln!("sample of {} (repeat with --seed {seed})", ids.len());
                Selection {
                    credentials: ids,
                    ..Selection::default()
                }
            }
            Pick::Selection(sel) => sel,
        };
        let plan = rekey_plan::compile(&PlanRequest {
            inventory: &inventory,
            runbooks: &runbooks,
            selection: &selection,
            mode: Mode::Drill,
            exposed: None,
        })
        .map_err(Failure::Plan)?;
        confirm(&plan, args.yes)?;
        let run_id = rekey_engine::new_run_id();
        let reason = args.reason.clone().unwrap_or_else(|| {
            let suffix = run_id.rsplit('-').next().unwrap_or(&run_id);
            format!("drill-{today}-{suffix}")
        });
        let options = options_from(&args.exec, Some(reason));
        let result = start_run_as(global, Arc::clone(&store), &plan, &options, &run_id, |id| {
            format!(
                "run {id}: drill of {} credential(s), {} step(s){}",
                plan.credentials.len(),
                plan.steps.len(),
                if options.simulate { " (simulated)" } else { "" }
            )
        })
        .await;
        // The report is written however the run ended, paused or failed: that is evidence too.
        // A run that never started (a refused plan) has nothing to report.
        if let (Some(path), Some(format), Ok(_)) = (&args.report, format, &result) {
            let mut report = rekey_report::gather(&store, &run_id)
                .await
                .with_context(|| format!("cannot read run {run_id} back for its report"))?;
            let rows = history(&store).await?;
            // Read again: this copy of the inventory may carry rehearsed dates.
            report.scorecard = Some(scorecard(
                &super::load_inventory(global)?,
                &runbooks,
                &rows,
                today,
                args.exec.concurrency,
                args.exec.per_provider,
            ));
            write_report(&report, format, Some(path))?;
            eprintln!("report: {}", path.display());
        }
        store.close().await;
        outcome(&result?)
    })
}

/// The scorecard: real history applied to `inv`, and the time-to-safe estimate.
fn scorecard(
    inv: &Inventory,
    runbooks: &rekey_spec::Runbooks,
    rows: &[Rotation],
    today: jiff::civil::Date,
    concurrency: usize,
    per_provider: usize,
) -> Scorecard {
    let mut inv = inv.clone();
    let by = rekey_store::history::by_credential(rows);
    rekey_report::scorecard::apply_history(&mut inv, &by, false);
    let estimate =
        rekey_report::estimate::time_to_safe(&inv, runbooks, rows, concurrency, per_provider);
    rekey_report::scorecard::compute(&inv, rows, today, estimate)
}

/// Renders `report` as `format` to `path` (standard output without one).
fn write_report(
    report: &RunReport,
    format: ReportFormat,
    path: Option<&Path>,
) -> Result<(), Failure> {
    let text = match format {
        ReportFormat::Markdown => rekey_report::markdown(report),
        ReportFormat::Html => rekey_report::html(report),
        ReportFormat::Json => {
            serde_json::to_string_pretty(report).map_err(anyhow::Error::from)? + "\n"
        }
    };
    if let Some(p) = path {
        return std::fs::write(p, text)
            .map_err(|e| bad_input(format!("cannot write the report to {}: {e}", p.display())));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .map_err(anyhow::Error::from)?;
    Ok(())
}

pub(crate) fn report(global: &Global, args: &ReportArgs) -> Result<(), Failure> {
    let format = match (args.format, &args.output) {
        (Some(f), _) => f,
        (None, Some(p)) => ReportFormat::of_path(p).map_err(bad_input)?,
        (None, None) => ReportFormat::Markdown,
    };
    let today = super::today(global);
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let mut report = match rekey_report::gather(&store, &args.run_id).await {
            Ok(r) => r,
            Err(rekey_store::StoreError::NoRun(id)) => {
                store.close().await;
                return Err(bad_input(format!(
                    "no run {} (see `rekey status`)",
                    printable(&id)
                )));
            }
            Err(e) => return Err(Failure::Other(e.into())),
        };
        // The scorecard needs today's inventory; a report of an old run is still worth having
        // without it, so a broken inventory only leaves the section out.
        match super::load(global) {
            Ok((inv, runbooks)) => {
                let rows = history(&store).await?;
                report.scorecard = Some(scorecard(&inv, &runbooks, &rows, today, 16, 8));
            }
            Err(_) => eprintln!(
                "note: the inventory or runbooks do not load (`rekey validate`): the report has no scorecard"
            ),
        }
        store.close().await;
        write_report(&report, format, args.output.as_deref())
    })
}

pub(crate) fn scorecard_command(global: &Global, args: &ScorecardArgs) -> Result<(), Failure> {
    let (inv, runbooks) = super::load(global)?;
    let today = super::today(global);
    let rt = state::runtime()?;
    let card = rt.block_on(async {
        let store = state::open_store(global).await?;
        let rows = history(&store).await?;
        store.close().await;
        Ok::<_, Failure>(scorecard(
            &inv,
            &runbooks,
            &rows,
            today,
            args.concurrency,
            args.per_provider,
        ))
    })?;
    let text = if args.json {
        serde_json::to_string_pretty(&card).map_err(anyhow::Error::from)? + "\n"
    } else {
        rekey_report::scorecard_text(&card)
    };
    let mut out = anstream::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    Ok(())
}
