//! The `rekey` binary: commands, formats, exit codes.

use crate::harness::Test;

#[test]
fn validate_example_inventory() {
    Test::example()
        .args(["validate"])
        .stdout_has("ok: 5 host(s), 4 service(s), 15 credential(s)")
        .run();
}

#[test]
fn validate_names_the_auth_of_every_github_step() {
    Test::example()
        .args(["validate"])
        .stdout_has("github auth: the token in $GITHUB_TOKEN")
        .stdout_has(
            "github auth: unauthenticated (https://api.github.com refuses an authenticated revoke)",
        )
        .stdout_has("github auth: the new token itself: gh-secrets-writer/verify")
        .run();
}

#[test]
fn validate_reports_every_problem_and_exits_2() {
    let out = Test::new()
        .file(
            "inventory/a.yaml",
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    usr_name: u\n",
        )
        .file("inventory/b.yaml", "hosts:\n  - id: h\n    kind: laptop\n")
        .args(["validate"])
        .status(2)
        .stderr_has("inventory/a.yaml:4:5: unknown field `usr_name` for kind aws_iam_access_key")
        .stderr_has("inventory/b.yaml:3:11: unknown host kind `laptop`")
        .stderr_has("4 │     usr_name: u")
        .stderr_has("nothing was done")
        .run();
    assert!(
        !out.stderr.contains('\u{1b}'),
        "NO_COLOR output has escapes"
    );
}

#[test]
fn missing_inventory_folder_is_bad_input() {
    Test::new()
        .args(["plan"])
        .status(2)
        .stderr_has("cannot read folder inventory")
        .run();
}

#[test]
fn plan_text_is_a_dry_run_with_a_summary() {
    Test::example()
        .args([
            "plan",
            "--credential",
            "aws-deploy-web",
            "--mode",
            "incident",
        ])
        .stdout_has("rekey plan: mode incident, 1 credential(s), 10 step(s)")
        .stdout_has("revoke first: incident: exposed, its value is present on gha-org-runners")
        .stdout_has("iam:UpdateAccessKey Status=Inactive")
        .stdout_has("Plan: 1 credential(s): 1 revoke first, 0 rotate first; 10 step(s)")
        .stdout_lacks("\u{1b}[")
        .run();
}

#[test]
fn plan_formats() {
    let json = Test::example()
        .args(["plan", "--kind", "npm_granular_token", "--format", "json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["mode"], "drill");
    assert_eq!(v["credentials"][0]["id"], "npm-publish");
    let dot = Test::example()
        .args(["plan", "--service", "web", "--format", "dot"])
        .stdout_has("digraph rekey_plan {")
        .run();
    assert!(
        dot.stdout.contains("subgraph cluster_0") && dot.stdout.contains(" -> "),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout.contains("color=red"),
        "irreversible steps are marked"
    );
    Test::example()
        .args(["plan", "--credential", "hf-ml-read", "--format", "mermaid"])
        .stdout_has("flowchart TD")
        .stdout_has("-->")
        .stdout_has("class ")
        .run();
}

#[test]
fn plan_selection_errors_are_bad_input() {
    Test::example()
        .args(["plan", "--credential", "nope"])
        .status(2)
        .stderr_has("no credential `nope` in the inventory")
        .run();
    Test::example()
        .args(["plan", "--kind", "aws_key"])
        .status(2)
        .stderr_has("[possible values: aws_iam_access_key")
        .run();
    Test::example()
        .args(["plan", "--mode", "panic"])
        .status(2)
        .run();
}

#[test]
fn plan_refusal_exits_2_with_the_reason() {
    Test::new()
        .file(
            "inventory/a.yaml",
            "credentials:\n  - id: a\n    kind: aws_iam_access_key\n    user_name: u\n  - id: b\n    kind: aws_iam_access_key\n    user_name: u\n",
        )
        .args(["plan"])
        .status(2)
        .stderr_has("plan refused")
        .stderr_has("IAM user `u` holds 2 tracked keys (a, b)")
        .run();
}

#[test]
fn inventory_list_table_and_json() {
    Test::example()
        .args(["inventory", "list"])
        .stdout_has("aws-deploy-web")
        .stdout_has("114d")
        .stdout_has("(legacy)")
        .stdout_has("15 credential(s), 5 due for rotation")
        .run();
    let out = Test::example().args(["inventory", "list", "--json"]).run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let aws = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "aws-deploy-web")
        .unwrap();
    assert_eq!(aws["age_days"], 114);
    assert_eq!(aws["due"], true);
    assert_eq!(aws["present_on"][0], "gha-org-runners");
    assert_eq!(aws["consumers"][0], "secretsmanager:prod/web/aws-deploy");
}

#[test]
fn team_runbooks_replace_bundled_ones() {
    let custom = "kind: huggingface_token\nsteps:\n  - id: create\n    phase: mint\n    action: manual.provide_secret\n    manual: { instructions: ask the ML platform team }\n  - id: check\n    phase: verify\n    action: huggingface.whoami\n    with: { token: \"{{ steps.create.outputs.value }}\" }\n";
    Test::example()
        .file("team-runbooks/hf.yaml", custom)
        .args([
            "plan",
            "--credential",
            "hf-ml-read",
            "--runbooks",
            "team-runbooks",
        ])
        .stdout_has("ask the ML platform team")
        .stdout_has("runbook team-runbooks/hf.yaml")
        .run();
    Test::example()
        .file("team-runbooks/a.yaml", custom)
        .file("team-runbooks/b.yaml", custom)
        .args(["validate", "--runbooks", "team-runbooks"])
        .status(2)
        .stderr_has("team-runbooks/b.yaml:1:7: a second runbook for kind huggingface_token")
        .run();
}

#[test]
fn validate_lists_actions() {
    Test::new()
        .args(["validate", "--actions"])
        .stdout_has("aws.iam.create_access_key")
        .stdout_has("secret_access_key (secret)")
        .run();
}

#[test]
fn retry_budget_and_sim_outage_flags() {
    Test::example()
        .args(["run", "--simulate", "--yes", "--retry-budget", "soon"])
        .status(2)
        .stderr_has("expected a duration such as 90s, 2m or 500ms, found `soon`")
        .run();
    Test::example()
        .args(["run", "--simulate", "--yes", "--sim-outage", "aws+30s"])
        .status(2)
        .stderr_has("expected PROVIDER:START+DURATION such as aws:5s+30s, found `aws+30s`")
        .run();
    Test::example()
        .args(["run", "--yes", "--sim-outage", "aws:0s+1s"])
        .status(2)
        .stderr_has("--simulate")
        .run();
    // A one-second outage of AWS is waited out; each retry is in the audit log.
    let ws = crate::harness::Workspace::example();
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
            "--retry-budget",
            "1m 30s",
            "--sim-outage",
            "aws:0s+1s",
        ],
        &[],
    );
    r.ok("run through an outage");
    // The terminal says which step waits, why and until when.
    assert!(
        r.stderr.contains(
            "aws-deploy-web/capture-last-used waiting: attempt 1 transient: simulated outage of aws"
        ) && r.stderr.contains("next try at "),
        "{}",
        r.stderr
    );
    let mut seen = String::new();
    let events = ws.audit_events(None, &mut seen);
    let retries: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "step_retry")
        .collect();
    assert!(!retries.is_empty(), "no retry was audited");
    assert!(
        retries[0]["detail"]
            .as_str()
            .unwrap()
            .contains("transient: simulated outage of aws"),
        "{}",
        retries[0]["detail"]
    );
}

