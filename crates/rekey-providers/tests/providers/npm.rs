//! The npm provider against a real Verdaccio 6.8.0 (`rekey_testkit::Verdaccio`, installed by
//! `scripts/peers.sh`): list, mint, whoami, delete by key and by value, orphans of lost mints,
//! 20 % injected faults through `FaultProxy`; and, against the in-process fake written from
//! npm's documentation (`rekey_testkit::NpmFake`), what Verdaccio lacks: OTP challenges, names,
//! npm's masked values and paged lists. The conformance subject (`NpmSubject`) is run by
//! `conformance.rs`. Every outcome is checked on the registry itself (whoami with the token,
//! the account's token list), not in the provider's answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rekey_engine::{
    Call, ErrorKind, OPERATOR_INPUT, Provider, ProviderError, Reconciled, Value, Values,
};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::envfile::EnvFileProvider;
use rekey_providers::http::BudgetSpec;
use rekey_providers::npm::{NpmConfig, NpmProvider};
use rekey_providers::router::ConsumerRouter;
use rekey_spec::Mode;
use rekey_testkit::npm_fake::FAKE_OTP;
use rekey_testkit::{FaultProxy, NpmFake, Verdaccio};
use secrecy::SecretString;

use crate::conformance::{ConsumerView, Subject};
use crate::harness::{self, digest, env_value};

const PASSWORD: &str = "Npm-Acc0unt-Pa55word-Never-Shown";
const WRONG_PASSWORD: &str = "Wr0ng-Npm-Pa55word-Never-Shown";
const PASSWORD_ENV: &str = "NPM_TEST_PASSWORD";

fn config(password: &str) -> NpmConfig {
    let password = password.to_owned();
    NpmConfig {
        lookup: Box::new(move |k| {
            (k == PASSWORD_ENV).then(|| SecretString::from(password.clone()))
        }),
        timeout: Duration::from_secs(10),
        budget: BudgetSpec {
            per_hour: 1_000_000,
            hourly_burst: 1_000_000,
            concurrent: 64,
            writes_per_minute: 1_000_000,
            write_burst: 1_000_000,
        },
        delete_pace: (1_000_000, 1_000_000),
        propagation_wait: Duration::from_secs(5),
    }
}

fn provider() -> NpmProvider {
    NpmProvider::new(config(PASSWORD))
}

/// One npm credential of `user` at `registry`, delivered to an env file.
fn inventory(
    kind: &str,
    user: &str,
    registry: &str,
    key: Option<&str>,
    env: &str,
    extra: &str,
) -> String {
    let key = key
        .map(|k| format!("    token_key: {k}\n"))
        .unwrap_or_default();
    format!(
        "credentials:\n  - id: npm-{user}\n    kind: {kind}\n    owner: team-web\n    npm_user: {user}\n    registry: {registry}\n    password_env: {PASSWORD_ENV}\n{key}{extra}    delivered_to:\n      - env_file: {{ path: {env}, key: NPM_TOKEN }}\n"
    )
}

fn call<'a>(plan: &'a Plan, step: &'a PlannedStep, inputs: &'a Values, key: &'a str) -> Call<'a> {
    Call {
        run_id: "run-npm",
        step,
        credential: &plan.credentials[step.credential as usize],
        inputs,
        idempotency_key: key,
        attempt: 1,
        tried_before: false,
        reports: rekey_engine::Reports::default(),
    }
}

/// [`call`] of a step called before (a retry, a resume): a create looks for leftovers.
fn call_again<'a>(
    plan: &'a Plan,
    step: &'a PlannedStep,
    inputs: &'a Values,
    key: &'a str,
) -> Call<'a> {
    Call {
        tried_before: true,
        ..call(plan, step, inputs, key)
    }
}

/// Verdaccio with `user` and one token (the old one), and the plan of a drill of that
/// granular token.
struct OneAccount {
    v: Verdaccio,
    old_key: String,
    old: String,
    plan: Plan,
    _dir: tempfile::TempDir,
}

