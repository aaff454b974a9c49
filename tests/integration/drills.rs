//! `rekey drill`, `rekey report` and `rekey scorecard` (issue 13): due selection against the
//! recorded history, the reports as evidence, and rehearsals never counting as real rotations.

use std::collections::BTreeSet;
use std::sync::Arc;

use rekey_spec::SourceFile;
use serde_json::Value;

use crate::harness::{Ran, Workspace};

use crate::retries::gen_inventory;

const TODAY: &str = "2026-11-23";
const ENV: &[(&str, &str)] = &[("REKEY_TODAY", TODAY)];

/// A workspace with a generated inventory of `n` credentials, and the ids due today.
fn generated(n: usize, seed: u64) -> (Workspace, BTreeSet<String>) {
    let ws = Workspace::empty();
    let files = gen_inventory::generate(n, seed);
    let dir = ws.path().join("inventory");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let sources: Vec<Arc<SourceFile>> = files
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(name.clone(), text.as_str())))
        .collect();
    let inv = rekey_spec::parse_inventory(&sources).unwrap();
    let today: jiff::civil::Date = TODAY.parse().unwrap();
    let due = inv
        .credentials
        .iter()
        .filter(|c| c.is_due(today))
        .map(|c| c.id.clone())
        .collect();
    (ws, due)
}

fn json(r: &Ran, what: &str) -> Value {
    r.ok(what);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{what}: {e}\n{}", r.stdout))
}

/// The credentials of the run `id`, from its report.
fn report_json(ws: &Workspace, id: &str) -> Value {
    json(
        &ws.rekey(&["report", id, "--format", "json"], ENV),
        "report --format json",
    )
}

fn credentials(report: &Value) -> BTreeSet<String> {
    report["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_simulated_due_drill_rotates_exactly_the_due_credentials_and_writes_evidence() {
    let (ws, due) = generated(60, 11);
    assert!(
        due.len() > 5 && due.len() < 60,
        "{} due: a useless fixture",
        due.len()
    );

    let r = ws.rekey(
        &[
            "drill",
            "--due",
            "--simulate",
            "--yes",
            "--report",
            "drill.md",
        ],
        ENV,
    );
    r.ok("drill --due");
    assert!(r.stderr.contains("report: drill.md"), "{}", r.stderr);
    let run = ws.run_ids(ENV).remove(0);
    let report = report_json(&ws, &run);
    assert_eq!(
        credentials(&report),
        due,
        "the drill rotated other than the due set"
    );
    assert_eq!(report["summary"]["rotated"], due.len());
    assert_eq!(report["run"]["simulated"], true);
    let reason = report["run"]["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("drill-{TODAY}-")), "{reason}");

    // A second drill finds nothing due: the history counts for rehearsals.
    let again = ws.rekey(&["drill", "--due", "--simulate", "--yes"], ENV);
    again.ok("second drill --due");
    assert!(again.stdout.contains("nothing is due"), "{}", again.stdout);
    assert_eq!(ws.run_ids(ENV).len(), 1, "the second drill started a run");

    // …but never makes a real credential look rotated: the list still shows them due.
    let list = json(
        &ws.rekey(&["inventory", "list", "--json"], ENV),
        "inventory list",
    );
    let still_due: BTreeSet<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["due"] == true)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(still_due, due, "a rehearsal changed what is due for real");

    // The Markdown report: every credential, its steps and durations, and the chain head.
    let md = std::fs::read_to_string(ws.path().join("drill.md")).unwrap();
    let head = report["evidence"]["chain_head"].as_str().unwrap();
    assert!(md.contains(head), "the report lacks the chain head");
    assert!(md.contains("```mermaid"), "no timeline");
    for c in report["credentials"].as_array().unwrap() {
        assert!(md.contains(c["id"].as_str().unwrap()));
        for s in c["steps"].as_array().unwrap() {
            assert!(s["work_ms"].is_i64(), "{s}: no duration");
            assert!(md.contains(s["step"].as_str().unwrap()), "{s} missing");
        }
    }
    // An auditor's check later: the head the report names verifies.
    let verify = ws.rekey(&["audit", "verify", "--head", head], ENV);
    verify.ok("audit verify --head");

    // The HTML report of the same run, later: self-contained.
    let html = ws.rekey(&["report", &run, "--output", "drill.html"], ENV);
    html.ok("report --output drill.html");
    let html = std::fs::read_to_string(ws.path().join("drill.html")).unwrap();
    assert!(html.contains("<svg"), "no timeline picture");
    assert!(html.contains(head));
    for c in &due {
        assert!(html.contains(c.as_str()), "{c} missing from the HTML");
    }
    let lower = html.to_ascii_lowercase();
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "src='http",
        "href='http",
        "@import",
        "<script",
    ] {
        assert!(
            !lower.contains(external),
            "the HTML references something outside: {external}"
        );
    }
}

