//! The GitHub provider and the shared HTTP layer against the in-process GitHub fake
//! (`rekey_testkit::GithubFake`, which decrypts what it receives): Actions secrets at every
//! scope, `preflight`, `github.user.get`, `github.credentials.revoke` (github.com and GHES
//! flavours, batches), `github.app.verify_key`, App installation auth, injected faults, and per
//! action the conformance classes (crash before the call, lost answer, repeated call, undo,
//! wrong token, no secret in any error, `Debug` or `tracing` event).

use std::fmt::Write as _;
use std::time::Duration;

use rekey_engine::{Call, ErrorKind, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::github::{self, AppAuth, GithubConfig, GithubProvider};
use rekey_providers::http::{BudgetSpec, HttpClient, Spend};
use rekey_spec::Mode;
use rekey_testkit::GithubFake;
use rekey_testkit::github::{APP_KEY_1, APP_KEY_1_PUB, APP_KEY_1_RSA, APP_KEY_2};
use reqwest::Method;
use secrecy::SecretString;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::conformance::LogCapture;
use crate::harness;

const WRITER: &str = "ghp_WriterTokenForTests0000000000000000";
const RUN: &str = "run-github";

const INVENTORY: &str = r"
credentials:
  - id: ci-token
    kind: github_fine_grained_pat
    owner: team-platform
    github_user: acme-bot
    token_name: ci
    delivered_to:
      - env_file: { path: /tmp/rekey-gh-test-never-written.env, key: GH_TOKEN }
      - github_actions_secret: { repo: acme/web, name: GH_TOKEN }
      - github_actions_secret: { repo: acme/web, environment: production, name: GH_TOKEN }
      - github_actions_secret: { org: acme, name: GH_TOKEN, visibility: selected, selected_repositories: [web, api] }
  - id: deployer
    kind: github_app_private_key
    owner: team-platform
    app_id: '912345'
    app_slug: acme-deployer
    delivered_to:
      - github_actions_secret: { org: acme, name: DEPLOYER_KEY }
  - id: docs-oauth
    kind: oauth_client_secret
    owner: team-web
    provider: github_oauth_app
    client_id: Iv1.8a61f9b3a7aba766
    delivered_to:
      - env_file: { path: /tmp/rekey-gh-test-never-written.env, key: DOCS_SECRET, field: client_secret }
";

const OAUTH_OLD: &str = "0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0";
const OAUTH_NEW: &str = "5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5";

fn oauth_inputs(secret: &str) -> Values {
    [
        (
            "client_id".to_owned(),
            Value::Plain("Iv1.8a61f9b3a7aba766".into()),
        ),
        ("client_secret".to_owned(), Value::secret(secret)),
    ]
    .into()
}

fn fake_world(fake: &GithubFake) {
    fake.add_repo("acme/web");
    fake.add_repo("acme/api");
    fake.add_environment("acme/web", "production");
    fake.add_org("acme");
    fake.add_writer(WRITER, "acme-automation");
}

fn config(fake: &GithubFake) -> GithubConfig {
    let mut c = GithubConfig::new(&fake.api_url());
    c.token = Some(SecretString::from(WRITER));
    c.timeout = Duration::from_secs(5);
    c.propagation_wait = Duration::from_secs(5);
    c.revoke_pace = (1_000_000, 1_000_000);
    // GitHub's real budget paces writes at 78 a minute; these tests are about correctness.
    c.budget = BudgetSpec {
        per_hour: 1_000_000,
        hourly_burst: 1_000_000,
        concurrent: 64,
        writes_per_minute: 1_000_000,
        write_burst: 1_000_000,
    };
    c
}

fn provider(fake: &GithubFake) -> GithubProvider {
    GithubProvider::new(config(fake)).unwrap()
}

fn plan(mode: Mode) -> Plan {
    harness::compile(INVENTORY, mode, None)
}

fn steps<'p>(plan: &'p Plan, action: &str, cred: &str) -> Vec<&'p PlannedStep> {
    plan.steps
        .iter()
        .filter(|s| {
            s.action == action
                && s.id.starts_with(&format!("{cred}/"))
                && (action != "consumer.deliver"
                    || s.consumer_label
                        .as_deref()
                        .is_some_and(|l| l.starts_with("actions:")))
        })
        .collect()
}

fn call<'a>(plan: &'a Plan, step: &'a PlannedStep, inputs: &'a Values, key: &'a str) -> Call<'a> {
    Call {
        run_id: RUN,
        step,
        credential: &plan.credentials[step.credential as usize],
        inputs,
        idempotency_key: key,
        attempt: 1,
        tried_before: false,
        reports: rekey_engine::Reports::default(),
    }
}

fn secret(v: &str) -> Values {
    [("token".to_owned(), Value::secret(v))].into()
}

/// The fake's scope name for a step's consumer.
fn scope_of(step: &PlannedStep) -> String {
    let label = step.consumer_label.clone().unwrap();
    let rest = label.strip_prefix("actions:").unwrap();
    let (scope, _name) = rest.rsplit_once('/').unwrap();
    if let Some(org) = scope.strip_prefix("org/") {
        format!("org:{org}")
    } else if let Some((repo, env)) = scope.split_once('@') {
        format!("env:{repo}/{env}")
    } else {
        format!("repo:{scope}")
    }
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
            Err(e) if e.kind == ErrorKind::Permanent => return Err(e),
            Err(e) => {
                // The fake's retry-after is 1 s; the tests do not wait it out in full.
                tokio::time::sleep(Duration::from_millis(20)).await;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap())
}

