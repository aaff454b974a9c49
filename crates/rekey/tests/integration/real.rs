//! The real `rekey` binary against real peers on 127.0.0.1: a moto server (IAM, STS, Secrets
//! Manager) and a throwaway `PostgreSQL` cluster. Install them with `./scripts/peers.sh`; when
//! they are missing these tests fail (they never pass silently).
//!
//! The harness code is copied from `crates/rekey-providers/tests/{aws,postgres}.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};

use crate::harness::{Ran, Workspace};

// ---------------------------------------------------------------------------------------------
// Common

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An empty workspace (no example inventory): the test writes its own.
fn empty_workspace() -> Workspace {
    Workspace {
        dir: tempfile::tempdir().unwrap(),
    }
}

/// Runs `rekey`, appending everything it printed to `seen`.
fn rekey(ws: &Workspace, args: &[&str], env: &[(&str, &str)], seen: &mut String) -> Ran {
    let r = ws.rekey(args, env);
    seen.push_str(&r.stdout);
    seen.push_str(&r.stderr);
    r
}

fn ok(r: &Ran, what: &str) {
    assert_eq!(
        r.code,
        Some(0),
        "{what}: unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
}

/// The audit log as JSON lines, in `seq` order.
fn audit(ws: &Workspace, env: &[(&str, &str)], seen: &mut String) -> Vec<serde_json::Value> {
    let r = rekey(ws, &["audit", "export", "--format", "jsonl"], env, seen);
    ok(&r, "audit export");
    let mut events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    events.sort_by_key(|e| e["seq"].as_i64().unwrap());
    events
}

/// The position of the first `event` of `step` in the audit log.
fn position(events: &[serde_json::Value], event: &str, step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == event && e["step"] == step)
        .unwrap_or_else(|| {
            let all: Vec<String> = events
                .iter()
                .map(|e| format!("{} {} {}", e["event"], e["step"], e["outcome"]))
                .collect();
            panic!("no {event} of {step} in the audit log:\n{}", all.join("\n"))
        })
}

/// The state database files and the audit export hold none of `secrets`; nor does `seen`.
fn assert_no_secrets(ws: &Workspace, seen: &str, secrets: &[&str]) {
    let mut haystacks = vec![("output".to_owned(), seen.to_owned())];
    for name in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(ws.path().join(".rekey").join(name)) {
            haystacks.push((
                name.to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    assert!(haystacks.len() > 1, "no state database in .rekey/");
    let export = ws.rekey(&["audit", "export"], &[]);
    haystacks.push(("audit export".to_owned(), export.stdout));
    for (what, text) in &haystacks {
        for s in secrets {
            assert!(!s.is_empty());
            assert!(!text.contains(s), "{what} holds a secret value");
        }
    }
}

/// The value of `key` in an env file (`KEY=value`, maybe single- or double-quoted).
fn env_value(path: &Path, key: &str) -> String {
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

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// moto

struct Moto {
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.peers/moto-venv/bin/moto_server")
}

/// One HTTP/1.1 request to moto; returns the status code and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn start_moto() -> Moto {
    let bin = moto_bin();
    assert!(
        bin.exists(),
        "moto server not found at {}: run ./scripts/peers.sh to install it",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}; run ./scripts/peers.sh to install it",
                bin.display()
            )
        });
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        port,
    };
    poll(Duration::from_mins(1), "the moto server to answer", || {
        matches!(http(port, "GET", "/moto-api/data.json", ""), Ok((200, _))).then_some(())
    });
    moto
}

fn sdk_config(url: &str, key_id: &str, secret: &str) -> SdkConfig {
    SdkConfig::builder()
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key_id, secret, None, None, "test",
        )))
        .behavior_version(BehaviorVersion::latest())
        .http_client(rekey_providers::aws::https_client())
        .build()
}

async fn create_key(iam: &aws_sdk_iam::Client, user: &str) -> (String, String) {
    let out = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap();
    let k = out.access_key().unwrap();
    (
        k.access_key_id().to_owned(),
        k.secret_access_key().to_owned(),
    )
}

const USERS: [(&str, &str); 2] = [("aws-deploy-a", "deploy-a"), ("aws-deploy-b", "deploy-b")];

fn secret_id(user: &str) -> String {
    format!("prod/{user}/aws")
}

/// A moto server with signature checks on, an admin user (inline `*` policy), the users
/// [`USERS`] with one (old) key each and a secret each holding it, and a workspace whose
/// inventory delivers each key to its secret and to an env file.
struct Aws {
    moto: Moto,
    admin: (String, String),
    iam: aws_sdk_iam::Client,
    sm: aws_sdk_secretsmanager::Client,
    /// `(credential id, IAM user)` in the inventory.
    users: Vec<(&'static str, &'static str)>,
    /// user → its old key.
    old: BTreeMap<&'static str, (String, String)>,
    ws: Workspace,
}

async fn setup_aws() -> Aws {
    setup_aws_with(&USERS).await
}

