//! The real `rekey` binary against real peers on 127.0.0.1: a moto server (IAM, STS, Secrets
//! Manager) and a throwaway `PostgreSQL` cluster, both from `rekey_testkit`. Install them with
//! `./scripts/peers.sh`; when they are missing these tests fail (they never pass silently).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use rekey_testkit::{ADMIN_PASSWORD, AccessKey, Moto, OLD_APP_PASSWORD, PgCluster, poll};

use crate::harness::{Workspace, env_file_value, position};

// ---------------------------------------------------------------------------------------------
// moto

const USERS: [(&str, &str); 2] = [("aws-deploy-a", "deploy-a"), ("aws-deploy-b", "deploy-b")];

fn secret_id(user: &str) -> String {
    format!("prod/{user}/aws")
}

/// A moto server with signature checks on, an admin user (inline `*` policy), the users
/// [`USERS`] with one (old) key each and a secret each holding it, and a workspace whose
/// inventory delivers each key to its secret and to an env file.
pub(crate) struct Aws {
    pub(crate) moto: Moto,
    admin: AccessKey,
    iam: aws_sdk_iam::Client,
    sm: aws_sdk_secretsmanager::Client,
    /// `(credential id, IAM user)` in the inventory.
    users: Vec<(&'static str, &'static str)>,
    /// user → its old key.
    old: BTreeMap<&'static str, AccessKey>,
    /// Whether the inventory names the key to replace (`access_key_id`); without it, a
    /// rotation replaces every key of the user but the new one.
    with_key_id: bool,
    pub(crate) ws: Workspace,
}

async fn setup_aws() -> Aws {
    setup_aws_with(&USERS).await
}

pub(crate) async fn setup_aws_with(users: &[(&'static str, &'static str)]) -> Aws {
    let moto = Moto::start();
    let names: Vec<&str> = users.iter().map(|&(_, user)| user).collect();
    let accounts = moto.setup(&names).await;
    let admin = accounts.admin;
    let old: BTreeMap<&'static str, AccessKey> = users
        .iter()
        .map(|&(_, user)| (user, accounts.keys[user].clone()))
        .collect();

    let config = moto.sdk_config(&admin.0, &admin.1);
    let iam = aws_sdk_iam::Client::new(&config);
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    for &(_, user) in users {
        let (id, secret) = &old[user];
        sm.create_secret()
            .name(secret_id(user))
            .secret_string(
                serde_json::json!({ "AccessKeyId": id, "SecretAccessKey": secret }).to_string(),
            )
            .send()
            .await
            .unwrap();
    }

    let aws = Aws {
        moto,
        admin,
        iam,
        sm,
        users: users.to_vec(),
        old,
        with_key_id: true,
        ws: Workspace::empty(),
    };
    aws.write_inventory();
    aws
}

impl Aws {
    /// After a rotation the new key is the one the next rotation replaces, and the inventory
    /// names it (as an operator keeps it current).
    async fn adopt_current(&mut self) {
        for (_, user) in self.users.clone() {
            let current = self.current(user).await;
            let id = current["AccessKeyId"].as_str().unwrap().to_owned();
            let secret = current["SecretAccessKey"].as_str().unwrap().to_owned();
            self.old.insert(user, (id, secret));
        }
        self.write_inventory();
    }

    /// The inventory: each user's key (the old one, by id) delivered to its secret and to an
    /// env file.
    fn write_inventory(&self) {
        let ws = &self.ws;
        std::fs::create_dir_all(ws.path().join("etc")).unwrap();
        let mut inv = String::from(
            "hosts:\n  - id: ci\n    kind: ci_runner\nservices:\n  - id: deploy\n    owner: team-platform\n    built_on: [ci]\ncredentials:\n",
        );
        for &(id, user) in &self.users {
            // The consumer exists before the run (a missing one stops it), with a line of its
            // own that must survive; both halves of the key go into it, concurrently.
            let env = ws.path().join("etc").join(format!("{user}.env"));
            std::fs::write(&env, "REGION=eu-west-1\n").unwrap();
            let _ = write!(
                inv,
                "  - id: {id}
    kind: aws_iam_access_key
    owner: team-platform
    used_by: [deploy]
    present_on: [ci]
    user_name: {user}{key}
    delivered_to:
      - aws_secrets_manager: {{ secret_id: {secret} }}
      - env_file: {{ path: {env}, key: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }}
      - env_file: {{ path: {env}, key: AWS_ACCESS_KEY_ID, field: AccessKeyId }}
",
                key = if self.with_key_id {
                    format!("\n    access_key_id: {}", self.old[user].0)
                } else {
                    String::new()
                },
                secret = secret_id(user),
                env = env.display(),
            );
        }
        std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
        std::fs::write(ws.path().join("inventory/acme.yaml"), inv).unwrap();
    }
}

