//! `rekey incident`, `rekey index`, `rekey who-uses`: the flow is `rekey_deps::incident`; here
//! are the flags, the progress bar, the exit codes and, for `--execute`, the planner and the
//! shared run path.

use std::io::Write;

use rekey_deps::incident::{self, Query, Subject, Unreadable, render};
use rekey_deps::index::IndexReport;
use rekey_plan::{PlanRequest, Selection};
use rekey_spec::Mode;

use super::run::{check_sim, confirm, options_from, start_run};
use super::state;
use crate::cli::{Global, IncidentArgs, IndexArgs, WhoUsesArgs};
use crate::report::{Failure, stdout_color};

/// A progress bar on a terminal, shown while a refresh re-reads many files.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new() -> Self {
        Self(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                .then(|| indicatif::ProgressBar::new(0)),
        )
    }

    fn update(&self, done: u64, total: u64) {
        if let Some(b) = self.0.as_ref().filter(|_| total > 50) {
            b.set_length(total);
            b.set_position(done);
        }
    }

    fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}

fn print_index_errors(report: &IndexReport) {
    for (path, e) in &report.errors {
        eprintln!("warning: {path}: {e} (its packages are not in the index)");
    }
}

/// Exit 1 when the answer may be incomplete.
fn incomplete(unreadable: &[Unreadable]) -> Result<(), Failure> {
    if unreadable.is_empty() {
        return Ok(());
    }
    Err(Failure::Exit {
        code: 1,
        message: format!(
            "error: {} SBOM/lockfile(s) could not be read: services built from them may be affected without showing here",
            unreadable.len()
        ),
    })
}

pub(crate) fn index(global: &Global, args: &IndexArgs) -> Result<(), Failure> {
    let inventory = super::load_inventory(global)?;
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let progress = Progress::new();
        let report = incident::refresh(&store, &inventory, &|done, total| {
            progress.update(done, total);
        })
        .await
        .map_err(anyhow::Error::from)?;
        progress.finish();
        store.close().await;
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
            )
            .map_err(anyhow::Error::from)?;
        } else {
            print_index_errors(&report);
            writeln!(
                out,
                "indexed {} file(s) ({} re-read), {} package(s), {} unreadable",
                report.files,
                report.reread,
                report.packages,
                report.errors.len()
            )
            .map_err(anyhow::Error::from)?;
        }
        Ok(())
    })
}

pub(crate) fn who_uses(global: &Global, args: &WhoUsesArgs) -> Result<(), Failure> {
    let query = Query::parse(&args.package).map_err(|e| Failure::Exit {
        code: 2,
        message: format!("error: {e}"),
    })?;
    let inventory = super::load_inventory(global)?;
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let progress = Progress::new();
        let uses = incident::who_uses(&store, &inventory, &query, &|done, total| {
            progress.update(done, total);
        })
        .await
        .map_err(anyhow::Error::from)?;
        progress.finish();
        store.close().await;
        print_index_errors(&uses.index);
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(
                out,
                "{}",
                render::who_uses_json(&uses).map_err(anyhow::Error::from)?
            )
            .map_err(anyhow::Error::from)?;
        } else {
            write!(out, "{}", render::who_uses_text(&uses, &query)).map_err(anyhow::Error::from)?;
        }
        // The JSON stays a list of uses; the unreadable files are on stderr, and the exit
        // code says the answer may be incomplete.
        incomplete(&uses.unreadable)
    })
}

fn subject(args: &IncidentArgs) -> Result<Subject, Failure> {
    let bad = |m: String| Failure::Exit {
        code: 2,
        message: format!("error: {m}"),
    };
    if let Some(path) = &args.advisory {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let advisory = rekey_deps::osv::parse_advisory(&text)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        return Ok(Subject::from_advisory(advisory));
    }
    let spec = args
        .package
        .as_deref()
        .or(args.purl.as_deref())
        .expect("clap requires one");
    let p = if args.purl.is_some() {
        rekey_deps::osv::parse_purl(spec)
    } else {
        rekey_deps::osv::parse_package_spec(spec)
    }
    .map_err(|e| bad(e.to_string()))?;
    Subject::from_package(&p).map_err(|e| bad(e.to_string()))
}

pub(crate) fn incident(global: &Global, args: &IncidentArgs) -> Result<(), Failure> {
    let subject = subject(args)?;
    let (inventory, runbooks) = super::load(global)?;
    let rt = state::runtime()?;
    let (found, store) = rt.block_on(async {
        let store = state::open_store(global).await?;
        let progress = Progress::new();
        let found = incident::investigate(&store, &inventory, subject, &|done, total| {
            progress.update(done, total);
        })
        .await?;
        progress.finish();
        anyhow::Ok((found, store))
    })?;
    print_index_errors(&found.index);
    let exposed = found.exposed();
    let plan = if exposed.is_empty() {
        None
    } else {
        let selection = Selection {
            credentials: exposed.keys().cloned().collect(),
            ..Selection::default()
        };
        Some(
            rekey_plan::compile(&PlanRequest {
                inventory: &inventory,
                runbooks: &runbooks,
                selection: &selection,
                mode: Mode::Incident,
                exposed: Some(&exposed),
            })
            .map_err(Failure::Plan)?,
        )
    };

    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            render::json(&found, plan.as_ref()).map_err(anyhow::Error::from)?
        )
        .map_err(anyhow::Error::from)?;
    } else {
        write!(out, "{}", render::text(&found, args.explain)).map_err(anyhow::Error::from)?;
        if let Some(plan) = &plan {
            write!(out, "\n{}", rekey_plan::render_text(plan, stdout_color()))
                .map_err(anyhow::Error::from)?;
        }
    }
    out.flush().map_err(anyhow::Error::from)?;
    drop(out);
    if !args.execute {
        rt.block_on(store.close());
        return incomplete(&found.unreadable);
    }
    let Some(plan) = plan else {
        rt.block_on(store.close());
        eprintln!("nothing to execute: no credential is exposed");
        return incomplete(&found.unreadable);
    };
    check_sim(&args.exec.sim, false)?;
    confirm(&plan, args.yes)?;
    let reason = args
        .reason
        .clone()
        .unwrap_or_else(|| found.subject.id.clone());
    let options = options_from(&args.exec, Some(reason));
    // What is known to be exposed is revoked at once; an incomplete index still fails after.
    rt.block_on(start_run(global, store, &plan, &options, |run_id| {
        format!(
            "run {run_id}: revoke first for {} exposed credential(s)",
            plan.credentials.len()
        )
    }))?;
    incomplete(&found.unreadable)
}
