//! The real `rekey` binary against a real npm registry (Verdaccio 6.8.0, `rekey_testkit::
//! Verdaccio`; install it with `scripts/peers.sh`): a granular token and a classic token
//! rotated in drill and incident mode, checked on the registry (whoami, the token list) and
//! with the `npm` CLI itself (`npm whoami` with an `.npmrc` holding the token); 20 % injected
//! faults; a crash at every step boundary, then resume; and, against the OTP fake written
//! from npm's documentation, a run that pauses for a one-time password and resumes with
//! `--input`, the OTP kept nowhere. `npm_tokens_per_minute` measures throughput.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rekey_testkit::npm_fake::FAKE_OTP;
use rekey_testkit::{FaultProxy, NpmFake, Verdaccio};

use crate::harness::{Workspace, env_file_value};

const PASSWORD: &str = "Npm-E2E-Acc0unt-Pa55word";

/// One npm credential per (id, user, kind, token key), delivered to `<id>.env` in `dir`.
fn inventory(registry: &str, dir: &Path, creds: &[(String, String, &str, String)]) -> String {
    let mut out = String::from("credentials:\n");
    for (id, user, kind, key) in creds {
        let _ = write!(
            out,
            "  - id: {id}
    kind: {kind}
    owner: team-web
    npm_user: {user}
    registry: {registry}
    token_key: {key}
    password_env: NPM_E2E_PASSWORD
    delivered_to:
      - env_file: {{ path: {}, key: NPM_TOKEN }}
",
            dir.join(format!("{id}.env")).display()
        );
    }
    out
}

