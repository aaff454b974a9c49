//! The real `rekey` binary against the in-process Hugging Face Hub fake
//! (`rekey_testkit::HuggingfaceFake`), the GitHub fake (Actions secrets it decrypts) and moto
//! (Secrets Manager, the readable consumer whose version the capture of the old token pins):
//! the bundled example's token in a drill and an incident, the new token given through
//! `resume --input`; a token of another account or with a weaker role refused before anything
//! is revoked or delivered; 500 exposed tokens revoked in one request; 20 % injected faults; a
//! crash at every step boundary, then resume: exactly one live token.

use std::fmt::Write as _;
use std::path::PathBuf;

use rekey_testkit::{AccessKey, GithubFake, HuggingfaceFake, Moto};

use crate::harness::{Workspace, env_file_value, position};

const WRITER: &str = "ghp_RekeyWriterTokenHF00000000000000000";

struct Hf {
    moto: Moto,
    admin: AccessKey,
    sm: aws_sdk_secretsmanager::Client,
    gh: GithubFake,
    hub: HuggingfaceFake,
    ws: Workspace,
    /// The Secrets Manager secret, the Actions secret (repo, name) and, for the test's own
    /// inventory, the env file.
    secret_id: &'static str,
    actions: (&'static str, &'static str),
    env_file: Option<PathBuf>,
}

/// The test's own inventory: an organisation token (`hf_user` the organisation, the token a
/// member's) with role write, delivered to Secrets Manager, an env file and an Actions secret.
fn own_inventory(env_file: &std::path::Path) -> String {
    format!(
        "credentials:
  - id: hf-gw
    kind: huggingface_token
    owner: team-ml
    hf_user: acme-ml
    token_name: gateway
    role: write
    delivered_to:
      - aws_secrets_manager: {{ secret_id: ml/hf-token, field: token }}
      - env_file: {{ path: {}, key: HF_TOKEN }}
      - github_actions_secret: {{ repo: acme/ml-gateway, name: HF_TOKEN }}
",
        env_file.display()
    )
}

async fn setup(old: &str, example: bool) -> Hf {
    let moto = Moto::start();
    let admin = moto.setup(&[]).await.admin;
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&admin.0, &admin.1));
    let gh = GithubFake::start().await;
    gh.add_repo("acme/ml-gateway");
    gh.add_writer(WRITER, "acme-automation");
    let hub = HuggingfaceFake::start().await;
    hub.add_user("ml-bot", &["acme-ml"]);
    hub.add_token(old, "ml-bot", "write");
    let (ws, secret_id, env_file) = if example {
        (Workspace::example(), "prod/ml-gateway/hf-token", None)
    } else {
        let ws = Workspace::empty();
        std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
        let env = ws.path().join("ml.env");
        std::fs::write(&env, format!("HF_TOKEN={old}\nOTHER=1\n")).unwrap();
        std::fs::write(ws.path().join("inventory/ml.yaml"), own_inventory(&env)).unwrap();
        (ws, "ml/hf-token", Some(env))
    };
    sm.create_secret()
        .name(secret_id)
        .secret_string(old)
        .send()
        .await
        .unwrap();
    Hf {
        moto,
        admin,
        sm,
        gh,
        hub,
        ws,
        secret_id,
        actions: ("repo:acme/ml-gateway", "HF_TOKEN"),
        env_file,
    }
}

