//! The drill/incident report as Markdown, for a security lead to file (a ticket, a wiki, a
//! repository): it must read as plain text and render on GitHub and GitLab, whose Mermaid
//! draws the timeline. Also the helpers the HTML report shares: durations, cleaning text from
//! the store, and the timeline's rows and bars.

use std::cmp::Reverse;
use std::fmt::Write as _;

use crate::model::{CredentialReport, Evidence, RunReport, StepReport, TimeToSafe};
use crate::scorecard::Scorecard;

/// Credentials the Mermaid gantt draws at most: renderers give up on charts much larger.
const GANTT_MAX: usize = 100;

/// The phases a plan knows; anything else is drawn as `step` (a label must not start with a
/// Mermaid keyword).
const PHASES: [&str; 6] = ["prepare", "revoke", "mint", "deliver", "verify", "cleanup"];

/// The report of `r` as GitHub-flavoured Markdown with a Mermaid gantt timeline.
pub fn markdown(r: &RunReport) -> String {
    let mut out = String::with_capacity(8_192 + r.credentials.len() * 1_200);
    header(&mut out, r);
    summary(&mut out, r);
    time_to_safe(&mut out, r);
    timeline(&mut out, r);
    credentials(&mut out, r);
    evidence(&mut out, &r.evidence);
    if let Some(s) = &r.scorecard {
        scorecard(&mut out, s);
    }
    out
}

fn header(out: &mut String, r: &RunReport) {
    let run = &r.run;
    let sim = if run.simulated { " (SIMULATED)" } else { "" };
    let _ = writeln!(
        out,
        "# {}{sim} — run {}\n",
        title(&run.mode),
        md_code(&run.id, false)
    );
    if run.simulated {
        out.push_str(
            "> **⚠ SIMULATED RUN — a rehearsal against the simulated provider: no real \
             credential was changed.** Times and outcomes show how a real run would go.\n\n",
        );
    }
    let _ = writeln!(out, "- **Mode:** {}", md_text(&run.mode));
    let _ = writeln!(out, "- **Status:** {}", md_text(&run.status));
    let _ = writeln!(out, "- **Started by:** {}", md_text(&run.actor));
    let _ = writeln!(out, "- **Created:** {}", md_text(&run.created_at));
    if let Some(reason) = &run.reason {
        let _ = writeln!(out, "- **Reason:** {}", md_text(reason));
    }
    if let Some(message) = &run.message {
        let _ = writeln!(out, "- **Result:** {}", md_text(message));
    }
    let _ = writeln!(out, "- **Report generated:** {}\n", r.generated_at);
}

/// `Drill report`, `Incident report`, or `Run report` for a mode this version does not know.
pub(crate) fn title(mode: &str) -> &'static str {
    match mode {
        "drill" => "Drill report",
        "incident" => "Incident report",
        _ => "Run report",
    }
}

fn summary(out: &mut String, r: &RunReport) {
    let s = &r.summary;
    out.push_str("## Summary\n\n| | |\n|---|---:|\n");
    let _ = writeln!(out, "| Credentials in the plan | {} |", s.credentials);
    let _ = writeln!(out, "| Rotated | {} |", s.rotated);
    let _ = writeln!(out, "| Failed (rolled back or stopped) | {} |", s.failed);
    let _ = writeln!(out, "| Needed a person | {} |", s.needed_human);
    let _ = writeln!(out, "| Skipped (not finished) | {} |", s.skipped);
    let _ = writeln!(out, "| Total time | {} |", duration(s.total_ms));
    let _ = writeln!(out, "| Waiting for people | {} |", duration(s.human_ms));
    if let Some((id, ms)) = &s.longest {
        let _ = writeln!(
            out,
            "| Longest credential | {} ({}) |",
            md_code(id, true),
            duration(*ms)
        );
    }
    out.push('\n');
}