fn one_account(user: &str) -> OneAccount {
    let v = Verdaccio::start();
    v.add_user(user, PASSWORD);
    let (old_key, old) = v.create_token(user, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("npm.env").display().to_string();
    let inv = inventory(
        "npm_granular_token",
        user,
        &v.url(),
        Some(&old_key),
        &env,
        "",
    );
    let plan = harness::compile(&inv, Mode::Drill, None);
    OneAccount {
        v,
        old_key,
        old,
        plan,
        _dir: dir,
    }
}

/// `create`'s inputs: its literal ones and the keys `list-before` lists now.
async fn create_inputs(p: &NpmProvider, plan: &Plan, user: &str) -> Values {
    let listed = harness::run(p, plan, &format!("npm-{user}/list-before"), &[]).await;
    harness::literal_inputs(
        plan,
        &format!("npm-{user}/create"),
        &[("existing_keys", listed["keys"].clone())],
    )
}

/// Retries like the engine: transient and rate-limited errors, up to `tries`.
async fn with_retries(
    tries: u32,
    mut f: impl AsyncFnMut() -> Result<Values, ProviderError>,
) -> Result<Values, ProviderError> {
    let mut last = None;
    for _ in 0..tries {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if matches!(e.kind, ErrorKind::Permanent | ErrorKind::NeedsInput) => {
                return Err(e);
            }
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap())
}

// ---------------------------------------------------------------------------------------------
// Verdaccio

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_mint_verify_delete_by_key() {
    let v = Verdaccio::start();
    v.add_user("alice", PASSWORD);
    let (old_key, old) = v.create_token("alice", PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("npm.env");
    let inv = inventory(
        "npm_granular_token",
        "alice",
        &v.url(),
        Some(&old_key),
        &env.display().to_string(),
        "",
    );
    let plan = harness::compile(&inv, Mode::Drill, None);
    let p = provider();

    let listed = harness::run(&p, &plan, "npm-alice/list-before", &[]).await;
    assert_eq!(
        listed["keys"].expose(),
        serde_json::to_string(&[&old_key]).unwrap()
    );
    let created = harness::run(
        &p,
        &plan,
        "npm-alice/create",
        &[("existing_keys", listed["keys"].clone())],
    )
    .await;
    let new = created["token"].clone();
    assert!(new.is_secret());
    assert!(!format!("{created:?}").contains(new.expose()));
    assert_eq!(
        v.whoami(new.expose()).as_deref(),
        Some("alice"),
        "the registry takes the new token"
    );
    assert_eq!(
        v.whoami(&old).as_deref(),
        Some("alice"),
        "the old one still works"
    );

    let who = harness::run(&p, &plan, "npm-alice/verify", &[("token", new.clone())]).await;
    assert_eq!(who["username"].expose(), "alice");
    // Verdaccio answers 200 {} for a token it does not know: the check still fails.
    let e = harness::run_err(
        &p,
        &plan,
        "npm-alice/verify",
        &[(
            "token",
            Value::secret("bm90LWEtdG9rZW4tYXQtYWxsLTEyMzQ1Njc4OTA="),
        )],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");

    harness::run(
        &p,
        &plan,
        "npm-alice/delete-old",
        &[("except_key", created["key"].clone())],
    )
    .await;
    assert_eq!(
        v.whoami(&old),
        None,
        "the old token is refused after the delete"
    );
    assert_eq!(v.whoami(new.expose()).as_deref(), Some("alice"));
    assert_eq!(
        v.token_keys("alice", PASSWORD),
        vec![created["key"].expose().to_owned()]
    );

    // Deleting the new key through `key` = `except_key` is refused.
    let mut inputs = harness::literal_inputs(&plan, "npm-alice/delete-old", &[]);
    inputs.insert("key".into(), created["key"].clone());
    inputs.insert("except_key".into(), created["key"].clone());
    let step = harness::step(&plan, "npm-alice/delete-old");
    let e = p
        .execute(&call(&plan, step, &inputs, "k"))
        .await
        .unwrap_err();
    assert!(e.message.contains("is the new one"), "{e}");
    assert_eq!(v.whoami(new.expose()).as_deref(), Some("alice"));
    harness::assert_clean(&e.message, &[new.expose(), &old, PASSWORD]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_delete_by_value_from_the_consumer() {
    let v = Verdaccio::start();
    v.add_user("bob", PASSWORD);
    let (_, other) = v.create_token("bob", PASSWORD);
    let (_, old) = v.create_token("bob", PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("npm.env");
    std::fs::write(&env, format!("NPM_TOKEN={old}\n")).unwrap();
    let inv = inventory(
        "npm_granular_token",
        "bob",
        &v.url(),
        None,
        &env.display().to_string(),
        "",
    );
    let plan = harness::compile(&inv, Mode::Incident, None);
    assert!(
        plan.step("npm-bob/capture-old").is_some(),
        "without token_key the plan reads the old token from its consumer"
    );
    let p = provider();
    let consumers = ConsumerRouter {
        aws: None,
        github: None,
        env_file: Arc::new(EnvFileProvider),
    };
    let captured = harness::run(&consumers, &plan, "npm-bob/capture-old", &[]).await;
    let deleted = harness::run(
        &p,
        &plan,
        "npm-bob/delete-exposed",
        &[("token", captured["value"].clone())],
    )
    .await;
    assert!(
        !deleted["deleted"].expose().is_empty(),
        "found by its masked value"
    );
    assert_eq!(v.whoami(&old), None, "the old token is refused");
    assert_eq!(
        v.whoami(&other).as_deref(),
        Some("bob"),
        "another token of bob still works"
    );
    assert_eq!(v.token_keys("bob", PASSWORD).len(), 1);
    // Again (a retry after a lost answer): nothing listed matches, the old value is refused.
    harness::run(
        &p,
        &plan,
        "npm-bob/delete-exposed",
        &[("token", captured["value"].clone())],
    )
    .await;
    assert_eq!(v.whoami(&other).as_deref(), Some("bob"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_orphan_of_a_lost_mint_is_deleted() {
    let OneAccount {
        v,
        old_key,
        old,
        plan,
        _dir,
    } = one_account("carol");
    let p = provider();
    let inputs = create_inputs(&p, &plan, "carol").await;
    let step = harness::step(&plan, "npm-carol/create");
    // The answer of this call is lost.
    let lost = p
        .execute(&call(&plan, step, &inputs, "idem-1"))
        .await
        .unwrap();
    assert_eq!(v.token_keys("carol", PASSWORD).len(), 2);
    // A new process (nothing in memory) reconciles.
    let fresh = provider();
    let c = call(&plan, step, &inputs, "idem-1");
    assert!(matches!(
        fresh.reconcile(&c).await.unwrap(),
        Reconciled::NotDone
    ));
    let reports = c.reports.take();
    assert!(
        reports
            .iter()
            .any(|r| r.event == "side_effect" && r.detail.contains(lost["key"].expose())),
        "{reports:?}"
    );
    assert_eq!(v.whoami(lost["token"].expose()), None, "the orphan is gone");
    assert_eq!(v.token_keys("carol", PASSWORD), vec![old_key.clone()]);
    assert_eq!(
        v.whoami(&old).as_deref(),
        Some("carol"),
        "the old token is untouched"
    );

    // Another step's fresh token (minted by this process) is never taken for an orphan.
    let other = p
        .execute(&call(&plan, step, &inputs, "idem-2"))
        .await
        .unwrap();
    let again = p
        .execute(&call_again(&plan, step, &inputs, "idem-1"))
        .await
        .unwrap();
    assert_eq!(v.whoami(other["token"].expose()).as_deref(), Some("carol"));
    assert_eq!(v.whoami(again["token"].expose()).as_deref(), Some("carol"));
    // A process that knows neither cannot tell them apart: it stops instead of guessing.
    let c = call(&plan, step, &inputs, "idem-3");
    let e = provider().reconcile(&c).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("cannot tell"), "{e}");
    assert_eq!(
        v.token_keys("carol", PASSWORD).len(),
        3,
        "nothing was deleted"
    );
}

/// A first mint looks for no leftovers: a token a person (or another credential's step) made
/// after the keys were listed is not taken for an orphan of this step and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_first_mint_leaves_a_token_made_meanwhile() {
    let OneAccount { v, plan, _dir, .. } = one_account("frank");
    let p = provider();
    let inputs = create_inputs(&p, &plan, "frank").await;
    let (_, theirs) = v.create_token("frank", PASSWORD);
    let step = harness::step(&plan, "npm-frank/create");
    let c = call(&plan, step, &inputs, "idem-1");
    let made = p.execute(&c).await.unwrap();
    assert!(c.reports.take().is_empty(), "nothing deleted or warned");
    assert_eq!(
        v.whoami(&theirs).as_deref(),
        Some("frank"),
        "theirs survives"
    );
    assert_eq!(v.whoami(made["token"].expose()).as_deref(), Some("frank"));
    assert_eq!(v.token_keys("frank", PASSWORD).len(), 3);
}

/// Two credentials of one account in one run, on a registry that lists no names: a later
/// process undoes the mint of one (its value was lost with the process that made it) by its
/// recorded key and mints again; the other's token, made by the earlier process and
/// delivered, survives both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_undo_by_key_leaves_another_steps_token() {
    let OneAccount { v, plan, _dir, .. } = one_account("dave");
    let p = provider();
    let inputs = create_inputs(&p, &plan, "dave").await;
    let step = harness::step(&plan, "npm-dave/create");
    // Two mints after the same list (two credentials of the account), in one process.
    let lost = p
        .execute(&call(&plan, step, &inputs, "idem-a"))
        .await
        .unwrap();
    let kept = p
        .execute(&call(&plan, step, &inputs, "idem-b"))
        .await
        .unwrap();
    // A new process undoes the first by the key it recorded.
    let outputs: Values = [("key".to_owned(), lost["key"].clone())].into();
    provider()
        .undo(&call(&plan, step, &inputs, "idem-a"), &outputs)
        .await
        .unwrap();
    assert_eq!(
        v.whoami(lost["token"].expose()),
        None,
        "the undone token is gone"
    );
    assert_eq!(
        v.whoami(kept["token"].expose()).as_deref(),
        Some("dave"),
        "the other step's token was deleted as an orphan"
    );
    // The redo: a process undoes the lost step's mint and mints again for it (with the keys
    // listed before the first mint); the other step's token is not taken for its orphan.
    let fresh = provider();
    fresh
        .undo(&call(&plan, step, &inputs, "idem-a"), &outputs)
        .await
        .unwrap();
    let again = fresh
        .execute(&call(&plan, step, &inputs, "idem-a"))
        .await
        .unwrap();
    assert_eq!(v.whoami(again["token"].expose()).as_deref(), Some("dave"));
    assert_eq!(
        v.whoami(kept["token"].expose()).as_deref(),
        Some("dave"),
        "the redo's mint deleted the other step's token as an orphan"
    );
    assert_eq!(v.token_keys("dave", PASSWORD).len(), 3, "old, kept, again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_wrong_password_changes_nothing() {
    let v = Verdaccio::start();
    v.add_user("dave", PASSWORD);
    let (old_key, old) = v.create_token("dave", PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("npm.env").display().to_string();
    let inv = inventory(
        "npm_granular_token",
        "dave",
        &v.url(),
        Some(&old_key),
        &env,
        "",
    );
    let plan = harness::compile(&inv, Mode::Drill, None);
    let wrong = NpmProvider::new(config(WRONG_PASSWORD));
    for id in [
        "npm-dave/list-before",
        "npm-dave/create",
        "npm-dave/delete-old",
    ] {
        let e = harness::run_err(
            &wrong,
            &plan,
            id,
            &[("except_key", Value::Plain("x".into()))],
        )
        .await;
        assert_eq!(e.kind, ErrorKind::Permanent, "{id}: {e}");
        harness::assert_clean(&e.message, &[PASSWORD, WRONG_PASSWORD, &old]);
        assert!(e.message.contains("401"), "{id}: {e}");
    }
    assert_eq!(v.token_keys("dave", PASSWORD), vec![old_key]);
    // An unset password variable is named, not guessed.
    let unset = NpmProvider::new(NpmConfig::default());
    let step = harness::step(&plan, "npm-dave/create");
    let e = unset.preflight(step).await.unwrap_err();
    assert!(e.message.contains(PASSWORD_ENV), "{e}");
}

/// 20 % of requests fail (429, 503 and resets, before or after they took effect): every
/// credential still ends with exactly one token, the new one, and the old one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdaccio_converges_under_injected_faults() {
    let v = Verdaccio::start();
    let proxy = FaultProxy::start(v.port(), 0.2, 0x5EED);
    let p = provider();
    let dir = tempfile::tempdir().unwrap();
    let n = 8;
    let mut olds = Vec::new();
    let mut inv = String::from("credentials:\n");
    for i in 0..n {
        let user = format!("u{i}");
        v.add_user(&user, PASSWORD);
        let (key, old) = v.create_token(&user, PASSWORD);
        olds.push(old);
        let one = inventory(
            "npm_granular_token",
            &user,
            &proxy.url(),
            Some(&key),
            &dir.path().join(format!("{user}.env")).display().to_string(),
            "",
        );
        inv.push_str(one.strip_prefix("credentials:\n").unwrap());
    }
    let plan = harness::compile(&inv, Mode::Drill, None);
    for (i, old) in olds.iter().enumerate() {
        let user = format!("u{i}");
        let id = |s: &str| format!("npm-{user}/{s}");
        let mut outputs: BTreeMap<String, Values> = BTreeMap::new();
        for step_name in ["list-before", "create", "verify", "delete-old"] {
            let step = harness::step(&plan, &id(step_name));
            let inputs = harness::resolve(step, "run-npm", &outputs).unwrap();
            let key = format!("idem-{user}-{step_name}");
            let got = with_retries(40, async || {
                p.execute(&call(&plan, step, &inputs, &key)).await
            })
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", step.id));
            outputs.insert(step_name.to_owned(), got);
        }
        let new = outputs["create"]["token"].expose().to_owned();
        assert_eq!(
            v.whoami(&new).as_deref(),
            Some(user.as_str()),
            "{user}: the new token works"
        );
        assert_eq!(v.whoami(old), None, "{user}: the old token is refused");
        assert_eq!(
            v.token_keys(&user, PASSWORD),
            vec![outputs["create"]["key"].expose().to_owned()],
            "{user}: exactly one token, the new one (no orphan)"
        );
    }
    assert!(
        proxy.faults() >= 5,
        "faults were injected: {} of {}",
        proxy.faults(),
        proxy.requests()
    );
}

// ---------------------------------------------------------------------------------------------
// The documented API's OTP, names, masks and pages (the fake)

#[tokio::test]
async fn otp_is_asked_for_and_never_kept() {
    let fake = NpmFake::start().await;
    fake.add_user("erin", PASSWORD, true);
    let (old_key, old) = fake.add_token("erin");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("npm.env").display().to_string();
    let inv = inventory(
        "npm_granular_token",
        "erin",
        &fake.url(),
        Some(&old_key),
        &env,
        "    permission: read-write\n    packages: \"@acme/web,@acme/cli\"\n    scopes: \"@acme\"\n    expires_days: '30'\n    cidr_whitelist: 10.0.0.0/8\n    token_name: ci-publish\n",
    );
    let plan = harness::compile(&inv, Mode::Drill, None);
    let p = provider();
    // Listing needs no OTP; minting does.
    let listed = harness::run(&p, &plan, "npm-erin/list-before", &[]).await;
    let extra = [("existing_keys", listed["keys"].clone())];
    let e = harness::run_err(&p, &plan, "npm-erin/create", &extra).await;
    assert_eq!(e.kind, ErrorKind::NeedsInput, "{e}");
    assert!(e.message.contains("one-time password"), "{e}");
    // A wrong code: asked again.
    let wrong_otp = "999999";
    let e = harness::run_err(
        &p,
        &plan,
        "npm-erin/create",
        &[extra[0].clone(), (OPERATOR_INPUT, Value::secret(wrong_otp))],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::NeedsInput);
    assert!(e.message.contains("refused"), "{e}");
    let created = harness::run(
        &p,
        &plan,
        "npm-erin/create",
        &[extra[0].clone(), (OPERATOR_INPUT, Value::secret(FAKE_OTP))],
    )
    .await;
    let tokens = fake.tokens("erin");
    assert_eq!(tokens.len(), 2);
    let made = tokens
        .iter()
        .find(|t| t.key == created["key"].expose())
        .unwrap();
    // The inventory's fields reach the registry, and the name carries the step's key.
    let name = made.name.clone().unwrap();
    assert!(name.starts_with("ci-publish-"), "{name}");
    assert_eq!(made.request["expires"], 30);
    assert_eq!(
        made.request["packages"],
        serde_json::json!(["@acme/web", "@acme/cli"])
    );
    assert_eq!(made.request["scopes"], serde_json::json!(["@acme"]));
    assert_eq!(
        made.request["cidr_whitelist"],
        serde_json::json!(["10.0.0.0/8"])
    );
    assert_eq!(made.request["packages_and_scopes_permission"], "read-write");
    assert_eq!(
        fake.whoami(created["token"].expose()).as_deref(),
        Some("erin")
    );
    // A lost mint of a two-factor account: reconcile (a new process, no OTP) cannot delete
    // the orphan and says so; the step run again asks for the OTP, then deletes it first.
    let step = harness::step(&plan, "npm-erin/create");
    let inputs = harness::literal_inputs(&plan, "npm-erin/create", &extra);
    let c = call(&plan, step, &inputs, "test-key");
    assert!(matches!(
        provider().reconcile(&c).await.unwrap(),
        Reconciled::NotDone
    ));
    assert!(
        c.reports
            .take()
            .iter()
            .any(|r| r.event == "provider_warning")
    );
    assert_eq!(fake.tokens("erin").len(), 2, "the orphan is still there");
    let with_otp = harness::literal_inputs(
        &plan,
        "npm-erin/create",
        &[extra[0].clone(), (OPERATOR_INPUT, Value::secret(FAKE_OTP))],
    );
    let again = p
        .execute(&call_again(&plan, step, &with_otp, "test-key"))
        .await
        .unwrap();
    assert_eq!(
        fake.whoami(created["token"].expose()),
        None,
        "the orphan was deleted"
    );
    assert_eq!(
        fake.tokens("erin").len(),
        2,
        "the old token and the new one"
    );
    let created = again;
    let made = fake
        .tokens("erin")
        .into_iter()
        .find(|t| t.key == created["key"].expose())
        .unwrap();
    assert!(made.name.unwrap().starts_with("ci-publish-"));
    // Neither the password nor the OTP is in what a step gives back.
    for shown in [
        format!("{created:?}"),
        rekey_engine::provider::plain_json(&created),
    ] {
        assert!(!shown.contains(FAKE_OTP) && !shown.contains(PASSWORD));
    }

    // The delete asks too, then takes the old one.
    let e = harness::run_err(
        &p,
        &plan,
        "npm-erin/delete-old",
        &[("except_key", created["key"].clone())],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::NeedsInput);
    assert_eq!(
        fake.whoami(&old).as_deref(),
        Some("erin"),
        "nothing deleted without the OTP"
    );
    harness::run(
        &p,
        &plan,
        "npm-erin/delete-old",
        &[
            ("except_key", created["key"].clone()),
            (OPERATOR_INPUT, Value::secret(FAKE_OTP)),
        ],
    )
    .await;
    assert_eq!(fake.whoami(&old), None);
    let (sent, challenges) = fake.otp_counts();
    assert!(sent >= 3 && challenges >= 3, "{sent} {challenges}");
}

#[tokio::test]
async fn names_pages_and_masked_values() {
    let fake = NpmFake::start().await;
    fake.add_user("frank", PASSWORD, false);
    // Five tokens: the list takes three pages.
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(fake.add_token("frank"));
    }
    let (_, old) = fake.add_token("frank");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("npm.env");
    std::fs::write(&env, format!("NPM_TOKEN={old}\n")).unwrap();
    let inv = inventory(
        "npm_granular_token",
        "frank",
        &fake.url(),
        None,
        &env.display().to_string(),
        "",
    );
    let plan = harness::compile(&inv, Mode::Drill, None);
    let p = provider();
    let listed = harness::run(&p, &plan, "npm-frank/list-before", &[]).await;
    let keys: Vec<String> = serde_json::from_str(listed["keys"].expose()).unwrap();
    assert_eq!(keys.len(), 5, "every page was followed");

    // A lost mint is found by its name (no snapshot needed where names are kept).
    let step = harness::step(&plan, "npm-frank/create");
    let inputs = harness::literal_inputs(&plan, "npm-frank/create", &[]);
    let lost = p
        .execute(&call(&plan, step, &inputs, "idem-lost"))
        .await
        .unwrap();
    let c = call(&plan, step, &inputs, "idem-lost");
    assert!(matches!(
        provider().reconcile(&c).await.unwrap(),
        Reconciled::NotDone
    ));
    assert_eq!(
        fake.whoami(lost["token"].expose()),
        None,
        "the orphan was deleted by name"
    );
    assert_eq!(fake.tokens("frank").len(), 5, "and nothing else");

    // By value: npm shows `npm_ab…`; when several tokens share what is shown, rekey refuses
    // to guess, otherwise it deletes the one that matches.
    let shown = &old[..6];
    let ambiguous = others.iter().any(|(_, t)| t.starts_with(shown));
    let r = p
        .execute(&call(
            &plan,
            harness::step(&plan, "npm-frank/delete-old"),
            &harness::literal_inputs(
                &plan,
                "npm-frank/delete-old",
                &[("token", Value::secret(old.clone()))],
            ),
            "idem-del",
        ))
        .await;
    if ambiguous {
        let e = r.unwrap_err();
        assert!(e.message.contains("look like the old one"), "{e}");
        assert_eq!(fake.tokens("frank").len(), 5);
    } else {
        r.unwrap();
        assert_eq!(fake.whoami(&old), None);
        assert_eq!(fake.tokens("frank").len(), 4);
        for (_, t) in &others {
            assert_eq!(fake.whoami(t).as_deref(), Some("frank"));
        }
    }
}

#[test]
fn validate_refuses_a_write_token_longer_than_90_days() {
    let inv = inventory(
        "npm_granular_token",
        "gina",
        "https://registry.npmjs.org/",
        Some("k1"),
        "/tmp/x.env",
        "    expires_days: '120'\n",
    );
    let e = rekey_spec::parse_inventory(&[Arc::new(rekey_spec::SourceFile::new(
        "inventory.yaml",
        inv.as_str(),
    ))])
    .unwrap_err()
    .to_string();
    assert!(e.contains("at most 90 days"), "{e}");
    let ro = inv.replace(
        "    expires_days: '120'\n",
        "    expires_days: '120'\n    permission: read-only\n",
    );
    rekey_spec::parse_inventory(&[Arc::new(rekey_spec::SourceFile::new(
        "inventory.yaml",
        ro.as_str(),
    ))])
    .expect("a read-only token may live 120 days");
}

// ---------------------------------------------------------------------------------------------
// Conformance subject

/// An npm account on a real Verdaccio with one token, delivered to an env file (`NPM_TOKEN`).
pub(crate) struct NpmSubject {
    v: Verdaccio,
    plan: Plan,
    env: tempfile::TempDir,
    old_key: String,
    old: String,
    provider: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
    wrong: Arc<dyn Provider>,
}

impl NpmSubject {
    pub(crate) fn start(mode: Mode) -> Self {
        Self::of("npm_granular_token", mode)
    }

    pub(crate) fn classic(mode: Mode) -> Self {
        Self::of("npm_classic_token", mode)
    }

    fn of(kind: &str, mode: Mode) -> Self {
        let v = Verdaccio::start();
        v.add_user("pub", PASSWORD);
        let (old_key, old) = v.create_token("pub", PASSWORD);
        let env = tempfile::tempdir().unwrap();
        let file = env.path().join("npm.env");
        std::fs::write(&file, format!("NPM_TOKEN={old}\n")).unwrap();
        let inv = inventory(
            kind,
            "pub",
            &v.url(),
            Some(old_key.as_str()),
            &file.display().to_string(),
            "",
        );
        let plan = harness::compile(&inv, mode, None);
        Self {
            v,
            plan,
            env,
            old_key,
            old,
            provider: Arc::new(provider()),
            consumers: Arc::new(ConsumerRouter {
                aws: None,
                github: None,
                env_file: Arc::new(EnvFileProvider),
            }),
            wrong: Arc::new(NpmProvider::new(config(WRONG_PASSWORD))),
        }
    }
}

impl Subject for NpmSubject {
    fn name(&self) -> String {
        format!(
            "npm {} on Verdaccio ({:?})",
            self.plan.credentials[0].kind, self.plan.mode
        )
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "npm" => Arc::clone(&self.provider),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        (step.provider == "npm").then(|| Arc::clone(&self.wrong))
    }

    fn old_value(&self) -> Values {
        [
            ("key".to_owned(), Value::Plain(self.old_key.clone())),
            ("token".to_owned(), Value::secret(self.old.clone())),
        ]
        .into()
    }

    fn holds_two(&self) -> bool {
        true
    }

    fn secrets(&self) -> Vec<String> {
        vec![PASSWORD.to_owned(), WRONG_PASSWORD.to_owned()]
    }

    async fn accepts(&self, value: &Values) -> bool {
        self.v.whoami(value["token"].expose()).as_deref() == Some("pub")
    }

    async fn values(&self) -> usize {
        self.v.token_keys("pub", PASSWORD).len()
    }

    async fn snapshot(&self) -> String {
        let file = std::fs::read(self.env.path().join("npm.env")).unwrap_or_default();
        format!(
            "tokens {:?}, env file {}",
            self.v.token_keys("pub", PASSWORD),
            digest(&file)
        )
    }

    async fn consumer(&self) -> ConsumerView {
        let text = std::fs::read_to_string(self.env.path().join("npm.env")).unwrap_or_default();
        ConsumerView {
            current: env_value(&text, "NPM_TOKEN"),
            pending: None,
        }
    }
}