async fn setup_aws_with(users: &[(&'static str, &'static str)]) -> Aws {
    let moto = start_moto();
    let boot = sdk_config(&moto.url, "AKIAIOSFODNN7EXAMPLE", "bootstrap-not-checked");
    let iam = aws_sdk_iam::Client::new(&boot);
    iam.create_user().user_name("admin").send().await.unwrap();
    iam.put_user_policy()
        .user_name("admin")
        .policy_name("all")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let admin = create_key(&iam, "admin").await;
    let mut old = BTreeMap::new();
    for &(_, user) in users {
        iam.create_user().user_name(user).send().await.unwrap();
        old.insert(user, create_key(&iam, user).await);
    }
    let (status, body) = http(moto.port, "POST", "/moto-api/reset-auth", "0").unwrap();
    assert_eq!(status, 200, "reset-auth: {body}");

    let config = sdk_config(&moto.url, &admin.0, &admin.1);
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
        ws: empty_workspace(),
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
            let env = ws.path().join("etc").join(format!("{user}.env"));
            let _ = write!(
                inv,
                "  - id: {id}
    kind: aws_iam_access_key
    owner: team-platform
    used_by: [deploy]
    present_on: [ci]
    user_name: {user}
    access_key_id: {key}
    delivered_to:
      - aws_secrets_manager: {{ secret_id: {secret} }}
      - env_file: {{ path: {env}, key: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }}
",
                key = self.old[user].0,
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
        let none = self.ws.path().join("no-aws-config").display().to_string();
        vec![
            ("AWS_ENDPOINT_URL", self.moto.url.clone()),
            ("AWS_ACCESS_KEY_ID", self.admin.0.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.admin.1.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_SESSION_TOKEN", String::new()),
            ("AWS_PROFILE", String::new()),
            ("AWS_CONFIG_FILE", none.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", none),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    async fn keys(&self, user: &str) -> BTreeMap<String, String> {
        self.iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap().to_owned(),
                    k.status().unwrap().as_str().to_owned(),
                )
            })
            .collect()
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
        let sts = aws_sdk_sts::Client::new(&sdk_config(&self.moto.url, id, secret));
        sts.get_caller_identity()
            .send()
            .await
            .map(|o| o.arn().unwrap_or_default().to_owned())
            .map_err(|e| format!("{}", aws_sdk_sts::error::DisplayErrorContext(e)))
    }

    /// Every user has exactly one key, Active, new; AWSCURRENT and the env file hold it; it
    /// works and the old one does not. Returns the new secret access keys.
    async fn assert_rotated(&self) -> Vec<String> {
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
                env_value(&env, "AWS_SECRET_ACCESS_KEY"),
                new_secret,
                "{user}: the env file holds the new secret"
            );
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

    ok(&rekey(ws, &["validate"], &env, &mut seen), "validate");
    let r = rekey(
        ws,
        &["run", "--yes", "--reason", "DRILL-1"],
        &env,
        &mut seen,
    );
    ok(&r, "run");
    assert!(r.stdout.contains("succeeded"), "{}", r.stdout);

    let secrets = aws.assert_rotated().await;
    ok(
        &rekey(ws, &["audit", "verify"], &env, &mut seen),
        "audit verify",
    );
    let events = audit(ws, &env, &mut seen);
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
    let r = rekey(ws, &["status", "--json"], &env, &mut seen);
    ok(&r, "status");
    let runs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    rekey(ws, &["audit", "show"], &env, &mut seen);

    // The inventory still names the keys just deleted: the next run stops at its first step,
    // before anything changes, and says what to fix.
    let r = rekey(
        ws,
        &["run", "--yes", "--reason", "DRILL-2"],
        &env,
        &mut seen,
    );
    assert_ne!(r.code, Some(0), "a stale inventory must not rotate");
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(
        said.contains("has no access key") && said.contains("out of date"),
        "{said}"
    );
    let events = audit(ws, &env, &mut seen);
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
    assert_no_secrets(ws, &seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_incident_revokes_first() {
    let aws = setup_aws().await;
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let ws = &aws.ws;

    let r = rekey(
        ws,
        &["run", "--yes", "--mode", "incident", "--reason", "INC-1"],
        &env,
        &mut seen,
    );
    ok(&r, "run --mode incident");

    let events = audit(ws, &env, &mut seen);
    for (id, _) in USERS {
        let disabled = position(&events, "step_succeeded", &format!("{id}/disable-exposed"));
        let created = position(&events, "step_started", &format!("{id}/create"));
        assert!(
            disabled < created,
            "{id}: the exposed key was not disabled before the new one was created"
        );
    }
    let secrets = aws.assert_rotated().await;
    ok(
        &rekey(ws, &["audit", "verify"], &env, &mut seen),
        "audit verify",
    );
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(ws, &seen, &secrets);
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
        let before = audit(ws, &env, &mut seen);
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
        let r = rekey(ws, &["resume", &run_id], &env, &mut seen);
        ok(&r, "the last resume");
    }
    let r = rekey(ws, &["status", &run_id, "--json"], &env, &mut seen);
    ok(&r, "status");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "succeeded", "{v}");

    let secrets = aws.assert_rotated().await;
    ok(
        &rekey(ws, &["audit", "verify"], &env, &mut seen),
        "audit verify",
    );
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(ws, &seen, &secrets);
}