impl Aws {
    /// The environment `rekey` gets: the admin key and the moto endpoint, nothing from the
    /// machine's AWS configuration.
    fn env(&self) -> Vec<(&'static str, String)> {
        self.moto
            .client_env(&self.admin, &self.ws.path().join("no-aws-config"))
    }

    async fn keys(&self, user: &str) -> BTreeMap<String, String> {
        rekey_testkit::access_keys(&self.iam, user).await
    }

    async fn current(&self, user: &str) -> serde_json::Value {
        let text = self
            .sm
            .get_secret_value()
            .secret_id(secret_id(user))
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        serde_json::from_str(&text).unwrap()
    }

    /// STS `GetCallerIdentity` with a key: the caller's ARN, or the error with its code.
    async fn whoami(&self, id: &str, secret: &str) -> Result<String, String> {
        let sts = aws_sdk_sts::Client::new(&self.moto.sdk_config(id, secret));
        sts.get_caller_identity()
            .send()
            .await
            .map(|o| o.arn().unwrap_or_default().to_owned())
            .map_err(|e| format!("{}", aws_sdk_sts::error::DisplayErrorContext(e)))
    }

    /// Every user has exactly one key, Active, new; AWSCURRENT and the env file hold it; it
    /// works and the old one does not. Returns the new secret access keys.
    pub(crate) async fn assert_rotated(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        for &(_, user) in &self.users {
            let keys = self.keys(user).await;
            assert_eq!(keys.len(), 1, "{user} has exactly one key: {keys:?}");
            let (new_id, status) = keys.iter().next().unwrap();
            assert_eq!(status, "Active", "{user}: {keys:?}");
            let (old_id, old_secret) = &self.old[user];
            assert_ne!(new_id, old_id, "{user} still has its old key");

            let current = self.current(user).await;
            assert_eq!(
                current["AccessKeyId"],
                new_id.as_str(),
                "{user}: AWSCURRENT"
            );
            let new_secret = current["SecretAccessKey"].as_str().unwrap().to_owned();
            assert_ne!(&new_secret, old_secret);
            let arn = self
                .whoami(new_id, &new_secret)
                .await
                .unwrap_or_else(|e| panic!("{user}: the new key is refused: {e}"));
            assert!(arn.ends_with(&format!(":user/{user}")), "{arn}");
            let err = self
                .whoami(old_id, old_secret)
                .await
                .expect_err("the old key is refused");
            assert!(err.contains("InvalidClientTokenId"), "{user}: {err}");

            let env = self.ws.path().join("etc").join(format!("{user}.env"));
            assert_eq!(
                env_file_value(&env, "AWS_SECRET_ACCESS_KEY"),
                new_secret,
                "{user}: the env file holds the new secret"
            );
            assert_eq!(
                env_file_value(&env, "AWS_ACCESS_KEY_ID"),
                *new_id,
                "{user}: the env file holds the matching key id"
            );
            assert_eq!(env_file_value(&env, "REGION"), "eu-west-1", "{user}");
            secrets.push(new_secret);
        }
        secrets
    }
}

