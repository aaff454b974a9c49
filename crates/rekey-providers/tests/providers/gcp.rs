//! The GCP provider against the in-process IAM fake (`rekey_testkit::GcpFake`): the
//! conformance suite in both modes (an env-file consumer), IAM's 10-key limit refused before
//! anything changes, an incident's unknown keys, a lost create reconciled, preflight, and a
//! lost exception never widening a disable or delete.

use std::path::PathBuf;
use std::sync::Arc;

use rekey_engine::{Provider, Reconciled, Value, Values};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::envfile::EnvFileProvider;
use rekey_providers::gcp::{GcpConfig, GcpProvider};
use rekey_providers::router::ConsumerRouter;
use rekey_spec::Mode;
use rekey_testkit::GcpFake;

use crate::conformance::{self, ConsumerView, Subject};
use crate::harness::{self, digest, env_value};

const PROJECT: &str = "acme-ml-prod";
const SA: &str = "vertex-invoker@acme-ml-prod.iam.gserviceaccount.com";

fn inventory(key_id: Option<&str>, env_file: &str) -> String {
    format!(
        r"
hosts:
  - id: ci
    kind: ci_runner
services:
  - id: ml
    owner: team-ml
    built_on: [ci]
credentials:
  - id: gcp-ml
    kind: gcp_service_account_key
    owner: team-ml
    used_by: [ml]
    present_on: [ci]
    project: {PROJECT}
    service_account: {SA}
{}    delivered_to:
      - env_file: {{ path: {env_file}, key: GOOGLE_CREDENTIALS_JSON }}
",
        key_id.map_or_else(String::new, |k| format!("    key_id: {k}\n"))
    )
}

/// The fake with the account and its old key; the admin key files in a temp dir.
struct Setup {
    fake: GcpFake,
    dir: tempfile::TempDir,
    old: (String, String),
}

impl Setup {
    async fn new() -> Self {
        let fake = GcpFake::start().await;
        fake.add_account(PROJECT, SA);
        let old = fake.add_key(SA);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.json"), fake.admin_key_file()).unwrap();
        std::fs::write(dir.path().join("wrong.json"), fake.wrong_admin_key_file()).unwrap();
        std::fs::write(
            dir.path().join("app.env"),
            format!("# ml\nGOOGLE_CREDENTIALS_JSON='{}'\n", old.1),
        )
        .unwrap();
        Self { fake, dir, old }
    }

    fn env_file(&self) -> PathBuf {
        self.dir.path().join("app.env")
    }

    fn provider_with(&self, file: &str) -> GcpProvider {
        GcpProvider::new(GcpConfig::new(
            &self.fake.iam_url(),
            self.dir.path().join(file),
        ))
        .unwrap()
    }

    fn provider(&self) -> GcpProvider {
        self.provider_with("admin.json")
    }

    fn plan(&self, mode: Mode) -> Plan {
        harness::compile(
            &inventory(Some(&self.old.0), &self.env_file().display().to_string()),
            mode,
            Some("gcp-ml"),
        )
    }

    fn old_value(&self) -> Values {
        [
            ("key_id".to_owned(), Value::Plain(self.old.0.clone())),
            (
                "private_key_data".to_owned(),
                Value::secret(self.old.1.clone()),
            ),
        ]
        .into()
    }
}

struct GcpSubject {
    s: Setup,
    plan: Plan,
    gcp: Arc<dyn Provider>,
    wrong: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
}

impl GcpSubject {
    async fn new(mode: Mode) -> Self {
        let s = Setup::new().await;
        let plan = s.plan(mode);
        Self {
            gcp: Arc::new(s.provider()),
            wrong: Arc::new(s.provider_with("wrong.json")),
            consumers: Arc::new(ConsumerRouter {
                aws: None,
                github: None,
                env_file: Arc::new(EnvFileProvider),
            }),
            plan,
            s,
        }
    }
}

impl Subject for GcpSubject {
    fn name(&self) -> String {
        format!("GCP service-account key (fake IAM, {:?})", self.plan.mode)
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "gcp" => Arc::clone(&self.gcp),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        (step.provider == "gcp").then(|| Arc::clone(&self.wrong))
    }

    fn old_value(&self) -> Values {
        self.s.old_value()
    }