impl Hf {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self
            .moto
            .client_env(&self.admin, &self.ws.path().join("no-aws-config"));
        env.push(("GITHUB_API_URL", self.gh.api_url()));
        env.push(("GITHUB_TOKEN", WRITER.to_owned()));
        env.push(("HF_ENDPOINT", self.hub.endpoint()));
        env
    }

    /// `--input STEP=FILE` with `token` in the file.
    fn answer(&self, step: &str, token: &str) -> String {
        let file = self.ws.path().join("answer.txt");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        format!("{step}={}", file.display())
    }

    async fn current(&self) -> String {
        self.sm
            .get_secret_value()
            .secret_id(self.secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned()
    }

    /// Every consumer holds `token`, and it is the only live token of the account.
    async fn assert_rotated(&self, old: &str, new: &str) {
        assert!(!self.hub.is_live(old), "the old token still works");
        assert!(self.hub.is_revoked(old));
        assert_eq!(
            self.hub.live_tokens_of("ml-bot"),
            vec![new.to_owned()],
            "exactly one live token"
        );
        assert_eq!(self.current().await, new, "Secrets Manager");
        assert_eq!(
            self.gh.secret(self.actions.0, self.actions.1).as_deref(),
            Some(new),
            "Actions secret"
        );
        if let Some(f) = &self.env_file {
            assert_eq!(env_file_value(f, "HF_TOKEN"), new, "env file");
            assert_eq!(env_file_value(f, "OTHER"), "1", "the rest of the env file");
        }
        assert_eq!(
            self.hub.authenticated_revokes(),
            0,
            "revokes unauthenticated"
        );
    }

    /// Nothing was revoked or delivered: the old token works and every consumer still has it.
    async fn assert_untouched(&self, old: &str) {
        assert!(self.hub.is_live(old), "the old token was revoked");
        assert!(self.hub.revoke_calls().is_empty(), "a revoke was sent");
        assert_eq!(self.current().await, old, "Secrets Manager changed");
        assert!(
            self.gh.secrets().is_empty(),
            "an Actions secret was written"
        );
        if let Some(f) = &self.env_file {
            assert_eq!(env_file_value(f, "HF_TOKEN"), old, "the env file changed");
        }
    }
}

fn strs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

const OLD: &str = "hf_ExampleOldGatewayToken000000000000";
const NEW: &str = "hf_ExampleNewGatewayToken000000000000";

/// The bundled example's Hugging Face token (`hf-ml-read`: Secrets Manager and an Actions
/// secret) in a drill: it pauses for the new token, which `resume --input` gives; verify (the
/// account's organisation, the role) comes before any delivery, the revoke last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_example_drill_takes_the_new_token_through_resume_input() {
    let t = setup(OLD, true).await;
    let mut env_owned = t.env();
    // Every log line too (HTTP clients included) is searched for the tokens.
    env_owned.push(("REKEY_LOG", "trace".to_owned()));
    let env = strs(&env_owned);
    let mut seen = String::new();
    let args = [
        "run",
        "--yes",
        "--credential",
        "hf-ml-read",
        "--reason",
        "HF-DRILL",
    ];
    let r = t.ws.rekey_seen(&args, &env, &mut seen);
    assert_eq!(r.code, Some(3), "pauses for the new token\n{}", r.stderr);
    t.assert_untouched(OLD).await;
    // The person creates the token in the Hub's UI.
    t.hub.add_token(NEW, "ml-bot", "read");
    let id = t.ws.run_ids(&env)[0].clone();
    let input = t.answer("hf-ml-read/create", NEW);
    t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume --input");
    t.assert_rotated(OLD, NEW).await;
    assert_eq!(t.hub.revoke_calls(), vec![1], "one revoke request");
    let events = t.ws.audit_events(None, &mut seen);
    let verified = position(&events, "step_succeeded", "hf-ml-read/verify");
    let delivered = position(
        &events,
        "step_started",
        "hf-ml-read/deliver[secretsmanager:prod/ml-gateway/hf-token]",
    );
    let revoked = position(&events, "step_started", "hf-ml-read/revoke-old");
    assert!(verified < delivered, "verify before any delivery");
    assert!(verified < revoked, "verify before revoke");
    t.ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    assert!(
        seen.contains("POST /api/credentials/revoke"),
        "the trace log has the Hub's requests"
    );
    t.ws.assert_no_secrets(&seen, &[OLD, NEW, WRITER]);
}

/// The bundled example in an incident: the old token is revoked before the new one exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_example_incident_revokes_first() {
    let t = setup(OLD, true).await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let args = [
        "run",
        "--yes",
        "--mode",
        "incident",
        "--credential",
        "hf-ml-read",
        "--reason",
        "HF-INC",
    ];
    let r = t.ws.rekey_seen(&args, &env, &mut seen);
    assert_eq!(r.code, Some(3), "pauses for the new token\n{}", r.stderr);
    assert!(!t.hub.is_live(OLD), "revoked before the new token exists");
    assert_eq!(t.hub.revoke_calls(), vec![1]);
    assert!(t.gh.secrets().is_empty(), "nothing delivered yet");
    assert_eq!(t.current().await, OLD);
    t.hub.add_token(NEW, "ml-bot", "write");
    let id = t.ws.run_ids(&env)[0].clone();
    let input = t.answer("hf-ml-read/create", NEW);
    t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume --input");
    t.assert_rotated(OLD, NEW).await;
    assert_eq!(t.hub.revoke_calls(), vec![1], "one revoke request");
    t.ws.assert_no_secrets(&seen, &[OLD, NEW, WRITER]);
}