// ---------------------------------------------------------------------------------------------
// AWS tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_drill_end_to_end() {
    let aws = setup_aws().await;
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let ws = &aws.ws;

    ws.rekey_seen(&["validate"], &env, &mut seen).ok("validate");
    let r = ws.rekey_seen(&["run", "--yes", "--reason", "DRILL-1"], &env, &mut seen);
    r.ok("run");
    assert!(r.stdout.contains("succeeded"), "{}", r.stdout);

    let secrets = aws.assert_rotated().await;
    ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    let events = ws.audit_events(None, &mut seen);
    assert!(events.iter().all(|e| e["simulated"] == false));
    for (id, _) in USERS {
        let captured = position(
            &events,
            "step_succeeded",
            &format!("{id}/capture-last-used"),
        );
        let deleted = position(&events, "step_started", &format!("{id}/delete-old"));
        assert!(captured < deleted, "{id}: capture-last-used after delete");
        position(&events, "step_succeeded", &format!("{id}/delete-old"));
    }
    let r = ws.rekey_seen(&["status", "--json"], &env, &mut seen);
    r.ok("status");
    let runs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    ws.rekey_seen(&["audit", "show"], &env, &mut seen);

    // The inventory still names the keys just deleted: the next run stops at its first step,
    // before anything changes, and says what to fix.
    let r = ws.rekey_seen(&["run", "--yes", "--reason", "DRILL-2"], &env, &mut seen);
    assert_ne!(r.code, Some(0), "a stale inventory must not rotate");
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(
        said.contains("has no access key") && said.contains("out of date"),
        "{said}"
    );
    let events = ws.audit_events(None, &mut seen);
    let second: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "step_started" && e["reason"] == "DRILL-2")
        .collect();
    assert!(
        second
            .iter()
            .all(|e| e["step"].as_str().unwrap().ends_with("/capture-last-used")),
        "only the read-only first step ran: {second:?}"
    );
    assert_eq!(aws.assert_rotated().await, secrets, "nothing changed");

    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_incident_revokes_first() {
    let aws = setup_aws().await;
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let ws = &aws.ws;

    let r = ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "INC-1"],
        &env,
        &mut seen,
    );
    r.ok("run --mode incident");

    let events = ws.audit_events(None, &mut seen);
    for (id, _) in USERS {
        let disabled = position(&events, "step_succeeded", &format!("{id}/disable-exposed"));
        let created = position(&events, "step_started", &format!("{id}/create"));
        assert!(
            disabled < created,
            "{id}: the exposed key was not disabled before the new one was created"
        );
    }
    let secrets = aws.assert_rotated().await;
    ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_kill_and_resume() {
    let aws = setup_aws().await;
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let ws = &aws.ws;

    // Kill points, each after the previous: a `create` has started (its key may exist with
    // nobody holding its secret); three more steps have succeeded (twice); a `delete-old` has
    // started. A run that finishes before a kill point is fine.
    let has = |events: &[serde_json::Value], event: &str, suffix: &str| {
        events
            .iter()
            .filter(|e| {
                e["event"] == event && e["step"].as_str().is_some_and(|s| s.ends_with(suffix))
            })
            .count()
    };
    let mut run_id: Option<String> = None;
    let mut kills = 0;
    let mut finished = false;
    for round in 0..4 {
        let before = ws.audit_events(None, &mut seen);
        let succeeded_before = has(&before, "step_succeeded", "");
        let deletes_before = has(&before, "step_started", "/delete-old");
        let mut child = match &run_id {
            None => ws.command(
                &["run", "--yes", "--concurrency", "1", "--reason", "DRILL-3"],
                &env,
            ),
            Some(id) => ws.command(&["resume", id], &env),
        }
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let exited = poll(Duration::from_mins(2), "a kill point", || {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(Some(status));
            }
            let r = ws.rekey(&["audit", "export", "--format", "jsonl"], &env);
            if r.code != Some(0) {
                return None;
            }
            let events: Vec<serde_json::Value> = r
                .stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let reached = match round {
                0 => has(&events, "step_started", "/create") >= 1,
                1 | 2 => has(&events, "step_succeeded", "") >= succeeded_before + 3,
                _ => has(&events, "step_started", "/delete-old") > deletes_before,
            };
            reached.then_some(None)
        });
        if let Some(status) = exited {
            // The run finished before the kill point.
            assert!(status.success(), "round {round}: the run failed: {status}");
            finished = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            finished = true;
            break;
        }
        kills += 1;
        eprintln!("aws_kill_and_resume: killed in round {round}");
        if run_id.is_none() {
            let ids = ws.run_ids(&env);
            assert_eq!(ids.len(), 1, "one run: {ids:?}");
            run_id = Some(ids[0].clone());
        }
    }
    assert!(kills >= 1, "the run was never killed");
    let run_id = run_id.unwrap();
    if !finished {
        let r = ws.rekey_seen(&["resume", &run_id], &env, &mut seen);
        r.ok("the last resume");
    }
    let r = ws.rekey_seen(&["status", &run_id, "--json"], &env, &mut seen);
    r.ok("status");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "succeeded", "{v}");

    let secrets = aws.assert_rotated().await;
    ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    ws.assert_no_secrets(&seen, &secrets);
}

