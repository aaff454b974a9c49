//! What the rest of a user's tools see (issue 14): shell completions, the manual page, and a
//! README whose command list is the binary's.

use std::collections::BTreeSet;
use std::process::Command;

use crate::harness::repo_root;

fn rekey(args: &[&str]) -> String {
    let out = Command::new(crate::harness::REKEY)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rekey {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `rekey --help` lists.
fn subcommands() -> BTreeSet<String> {
    let help = rekey(&["--help"]);
    let list = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|t| t.split("\n\n").next())
        .expect("a command list");
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_lists_every_command_the_binary_has() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let usage = readme
        .split("## Using it")
        .nth(1)
        .and_then(|t| t.split("```sh\n").nth(1))
        .and_then(|t| t.split("```").next())
        .expect("README's usage block");
    let listed: BTreeSet<String> = usage
        .lines()
        .filter_map(|l| l.strip_prefix("rekey "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        listed,
        subcommands(),
        "README's usage block and `rekey --help` differ"
    );
}

/// Completes `words` (the last one being typed) with the generated bash script, in bash.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {}\nCOMP_WORDS=({line})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n_rekey rekey '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_loads_and_completes_subcommands_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rekey.bash");
    std::fs::write(&script, rekey(&["completions", "bash"])).unwrap();

    let words = complete(&script, &["rekey", "dr"]);
    assert_eq!(words, ["drill"], "{words:?}");
    let all = complete(&script, &["rekey", ""]);
    for c in subcommands() {
        assert!(all.contains(&c), "{c} is not offered: {all:?}");
    }
    let kinds = complete(&script, &["rekey", "plan", "--kind", "github_"]);
    assert_eq!(
        kinds,
        [
            "github_fine_grained_pat",
            "github_classic_pat",
            "github_app_private_key"
        ],
        "{kinds:?}"
    );
    for shell in ["zsh", "fish", "powershell"] {
        assert!(rekey(&["completions", shell]).contains("drill"), "{shell}");
    }
}

#[test]
fn the_man_page_names_every_command() {
    let man = rekey(&["man"]);
    assert!(man.contains(".TH rekey 1"), "not a roff man page");
    for c in subcommands() {
        // roff writes a hyphen as `\-`.
        assert!(
            man.contains(&c.replace('-', "\\-")),
            "the man page lacks {c}"
        );
    }
}

/// The shape of a JSON value: objects keep their keys, arrays the merged shape of their
/// elements, scalars their type (`string|null` where elements differ). A snapshot of shapes
/// documents each command's output and fails when a field disappears or changes type, without
/// failing on every new credential in the example.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Map, Value};
    fn merge(a: Value, b: Value) -> Value {
        match (a, b) {
            (Value::Object(mut a), Value::Object(b)) => {
                for (k, v) in b {
                    let merged = match a.remove(&k) {
                        Some(old) => merge(old, v),
                        None => v,
                    };
                    a.insert(k, merged);
                }
                Value::Object(a)
            }
            (Value::Array(a), Value::Array(b)) => {
                let items: Vec<Value> = a.into_iter().chain(b).collect();
                Value::Array(items.into_iter().reduce(merge).into_iter().collect())
            }
            (Value::String(a), Value::String(b)) if a == b => Value::String(a),
            (Value::String(a), Value::String(b)) => {
                let mut types: Vec<&str> = a.split('|').chain(b.split('|')).collect();
                types.sort_unstable();
                types.dedup();
                Value::String(types.join("|"))
            }
            // An object or array in one element and a scalar (null) in another.
            (Value::String(s), Value::Object(mut o)) | (Value::Object(mut o), Value::String(s)) => {
                let or = match o.remove("(or)") {
                    Some(old) => merge(old, Value::String(s)),
                    None => Value::String(s),
                };
                o.insert("(or)".into(), or);
                Value::Object(o)
            }
            (Value::String(s), other) | (other, Value::String(s)) => {
                let mut o = Map::new();
                o.insert("(array)".into(), other);
                o.insert("(or)".into(), Value::String(s));
                Value::Object(o)
            }
            (a, b) => unreachable!("shapes are strings, objects and arrays: {a} / {b}"),
        }
    }
    match v {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(items) => {
            Value::Array(items.iter().map(shape).reduce(merge).into_iter().collect())
        }
        // A step's inputs are named by its action: a map whose keys the runbooks decide.
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let s = if k == "inputs" {
                        Value::String("map".into())
                    } else {
                        shape(v)
                    };
                    (k.clone(), s)
                })
                .collect::<Map<_, _>>(),
        ),
    }
}

#[test]
fn every_json_output_keeps_its_documented_shape() {
    let ws = crate::harness::Workspace::example();
    let env = [("REKEY_TODAY", "2026-11-23")];
    let json = |args: &[&str]| -> serde_json::Value {
        let r = ws.rekey(args, &env);
        assert!(
            matches!(r.code, Some(0 | 1)),
            "rekey {args:?}: {}",
            r.stderr
        );
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("rekey {args:?}: {e}"))
    };
    // A finished run, a failed one and an incident, so every optional field has a value.
    ws.rekey(&["drill", "--due", "--simulate", "--yes"], &env)
        .ok("drill");
    let drill = ws.run_ids(&env).remove(0);
    ws.rekey(
        &[
            "run",
            "--mode",
            "incident",
            "--credential",
            "aws-deploy-web",
            "--simulate",
            "--yes",
        ],
        &env,
    )
    .ok("incident run");
    let mut out = serde_json::Map::new();
    for (name, args) in [
        ("inventory list --json", vec!["inventory", "list", "--json"]),
        ("status --json", vec!["status", "--json"]),
        (
            "status RUN --json",
            vec!["status", drill.as_str(), "--json"],
        ),
        ("audit show --json", vec!["audit", "show", "--json"]),
        ("lint --json", vec!["lint", "--json"]),
        (
            "incident --json",
            vec!["incident", "--package", "npm/axios@1.14.1", "--json"],
        ),
        ("who-uses --json", vec!["who-uses", "npm/axios", "--json"]),
        ("index --json", vec!["index", "--json"]),
        ("scorecard --json", vec!["scorecard", "--json"]),
        (
            "report RUN --format json",
            vec!["report", drill.as_str(), "--format", "json"],
        ),
        (
            "plan --format json",
            vec!["plan", "--credential", "aws-deploy-web", "--format", "json"],
        ),
    ] {
        out.insert(name.to_owned(), shape(&json(&args)));
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(
            "json_shapes",
            serde_json::to_string_pretty(&serde_json::Value::Object(out)).unwrap()
        );
    });
}
