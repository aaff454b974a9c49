//! The AWS provider against a real moto server (IAM, STS, Secrets Manager) on a free loopback
//! port. Install it with `./scripts/peers.sh` (a venv under `.peers/moto-venv`).
//!
//! Each test starts its own server, so tests run in parallel without sharing state. Signature
//! checks are turned on after the admin user is set up, so a deleted key really fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use rekey_engine::{Call, ErrorKind, Provider, Reconciled, Value, Values};
use rekey_plan::{Plan, PlannedCredential, PlannedStep};
use rekey_providers::aws::{AwsProvider, request_token};
use rekey_providers::envfile::EnvFileProvider;
use rekey_providers::router::ConsumerRouter;
use rekey_spec::Mode;
use rekey_testkit::{AccessKey, Moto, create_key};
use secrecy::ExposeSecret;

use crate::conformance::{ConsumerView, Subject};
use crate::harness::{self, step};

// ---------------------------------------------------------------------------------------------
// moto

/// A moto server with an admin user (inline `*` policy) whose key the provider uses, the user
/// `deploy-web` with one (old) key, and signature checks on.
struct Aws {
    moto: Moto,
    provider: AwsProvider,
    /// The admin's configuration (its key signs every call of the provider).
    config: SdkConfig,
    admin_key: AccessKey,
    iam: aws_sdk_iam::Client,
    sm: aws_sdk_secretsmanager::Client,
    old_key: AccessKey,
}

async fn setup() -> Aws {
    let moto = Moto::start();
    let accounts = moto.setup(&["deploy-web"]).await;
    let admin = accounts.admin;
    let old_key = accounts.keys["deploy-web"].clone();
    let config = moto.sdk_config(&admin.0, &admin.1);
    Aws {
        provider: AwsProvider::from_sdk_config(&config),
        iam: aws_sdk_iam::Client::new(&config),
        sm: aws_sdk_secretsmanager::Client::new(&config),
        config,
        admin_key: admin,
        moto,
        old_key,
    }
}

impl Aws {
    /// The secret [`SECRET`] exists (a consumer must, before a run), still empty.
    async fn existing_secret(&self) {
        self.sm.create_secret().name(SECRET).send().await.unwrap();
    }

    async fn keys(&self, user: &str) -> BTreeMap<String, String> {
        rekey_testkit::access_keys(&self.iam, user).await
    }

    async fn stages(&self, secret: &str) -> BTreeMap<String, Vec<String>> {
        self.sm
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .unwrap()
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    /// The `AccessKeyId` of the secret's `AWSCURRENT` document.
    async fn current_key_id(&self, secret: &str) -> String {
        let v = self.value(secret, "AWSCURRENT").await.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&v).unwrap();
        doc["AccessKeyId"].as_str().unwrap().to_owned()
    }

    async fn value_of(&self, secret: &str, version: &str) -> Option<String> {
        self.sm
            .get_secret_value()
            .secret_id(secret)
            .version_id(version)
            .send()
            .await
            .ok()
            .and_then(|o| o.secret_string().map(str::to_owned))
    }

    async fn value(&self, secret: &str, stage: &str) -> Option<String> {
        self.sm
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .send()
            .await
            .ok()
            .and_then(|o| o.secret_string().map(str::to_owned))
    }
}

// ---------------------------------------------------------------------------------------------
// Plans and calls

const RUN: &str = "run-test";

fn plan(inventory: &str, mode: Mode) -> Plan {
    harness::compile(inventory, mode, None)
}

fn aws_plan(old_key: &str, consumer: &str) -> Plan {
    aws_plan_in(Mode::Drill, old_key, consumer)
}

fn aws_plan_in(mode: Mode, old_key: &str, consumer: &str) -> Plan {
    plan(
        &format!(
            r"
credentials:
  - id: deploy
    kind: aws_iam_access_key
    owner: team-web
    user_name: deploy-web
    access_key_id: {old_key}
    delivered_to:
      - aws_secrets_manager: {consumer}
"
        ),
        mode,
    )
}

/// The step's inputs: literal templates as plain values, step outputs looked up in `outputs`.
fn inputs(step: &PlannedStep, outputs: &BTreeMap<String, Values>) -> Values {
    harness::resolve(step, RUN, outputs).unwrap_or_else(|e| panic!("{}: {e}", step.id))
}

struct Runner<'a> {
    plan: &'a Plan,
    provider: &'a AwsProvider,
    /// Outputs by runbook step name (`create`, …).
    outputs: BTreeMap<String, Values>,
}

impl Runner<'_> {
    fn credential(&self, step: &PlannedStep) -> &PlannedCredential {
        &self.plan.credentials[step.credential as usize]
    }

    fn key(step: &PlannedStep) -> String {
        rekey_engine::run::idempotency_key(RUN, &step.id)
    }

    async fn exec(&mut self, id: &str) -> Result<Values, rekey_engine::ProviderError> {
        let step = step(self.plan, id);
        let inputs = inputs(step, &self.outputs);
        let key = Self::key(step);
        let call = Call {
            run_id: RUN,
            step,
            credential: self.credential(step),
            inputs: &inputs,
            idempotency_key: &key,
            attempt: 1,
            tried_before: false,
            reports: rekey_engine::Reports::default(),
        };
        let out = self.provider.execute(&call).await?;
        self.outputs.insert(step.step.clone(), out.clone());
        Ok(out)
    }

    async fn run(&mut self, id: &str) -> Values {
        match self.exec(id).await {
            Ok(v) => v,
            Err(e) => panic!("step {id} failed: {e}"),
        }
    }

    /// Calls `f` with the step's call (for `undo`, `reconcile`, `read_back`).
    async fn with_call<T>(
        &self,
        id: &str,
        inputs_override: Option<Values>,
        f: impl AsyncFnOnce(&Call<'_>) -> T,
    ) -> T {
        let step = step(self.plan, id);
        let inputs = inputs_override.unwrap_or_else(|| inputs(step, &self.outputs));
        let key = Self::key(step);
        let call = Call {
            run_id: RUN,
            step,
            credential: self.credential(step),
            inputs: &inputs,
            idempotency_key: &key,
            attempt: 1,
            tried_before: false,
            reports: rekey_engine::Reports::default(),
        };
        f(&call).await
    }
}