/// The engine aborts (as SIGKILL would) at each of its crash points in turn: after a step's
/// start is recorded, after the provider answered but before the outcome is recorded, after
/// the outcome is recorded. Each crash is a fresh rotation of the same user, resumed to the
/// end; every one must leave one key, the one `AWSCURRENT` and the env file hold, working, and
/// a verifying audit chain. In both modes, with and without `access_key_id` in the inventory
/// (without it, recovery once turned the new key's plain id into a secret, the exception
/// vanished, and a resumed drill deleted every key of the user).
async fn aws_crash_at_every_point(mode: &str, with_key_id: bool) {
    let mut aws = setup_aws_with(&USERS[..1]).await;
    aws.with_key_id = with_key_id;
    aws.write_inventory();
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let mut secrets = Vec::new();
    let mut point = 0u32;
    let label = format!("aws {mode}, access_key_id {with_key_id}");
    loop {
        point += 1;
        let at = point.to_string();
        let reason = format!("CRASH-{point}");
        eprintln!("{label}: crash point {point}");
        let mut crashing = env.clone();
        crashing.push(("REKEY_SIM_CRASH_AT", &at));
        let ws = &aws.ws;
        let r = ws.rekey_seen(
            &[
                "run",
                "--yes",
                "--mode",
                mode,
                "--concurrency",
                "1",
                "--reason",
                &reason,
            ],
            &crashing,
            &mut seen,
        );
        if r.code == Some(0) {
            // Past the last crash point: this run finished on its own.
            secrets.extend(aws.assert_rotated().await);
            break;
        }
        assert_eq!(
            r.code, None,
            "{label}, crash point {point}: expected an abort, got a failure\n{}",
            r.stderr
        );
        let id = ws.run_ids(&env)[0].clone();
        ws.rekey_seen(&["resume", &id], &env, &mut seen)
            .ok(&format!("{label}: resume after crash point {point}"));
        let r = ws.rekey_seen(&["status", &id, "--json"], &env, &mut seen);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            v["status"], "succeeded",
            "{label}, crash point {point}: {v}"
        );
        secrets.extend(aws.assert_rotated().await);
        ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
            .ok("audit verify");
        aws.adopt_current().await;
    }
    eprintln!("{label}: {} crash points", point - 1);
    // 9 steps for one user with two consumers, 3 points each.
    assert!(
        point > 27,
        "{label}: only {point} crash points were reached"
    );
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    aws.ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_drill_crash_at_every_point() {
    aws_crash_at_every_point("drill", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_drill_crash_at_every_point_without_access_key_id() {
    aws_crash_at_every_point("drill", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_incident_crash_at_every_point() {
    aws_crash_at_every_point("incident", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_incident_crash_at_every_point_without_access_key_id() {
    aws_crash_at_every_point("incident", false).await;
}

// ---------------------------------------------------------------------------------------------
// AWS hardening (#9): one user

/// [`setup_aws_with`] for the first user of [`USERS`] (its env file exists: the inventory
/// writer creates it).
async fn setup_aws_one() -> Aws {
    setup_aws_with(&USERS[..1]).await
}

/// The audit events `event` of `step`, as `(credential, detail)`.
fn events_of(events: &[serde_json::Value], event: &str, step: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == event && e["step"] == step)
        .map(|e| {
            (
                e["credential"].as_str().unwrap_or_default().to_owned(),
                e["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// What a step removes beside its own job is in the audit log, by id: the inactive key
/// `free-slot` deletes to make room, the stale `AWSPENDING` a delivery moves aside, the orphan
/// of a create whose outcome was lost in a crash, deleted by reconcile on resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_side_effects_are_audited() {
    let aws = setup_aws_one().await;
    let (cred, user) = USERS[0];
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let ws = &aws.ws;

    let (spare, _) = rekey_testkit::create_key(&aws.iam, user).await;
    aws.iam
        .update_access_key()
        .user_name(user)
        .access_key_id(&spare)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let stale = "11111111-2222-4333-8444-555555555555";
    aws.sm
        .put_secret_value()
        .secret_id(secret_id(user))
        .client_request_token(stale)
        .secret_string(r#"{"AccessKeyId":"STALE","SecretAccessKey":"stale"}"#)
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();

    // Crash point 8: `create`'s call answered, its outcome not recorded (steps in order
    // capture-last-used, free-slot, create; three points each).
    let mut crashing = env.clone();
    crashing.push(("REKEY_SIM_CRASH_AT", "8"));
    let r = ws.rekey_seen(
        &["run", "--yes", "--concurrency", "1", "--reason", "DRILL-SE"],
        &crashing,
        &mut seen,
    );
    assert_eq!(r.code, None, "expected the crash\n{}", r.stderr);
    let keys = aws.keys(user).await;
    assert!(!keys.contains_key(&spare), "free-slot deleted the spare");
    let orphans: Vec<&String> = keys.keys().filter(|k| **k != aws.old[user].0).collect();
    assert_eq!(orphans.len(), 1, "the crashed create made a key: {keys:?}");
    let orphan = orphans[0].clone();

    let id = ws.run_ids(&env)[0].clone();
    ws.rekey_seen(&["resume", &id], &env, &mut seen)
        .ok("resume");
    aws.assert_rotated().await;

    let events = ws.audit_events(None, &mut seen);
    let step = |s: &str| format!("{cred}/{s}");
    let deliver = step(&format!("deliver[secretsmanager:{}]", secret_id(user)));
    for (s, what) in [
        (step("free-slot"), spare.as_str()),
        (step("create"), orphan.as_str()),
        (deliver, stale),
    ] {
        let found = events_of(&events, "side_effect", &s);
        assert!(
            found.iter().any(|(c, d)| c == cred && d.contains(what)),
            "no side_effect of {s} naming {what}: {found:?}\n{}",
            crate::harness::summary(&events)
        );
    }
}

/// A stand-in for STS that refuses `GetCallerIdentity` for 5 s from the first one it sees, as
/// STS may refuse a key IAM has just created.
fn propagating(moto: &Moto) -> rekey_testkit::StandIn {
    let first: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    moto.stand_in(move |action| {
        if action != "GetCallerIdentity" {
            return None;
        }
        let since = *first
            .lock()
            .unwrap()
            .get_or_insert_with(std::time::Instant::now);
        (since.elapsed() < Duration::from_secs(5)).then(|| {
            rekey_testkit::aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        })
    })
}

/// [`Aws::env`] with every AWS call going to `url`.
pub(crate) fn env_through(aws: &Aws, url: &str) -> Vec<(&'static str, String)> {
    let mut env = aws.env();
    for (k, v) in &mut env {
        if *k == "AWS_ENDPOINT_URL" {
            url.clone_into(v);
        }
    }
    env
}

/// A new key that STS refuses for its first 5 s (IAM is eventually consistent) is waited for,
/// even with a run budget shorter than that; `REKEY_AWS_PROPAGATION_WAIT` bounds the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_verify_waits_for_a_new_key_to_propagate() {
    let mut aws = setup_aws_one().await;
    let (cred, _) = USERS[0];
    let mut seen = String::new();
    let stand_in = propagating(&aws.moto);
    let env_owned = env_through(&aws, stand_in.url());
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let began = std::time::Instant::now();
    let r = aws.ws.rekey_seen(
        &[
            "run",
            "--yes",
            "--retry-budget",
            "1s",
            "--reason",
            "DRILL-P1",
        ],
        &env,
        &mut seen,
    );
    r.ok("a run whose new key takes 5 s to be accepted");
    assert!(began.elapsed() >= Duration::from_secs(5));
    aws.assert_rotated().await;
    let events = aws.ws.audit_events(None, &mut seen);
    let retries = events_of(&events, "step_retry", &format!("{cred}/verify"));
    assert!(
        retries
            .iter()
            .all(|(_, d)| d.contains("InvalidClientTokenId")),
        "{retries:?}"
    );
    assert!(!retries.is_empty(), "verify was retried");
    drop(stand_in);

    // With the wait bounded to 2 s, the same rotation gives up and says so.
    aws.adopt_current().await;
    let stand_in = propagating(&aws.moto);
    let mut env_owned = env_through(&aws, stand_in.url());
    env_owned.push(("REKEY_AWS_PROPAGATION_WAIT", "2s".into()));
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = aws.ws.rekey_seen(
        &[
            "run",
            "--yes",
            "--retry-budget",
            "1s",
            "--reason",
            "DRILL-P2",
        ],
        &env,
        &mut seen,
    );
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let events = aws.ws.audit_events(None, &mut seen);
    let failed = events_of(&events, "step_failed", &format!("{cred}/verify"));
    assert!(
        failed
            .iter()
            .any(|(_, d)| d.contains("InvalidClientTokenId")
                && d.contains("gave up")
                && d.contains("REKEY_AWS_PROPAGATION_WAIT")),
        "{failed:?}"
    );
}

/// An incident whose new key is never accepted stops for an operator (the exposed key stays
/// off); `rekey abandon` then leaves none of rekey's write-ahead markers on the IAM user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_abandon_removes_the_markers() {
    let aws = setup_aws_one().await;
    let (_, user) = USERS[0];
    let mut seen = String::new();
    let refusing = aws.moto.stand_in(|action| {
        (action == "GetCallerIdentity").then(|| {
            rekey_testkit::aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        })
    });
    let mut env_owned = env_through(&aws, refusing.url());
    env_owned.push(("REKEY_AWS_PROPAGATION_WAIT", "1s".into()));
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = aws.ws.rekey_seen(
        &[
            "run",
            "--yes",
            "--mode",
            "incident",
            "--retry-budget",
            "1s",
            "--reason",
            "INC-A",
        ],
        &env,
        &mut seen,
    );
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let tags = || async {
        aws.iam
            .list_user_tags()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|t| t.key().to_owned())
            .filter(|k| k.starts_with("rekey:"))
            .collect::<Vec<_>>()
    };
    assert!(!tags().await.is_empty(), "the run left its markers");
    let id = aws.ws.run_ids(&env)[0].clone();
    aws.ws
        .rekey_seen(&["abandon", &id], &env, &mut seen)
        .ok("abandon");
    let left = tags().await;
    assert!(left.is_empty(), "markers left after abandon: {left:?}");
    assert_eq!(
        aws.keys(user).await[&aws.old[user].0],
        "Inactive",
        "the exposed key stays off"
    );
}

/// A create whose answer is lost after IAM made the key, and then fails for good: the rollback
/// undoes it without its outputs, by its marker, and the deletion is in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_undo_of_a_lost_create_is_audited() {
    let aws = setup_aws_one().await;
    let (cred, user) = USERS[0];
    let mut seen = String::new();
    let losing = aws.moto.stand_in(|action| {
        (action == "CreateAccessKey").then(|| {
            rekey_testkit::aws_error(400, "InvalidInput", "stand-in: the answer was lost")
                .after_forwarding()
        })
    });
    let env_owned = env_through(&aws, losing.url());
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = aws
        .ws
        .rekey_seen(&["run", "--yes", "--reason", "DRILL-U"], &env, &mut seen);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let keys = aws.keys(user).await;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        vec![&aws.old[user].0],
        "the key of the lost create is gone"
    );
    let events = aws.ws.audit_events(None, &mut seen);
    let create = format!("{cred}/create");
    position(&events, "step_undone", &create);
    let effects = events_of(&events, "side_effect", &create);
    assert!(
        effects
            .iter()
            .any(|(c, d)| c == cred && d.contains("deleted access key AKIA")),
        "{effects:?}\n{}",
        crate::harness::summary(&events)
    );
}

/// An incident on a user with a second active key the inventory does not name (an
/// attacker's): both are turned off, and the run's output, `status --json` and the audit log
/// name the unknown key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_incident_names_and_disables_unknown_keys() {
    let aws = setup_aws_one().await;
    let (cred, user) = USERS[0];
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let (intruder, _) = rekey_testkit::create_key(&aws.iam, user).await;
    let r = aws.ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "INC-U"],
        &env,
        &mut seen,
    );
    r.ok("incident");
    assert!(
        r.stderr.contains(&intruder) && r.stderr.contains("does not name"),
        "the run's output names the unknown key:\n{}",
        r.stderr
    );
    let keys = aws.keys(user).await;
    assert!(
        !keys.contains_key(&intruder) || keys[&intruder] == "Inactive",
        "{keys:?}"
    );
    let id = aws.ws.run_ids(&env)[0].clone();
    let status = aws
        .ws
        .rekey_seen(&["status", &id, "--json"], &env, &mut seen);
    status.ok("status");
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let step = format!("{cred}/disable-exposed");
    let disable = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == step.as_str())
        .unwrap();
    let outputs: serde_json::Value =
        serde_json::from_str(disable["outputs_json"].as_str().unwrap()).unwrap();
    assert_eq!(outputs["unknown_keys"], intruder.as_str(), "{outputs}");
    let events = aws.ws.audit_events(None, &mut seen);
    assert!(
        events_of(&events, "provider_warning", &step)
            .iter()
            .any(|(c, d)| c == cred && d.contains(&intruder)),
        "{}",
        crate::harness::summary(&events)
    );
}

/// Without a region, `rekey` says so once, plainly, before any AWS call, instead of the SDK's
/// instance-metadata (IMDS) warnings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_without_a_region_says_so_plainly() {
    let aws = setup_aws_one().await;
    let env_owned: Vec<(&str, String)> = aws
        .env()
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "AWS_REGION" | "AWS_EC2_METADATA_DISABLED"))
        .collect();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = aws
        .ws
        .command(&["run", "--yes", "--reason", "DRILL-R"], &env)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.to_ascii_lowercase().contains("imds"),
        "instance-metadata noise:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("no AWS region is set").count(),
        1,
        "said once:\n{stderr}"
    );
    assert!(
        stderr.contains("AWS_REGION") && stderr.contains("region:"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_drill_end_to_end() {
    let pg = PgCluster::start().await;
    let ws = Workspace::empty();
    let env_file = ws.path().join("etc/app.env");
    std::fs::create_dir_all(env_file.parent().unwrap()).unwrap();
    std::fs::write(&env_file, "").unwrap();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(
        ws.path().join("inventory/acme.yaml"),
        format!(
            "hosts:
  - id: ci
    kind: ci_runner
services:
  - id: web
    owner: team-web
    built_on: [ci]
credentials:
  - id: pg-app
    kind: postgres_password
    owner: team-web
    used_by: [web]
    present_on: [ci]
    role: app
    database: postgres
    admin_url_env: PG_ADMIN_URL
    delivered_to:
      - env_file: {{ path: {}, key: PGPASSWORD, field: password }}
",
            env_file.display()
        ),
    )
    .unwrap();
    let url = pg.admin_url();
    let env = [("PG_ADMIN_URL", url.as_str())];
    let mut seen = String::new();

    // Drill.
    let r = ws.rekey_seen(&["run", "--yes", "--reason", "DRILL-PG"], &env, &mut seen);
    r.ok("run");
    let first = env_file_value(&env_file, "PGPASSWORD");
    assert_ne!(first, OLD_APP_PASSWORD);
    pg.login("app", &first)
        .await
        .expect("the new password logs in");
    assert_eq!(
        pg.login("app", OLD_APP_PASSWORD).await.err().as_deref(),
        Some("28P01"),
        "the old password is refused"
    );
    let mut admin = pg.admin().await;
    let stored: String =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");

    // Incident: an open session of `app` is terminated.
    let mut session = pg.login("app", &first).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();
    let r = ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "INC-PG"],
        &env,
        &mut seen,
    );
    r.ok("run --mode incident");
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "the open session of app survived the incident run"
    );
    drop(session);
    let second = env_file_value(&env_file, "PGPASSWORD");
    assert_ne!(second, first);
    pg.login("app", &second)
        .await
        .expect("the newest password logs in");
    assert_eq!(
        pg.login("app", &first).await.err().as_deref(),
        Some("28P01"),
        "the previous password is refused"
    );
    let events = ws.audit_events(None, &mut seen);
    let terminated = position(&events, "step_succeeded", "pg-app/terminate-sessions");
    let set = position(&events, "step_started", "pg-app/set-password");
    // The drill's set-password comes first in the log: look at the incident run's.
    let incident_set = events
        .iter()
        .rposition(|e| e["event"] == "step_started" && e["step"] == "pg-app/set-password")
        .unwrap();
    assert!(set < incident_set);
    assert!(
        terminated < incident_set,
        "sessions ended before the new password"
    );
    ws.rekey_seen(&["audit", "verify"], &[], &mut seen)
        .ok("audit verify");
    ws.assert_no_secrets(&seen, &[&first, &second, ADMIN_PASSWORD]);
}