/// The engine aborts (as SIGKILL would) at each of its crash points in turn: after a step's
/// start is recorded, after the provider answered but before the outcome is recorded, after
/// the outcome is recorded. Each crash is a fresh rotation of the same user, resumed to the
/// end; every one must leave one key, the one `AWSCURRENT` and the env file hold, and a
/// verifying audit chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_crash_at_every_step_boundary() {
    let mut aws = setup_aws_with(&USERS[..1]).await;
    let env_owned = aws.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut seen = String::new();
    let mut secrets = Vec::new();
    let mut point = 0u32;
    loop {
        point += 1;
        let at = point.to_string();
        let reason = format!("DRILL-CRASH-{point}");
        let mut crashing = env.clone();
        crashing.push(("REKEY_SIM_CRASH_AT", &at));
        let ws = &aws.ws;
        let r = rekey(
            ws,
            &["run", "--yes", "--concurrency", "1", "--reason", &reason],
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
            "crash point {point}: expected an abort, got a failure\n{}",
            r.stderr
        );
        let id = ws.run_ids(&env)[0].clone();
        ok(
            &rekey(ws, &["resume", &id], &env, &mut seen),
            &format!("resume after crash point {point}"),
        );
        let r = rekey(ws, &["status", &id, "--json"], &env, &mut seen);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["status"], "succeeded", "crash point {point}: {v}");
        secrets.extend(aws.assert_rotated().await);
        ok(
            &rekey(ws, &["audit", "verify"], &env, &mut seen),
            "audit verify",
        );
        aws.adopt_current().await;
    }
    eprintln!(
        "aws_crash_at_every_step_boundary: {} crash points",
        point - 1
    );
    // 9 steps for one user with two consumers, 3 points each.
    assert!(point > 27, "only {point} crash points were reached");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&aws.ws, &seen, &secrets);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// The admin password of the test cluster: it must never show up in output.
const ADMIN_PASSWORD: &str = "Adm1n-Pa55word-Never-Shown";
const OLD_APP_PASSWORD: &str = "0ld-App-Pa55word";

/// The shared throwaway cluster (`crate::postgres::PgCluster`), with passwords: `postgres`
/// ([`ADMIN_PASSWORD`]) and `app` ([`OLD_APP_PASSWORD`]) log in over TCP with SCRAM-SHA-256.
struct PgCluster {
    pg: crate::postgres::PgCluster,
}

impl PgCluster {
    async fn start() -> Self {
        let pg = crate::postgres::PgCluster::start();
        let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        for sql in [
            format!("ALTER ROLE postgres PASSWORD '{ADMIN_PASSWORD}'"),
            format!("CREATE ROLE app LOGIN PASSWORD '{OLD_APP_PASSWORD}'"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(pg.path().join("data/pg_hba.conf"), hba).unwrap();
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Self { pg }
    }

    fn admin_url(&self) -> String {
        format!(
            "postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:{}/postgres",
            self.pg.port
        )
    }

    /// Logs in as `user`: `Ok` or the server's SQLSTATE.
    async fn login(&self, user: &str, password: &str) -> Result<sqlx::PgConnection, String> {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.pg.port)
            .username(user)
            .password(password)
            .database("postgres")
            .connect()
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) => d.code().unwrap_or_default().into_owned(),
                other => other.to_string(),
            })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_drill_end_to_end() {
    let pg = PgCluster::start().await;
    let ws = empty_workspace();
    let env_file = ws.path().join("etc/app.env");
    std::fs::create_dir_all(env_file.parent().unwrap()).unwrap();
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
    let r = rekey(
        &ws,
        &["run", "--yes", "--reason", "DRILL-PG"],
        &env,
        &mut seen,
    );
    ok(&r, "run");
    let first = env_value(&env_file, "PGPASSWORD");
    assert_ne!(first, OLD_APP_PASSWORD);
    pg.login("app", &first)
        .await
        .expect("the new password logs in");
    assert_eq!(
        pg.login("app", OLD_APP_PASSWORD).await.err().as_deref(),
        Some("28P01"),
        "the old password is refused"
    );
    let mut admin = pg.login("postgres", ADMIN_PASSWORD).await.unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");

    // Incident: an open session of `app` is terminated.
    let mut session = pg.login("app", &first).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();
    let r = rekey(
        &ws,
        &["run", "--yes", "--mode", "incident", "--reason", "INC-PG"],
        &env,
        &mut seen,
    );
    ok(&r, "run --mode incident");
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "the open session of app survived the incident run"
    );
    drop(session);
    let second = env_value(&env_file, "PGPASSWORD");
    assert_ne!(second, first);
    pg.login("app", &second)
        .await
        .expect("the newest password logs in");
    assert_eq!(
        pg.login("app", &first).await.err().as_deref(),
        Some("28P01"),
        "the previous password is refused"
    );
    let events = audit(&ws, &[], &mut seen);
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
    ok(
        &rekey(&ws, &["audit", "verify"], &[], &mut seen),
        "audit verify",
    );
    assert_no_secrets(&ws, &seen, &[&first, &second, ADMIN_PASSWORD]);
}