    fn holds_two(&self) -> bool {
        true
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            GcpFake::admin_private_key().to_owned(),
            GcpFake::wrong_admin_private_key().to_owned(),
        ]
    }

    /// The fake's token endpoint grants a token to a JWT signed with the key file.
    async fn accepts(&self, value: &Values) -> bool {
        value
            .get("private_key_data")
            .is_some_and(|v| self.s.fake.accepts(v.expose()))
    }

    async fn values(&self) -> usize {
        self.s.fake.keys(SA).len()
    }

    async fn snapshot(&self) -> String {
        let file = std::fs::read(self.s.env_file()).unwrap_or_default();
        format!(
            "keys {:?}\nenv file {}",
            self.s.fake.keys(SA),
            digest(&file)
        )
    }

    async fn consumer(&self) -> ConsumerView {
        let text = std::fs::read_to_string(self.s.env_file()).unwrap_or_default();
        ConsumerView {
            current: env_value(&text, "GOOGLE_CREDENTIALS_JSON"),
            pending: None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_conformance_drill() {
    conformance::run(&GcpSubject::new(Mode::Drill).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_conformance_incident() {
    conformance::run(&GcpSubject::new(Mode::Incident).await).await;
}

/// At IAM's 10 keys, the prepare step refuses with the key ids, before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_refuses_at_ten_keys_before_anything_changes() {
    let s = Setup::new().await;
    for _ in 0..9 {
        s.fake.add_key(SA);
    }
    let before = s.fake.keys(SA);
    assert_eq!(before.len(), 10);
    let p = s.provider();
    for mode in [Mode::Drill, Mode::Incident] {
        let plan = s.plan(mode);
        let e = harness::run_err(&p, &plan, "gcp-ml/list-keys", &[]).await;
        assert!(e.message.contains("10 user-managed keys"), "{e}");
        for k in &before {
            assert!(e.message.contains(&k.id), "{e}");
        }
    }
    assert_eq!(s.fake.keys(SA), before);
    assert_eq!(s.fake.creates(), 0);
}

/// An incident records every enabled key, warns about keys the inventory does not name, and
/// disables them all (with the reason `EXPOSED`); a key already disabled is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_incident_disables_unknown_keys() {
    let s = Setup::new().await;
    let (stray, _) = s.fake.add_key(SA);
    let (off, _) = s.fake.add_key(SA);
    s.fake.set_disabled(&off, true);
    let p = s.provider();
    let plan = s.plan(Mode::Incident);
    let i = harness::literal_inputs(&plan, "gcp-ml/list-keys", &[]);
    let c = harness::call(&plan, "gcp-ml/list-keys", &i);
    let listed = p.execute(&c).await.unwrap();
    assert_eq!(
        listed["enabled_key_ids"].expose(),
        format!("{} {stray}", s.old.0)
    );
    assert_eq!(listed["unknown_keys"].expose(), stray);
    let warnings = c.reports.take();
    assert!(
        warnings
            .iter()
            .any(|r| r.event == "provider_warning" && r.detail.contains(&stray)),
        "{warnings:?}"
    );

    let mut outputs = std::collections::BTreeMap::new();
    outputs.insert("list-keys".to_owned(), listed);
    let step = harness::step(&plan, "gcp-ml/disable-exposed");
    let inputs = harness::resolve(step, "run-test", &outputs).unwrap();
    let c = harness::call(&plan, "gcp-ml/disable-exposed", &inputs);
    let out = p.execute(&c).await.unwrap();
    assert_eq!(out["disabled"].expose(), format!("{} {stray}", s.old.0));
    assert_eq!(out["unknown_keys"].expose(), stray);
    assert!(!s.fake.accepts(&s.old.1), "the exposed key still works");
    for k in s.fake.keys(SA) {
        assert!(k.disabled, "{k:?}");
        if k.id != off {
            assert_eq!(
                k.reason.as_deref(),
                Some("SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED")
            );
        }
    }
    // Undo (not what an incident does, but the registry's): exactly the keys it disabled.
    p.undo(&c, &out).await.unwrap();
    let keys = s.fake.keys(SA);
    assert!(keys.iter().find(|k| k.id == off).unwrap().disabled);
    assert!(keys.iter().filter(|k| k.id != off).all(|k| !k.disabled));
}

/// A create whose answer was lost: reconcile deletes the key it made (reported), and only
/// that one — a key made before the prepare step's listing stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_lost_create_is_reconciled() {
    let s = Setup::new().await;
    let p = s.provider();
    let plan = s.plan(Mode::Drill);
    let listed = harness::run(&p, &plan, "gcp-ml/list-keys", &[]).await;
    let mut outputs = std::collections::BTreeMap::new();
    outputs.insert("list-keys".to_owned(), listed);
    let step = harness::step(&plan, "gcp-ml/create");
    let inputs = harness::resolve(step, "run-test", &outputs).unwrap();
    let c = harness::call(&plan, "gcp-ml/create", &inputs);
    let lost = p.execute(&c).await.unwrap();
    let lost_file = lost["private_key_data"].expose().to_owned();
    assert!(s.fake.accepts(&lost_file));
    assert_eq!(s.fake.keys(SA).len(), 2);
    drop(lost);

    // The step was called before: reconcile, and its calls from now on, look for leftovers.
    let c = rekey_engine::Call {
        tried_before: true,
        ..harness::call(&plan, "gcp-ml/create", &inputs)
    };
    assert!(matches!(
        p.reconcile(&c).await.unwrap(),
        Reconciled::NotDone
    ));
    let reports = c.reports.take();
    assert!(
        reports
            .iter()
            .any(|r| r.event == "side_effect" && r.detail.contains("answer was lost")),
        "{reports:?}"
    );
    assert!(!s.fake.accepts(&lost_file), "the orphan still works");
    let keys = s.fake.keys(SA);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, s.old.0);

    // The new create works, and a repeated call leaves one new key.
    let first = p.execute(&c).await.unwrap();
    let second = p.execute(&c).await.unwrap();
    assert!(!s.fake.accepts(first["private_key_data"].expose()));
    assert!(s.fake.accepts(second["private_key_data"].expose()));
    assert_eq!(s.fake.keys(SA).len(), 2);
}

