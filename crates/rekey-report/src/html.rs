//! The drill/incident report as one self-contained HTML file: embedded CSS, an inline SVG
//! timeline, no script and no external reference of any kind. It is attached to tickets,
//! opened offline years later and printed, so nothing in it may load, run or change.

use std::fmt::Write as _;

use crate::markdown::{
    Part, axis_end, clean, duration, has_time_to_safe, milestones, outcome_label, outcome_sentence,
    percent, phase_label, plural, seconds, segments, step_label, timeline_rows, title, wait,
};
use crate::model::{CredentialReport, Evidence, RunReport};
use crate::scorecard::Scorecard;

/// Rows the SVG draws at most: 500 rows are ~9,000 px tall already, and the file stays small
/// for any inventory (every credential is still in the tables).
const SVG_MAX: usize = 500;
const LABEL_W: f64 = 230.0;
const PLOT_W: f64 = 730.0;
const RIGHT_W: f64 = 40.0;
const LEGEND_H: f64 = 24.0;
const AXIS_H: f64 = 22.0;
const ROW_H: f64 = 18.0;
const BAR_H: f64 = 12.0;
/// Row labels are cut here (the full id is in the tooltip and the tables).
const LABEL_CHARS: usize = 34;

const STYLE: &str = r#"
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700}
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);max-width:1100px;margin:0 auto;padding:24px 32px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;border-bottom:1px solid var(--line);padding-bottom:4px;margin:32px 0 12px}
h3{font-size:16px;margin:24px 0 4px}
code,pre,.steps td:first-child,.steps td:nth-child(3){font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
code{background:var(--bg);padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 12px;white-space:pre-wrap;overflow-wrap:anywhere;margin:6px 0}
table{border-collapse:collapse;margin:8px 0 12px;width:100%}
table.num{width:auto;min-width:50%}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
th{background:var(--bg);font-weight:600}
.num td:not(:first-child),.ov td:nth-child(n+6),.steps td:nth-child(n+4):nth-child(-n+6){text-align:right;white-space:nowrap}
.banner{border:2px solid var(--warn);background:#fff8c5;padding:10px 14px;border-radius:6px;margin:12px 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.meta dt{color:var(--muted)}
dl.meta dd{margin:0}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:120px}
.card b{display:block;font-size:20px}
.card span{color:var(--muted);font-size:12px}
.o{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid;vertical-align:middle}
.o-ok{color:var(--ok)}
.o-bad{color:var(--bad)}
.o-wait{color:var(--warn)}
.o-none{color:var(--muted)}
.sub{color:var(--muted);margin:0 0 6px}
.bad{color:var(--bad);font-weight:600}
.fail{border-left:4px solid var(--bad);background:#ffebe9;padding:4px 12px;margin:8px 0}
.note{color:var(--muted)}
svg.tl{width:100%;height:auto;display:block;margin:8px 0}
svg.tl text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:var(--ink)}
svg.tl .tick{stroke:var(--line)}
svg.tl .band{fill:var(--bg)}
svg.tl text.lbad{fill:var(--bad);font-weight:600}
svg.tl text.x{fill:var(--bad);font-weight:700}
.ph-prepare{fill:#8c959f}.ph-revoke{fill:#bc4c00}.ph-mint{fill:#2da44e}.ph-deliver{fill:#0969da}
.ph-verify{fill:#8250df}.ph-cleanup{fill:#1b7c83}.ph-step{fill:#6e7781}.wait{fill:url(#hatch)}
rect.undone{fill-opacity:.4}
rect.failed{stroke:var(--bad);stroke-width:2}
rect.open{fill-opacity:.45;stroke:#57606a;stroke-dasharray:3 2}
@page{margin:14mm}
@media print{body{max-width:none;padding:0;font-size:11px}h2,h3{break-after:avoid}tr,pre,.fail,.card{break-inside:avoid}a{color:inherit;text-decoration:none}}
"#;

/// The report of `r` as one self-contained HTML document.
pub fn html(r: &RunReport) -> String {
    let mut out = String::with_capacity(16_384 + r.credentials.len() * 1_500);
    let sim = if r.run.simulated { " (SIMULATED)" } else { "" };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <title>{}{sim} — run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        title(&r.run.mode),
        esc(&r.run.id)
    );
    header(&mut out, r);
    summary(&mut out, r);
    time_to_safe(&mut out, r);
    timeline(&mut out, r);
    credentials(&mut out, r);
    evidence(&mut out, &r.evidence);
    if let Some(s) = &r.scorecard {
        scorecard(&mut out, s);
    }
    let _ = write!(
        out,
        "<footer class=\"note\"><p>Generated by rekey at {} from the state database and the \
         audit log.</p></footer>\n</body>\n</html>\n",
        r.generated_at
    );
    out
}

fn header(out: &mut String, r: &RunReport) {
    let run = &r.run;
    let sim = if run.simulated { " (SIMULATED)" } else { "" };
    let _ = writeln!(
        out,
        "<header>\n<h1>{}{sim} — run <code>{}</code></h1>",
        title(&run.mode),
        esc(&run.id)
    );
    if run.simulated {
        out.push_str(
            "<p class=\"banner\"><strong>⚠ SIMULATED RUN — a rehearsal against the simulated \
             provider: no real credential was changed.</strong> Times and outcomes show how a \
             real run would go.</p>\n",
        );
    }
    out.push_str("<dl class=\"meta\">");
    let mut item = |k: &str, v: &str| {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(v));
    };
    item("Mode", &run.mode);
    item("Status", &run.status);
    item("Started by", &run.actor);
    item("Created", &run.created_at);
    if let Some(reason) = &run.reason {
        item("Reason", reason);
    }
    if let Some(message) = &run.message {
        item("Result", message);
    }
    item("Report generated", &r.generated_at.to_string());
    out.push_str("</dl>\n</header>\n");
}

fn summary(out: &mut String, r: &RunReport) {
    let s = &r.summary;
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n");
    let mut card = |label: &str, value: &str| {
        let _ = writeln!(
            out,
            "<div class=\"card\"><b>{value}</b><span>{label}</span></div>"
        );
    };
    card("Credentials in the plan", &s.credentials.to_string());
    card("Rotated", &s.rotated.to_string());
    card("Failed (rolled back or stopped)", &s.failed.to_string());
    card("Needed a person", &s.needed_human.to_string());
    card("Skipped (not finished)", &s.skipped.to_string());
    card("Total time", &duration(s.total_ms));
    card("Waiting for people", &duration(s.human_ms));
    out.push_str("</div>\n");
    if let Some((id, ms)) = &s.longest {
        let _ = writeln!(
            out,
            "<p>Longest credential: <code>{}</code> ({}).</p>",
            esc(id),
            duration(*ms)
        );
    }
    out.push_str("</section>\n");
}

fn time_to_safe(out: &mut String, r: &RunReport) {
    if !has_time_to_safe(r) {
        return;
    }
    out.push_str(
        "<section id=\"time-to-safe\">\n<h2>Time to safe</h2>\n<p>From the run's first step.</p>\n\
         <table class=\"num\"><thead><tr><th>Milestone</th><th>After</th></tr></thead><tbody>\n",
    );
    for (label, s) in milestones(&r.time_to_safe, &r.run.mode) {
        let _ = writeln!(
            out,
            "<tr><td>{label}</td><td>{}</td></tr>",
            s.map_or("not reached".into(), seconds)
        );
    }
    out.push_str("</tbody></table>\n</section>\n");
}

fn timeline(out: &mut String, r: &RunReport) {
    out.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    let (rows, left_out) = timeline_rows(r, SVG_MAX);
    if rows.is_empty() {
        out.push_str("<p>No step started: there is no timeline.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p class=\"note\">One row per credential, one bar per step from its start to its end, \
         since the run's first step",
    );
    if let Some(t) = r.started_at {
        let _ = write!(out, " ({})", esc(&t.to_string()));
    }
    out.push_str(
        "; hover a bar for its details. A step's wait for a person is drawn hatched, at its \
         start (the log keeps how long, not when).</p>\n",
    );
    svg(out, r, &rows);
    let not_started = r
        .credentials
        .iter()
        .filter(|c| c.start_ms.is_none())
        .count();
    if left_out > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">The timeline shows {} of {} started credentials: those that did \
             not rotate first, then those that ended last. Every credential is listed below.</p>",
            rows.len(),
            rows.len() + left_out
        );
    }
    if not_started > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">{not_started} credential{} with no step started {} not drawn.</p>",
            plural(not_started),
            if not_started == 1 { "is" } else { "are" }
        );
    }
    out.push_str("</section>\n");
}