/// The three milestones of [`TimeToSafe`] with their labels, for both renderers; `disabled`
/// only where it means something (an incident, or a run that revoked first).
pub(crate) fn milestones(t: &TimeToSafe, mode: &str) -> Vec<(&'static str, Option<f64>)> {
    let mut v = Vec::with_capacity(3);
    if mode == "incident" || t.disabled_after_s.is_some() {
        v.push((
            "Every exposed credential disabled or revoked",
            t.disabled_after_s,
        ));
    }
    v.push(("Every replacement verified", t.replaced_after_s));
    v.push(("Cleanup finished", t.cleaned_after_s));
    v
}

/// Whether the run's time-to-safe is worth a section: a figure was reached, or it is an
/// incident (where "not reached" is the news).
pub(crate) fn has_time_to_safe(r: &RunReport) -> bool {
    let t = &r.time_to_safe;
    r.run.mode == "incident"
        || t.disabled_after_s.is_some()
        || t.replaced_after_s.is_some()
        || t.cleaned_after_s.is_some()
}

fn time_to_safe(out: &mut String, r: &RunReport) {
    if !has_time_to_safe(r) {
        return;
    }
    out.push_str(
        "## Time to safe\n\nFrom the run's first step.\n\n| Milestone | After |\n|---|---:|\n",
    );
    for (label, s) in milestones(&r.time_to_safe, &r.run.mode) {
        let _ = writeln!(
            out,
            "| {label} | {} |",
            s.map_or("not reached".into(), seconds)
        );
    }
    out.push('\n');
}

fn timeline(out: &mut String, r: &RunReport) {
    out.push_str("## Timeline\n\n");
    let (rows, left_out) = timeline_rows(r, GANTT_MAX);
    if rows.is_empty() {
        out.push_str("No step started: there is no timeline.\n\n");
        return;
    }
    let end = axis_end(r);
    out.push_str(
        "One section per credential, one bar per step, in seconds since the run's first step",
    );
    if let Some(t) = r.started_at {
        let _ = write!(out, " ({t})");
    }
    out.push_str(
        ". Time waiting for a person is a bar of its own (`wait …`, highlighted); failed steps \
         are marked critical.\n\n",
    );
    // `%s` (seconds since the epoch, the epoch being the first step here) reads the same in
    // every time zone; `%H:%M` would be shifted by the reader's.
    let axis = if end < 10_000 { "%s.%L s" } else { "%s s" };
    let _ = writeln!(
        out,
        "```mermaid\ngantt\n    title {} {}\n    dateFormat x\n    axisFormat {axis}",
        title(&r.run.mode),
        mermaid_text(&r.run.id)
    );
    for (ci, c) in &rows {
        let _ = writeln!(out, "    section {}", mermaid_text(&c.id));
        for (si, s) in c.steps.iter().enumerate() {
            let label = mermaid_text(step_label(c, s));
            let phase = if PHASES.contains(&s.phase.as_str()) {
                s.phase.as_str()
            } else {
                "step"
            };
            for seg in segments(s, end) {
                let open = if seg.open { " (not ended)" } else { "" };
                let (name, tag, id) = match seg.part {
                    Part::Wait => (format!("wait {label}"), "active, ", "w"),
                    Part::Work if s.state == "failed" || s.state == "undo_failed" => {
                        (format!("{phase} {label} FAILED"), "crit, ", "")
                    }
                    Part::Work if s.state == "succeeded" => {
                        (format!("{phase} {label}"), "done, ", "")
                    }
                    Part::Work => (format!("{phase} {label}"), "", ""),
                };
                let _ = writeln!(
                    out,
                    "    {name}{open} :{tag}c{ci}s{si}{id}, {}, {}",
                    seg.from, seg.to
                );
            }
        }
    }
    out.push_str("```\n\n");
    let not_started = r
        .credentials
        .iter()
        .filter(|c| c.start_ms.is_none())
        .count();
    if left_out > 0 {
        let _ = writeln!(
            out,
            "> The timeline shows {} of {} started credentials: those that did not rotate \
             first, then those that ended last. Every credential is listed below.\n",
            rows.len(),
            rows.len() + left_out
        );
    }
    if not_started > 0 {
        let _ = writeln!(
            out,
            "{not_started} credential{} with no step started {} not drawn.\n",
            plural(not_started),
            if not_started == 1 { "is" } else { "are" }
        );
    }
}