// ---------------------------------------------------------------------------------------------
// The shared HTTP layer

fn client(server: &MockServer) -> HttpClient {
    HttpClient::new(
        "test",
        &server.uri(),
        Duration::from_millis(500),
        BudgetSpec {
            per_hour: 100_000,
            hourly_burst: 100_000,
            concurrent: 8,
            writes_per_minute: 10_000,
            write_burst: 10_000,
        },
    )
    .unwrap()
}

async fn answer_of(t: ResponseTemplate) -> ProviderError {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(t).mount(&server).await;
    let c = client(&server);
    let req = c
        .request(Method::PUT, "/x")
        .bearer_auth("ghp_SecretInTheHeader000000000000000000")
        .body("the-body-holds-a-secret-value");
    match c.send_ok("PUT /x", req, Spend::Ours).await {
        Ok(_) => panic!("should fail"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn http_classifies_answers() {
    let e = answer_of(ResponseTemplate::new(429).insert_header("retry-after", "3")).await;
    assert_eq!(e.kind, ErrorKind::RateLimited(Some(Duration::from_secs(3))));
    let e = answer_of(
        ResponseTemplate::new(403)
            .insert_header("retry-after", "9")
            .set_body_json(
                serde_json::json!({"message": "You have exceeded a secondary rate limit."}),
            ),
    )
    .await;
    assert_eq!(e.kind, ErrorKind::RateLimited(Some(Duration::from_secs(9))));
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    let e = answer_of(
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
            .set_body_json(serde_json::json!({"message": "API rate limit exceeded"})),
    )
    .await;
    match e.kind {
        ErrorKind::RateLimited(Some(d)) => {
            assert!(d.as_secs() >= 100 && d.as_secs() <= 121, "{d:?}");
        }
        k => panic!("{k:?}"),
    }
    // The failed-login limit (checks of revoked tokens can trip it) passes with time.
    let e = answer_of(ResponseTemplate::new(403).set_body_json(
        serde_json::json!({"message": "Maximum number of login attempts exceeded. Please try again later."}),
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::RateLimited(Some(Duration::from_mins(1))));
    let e = answer_of(ResponseTemplate::new(503)).await;
    assert_eq!(e.kind, ErrorKind::Transient);
    let e = answer_of(
        ResponseTemplate::new(404)
            .set_body_json(serde_json::json!({"message": "Not Found", "documentation_url": "x"})),
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert_eq!(e.message, "PUT /x: HTTP 404: Not Found");
    // A slow answer is a timeout: transient.
    let e = answer_of(ResponseTemplate::new(200).set_delay(Duration::from_secs(2))).await;
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(e.message.contains("timed out"), "{}", e.message);
}

#[tokio::test]
async fn http_reset_connections_are_transient_and_nothing_leaks() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with_err(|_: &wiremock::Request| {
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")
        })
        .mount(&server)
        .await;
    let c = client(&server);
    let log = LogCapture::install();
    tracing::callsite::rebuild_interest_cache();
    let e = {
        let _on = log.on();
        let req = c
            .request(Method::PUT, "/x?q=1")
            .bearer_auth("ghp_SecretInTheHeader000000000000000000")
            .body("the-body-holds-a-secret-value");
        c.send_ok("PUT /x", req, Spend::Ours).await.unwrap_err()
    };
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    // Nothing listens: connect errors are transient too.
    let dead = HttpClient::new(
        "test",
        &format!("http://127.0.0.1:{}", rekey_testkit::free_port()),
        Duration::from_secs(1),
        rekey_providers::github::GITHUB_BUDGET,
    )
    .unwrap();
    let e2 = dead
        .send_ok("GET /user", dead.request(Method::GET, "/user"), Spend::Ours)
        .await
        .unwrap_err();
    assert_eq!(e2.kind, ErrorKind::Transient, "{e2}");
    let shown = format!("{e} {e:?} {e2} {e2:?} {c:?} {}", log.text());
    for s in ["ghp_Secret", "the-body-holds", "q=1"] {
        assert!(!shown.contains(s), "{s} shows in: {shown}");
    }
    assert!(log.text().contains("request failed"), "{}", log.text());
}

// ---------------------------------------------------------------------------------------------
// Actions secrets

#[tokio::test]
async fn delivers_to_repo_environment_and_org_secrets() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    let p = provider(&fake);
    let plan = plan(Mode::Drill);
    let delivers = steps(&plan, "consumer.deliver", "ci-token");
    assert_eq!(delivers.len(), 3);
    let value = "github_pat_11NEWVALUE_minted0000000000000000000000";
    let inputs = secret(value);
    for s in &delivers {
        p.supports(s).unwrap();
        p.preflight(s).await.unwrap();
        let key = rekey_engine::run::idempotency_key(RUN, &s.id);
        let out = p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
        assert!(!format!("{out:?}").contains(value));
        assert_eq!(
            fake.secret(&scope_of(s), "GH_TOKEN").as_deref(),
            Some(value),
            "{}",
            s.id
        );
    }
    // The org secret keeps the repositories the inventory selects, by id.
    let (vis, ids) = fake.org_secret_meta("acme", "GH_TOKEN").unwrap();
    assert_eq!(vis, "selected");
    assert_eq!(ids.len(), 2);
    // Public keys were fetched once per scope (preflight), then cached: 3 scopes, 3 PUTs, 2
    // repository ids for the preflight and 2 for the delivery.
    assert_eq!(fake.requests(), 3 + 3 + 2 + 2, "requests");
}

#[tokio::test]
async fn a_multi_value_credential_delivers_the_field() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    let p = provider(&fake);
    let plan = harness::compile(
        r"
credentials:
  - id: deploy
    kind: aws_iam_access_key
    owner: team-web
    user_name: deploy-web
    delivered_to:
      - aws_secrets_manager: { secret_id: prod/web/aws }
      - github_actions_secret: { repo: acme/web, name: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }
      - github_actions_secret: { repo: acme/web, environment: production, name: AWS_ACCESS_KEY_ID, field: AccessKeyId }
",
        Mode::Drill,
        None,
    );
    let inputs: Values = [
        (
            "AccessKeyId".to_owned(),
            Value::Plain("AKIANEWKEY0000000000".into()),
        ),
        (
            "SecretAccessKey".to_owned(),
            Value::secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYNEWSECRET0"),
        ),
    ]
    .into();
    for s in steps(&plan, "consumer.deliver", "deploy") {
        let key = rekey_engine::run::idempotency_key(RUN, &s.id);
        p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
    }
    assert_eq!(
        fake.secret("repo:acme/web", "AWS_SECRET_ACCESS_KEY")
            .as_deref(),
        Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYNEWSECRET0")
    );
    assert_eq!(
        fake.secret("env:acme/web/production", "AWS_ACCESS_KEY_ID")
            .as_deref(),
        Some("AKIANEWKEY0000000000")
    );
}

#[tokio::test]
async fn preflight_refuses_missing_scopes_before_anything_changes() {
    let fake = GithubFake::start().await;
    fake.add_writer(WRITER, "acme-automation");
    fake.add_repo("acme/api"); // not acme/web, no environment, no org
    let p = provider(&fake);
    let plan = plan(Mode::Drill);
    for s in steps(&plan, "consumer.deliver", "ci-token") {
        let e = p.preflight(s).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
        assert!(e.message.contains("does not exist"), "{e}");
    }
    assert!(fake.secrets().is_empty());
    // An org that exists, but a selected repository that does not.
    fake.add_org("acme");
    let org = steps(&plan, "consumer.deliver", "ci-token")
        .into_iter()
        .find(|s| scope_of(s) == "org:acme")
        .unwrap();
    let e = p.preflight(org).await.unwrap_err();
    assert!(e.message.contains("acme/web"), "{e}");
}

#[tokio::test]
async fn supports_refuses_what_github_cannot_do() {
    let fake = GithubFake::start().await;
    let p = provider(&fake);
    let plan = harness::compile(
        r"
credentials:
  - id: t
    kind: github_fine_grained_pat
    owner: x
    github_user: acme-bot
    delivered_to:
      - github_actions_secret: { repo: acme/web, name: GITHUB_SOMETHING }
",
        Mode::Drill,
        None,
    );
    let s = steps(&plan, "consumer.deliver", "t")[0];
    let e = p.supports(s).unwrap_err();
    assert!(e.contains("GITHUB_"), "{e}");
}

#[tokio::test]
async fn an_app_installation_writes_secrets() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    fake.add_app(777, "rekey-writer", &[APP_KEY_1_PUB], 4242);
    let mut c = config(&fake);
    c.token = None;
    c.app = Some(AppAuth::new("777", "4242", &SecretString::from(APP_KEY_1)).unwrap());
    let p = GithubProvider::new(c).unwrap();
    let plan = plan(Mode::Drill);
    let s = steps(&plan, "consumer.deliver", "ci-token")[0];
    assert_eq!(
        p.auth_source(s).to_string(),
        "GitHub App 777, installation 4242"
    );
    let inputs = secret("github_pat_11VIAAPP_000000000000000000000000");
    let key = rekey_engine::run::idempotency_key(RUN, &s.id);
    p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
    assert_eq!(
        fake.secret(&scope_of(s), "GH_TOKEN").as_deref(),
        Some("github_pat_11VIAAPP_000000000000000000000000")
    );
    // No token at all: a plain refusal that says what to set.
    let mut none = config(&fake);
    none.token = None;
    let p = GithubProvider::new(none).unwrap();
    let e = p.execute(&call(&plan, s, &inputs, &key)).await.unwrap_err();
    assert!(e.message.contains("GITHUB_TOKEN"), "{e}");
}

#[tokio::test]
async fn faults_on_every_endpoint_still_deliver_exactly_what_was_minted() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    let mut scopes = Vec::new();
    let mut yaml = String::from("credentials:\n");
    for i in 0..40 {
        let repo = format!("acme/svc{i}");
        fake.add_repo(&repo);
        scopes.push(format!("repo:{repo}"));
        let _ = writeln!(
            yaml,
            "  - id: t{i}\n    kind: github_fine_grained_pat\n    owner: x\n    github_user: acme-bot\n    delivered_to:\n      - github_actions_secret: {{ repo: {repo}, name: TOKEN }}"
        );
    }
    let plan = harness::compile(&yaml, Mode::Drill, None);
    fake.set_faults(0.2, 7);
    let p = provider(&fake);
    let mut errors = Vec::new();
    for i in 0..40 {
        let s = steps(&plan, "consumer.deliver", &format!("t{i}"))[0];
        let inputs = secret(&format!("github_pat_11MINTED{i:04}_0000000000000000000000"));
        let key = rekey_engine::run::idempotency_key(RUN, &s.id);
        let r = with_retries(30, async || p.execute(&call(&plan, s, &inputs, &key)).await).await;
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    }
    assert!(errors.is_empty(), "{errors:?}");
    assert!(fake.faults_injected() > 5, "faults were injected");
    for (i, scope) in scopes.iter().enumerate() {
        assert_eq!(
            fake.secret(scope, "TOKEN"),
            Some(format!("github_pat_11MINTED{i:04}_0000000000000000000000")),
            "{scope}"
        );
    }
    assert_eq!(fake.secrets().len(), 40, "nothing else was written");
}