#[allow(clippy::cast_precision_loss)] // milliseconds and row counts, far below 2^52
fn svg(out: &mut String, r: &RunReport, rows: &[(usize, &CredentialReport)]) {
    let end = axis_end(r);
    let width = LABEL_W + PLOT_W + RIGHT_W;
    let top = LEGEND_H + AXIS_H;
    let plot_bottom = top + rows.len() as f64 * ROW_H;
    // A tall chart repeats the tick labels below its last row, where the reader is.
    let bottom_axis = rows.len() > 25;
    let height = plot_bottom + if bottom_axis { AXIS_H } else { 6.0 };
    let xpos = |ms: i64| LABEL_W + ms as f64 / end as f64 * PLOT_W;
    let _ = writeln!(
        out,
        "<svg class=\"tl\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"Timeline of run {}\">\n\
         <defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fff1c2\"/>\
         <rect width=\"2.5\" height=\"6\" fill=\"#bf8700\"/></pattern></defs>",
        esc(&r.run.id)
    );
    legend(out);
    // Bands first, so the gridlines and bars are drawn over them.
    for row in (1..rows.len()).step_by(2) {
        let _ = write!(
            out,
            "<rect class=\"band\" x=\"0\" y=\"{:.1}\" width=\"{width}\" height=\"{ROW_H}\"/>",
            top + row as f64 * ROW_H
        );
    }
    // The axis: ticks at a round interval, gridlines through every row.
    let step = tick_step(end);
    let mut tick = 0;
    while tick <= end {
        let tx = xpos(tick);
        let _ = writeln!(
            out,
            "<line class=\"tick\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{plot_bottom:.1}\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top - 4.0,
            top - 8.0,
            tick_label(tick)
        );
        if bottom_axis {
            let _ = writeln!(
                out,
                "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                plot_bottom + 14.0,
                tick_label(tick)
            );
        }
        tick += step;
    }
    for (row, (_, c)) in rows.iter().enumerate() {
        let row_y = top + row as f64 * ROW_H;
        let bad = matches!(
            c.outcome.as_str(),
            "rolled_back" | "needs_operator" | "undo_failed"
        );
        let _ = writeln!(
            out,
            "<text{} x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{} — {}</title>{}</text>",
            if bad { " class=\"lbad\"" } else { "" },
            LABEL_W - 8.0,
            row_y + ROW_H - 5.0,
            esc(&c.id),
            esc(outcome_label(&c.outcome)),
            esc(&cut(&c.id, LABEL_CHARS))
        );
        let by = row_y + (ROW_H - BAR_H) / 2.0;
        for s in &c.steps {
            let failed = s.state == "failed" || s.state == "undo_failed";
            let undone = s.state == "undone" || s.state == "undo_started";
            let phase = match s.phase.as_str() {
                p @ ("prepare" | "revoke" | "mint" | "deliver" | "verify" | "cleanup") => p,
                _ => "step",
            };
            for seg in segments(s, end) {
                let (x1, x2) = (xpos(seg.from), xpos(seg.to));
                let mut class = match seg.part {
                    Part::Wait => "wait".to_owned(),
                    Part::Work => format!("ph-{phase}"),
                };
                if undone {
                    class.push_str(" undone");
                }
                if failed && seg.part == Part::Work {
                    class.push_str(" failed");
                }
                if seg.open {
                    class.push_str(" open");
                }
                let what = match (seg.part, seg.open) {
                    (Part::Wait, false) => {
                        format!("waiting for a person {}", duration(seg.to - seg.from))
                    }
                    (Part::Wait, true) => "waiting for a person (not ended)".to_owned(),
                    (Part::Work, true) => format!("{}, not ended", esc(&s.call)),
                    (Part::Work, false) => {
                        format!("{}, {}", esc(&s.call), duration(seg.to - seg.from))
                    }
                };
                let _ = writeln!(
                    out,
                    "<rect class=\"{class}\" x=\"{x1:.1}\" y=\"{by:.1}\" width=\"{:.1}\" \
                     height=\"{BAR_H}\"><title>{} ({}): {what}; {}{}</title></rect>",
                    (x2 - x1).max(1.0),
                    esc(step_label(c, s)),
                    esc(&s.phase),
                    esc(&s.state),
                    s.error
                        .as_deref()
                        .map(|e| format!(" — {}", esc(&cut(e, 200))))
                        .unwrap_or_default(),
                );
            }
            if failed && let Some(e) = s.end_ms {
                let _ = writeln!(
                    out,
                    "<text class=\"x\" x=\"{:.1}\" y=\"{:.1}\">✕</text>",
                    xpos(e) + 2.0,
                    by + BAR_H - 2.0
                );
            }
        }
    }
    out.push_str("</svg>\n");
}