fn credentials(out: &mut String, r: &RunReport) {
    out.push_str("## Credentials\n\n");
    if r.credentials.is_empty() {
        out.push_str("The plan holds no credential.\n\n");
        return;
    }
    out.push_str(
        "A step's duration is its own time, without its wait for a person (shown apart).\n\n",
    );
    out.push_str(
        "| Credential | Kind | Owner | Strategy | Outcome | Duration | Human wait |\n\
         |---|---|---|---|---|---:|---:|\n",
    );
    for c in &r.credentials {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_code(&c.id, true),
            md_text(&c.kind),
            c.owner.as_deref().map_or("—".into(), md_text),
            md_text(&c.strategy),
            md_text(outcome_label(&c.outcome)),
            c.duration_ms.map_or("—".into(), duration),
            wait(c.human_ms),
        );
    }
    out.push('\n');
    for c in &r.credentials {
        credential(out, c);
    }
}

fn credential(out: &mut String, c: &CredentialReport) {
    let _ = writeln!(
        out,
        "### {} — {}\n",
        md_code(&c.id, false),
        md_text(outcome_label(&c.outcome))
    );
    let _ = write!(
        out,
        "- **Kind:** {}\n- **Owner:** {}\n- **Strategy:** {}\n- **Outcome:** {}",
        md_text(&c.kind),
        c.owner.as_deref().map_or("—".into(), md_text),
        md_text(&c.strategy),
        md_text(outcome_sentence(&c.outcome)),
    );
    if let Some(d) = c.duration_ms {
        let _ = write!(out, " Took {}", duration(d));
        if c.human_ms > 0 {
            let _ = write!(out, ", {} of it waiting for a person", duration(c.human_ms));
        }
        out.push('.');
    }
    out.push_str("\n\n");
    if !c.steps.is_empty() {
        out.push_str(
            "| Step | Phase | Provider call | Duration | Human wait | Retries | State |\n\
             |---|---|---|---:|---:|---:|---|\n",
        );
        for s in &c.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_code(&s.id, true),
                md_text(&phase_label(s)),
                md_code(&s.call, true),
                s.work_ms.map_or("—".into(), duration),
                wait(s.human_ms),
                s.retries,
                md_text(&s.state),
            );
        }
        out.push('\n');
    }
    if c.delivered_to.is_empty() {
        out.push_str("**Delivered to:** no consumer.\n\n");
    } else {
        let list: Vec<String> = c.delivered_to.iter().map(|d| md_code(d, false)).collect();
        let _ = writeln!(out, "**Delivered to:** {}.\n", list.join(", "));
    }
    if let Some(f) = &c.fingerprint {
        let _ = writeln!(
            out,
            "**Fingerprint of the new value:** {}\n",
            md_code(f, false)
        );
    }
    if let Some(f) = &c.failure {
        let _ = writeln!(out, "**Failed at** {}:\n", md_code(&f.step, false));
        out.push_str(&md_fence("text", &f.error));
        let _ = writeln!(out, "**What to do:** {}\n", md_rich(&f.next));
    }
    // Errors of other steps (a rolled-back credential's failed step may be `undone`, with no
    // failure of its own).
    let others: Vec<&StepReport> = c
        .steps
        .iter()
        .filter(|s| s.error.is_some() && c.failure.as_ref().is_none_or(|f| f.step != s.id))
        .collect();
    if !others.is_empty() {
        out.push_str("**Errors:**\n\n");
        for s in others {
            let _ = writeln!(
                out,
                "- {}: {}",
                md_code(&s.id, false),
                md_text(s.error.as_deref().unwrap_or_default())
            );
        }
        out.push('\n');
    }
}