// ---------------------------------------------------------------------------------------------
// Tokens: verify and revoke

#[tokio::test]
async fn user_get_checks_the_login() {
    let fake = GithubFake::start().await;
    fake.add_token("github_pat_11GOOD_00000000000000000000000000", "acme-bot");
    fake.add_token("github_pat_11OTHER_0000000000000000000000000", "mallory");
    let p = provider(&fake);
    let plan = plan(Mode::Drill);
    let s = steps(&plan, "github.user.get", "ci-token")[0];
    let run = async |t: &str| {
        let mut i = secret(t);
        i.insert("expected_login".into(), Value::Plain("acme-bot".into()));
        p.execute(&call(&plan, s, &i, "k")).await
    };
    let ok = run("github_pat_11GOOD_00000000000000000000000000")
        .await
        .unwrap();
    assert_eq!(ok["login"].expose(), "acme-bot");
    let e = run("github_pat_11OTHER_0000000000000000000000000")
        .await
        .unwrap_err();
    assert!(e.message.contains("mallory"), "{e}");
    let e = run("github_pat_11UNKNOWN_00000000000000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(!e.message.contains("UNKNOWN"), "{e}");
}

#[tokio::test]
async fn revoke_on_github_com_is_unauthenticated_and_verified() {
    let fake = GithubFake::start().await;
    fake.add_writer(WRITER, "acme-automation");
    let old = "github_pat_11OLDVALUE_000000000000000000000000";
    fake.add_token(old, "acme-bot");
    let p = provider(&fake);
    let plan = plan(Mode::Incident);
    let s = steps(&plan, "github.credentials.revoke", "ci-token")[0];
    assert_eq!(p.batch_limit(s), Some(1000));
    let inputs = secret(old);
    let key = rekey_engine::run::idempotency_key(RUN, &s.id);
    // Crash before the call: not done.
    assert!(matches!(
        p.reconcile(&call(&plan, s, &inputs, &key)).await.unwrap(),
        Reconciled::NotDone
    ));
    p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
    assert!(fake.is_revoked(old));
    assert_eq!(fake.revoke_calls(), vec![1]);
    // Lost answer: done. Repeated call: no second request.
    assert!(matches!(
        p.reconcile(&call(&plan, s, &inputs, &key)).await.unwrap(),
        Reconciled::Done(_)
    ));
    p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
    assert_eq!(fake.revoke_calls(), vec![1]);
    // On resume the captured token is not known yet when the lost revoke is reconciled: not
    // done (the step then runs with the token read again), never an error that stops it.
    let unknown = Values::new();
    assert!(matches!(
        p.reconcile(&call(&plan, s, &unknown, &key)).await.unwrap(),
        Reconciled::NotDone
    ));
    // Undo has nothing to do (and changes nothing).
    p.undo(&call(&plan, s, &inputs, &key), &Values::new())
        .await
        .unwrap();
    assert!(fake.is_revoked(old));
}

#[tokio::test]
async fn revoke_on_enterprise_server_is_authenticated() {
    let fake = GithubFake::start_enterprise().await;
    fake.add_writer(WRITER, "acme-automation");
    let old = "ghp_OldClassicToken0000000000000000000000";
    fake.add_token(old, "acme-bot");
    assert!(fake.api_url().ends_with("/api/v3"));
    let plan = plan(Mode::Incident);
    let s = steps(&plan, "github.credentials.revoke", "ci-token")[0];
    let inputs = secret(old);
    // Without a token GHES refuses: a permanent error that names nothing secret.
    let mut c = config(&fake);
    c.token = None;
    let tokenless = GithubProvider::new(c).unwrap();
    let e = tokenless.preflight(s).await.unwrap_err();
    assert!(e.message.contains("GITHUB_TOKEN"), "{e}");
    let e = tokenless
        .execute(&call(&plan, s, &inputs, "k"))
        .await
        .unwrap_err();
    assert!(!e.message.contains(old), "{e}");
    assert!(!fake.is_revoked(old));
    provider(&fake).preflight(s).await.unwrap();
    provider(&fake)
        .execute(&call(&plan, s, &inputs, "k"))
        .await
        .unwrap();
    assert!(fake.is_revoked(old));
}

#[tokio::test]
async fn revoking_2000_tokens_takes_two_calls() {
    let fake = GithubFake::start().await;
    let mut yaml = String::from("credentials:\n");
    let n = 2000;
    for i in 0..n {
        fake.add_token(
            &format!("github_pat_11EXPOSED{i:05}_000000000000000000"),
            &format!("u{i}"),
        );
        let _ = writeln!(
            yaml,
            "  - id: t{i}\n    kind: github_fine_grained_pat\n    owner: x\n    github_user: u{i}\n    delivered_to:\n      - env_file: {{ path: /tmp/never.env, key: T{i} }}"
        );
    }
    let plan = harness::compile(&yaml, Mode::Incident, None);
    let revokes: Vec<&PlannedStep> = plan
        .steps
        .iter()
        .filter(|s| s.action == "github.credentials.revoke")
        .collect();
    assert_eq!(revokes.len(), n);
    let inputs: Vec<Values> = (0..n)
        .map(|i| secret(&format!("github_pat_11EXPOSED{i:05}_000000000000000000")))
        .collect();
    let keys: Vec<String> = revokes
        .iter()
        .map(|s| rekey_engine::run::idempotency_key(RUN, &s.id))
        .collect();
    let calls: Vec<Call<'_>> = revokes
        .iter()
        .zip(&inputs)
        .zip(&keys)
        .map(|((s, i), k)| call(&plan, s, i, k))
        .collect();
    let p = provider(&fake);
    let results = p.execute_batch(&calls).await;
    assert_eq!(results.len(), n);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fake.revoke_calls(), vec![1000, 1000]);
    assert!(
        (0..n).all(|i| fake.is_revoked(&format!("github_pat_11EXPOSED{i:05}_000000000000000000")))
    );
}

