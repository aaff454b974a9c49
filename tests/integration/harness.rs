//! A small builder for running the real `rekey` binary against files in a temp folder, in the
//! spirit of just's `tests/test.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rekey_spec::{Inventory, Runbooks, SourceFile};

/// The program under test: `rekey`, built by this package (see `tests/Cargo.toml`).
pub(crate) const REKEY: &str = env!("CARGO_BIN_EXE_rekey-under-test");

/// The repository root (for the example inventory and bundled runbooks).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

pub(crate) fn example_inventory() -> Inventory {
    rekey_spec::load_inventory(&repo_root().join("inventory"))
        .expect("the example inventory is valid")
}

pub(crate) fn bundled_runbooks() -> Runbooks {
    rekey_spec::load_runbooks(None).expect("the bundled runbooks are valid")
}

/// Parses one in-memory inventory file named `name`.
pub(crate) fn inventory_from(name: &str, text: &str) -> Result<Inventory, rekey_spec::SpecErrors> {
    rekey_spec::parse_inventory(&[Arc::new(SourceFile::new(name, text))])
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

#[must_use]
pub(crate) struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    status: i32,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    stdout_lacks: Vec<String>,
}

pub(crate) struct Output {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Test {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            args: Vec::new(),
            env: vec![
                ("NO_COLOR".into(), "1".into()),
                ("REKEY_TODAY".into(), "2026-11-23".into()),
            ],
            status: 0,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            stdout_lacks: Vec::new(),
        }
    }

    /// Runs in a copy of the example inventory.
    pub(crate) fn example() -> Self {
        let t = Self::new();
        let src = repo_root().join("inventory");
        let dst = t.dir.path().join("inventory");
        std::fs::create_dir_all(&dst).unwrap();
        copy_dir(&src, &dst);
        t
    }

    pub(crate) fn file(self, path: &str, text: &str) -> Self {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub(crate) fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    pub(crate) fn stdout_has(mut self, s: &str) -> Self {
        self.stdout_has.push(s.into());
        self
    }

    pub(crate) fn stdout_lacks(mut self, s: &str) -> Self {
        self.stdout_lacks.push(s.into());
        self
    }

    pub(crate) fn stderr_has(mut self, s: &str) -> Self {
        self.stderr_has.push(s.into());
        self
    }

    pub(crate) fn run(self) -> Output {
        let mut cmd = Command::new(REKEY);
        cmd.current_dir(self.dir.path())
            .args(&self.args)
            .env_remove("REKEY_INVENTORY")
            .env_remove("REKEY_RUNBOOKS")
            // A CI runner's own GitHub settings must not reach the tests' runs.
            .env_remove("GITHUB_API_URL")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_APP_ID");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let ctx = format!(
            "rekey {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.args.join(" ")
        );
        assert_eq!(
            out.status.code(),
            Some(self.status),
            "unexpected exit status\n{ctx}"
        );
        for s in &self.stdout_has {
            assert!(stdout.contains(s), "stdout lacks {s:?}\n{ctx}");
        }
        for s in &self.stdout_lacks {
            assert!(!stdout.contains(s), "stdout has {s:?}\n{ctx}");
        }
        for s in &self.stderr_has {
            assert!(stderr.contains(s), "stderr lacks {s:?}\n{ctx}");
        }
        Output { stdout, stderr }
    }
}

/// A folder to run several commands in (a copy of the example inventory).
pub(crate) struct Workspace {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Workspace {
    pub(crate) fn example() -> Self {
        let t = Test::example();
        Self { dir: t.dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(REKEY);
        cmd.current_dir(self.dir.path())
            .args(args)
            .env_remove("REKEY_INVENTORY")
            .env_remove("REKEY_RUNBOOKS")
            .env_remove("REKEY_DATABASE_URL")
            .env_remove("REKEY_SIM_CRASH_AT")
            .env_remove("GITHUB_API_URL")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_APP_ID")
            .env_remove("HF_ENDPOINT")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM")
            .env("CLOUDSDK_CONFIG", self.dir.path().join("no-gcloud-config"))
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    pub(crate) fn rekey(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let out = self.command(args, env).output().unwrap();
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The ids of the runs in the state database, newest first.
    pub(crate) fn run_ids(&self, env: &[(&str, &str)]) -> Vec<String> {
        let r = self.rekey(&["status", "--json"], env);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Runs against real servers: a workspace with the test's own inventory, what the binary
// printed, the audit log, and looking for secrets.

impl Workspace {
    /// An empty workspace (no example inventory): the test writes its own.
    pub(crate) fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `rekey` like [`Workspace::rekey`], appending everything it printed to `seen`.
    pub(crate) fn rekey_seen(&self, args: &[&str], env: &[(&str, &str)], seen: &mut String) -> Ran {
        let r = self.rekey(args, env);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
        r
    }

    /// The audit log (`rekey audit export --format jsonl`, of the run `run` or all), in `seq`
    /// order.
    pub(crate) fn audit_events(
        &self,
        run: Option<&str>,
        seen: &mut String,
    ) -> Vec<serde_json::Value> {
        let mut args = vec!["audit", "export", "--format", "jsonl"];
        args.extend(run.iter().flat_map(|r| ["--run", r]));
        let r = self.rekey_seen(&args, &[], seen);
        r.ok("audit export");
        let mut events: Vec<serde_json::Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        events.sort_by_key(|e| e["seq"].as_i64().unwrap());
        events
    }

    /// Fails if any of `secrets` is in `seen`, the state database files (`.rekey/state.db*`)
    /// or the audit export.
    pub(crate) fn assert_no_secrets(&self, seen: &str, secrets: &[&str]) {
        let mut haystacks = vec![("output".to_owned(), seen.to_owned())];
        for e in std::fs::read_dir(self.path().join(".rekey")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("state.db") {
                let bytes = std::fs::read(e.path()).unwrap();
                haystacks.push((name, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        assert!(haystacks.len() > 1, "no state database in .rekey/");
        let export = self.rekey(&["audit", "export"], &[]);
        export.ok("audit export");
        haystacks.push(("audit export".to_owned(), export.stdout));
        for (what, text) in &haystacks {
            for s in secrets {
                assert!(!s.is_empty());
                if let Some(at) = text.find(s) {
                    // What surrounds it (the value itself masked), to tell a leak from a
                    // short secret (a 6-digit OTP) that a timestamp happens to contain.
                    let from = text.floor_char_boundary(at.saturating_sub(60));
                    let to = text.ceil_char_boundary((at + s.len() + 60).min(text.len()));
                    let context = text[from..to].replace(s, "<SECRET>");
                    panic!("{what} holds a secret value: …{context:?}…");
                }
            }
        }
    }
}

impl Ran {
    /// Fails unless the command exited with 0, showing what it printed.
    pub(crate) fn ok(&self, what: &str) {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// The position of the first `event` of `step` in `events`.
pub(crate) fn position(events: &[serde_json::Value], event: &str, step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == event && e["step"] == step)
        .unwrap_or_else(|| {
            panic!(
                "no {event} of {step} in the audit log:\n{}",
                summary(events)
            )
        })
}

/// One line per audit event: `seq event step outcome`.
pub(crate) fn summary(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .map(|e| format!("{} {} {} {}", e["seq"], e["event"], e["step"], e["outcome"]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The value of `key` in the env file at `path` (`KEY=value`, maybe single- or double-quoted).
pub(crate) fn env_file_value(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{} has no {key}", path.display()))
        .trim();
    if let Some(inner) = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        inner.replace("'\\''", "'")
    } else if let Some(inner) = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        inner.to_owned()
    } else {
        v.to_owned()
    }
}