const SECRET: &str = "prod/web/aws-deploy";
const DELIVER: &str = "deploy/deliver[secretsmanager:prod/web/aws-deploy]";
const PROMOTE: &str = "deploy/promote[secretsmanager:prod/web/aws-deploy]";

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_rotation_end_to_end() {
    let aws = setup().await;
    aws.existing_secret().await;
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };

    let last = r.run("deploy/capture-last-used").await;
    assert!(last.contains_key("last_used_date"), "{last:?}");
    let slot = r.run("deploy/free-slot").await;
    assert_eq!(slot["free_slots"].expose(), "1");

    let created = r.run("deploy/create").await;
    let new_id = created["access_key_id"].expose().to_owned();
    let new_secret = created["secret_access_key"].expose().to_owned();
    assert!(created["secret_access_key"].is_secret());
    let shown = format!("{created:?}");
    assert!(
        !shown.contains(&new_secret),
        "outputs leak the secret: {shown}"
    );
    assert!(shown.contains(&new_id));
    assert_eq!(aws.keys("deploy-web").await.len(), 2);

    let delivered = r.run(DELIVER).await;
    let version = delivered["version"].expose().to_owned();
    assert_eq!(
        version,
        request_token(&Runner::key(step(&plan, DELIVER)), 0)
    );
    // Delivering again is a no-op.
    assert_eq!(r.run(DELIVER).await["version"].expose(), version);

    // read_back recovers the secret from AWSPENDING.
    let doc = r
        .with_call(DELIVER, Some(Values::new()), async |c| {
            aws.provider.read_back(c).await
        })
        .await
        .unwrap()
        .expect("the delivered document is readable");
    assert_eq!(doc["AccessKeyId"].expose_secret(), new_id);
    assert_eq!(doc["SecretAccessKey"].expose_secret(), new_secret);

    let who = r.run("deploy/verify").await;
    assert!(who["arn"].expose().ends_with(":user/deploy-web"), "{who:?}");
    assert_eq!(who["account"].expose(), "123456789012");

    r.run(PROMOTE).await;
    let current: serde_json::Value =
        serde_json::from_str(&aws.value(SECRET, "AWSCURRENT").await.unwrap()).unwrap();
    assert_eq!(current["AccessKeyId"], new_id.as_str());
    assert_eq!(current["SecretAccessKey"], new_secret.as_str());
    let stages = aws.stages(SECRET).await;
    assert!(
        stages
            .values()
            .all(|s| !s.iter().any(|x| x == "AWSPENDING")),
        "AWSPENDING is gone: {stages:?}"
    );
    // Promoting again finds nothing pending and is fine.
    r.run(PROMOTE).await;

    let disabled = r.run("deploy/disable-old").await;
    assert_eq!(disabled["deactivated"].expose(), aws.old_key.0);
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys[&aws.old_key.0], "Inactive");
    assert_eq!(keys[&new_id], "Active");

    let deleted = r.run("deploy/delete-old").await;
    assert_eq!(deleted["deleted"].expose(), aws.old_key.0);
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys.keys().collect::<Vec<_>>(), vec![&new_id]);
    // The rotation is over: none of its write-ahead markers stays on the user.
    let tags = aws
        .iam
        .list_user_tags()
        .user_name("deploy-web")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags().iter().all(|t| !t.key().starts_with("rekey:")),
        "{:?}",
        tags.tags()
    );

    // The old key no longer works; the new one still does.
    let old_inputs: Values = [
        (
            "access_key_id".to_owned(),
            Value::Plain(aws.old_key.0.clone()),
        ),
        (
            "secret_access_key".to_owned(),
            Value::secret(aws.old_key.1.clone()),
        ),
    ]
    .into();
    let err = r
        .with_call("deploy/verify", Some(old_inputs), async |c| {
            aws.provider.execute(c).await
        })
        .await
        .expect_err("the deleted key is refused");
    assert!(err.message.contains("InvalidClientTokenId"), "{err}");
    assert!(!err.message.contains(&aws.old_key.1));
    r.run("deploy/verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_key_slot_deletes_an_inactive_key_and_refuses_two_active() {
    let aws = setup().await;
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    // Two active keys: refused, nothing deleted.
    let (extra, _) = create_key(&aws.iam, "deploy-web").await;
    let err = r
        .exec("deploy/free-slot")
        .await
        .expect_err("two active keys");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(
        err.message
            .contains("IAM user deploy-web already has two active keys"),
        "{err}"
    );
    assert_eq!(aws.keys("deploy-web").await.len(), 2);

    // A third key is over IAM's limit: a permanent LimitExceeded, said to be the two-keys one.
    r.outputs.insert(
        "free-slot".into(),
        [(
            "access_key_ids".to_owned(),
            Value::Plain(format!("{} {extra}", aws.old_key.0)),
        )]
        .into(),
    );
    let err = r.exec("deploy/create").await.expect_err("over the limit");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(
        err.message.contains("LimitExceeded") && err.message.contains("two access keys"),
        "{err}"
    );

    // One of them inactive (not the tracked one): it is deleted.
    aws.iam
        .update_access_key()
        .user_name("deploy-web")
        .access_key_id(&extra)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let (out, reports) = r
        .with_call("deploy/free-slot", None, async |c| {
            (aws.provider.execute(c).await.unwrap(), c.reports.take())
        })
        .await;
    assert_eq!(out["free_slots"].expose(), "1");
    assert_eq!(out["access_key_ids"].expose(), aws.old_key.0);
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys.keys().collect::<Vec<_>>(), vec![&aws.old_key.0]);
    // The deletion is reported for the audit log, by id.
    assert!(
        matches!(reports.as_slice(), [x] if x.event == "side_effect" && x.detail.contains(&extra)),
        "{reports:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_after_a_lost_create_leaves_exactly_the_new_key() {
    let aws = setup().await;
    aws.existing_secret().await;
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    // CreateAccessKey succeeded, then the process died: the outputs (and the secret) are lost.
    let lost = r.run("deploy/create").await;
    let orphan = lost["access_key_id"].expose().to_owned();
    r.outputs.remove("create");
    drop(lost);
    assert_eq!(aws.keys("deploy-web").await.len(), 2);

    // Resume: reconcile deletes the orphan, the step runs again.
    let rec = r
        .with_call("deploy/create", None, async |c| {
            aws.provider.reconcile(c).await
        })
        .await
        .unwrap();
    assert!(matches!(rec, Reconciled::NotDone), "{rec:?}");
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys.keys().collect::<Vec<_>>(), vec![&aws.old_key.0]);
    // Reconciling again changes nothing.
    let rec = r
        .with_call("deploy/create", None, async |c| {
            aws.provider.reconcile(c).await
        })
        .await
        .unwrap();
    assert!(matches!(rec, Reconciled::NotDone));

    let created = r.run("deploy/create").await;
    let new_id = created["access_key_id"].expose().to_owned();
    assert_ne!(new_id, orphan);
    r.run(DELIVER).await;
    r.run("deploy/verify").await;
    r.run(PROMOTE).await;
    r.run("deploy/disable-old").await;
    r.run("deploy/delete-old").await;
    let keys = aws.keys("deploy-web").await;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        vec![&new_id],
        "exactly the new key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_removes_the_key_of_the_lost_attempt() {
    let aws = setup().await;
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    let first = r.run("deploy/create").await["access_key_id"]
        .expose()
        .to_owned();
    // The answer never arrived (timeout); the engine calls again with the same key.
    let second = r.run("deploy/create").await["access_key_id"]
        .expose()
        .to_owned();
    assert_ne!(first, second);
    let keys = aws.keys("deploy-web").await;
    assert_eq!(
        keys.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        [aws.old_key.0.clone(), second.clone()].into(),
    );
    // Undo with lost outputs deletes the created key by the marker; the old key stays.
    r.with_call("deploy/create", None, async |c| {
        aws.provider.undo(c, &Values::new()).await
    })
    .await
    .unwrap();
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys.keys().collect::<Vec<_>>(), vec![&aws.old_key.0]);
}