/// A token of another account, then one with a weaker role than the inventory's `write`: each
/// is refused by verify, before anything is delivered or revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_wrong_account_or_weaker_role_is_refused_before_revoke() {
    const MALLORY: &str = "hf_MalloryWriteTokenE2E0000000000000";
    const WEAK: &str = "hf_MlBotReadTokenE2E00000000000000000";
    let t = setup(OLD, false).await;
    t.hub.add_user("mallory", &["evil"]);
    t.hub.add_token(MALLORY, "mallory", "write");
    t.hub.add_token(WEAK, "ml-bot", "read");
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    for (token, why) in [(MALLORY, "mallory"), (WEAK, "role read")] {
        let r =
            t.ws.rekey_seen(&["run", "--yes", "--reason", "HF-WRONG"], &env, &mut seen);
        assert_eq!(r.code, Some(3), "pauses for the new token\n{}", r.stderr);
        let id = t.ws.run_ids(&env)[0].clone();
        let input = t.answer("hf-gw/create", token);
        let r =
            t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen);
        assert_eq!(r.code, Some(1), "refused\n{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(why) || r.stdout.contains(why),
            "the refusal names {why}\n{}\n{}",
            r.stdout,
            r.stderr
        );
        t.assert_untouched(OLD).await;
        assert!(t.hub.is_live(token), "rekey revokes nothing it was given");
    }
    t.ws.assert_no_secrets(&seen, &[OLD, MALLORY, WEAK, WRITER]);
}

/// 500 exposed tokens, each captured from its env file: the incident revokes them in one
/// request before it pauses for the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_500_exposed_tokens_are_revoked_in_one_request() {
    let hub = HuggingfaceFake::start().await;
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    let n = 500;
    let token = |i: usize| format!("hf_Exposed{i:04}E2EToken00000000000000");
    let env_path = ws.path().join("tokens.env");
    let mut env_text = String::new();
    let mut yaml = String::from("credentials:\n");
    for i in 0..n {
        hub.add_token(&token(i), &format!("u{i}"), "read");
        let _ = writeln!(env_text, "T{i}={}", token(i));
        let _ = writeln!(
            yaml,
            "  - id: t{i:03}\n    kind: huggingface_token\n    owner: x\n    hf_user: u{i}\n    delivered_to:\n      - env_file: {{ path: {}, key: T{i} }}",
            env_path.display()
        );
    }
    std::fs::write(&env_path, env_text).unwrap();
    std::fs::write(ws.path().join("inventory/many.yaml"), yaml).unwrap();
    let endpoint = hub.endpoint();
    let env = [("HF_ENDPOINT", endpoint.as_str())];
    let mut seen = String::new();
    let r = ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "HF-500"],
        &env,
        &mut seen,
    );
    assert_eq!(r.code, Some(3), "pauses for the new tokens\n{}", r.stderr);
    assert_eq!(hub.revoke_calls(), vec![n], "one request for all 500");
    assert!((0..n).all(|i| !hub.is_live(&token(i))), "every token died");
    let secrets: Vec<String> = (0..n).map(token).collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    ws.assert_no_secrets(&seen, &secrets);
}