/// A manual mint in a real run (here: an operator who sets a PostgreSQL password by hand).
/// Without a terminal the run pauses (exit 3) and `resume --input STEP=FILE` answers it; on a
/// terminal (a pty from `script`) the run asks at a hidden prompt, and the value is neither
/// echoed nor printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_steps_pause_then_take_the_value_from_a_file_or_a_hidden_prompt() {
    let pg = PgCluster::start().await;
    let ws = Workspace::empty();
    let env_file = ws.path().join("etc/app.env");
    std::fs::create_dir_all(ws.path().join("etc")).unwrap();
    std::fs::write(&env_file, "").unwrap();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::create_dir_all(ws.path().join("runbooks")).unwrap();
    std::fs::write(
        ws.path().join("inventory/acme.yaml"),
        format!(
            "credentials:
  - id: pg-app
    kind: postgres_password
    owner: team-web
    role: app
    admin_url_env: PG_ADMIN_URL
    delivered_to:
      - env_file: {{ path: {}, key: PGPASSWORD, field: password }}
",
            env_file.display()
        ),
    )
    .unwrap();
    std::fs::write(
        ws.path().join("runbooks/postgres_password.yaml"),
        r#"kind: postgres_password
steps:
  - id: create
    phase: mint
    action: manual.provide_secret
    manual: { instructions: "set a new password for role {{ credential.role }} and paste it" }
  - id: deliver
    phase: deliver
    action: consumer.deliver
    for_each: consumer
    with: { password: "{{ steps.create.outputs.value }}" }
  - id: verify
    phase: verify
    action: postgres.verify_login
    with:
      admin_url_env: "{{ credential.admin_url_env }}"
      role: "{{ credential.role }}"
      password: "{{ steps.create.outputs.value }}"
"#,
    )
    .unwrap();
    let url = pg.admin_url();
    let env = [("PG_ADMIN_URL", url.as_str())];
    let set_password = async |password: &str| {
        let mut admin = pg.admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER ROLE app PASSWORD '{password}'"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    };
    let mut seen = String::new();

    // No terminal: the run pauses and says how to answer.
    let r = ws.rekey_seen(&["run", "--yes"], &env, &mut seen);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("--input"), "{}", r.stderr);
    let id = ws.run_ids(&env)[0].clone();
    let first = "Hand-Set-Pa55word-One";
    set_password(first).await;
    let answer = ws.path().join("answer.txt");
    std::fs::write(&answer, format!("{first}\n")).unwrap();
    let input = format!("pg-app/create={}", answer.display());
    ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume --input");
    assert_eq!(env_file_value(&env_file, "PGPASSWORD"), first);
    std::fs::remove_file(&answer).unwrap();

    // On a terminal: a hidden prompt, answered once it shows.
    let second = "Hand-Set-Pa55word-Two";
    set_password(second).await;
    let command = format!("{} run --yes", crate::harness::REKEY);
    let mut child = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(ws.path())
        .env_remove("REKEY_DATABASE_URL")
        .env("NO_COLOR", "1")
        .env("PG_ADMIN_URL", &url)
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
    let shown = |text: &str| String::from_utf8_lossy(&printed.lock().unwrap()).contains(text);
    poll(Duration::from_mins(1), "the hidden prompt", || {
        shown("paste the new value (hidden").then_some(())
    });
    assert!(
        shown("set a new password for role app"),
        "instructions shown"
    );
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{second}\n").as_bytes()).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let printed = String::from_utf8_lossy(&printed.lock().unwrap()).into_owned();
    assert!(status.success(), "{printed}");
    assert!(printed.contains("succeeded"), "{printed}");
    assert!(!printed.contains(second), "the value was echoed: {printed}");
    assert_eq!(env_file_value(&env_file, "PGPASSWORD"), second);
    pg.login("app", second)
        .await
        .expect("the operator's password");
    seen.push_str(&printed);
    ws.assert_no_secrets(&seen, &[first, second, ADMIN_PASSWORD]);
}