/// The legend across the SVG's top: every colour and mark a bar can have.
fn legend(out: &mut String) {
    let items: [(&str, &str); 10] = [
        ("ph-prepare", "prepare"),
        ("ph-revoke", "revoke"),
        ("ph-mint", "mint"),
        ("ph-deliver", "deliver"),
        ("ph-verify", "verify"),
        ("ph-cleanup", "cleanup"),
        ("wait", "waiting for a person"),
        ("ph-verify failed", "failed ✕"),
        ("ph-mint undone", "undone"),
        ("ph-step open", "not ended"),
    ];
    let mut lx = 0.0;
    out.push_str("<g class=\"legend\">");
    for (class, label) in items {
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"4\" width=\"14\" height=\"10\"/>\
             <text x=\"{:.1}\" y=\"13\">{label}</text>",
            lx + 1.0,
            lx + 19.0
        );
        #[allow(clippy::cast_precision_loss)] // short labels
        let w = 30.0 + label.chars().count() as f64 * 5.6;
        lx += w;
    }
    out.push_str("</g>\n");
}

/// A round tick interval giving at most 8 ticks over `end` milliseconds.
fn tick_step(end: i64) -> i64 {
    const STEPS: [i64; 24] = [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
    ];
    STEPS
        .into_iter()
        .find(|s| end / s <= 8)
        .unwrap_or_else(|| (end / 8 / 86_400_000 + 1) * 86_400_000)
}