/// 20 % of the Hub's and GitHub's answers are 429s, 502s (some after the effect) or reset
/// connections: the drill still ends with one live token, delivered everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_faults_still_converge() {
    let t = setup(OLD, false).await;
    t.hub.set_faults(0.2, 123);
    t.gh.set_faults(0.2, 9);
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let r =
        t.ws.rekey_seen(&["run", "--yes", "--reason", "HF-FAULTS"], &env, &mut seen);
    assert_eq!(r.code, Some(3), "pauses for the new token\n{}", r.stderr);
    t.hub.add_token(NEW, "ml-bot", "write");
    let id = t.ws.run_ids(&env)[0].clone();
    let input = t.answer("hf-gw/create", NEW);
    t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume with 20% faults");
    t.assert_rotated(OLD, NEW).await;
    assert!(
        t.hub.faults_injected() > 0,
        "faults were injected into the Hub's answers"
    );
    t.ws.assert_no_secrets(&seen, &[OLD, NEW, WRITER]);
}

/// The process aborted at every crash point in turn (`REKEY_SIM_CRASH_AT`), in the run up to
/// the pause and then in the resume that gives the new token; after each, resume converges:
/// exactly one live token, every consumer holds it. Each rotation starts from the last one's
/// token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_crash_at_every_point_then_resume_leaves_one_live_token() {
    let first = "hf_CrashToken0000E2E0000000000000000".to_owned();
    let t = setup(&first, false).await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let mut tokens = vec![first];
    // Crash points of the run before it pauses, once known.
    let mut before_pause: Option<u32> = None;
    let mut point = 0u32;
    loop {
        point += 1;
        let old = tokens.last().unwrap().clone();
        let new = format!("hf_CrashToken{point:04}E2E0000000000000000");
        t.hub.add_token(&new, "ml-bot", "write");
        tokens.push(new.clone());
        let input = t.answer("hf-gw/create", &new);
        let reason = format!("CRASH-{point}");
        let at = point.to_string();
        let mut crashing = env.clone();
        let in_run = before_pause.is_none();
        if in_run {
            crashing.push(("REKEY_SIM_CRASH_AT", &at));
        }
        let r = t.ws.rekey_seen(
            &["run", "--yes", "--concurrency", "1", "--reason", &reason],
            &crashing,
            &mut seen,
        );
        let mut crashed = r.code.is_none();
        if in_run && r.code == Some(3) {
            before_pause = Some(point - 1);
        } else if in_run {
            assert!(
                crashed,
                "crash point {point}: expected an abort\n{}",
                r.stderr
            );
        } else {
            assert_eq!(r.code, Some(3), "pauses\n{}", r.stderr);
        }
        let id = t.ws.run_ids(&env)[0].clone();
        let mut finished = false;
        if !crashed {
            // Crash in the resume that gives the new token.
            let q = (point - before_pause.unwrap()).to_string();
            let mut crashing = env.clone();
            crashing.push(("REKEY_SIM_CRASH_AT", &q));
            let r =
                t.ws.rekey_seen(&["resume", &id, "--input", &input], &crashing, &mut seen);
            crashed = r.code.is_none();
            if !crashed {
                r.ok("resume without reaching the crash point");
                finished = true;
            }
        }
        // Resume (the operator gives the same token again if its step asks again).
        for attempt in 0.. {
            if t.hub.live_tokens_of("ml-bot") == vec![new.clone()]
                && t.current().await == new
                && t.ws.run_ids(&env).len() == usize::try_from(point).unwrap()
                && status_of(&t.ws, &env, &id) == "succeeded"
            {
                break;
            }
            assert!(attempt < 4, "crash point {point}: resume does not converge");
            let r =
                t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen);
            assert!(
                matches!(r.code, Some(0 | 3)),
                "crash point {point}: resume failed\n{}\n{}",
                r.stdout,
                r.stderr
            );
        }
        t.assert_rotated(&old, &new).await;
        if finished {
            break;
        }
    }
    let pre = before_pause.expect("the run paused for the new token");
    eprintln!(
        "crash points: {pre} before the pause, {} after",
        point - 1 - pre
    );
    assert!(
        pre >= 2 && point - pre > 10,
        "only {pre} crash points before the pause and {} after were reached",
        point - 1 - pre
    );
    let secrets: Vec<&str> = tokens.iter().map(String::as_str).chain([WRITER]).collect();
    t.ws.assert_no_secrets(&seen, &secrets);
}

/// A run's status from `rekey status --json`.
fn status_of(ws: &Workspace, env: &[(&str, &str)], id: &str) -> String {
    let r = ws.rekey(&["status", "--json"], env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}
