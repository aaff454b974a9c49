//! Printing a plan: text (read like `terraform plan`), JSON, Graphviz DOT and Mermaid.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use rekey_spec::action::Effect;
use rekey_spec::template::{Part, Template, Var};

use crate::{NoteLevel, Plan, PlannedStep, Strategy};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const RED: Style = AnsiColor::Red.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const GREEN: Style = AnsiColor::Green.on_default();
const CYAN: Style = AnsiColor::Cyan.on_default();

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
}

/// One input as the operator should read it; secret references say where the value comes from
/// without ever holding it.
fn show_template(t: &Template) -> String {
    let mut out = String::new();
    for part in &t.parts {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Var(Var::StepOutput { step: from, output }) => {
                let _ = write!(out, "<{from}.{output}>");
            }
            Part::Var(v) => {
                let _ = write!(out, "<{v}>");
            }
        }
    }
    out
}

fn marker(step: &PlannedStep) -> &'static str {
    match (step.irreversible, step.effect) {
        (true, _) => "!",
        (false, Effect::Human) => "?",
        (false, Effect::Read | Effect::Verify) => " ",
        (false, Effect::Create) => "+",
        (false, Effect::Disable) => "-",
        (false, Effect::Delete) => "x",
        (false, Effect::Write) => "~",
    }
}

/// The plan as text. `color` adds ANSI styles (the caller decides from the terminal and
/// `NO_COLOR`).
pub fn render_text(plan: &Plan, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let revoke_first = plan
        .credentials
        .iter()
        .filter(|c| c.strategy == Strategy::RevokeFirst)
        .count();
    let _ = writeln!(
        out,
        "{} mode {}, {} credential(s), {} step(s)\n",
        p.paint(BOLD, "rekey plan:"),
        p.paint(BOLD, plan.mode.as_str()),
        plan.credentials.len(),
        plan.steps.len()
    );
    let width = plan.steps.iter().map(|s| s.step.len()).max().unwrap_or(0);
    let action_width = plan.steps.iter().map(|s| s.action.len()).max().unwrap_or(0);
    for c in &plan.credentials {
        let owner = c
            .owner
            .as_deref()
            .map(|o| format!(", owner {o}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} ({}{owner})",
            p.paint(BOLD, "#"),
            p.paint(BOLD, &c.id),
            c.kind
        );
        let strategy_style = if c.strategy == Strategy::RevokeFirst {
            RED
        } else {
            GREEN
        };
        let _ = writeln!(
            out,
            "  {} {}",
            p.paint(strategy_style, &format!("{}:", c.strategy.as_str())),
            c.reason
        );
        let _ = writeln!(out, "  {}", p.paint(DIM, &format!("runbook {}", c.runbook)));
        for (n, &si) in c.steps.iter().enumerate() {
            let s = &plan.steps[si as usize];
            let name = &s.step;
            let m = marker(s);
            let m_style = match m {
                "!" | "x" => RED,
                "?" => YELLOW,
                "+" => GREEN,
                _ => CYAN,
            };
            let _ = writeln!(
                out,
                "  {:>3}. {} {:<8} {:<width$}  {:<action_width$}  {}",
                n + 1,
                p.paint(m_style, m),
                s.phase.as_str(),
                name,
                s.action,
                p.paint(DIM, &s.call),
            );
            if let Some(label) = &s.consumer_label {
                let dir = if s.effect == Effect::Read {
                    "from"
                } else {
                    "to"
                };
                let _ = writeln!(out, "       {:<8} {dir} {}", "", p.paint(BOLD, label));
            }
            let inputs: Vec<String> = s
                .inputs
                .iter()
                .map(|(k, v)| format!("{k}={}", show_template(v)))
                .collect();
            if !inputs.is_empty() {
                let _ = writeln!(
                    out,
                    "       {:<8} {}",
                    "",
                    p.paint(DIM, &format!("with {}", inputs.join(" ")))
                );
            }
            if let Some(manual) = &s.manual {
                let text = manual.instructions.to_string();
                let _ = writeln!(
                    out,
                    "       {:<8} {} {}",
                    "",
                    p.paint(YELLOW, "operator:"),
                    text.trim()
                );
                if let Some(link) = &manual.link {
                    let _ = writeln!(out, "       {:<8} {} {link}", "", p.paint(YELLOW, "link:"));
                }
            }
        }
        for note in &c.notes {
            let (tag, style) = match note.level {
                NoteLevel::Warning => ("warning:", YELLOW),
                NoteLevel::Info => ("note:", CYAN),
            };
            let _ = writeln!(out, "  {} {}", p.paint(style, tag), note.text);
        }
        out.push('\n');
    }
    let irreversible = plan.steps.iter().filter(|s| s.irreversible).count();
    let manual = plan
        .steps
        .iter()
        .filter(|s| s.effect == Effect::Human)
        .count();
    let calls = plan
        .steps
        .iter()
        .filter(|s| s.effect != Effect::Human)
        .count();
    let _ = writeln!(
        out,
        "{} {} credential(s): {} revoke first, {} rotate first; {} step(s): {} provider call(s), {} manual (?), {} irreversible (!).",
        p.paint(BOLD, "Plan:"),
        plan.credentials.len(),
        revoke_first,
        plan.credentials.len() - revoke_first,
        plan.steps.len(),
        calls,
        manual,
        irreversible
    );
    let _ = writeln!(out, "{}", p.paint(DIM, "Legend: + mint  ~ write  - disable  x delete  ! irreversible  ? manual. `rekey plan` changes nothing."));
    out
}

/// The plan as pretty JSON (the stored form of a run's plan).
pub fn render_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("plans serialize") + "\n"
}

