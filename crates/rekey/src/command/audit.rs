//! `rekey audit show|verify|export`.

use std::fmt::Write as _;
use std::io::Write;

use super::state;
use crate::cli::{AuditArgs, AuditCommand, Global};
use crate::report::{Failure, printable};

pub(crate) fn run(global: &Global, args: &AuditArgs) -> Result<(), Failure> {
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let result = match &args.command {
            AuditCommand::Show { run } => {
                for e in store
                    .audit_events(run.as_deref())
                    .await
                    .map_err(anyhow::Error::from)?
                {
                    let d = &e.draft;
                    let mut line = format!("{:>6} {} {} {}", e.seq, e.at, d.event, d.outcome);
                    for (k, v) in [
                        ("run", &d.run_id),
                        ("credential", &d.credential),
                        ("step", &d.step),
                        ("reason", &d.reason),
                        ("detail", &d.detail),
                        ("fingerprint", &d.fingerprint),
                    ] {
                        if let Some(v) = v {
                            let _ = write!(line, " {k}={v}");
                        }
                    }
                    let _ = write!(
                        line,
                        " actor={}{}",
                        d.actor,
                        if d.simulated { " simulated" } else { "" }
                    );
                    // Every field may hold a provider's text: no control characters.
                    writeln!(out, "{}", printable(&line)).map_err(anyhow::Error::from)?;
                }
                Ok(())
            }
            AuditCommand::Export { run, .. } => {
                for e in store
                    .audit_events(run.as_deref())
                    .await
                    .map_err(anyhow::Error::from)?
                {
                    serde_json::to_writer(&mut out, &e).map_err(anyhow::Error::from)?;
                    out.write_all(b"\n").map_err(anyhow::Error::from)?;
                }
                Ok(())
            }
            AuditCommand::Verify => {
                let events = store
                    .audit_events(None)
                    .await
                    .map_err(anyhow::Error::from)?;
                let problems = rekey_store::audit::verify(&events);
                if problems.is_empty() {
                    writeln!(
                        out,
                        "ok: {} audit event(s), the hash chain is intact",
                        events.len()
                    )
                    .map_err(anyhow::Error::from)?;
                    Ok(())
                } else {
                    let lines: Vec<String> = problems
                        .iter()
                        .map(|p| format!("  {}", printable(&p.problem)))
                        .collect();
                    Err(Failure::Exit {
                        code: 1,
                        message: format!(
                            "error: the audit log was tampered with ({} problem(s)):\n{}",
                            problems.len(),
                            lines.join("\n")
                        ),
                    })
                }
            }
        };
        out.flush().map_err(anyhow::Error::from)?;
        store.close().await;
        result
    })
}