/// A first create looks for no leftovers: a key of the service account made after the keys
/// were listed (another credential's step, a person) is not taken for an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_first_create_leaves_a_key_made_meanwhile() {
    let s = Setup::new().await;
    let p = s.provider();
    let plan = s.plan(Mode::Drill);
    let listed = harness::run(&p, &plan, "gcp-ml/list-keys", &[]).await;
    let (theirs, theirs_file) = s.fake.add_key(SA);
    let mut outputs = std::collections::BTreeMap::new();
    outputs.insert("list-keys".to_owned(), listed);
    let step = harness::step(&plan, "gcp-ml/create");
    let inputs = harness::resolve(step, "run-test", &outputs).unwrap();
    let c = harness::call(&plan, "gcp-ml/create", &inputs);
    let made = p.execute(&c).await.unwrap();
    assert!(c.reports.take().is_empty(), "nothing deleted");
    assert!(s.fake.accepts(&theirs_file), "theirs survives");
    assert!(s.fake.accepts(made["private_key_data"].expose()));
    let ids: Vec<String> = s.fake.keys(SA).into_iter().map(|k| k.id).collect();
    assert_eq!(ids.len(), 3, "old, theirs, new: {ids:?}");
    assert!(ids.contains(&theirs));
}

/// Preflight: the service account exists and the admin credentials work, before anything
/// changes; a missing credentials file is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_preflight() {
    let s = Setup::new().await;
    let plan = s.plan(Mode::Drill);
    let step = harness::step(&plan, "gcp-ml/list-keys");
    s.provider().preflight(step).await.unwrap();

    let e = s
        .provider_with("wrong.json")
        .preflight(step)
        .await
        .unwrap_err();
    assert!(e.message.contains("Invalid JWT Signature"), "{e}");
    assert!(e.message.contains("rekey-admin@"), "{e}");

    let e = s
        .provider_with("missing.json")
        .preflight(step)
        .await
        .unwrap_err();
    assert!(e.message.contains("missing.json"), "{e}");

    let typo = harness::compile(
        &inventory(Some(&s.old.0), &s.env_file().display().to_string())
            .replace("vertex-invoker@", "vertex-invokr@"),
        Mode::Drill,
        Some("gcp-ml"),
    );
    let e = s
        .provider()
        .preflight(harness::step(&typo, "gcp-ml/list-keys"))
        .await
        .unwrap_err();
    assert!(e.message.contains("vertex-invokr@"), "{e}");
    assert!(e.message.contains("HTTP 404"), "{e}");
    assert_eq!(s.fake.keys(SA).len(), 1);

    // An inventory key_id the account no longer has stops the prepare step.
    let stale = harness::compile(
        &inventory(
            Some("0123456789abcdef0123456789abcdef01234567"),
            "/tmp/x.env",
        ),
        Mode::Drill,
        Some("gcp-ml"),
    );
    let e = harness::run_err(&s.provider(), &stale, "gcp-ml/list-keys", &[]).await;
    assert!(e.message.contains("out of date"), "{e}");
    assert!(e.message.contains(&s.old.0), "{e}");
}

/// A lost exception never widens a drill's disable or delete: a missing, empty or secret
/// `except_key_id` stops the step, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_a_lost_exception_never_widens_a_removal() {
    let s = Setup::new().await;
    let (other, _) = s.fake.add_key(SA);
    let p = s.provider();
    let plan = harness::compile(
        &inventory(None, &s.env_file().display().to_string()),
        Mode::Drill,
        Some("gcp-ml"),
    );
    let before = s.fake.keys(SA);
    for id in ["gcp-ml/disable-old", "gcp-ml/delete-old"] {
        for except in [
            None,
            Some(Value::Plain(String::new())),
            Some(Value::secret(other.clone())),
        ] {
            let mut i = harness::literal_inputs(&plan, id, &[]);
            i.remove("except_key_id");
            if let Some(e) = except {
                i.insert("except_key_id".into(), e);
            }
            let e = p
                .execute(&harness::call(&plan, id, &i))
                .await
                .expect_err("must refuse");
            assert!(e.message.contains("except_key_id"), "{id}: {e}");
        }
    }
    assert_eq!(s.fake.keys(SA), before);
}

