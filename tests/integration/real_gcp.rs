//! The real `rekey` binary against the in-process GCP fake (`rekey_testkit::GcpFake`, whose
//! token endpoint verifies JWT signatures), moto (Secrets Manager) and the GitHub fake: a
//! service-account key rotated in drill and incident mode and delivered to a Secrets Manager
//! secret, an env file and an Actions secret; 20 % injected faults; a crash at every step
//! boundary, then resume; the bundled example's GCP credential in both modes. After each run
//! the delivered key file authenticates at the fake's token endpoint and the old one does not.

use rekey_testkit::{AccessKey, GcpFake, GithubFake, Moto};

use crate::harness::{Workspace, env_file_value, position};

const PROJECT: &str = "acme-ml-prod";
const SA: &str = "vertex-invoker@acme-ml-prod.iam.gserviceaccount.com";
const SECRET: &str = "prod/ml/gcp-key";
const WRITER: &str = "ghp_RekeyWriterTokenGcpE2E000000000000000";

struct Gcp {
    moto: Moto,
    admin: AccessKey,
    sm: aws_sdk_secretsmanager::Client,
    fake: GcpFake,
    gh: GithubFake,
    ws: Workspace,
    /// The key the inventory names: (id, key file).
    old: (String, String),
}

async fn setup() -> Gcp {
    let moto = Moto::start();
    let admin = moto.setup(&[]).await.admin;
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&admin.0, &admin.1));
    let fake = GcpFake::start().await;
    fake.add_account(PROJECT, SA);
    let old = fake.add_key(SA);
    sm.create_secret()
        .name(SECRET)
        .secret_string(&old.1)
        .send()
        .await
        .unwrap();
    let gh = GithubFake::start().await;
    gh.add_repo("acme/ml");
    gh.add_writer(WRITER, "acme-automation");
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::create_dir_all(ws.path().join("etc")).unwrap();
    std::fs::write(ws.path().join("admin.json"), fake.admin_key_file()).unwrap();
    std::fs::write(ws.path().join("etc/ml.env"), "REGION=europe-west4\n").unwrap();
    let t = Gcp {
        moto,
        admin,
        sm,
        fake,
        gh,
        ws,
        old,
    };
    t.write_inventory();
    t
}

impl Gcp {
    fn write_inventory(&self) {
        std::fs::write(
            self.ws.path().join("inventory/acme.yaml"),
            format!(
                "credentials:
  - id: gcp-ml
    kind: gcp_service_account_key
    owner: team-ml
    project: {PROJECT}
    service_account: {SA}
    key_id: {}
    delivered_to:
      - aws_secrets_manager: {{ secret_id: {SECRET}, field: key_json }}
      - env_file: {{ path: {}, key: GOOGLE_CREDENTIALS_JSON }}
      - github_actions_secret: {{ repo: acme/ml, name: GCP_SA_KEY }}
",
                self.old.0,
                self.ws.path().join("etc/ml.env").display()
            ),
        )
        .unwrap();
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self
            .moto
            .client_env(&self.admin, &self.ws.path().join("no-aws-config"));
        env.push((
            "GOOGLE_APPLICATION_CREDENTIALS",
            self.ws.path().join("admin.json").display().to_string(),
        ));
        env.push(("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", self.fake.iam_url()));
        env.push(("GITHUB_API_URL", self.gh.api_url()));
        env.push(("GITHUB_TOKEN", WRITER.to_owned()));
        env
    }

    async fn current(&self) -> String {
        self.sm
            .get_secret_value()
            .secret_id(SECRET)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned()
    }

    /// The account has exactly one key, enabled and new; every consumer holds its key file,
    /// which the token endpoint accepts; the old key file is refused. The new one becomes the
    /// inventory's key (as an operator keeps it current). Returns the new key file.
    async fn assert_rotated(&mut self) -> String {
        let keys = self.fake.keys(SA);
        assert_eq!(keys.len(), 1, "exactly one key is left: {keys:?}");
        assert!(!keys[0].disabled, "the new key is enabled");
        assert_ne!(keys[0].id, self.old.0, "the key was replaced");
        let file = self.current().await;
        let v: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(
            v["private_key_id"], keys[0].id,
            "AWSCURRENT holds the new key file"
        );
        assert_eq!(
            env_file_value(
                &self.ws.path().join("etc/ml.env"),
                "GOOGLE_CREDENTIALS_JSON"
            ),
            file,
            "the env file holds the new key file"
        );
        assert_eq!(
            self.gh.secret("repo:acme/ml", "GCP_SA_KEY").as_deref(),
            Some(file.as_str()),
            "the Actions secret holds the new key file"
        );
        assert!(self.fake.accepts(&file), "the new key file authenticates");
        assert!(
            !self.fake.accepts(&self.old.1),
            "the old key file still authenticates"
        );
        self.old = (keys[0].id.clone(), file.clone());
        self.write_inventory();
        file
    }
}