/// Consumers must exist before anything changes: a typo'd secret id or a missing env file stops
/// the run with nothing done; `create: true` opts in to a new secret; a relative env-file path
/// is the inventory file's; a delivery keeps the other keys of the secret's JSON document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_consumers_must_exist_and_keep_their_other_keys() {
    let aws = setup_aws_with(&[("aws-deploy-a", "deploy-a")]).await;
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ws = &aws.ws;
    let (old_id, old_secret) = aws.old["deploy-a"].clone();
    // The secret holds more than the key: the host its users connect to.
    aws.sm
        .put_secret_value()
        .secret_id(secret_id("deploy-a"))
        .secret_string(
            serde_json::json!({
                "AccessKeyId": old_id,
                "SecretAccessKey": old_secret,
                "host": "db.internal",
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let write = |consumers: &str| {
        std::fs::write(
            ws.path().join("inventory/acme.yaml"),
            format!(
                "credentials:
  - id: aws-deploy-a
    kind: aws_iam_access_key
    owner: team-platform
    user_name: deploy-a
    access_key_id: {old_id}
    delivered_to:
{consumers}"
            ),
        )
        .unwrap();
    };
    let refused = |what: &str, said: &[&str]| {
        let r = ws.rekey(&["run", "--yes"], &env);
        assert_eq!(r.code, Some(2), "{what}: {}", r.stderr);
        for s in said {
            assert!(r.stderr.contains(s), "{what}: {}", r.stderr);
        }
        assert!(ws.run_ids(&env).is_empty(), "{what}: no run was stored");
    };

    write("      - aws_secrets_manager: { secret_id: prod/deploy-a/awz }\n");
    refused(
        "typo'd secret",
        &["prod/deploy-a/awz does not exist in", "create: true"],
    );
    // Relative to the inventory file, not to where rekey runs; missing until created.
    std::fs::create_dir_all(ws.path().join("etc")).unwrap();
    write(&format!(
        "      - aws_secrets_manager: {{ secret_id: {} }}\n      - env_file: {{ path: ../etc/a.env, key: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }}\n",
        secret_id("deploy-a")
    ));
    refused("missing env file", &["etc/a.env does not exist"]);
    assert_eq!(aws.keys("deploy-a").await.len(), 1, "nothing was created");
    assert!(ws.run_ids(&env).is_empty());

    std::fs::write(ws.path().join("etc/a.env"), "").unwrap();
    write(&format!(
        "      - aws_secrets_manager: {{ secret_id: {} }}\n      - env_file: {{ path: ../etc/a.env, key: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }}\n      - aws_secrets_manager: {{ secret_id: prod/deploy-a/copy, create: true }}\n",
        secret_id("deploy-a")
    ));
    let r = ws.rekey(&["run", "--yes"], &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let current = aws.current("deploy-a").await;
    let keys = aws.keys("deploy-a").await;
    let new_id = keys.keys().next().unwrap();
    assert_eq!(current["AccessKeyId"], new_id.as_str(), "{keys:?}");
    assert_eq!(current["host"], "db.internal", "the other key is kept");
    assert_eq!(
        env_file_value(&ws.path().join("etc/a.env"), "AWS_SECRET_ACCESS_KEY"),
        current["SecretAccessKey"].as_str().unwrap()
    );
    let copy = aws
        .sm
        .get_secret_value()
        .secret_id("prod/deploy-a/copy")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let copy: serde_json::Value = serde_json::from_str(copy.secret_string().unwrap()).unwrap();
    assert_eq!(copy["AccessKeyId"], new_id.as_str(), "created on request");
}
