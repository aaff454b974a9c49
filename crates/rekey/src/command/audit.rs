//! `rekey audit show|verify|export`.

use std::fmt::Write as _;
use std::io::Write;

use rekey_engine::{Fingerprinter, KeyError};
use rekey_store::Store;
use rekey_store::audit::{CHAIN_KEYED, ChainKey};

use super::state;
use crate::cli::{AuditArgs, AuditCommand, Global};
use crate::report::{Failure, printable};

fn refuse(message: String) -> Failure {
    Failure::Exit { code: 2, message }
}

/// The chain key to verify with: the installation key's, never a new one (a new key would
/// only make every keyed row look edited). `None` when there is no key and nothing keyed.
fn verify_key(global: &Global, keyed_rows: bool) -> Result<Option<(ChainKey, String)>, Failure> {
    let path = state::key_path(global).map_err(|e| refuse(format!("error: {e}")))?;
    match Fingerprinter::load(&path) {
        Ok(f) => Ok(Some((
            f.chain_key(),
            format!("{} (key id {})", path.display(), f.key_id()),
        ))),
        Err(KeyError::Refused(m)) => Err(refuse(format!("error: {m}"))),
        Err(KeyError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !keyed_rows => Ok(None),
        Err(KeyError::Io(e)) => Err(refuse(format!(
            "error: cannot check the keyed audit chain without the installation key {}: {e} (REKEY_FINGERPRINT_KEY_FILE names where it is)",
            path.display()
        ))),
    }
}

async fn verify(
    global: &Global,
    store: &Store,
    head: Option<&str>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    if let Some(h) = head
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(refuse(format!(
            "error: --head {h}: expected a row hash (64 hex characters), as `rekey audit export` prints it"
        )));
    }
    let head = head.map(str::to_ascii_lowercase);
    let events = store
        .audit_events(None)
        .await
        .map_err(anyhow::Error::from)?;
    let keyed = events.iter().filter(|e| e.chain == CHAIN_KEYED).count();
    let key = verify_key(global, keyed > 0)?;
    let v = rekey_store::audit::verify_from(&events, key.as_ref().map(|k| &k.0), head.as_deref());
    // Not one keyed row matches: most likely the wrong key, not a log rewritten row by row.
    if let Some((k, which)) = &key
        && keyed > 1
        && !events
            .iter()
            .any(|e| e.chain == CHAIN_KEYED && rekey_store::audit::row_matches(Some(k), e))
    {
        return Err(Failure::Exit {
            code: 1,
            message: format!(
                "error: none of the {keyed} keyed audit rows matches under the installation key {which}: either this is not the key that wrote this log (REKEY_FINGERPRINT_KEY_FILE names it), or every row was rewritten"
            ),
        });
    }
    if !v.problems.is_empty() {
        let lines: Vec<String> = v
            .problems
            .iter()
            .map(|p| format!("  {}", printable(&p.problem)))
            .collect();
        return Err(Failure::Exit {
            code: 1,
            message: format!(
                "error: the audit log was tampered with ({} problem(s)):\n{}",
                v.problems.len(),
                lines.join("\n")
            ),
        });
    }
    let mut line = format!("ok: {} audit event(s), the hash chain is intact", v.rows);
    if key.is_some() {
        line.push_str(" (keyed with the installation key");
        if v.plain_rows > 0 {
            let _ = write!(
                line,
                "; the first {} row(s), written before the chain was keyed, are sealed by the keyed rows after them",
                v.plain_rows
            );
        }
        line.push(')');
    } else if v.plain_rows > 0 {
        line.push_str(
            " (unkeyed: written before the chain was keyed and there is no installation key here, so this only shows the rows are consistent)",
        );
    }
    if let Some(h) = &head {
        let _ = write!(line, "; {} row(s) after the head {h}", v.after_head);
    }
    writeln!(out, "{line}").map_err(anyhow::Error::from)?;
    Ok(())
}

pub(crate) fn run(global: &Global, args: &AuditArgs) -> Result<(), Failure> {
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let result = match &args.command {
            AuditCommand::Show { run, json } => {
                let events = store
                    .audit_events(run.as_deref())
                    .await
                    .map_err(anyhow::Error::from)?;
                if *json {
                    // JSON escapes control characters itself.
                    serde_json::to_writer_pretty(&mut out, &events).map_err(anyhow::Error::from)?;
                    out.write_all(b"\n").map_err(anyhow::Error::from)?;
                }
                for e in events.iter().filter(|_| !*json) {
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
            AuditCommand::Verify { head } => {
                verify(global, &store, head.as_deref(), &mut out).await
            }
        };
        out.flush().map_err(anyhow::Error::from)?;
        store.close().await;
        result
    })
}