fn strs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The private key's PEM body: must not show anywhere either.
fn pem_line(key_file: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(key_file).unwrap();
    v["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(5)
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_drill_then_incident_end_to_end() {
    let mut t = setup().await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let mut secrets = vec![t.old.1.clone(), pem_line(&t.old.1)];

    let r = t.ws.rekey_seen(&["plan"], &env, &mut seen);
    r.ok("plan");
    assert!(
        r.stdout.contains("keys.create") || r.stdout.contains("/keys"),
        "{}",
        r.stdout
    );
    t.ws.rekey_seen(
        &["run", "--yes", "--mode", "drill", "--reason", "DRILL-1"],
        &env,
        &mut seen,
    )
    .ok("run --mode drill");
    let file = t.assert_rotated().await;
    secrets.push(pem_line(&file));
    secrets.push(file);

    // An incident: a key the inventory does not name is disabled too, before the create.
    let (stray, stray_file) = t.fake.add_key(SA);
    t.ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "INC-1"],
        &env,
        &mut seen,
    )
    .ok("run --mode incident");
    let run = t.ws.run_ids(&env)[0].clone();
    let events = t.ws.audit_events(Some(&run), &mut seen);
    let disabled = position(&events, "step_succeeded", "gcp-ml/disable-exposed");
    let created = position(&events, "step_started", "gcp-ml/create");
    assert!(
        disabled < created,
        "the exposed key was disabled before the create"
    );
    assert!(
        events.iter().any(|e| e["event"] == "provider_warning"
            && e["detail"].as_str().is_some_and(|d| d.contains(&stray))),
        "the unknown key is named in the audit log"
    );
    assert!(!t.fake.accepts(&stray_file), "the unknown key is disabled");
    // It stays (disabled) for an operator to look at; the rotation's own key is the one left.
    let keys = t.fake.keys(SA);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let stray_key = keys.iter().find(|k| k.id == stray).unwrap();
    assert!(stray_key.disabled);
    assert_eq!(
        stray_key.reason.as_deref(),
        Some("SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED")
    );
    let live: Vec<_> = keys.iter().filter(|k| k.id != stray).collect();
    assert_eq!(live.len(), 1);
    let file = t.current().await;
    assert!(t.fake.accepts(&file));
    assert!(
        !t.fake.accepts(&t.old.1),
        "the old key file still authenticates"
    );
    secrets.push(pem_line(&file));
    secrets.push(file);
    secrets.push(stray_file);

    t.ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .chain([WRITER, GcpFake::admin_private_key().lines().nth(5).unwrap()])
        .collect();
    t.ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_faults_converge() {
    let mut t = setup().await;
    t.fake.set_faults(0.2, 7);
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    for (mode, reason) in [("drill", "FAULTS-1"), ("incident", "FAULTS-2")] {
        t.ws.rekey_seen(
            &["run", "--yes", "--mode", mode, "--reason", reason],
            &env,
            &mut seen,
        )
        .ok(&format!("{mode} with 20% faults"));
        t.fake.set_faults(0.0, 1);
        t.assert_rotated().await;
        t.fake.set_faults(0.2, 11);
    }
    assert!(t.fake.faults_injected() > 0, "faults were injected");
}

/// The engine aborts (as SIGKILL would) at each of its crash points in turn; every resumed run
/// leaves exactly one live key, the one every consumer holds, and no orphan.
async fn crash_at_every_point(mode: &str) {
    let mut t = setup().await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let mut secrets = Vec::new();
    let mut point = 0u32;
    loop {
        point += 1;
        let at = point.to_string();
        let reason = format!("CRASH-{point}");
        let mut crashing = env.clone();
        crashing.push(("REKEY_SIM_CRASH_AT", &at));
        let r = t.ws.rekey_seen(
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
            secrets.push(t.assert_rotated().await);
            break;
        }
        assert_eq!(
            r.code, None,
            "gcp {mode}, crash point {point}: expected an abort\n{}",
            r.stderr
        );
        let id = t.ws.run_ids(&env)[0].clone();
        t.ws.rekey_seen(&["resume", &id], &env, &mut seen)
            .ok(&format!("gcp {mode}: resume after crash point {point}"));
        secrets.push(t.assert_rotated().await);
        t.ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
            .ok("audit verify");
    }
    assert!(
        point > 20,
        "gcp {mode}: only {point} crash points were reached"
    );
    // Some crash fell between keys.create and its recorded outcome: resume deleted that key.
    let events = t.ws.audit_events(None, &mut seen);
    assert!(
        events.iter().any(|e| e["event"] == "side_effect"
            && e["step"] == "gcp-ml/create"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("answer was lost"))),
        "gcp {mode}: no lost create was reconciled"
    );
    assert!(
        t.fake.creates() >= usize::try_from(point).unwrap(),
        "every rotation made a key"
    );
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).chain([WRITER]).collect();
    t.ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_drill_crash_at_every_point() {
    crash_at_every_point("drill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_incident_crash_at_every_point() {
    crash_at_every_point("incident").await;
}

/// The bundled example's GCP credential, pointed at the fake, in drill then incident mode: no
/// "no provider" refusal, and the key is rotated each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_bundled_example_drill_and_incident() {
    const EXAMPLE_SA: &str = "vertex-invoker@acme-ml-prod.iam.gserviceaccount.com";
    const EXAMPLE_KEY: &str = "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f901";
    const EXAMPLE_SECRET: &str = "prod/ml-gateway/gcp-key";
    let moto = Moto::start();
    let admin = moto.setup(&[]).await.admin;
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&admin.0, &admin.1));
    let fake = GcpFake::start().await;
    fake.add_account("acme-ml-prod", EXAMPLE_SA);
    let mut old = fake.add_key_with_id(EXAMPLE_SA, EXAMPLE_KEY);
    sm.create_secret()
        .name(EXAMPLE_SECRET)
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let ws = Workspace::example();
    std::fs::write(ws.path().join("admin.json"), fake.admin_key_file()).unwrap();
    let mut env_owned = moto.client_env(&admin, &ws.path().join("no-aws-config"));
    env_owned.push((
        "GOOGLE_APPLICATION_CREDENTIALS",
        ws.path().join("admin.json").display().to_string(),
    ));
    env_owned.push(("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", fake.iam_url()));
    let env = strs(&env_owned);
    let mut seen = String::new();
    let mut key_id = EXAMPLE_KEY.to_owned();
    for mode in ["drill", "incident"] {
        let r = ws.rekey_seen(
            &[
                "run",
                "--yes",
                "--credential",
                "gcp-vertex-ml",
                "--mode",
                mode,
                "--reason",
                &format!("EXAMPLE-{mode}"),
            ],
            &env,
            &mut seen,
        );
        assert!(!r.stderr.contains("no provider"), "{}", r.stderr);
        r.ok(&format!("the example's GCP credential, {mode}"));
        let keys = fake.keys(EXAMPLE_SA);
        assert_eq!(keys.len(), 1, "{mode}: {keys:?}");
        assert_ne!(keys[0].id, key_id, "{mode}: rotated");
        let doc = sm
            .get_secret_value()
            .secret_id(EXAMPLE_SECRET)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        // `field: key_json`: the secret is the key file itself.
        let file = doc;
        let v: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(v["private_key_id"], keys[0].id, "{mode}");
        assert!(fake.accepts(&file), "{mode}: the delivered key file works");
        assert!(!fake.accepts(&old), "{mode}: the old key file still works");
        // The operator records the new key in the inventory.
        let inv = ws.path().join("inventory/credentials.yaml");
        let text = std::fs::read_to_string(&inv).unwrap();
        std::fs::write(&inv, text.replace(&key_id, &keys[0].id)).unwrap();
        key_id = keys[0].id.clone();
        old = file;
    }
}

/// A new key Google does not accept yet: the verify retries (audited) until it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_verify_waits_for_a_new_key_to_propagate() {
    let mut t = setup().await;
    t.fake.set_propagation(2);
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    t.ws.rekey_seen(
        &["run", "--yes", "--reason", "PROPAGATION"],
        &env,
        &mut seen,
    )
    .ok("run");
    assert_eq!(t.fake.refused_propagating(), 2);
    let events = t.ws.audit_events(None, &mut seen);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_retry" && e["step"] == "gcp-ml/verify"),
        "the verify was retried"
    );
    let file = t.assert_rotated().await;
    t.ws.assert_no_secrets(&seen, &[&file, &pem_line(&file), WRITER]);
}