/// The plan as pretty JSON, streamed (a 10,000-credential plan is ~70 MB).
pub fn write_json(plan: &Plan, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    out.write_all(b"\n")
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT: one cluster per credential; irreversible steps red, manual steps dashed,
/// helper edges bold.
pub fn render_dot(plan: &Plan) -> String {
    let mut out = String::from(
        "digraph rekey_plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n",
    );
    for (ci, c) in plan.credentials.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{ci} {{\n    label=\"{} ({}, {})\";",
            dot_escape(&c.id),
            c.kind,
            c.strategy.as_str()
        );
        for &si in &c.steps {
            let s = &plan.steps[si as usize];
            let mut attrs = vec![format!(
                "label=\"{}\\n{}\"",
                dot_escape(&s.step),
                dot_escape(&s.action)
            )];
            if s.irreversible {
                attrs.push("color=red".into());
            }
            if s.effect == Effect::Human {
                attrs.push("style=dashed".into());
            }
            let _ = writeln!(out, "    n{si} [{}];", attrs.join(", "));
        }
        out.push_str("  }\n");
    }
    for e in &plan.edges {
        let style = match e.kind {
            crate::EdgeKind::Helper => " [style=bold, color=blue]",
            crate::EdgeKind::Phase | crate::EdgeKind::Needs | crate::EdgeKind::Readback => "",
        };
        let _ = writeln!(out, "  n{} -> n{}{style};", e.from, e.to);
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Mermaid flowchart, for Markdown reports.
pub fn render_mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for (ci, c) in plan.credentials.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph c{ci}[\"{} ({})\"]",
            mermaid_escape(&c.id),
            c.strategy.as_str()
        );
        for &si in &c.steps {
            let s = &plan.steps[si as usize];
            let label = format!(
                "{}<br/>{}",
                mermaid_escape(&s.step),
                mermaid_escape(&s.action)
            );
            let shape = if s.effect == Effect::Human {
                format!("n{si}[/\"{label}\"/]")
            } else {
                format!("n{si}[\"{label}\"]")
            };
            let _ = writeln!(out, "    {shape}");
        }
        out.push_str("  end\n");
    }
    for e in &plan.edges {
        let arrow = if e.kind == crate::EdgeKind::Helper {
            "==>"
        } else {
            "-->"
        };
        let _ = writeln!(out, "  n{} {arrow} n{}", e.from, e.to);
    }
    let irreversible: Vec<String> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.irreversible)
        .map(|(i, _)| format!("n{i}"))
        .collect();
    if !irreversible.is_empty() {
        out.push_str("  classDef irreversible stroke:#c00,stroke-width:2px\n");
        let _ = writeln!(out, "  class {} irreversible", irreversible.join(","));
    }
    out
}