#[test]
fn a_sample_is_repeatable_by_seed_and_covers_every_kind() {
    let (ws, _) = generated(80, 5);
    let other = Workspace::empty();
    copy(&ws, &other);
    let mut picks = Vec::new();
    for w in [&ws, &other] {
        let r = w.rekey(
            &[
                "drill",
                "--sample",
                "12",
                "--seed",
                "9",
                "--simulate",
                "--yes",
            ],
            ENV,
        );
        r.ok("drill --sample");
        assert!(r.stderr.contains("repeat with --seed 9"), "{}", r.stderr);
        let run = w.run_ids(ENV).remove(0);
        picks.push(report_json(w, &run));
    }
    assert_eq!(
        credentials(&picks[0]),
        credentials(&picks[1]),
        "same seed, other sample"
    );
    assert_eq!(credentials(&picks[0]).len(), 12);
    let kinds: BTreeSet<&str> = picks[0]["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.len(),
        11,
        "a sample of 12 leaves a kind out: {kinds:?}"
    );

    // The scorecard knows what was drilled, and that nothing was rotated for real.
    let card = json(&ws.rekey(&["scorecard", "--json"], ENV), "scorecard --json");
    let never: BTreeSet<String> = card["never_drilled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for c in credentials(&picks[0]) {
        assert!(!never.contains(&c), "{c} was drilled");
    }
    assert_eq!(never.len(), 80 - 12);
}

#[test]
fn drill_refuses_bad_flags_before_touching_anything() {
    let (ws, _) = generated(10, 2);
    let r = ws.rekey(&["drill", "--simulate", "--yes"], ENV);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--due, --sample N"), "{}", r.stderr);
    let r = ws.rekey(
        &[
            "drill",
            "--due",
            "--simulate",
            "--yes",
            "--report",
            "out.pdf",
        ],
        ENV,
    );
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains(".md, .html or .json"), "{}", r.stderr);
    let r = ws.rekey(&["drill", "--due", "--sample", "3"], ENV);
    assert_eq!(r.code, Some(2));
    let r = ws.rekey(&["run", "--seed", "3", "--yes"], ENV);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("needs --simulate"), "{}", r.stderr);
    assert!(!ws.path().join(".rekey/state.db").exists() || ws.run_ids(ENV).is_empty());
    let r = ws.rekey(&["report", "run-nope"], ENV);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("no run run-nope"), "{}", r.stderr);
}

fn copy(from: &Workspace, to: &Workspace) {
    let dst = to.path().join("inventory");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(from.path().join("inventory")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// Rules of `rekey lint` that read the history: drilled credentials are no longer
/// `never-drilled`, and one whose last drill failed is `last-drill-failed`, naming the run.
#[test]
fn lint_reads_the_drill_history() {
    let ws = Workspace::example();
    let findings = |ws: &Workspace| -> Vec<(String, String)> {
        let r = ws.rekey(&["lint", "--json"], ENV);
        assert!(matches!(r.code, Some(0 | 1)), "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_owned(),
                    f["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let before = findings(&ws);
    assert!(before.contains(&("never-drilled".into(), "pg-web-app".into())));

    ws.rekey(
        &["drill", "--credential", "pg-web-app", "--simulate", "--yes"],
        ENV,
    )
    .ok("drill pg-web-app");
    // A drill of aws-deploy-web whose mint fails for good: nothing irreversible ran, rolled back.
    let plan = json(
        &ws.rekey(
            &["plan", "--credential", "aws-deploy-web", "--format", "json"],
            ENV,
        ),
        "plan",
    );
    let mint = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["phase"] == "mint")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ws.rekey(
        &[
            "drill",
            "--credential",
            "aws-deploy-web",
            "--simulate",
            "--yes",
            "--sim-fail",
            &mint,
        ],
        ENV,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let failed_run = ws.run_ids(ENV).remove(0);

    let after = findings(&ws);
    assert!(
        !after.contains(&("never-drilled".into(), "pg-web-app".into())),
        "{after:?}"
    );
    assert!(
        after.contains(&("last-drill-failed".into(), "aws-deploy-web".into())),
        "{after:?}"
    );
    let text = ws.rekey(&["lint"], ENV);
    assert!(
        text.stdout.contains(&failed_run),
        "the finding does not name the run"
    );
    // The failed drill's report says what to do.
    let report = report_json(&ws, &failed_run);
    assert_eq!(report["credentials"][0]["outcome"], "rolled_back");
    assert!(
        report["credentials"][0]["failure"]["next"]
            .as_str()
            .unwrap()
            .contains("rotate it again")
    );
}