/// A tick's label: as short as its interval allows (`500 ms`, `30 s`, `2m`, `1h 30m`).
fn tick_label(ms: i64) -> String {
    if ms == 0 {
        "0".to_owned()
    } else if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 && ms % 1_000 == 0 {
        format!("{} s", ms / 1_000)
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1_000, ms % 1_000 / 100)
    } else if ms < 3_600_000 && ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1_000)
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

fn credentials(out: &mut String, r: &RunReport) {
    out.push_str("<section id=\"credentials\">\n<h2>Credentials</h2>\n");
    if r.credentials.is_empty() {
        out.push_str("<p>The plan holds no credential.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<p class=\"note\">A step's duration is its own time, without its wait for a person \
         (shown apart).</p>\n",
    );
    out.push_str(
        "<table class=\"ov\"><thead><tr><th>Credential</th><th>Kind</th><th>Owner</th>\
         <th>Strategy</th><th>Outcome</th><th>Duration</th><th>Human wait</th></tr>\
         </thead><tbody>\n",
    );
    for (i, c) in r.credentials.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#c{i}\"><code>{}</code></a></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            esc(&c.kind),
            c.owner.as_deref().map_or("—".into(), esc),
            esc(&c.strategy),
            badge(&c.outcome),
            c.duration_ms.map_or("—".into(), duration),
            wait(c.human_ms),
        );
    }
    out.push_str("</tbody></table>\n");
    for (i, c) in r.credentials.iter().enumerate() {
        credential(out, i, c);
    }
    out.push_str("</section>\n");
}