/// No input may panic (issue #9, item 15): a non-ASCII package spec is bad input, exit 2.
#[test]
fn non_ascii_package_spec_is_bad_input() {
    for args in [
        ["incident", "--package", "é€/x@1"],
        ["incident", "--purl", "é€/x@1"],
        ["who-uses", "é€/x@1", "--json"],
    ] {
        let out = Test::example()
            .args(args)
            .status(2)
            .stderr_has("error:")
            .run();
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

/// `rekey … | head`: a reader that goes away is a quiet exit 0, whatever the subcommand
/// (issue #9, item 17).
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let ws = crate::harness::Workspace::example();
    ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
        ],
        &[],
    )
    .ok("run");
    for args in [
        &["audit", "show"][..],
        &["audit", "export"],
        &["status"],
        &["plan"],
        &["plan", "--format", "json"],
        &["validate"],
        &["inventory", "list"],
        &["incident", "--package", "npm/axios@1.14.1"],
        &["incident", "--package", "npm/axios@1.14.1", "--json"],
        &["who-uses", "npm/axios"],
        &["index", "--json"],
    ] {
        let mut child = ws
            .command(args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before rekey writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(0)
                && !stderr.contains("error")
                && !stderr.contains("panicked"),
            "rekey {}: {:?}\n{stderr}",
            args.join(" "),
            out.status
        );
    }
}

/// Provider error text, reasons and ids come from the database and are printed by `status`
/// and `audit show`: terminal control characters in them are stripped, so a provider's
/// message cannot clear the screen or overwrite a line (issue #9, item 17).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_audit_show_strip_terminal_control_characters() {
    let ws = crate::harness::Workspace::example();
    ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
        ],
        &[],
    )
    .ok("run");
    let run = ws.run_ids(&[]).remove(0);
    let db = ws.path().join(".rekey/state.db");
    let store = rekey_store::Store::open(&db.display().to_string())
        .await
        .unwrap();
    // An ANSI "clear screen", then a `\r` that would overwrite the line with a fake status,
    // a C1 control (CSI) and DEL.
    let evil = "'boom' || char(27) || '[2J' || char(13) || 'all good' || char(155) || '31m' || char(127) || char(7)";
    for sql in [
        format!("UPDATE steps SET error = {evil}"),
        format!("UPDATE runs SET reason = {evil}, message = {evil}"),
        format!("UPDATE audit_events SET detail = {evil}, reason = {evil}, step = {evil}"),
    ] {
        store.execute_raw(sql).await.unwrap();
    }
    store.close().await;
    for args in [
        &["status"][..],
        &["status", &run],
        &["audit", "show"],
        &["audit", "show", "--run", &run],
    ] {
        // Colour forced on: anstream would otherwise strip escapes for a pipe by itself.
        let r = ws.rekey(args, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]);
        r.ok(&args.join(" "));
        assert!(r.stdout.contains("boom"), "{}", r.stdout);
        for c in ['\u{1b}', '\r', '\u{9b}', '\u{7f}', '\u{7}'] {
            assert!(
                !r.stdout.contains(c),
                "rekey {}: {c:?} printed raw:\n{:?}",
                args.join(" "),
                r.stdout
            );
        }
    }
}