/// Injected faults are classified as the engine needs them: 429 `RESOURCE_EXHAUSTED` waits its
/// `retry-after`, 503 and reset connections are transient; no message holds a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_faults_are_classified() {
    use rekey_engine::ErrorKind;
    let s = Setup::new().await;
    let p = s.provider();
    let plan = s.plan(Mode::Drill);
    // A token first, so that faults hit IAM calls too.
    harness::run(&p, &plan, "gcp-ml/list-keys", &[]).await;
    s.fake.set_faults(0.6, 3);
    let (mut limited, mut transient) = (0, 0);
    for _ in 0..60 {
        let inputs = harness::literal_inputs(&plan, "gcp-ml/list-keys", &[]);
        match p
            .execute(&harness::call(&plan, "gcp-ml/list-keys", &inputs))
            .await
        {
            Ok(_) => {}
            Err(err) => {
                harness::assert_clean(&err.message, &[GcpFake::admin_private_key(), &s.old.1]);
                match err.kind.clone() {
                    ErrorKind::RateLimited(Some(wait)) => {
                        assert_eq!(wait, std::time::Duration::from_secs(1), "{err}");
                        assert!(err.message.contains("Quota exceeded"), "{err}");
                        limited += 1;
                    }
                    ErrorKind::Transient => transient += 1,
                    other => panic!("{other:?}: {err}"),
                }
            }
        }
    }
    assert!(limited > 0 && transient > 0, "{limited} {transient}");
    assert!(s.fake.faults_injected() > 0);
}

/// Two credentials of one service account cannot be rotated in one run: each create would
/// take the other's new key for an orphan of its own after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_two_credentials_of_one_account_are_refused() {
    let s = Setup::new().await;
    let (second, _) = s.fake.add_key(SA);
    let one = inventory(Some(&s.old.0), "/tmp/a.env");
    let two = format!(
        "{one}  - id: gcp-ml-2
    kind: gcp_service_account_key
    owner: team-ml
    project: {PROJECT}
    service_account: {SA}
    key_id: {second}
    delivered_to:
      - env_file: {{ path: /tmp/b.env, key: GOOGLE_CREDENTIALS_JSON }}
"
    );
    let plan = harness::compile(&two, Mode::Drill, None);
    let p = s.provider();
    let refusals: Vec<String> = plan
        .steps
        .iter()
        .filter(|st| st.provider == "gcp")
        .filter_map(|st| p.supports(st).err())
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains("separate runs"), "{refusals:?}");
    // One at a time is fine, and checking the same plan again changes nothing.
    let plan = s.plan(Mode::Drill);
    let p = s.provider();
    for _ in 0..2 {
        for st in plan.steps.iter().filter(|st| st.provider == "gcp") {
            p.supports(st).unwrap();
        }
    }
}

/// gcloud user credentials (`authorized_user`) work as the admin too; a refused refresh token
/// is named by its client, never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_authorized_user_credentials() {
    const REFRESH: &str = "1//0gRefreshTokenForTestsOnly0000000000000000";
    const CLIENT_SECRET: &str = "GOCSPX-ClientSecretForTests000";
    let s = Setup::new().await;
    std::fs::write(
        s.dir.path().join("user.json"),
        s.fake.add_user_credentials(REFRESH, CLIENT_SECRET),
    )
    .unwrap();
    let plan = s.plan(Mode::Drill);
    let p = s.provider_with("user.json");
    assert!(p.describe_auth().contains("gcloud user credentials"));
    let out = harness::run(&p, &plan, "gcp-ml/list-keys", &[]).await;
    assert_eq!(out["key_ids"].expose(), s.old.0);

    let wrong = s
        .fake
        .add_user_credentials("1//0gAnotherRefreshToken000000000000", CLIENT_SECRET)
        .replace(
            "1//0gAnotherRefreshToken000000000000",
            "1//0gWrongRefreshToken0000000000000000",
        );
    std::fs::write(s.dir.path().join("wrong-user.json"), wrong).unwrap();
    let e = harness::run_err(
        &s.provider_with("wrong-user.json"),
        &plan,
        "gcp-ml/list-keys",
        &[],
    )
    .await;
    assert!(
        e.message.contains("invalid_grant") || e.message.contains("HTTP 400"),
        "{e}"
    );
    harness::assert_clean(
        &e.message,
        &[REFRESH, CLIENT_SECRET, "1//0gWrongRefreshToken"],
    );
}
