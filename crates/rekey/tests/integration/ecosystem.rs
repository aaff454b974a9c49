//! What the rest of a user's tools see (issue 14): shell completions, the manual page, and a
//! README whose command list is the binary's.

use std::collections::BTreeSet;
use std::process::Command;

use crate::harness::repo_root;

fn rekey(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rekey"))
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
