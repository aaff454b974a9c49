//! `rekey lint` through the binary: the bundled example's findings (its legacy tokens and the
//! npm tokens beside trusted publishing among them), exit codes, JSON and SARIF. The rules
//! themselves, each at its exact location, are tested in `rekey-spec/src/lint.rs`.

use crate::harness::Workspace;

/// The findings of one rule in `rekey lint --json`: (id, line, column).
fn located<'a>(list: &'a serde_json::Value, rule: &str) -> Vec<(&'a str, u64, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The example's legacy tokens are warnings; its two npm tokens that can still publish
/// `@acme/ui`, which `npm-packages` publishes through trusted publishing, are errors (exit 1).
#[test]
fn lint_finds_the_example_legacy_tokens_and_the_tokens_that_undo_trusted_publishing() {
    let ws = Workspace::example();
    let r = ws.rekey(&["lint", "--today", "2026-12-07"], &[]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("lint: 2 error(s) in the inventory"),
        "{}",
        r.stderr
    );
    for id in ["gh-ci-classic", "npm-legacy-laptop"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.contains("warning[legacy-kind]") && l.contains(id)),
            "{id}: {}",
            r.stdout
        );
    }
    assert!(
        r.stdout.lines().any(|l| l.starts_with(
            "inventory/credentials.yaml:86:9: error[npm-token-outranks-trusted-publishing] npm-publish can publish @acme/ui, which npm-packages publishes with trusted publishing"
        )),
        "{}",
        r.stdout
    );
    let r = ws.rekey(&["lint", "--today", "2026-12-07", "--json"], &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        located(&list, "legacy-kind"),
        [("gh-ci-classic", 59, 9), ("npm-legacy-laptop", 100, 9)]
    );
    assert_eq!(
        located(&list, "npm-token-outranks-trusted-publishing"),
        [("npm-publish", 86, 9), ("npm-legacy-laptop", 100, 9)]
    );
    // No rotation history yet (TODO(history)): every credential is never drilled, a note
    // each, so that SARIF can place each one.
    let never = located(&list, "never-drilled");
    assert_eq!(never.len(), 15, "{never:?}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "never-drilled")
            .all(|f| f["severity"] == "note")
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|f| f["file"].as_str().unwrap().starts_with("inventory/"))
    );
}

#[test]
fn lint_errors_exit_1_bad_input_exits_2_and_sarif_locates_findings() {
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    let inv = ws.path().join("inventory/keys.yaml");
    std::fs::write(
        &inv,
        "credentials:
  - id: a
    kind: aws_iam_access_key
    user_name: deploy
    delivered_to:
      - env_file: { path: /tmp/a.env, key: A }
  - id: b
    kind: aws_iam_access_key
    user_name: deploy
    delivered_to:
      - env_file: { path: /tmp/b.env, key: B }
",
    )
    .unwrap();
    let r = ws.rekey(&["lint"], &[]);
    assert_eq!(
        r.code,
        Some(1),
        "two tracked keys of one IAM user: {}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("inventory/keys.yaml:2:9: error[no-headroom]"),
        "{}",
        r.stdout
    );
    let r = ws.rekey(&["lint", "--format", "sarif"], &[]);
    assert_eq!(r.code, Some(1));
    let sarif: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert!(
        run["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "no-headroom")
    );
    let first = &run["results"][0];
    assert_eq!(first["ruleId"], "no-headroom");
    assert_eq!(first["level"], "error");
    let loc = &first["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "inventory/keys.yaml");
    assert_eq!(loc["region"]["startLine"], 2);
    assert_eq!(loc["region"]["startColumn"], 9);
    // Every rule is listed, the history rules too; without history each key is a
    // never-drilled note at its own entry, after the error there.
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "npm-token-outranks-trusted-publishing",
        "never-drilled",
        "last-drill-failed",
    ] {
        assert!(rules.contains(&id), "{id}: {rules:?}");
    }
    let never: Vec<(u64, &str)> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == "never-drilled")
        .map(|r| {
            (
                r["locations"][0]["physicalLocation"]["region"]["startLine"]
                    .as_u64()
                    .unwrap(),
                r["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(never, [(2, "note"), (7, "note")]);
    // Bad input: exit 2, located.
    std::fs::write(&inv, "credentials:\n  - id: a\n    kind: nope\n").unwrap();
    let r = ws.rekey(&["lint"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("keys.yaml:3:11"), "{}", r.stderr);
}
