//! `rekey lint` through the binary: the bundled example's findings (its legacy tokens among
//! them), exit codes, JSON and SARIF. The rules themselves, each at its exact location, are
//! tested in `rekey-spec/src/lint.rs`.

use crate::harness::Workspace;

#[test]
fn lint_finds_the_example_legacy_tokens_and_exits_0_without_errors() {
    let ws = Workspace::example();
    let r = ws.rekey(&["lint", "--today", "2026-12-07"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for id in ["gh-ci-classic", "npm-legacy-laptop"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.contains("warning[legacy-kind]") && l.contains(id)),
            "{id}: {}",
            r.stdout
        );
    }
    let r = ws.rekey(&["lint", "--today", "2026-12-07", "--json"], &[]);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let legacy: Vec<(&str, u64, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "legacy-kind")
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        legacy,
        [("gh-ci-classic", 58, 9), ("npm-legacy-laptop", 99, 9)]
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
    // Bad input: exit 2, located.
    std::fs::write(&inv, "credentials:\n  - id: a\n    kind: nope\n").unwrap();
    let r = ws.rekey(&["lint"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("keys.yaml:3:11"), "{}", r.stderr);
}