/// `POST /credentials/revoke` takes 60 calls an hour: once rekey's pace (55 + a burst of 5) is
/// spent, a revoke is not sent but answered "rate limited" with the wait, which the engine
/// shows and waits out.
#[tokio::test]
async fn revoke_calls_keep_to_sixty_an_hour() {
    let fake = GithubFake::start().await;
    let mut yaml = String::from("credentials:\n");
    for i in 0..7 {
        fake.add_token(&format!("github_pat_11PACE{i:05}_0000000000000000000"), "u");
        let _ = writeln!(
            yaml,
            "  - id: t{i}\n    kind: github_fine_grained_pat\n    owner: x\n    github_user: u\n    delivered_to:\n      - env_file: {{ path: /tmp/never.env, key: T{i} }}"
        );
    }
    let plan = harness::compile(&yaml, Mode::Incident, None);
    let mut c = config(&fake);
    c.revoke_pace = github::REVOKE_PACE;
    let p = GithubProvider::new(c).unwrap();
    let mut outcomes = Vec::new();
    for i in 0..7 {
        let s = steps(&plan, "github.credentials.revoke", &format!("t{i}"))[0];
        let inputs = secret(&format!("github_pat_11PACE{i:05}_0000000000000000000"));
        let key = rekey_engine::run::idempotency_key(RUN, &s.id);
        outcomes.push(p.execute(&call(&plan, s, &inputs, &key)).await);
    }
    assert!(outcomes[..5].iter().all(Result::is_ok), "{outcomes:?}");
    for e in &outcomes[5..] {
        let e = e.as_ref().unwrap_err();
        let ErrorKind::RateLimited(Some(wait)) = e.kind else {
            panic!("{e:?}");
        };
        // 55 an hour: the next call fits in about 65 s.
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(66),
            "{wait:?}"
        );
        assert!(
            e.message.contains("POST /credentials/revoke"),
            "{}",
            e.message
        );
    }
    assert_eq!(
        fake.revoke_calls(),
        vec![1; 5],
        "nothing sent past the pace"
    );
    assert!(!fake.is_revoked("github_pat_11PACE00006_0000000000000000000"));
    assert!(
        p.retry_budget(steps(&plan, "github.credentials.revoke", "t0")[0])
            .is_some_and(|b| b > Duration::from_secs(66)),
        "a revoke's budget outlasts one wait for the pace"
    );
}