/// A deactivate whose answer was lost: the retry reports the keys the first attempt turned
/// off (not "none", because they are off already), reconcile says the same, and an undo
/// without outputs reactivates exactly those, never a key that was off before the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_deactivate_reports_its_keys_and_undo_restores_only_them() {
    let aws = setup().await;
    let (spare, _) = create_key(&aws.iam, "deploy-web").await;
    aws.iam
        .update_access_key()
        .user_name("deploy-web")
        .access_key_id(&spare)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    // No `access_key_id`: the step is about every key of the user.
    let plan = plan(
        r"
credentials:
  - id: deploy
    kind: aws_iam_access_key
    owner: team-web
    user_name: deploy-web
    delivered_to:
      - aws_secrets_manager: { secret_id: prod/web/aws-deploy }
",
        Mode::Incident,
    );
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    let old = aws.old_key.0.clone();
    let first = r.run("deploy/disable-exposed").await;
    assert_eq!(first["deactivated"].expose(), old);
    // The answer was lost; the engine calls again with the same idempotency key.
    let again = r.run("deploy/disable-exposed").await;
    assert_eq!(
        again["deactivated"].expose(),
        old,
        "the retry names the key"
    );
    let rec = r
        .with_call("deploy/disable-exposed", None, async |c| {
            aws.provider.reconcile(c).await
        })
        .await
        .unwrap();
    match rec {
        Reconciled::Done(v) => assert_eq!(v["deactivated"].expose(), old),
        Reconciled::NotDone => panic!("a started deactivate reconciled as not done"),
    }
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys[&old], "Inactive");
    assert_eq!(keys[&spare], "Inactive");
    // Undo with its outputs lost: the old key comes back, the spare stays off.
    r.with_call("deploy/disable-exposed", None, async |c| {
        aws.provider.undo(c, &Values::new()).await
    })
    .await
    .unwrap();
    let keys = aws.keys("deploy-web").await;
    assert_eq!(keys[&old], "Active");
    assert_eq!(
        keys[&spare], "Inactive",
        "a key off before the step stays off"
    );
}