struct World {
    v: Verdaccio,
    ws: Workspace,
    /// (id, user, kind).
    creds: Vec<(String, String, &'static str)>,
}

impl World {
    fn start(creds: &[(&str, &str, &'static str)]) -> Self {
        let v = Verdaccio::start();
        let ws = Workspace::empty();
        std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
        let creds: Vec<(String, String, &'static str)> = creds
            .iter()
            .map(|(i, u, k)| ((*i).to_owned(), (*u).to_owned(), *k))
            .collect();
        for (id, user, _) in &creds {
            v.add_user(user, PASSWORD);
            let (_, old) = v.create_token(user, PASSWORD);
            std::fs::write(
                ws.path().join(format!("{id}.env")),
                format!("NPM_TOKEN={old}\n"),
            )
            .unwrap();
        }
        let w = Self { v, ws, creds };
        w.write_inventory(&w.v.url());
        w
    }

    /// The inventory with each credential's current token key (its only token).
    fn write_inventory(&self, registry: &str) {
        let creds: Vec<(String, String, &str, String)> = self
            .creds
            .iter()
            .map(|(id, user, kind)| {
                let keys = self.v.token_keys(user, PASSWORD);
                assert_eq!(keys.len(), 1, "{user} has one token: {keys:?}");
                (id.clone(), user.clone(), *kind, keys[0].clone())
            })
            .collect();
        std::fs::write(
            self.ws.path().join("inventory/npm.yaml"),
            inventory(registry, self.ws.path(), &creds),
        )
        .unwrap();
    }

    fn token(&self, id: &str) -> String {
        env_file_value(&self.ws.path().join(format!("{id}.env")), "NPM_TOKEN")
    }

    /// Each credential has exactly one token at the registry, the one its consumer holds, and
    /// it is accepted; returns them.
    fn assert_one_live_token_each(&self) -> Vec<String> {
        self.creds
            .iter()
            .map(|(id, user, _)| {
                let t = self.token(id);
                assert_eq!(
                    self.v.whoami(&t).as_deref(),
                    Some(user.as_str()),
                    "{id}: the delivered token works"
                );
                assert_eq!(
                    self.v.token_keys(user, PASSWORD).len(),
                    1,
                    "{id}: exactly one token"
                );
                t
            })
            .collect()
    }
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("NPM_E2E_PASSWORD", PASSWORD),
        ("REKEY_NPM_WRITES_PER_MINUTE", "100000"),
        ("REKEY_NPM_REQUESTS_PER_HOUR", "10000000"),
    ]
}

/// `npm whoami --registry URL` with a user config holding `token`: the user, or `None` when
/// npm refuses it.
fn npm_whoami(registry: &str, token: &str, dir: &Path) -> Option<String> {
    let host = registry
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let rc: PathBuf = dir.join(".npmrc-whoami");
    std::fs::write(&rc, format!("//{host}:_authToken={token}\n")).unwrap();
    let out = Command::new("npm")
        .args(["whoami", "--registry", registry, "--userconfig"])
        .arg(&rc)
        .env("npm_config_cache", dir.join(".npm-cache"))
        .env_remove("NPM_TOKEN")
        .output()
        .expect("npm (the CLI) runs: install Node.js and npm");
    let _ = std::fs::remove_file(&rc);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_drill_then_incident_on_verdaccio() {
    let w = World::start(&[
        ("npm-publish", "publisher", "npm_granular_token"),
        ("npm-legacy", "legacy", "npm_classic_token"),
    ]);
    let env = env();
    let mut seen = String::new();
    let old: Vec<String> = w.creds.iter().map(|(id, _, _)| w.token(id)).collect();
    let r = w.ws.rekey_seen(&["validate"], &env, &mut seen);
    r.ok("validate");
    assert!(
        r.stdout
            .contains("npm auth: account publisher at http://127.0.0.1:")
            && r.stdout.contains("with the password in $NPM_E2E_PASSWORD:"),
        "{}",
        r.stdout
    );
    let plan =
        w.ws.rekey_seen(&["plan", "--mode", "drill"], &env, &mut seen);
    plan.ok("plan");
    assert!(
        plan.stdout.contains("POST /-/npm/v1/tokens"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("2025-12-09"),
        "the plan says why a classic token is legacy:\n{}",
        plan.stdout
    );

    // Drill: rotate first.
    w.ws.rekey_seen(
        &["run", "--mode", "drill", "--yes", "--reason", "DRILL-NPM"],
        &env,
        &mut seen,
    )
    .ok("drill");
    let new = w.assert_one_live_token_each();
    for ((t, o), (id, user, _)) in new.iter().zip(&old).zip(&w.creds) {
        assert_ne!(t, o, "{id}: a new token");
        assert_eq!(w.v.whoami(o), None, "{id}: the old token is refused");
        // The npm CLI itself agrees.
        assert_eq!(
            npm_whoami(&w.v.url(), t, w.ws.path()).as_deref(),
            Some(user.as_str()),
            "{id}: npm whoami with the new token"
        );
        assert_eq!(
            npm_whoami(&w.v.url(), o, w.ws.path()),
            None,
            "{id}: npm whoami refuses the old token"
        );
    }

    // Incident: revoke first (the inventory now names the drill's tokens).
    w.write_inventory(&w.v.url());
    w.ws.rekey_seen(
        &["run", "--mode", "incident", "--yes", "--reason", "INC-NPM"],
        &env,
        &mut seen,
    )
    .ok("incident");
    let newer = w.assert_one_live_token_each();
    for (t, d) in newer.iter().zip(&new) {
        assert_ne!(t, d);
        assert_eq!(w.v.whoami(d), None, "the exposed token is refused");
        assert_eq!(npm_whoami(&w.v.url(), d, w.ws.path()), None);
    }
    // The exposed token was deleted before anything else of its credential.
    let events = w.ws.audit_events(None, &mut seen);
    let inc: Vec<serde_json::Value> = events
        .into_iter()
        .filter(|e| e["reason"] == "INC-NPM")
        .collect();
    let del = crate::harness::position(&inc, "step_succeeded", "npm-publish/delete-exposed");
    let mint = crate::harness::position(&inc, "step_started", "npm-publish/create");
    assert!(del < mint, "revoke before mint in an incident");

    w.ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    let secrets: Vec<&str> = old
        .iter()
        .chain(&new)
        .chain(&newer)
        .map(String::as_str)
        .chain([PASSWORD])
        .collect();
    w.ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_faults_still_leave_one_live_token_each() {
    let w = World::start(&[
        ("npm-a", "fa", "npm_granular_token"),
        ("npm-b", "fb", "npm_granular_token"),
        ("npm-c", "fc", "npm_granular_token"),
        ("npm-d", "fd", "npm_classic_token"),
    ]);
    let proxy = FaultProxy::start(w.v.port(), 0.2, 0xFA17);
    w.write_inventory(&proxy.url());
    let old: Vec<String> = w.creds.iter().map(|(id, _, _)| w.token(id)).collect();
    let env = env();
    let mut seen = String::new();
    w.ws.rekey_seen(
        &[
            "run",
            "--mode",
            "drill",
            "--yes",
            "--reason",
            "FAULTS",
            "--retry-budget",
            "5m",
        ],
        &env,
        &mut seen,
    )
    .ok("drill with 20 % faults");
    let new = w.assert_one_live_token_each();
    for o in &old {
        assert_eq!(w.v.whoami(o), None);
    }
    assert!(
        proxy.faults() >= 3,
        "faults were injected: {} of {}",
        proxy.faults(),
        proxy.requests()
    );
    let secrets: Vec<&str> = old
        .iter()
        .chain(&new)
        .map(String::as_str)
        .chain([PASSWORD])
        .collect();
    w.ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_crash_at_every_point_then_resume_leaves_one_live_token() {
    let w = World::start(&[("npm-crash", "crasher", "npm_granular_token")]);
    let env = env();
    let mut seen = String::new();
    let mut secrets = vec![w.token("npm-crash")];
    let mut point = 0u32;
    loop {
        point += 1;
        let at = point.to_string();
        let reason = format!("CRASH-{point}");
        let mut crashing = env.clone();
        crashing.push(("REKEY_SIM_CRASH_AT", &at));
        let old = w.token("npm-crash");
        let r = w.ws.rekey_seen(
            &[
                "run",
                "--mode",
                "drill",
                "--yes",
                "--concurrency",
                "1",
                "--reason",
                &reason,
            ],
            &crashing,
            &mut seen,
        );
        if r.code == Some(0) {
            secrets.extend(w.assert_one_live_token_each());
            break;
        }
        assert_eq!(
            r.code, None,
            "crash point {point}: expected an abort\n{}",
            r.stderr
        );
        let id = w.ws.run_ids(&env)[0].clone();
        w.ws.rekey_seen(&["resume", &id], &env, &mut seen)
            .ok(&format!("resume after crash point {point}"));
        let live = w.assert_one_live_token_each();
        assert_eq!(
            w.v.whoami(&old),
            None,
            "crash point {point}: the old token is refused"
        );
        secrets.extend(live);
        w.write_inventory(&w.v.url());
    }
    assert!(point > 12, "only {point} crash points were reached");
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .chain([PASSWORD])
        .collect();
    w.ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_otp_pauses_the_run_and_is_never_kept() {
    let fake = NpmFake::start().await;
    fake.add_user("otpuser", PASSWORD, true);
    let (key, old) = fake.add_token("otpuser");
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(ws.path().join("npm-otp.env"), format!("NPM_TOKEN={old}\n")).unwrap();
    std::fs::write(
        ws.path().join("inventory/npm.yaml"),
        inventory(
            &fake.url(),
            ws.path(),
            &[(
                "npm-otp".into(),
                "otpuser".into(),
                "npm_granular_token",
                key,
            )],
        ),
    )
    .unwrap();
    let env = env();
    let mut seen = String::new();
    let r = ws.rekey_seen(
        &["run", "--mode", "drill", "--yes", "--reason", "OTP"],
        &env,
        &mut seen,
    );
    assert_eq!(
        r.code,
        Some(3),
        "paused for the OTP\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("one-time password"),
        "the operator is told what is asked:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        fake.tokens("otpuser").len(),
        1,
        "nothing minted without the OTP"
    );
    let id = ws.run_ids(&env)[0].clone();
    let otp_file = ws.path().join("otp.txt");
    std::fs::write(&otp_file, format!("{FAKE_OTP}\n")).unwrap();
    let answer = |step: &str| format!("{step}={}", otp_file.display());
    // The mint goes on with the OTP; the delete of the old token asks again.
    let r = ws.rekey_seen(
        &["resume", &id, "--input", &answer("npm-otp/create")],
        &env,
        &mut seen,
    );
    assert_eq!(
        r.code,
        Some(3),
        "paused again for the delete\n{}\n{}",
        r.stdout,
        r.stderr
    );
    let new = env_file_value(&ws.path().join("npm-otp.env"), "NPM_TOKEN");
    assert_eq!(fake.whoami(&new).as_deref(), Some("otpuser"));
    assert_eq!(
        fake.whoami(&old).as_deref(),
        Some("otpuser"),
        "not yet deleted"
    );
    ws.rekey_seen(
        &["resume", &id, "--input", &answer("npm-otp/delete-old")],
        &env,
        &mut seen,
    )
    .ok("resume with the OTP for the delete");
    assert_eq!(fake.whoami(&old), None, "the old token is deleted");
    assert_eq!(fake.tokens("otpuser").len(), 1);
    ws.assert_no_secrets(&seen, &[FAKE_OTP, PASSWORD, &old, &new]);
}

/// Throughput through the binary: `REKEY_NPM_BENCH_N` tokens (default 50) on Verdaccio, one
/// account each, rotated by one `rekey run --mode drill`, with the budget lifted (a private
/// registry's setting). Prints tokens per minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_tokens_per_minute() {
    let n: usize = std::env::var("REKEY_NPM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let names: Vec<(String, String)> = (0..n)
        .map(|i| (format!("npm-{i}"), format!("user{i}")))
        .collect();
    let creds: Vec<(&str, &str, &'static str)> = names
        .iter()
        .map(|(i, u)| (i.as_str(), u.as_str(), "npm_granular_token"))
        .collect();
    let w = World::start(&creds);
    // `REKEY_NPM_BENCH_NPM_BUDGET=1`: at the budget kept for npm's public registry.
    let at_npm_budget = std::env::var_os("REKEY_NPM_BENCH_NPM_BUDGET").is_some();
    let env: Vec<(&str, &str)> = env()
        .into_iter()
        .filter(|(k, _)| !(at_npm_budget && k.starts_with("REKEY_NPM_")))
        .collect();
    let mut seen = String::new();
    let started = Instant::now();
    w.ws.rekey_seen(
        &["run", "--mode", "drill", "--yes", "--reason", "BENCH"],
        &env,
        &mut seen,
    )
    .ok("drill");
    let secs = started.elapsed().as_secs_f64();
    w.assert_one_live_token_each();
    eprintln!(
        "npm on Verdaccio through the binary{}: {n} tokens in {secs:.1} s = {:.0} tokens/min",
        if at_npm_budget {
            " at npm's budget"
        } else {
            ""
        },
        f64::from(u32::try_from(n).unwrap()) * 60.0 / secs
    );
}

/// The bundled example inventory's npm credentials (`npm-publish`, a granular token delivered
/// to a GitHub Actions environment secret; `npm-legacy-laptop`, a classic token in an env
/// file), both of the account `acme-publisher`, run for real: the registry is a Verdaccio, the
/// Actions secret the GitHub fake (which decrypts what it gets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_bundled_example_runs_against_verdaccio() {
    const WRITER: &str = "ghp_RekeyNpmExampleWriter000000000000000";
    let v = Verdaccio::start();
    v.add_user("acme-publisher", PASSWORD);
    let (k1, old_publish) = v.create_token("acme-publisher", PASSWORD);
    let (k2, old_legacy) = v.create_token("acme-publisher", PASSWORD);
    let fake = rekey_testkit::GithubFake::start().await;
    fake.add_repo("acme/packages");
    fake.add_environment("acme/packages", "release");
    fake.add_writer(WRITER, "acme-automation");
    let ws = Workspace::example();
    let legacy_env = ws.path().join("npmrc.env");
    std::fs::write(&legacy_env, format!("NPM_TOKEN={old_legacy}\n")).unwrap();
    let path = ws.path().join("inventory/credentials.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "token_key: a1b2c3d4e5f6",
        "token_key: 9f8e7d6c5b4a",
        "/home/alice/.npmrc.env",
    ] {
        assert!(text.contains(needle), "the example inventory has {needle}");
    }
    let text = text
        .replace(
            "token_key: a1b2c3d4e5f6",
            &format!("token_key: {k1}\n    registry: {}", v.url()),
        )
        .replace(
            "token_key: 9f8e7d6c5b4a",
            &format!("token_key: {k2}\n    registry: {}", v.url()),
        )
        .replace("/home/alice/.npmrc.env", &legacy_env.display().to_string());
    std::fs::write(&path, text).unwrap();
    let api = fake.api_url();
    let env = [
        ("NPM_PUBLISHER_PASSWORD", PASSWORD),
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_TOKEN", WRITER),
    ];
    let mut seen = String::new();
    let sel = [
        "--credential",
        "npm-publish",
        "--credential",
        "npm-legacy-laptop",
    ];
    let mut args = vec!["run", "--mode", "drill", "--yes", "--reason", "EXAMPLE"];
    args.extend(sel);
    ws.rekey_seen(&args, &env, &mut seen)
        .ok("drill of the example's npm credentials");
    let published = fake
        .secret("env:acme/packages/release", "NPM_TOKEN")
        .expect("the Actions secret was written");
    let legacy = env_file_value(&legacy_env, "NPM_TOKEN");
    for (what, new, old) in [
        ("npm-publish", &published, &old_publish),
        ("npm-legacy-laptop", &legacy, &old_legacy),
    ] {
        assert_eq!(
            v.whoami(new).as_deref(),
            Some("acme-publisher"),
            "{what}: the new token works"
        );
        assert_eq!(v.whoami(old), None, "{what}: the old token is refused");
        assert_eq!(
            npm_whoami(&v.url(), new, ws.path()).as_deref(),
            Some("acme-publisher")
        );
    }
    assert_ne!(published, legacy);
    assert_eq!(
        v.token_keys("acme-publisher", PASSWORD).len(),
        2,
        "two tokens, the new ones"
    );
    ws.assert_no_secrets(
        &seen,
        &[
            &published,
            &legacy,
            &old_publish,
            &old_legacy,
            PASSWORD,
            WRITER,
        ],
    );
}

/// On a terminal the OTP is asked for at once, at a hidden prompt (once for the mint, once for
/// the delete), and never echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_otp_hidden_prompt_on_a_terminal() {
    use std::process::Stdio;
    use std::time::Duration;
    let fake = NpmFake::start().await;
    fake.add_user("ttyuser", PASSWORD, true);
    let (key, old) = fake.add_token("ttyuser");
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(ws.path().join("npm-tty.env"), format!("NPM_TOKEN={old}\n")).unwrap();
    std::fs::write(
        ws.path().join("inventory/npm.yaml"),
        inventory(
            &fake.url(),
            ws.path(),
            &[(
                "npm-tty".into(),
                "ttyuser".into(),
                "npm_granular_token",
                key,
            )],
        ),
    )
    .unwrap();
    let command = format!("{} run --mode drill --yes", crate::harness::REKEY);
    let mut child = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(ws.path())
        .env_remove("REKEY_DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("NPM_E2E_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs the binary on a pty");
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = printed.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let count = |text: &str| {
        String::from_utf8_lossy(&printed.lock().unwrap())
            .matches(text)
            .count()
    };
    let mut stdin = child.stdin.take().unwrap();
    for n in 1..=2 {
        rekey_testkit::poll(Duration::from_mins(1), "the hidden OTP prompt", || {
            (count("answer (hidden") >= n).then_some(())
        });
        std::io::Write::write_all(&mut stdin, format!("{FAKE_OTP}\n").as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let printed = String::from_utf8_lossy(&printed.lock().unwrap()).into_owned();
    assert!(status.success(), "{printed}");
    assert!(
        printed.contains("one-time password"),
        "the question is shown: {printed}"
    );
    assert!(!printed.contains(FAKE_OTP), "the OTP was echoed: {printed}");
    let new = env_file_value(&ws.path().join("npm-tty.env"), "NPM_TOKEN");
    assert_eq!(fake.whoami(&new).as_deref(), Some("ttyuser"));
    assert_eq!(fake.whoami(&old), None);
    ws.assert_no_secrets(&printed, &[FAKE_OTP, PASSWORD, &old, &new]);
}

/// SIGKILL at fixed instants of a drill of six tokens (mid-request included), then resume:
/// every credential ends with exactly one live token, the delivered one, and the old is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_sigkill_then_resume_leaves_one_live_token_each() {
    let names: Vec<(String, String)> = (0..6)
        .map(|i| (format!("npm-k{i}"), format!("killed{i}")))
        .collect();
    let creds: Vec<(&str, &str, &'static str)> = names
        .iter()
        .map(|(i, u)| (i.as_str(), u.as_str(), "npm_granular_token"))
        .collect();
    let w = World::start(&creds);
    let env = env();
    let mut seen = String::new();
    let mut secrets = Vec::new();
    let mut interrupted = 0;
    let mut resumed = 0;
    // Kill instants count from when the run exists (its row is written before any step), so a
    // fast machine does not kill the process before it started the run.
    for (round, delay) in [0u64, 30, 80, 150, 250].into_iter().enumerate() {
        let old: Vec<String> = w.creds.iter().map(|(id, _, _)| w.token(id)).collect();
        secrets.extend(old.iter().cloned());
        let reason = format!("KILL-{round}");
        let runs_before = w.ws.run_ids(&env).len();
        let mut child =
            w.ws.command(
                &["run", "--mode", "drill", "--yes", "--reason", &reason],
                &env,
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let waiting = std::time::Instant::now();
        while w.ws.run_ids(&env).len() == runs_before {
            assert!(
                waiting.elapsed() < std::time::Duration::from_secs(20),
                "round {round}: the run never started"
            );
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.code().is_none() {
            interrupted += 1;
        }
        if let Some(id) = w.ws.run_ids(&env).first().cloned() {
            let r = w.ws.rekey_seen(&["status", &id, "--json"], &env, &mut seen);
            if !r.stdout.contains("\"succeeded\"") || status.code().is_none() {
                let r = w.ws.rekey_seen(&["resume", &id], &env, &mut seen);
                // A run the kill let finish (its verdict written just before the kill) is
                // refused (exit 2): nothing to do.
                if r.code == Some(0) {
                    resumed += 1;
                }
                assert!(
                    r.code == Some(0)
                        || (r.code == Some(2)
                            && (r.stderr.contains("finished")
                                || r.stderr.contains("nothing to resume"))),
                    "round {round}: resume\n{}\n{}",
                    r.stdout,
                    r.stderr
                );
            }
        }
        let live = w.assert_one_live_token_each();
        for ((t, o), (id, _, _)) in live.iter().zip(&old).zip(&w.creds) {
            if t != o {
                assert_eq!(
                    w.v.whoami(o),
                    None,
                    "round {round}, {id}: the old token is refused"
                );
            }
        }
        secrets.extend(live);
        w.write_inventory(&w.v.url());
    }
    assert!(
        interrupted >= 2 && resumed >= 2,
        "only {resumed} of {interrupted} killed rounds were resumed mid-run"
    );
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .chain([PASSWORD])
        .collect();
    w.ws.assert_no_secrets(&seen, &secrets);
}