fn badge(outcome: &str) -> String {
    let class = match outcome {
        "rotated" => "o-ok",
        "rolled_back" | "needs_operator" | "undo_failed" => "o-bad",
        "waiting" | "blocked" => "o-wait",
        _ => "o-none",
    };
    format!(
        "<span class=\"o {class}\">{}</span>",
        esc(outcome_label(outcome))
    )
}

fn credential(out: &mut String, i: usize, c: &CredentialReport) {
    let _ = write!(
        out,
        "<article id=\"c{i}\">\n<h3><code>{}</code> {}</h3>\n<p class=\"sub\">{} · {} · {}</p>\n<p>{}",
        esc(&c.id),
        badge(&c.outcome),
        esc(&c.kind),
        c.owner
            .as_deref()
            .map_or("no owner".into(), |o| format!("owner {}", esc(o))),
        esc(&c.strategy),
        esc(outcome_sentence(&c.outcome)),
    );
    if let Some(d) = c.duration_ms {
        let _ = write!(out, " Took {}", duration(d));
        if c.human_ms > 0 {
            let _ = write!(out, ", {} of it waiting for a person", duration(c.human_ms));
        }
        out.push('.');
    }
    out.push_str("</p>\n");
    if !c.steps.is_empty() {
        out.push_str(
            "<table class=\"steps\"><thead><tr><th>Step</th><th>Phase</th><th>Provider call</th>\
             <th>Duration</th><th>Human wait</th><th>Retries</th><th>State</th></tr>\
             </thead><tbody>\n",
        );
        for s in &c.steps {
            let bad = matches!(s.state.as_str(), "failed" | "undo_failed");
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>",
                esc(&s.id),
                esc(&phase_label(s)),
                esc(&s.call),
                s.work_ms.map_or("—".into(), duration),
                wait(s.human_ms),
                s.retries,
                if bad { " class=\"bad\"" } else { "" },
                esc(&s.state),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if c.delivered_to.is_empty() {
        out.push_str("<p><b>Delivered to:</b> no consumer.</p>\n");
    } else {
        out.push_str("<p><b>Delivered to:</b> ");
        code_list(out, &c.delivered_to);
        out.push_str(".</p>\n");
    }
    if let Some(f) = &c.fingerprint {
        let _ = writeln!(
            out,
            "<p><b>Fingerprint of the new value:</b> <code>{}</code></p>",
            esc(f)
        );
    }
    if let Some(f) = &c.failure {
        let _ = writeln!(
            out,
            "<div class=\"fail\"><p><b>Failed at</b> <code>{}</code></p><pre>{}</pre>\
             <p><b>What to do:</b> {}</p></div>",
            esc(&f.step),
            esc(f.error.trim_end()),
            rich(&f.next)
        );
    }
    let mut others = c
        .steps
        .iter()
        .filter(|s| s.error.is_some() && c.failure.as_ref().is_none_or(|f| f.step != s.id))
        .peekable();
    if others.peek().is_some() {
        out.push_str("<p><b>Errors:</b></p><ul>");
        for s in others {
            let _ = write!(
                out,
                "<li><code>{}</code>: <pre>{}</pre></li>",
                esc(&s.id),
                esc(s.error.as_deref().unwrap_or_default().trim_end())
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</article>\n");
}

fn evidence(out: &mut String, e: &Evidence) {
    let _ = write!(
        out,
        "<section id=\"evidence\">\n<h2>Evidence</h2>\n<dl class=\"meta\"><dt>Run</dt><dd><code>{}</code></dd>",
        esc(&e.run_id)
    );
    match (e.first_seq, e.last_seq) {
        (Some(a), Some(b)) => {
            let _ = write!(
                out,
                "<dt>Audit log rows</dt><dd>{a}–{b} ({} event{} of this run; rows of other runs \
                 may interleave)</dd>",
                e.events,
                plural(e.events)
            );
        }
        _ => out.push_str("<dt>Audit log rows</dt><dd>none recorded for this run</dd>"),
    }
    if let Some(h) = &e.chain_head {
        let _ = write!(out, "<dt>Chain head</dt><dd><code>{}</code></dd>", esc(h));
    }
    out.push_str("</dl>\n");
    if let Some(cmd) = &e.verify_command {
        let _ = writeln!(
            out,
            "<p>The audit log is hash-chained and keyed. Keep the chain head somewhere its \
             writers cannot reach (this report, a ticket); later, this proves that no row up to \
             it was changed, removed or inserted:</p>\n<pre>{}</pre>",
            esc(cmd)
        );
    }
    out.push_str("</section>\n");
}

fn scorecard(out: &mut String, s: &Scorecard) {
    let _ = writeln!(
        out,
        "<section id=\"scorecard\">\n<h2>Scorecard <span class=\"note\">(inventory as of {})</span></h2>\n\
         <dl class=\"meta\"><dt>Coverage</dt><dd>{} of {} credentials ({}) rotated within the \
         last {} days</dd>",
        s.today,
        s.rotated_recently,
        s.credentials,
        percent(s.rotated_share),
        crate::scorecard::RECENT_DAYS
    );
    out.push_str("<dt>Overdue</dt><dd>");
    code_list(out, &s.overdue);
    out.push_str(" <span class=\"note\">(past their policy's maximum age)</span></dd><dt>Never drilled</dt><dd>");
    code_list(out, &s.never_drilled);
    out.push_str(
        " <span class=\"note\">(never rotated by rekey, not even in a rehearsal)</span></dd>\
         <dt>Last drill failed</dt><dd>",
    );
    if s.last_drill_failed.is_empty() {
        out.push_str("none");
    } else {
        let _ = write!(
            out,
            "{} credential{}",
            s.last_drill_failed.len(),
            plural(s.last_drill_failed.len())
        );
    }
    out.push_str("</dd></dl>\n");
    if !s.last_drill_failed.is_empty() {
        out.push_str(
            "<table><thead><tr><th>Credential whose last drill failed</th><th>Run</th>\
             <th>Outcome</th></tr></thead><tbody>\n",
        );
        for (c, run, outcome) in &s.last_drill_failed {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                esc(c),
                esc(run),
                badge(outcome)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !s.kinds.is_empty() {
        out.push_str(
            "<h3>Rotation times per kind</h3>\n<table class=\"num\"><thead><tr><th>Kind</th>\
             <th>Credentials</th><th>Rotations</th><th>Median time</th><th>Needed a person</th>\
             <th>Median wait for a person</th></tr></thead><tbody>\n",
        );
        for k in &s.kinds {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&k.kind),
                k.credentials,
                k.rotations,
                k.median_ms.map_or("—".into(), duration),
                k.needed_human,
                k.median_human_ms.map_or("—".into(), duration),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if let (None, Some(note)) = (&s.time_to_safe, &s.time_to_safe_note) {
        let _ = writeln!(
            out,
            "<h3>Time to safe</h3>\n<p>Not estimated: {}</p>",
            esc(note)
        );
    }
    if let Some(t) = &s.time_to_safe {
        let _ = writeln!(
            out,
            "<h3>Time to safe, if every credential were exposed now</h3>\n<p>{}</p>\n\
             <table class=\"num\"><thead><tr><th>Milestone</th><th>Estimate</th></tr></thead><tbody>",
            esc(&t.summary)
        );
        for (label, v) in [
            ("Every exposed credential disabled", t.disabled_after_s),
            ("Every replacement verified", t.replaced_after_s),
            ("Cleanup finished", t.cleaned_after_s),
        ] {
            let _ = writeln!(
                out,
                "<tr><td>{label}</td><td>{}</td></tr>",
                v.map_or("—".into(), seconds)
            );
        }
        out.push_str("</tbody></table>\n");
        if let Some(p) = &t.long_pole {
            let _ = writeln!(
                out,
                "<p><b>Long pole:</b> <code>{}</code> ({}), done after {}: {}</p>",
                esc(&p.credential),
                esc(&p.kind),
                seconds(p.done_after_s),
                esc(&p.why)
            );
        }
        if !t.dominant.is_empty() {
            out.push_str(
                "<p>Credentials that finish last:</p>\n<table><thead><tr><th>Credential</th>\
                 <th>Kind</th><th>Done after</th><th>Why</th></tr></thead><tbody>\n",
            );
            for p in &t.dominant {
                let _ = writeln!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.credential),
                    esc(&p.kind),
                    seconds(p.done_after_s),
                    esc(&p.why)
                );
            }
            out.push_str("</tbody></table>\n");
        }
        let _ = writeln!(
            out,
            "<p class=\"note\">Estimated from {} action{} measured in past runs and {} with \
             default durations.</p>",
            t.measured_actions,
            plural(t.measured_actions),
            t.default_actions
        );
    }
    out.push_str("</section>\n");
}

fn code_list(out: &mut String, ids: &[String]) {
    if ids.is_empty() {
        out.push_str("none");
        return;
    }
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "<code>{}</code>", esc(id));
    }
}

/// Text from the store for HTML text and double- or single-quoted attributes, cleaned of
/// terminal controls first.
fn esc(s: &str) -> String {
    let s = clean(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text rekey wrote with commands in backticks (a failure's `next`): those become `<code>`.
fn rich(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return esc(s);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(p))
            } else {
                esc(p)
            }
        })
        .collect()
}

/// `s` cut to `n` characters, with `…` where it was cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut v: String = s.chars().take(n - 1).collect();
    v.push('…');
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self, EVIL, HEAD};

    /// `needle` never directly follows `attr` (whitespace and quotes aside).
    fn no_external(html: &str) {
        let lower = html.to_ascii_lowercase();
        for attr in ["src=", "href=", "url(", "xlink:href=", "@import", "srcset="] {
            for (i, _) in lower.match_indices(attr) {
                let rest = lower[i + attr.len()..].trim_start_matches([' ', '"', '\'']);
                assert!(
                    !rest.starts_with("http:")
                        && !rest.starts_with("https:")
                        && !rest.starts_with("//")
                        && !rest.starts_with("data:")
                        && !rest.starts_with("javascript:"),
                    "external reference after {attr}: {}",
                    &rest[..rest.len().min(60)]
                );
            }
        }
        assert!(!lower.contains("http://") && !lower.contains("https://"));
    }

    fn balanced(html: &str, tag: &str) {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}>");
    }

    #[test]
    fn the_report_is_self_contained_and_names_everything() {
        let r = fixture::report();
        let h = html(&r);
        assert!(h.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(h.ends_with("</html>\n"));
        no_external(&h);
        assert!(!h.to_ascii_lowercase().contains("<script"));
        for tag in [
            "html", "head", "body", "svg", "table", "tr", "td", "section", "article", "title",
            "pre", "code", "style",
        ] {
            balanced(&h, tag);
        }
        assert_eq!(h.matches("<svg").count(), 1);
        assert!(h.contains("SIMULATED RUN"));
        for c in &r.credentials {
            assert!(h.contains(&format!("<code>{}</code>", c.id)), "{}", c.id);
            for s in &c.steps {
                assert!(h.contains(&format!("<td>{}</td>", esc(&s.id))), "{}", s.id);
            }
        }
        assert!(h.contains(HEAD));
        assert!(h.contains(&format!("<pre>rekey audit verify --head {HEAD}</pre>")));
        for d in [
            "420 ms", "1.2 s", "4m 00s", "4m 14s", "30.0 s", "72.5 %", "22m 02s",
        ] {
            assert!(h.contains(d), "{d}");
        }
    }

    #[test]
    fn hostile_store_text_is_escaped() {
        let h = html(&fixture::report());
        assert!(!h.contains("<script"));
        assert!(!h.contains('\u{1b}') && !h.contains('\u{202e}'));
        assert!(h.contains(
            "<pre>password authentication failed for user &quot;billing_app&quot; | pg_hba.conf \
             &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\nhint: check `pg_hba.conf` &amp; \
             retry</pre>"
        ));
        assert_eq!(esc(EVIL).matches('<').count(), 0);
        assert_eq!(
            rich("fix, then `rekey resume <r>`"),
            "fix, then <code>rekey resume &lt;r&gt;</code>"
        );
    }

    #[test]
    fn the_timeline_draws_steps_waits_and_failures() {
        let h = html(&fixture::report());
        let svg = &h[h.find("<svg").unwrap()..h.find("</svg>").unwrap()];
        // Two started credentials, one never started (said below the chart).
        assert_eq!(svg.matches("text-anchor=\"end\"").count(), 2);
        assert!(h.contains("1 credential with no step started is not drawn."));
        // Seven + four bars, one of them split into its wait and its work, one tooltip each.
        assert_eq!(svg.matches("<rect class=\"ph-").count(), 9 + 11); // legend + bars
        assert_eq!(svg.matches("<rect class=\"wait\" x=").count(), 2); // legend + the wait
        assert!(svg.contains("update-ci[ci:acme/deploy] (deliver): waiting for a person 4m 00s"));
        assert!(svg.contains("class=\"ph-verify failed\""));
        assert!(svg.contains("class=\"ph-mint undone\""));
        assert!(svg.contains(">✕</text>"));
        assert!(svg.contains("class=\"lbad\""));
        // Ticks every minute over 4m 14s, labelled.
        for t in ["0", "1m", "2m", "4m"] {
            assert!(
                svg.contains(&format!("text-anchor=\"middle\">{t}</text>")),
                "{t}"
            );
        }
    }

    #[test]
    fn edge_cases() {
        // Nothing started: a sentence, no SVG.
        let mut r = fixture::report();
        for c in &mut r.credentials {
            for s in &mut c.steps {
                (s.start_ms, s.end_ms, s.work_ms) = (None, None, None);
            }
            (c.start_ms, c.end_ms, c.duration_ms) = (None, None, None);
        }
        r.summary.total_ms = 0;
        let h = html(&r);
        assert!(!h.contains("<svg"));
        assert!(h.contains("No step started: there is no timeline."));
        // A step still running: an open bar to the axis end.
        let mut r = fixture::report();
        r.credentials[1].steps[3].end_ms = None;
        r.credentials[1].steps[3].state = "started".into();
        let h = html(&r);
        assert!(h.contains("class=\"ph-verify open\""));
        assert!(h.contains("postgres: connect, not ended"));
        // No credential at all.
        r.credentials.clear();
        r.scorecard = None;
        let h = html(&r);
        assert!(h.contains("The plan holds no credential."));
        balanced(&h, "html");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(254_100), 30_000);
        assert_eq!(tick_step(3_600_000), 600_000);
        assert_eq!(tick_step(86_400_000 * 3), 86_400_000);
        assert_eq!(tick_label(1_500), "1.5 s");
        assert_eq!(tick_label(5_400_000), "1h 30m");
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    #[test]
    fn ten_thousand_credentials_stay_small() {
        let r = fixture::large(10_000);
        let h = html(&r);
        let md = crate::markdown(&r);
        println!(
            "10,000 credentials: HTML {:.1} MB, Markdown {:.1} MB",
            mb(h.len()),
            mb(md.len())
        );
        assert!(h.len() < 20 << 20, "HTML {} bytes", h.len());
        assert!(md.len() < 20 << 20, "Markdown {} bytes", md.len());
        let svg = &h[h.find("<svg").unwrap()..h.find("</svg>").unwrap()];
        println!("its SVG: {:.2} MB", mb(svg.len()));
        assert_eq!(svg.matches("text-anchor=\"end\"").count(), SVG_MAX);
        assert!(svg.len() < 2 << 20);
        assert!(h.contains("The timeline shows 500 of 10000 started credentials"));
        no_external(&h);
    }

    #[allow(clippy::cast_precision_loss)]
    fn mb(n: usize) -> f64 {
        n as f64 / 1_048_576.0
    }
}
