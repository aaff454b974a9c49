//! `rekey inventory list`.

use std::io::Write;

use anstyle::AnsiColor;
use serde::Serialize;

use crate::cli::{Global, InventoryArgs, InventoryCommand};
use crate::report::Failure;

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    kind: &'a str,
    owner: Option<&'a str>,
    legacy: bool,
    last_rotated: Option<String>,
    age_days: Option<i64>,
    max_age_days: Option<u32>,
    due: bool,
    used_by: &'a [String],
    present_on: &'a [String],
    rotate_with: Option<&'a str>,
    consumers: Vec<String>,
    /// The credential's most recent run, if rekey ever rotated it (or tried).
    last_run: Option<LastRun<'a>>,
}

#[derive(Serialize)]
struct LastRun<'a> {
    run: &'a str,
    mode: &'a str,
    simulated: bool,
    outcome: &'a str,
    finished_at: String,
}

pub(crate) fn run(global: &Global, args: &InventoryArgs) -> Result<(), Failure> {
    let InventoryCommand::List { json } = args.command;
    let mut inventory = super::load_inventory(global)?;
    let today = super::today(global);
    // What rekey rotated for real counts as the last rotation, without editing YAML.
    let history = super::state::history_if_any(global)?;
    rekey_report::scorecard::apply_history(&mut inventory, &history, false);
    let rows: Vec<Row<'_>> = inventory
        .credentials
        .iter()
        .map(|c| Row {
            id: &c.id,
            kind: c.kind.as_str(),
            owner: c.owner.as_deref(),
            legacy: c.kind.is_legacy(),
            last_rotated: c.last_rotated.map(|d| d.to_string()),
            age_days: c.age_days(today),
            max_age_days: c.policy.map(|p| p.max_age_days),
            due: c.is_due(today),
            used_by: &c.used_by,
            present_on: &c.present_on,
            rotate_with: c.rotate_with.as_deref(),
            consumers: c
                .delivered_to
                .iter()
                .map(rekey_spec::Consumer::label)
                .collect(),
            last_run: history
                .get(&c.id)
                .and_then(|h| h.last.as_ref())
                .map(|r| LastRun {
                    run: &r.run_id,
                    mode: &r.mode,
                    simulated: r.simulated,
                    outcome: &r.outcome,
                    finished_at: r.finished_at.to_string(),
                }),
        })
        .collect();
    let mut out = anstream::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    let w_id = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let w_kind = rows.iter().map(|r| r.kind.len()).max().unwrap_or(4).max(4);
    let w_owner = rows
        .iter()
        .map(|r| r.owner.map_or(1, str::len))
        .max()
        .unwrap_or(5)
        .max(5);
    let bold = anstyle::Style::new().bold();
    let _ = writeln!(
        out,
        "{bold}{:<w_id$}  {:<w_kind$}  {:<w_owner$}  {:>5}  {:<7}  EXPOSURE (present on){bold:#}",
        "ID", "KIND", "OWNER", "AGE", "DUE"
    );
    for r in &rows {
        let age = r
            .age_days
            .map_or_else(|| "-".to_owned(), |a| format!("{a}d"));
        let (due, style) = match (r.due, r.max_age_days) {
            (true, _) => ("due", AnsiColor::Red.on_default()),
            (false, Some(_)) => ("ok", AnsiColor::Green.on_default()),
            (false, None) => ("-", anstyle::Style::new()),
        };
        let legacy = if r.legacy { " (legacy)" } else { "" };
        let _ = writeln!(
            out,
            "{:<w_id$}  {:<w_kind$}  {:<w_owner$}  {:>5}  {style}{:<7}{style:#}  {}{legacy}",
            r.id,
            r.kind,
            r.owner.unwrap_or("-"),
            age,
            due,
            if r.present_on.is_empty() {
                "-".to_owned()
            } else {
                r.present_on.join(", ")
            },
        );
    }
    let due = rows.iter().filter(|r| r.due).count();
    let _ = writeln!(
        out,
        "\n{} credential(s), {due} due for rotation",
        rows.len()
    );
    Ok(())
}