fn evidence(out: &mut String, e: &Evidence) {
    out.push_str("## Evidence\n\n");
    let _ = writeln!(out, "- **Run:** {}", md_code(&e.run_id, false));
    match (e.first_seq, e.last_seq) {
        (Some(a), Some(b)) => {
            let _ = writeln!(
                out,
                "- **Audit log rows:** {a}–{b} ({} event{} of this run; rows of other runs may \
                 interleave)",
                e.events,
                plural(e.events)
            );
        }
        _ => out.push_str("- **Audit log rows:** none recorded for this run\n"),
    }
    if let Some(h) = &e.chain_head {
        let _ = writeln!(out, "- **Chain head:** {}", md_code(h, false));
    }
    out.push('\n');
    if let Some(cmd) = &e.verify_command {
        out.push_str(
            "The audit log is hash-chained and keyed. Keep the chain head somewhere its writers \
             cannot reach (this report, a ticket); later, this proves that no row up to it was \
             changed, removed or inserted:\n\n",
        );
        out.push_str(&md_fence("sh", cmd));
    }
}

fn scorecard(out: &mut String, s: &Scorecard) {
    let _ = writeln!(out, "## Scorecard (inventory as of {})\n", s.today);
    let _ = writeln!(
        out,
        "- **Coverage:** {} of {} credentials ({}) rotated within the last {} days.",
        s.rotated_recently,
        s.credentials,
        percent(s.rotated_share),
        crate::scorecard::RECENT_DAYS
    );
    let _ = writeln!(
        out,
        "- **Overdue** (past their policy's maximum age): {}",
        md_list(&s.overdue)
    );
    let _ = writeln!(
        out,
        "- **Never drilled** (never rotated by rekey, not even in a rehearsal): {}",
        md_list(&s.never_drilled)
    );
    if s.last_drill_failed.is_empty() {
        out.push_str("- **Last drill failed:** none.\n\n");
    } else {
        out.push_str("- **Last drill failed:**\n\n| Credential | Run | Outcome |\n|---|---|---|\n");
        for (c, run, outcome) in &s.last_drill_failed {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                md_code(c, true),
                md_code(run, true),
                md_text(outcome_label(outcome))
            );
        }
        out.push('\n');
    }
    if !s.kinds.is_empty() {
        out.push_str(
            "### Rotation times per kind\n\n\
             | Kind | Credentials | Rotations | Median time | Needed a person | Median wait for a person |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for k in &s.kinds {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md_text(&k.kind),
                k.credentials,
                k.rotations,
                k.median_ms.map_or("—".into(), duration),
                k.needed_human,
                k.median_human_ms.map_or("—".into(), duration),
            );
        }
        out.push('\n');
    }
    let Some(t) = &s.time_to_safe else {
        if let Some(note) = &s.time_to_safe_note {
            let _ = writeln!(
                out,
                "### Time to safe

Not estimated: {}
",
                md_text(note)
            );
        }
        return;
    };
    let _ = writeln!(
        out,
        "### Time to safe, if every credential were exposed now\n\n**Estimate:** {}\n\n\
         | Milestone | Estimate |\n|---|---:|",
        md_text(&t.summary)
    );
    for (label, v) in [
        ("Every exposed credential disabled", t.disabled_after_s),
        ("Every replacement verified", t.replaced_after_s),
        ("Cleanup finished", t.cleaned_after_s),
    ] {
        let _ = writeln!(out, "| {label} | {} |", v.map_or("—".into(), seconds));
    }
    out.push('\n');
    if let Some(p) = &t.long_pole {
        let _ = writeln!(
            out,
            "**Long pole:** {} ({}), done after {}: {}\n",
            md_code(&p.credential, false),
            md_text(&p.kind),
            seconds(p.done_after_s),
            md_text(&p.why)
        );
    }
    if !t.dominant.is_empty() {
        out.push_str(
            "Credentials that finish last:\n\n| Credential | Kind | Done after | Why |\n\
             |---|---|---:|---|\n",
        );
        for p in &t.dominant {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md_code(&p.credential, true),
                md_text(&p.kind),
                seconds(p.done_after_s),
                md_text(&p.why)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Estimated from {} action{} measured in past runs and {} with default durations.\n",
        t.measured_actions,
        plural(t.measured_actions),
        t.default_actions
    );
}