async fn oauth_check(
    p: &GithubProvider,
    plan: &Plan,
    s: &PlannedStep,
    v: Values,
) -> Result<Values, ProviderError> {
    let key = rekey_engine::run::idempotency_key(RUN, &s.id);
    p.execute(&call(plan, s, &v, &key)).await
}

/// A GitHub OAuth app's secret is created and deleted by a person, and checked by rekey: the
/// new one must be accepted before anything else goes on, and (`expect: refused`) an old one
/// refused once deleted.
#[tokio::test]
async fn oauth_app_secrets_are_checked_at_the_token_endpoint() {
    let fake = GithubFake::start_enterprise().await;
    let mut c = config(&fake);
    c.server_url = Some(fake.server_url());
    let p = GithubProvider::new(c).unwrap();
    let plan = plan(Mode::Drill);
    let verify = steps(&plan, "github.oauth_app.check_secret", "docs-oauth")[0];
    assert_eq!(
        p.auth_source(verify).to_string(),
        "the OAuth app's client id and secret themselves"
    );
    fake.add_oauth_secret("Iv1.8a61f9b3a7aba766", OAUTH_OLD);
    let run = |s, v| oauth_check(&p, &plan, s, v);
    let leak = |e: &ProviderError| {
        let t = format!("{e} {e:?}");
        assert!(
            !t.contains(OAUTH_NEW) && !t.contains(OAUTH_OLD),
            "a secret shows: {t}"
        );
    };
    // A secret the app does not have (a typo, another app's): refused for good.
    let e = run(verify, oauth_inputs(OAUTH_NEW)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("refuses the new client secret"), "{e}");
    leak(&e);
    // Created in the settings: accepted.
    fake.add_oauth_secret("Iv1.8a61f9b3a7aba766", OAUTH_NEW);
    let out = run(verify, oauth_inputs(OAUTH_NEW)).await.unwrap();
    assert_eq!(out.get("secret").map(Value::expose), Some("accepted"));
    // `expect: refused` (a custom runbook answered at the terminal, while the old value is
    // still in memory): the old one still works, so not done (retried, then the credential
    // stops for an operator).
    let mut old = oauth_inputs(OAUTH_OLD);
    old.insert("expect".into(), Value::Plain("refused".into()));
    let e = run(verify, old.clone()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(
        e.message.contains("still accepts the old client secret"),
        "{e}"
    );
    leak(&e);
    // Deleted: proved.
    assert!(fake.delete_oauth_secret("Iv1.8a61f9b3a7aba766", OAUTH_OLD));
    let out = run(verify, old).await.unwrap();
    assert_eq!(out.get("secret").map(Value::expose), Some("refused"));
    assert_eq!(fake.oauth_checks(), 4);
}

// ---------------------------------------------------------------------------------------------
// App keys

#[tokio::test]
async fn app_key_verification() {
    let fake = GithubFake::start().await;
    fake.add_app(912_345, "acme-deployer", &[APP_KEY_1_PUB], 1);
    let p = provider(&fake);
    let plan = plan(Mode::Drill);
    let s = steps(&plan, "github.app.verify_key", "deployer")[0];
    let run = async |pem: &str, app: &str| {
        let i: Values = [
            ("app_id".to_owned(), Value::Plain(app.into())),
            ("private_key".to_owned(), Value::secret(pem)),
        ]
        .into();
        p.execute(&call(&plan, s, &i, "k")).await
    };
    for pem in [APP_KEY_1, APP_KEY_1_RSA] {
        let out = run(pem, "912345").await.unwrap();
        assert_eq!(out["app_slug"].expose(), "acme-deployer");
    }
    let e = run(APP_KEY_2, "912345").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    let e2 = run("not a key", "912345").await.unwrap_err();
    let shown = format!("{e} {e:?} {e2} {e2:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("not a key"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// Conformance classes, per action

/// Every GitHub action: crash before the call (reconcile changes nothing and does not claim
/// a revoke of a live token), the call, a lost answer (reconcile, then the engine's re-run
/// converges), the same call again, undo (a delivery is refused loudly and changes nothing),
/// a wrong writer token (fails, changes nothing), and no secret in any error, `Debug` or
/// `tracing` event.
#[tokio::test]
async fn conformance_of_every_github_action() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    fake.add_app(912_345, "acme-deployer", &[APP_KEY_1_PUB], 1);
    let old = "github_pat_11OLDCONFORMANCE_0000000000000000000";
    let new = "github_pat_11NEWCONFORMANCE_0000000000000000000";
    fake.add_token(old, "acme-bot");
    fake.add_token(new, "acme-bot");
    let good = provider(&fake);
    let mut wrong_cfg = config(&fake);
    let wrong_token = "ghp_WrongWriterToken00000000000000000000";
    wrong_cfg.token = Some(SecretString::from(wrong_token));
    let wrong = GithubProvider::new(wrong_cfg).unwrap();
    let log = LogCapture::install();
    let mut shown: Vec<String> = Vec::new();
    let plan = plan(Mode::Drill);

    let mut cases: Vec<(&PlannedStep, Values)> = Vec::new();
    for s in steps(&plan, "consumer.deliver", "ci-token") {
        cases.push((s, secret(new)));
    }
    let mut user = secret(new);
    user.insert("expected_login".into(), Value::Plain("acme-bot".into()));
    cases.push((steps(&plan, "github.user.get", "ci-token")[0], user));
    cases.push((
        steps(&plan, "github.app.verify_key", "deployer")[0],
        [
            ("app_id".to_owned(), Value::Plain("912345".into())),
            ("private_key".to_owned(), Value::secret(APP_KEY_1)),
        ]
        .into(),
    ));
    cases.push((
        steps(&plan, "github.credentials.revoke", "ci-token")[0],
        secret(old),
    ));
    fake.add_oauth_secret("Iv1.8a61f9b3a7aba766", OAUTH_NEW);
    cases.push((
        steps(&plan, "github.oauth_app.check_secret", "docs-oauth")[0],
        oauth_inputs(OAUTH_NEW),
    ));

    for (s, inputs) in &cases {
        // Another test's thread may have registered the provider's callsites with no
        // subscriber at that moment; ask again so this capture sees them.
        tracing::callsite::rebuild_interest_cache();
        let _on = log.on();
        let key = rekey_engine::run::idempotency_key(RUN, &s.id);
        let c = || call(&plan, s, inputs, &key);
        good.supports(s).unwrap();
        let snapshot = || (fake.secrets(), fake.revoke_calls(), fake.is_revoked(old));
        // Wrong writer token: fails, nothing changes (checks use their own credentials).
        let before = snapshot();
        if s.action == "consumer.deliver" {
            let e = wrong.execute(&c()).await.unwrap_err();
            shown.push(format!("{e} {e:?}"));
            assert_eq!(
                snapshot(),
                before,
                "{}: a wrong token changed something",
                s.id
            );
        }
        // 1. Crash before the call.
        let r = good.reconcile(&c()).await.unwrap();
        shown.push(format!("{r:?}"));
        assert!(
            matches!(r, Reconciled::NotDone),
            "{}: done before it ran",
            s.id
        );
        assert_eq!(snapshot(), before, "{}: reconcile changed something", s.id);
        // The call.
        let out = good.execute(&c()).await.unwrap();
        shown.push(format!(
            "{out:?} {}",
            rekey_engine::provider::plain_json(&out)
        ));
        let after = snapshot();
        // 3. Lost answer: reconcile, and the engine's re-run if not done.
        match good.reconcile(&c()).await.unwrap() {
            Reconciled::Done(v) => {
                assert_eq!(s.action, "github.credentials.revoke", "{}", s.id);
                shown.push(format!("{v:?}"));
            }
            Reconciled::NotDone => {
                good.execute(&c()).await.unwrap();
            }
        }
        assert_eq!(
            snapshot(),
            after,
            "{}: the lost answer did not converge",
            s.id
        );
        // 4. The same call again.
        good.execute(&c()).await.unwrap();
        assert_eq!(
            snapshot(),
            after,
            "{}: a repeated call changed something",
            s.id
        );
        if s.action == "consumer.deliver" {
            assert_eq!(fake.secret(&scope_of(s), "GH_TOKEN").as_deref(), Some(new));
            assert!(fake.puts(&scope_of(s), "GH_TOKEN") >= 1);
        }
        // 2./5. Undo: a delivery is refused loudly; nothing changes either way.
        let u = good.undo(&c(), &out).await;
        let u2 = good.undo(&c(), &Values::new()).await;
        if s.action == "consumer.deliver" {
            let e = u.unwrap_err();
            assert!(e.message.contains("never returns"), "{e}");
            shown.push(format!("{e} {e:?} {:?}", u2.unwrap_err()));
        } else {
            u.unwrap();
            u2.unwrap();
        }
        assert_eq!(snapshot(), after, "{}: undo changed something", s.id);
        // Verify steps refuse a wrong value.
        if s.effect == rekey_spec::Effect::Verify {
            let mut bad = inputs.clone();
            for v in bad.values_mut() {
                if v.is_secret() {
                    *v = Value::secret(if s.action == "github.app.verify_key" {
                        APP_KEY_2
                    } else {
                        "github_pat_11WRONG_0000000000000000000000000"
                    });
                }
            }
            let e = good.execute(&call(&plan, s, &bad, &key)).await.unwrap_err();
            shown.push(format!("{e} {e:?}"));
        }
    }
    assert!(fake.is_revoked(old));
    let text = log.text();
    assert!(
        text.contains("rekey_providers"),
        "the provider's events were captured"
    );
    let secrets = [
        old,
        new,
        WRITER,
        wrong_token,
        "github_pat_11WRONG",
        "PRIVATE KEY",
        OAUTH_NEW,
    ];
    for t in shown.iter().chain([&text]) {
        for s in secrets {
            assert!(!t.contains(s), "a secret ({} chars) shows", s.len());
        }
    }
}

#[tokio::test]
async fn the_request_budget_paces_writes() {
    // 600 writes a minute (10/s), bursts of 150: 170 writes take about 2 s. Measured on the
    // limiter alone, at a high rate, to keep the test fast.
    let c = HttpClient::new(
        "test",
        "http://127.0.0.1:9",
        Duration::from_secs(1),
        BudgetSpec {
            per_hour: 100_000,
            hourly_burst: 100_000,
            concurrent: 4,
            writes_per_minute: 600,
            write_burst: 150,
        },
    )
    .unwrap();
    let start = std::time::Instant::now();
    for _ in 0..(600 / 4 + 20) {
        drop(c.budget().acquire(&Method::PUT, true).await);
    }
    // Burst 150, then 20 more at 10/s: about 2 s.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A provider that paces `DELETE`s apart (npm's token deletes) lets them through while the
/// other writes wait; without that pace a delete is one more write.
#[tokio::test]
async fn deletes_paced_apart_do_not_wait_for_other_writes() {
    async fn waits(c: &HttpClient, m: Method) -> bool {
        tokio::time::timeout(Duration::from_millis(300), c.budget().acquire(&m, true))
            .await
            .is_err()
    }
    let spec = BudgetSpec {
        per_hour: 100_000,
        hourly_burst: 100_000,
        concurrent: 4,
        writes_per_minute: 1,
        write_burst: 1,
    };
    let new = || HttpClient::new("test", "http://127.0.0.1:9", Duration::from_secs(1), spec);

    let paced = new().unwrap().with_delete_pace(600, 20);
    drop(paced.budget().acquire(&Method::POST, true).await);
    let start = std::time::Instant::now();
    for _ in 0..20 {
        drop(paced.budget().acquire(&Method::DELETE, true).await);
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(
        waits(&paced, Method::POST).await,
        "the write pace (1 a minute) was spent"
    );

    let plain = new().unwrap();
    drop(plain.budget().acquire(&Method::POST, true).await);
    assert!(waits(&plain, Method::DELETE).await, "a delete is a write");
}

#[tokio::test]
async fn concurrent_deliveries_to_one_scope_fetch_its_key_once() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    let mut yaml = String::from("credentials:\n");
    for i in 0..16 {
        let _ = writeln!(
            yaml,
            "  - id: t{i}\n    kind: github_fine_grained_pat\n    owner: x\n    github_user: acme-bot\n    delivered_to:\n      - github_actions_secret: {{ repo: acme/web, name: TOKEN_{i} }}"
        );
    }
    let plan = harness::compile(&yaml, Mode::Drill, None);
    let p = provider(&fake);
    let inputs = secret("github_pat_11CONCURRENT_00000000000000000000000");
    let steps: Vec<&PlannedStep> = plan
        .steps
        .iter()
        .filter(|s| s.action == "consumer.deliver")
        .collect();
    let calls: Vec<Call<'_>> = steps
        .iter()
        .map(|s| call(&plan, s, &inputs, &s.id))
        .collect();
    let before = fake.requests();
    let results = futures_util::future::join_all(calls.iter().map(|c| p.execute(c))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        fake.requests() - before,
        16 + 1,
        "16 PUTs and one public key"
    );
}

/// The writer token revoked (rotated in this very run, say): the refusal says which token and
/// what to do, at preflight and at delivery.
#[tokio::test]
async fn a_revoked_writer_token_is_named_with_what_to_do() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    let plan = plan(Mode::Drill);
    let s = steps(&plan, "consumer.deliver", "ci-token")[0];
    let p = provider(&fake);
    p.preflight(s).await.unwrap();
    fake.revoke_token(WRITER);
    let fresh = provider(&fake);
    let e = fresh.preflight(s).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(
        e.message
            .contains("GitHub refuses the token in $GITHUB_TOKEN (revoked or expired)"),
        "{e}"
    );
    let inputs = secret("github_pat_11AFTERWRITERREVOKED_00000000000000");
    let e = p.execute(&call(&plan, s, &inputs, "k")).await.unwrap_err();
    assert!(e.message.contains("put its new value there"), "{e}");
    assert!(!e.message.contains(WRITER));
}

/// A credential's `token_env` writes each of its Actions secrets that names none of its own.
#[tokio::test]
async fn a_credential_token_env_is_the_default_of_its_consumers() {
    let plan = harness::compile(
        r"
credentials:
  - id: t
    kind: github_fine_grained_pat
    owner: x
    github_user: acme-bot
    token_env: GH_CRED
    delivered_to:
      - github_actions_secret: { repo: acme/web, name: FROM_CREDENTIAL }
      - github_actions_secret: { repo: acme/web, name: OWN, token_env: GH_OWN }
",
        Mode::Drill,
        None,
    );
    let fake = GithubFake::start().await;
    let p = provider(&fake);
    let sources: Vec<String> = steps(&plan, "consumer.deliver", "t")
        .into_iter()
        .map(|s| p.auth_source(s).to_string())
        .collect();
    assert_eq!(sources, ["the token in $GH_CRED", "the token in $GH_OWN"]);
}

#[tokio::test]
async fn a_consumer_token_env_wins_over_github_token() {
    let fake = GithubFake::start().await;
    fake_world(&fake);
    let other = "ghp_OtherWriterViaTokenEnv000000000000000";
    fake.add_writer(other, "other-writer");
    let plan = harness::compile(
        r"
credentials:
  - id: t
    kind: github_fine_grained_pat
    owner: x
    github_user: acme-bot
    delivered_to:
      - github_actions_secret: { repo: acme/web, name: VIA_ENV, token_env: GH_OTHER }
",
        Mode::Drill,
        None,
    );
    let s = steps(&plan, "consumer.deliver", "t")[0];
    let inputs = secret("github_pat_11VIATOKENENV_0000000000000000000000");
    // The variable is not set: a refusal naming it.
    let p = provider(&fake);
    assert_eq!(p.auth_source(s).to_string(), "the token in $GH_OTHER");
    let e = p.execute(&call(&plan, s, &inputs, "k")).await.unwrap_err();
    assert!(e.message.contains("$GH_OTHER"), "{e}");
    // Set, and GITHUB_TOKEN revoked: the consumer's token is the one used.
    let mut c = config(&fake);
    c.token = Some(SecretString::from(
        "ghp_NotAWriter000000000000000000000000000",
    ));
    c.lookup = Box::new(move |k| (k == "GH_OTHER").then(|| SecretString::from(other)));
    GithubProvider::new(c)
        .unwrap()
        .execute(&call(&plan, s, &inputs, "k"))
        .await
        .unwrap();
    assert_eq!(
        fake.secret("repo:acme/web", "VIA_ENV").as_deref(),
        Some("github_pat_11VIATOKENENV_0000000000000000000000")
    );
}

#[test]
fn githubs_budget_stays_under_its_limits_in_any_window() {
    let b = rekey_providers::github::GITHUB_BUDGET;
    // GCRA: in any window of the period, at most rate + burst requests.
    assert!(b.writes_per_minute + b.write_burst <= 80, "{b:?}");
    assert!(b.per_hour + b.hourly_burst <= 5_000, "{b:?}");
    assert!(b.concurrent <= 100, "{b:?}");
}
