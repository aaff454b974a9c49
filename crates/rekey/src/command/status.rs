//! `rekey status` and `rekey abandon`.

use std::io::Write;
use std::sync::Arc;

use rekey_store::{AuditDraft, RunStatus, StepRecord};
use serde::Serialize;

use super::state;
use crate::cli::{AbandonArgs, Global, StatusArgs};
use crate::report::{Failure, printable};

#[derive(Serialize)]
struct RunView<'a> {
    #[serde(flatten)]
    run: &'a rekey_store::RunRecord,
    /// Seconds from the first step until exposure was closed, replacements were in place, and
    /// the run was done (null while not reached).
    time_to_safe: rekey_plan::TimeToSafe,
    steps: &'a [StepRecord],
}

pub(crate) fn status(global: &Global, args: &StatusArgs) -> Result<(), Failure> {
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let mut out = anstream::stdout().lock();
        // Everything below comes from the database (a provider's error text among it): each
        // line goes out through `printable`, without terminal control characters.
        let mut line =
            |text: String| writeln!(out, "{}", printable(&text)).map_err(anyhow::Error::from);
        match &args.run_id {
            None => {
                let runs = store.runs().await.map_err(anyhow::Error::from)?;
                if args.json {
                    // JSON escapes control characters itself.
                    line(serde_json::to_string_pretty(&runs).map_err(anyhow::Error::from)?)?;
                } else if runs.is_empty() {
                    line("no runs yet".to_owned())?;
                } else {
                    for r in &runs {
                        let sim = if r.simulated { " (simulated)" } else { "" };
                        line(format!(
                            "{}  {:<14}  {:<8}  {}  {}{sim}",
                            r.id,
                            r.status.as_str(),
                            r.mode,
                            r.created_at,
                            r.reason.as_deref().unwrap_or("-")
                        ))?;
                    }
                }
            }
            Some(id) => {
                let run = store.run(id).await.map_err(|e| Failure::Exit {
                    code: 2,
                    message: format!("error: {}", printable(&e.to_string())),
                })?;
                let steps = store.steps(id).await.map_err(anyhow::Error::from)?;
                let time_to_safe = rekey_report::gather(&store, id)
                    .await
                    .map_err(anyhow::Error::from)?
                    .time_to_safe;
                if args.json {
                    line(
                        serde_json::to_string_pretty(&RunView {
                            run: &run,
                            time_to_safe,
                            steps: &steps,
                        })
                        .map_err(anyhow::Error::from)?,
                    )?;
                } else {
                    let sim = if run.simulated { ", simulated" } else { "" };
                    line(format!(
                        "run {}: {} (mode {}{sim}, by {}, reason {})",
                        run.id,
                        run.status,
                        run.mode,
                        run.actor,
                        run.reason.as_deref().unwrap_or("-")
                    ))?;
                    if let Some(m) = &run.message {
                        line(format!("  {m}"))?;
                    }
                    if let Some(figures) = time_to_safe.summary() {
                        line(format!("  time to safe: {figures}"))?;
                    }
                    let mut current = "";
                    for s in &steps {
                        if s.credential != current {
                            current = &s.credential;
                            line(format!("# {current}"))?;
                        }
                        let err = s
                            .error
                            .as_deref()
                            .map(|e| format!("  ({e})"))
                            .unwrap_or_default();
                        line(format!(
                            "  {:<22} {} (attempts {}){err}",
                            s.state.as_str(),
                            s.step_id,
                            s.attempts
                        ))?;
                    }
                }
            }
        }
        store.close().await;
        Ok(())
    })
}

pub(crate) fn abandon(global: &Global, args: &AbandonArgs) -> Result<(), Failure> {
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let run = store.run(&args.run_id).await.map_err(|e| Failure::Exit {
            code: 2,
            message: format!("error: {e}"),
        })?;
        if run.status.is_terminal() {
            return Err(Failure::Exit {
                code: 2,
                message: format!(
                    "error: run {} is already {}",
                    printable(&run.id),
                    run.status
                ),
            });
        }
        // Take the run from whoever drives it (refused while a live process does, unless
        // --force): that process then cannot overwrite `abandoned` with its own verdict.
        let me = rekey_store::LeaseHolder::this_process();
        let take_over = if args.force {
            rekey_store::TakeOver::Force
        } else {
            rekey_store::TakeOver::IfDead
        };
        store
            .take_lease(&run.id, &me, rekey_store::LEASE_TTL, take_over)
            .await
            .map_err(|e| Failure::Exit {
                code: 2,
                message: format!("error: {e}"),
            })?;
        let audit = AuditDraft {
            run_id: Some(run.id.clone()),
            actor: state::actor(),
            reason: args.reason.clone().or(run.reason.clone()),
            event: "run_abandoned".into(),
            outcome: "abandoned".into(),
            detail: Some("abandoned by an operator; steps already done are not undone".into()),
            simulated: run.simulated,
            ..AuditDraft::default()
        };
        store
            .finish_run(
                &run.id,
                &me,
                RunStatus::Abandoned,
                Some("abandoned by an operator"),
                audit,
            )
            .await
            .map_err(anyhow::Error::from)?;
        // What providers kept only for this run (AWS: write-ahead markers on IAM users) goes;
        // credentials and delivered values stay as they are. Best effort: the run is
        // abandoned whatever happens here.
        let cleanup = match serde_json::from_str::<super::run::RunOptions>(&run.options_json) {
            Ok(options) => {
                match super::run::engine(global, Arc::clone(&store), &options, None, 0, &[]).await {
                    Ok(engine) => engine
                        .abandon_steps(&run.id)
                        .await
                        .map_err(anyhow::Error::from),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(anyhow::Error::from(e)),
        };
        match cleanup {
            Ok(failed) => {
                for f in failed {
                    eprintln!("warning: not cleaned up: {f}");
                }
            }
            Err(e) => eprintln!("warning: providers could not clean up after the run: {e:#}"),
        }
        store.close().await;
        let text = format!(
            "run {} abandoned; its credentials are free for another run",
            run.id
        );
        writeln!(std::io::stdout(), "{}", printable(&text)).map_err(anyhow::Error::from)?;
        Ok(())
    })
}