fn md_list(ids: &[String]) -> String {
    if ids.is_empty() {
        return "none.".to_owned();
    }
    let v: Vec<String> = ids.iter().map(|i| md_code(i, false)).collect();
    v.join(", ")
}

// ---- shared with the HTML report ----

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A share in 0..=1 as `72.5 %`.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// `850 ms`, `12.3 s`, `4m 05s`, `1h 02m`, `2d 03h`: precise where it is short, readable where
/// it is long.
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1_000, ms % 1_000 / 100)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1_000)
    } else if ms < 86_400_000 {
        format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    } else {
        format!("{}d {:02}h", ms / 86_400_000, ms % 86_400_000 / 3_600_000)
    }
}

/// A wait for a person, `—` when there was none (most steps: the column stays quiet).
pub(crate) fn wait(ms: i64) -> String {
    if ms > 0 {
        duration(ms)
    } else {
        "—".to_owned()
    }
}

/// [`duration`] of a figure in seconds.
pub(crate) fn seconds(s: f64) -> String {
    #[allow(clippy::cast_possible_truncation)] // seconds of a run, far below 2^53
    duration((s * 1_000.0).round() as i64)
}

/// A credential's outcome for a table.
pub(crate) fn outcome_label(outcome: &str) -> &str {
    match outcome {
        "rotated" => "rotated",
        "rolled_back" => "rolled back",
        "needs_operator" => "needs an operator",
        "undo_failed" => "undo failed",
        "waiting" => "waiting for a person",
        "blocked" => "blocked",
        "not_started" => "not started",
        other => other,
    }
}

/// A credential's outcome as a sentence: what it means for the reader.
pub(crate) fn outcome_sentence(outcome: &str) -> &str {
    match outcome {
        "rotated" => "Rotated: the new value is delivered and verified.",
        "rolled_back" => {
            "Rolled back: a step failed before the point of no return and what \
                          was done was undone; the old value is still the live one."
        }
        "needs_operator" => "Stopped past the point of no return: an operator must finish it.",
        "undo_failed" => "An undo failed: the provider may hold a half-done rotation.",
        "waiting" => "Waiting for a person.",
        "blocked" => "Blocked by a credential it waits for.",
        "not_started" => "Not started.",
        other => other,
    }
}

/// Text from the store without terminal control sequences (an error text could carry a
/// screen clear or an OSC 8 link for whoever `cat`s the report) or bidi overrides (which
/// reorder what a reader sees); keeps `\n` and `\t`.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameter and intermediate bytes, then one final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if !(' '..='?').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, APC, PM, SOS: up to BEL or the string terminator.
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || c == '\u{9c}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {} // a two-character escape
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if !(' '..='?').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn word(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

/// Free text from the store for Markdown, in a table cell or a sentence: no markup and no
/// HTML gets through (every character that could start either is backslash-escaped), lines
/// joined by `<br>`.
pub(crate) fn md_text(s: &str) -> String {
    let s = clean(s);
    let mut out = String::with_capacity(s.len() + 8);
    for (i, line) in s.trim_end_matches('\n').split('\n').enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        let mut chars = line.chars().peekable();
        let mut prev = None;
        while let Some(c) = chars.next() {
            match c {
                '\t' => out.push(' '),
                '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '$' => {
                    out.push('\\');
                    out.push(c);
                }
                // An underscore inside a word never starts or ends emphasis (`aws_iam_key`
                // stays readable as plain text).
                '_' if word(prev) && chars.peek().is_some_and(|n| word(Some(*n))) => out.push(c),
                '_' => out.push_str("\\_"),
                c => out.push(c),
            }
            prev = Some(c);
        }
    }
    out
}

