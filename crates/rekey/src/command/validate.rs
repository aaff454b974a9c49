//! `rekey validate`: check inventory and runbooks, and that every credential can be planned in
//! both modes.

use std::io::Write;

use rekey_plan::{PlanError, PlanRequest, Selection};
use rekey_spec::action::ACTIONS;
use rekey_spec::{Mode, SpecError, SpecErrors};

use crate::cli::{Global, ValidateArgs};
use crate::report::Failure;

pub(crate) fn run(global: &Global, args: &ValidateArgs) -> Result<(), Failure> {
    let mut out = anstream::stdout().lock();
    if args.actions {
        for a in ACTIONS {
            let inputs: Vec<String> = a
                .inputs
                .iter()
                .map(|p| format!("{}{}", p.name, if p.required { "" } else { "?" }))
                .collect();
            let outputs: Vec<String> = a
                .outputs
                .iter()
                .map(|o| format!("{}{}", o.name, if o.secret { " (secret)" } else { "" }))
                .collect();
            let _ = writeln!(
                out,
                "{:<34} {}\n    in: {}\n    out: {}",
                a.name,
                a.call,
                if a.open_inputs {
                    "any fields of the delivered document".to_owned()
                } else {
                    inputs.join(", ")
                },
                outputs.join(", ")
            );
        }
        return Ok(());
    }
    let (inventory, runbooks) = super::load(global)?;
    // A plan that would be refused is a problem to fix now, not during an incident.
    let selection = Selection::default();
    let mut problems = SpecErrors::default();
    // Which auth each GitHub and npm step uses (the variable's name, never its value).
    let mut github_auth: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for mode in [Mode::Drill, Mode::Incident] {
        let req = PlanRequest {
            inventory: &inventory,
            runbooks: &runbooks,
            selection: &selection,
            mode,
            exposed: None,
        };
        match rekey_plan::compile(&req) {
            Ok(plan) => {
                for step in &plan.steps {
                    let auth = rekey_providers::github::describe_auth_from_env(step)
                        .map(|a| format!("github auth: {a}"))
                        .or_else(|| {
                            rekey_providers::npm::describe_auth_from_env(step)
                                .map(|a| format!("npm auth: {a}"))
                        });
                    if let Some(auth) = auth {
                        let ids = github_auth.entry(auth).or_default();
                        if !ids.contains(&step.id) {
                            ids.push(step.id.clone());
                        }
                    }
                }
            }
            Err(PlanError::Refused(rs)) => {
                for r in rs {
                    if problems.iter().any(|p| p.message.contains(&r.message)) {
                        continue;
                    }
                    let mut e = SpecError::new(
                        r.location,
                        format!(
                            "cannot rotate `{}` ({} mode): {}",
                            r.credential,
                            mode.as_str(),
                            r.message
                        ),
                    );
                    if let Some(h) = r.help {
                        e = e.help(h);
                    }
                    problems.push(e);
                }
            }
            Err(e) => return Err(Failure::Plan(e)),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Spec {
            what: "inventory",
            errors: problems,
        });
    }
    let custom = runbooks.iter().filter(|r| !r.bundled).count();
    let total = runbooks.iter().count();
    let _ = writeln!(
        out,
        "ok: {} host(s), {} service(s), {} credential(s); {} runbook(s) ({} bundled, {} from the runbooks folder); every credential plans in drill and incident mode",
        inventory.hosts.len(),
        inventory.services.len(),
        inventory.credentials.len(),
        total,
        total - custom,
        custom
    );
    for (auth, ids) in &github_auth {
        let shown: Vec<&str> = ids.iter().take(4).map(String::as_str).collect();
        let more = ids.len().saturating_sub(shown.len());
        let _ = writeln!(
            out,
            "{auth}: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more step(s)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