/// A responder whose policy denies `iam:TagUser` (or a user at IAM's 50-tag limit) cannot
/// write the deactivation marker: the incident's revoke still turns the exposed key off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_does_not_depend_on_its_marker() {
    let aws = setup().await;
    aws.iam
        .create_user()
        .user_name("responder")
        .send()
        .await
        .unwrap();
    aws.iam
        .put_user_policy()
        .user_name("responder")
        .policy_name("no-tags")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":["iam:TagUser","iam:UntagUser"],"Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let key = create_key(&aws.iam, "responder").await;
    let config = aws.moto.sdk_config(&key.0, &key.1);
    let denied = aws_sdk_iam::Client::new(&config)
        .tag_user()
        .user_name("deploy-web")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("probe")
                .value("x")
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert!(denied.is_err(), "the server enforces the policy");
    let provider = AwsProvider::from_sdk_config(&config);
    let plan = aws_plan_in(
        Mode::Incident,
        &aws.old_key.0,
        "{ secret_id: prod/web/aws-deploy }",
    );
    let mut r = Runner {
        plan: &plan,
        provider: &provider,
        outputs: BTreeMap::new(),
    };
    let out = r.run("deploy/disable-exposed").await;
    assert_eq!(out["deactivated"].expose(), aws.old_key.0);
    assert_eq!(aws.keys("deploy-web").await[&aws.old_key.0], "Inactive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pending_is_moved_off_and_undo_removes_pending() {
    let aws = setup().await;
    // A secret with a current value and a stale AWSPENDING from an earlier half-done rotation.
    aws.sm
        .create_secret()
        .name(SECRET)
        .secret_string(r#"{"AccessKeyId":"OLD","SecretAccessKey":"old-secret"}"#)
        .send()
        .await
        .unwrap();
    let stale = "11111111-2222-4333-8444-555555555555";
    aws.sm
        .put_secret_value()
        .secret_id(SECRET)
        .client_request_token(stale)
        .secret_string(r#"{"AccessKeyId":"STALE","SecretAccessKey":"stale"}"#)
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();

    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    r.run("deploy/create").await;
    let (delivered, reports) = r
        .with_call(DELIVER, None, async |c| {
            (aws.provider.execute(c).await.unwrap(), c.reports.take())
        })
        .await;
    let version = delivered["version"].expose().to_owned();
    assert!(
        matches!(reports.as_slice(), [x] if x.event == "side_effect" && x.detail.contains(stale)),
        "the stale version moved aside is reported: {reports:?}"
    );
    let stages = aws.stages(SECRET).await;
    assert_eq!(
        stages[&version],
        vec!["AWSPENDING".to_owned()],
        "{stages:?}"
    );
    assert!(stages[stale].is_empty(), "{stages:?}");

    // Undo of deliver removes the label; delivering again puts it back.
    r.with_call(DELIVER, None, async |c| {
        aws.provider.undo(c, &Values::new()).await
    })
    .await
    .unwrap();
    assert!(aws.stages(SECRET).await[&version].is_empty());
    assert_eq!(r.run(DELIVER).await["version"].expose(), version);
    assert_eq!(
        aws.stages(SECRET).await[&version],
        vec!["AWSPENDING".to_owned()]
    );

    r.run(PROMOTE).await;
    let stages = aws.stages(SECRET).await;
    assert_eq!(
        stages[&version],
        vec!["AWSCURRENT".to_owned()],
        "{stages:?}"
    );
    assert!(
        stages
            .values()
            .any(|s| s == &vec!["AWSPREVIOUS".to_owned()]),
        "{stages:?}"
    );
    let current = aws.value(SECRET, "AWSCURRENT").await.unwrap();
    assert!(current.contains(r.outputs["create"]["access_key_id"].expose()));

    // Undo of promote puts the old value back as current.
    r.with_call(PROMOTE, None, async |c| {
        aws.provider.undo(c, &Values::new()).await
    })
    .await
    .unwrap();
    assert!(
        aws.value(SECRET, "AWSCURRENT")
            .await
            .unwrap()
            .contains("OLD")
    );
    let mut stages = aws.stages(SECRET).await[&version].clone();
    stages.sort();
    assert_eq!(stages, vec!["AWSPENDING", "AWSPREVIOUS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_of_promote_is_idempotent_and_ignores_a_promote_that_never_happened() {
    let aws = setup().await;
    // Rotated before: the oldest value is AWSPREVIOUS, the old one AWSCURRENT.
    aws.sm
        .create_secret()
        .name(SECRET)
        .secret_string(r#"{"AccessKeyId":"OLDEST","SecretAccessKey":"oldest-secret"}"#)
        .send()
        .await
        .unwrap();
    aws.sm
        .put_secret_value()
        .secret_id(SECRET)
        .secret_string(r#"{"AccessKeyId":"OLD","SecretAccessKey":"old-secret"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(aws.current_key_id(SECRET).await, "OLD");
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    r.run("deploy/create").await;
    let version = r.run(DELIVER).await["version"].expose().to_owned();
    let new_id = r.outputs["create"]["access_key_id"].expose().to_owned();
    let undo_promote = async |r: &Runner<'_>| {
        r.with_call(PROMOTE, None, async |c| {
            aws.provider.undo(c, &Values::new()).await
        })
        .await
        .unwrap();
    };

    // The promote failed before it took effect: its undo changes nothing (it used to make the
    // oldest value current).
    let before = aws.stages(SECRET).await;
    undo_promote(&r).await;
    assert_eq!(aws.stages(SECRET).await, before);
    assert_eq!(aws.current_key_id(SECRET).await, "OLD");

    // Promoted, then undone twice (a crash interrupted the first undo): the old value stays
    // current and the delivered one pending (the second undo used to promote it again).
    r.run(PROMOTE).await;
    assert_eq!(aws.current_key_id(SECRET).await, new_id);
    undo_promote(&r).await;
    assert_eq!(aws.current_key_id(SECRET).await, "OLD");
    let undone = aws.stages(SECRET).await;
    undo_promote(&r).await;
    assert_eq!(aws.stages(SECRET).await, undone);
    assert_eq!(aws.current_key_id(SECRET).await, "OLD");
    assert_eq!(
        aws.value(SECRET, "AWSPENDING").await,
        aws.value_of(SECRET, &version).await
    );

    // Promoting again after the undo works.
    r.run(PROMOTE).await;
    assert_eq!(aws.current_key_id(SECRET).await, new_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_consumer_and_read_current() {
    let aws = setup().await;
    // A classic PAT kept in Secrets Manager as a bare value (`field`): read_current reads it.
    aws.sm
        .create_secret()
        .name("ci/gh-token")
        .secret_string("ghp_oldtokenvalue")
        .send()
        .await
        .unwrap();
    // moto answers GetSecretValue without a stage with a stale version: make one exist.
    aws.sm
        .put_secret_value()
        .secret_id("ci/gh-token")
        .secret_string("ghp_newertokenvalue")
        .send()
        .await
        .unwrap();
    let plan = plan(
        r"
credentials:
  - id: gh
    kind: github_classic_pat
    owner: team-ci
    github_user: ci-bot
    delivered_to:
      - aws_secrets_manager: { secret_id: ci/gh-token, field: token }
",
        Mode::Drill,
    );
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    let out = r.run("gh/capture-old").await;
    assert!(out["value"].is_secret());
    assert_eq!(out["value"].expose(), "ghp_newertokenvalue");
    assert!(!format!("{out:?}").contains("ghp_"));

    // Deliver writes only the `field` input as the secret string.
    let deliver = plan
        .steps
        .iter()
        .find(|s| s.action == "consumer.deliver")
        .expect("a deliver step")
        .id
        .clone();
    r.outputs.insert(
        "create".into(),
        [("value".to_owned(), Value::secret("ghp_brandnew"))].into(),
    );
    let step = step(&plan, &deliver);
    let inputs: Values = step
        .inputs
        .keys()
        .map(|k| (k.clone(), Value::secret("ghp_brandnew")))
        .collect();
    let version = r
        .with_call(&deliver, Some(inputs.clone()), async |c| {
            aws.provider.execute(c).await
        })
        .await
        .unwrap()["version"]
        .expose()
        .to_owned();
    let got = aws
        .sm
        .get_secret_value()
        .secret_id("ci/gh-token")
        .version_id(&version)
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("ghp_brandnew"));
    let doc = r
        .with_call(&deliver, Some(Values::new()), async |c| {
            aws.provider.read_back(c).await
        })
        .await
        .unwrap()
        .unwrap();
    let field = step.inputs.keys().next().unwrap();
    assert_eq!(doc[field].expose_secret(), "ghp_brandnew");

    // After a crash the captured value is read again by the version it pinned, not as "the
    // current value" (which, once the new token is promoted, is the new one).
    aws.sm
        .update_secret_version_stage()
        .secret_id("ci/gh-token")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&version)
        .remove_from_version_id(out["version"].expose())
        .send()
        .await
        .unwrap();
    let mut pinned = out.clone();
    pinned.retain(|_, v| !v.is_secret());
    let again = r
        .with_call("gh/capture-old", Some(Values::new()), async |c| {
            aws.provider.reread(c, &pinned).await
        })
        .await
        .unwrap()
        .expect("the pinned version is read again");
    assert_eq!(again["value"].expose(), "ghp_newertokenvalue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_creates_a_missing_secret_and_other_consumers_are_refused() {
    let aws = setup().await;
    let plan = aws_plan(
        &aws.old_key.0,
        "{ secret_id: new/secret, region: us-east-1, create: true }",
    );
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    r.run("deploy/create").await;
    r.run("deploy/deliver[secretsmanager:new/secret]").await;
    r.run("deploy/promote[secretsmanager:new/secret]").await;
    let current = aws.value("new/secret", "AWSCURRENT").await.unwrap();
    assert!(current.contains(r.outputs["create"]["access_key_id"].expose()));
    let stages = aws.stages("new/secret").await;
    assert!(
        stages
            .values()
            .all(|s| !s.iter().any(|x| x == "AWSPENDING"))
    );

    // A GitHub consumer is not this provider's.
    let gh = plan_with_github();
    let deliver = gh
        .steps
        .iter()
        .find(|s| s.action == "consumer.deliver")
        .unwrap();
    assert!(aws.provider.supports(deliver).is_err());
    assert!(aws.provider.supports(step(&plan, "deploy/create")).is_ok());
}

fn plan_with_github() -> Plan {
    plan(
        r"
credentials:
  - id: deploy
    kind: aws_iam_access_key
    owner: team-web
    user_name: deploy-web
    delivered_to:
      - github_actions_secret: { repo: acme/web, name: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }
",
        Mode::Drill,
    )
}

// ---------------------------------------------------------------------------------------------
// Conformance subject

const USER: &str = "deploy-web";
/// The admin secret the misconfigured provider signs with.
const WRONG_ADMIN_SECRET: &str = "Wr0ng-Aws-Admin-Secret-Never-Shown";

/// The IAM user `deploy-web` with one key, delivered to the Secrets Manager secret
/// `prod/web/aws-deploy` (which holds the old key as `AWSCURRENT`).
pub(crate) struct AwsSubject {
    aws: Aws,
    plan: Plan,
    iam: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
    wrong_iam: Arc<dyn Provider>,
    wrong_consumers: Arc<dyn Provider>,
}

impl AwsSubject {
    pub(crate) async fn start(mode: Mode) -> Self {
        let aws = setup().await;
        let old = serde_json::json!({
            "AccessKeyId": aws.old_key.0,
            "SecretAccessKey": aws.old_key.1,
        });
        aws.sm
            .create_secret()
            .name(SECRET)
            .secret_string(old.to_string())
            .send()
            .await
            .unwrap();
        let plan = aws_plan_in(mode, &aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
        let router = |aws: Arc<dyn Provider>| -> Arc<dyn Provider> {
            Arc::new(ConsumerRouter {
                aws: Some(aws),
                github: None,
                env_file: Arc::new(EnvFileProvider),
            })
        };
        let iam: Arc<dyn Provider> = Arc::new(AwsProvider::from_sdk_config(&aws.config));
        let wrong_iam: Arc<dyn Provider> = Arc::new(AwsProvider::from_sdk_config(
            &aws.moto.sdk_config(&aws.admin_key.0, WRONG_ADMIN_SECRET),
        ));
        Self {
            consumers: router(Arc::clone(&iam)),
            wrong_consumers: router(Arc::clone(&wrong_iam)),
            iam,
            wrong_iam,
            plan,
            aws,
        }
    }

    /// A value's key id and secret.
    fn key_of(value: &Values) -> (&str, &str) {
        (
            value["access_key_id"].expose(),
            value["secret_access_key"].expose(),
        )
    }
}

impl Subject for AwsSubject {
    fn name(&self) -> String {
        format!(
            "AWS IAM access key + Secrets Manager (moto, {:?})",
            self.plan.mode
        )
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "aws" => Arc::clone(&self.iam),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        match step.provider.as_str() {
            "aws" => Some(Arc::clone(&self.wrong_iam)),
            "consumer" => Some(Arc::clone(&self.wrong_consumers)),
            _ => None,
        }
    }

    fn old_value(&self) -> Values {
        [
            (
                "access_key_id".to_owned(),
                Value::Plain(self.aws.old_key.0.clone()),
            ),
            (
                "secret_access_key".to_owned(),
                Value::secret(self.aws.old_key.1.clone()),
            ),
        ]
        .into()
    }

    fn holds_two(&self) -> bool {
        true
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.aws.admin_key.1.clone(), WRONG_ADMIN_SECRET.to_owned()]
    }

    /// STS `GetCallerIdentity` signed with the key, which moto checks. moto still accepts an
    /// `Inactive` key, which AWS refuses: a key IAM lists as inactive counts as refused.
    async fn accepts(&self, value: &Values) -> bool {
        let (id, secret) = Self::key_of(value);
        let sts = aws_sdk_sts::Client::new(&self.aws.moto.sdk_config(id, secret));
        let signed = sts.get_caller_identity().send().await.is_ok();
        let inactive = self
            .aws
            .keys(USER)
            .await
            .get(id)
            .is_some_and(|s| s == "Inactive");
        signed && !inactive
    }

    async fn values(&self) -> usize {
        self.aws.keys(USER).await.len()
    }

    /// The user's keys and their status, its tags (the create markers), the secret's versions
    /// and their labels.
    async fn snapshot(&self) -> String {
        let tags: BTreeMap<String, String> = self
            .aws
            .iam
            .list_user_tags()
            .user_name(USER)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        let stages: BTreeMap<String, Vec<String>> = self
            .aws
            .stages(SECRET)
            .await
            .into_iter()
            .map(|(v, mut s)| {
                s.sort();
                (v, s)
            })
            .collect();
        format!(
            "keys {:?}\ntags {tags:?}\nversions {stages:?}",
            self.aws.keys(USER).await
        )
    }

    async fn consumer(&self) -> ConsumerView {
        ConsumerView {
            current: self.aws.value(SECRET, "AWSCURRENT").await,
            pending: self.aws.value(SECRET, "AWSPENDING").await,
        }
    }
}

/// A lost exception never widens a removal: a secret, empty or missing `except_access_key_id`
/// stops a drill's disable/delete, and no delete leaves the user without an active key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_exception_never_widens_a_removal() {
    let aws = setup().await;
    let inventory = r"
credentials:
  - id: deploy
    kind: aws_iam_access_key
    owner: team-web
    user_name: deploy-web
    delivered_to:
      - aws_secrets_manager: { secret_id: prod/web/aws-deploy }
";
    let drill = plan(inventory, Mode::Drill);
    let mut r = Runner {
        plan: &drill,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    let created = r.run("deploy/create").await;
    let new = created["access_key_id"].expose().to_owned();
    let old = aws.old_key.0.clone();
    let user = || Value::Plain("deploy-web".into());
    let cases: [(&str, Option<Value>); 3] = [
        ("a secret", Some(Value::secret(new.clone()))),
        ("empty", Some(Value::Plain(String::new()))),
        ("missing", None),
    ];
    for id in ["deploy/disable-old", "deploy/delete-old"] {
        for (what, except) in &cases {
            let mut inputs = Values::from([("user_name".to_owned(), user())]);
            if let Some(v) = except {
                inputs.insert("except_access_key_id".into(), v.clone());
            }
            let err = r
                .with_call(id, Some(inputs), async |c| aws.provider.execute(c).await)
                .await
                .expect_err(&format!("{id} ran with the exception {what}"));
            assert!(
                err.message.contains("except_access_key_id") && !err.message.contains(&new),
                "{id}, exception {what}: {}",
                err.message
            );
            let keys = aws.keys("deploy-web").await;
            assert_eq!(
                (keys.len(), keys[&old].as_str(), keys[&new].as_str()),
                (2, "Active", "Active"),
                "{id}, exception {what}: a key changed"
            );
        }
    }

    // An incident's cleanup whose exception was lost would delete the new key too: refused.
    let incident = plan(inventory, Mode::Incident);
    let r = Runner {
        plan: &incident,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    let inputs = Values::from([("user_name".to_owned(), user())]);
    let err = r
        .with_call("deploy/delete-old", Some(inputs), async |c| {
            aws.provider.execute(c).await
        })
        .await
        .expect_err("a delete that leaves no active key ran");
    assert!(
        err.message.contains("no active access key"),
        "{}",
        err.message
    );
    assert_eq!(aws.keys("deploy-web").await.len(), 2, "nothing was deleted");
}

// ---------------------------------------------------------------------------------------------
// Hardening (#9)

/// The user's `rekey:` tags (the write-ahead markers).
async fn rekey_tags(aws: &Aws) -> Vec<String> {
    aws.iam
        .list_user_tags()
        .user_name(USER)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| t.key().to_owned())
        .filter(|k| k.starts_with("rekey:"))
        .collect()
}

/// A user at IAM's 50-tag limit: `TagUser` answers `LimitExceeded`. moto 5.2 does not enforce
/// the limit on `TagUser`, so a stand-in in front of it answers as IAM does.
fn at_tag_limit(aws: &Aws) -> (rekey_testkit::StandIn, AwsProvider) {
    let stand_in = aws.moto.stand_in(|action| {
        (action == "TagUser").then(|| {
            rekey_testkit::aws_error(
                409,
                "LimitExceeded",
                "Cannot exceed quota for TagsPerUser: 50",
            )
        })
    });
    let config = stand_in.sdk_config(&aws.moto, &aws.admin_key.0, &aws.admin_key.1);
    (stand_in, AwsProvider::from_sdk_config(&config))
}

/// An incident on a user at the tag limit: the old key is disabled first, then the create's
/// write-ahead marker cannot be written. The rotation must go on (the key ids recorded by
/// `free-slot` are the record), a create whose outcome was lost must still be found and
/// deleted, and IAM's tag limit is not reported as the two-keys limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_at_the_tag_limit_is_rotated_and_a_lost_create_is_found() {
    let aws = setup().await;
    let (_stand_in, provider) = at_tag_limit(&aws);
    let plan = aws_plan_in(
        Mode::Incident,
        &aws.old_key.0,
        "{ secret_id: prod/web/aws-deploy }",
    );
    let mut r = Runner {
        plan: &plan,
        provider: &provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/disable-exposed").await;
    r.run("deploy/free-slot").await;
    let (created, reports) = r
        .with_call("deploy/create", None, async |c| {
            (provider.execute(c).await, c.reports.take())
        })
        .await;
    let created = match created {
        Ok(v) => v,
        Err(e) => panic!(
            "create failed on a user at the tag limit ({}): {e}",
            if e.message.contains("two access keys") {
                "and blamed the two-keys limit"
            } else {
                "the marker is not optional"
            }
        ),
    };
    let orphan = created["access_key_id"].expose().to_owned();
    assert_eq!(aws.keys(USER).await.len(), 2);
    assert!(rekey_tags(&aws).await.is_empty(), "no marker was written");
    // Said, with AWS's own message, and not blamed on the two-keys limit.
    assert!(
        matches!(reports.as_slice(), [w] if w.event == "provider_warning"
            && w.detail.contains("Cannot exceed quota for TagsPerUser: 50")
            && w.detail.contains("free-slot")
            && !w.detail.contains("two access keys")),
        "{reports:?}"
    );

    // The outcome was lost: reconcile finds the key without a marker and deletes it.
    r.outputs.remove("create");
    let (rec, reports) = r
        .with_call("deploy/create", None, async |c| {
            (provider.reconcile(c).await.unwrap(), c.reports.take())
        })
        .await;
    assert!(matches!(rec, Reconciled::NotDone), "{rec:?}");
    assert!(
        matches!(reports.as_slice(), [x] if x.event == "side_effect" && x.detail.contains(&orphan)),
        "the orphan's deletion is reported: {reports:?}"
    );
    let keys = aws.keys(USER).await;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        vec![&aws.old_key.0],
        "the orphan {orphan} is gone, the old key stays"
    );

    // A retried create (attempt 2) whose first answer was lost removes the first key too.
    let first = r.run("deploy/create").await["access_key_id"]
        .expose()
        .to_owned();
    let second = r
        .with_call("deploy/create", None, async |c| {
            let retry = Call {
                attempt: 2,
                tried_before: true,
                reports: rekey_engine::Reports::default(),
                ..*c
            };
            let out = provider.execute(&retry).await.unwrap();
            assert!(
                retry
                    .reports
                    .take()
                    .iter()
                    .any(|x| x.event == "side_effect" && x.detail.contains(&first)),
                "the first attempt's key is deleted, and said"
            );
            out["access_key_id"].expose().to_owned()
        })
        .await;
    assert_ne!(first, second);
    let keys = aws.keys(USER).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains_key(&second) && !keys.contains_key(&first));

    // Undo with the outputs lost deletes the created key, and says so; the old one stays.
    let reports = r
        .with_call("deploy/create", None, async |c| {
            provider.undo(c, &Values::new()).await.unwrap();
            c.reports.take()
        })
        .await;
    assert!(
        reports
            .iter()
            .any(|x| x.event == "side_effect" && x.detail.contains(&second)),
        "{reports:?}"
    );
    assert_eq!(
        aws.keys(USER).await.keys().collect::<Vec<_>>(),
        vec![&aws.old_key.0]
    );
}

/// Undoing a rotation leaves none of rekey's markers on the user (they used to be removed only
/// by the final delete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_removes_the_markers() {
    let aws = setup().await;
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    r.run("deploy/create").await;
    r.run("deploy/disable-old").await;
    assert_eq!(
        rekey_tags(&aws).await.len(),
        2,
        "a create and an off marker"
    );
    for id in ["deploy/disable-old", "deploy/create"] {
        let outputs = r.outputs[&step(&plan, id).step].clone();
        r.with_call(id, None, async |c| aws.provider.undo(c, &outputs).await)
            .await
            .unwrap();
    }
    assert_eq!(
        aws.keys(USER).await.into_iter().collect::<Vec<_>>(),
        vec![(aws.old_key.0.clone(), "Active".to_owned())]
    );
    let left = rekey_tags(&aws).await;
    assert!(left.is_empty(), "markers left after the undo: {left:?}");
}

/// An incident with `access_key_id` set: a second active key the inventory does not know (an
/// attacker's) is disabled too, and named as unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_disables_every_active_key_and_names_the_unknown_ones() {
    let aws = setup().await;
    let (intruder, _) = create_key(&aws.iam, USER).await;
    let plan = aws_plan_in(
        Mode::Incident,
        &aws.old_key.0,
        "{ secret_id: prod/web/aws-deploy }",
    );
    let mut r = Runner {
        plan: &plan,
        provider: &aws.provider,
        outputs: BTreeMap::new(),
    };
    let (out, reports) = r
        .with_call("deploy/disable-exposed", None, async |c| {
            (aws.provider.execute(c).await.unwrap(), c.reports.take())
        })
        .await;
    r.outputs.insert("disable-exposed".into(), out.clone());
    assert!(
        matches!(reports.as_slice(), [w] if w.event == "provider_warning" && w.detail.contains(&intruder)
            && !w.detail.contains(&aws.old_key.0)),
        "the unknown key is named: {reports:?}"
    );
    let keys = aws.keys(USER).await;
    assert_eq!(keys[&aws.old_key.0], "Inactive");
    assert_eq!(keys[&intruder], "Inactive", "the unknown key stayed active");
    let mut off: Vec<&str> = out["deactivated"].expose().split(' ').collect();
    off.sort_unstable();
    let mut want = vec![aws.old_key.0.as_str(), intruder.as_str()];
    want.sort_unstable();
    assert_eq!(off, want);
    assert_eq!(
        out.get("unknown_keys").map(Value::expose),
        Some(intruder.as_str()),
        "{out:?}"
    );
    // A lost answer: reconcile reports the same.
    let rec = r
        .with_call("deploy/disable-exposed", None, async |c| {
            aws.provider.reconcile(c).await
        })
        .await
        .unwrap();
    match rec {
        Reconciled::Done(v) => {
            assert_eq!(
                v.get("unknown_keys").map(Value::expose),
                Some(intruder.as_str())
            );
        }
        Reconciled::NotDone => panic!("a finished deactivate reconciled as not done"),
    }
    // The rotation goes on: the unknown key, inactive, makes room for the new one.
    r.run("deploy/free-slot").await;
    let new = r.run("deploy/create").await["access_key_id"]
        .expose()
        .to_owned();
    let keys = aws.keys(USER).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[&new], "Active");
    assert_eq!(keys[&aws.old_key.0], "Inactive");
}

/// Without a marker, a first attempt does not take a key made since `free-slot` (by a person,
/// another tool) for an orphan of its own: it stops at IAM's two-keys limit instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_create_without_a_marker_spares_a_key_made_since_free_slot() {
    let aws = setup().await;
    let (_stand_in, provider) = at_tag_limit(&aws);
    let plan = aws_plan(&aws.old_key.0, "{ secret_id: prod/web/aws-deploy }");
    let mut r = Runner {
        plan: &plan,
        provider: &provider,
        outputs: BTreeMap::new(),
    };
    r.run("deploy/free-slot").await;
    let (someone, _) = create_key(&aws.iam, USER).await;
    let err = r.exec("deploy/create").await.expect_err("a third key");
    assert!(
        err.message.contains("LimitExceeded") && err.message.contains("two access keys"),
        "{err}"
    );
    assert!(
        aws.keys(USER).await.contains_key(&someone),
        "their key stays"
    );
}