/// An identifier, call or command as a code span, on one line. In a table a pipe would end
/// the cell even inside the span, so there it is `\|` (which GFM shows as `|`).
pub(crate) fn md_code(s: &str, in_table: bool) -> String {
    let mut s = clean(s).replace(['\n', '\t'], " ");
    if in_table {
        s = s.replace('|', "\\|");
    }
    if s.trim().is_empty() {
        return "(empty)".to_owned();
    }
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced block, longer than any backtick run inside, so nothing in `s` can close it.
fn md_fence(lang: &str, s: &str) -> String {
    let s = clean(s);
    let fence = "`".repeat(longest_run(&s, '`').max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n\n", s.trim_end())
}

/// Text rekey wrote with commands in backticks (a failure's `next`, which names ids from the
/// store): each part escaped as what it is. Unbalanced backticks: all plain text.
fn md_rich(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return md_text(s);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                md_code(p, false)
            } else {
                md_text(p)
            }
        })
        .collect()
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text for a Mermaid gantt title, section or task name: its lexer ends a name at `:`, `;`
/// or `#` and takes `%` for a comment, so only a safe set of characters is kept.
/// A step's phase, marked when the step is a point of no return.
pub(crate) fn phase_label(s: &crate::StepReport) -> String {
    if s.irreversible {
        format!("{} (irreversible)", s.phase)
    } else {
        s.phase.clone()
    }
}

fn mermaid_text(s: &str) -> String {
    let s: String = clean(s)
        .chars()
        .take(80)
        .map(|c| {
            if c.is_alphanumeric() || " -_./()[]@+=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.trim().is_empty() {
        "_".to_owned()
    } else {
        s
    }
}

/// A step's name on its credential's row: its id without the `credential/` prefix.
pub(crate) fn step_label<'a>(c: &CredentialReport, s: &'a StepReport) -> &'a str {
    s.id.strip_prefix(c.id.as_str())
        .and_then(|x| x.strip_prefix('/'))
        .unwrap_or(&s.id)
}

/// The credentials a timeline draws, with their index in the report, in plan order; and how
/// many started ones it leaves out. At most `cap`: first those that did not rotate (what a
/// reader looks for), then those that ended last (they make the run's length).
pub(crate) fn timeline_rows(r: &RunReport, cap: usize) -> (Vec<(usize, &CredentialReport)>, usize) {
    let mut started: Vec<(usize, &CredentialReport)> = r
        .credentials
        .iter()
        .enumerate()
        .filter(|(_, c)| c.steps.iter().any(|s| s.start_ms.is_some()))
        .collect();
    if started.len() <= cap {
        return (started, 0);
    }
    let total = started.len();
    started.sort_by_key(|(i, c)| {
        (
            c.outcome == "rotated",
            Reverse(c.end_ms.or(c.start_ms).unwrap_or(0)),
            *i,
        )
    });
    started.truncate(cap);
    started.sort_unstable_by_key(|(i, _)| *i);
    (started, total - cap)
}

/// The end of the time axis: the run's last event, or its latest step time if later.
pub(crate) fn axis_end(r: &RunReport) -> i64 {
    let steps = r.credentials.iter().flat_map(|c| &c.steps);
    let latest = steps
        .flat_map(|s| [s.end_ms, s.start_ms.map(|a| a + s.human_ms.max(0))])
        .flatten()
        .max()
        .unwrap_or(0);
    latest.max(r.summary.total_ms).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Waiting for a person.
    Wait,
    /// The step's own work (provider calls, retries).
    Work,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) part: Part,
    pub(crate) from: i64,
    pub(crate) to: i64,
    /// The step has not ended: the bar runs to the axis end.
    pub(crate) open: bool,
}

