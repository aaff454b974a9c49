//! `rekey lint`: findings as text, JSON or SARIF 2.1.0 (GitHub code scanning shows them on
//! the inventory files). Exit 0 without errors, 1 with, 2 on bad input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use rekey_spec::lint::{DrillRecord, Finding, RULES, Severity};
use serde_json::json;

use crate::cli::{Global, LintArgs, LintFormat};
use crate::report::Failure;

pub(crate) fn run(global: &Global, args: &LintArgs) -> Result<(), Failure> {
    let mut inventory = super::load_inventory(global)?;
    // What rekey rotated counts: for `overdue` (real rotations only), and for `never-drilled`
    // and `last-drill-failed` (rehearsals are drills too).
    let recorded = super::state::history_if_any(global)?;
    rekey_report::scorecard::apply_history(&mut inventory, &recorded, false);
    let history: BTreeMap<String, DrillRecord> = recorded
        .into_iter()
        .filter_map(|(id, h)| {
            let last = h.last?;
            Some((
                id,
                DrillRecord {
                    last_success: h.last_rotated_or_simulated,
                    last_outcome: last.outcome,
                    last_run: last.run_id,
                    simulated: last.simulated,
                },
            ))
        })
        .collect();
    let findings = rekey_spec::lint::lint(&inventory, super::today(global), &history);
    let format = if args.json {
        LintFormat::Json
    } else {
        args.format
    };
    let mut out = anstream::stdout().lock();
    let text = match format {
        LintFormat::Text => {
            let mut t = String::new();
            for f in &findings {
                let _ = writeln!(
                    t,
                    "{}: {}[{}] {}",
                    f.location,
                    f.severity.as_str(),
                    f.rule,
                    f.message
                );
            }
            let errors = count(&findings, Severity::Error);
            let warnings = count(&findings, Severity::Warning);
            let _ = writeln!(
                t,
                "{} finding(s): {errors} error(s), {warnings} warning(s), {} note(s)",
                findings.len(),
                findings.len() - errors - warnings
            );
            t
        }
        LintFormat::Json => {
            let list: Vec<_> = findings
                .iter()
                .map(|f| {
                    json!({
                        "rule": f.rule,
                        "severity": f.severity,
                        "id": f.id,
                        "file": f.location.file.path(),
                        "line": f.location.line,
                        "column": f.location.column,
                        "message": f.message,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&list).expect("plain JSON") + "\n"
        }
        LintFormat::Sarif => {
            serde_json::to_string_pretty(&sarif(&findings)).expect("plain JSON") + "\n"
        }
    };
    if let Err(e) = out.write_all(text.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(Failure::Other(e.into()));
    }
    if count(&findings, Severity::Error) > 0 {
        return Err(Failure::Exit {
            code: 1,
            message: format!(
                "lint: {} error(s) in the inventory",
                count(&findings, Severity::Error)
            ),
        });
    }
    Ok(())
}

fn count(findings: &[Finding], s: Severity) -> usize {
    findings.iter().filter(|f| f.severity == s).count()
}

/// SARIF 2.1.0: one run, the rules, a result a finding at its file (relative, as written),
/// line and column.
fn sarif(findings: &[Finding]) -> serde_json::Value {
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let rules: Vec<_> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.summary },
                "defaultConfiguration": { "level": level(r.severity) },
            })
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(f.location.file.path()) },
                        "region": {
                            "startLine": f.location.line,
                            "startColumn": f.location.column,
                        }
                    },
                    "logicalLocations": [{ "name": f.id }]
                }]
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "rekey",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

/// A file path as a SARIF URI reference: `/` separators, relative paths kept relative (code
/// scanning resolves them against the repository).
fn uri(path: &Path) -> String {
    let p = path.strip_prefix("./").unwrap_or(path);
    p.to_string_lossy().replace('\\', "/")
}