/// A step's bars on the timeline (none if it never started). The model keeps a step's total
/// wait for a person, not when it happened, so the wait is drawn first: a manual step waits
/// before it is done, and a provider's question (an OTP) comes after a short first call.
pub(crate) fn segments(s: &StepReport, axis_end: i64) -> Vec<Segment> {
    let Some(start) = s.start_ms else {
        return Vec::new();
    };
    let mut v = Vec::with_capacity(2);
    let (end, open) = match s.end_ms {
        Some(e) => (e.max(start), false),
        None => (axis_end.max(start), true),
    };
    let wait_end = (start + s.human_ms.max(0)).min(end);
    if wait_end > start {
        v.push(Segment {
            part: Part::Wait,
            from: start,
            to: wait_end,
            open: false,
        });
    }
    if end > wait_end || v.is_empty() {
        let part = if open && s.state == "waiting_for_operator" {
            Part::Wait
        } else {
            Part::Work
        };
        v.push(Segment {
            part,
            from: wait_end,
            to: end,
            open,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self, HEAD, RUN};

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(59_999), "59.9 s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_720_000), "1h 02m");
        assert_eq!(duration(183_600_000), "2d 03h");
        assert_eq!(duration(-5), "0 ms");
        assert_eq!(seconds(252.3), "4m 12s");
    }

    #[test]
    fn control_sequences_and_bidi_are_stripped() {
        assert_eq!(
            clean(
                "a\u{1b}[31;1mred\u{1b}[0m b\u{1b}]8;;x\u{7}link\u{1b}]8;;\u{1b}\\ c\r\n\u{202e}d\u{0}"
            ),
            "ared blink c\nd"
        );
        assert_eq!(clean("\u{9b}2Jx\u{1b}cy"), "xy");
    }

    #[test]
    fn markdown_escapes_store_text() {
        assert_eq!(
            md_text("a|b <i>`c`</i>\nd_e _f_"),
            "a\\|b \\<i\\>\\`c\\`\\</i\\><br>d_e \\_f\\_"
        );
        assert_eq!(md_code("a|b", true), "`a\\|b`");
        assert_eq!(md_code("a|b", false), "`a|b`");
        assert_eq!(md_code("x`y", false), "``x`y``");
        assert_eq!(md_code("`x", false), "`` `x ``");
        assert_eq!(
            md_fence("text", "a\n```\nb"),
            "````text\na\n```\nb\n````\n\n"
        );
        assert_eq!(
            md_rich("fix it, then `rekey resume r|1`"),
            "fix it, then `rekey resume r|1`"
        );
        assert_eq!(md_rich("odd ` tick"), "odd \\` tick");
        assert_eq!(mermaid_text("a:b#c;d%e\nf"), "a_b_c_d_e_f");
    }

    #[test]
    fn the_report_names_everything_it_is_evidence_of() {
        let r = fixture::report();
        let md = markdown(&r);
        assert!(md.starts_with("# Drill report (SIMULATED) — run `run-20250301-7f3a`"));
        assert!(md.contains("SIMULATED RUN"));
        for c in &r.credentials {
            assert!(md.contains(&format!("`{}`", c.id)), "{}", c.id);
            for s in &c.steps {
                assert!(md.contains(&format!("`{}`", s.id)), "{}", s.id);
            }
        }
        assert!(md.contains(HEAD));
        assert!(md.contains(&format!("```sh\nrekey audit verify --head {HEAD}\n```")));
        assert!(md.contains(RUN));
        for d in [
            "420 ms", "1.2 s", "4m 00s", "4m 14s", "30.0 s", "72.5 %", "22m 02s",
        ] {
            assert!(md.contains(d), "{d}");
        }
    }

    #[test]
    fn the_gantt_has_a_section_per_started_credential() {
        let md = markdown(&fixture::report());
        let block = md
            .split("```mermaid\n")
            .nth(1)
            .and_then(|b| b.split("\n```").next())
            .expect("a mermaid block");
        assert!(block.starts_with("gantt\n"));
        assert!(block.contains("dateFormat x"));
        let sections: Vec<&str> = block
            .lines()
            .filter_map(|l| l.trim().strip_prefix("section "))
            .collect();
        assert_eq!(sections, ["aws-prod-deploy", "pg-billing-app"]);
        // The manual step's wait is a bar of its own, and the failure is marked.
        assert!(block.contains("wait update-ci[ci_acme/deploy] :active, c0s3w, 2900, 242900"));
        assert!(block.contains("deliver update-ci[ci_acme/deploy] :done, c0s3, 242900, 247900"));
        assert!(block.contains("verify verify FAILED :crit, c1s3, 2000, 32000"));
        // Nothing in a task line can end its name early or start a comment.
        for line in block.lines().skip(4) {
            let name = line.split(" :").next().unwrap();
            assert!(!name.contains([':', '#', ';', '%']), "{line}");
        }
    }

    #[test]
    fn hostile_store_text_stays_text() {
        let md = markdown(&fixture::report());
        assert!(!md.contains('\u{1b}'));
        assert!(!md.contains('\u{202e}'));
        // The error is a fenced block, kept whole (a code block shows markup as text) …
        assert!(md.contains(
            "```text\npassword authentication failed for user \"billing_app\" | pg_hba.conf \
             <script>alert('x')</script>\nhint: check `pg_hba.conf` & retry\n```"
        ));
        assert_eq!(md.matches("<script").count(), 1);
        // … and no table row gains a cell: each has as many unescaped pipes as its header.
        for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
            let cells = |l: &str| l.replace("\\|", "").matches('|').count();
            let mut lines = table.lines();
            let width = cells(lines.next().unwrap());
            for l in lines {
                assert_eq!(cells(l), width, "{l}");
            }
        }
    }

    #[test]
    fn a_run_that_never_started_has_no_gantt() {
        let mut r = fixture::report();
        for c in &mut r.credentials {
            for s in &mut c.steps {
                s.start_ms = None;
                s.end_ms = None;
            }
            c.start_ms = None;
        }
        let md = markdown(&r);
        assert!(!md.contains("```mermaid"));
        assert!(md.contains("No step started: there is no timeline."));
    }

    #[test]
    fn open_steps_and_paused_waits_run_to_the_axis_end() {
        let mut r = fixture::report();
        let s = &mut r.credentials[1].steps[3];
        s.end_ms = None;
        s.state = "waiting_for_operator".into();
        let end = axis_end(&r);
        assert_eq!(
            segments(&r.credentials[1].steps[3], end),
            [Segment {
                part: Part::Wait,
                from: 2_000,
                to: 254_100,
                open: true
            }]
        );
        assert!(markdown(&r).contains("wait verify (not ended) :active, c1s3w, 2000, 254100"));
    }

    #[test]
    fn a_large_gantt_is_capped() {
        let r = fixture::large(1_000);
        let (rows, left_out) = timeline_rows(&r, GANTT_MAX);
        assert_eq!((rows.len(), left_out), (GANTT_MAX, 900));
        // The 20 rolled back credentials come first.
        assert_eq!(
            rows.iter().filter(|(_, c)| c.outcome != "rotated").count(),
            20
        );
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        let md = markdown(&r);
        assert_eq!(md.matches("\n    section ").count(), GANTT_MAX);
        assert!(md.contains("shows 100 of 1000 started credentials"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("report_markdown", markdown(&fixture::report()));
    }
}
