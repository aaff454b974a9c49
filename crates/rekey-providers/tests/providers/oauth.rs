//! Okta and Auth0 client secrets against their in-process fakes (`rekey_testkit::{OktaFake,
//! Auth0Fake}`), through the [`Provider`] trait: each a conformance subject in both modes
//! (the token endpoint of the fake says which secret works), and what is particular to each —
//! Okta's two-secret limit, unknown secrets in an incident, Auth0's delay before a new secret
//! works, the check's reading of token-endpoint answers, injected faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rekey_engine::{ErrorKind, Provider, Value, Values};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::envfile::EnvFileProvider;
use rekey_providers::http::BudgetSpec;
use rekey_providers::oauth::{Auth0Provider, OauthVerifyProvider, OktaProvider, TokenLookup};
use rekey_providers::router::ConsumerRouter;
use rekey_spec::Mode;
use rekey_testkit::{Auth0Fake, OktaFake};
use secrecy::SecretString;

use crate::conformance::{ConsumerView, Subject};
use crate::harness::{assert_clean, call, digest, env_value, literal_inputs, run, run_err};

const TOKEN_ENV: &str = "REKEY_TEST_OAUTH_MGMT_TOKEN";
const OKTA_TOKEN: &str = "00OktaApiTokenNeverShown0000000000000000000";
const AUTH0_TOKEN: &str = "eyJAuth0ManagementTokenNeverShown.000.000";
const WRONG_TOKEN: &str = "00WrongManagementTokenNeverShown00000000000";
const OLD_SECRET: &str = "0ld-0auth-Client-Secret-Never-Shown-00000";
const APP: &str = "0oa8f5j3ecb5w6yDf5d7";
const CLIENT: &str = "0oa8f5j3ecb5w6yDf5d7";
const AUDIENCE: &str = "https://api.acme.test/";

/// No limits: these tests are about behaviour.
const UNLIMITED: BudgetSpec = BudgetSpec {
    per_hour: 1_000_000,
    hourly_burst: 1_000_000,
    concurrent: 64,
    writes_per_minute: 1_000_000,
    write_burst: 1_000_000,
};

fn lookup(token: &str) -> TokenLookup {
    let token = token.to_owned();
    Box::new(move |k| (k == TOKEN_ENV).then(|| SecretString::from(token.clone())))
}

fn okta(token: &str) -> OktaProvider {
    OktaProvider::new(Duration::from_secs(5), UNLIMITED, lookup(token)).unwrap()
}

fn auth0(token: &str) -> Auth0Provider {
    Auth0Provider::new(Duration::from_secs(5), UNLIMITED, lookup(token)).unwrap()
}

fn consumers() -> Arc<dyn Provider> {
    Arc::new(ConsumerRouter {
        aws: None,
        github: None,
        env_file: Arc::new(EnvFileProvider),
    })
}

fn okta_inventory(domain: &str, secret_id: &str, file: &std::path::Path) -> String {
    format!(
        "credentials:
  - id: okta-web
    kind: oauth_client_secret
    owner: team-web
    provider: okta
    client_id: {CLIENT}
    domain: {domain}
    app_id: {APP}
    secret_id: {secret_id}
    api_token_env: {TOKEN_ENV}
    delivered_to:
      - env_file: {{ path: {}, key: OKTA_CLIENT_SECRET, field: client_secret }}
",
        file.display()
    )
}

fn auth0_inventory(domain: &str, file: &std::path::Path) -> String {
    format!(
        "credentials:
  - id: auth0-ml
    kind: oauth_client_secret
    owner: team-ml
    provider: auth0
    client_id: {CLIENT}
    domain: {domain}
    audience: {AUDIENCE}
    api_token_env: {TOKEN_ENV}
    delivered_to:
      - env_file: {{ path: {}, key: AUTH0_CLIENT_SECRET, field: client_secret }}
",
        file.display()
    )
}

// ---------------------------------------------------------------------------------------------
// Conformance subjects

/// An Okta app with one secret, delivered to an env file.
pub(crate) struct OktaSubject {
    fake: OktaFake,
    old_id: String,
    plan: Plan,
    env: tempfile::TempDir,
    okta: Arc<dyn Provider>,
    wrong: Arc<dyn Provider>,
    verify: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
}

impl OktaSubject {
    pub(crate) async fn start(mode: Mode) -> Self {
        let fake = OktaFake::start(OKTA_TOKEN).await;
        let old_id = fake.add_app(APP, CLIENT, OLD_SECRET);
        let env = tempfile::tempdir().unwrap();
        let file = env.path().join("web.env");
        std::fs::write(&file, format!("OKTA_CLIENT_SECRET={OLD_SECRET}\n")).unwrap();
        let plan =
            crate::harness::compile(&okta_inventory(&fake.domain(), &old_id, &file), mode, None);
        Self {
            fake,
            old_id,
            plan,
            env,
            okta: Arc::new(okta(OKTA_TOKEN)),
            wrong: Arc::new(okta(WRONG_TOKEN)),
            verify: Arc::new(OauthVerifyProvider::new(Duration::from_secs(5)).unwrap()),
            consumers: consumers(),
        }
    }
}

impl Subject for OktaSubject {
    fn name(&self) -> String {
        format!("Okta client secret ({:?})", self.plan.mode)
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "okta" => Arc::clone(&self.okta),
            "oauth" => Arc::clone(&self.verify),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        (step.provider == "okta").then(|| Arc::clone(&self.wrong))
    }

    fn old_value(&self) -> Values {
        [
            ("secret_id".to_owned(), Value::Plain(self.old_id.clone())),
            ("client_secret".to_owned(), Value::secret(OLD_SECRET)),
        ]
        .into()
    }

    fn holds_two(&self) -> bool {
        true
    }

    fn secrets(&self) -> Vec<String> {
        vec![OKTA_TOKEN.to_owned(), WRONG_TOKEN.to_owned()]
    }

    async fn accepts(&self, value: &Values) -> bool {
        self.fake.accepts(CLIENT, value["client_secret"].expose())
    }

    async fn values(&self) -> usize {
        self.fake.secrets(APP).len()
    }

    async fn snapshot(&self) -> String {
        let file = std::fs::read(self.env.path().join("web.env")).unwrap_or_default();
        format!(
            "secrets {:?}, env file {}",
            self.fake.secrets(APP),
            digest(&file)
        )
    }

    async fn consumer(&self) -> ConsumerView {
        let text = std::fs::read_to_string(self.env.path().join("web.env")).unwrap_or_default();
        ConsumerView {
            current: env_value(&text, "OKTA_CLIENT_SECRET"),
            pending: None,
        }
    }
}

/// An Auth0 client, delivered to an env file.
pub(crate) struct Auth0Subject {
    fake: Auth0Fake,
    plan: Plan,
    env: tempfile::TempDir,
    auth0: Arc<dyn Provider>,
    wrong: Arc<dyn Provider>,
    verify: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
}

impl Auth0Subject {
    pub(crate) async fn start(mode: Mode) -> Self {
        let fake = Auth0Fake::start(AUTH0_TOKEN, AUDIENCE).await;
        fake.add_client(CLIENT, OLD_SECRET);
        let env = tempfile::tempdir().unwrap();
        let file = env.path().join("ml.env");
        std::fs::write(&file, format!("AUTH0_CLIENT_SECRET={OLD_SECRET}\n")).unwrap();
        let plan = crate::harness::compile(&auth0_inventory(&fake.domain(), &file), mode, None);
        Self {
            fake,
            plan,
            env,
            auth0: Arc::new(auth0(AUTH0_TOKEN)),
            wrong: Arc::new(auth0(WRONG_TOKEN)),
            verify: Arc::new(OauthVerifyProvider::new(Duration::from_secs(5)).unwrap()),
            consumers: consumers(),
        }
    }
}

impl Subject for Auth0Subject {
    fn name(&self) -> String {
        format!("Auth0 client secret ({:?})", self.plan.mode)
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "auth0" => Arc::clone(&self.auth0),
            "oauth" => Arc::clone(&self.verify),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        (step.provider == "auth0").then(|| Arc::clone(&self.wrong))
    }

    fn old_value(&self) -> Values {
        [("client_secret".to_owned(), Value::secret(OLD_SECRET))].into()
    }

    fn holds_two(&self) -> bool {
        false
    }

    fn secrets(&self) -> Vec<String> {
        vec![AUTH0_TOKEN.to_owned(), WRONG_TOKEN.to_owned()]
    }

    async fn accepts(&self, value: &Values) -> bool {
        self.fake.accepts(CLIENT, value["client_secret"].expose())
    }

    async fn values(&self) -> usize {
        1
    }

    async fn snapshot(&self) -> String {
        let file = std::fs::read(self.env.path().join("ml.env")).unwrap_or_default();
        format!(
            "secret {}, env file {}",
            digest(self.fake.secret(CLIENT).unwrap_or_default().as_bytes()),
            digest(&file)
        )
    }

    async fn consumer(&self) -> ConsumerView {
        let text = std::fs::read_to_string(self.env.path().join("ml.env")).unwrap_or_default();
        ConsumerView {
            current: env_value(&text, "AUTH0_CLIENT_SECRET"),
            pending: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Okta

fn okta_plan(fake: &OktaFake, old_id: &str, mode: Mode) -> (Plan, tempfile::TempDir) {
    let env = tempfile::tempdir().unwrap();
    let file = env.path().join("web.env");
    std::fs::write(&file, format!("OKTA_CLIENT_SECRET={OLD_SECRET}\n")).unwrap();
    let plan = crate::harness::compile(&okta_inventory(&fake.domain(), old_id, &file), mode, None);
    (plan, env)
}

fn step<'p>(plan: &'p Plan, id: &str) -> &'p PlannedStep {
    crate::harness::step(plan, id)
}

/// Two active secrets: a drill is refused before anything changes, naming both; an inactive
/// extra one is deleted to make room, and said so.
#[tokio::test]
async fn okta_keeps_two_secrets() {
    let fake = OktaFake::start(OKTA_TOKEN).await;
    let old = fake.add_app(APP, CLIENT, OLD_SECRET);
    let other = fake.add_secret(APP, "0ther-Active-Secret-0000000000000000000", true);
    let (plan, _env) = okta_plan(&fake, &old, Mode::Drill);
    let p = okta(OKTA_TOKEN);
    let e = p
        .preflight(step(&plan, "okta-web/okta-deactivate-old"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(
        e.message.contains("two active client secrets") && e.message.contains(&other),
        "{e}"
    );
    assert_clean(&e.message, &[OKTA_TOKEN, OLD_SECRET]);
    assert_eq!(fake.secrets(APP).len(), 2, "nothing changed");

    // Made inactive in the console: the create deletes it to make room, and says so.
    let fake = OktaFake::start(OKTA_TOKEN).await;
    let old = fake.add_app(APP, CLIENT, OLD_SECRET);
    let spare = fake.add_secret(APP, "Sp4re-Inactive-Secret-000000000000000000", false);
    let (plan, _env) = okta_plan(&fake, &old, Mode::Drill);
    p.preflight(step(&plan, "okta-web/okta-deactivate-old"))
        .await
        .unwrap();
    let inputs = literal_inputs(&plan, "okta-web/okta-create", &[]);
    let c = call(&plan, "okta-web/okta-create", &inputs);
    let out = p.execute(&c).await.unwrap();
    let new_id = out["secret_id"].expose().to_owned();
    assert!(out["client_secret"].is_secret());
    assert_eq!(
        fake.secrets(APP),
        vec![(old.clone(), true), (new_id, true)],
        "the spare went, the old one stays"
    );
    let reports = c.reports.take();
    assert!(
        reports.iter().any(|r| r.detail.contains(&spare)),
        "{reports:?}"
    );
}

/// A first create takes no active secret for a lost call's orphan: one a person made since
/// `preflight` stays, and the app (two active secrets) is full, which the step says.
#[tokio::test]
async fn okta_first_create_leaves_a_secret_made_meanwhile() {
    let fake = OktaFake::start(OKTA_TOKEN).await;
    let old = fake.add_app(APP, CLIENT, OLD_SECRET);
    let (plan, _env) = okta_plan(&fake, &old, Mode::Drill);
    let p = okta(OKTA_TOKEN);
    p.preflight(step(&plan, "okta-web/okta-deactivate-old"))
        .await
        .unwrap();
    let theirs = fake.add_secret(APP, "Th31rs-Active-Secret-000000000000000000", true);
    let inputs = literal_inputs(&plan, "okta-web/okta-create", &[]);
    let c = call(&plan, "okta-web/okta-create", &inputs);
    let e = p.execute(&c).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains(&theirs), "{e}");
    assert!(c.reports.take().is_empty(), "nothing deleted");
    assert_eq!(
        fake.secrets(APP),
        vec![(old, true), (theirs, true)],
        "both secrets stay"
    );
}

/// A stale `secret_id` in the inventory stops the run before anything changes: the rules that
/// find orphans depend on knowing the current secret.
#[tokio::test]
async fn okta_refuses_a_stale_secret_id() {
    let fake = OktaFake::start(OKTA_TOKEN).await;
    fake.add_app(APP, CLIENT, OLD_SECRET);
    let (plan, _env) = okta_plan(&fake, "ocsNOTTHEREANYMORE000", Mode::Drill);
    let e = okta(OKTA_TOKEN)
        .preflight(step(&plan, "okta-web/okta-create"))
        .await
        .unwrap_err();
    assert!(e.message.contains("update the inventory"), "{e}");
    assert_eq!(fake.secrets(APP).len(), 1);
}

/// An incident deactivates the exposed secret and every other active one, naming those the
/// inventory did not list; the new secret is created after, and the old one is deleted in
/// cleanup.
#[tokio::test]
async fn okta_incident_deactivates_unknown_secrets_too() {
    let fake = OktaFake::start(OKTA_TOKEN).await;
    let old = fake.add_app(APP, CLIENT, OLD_SECRET);
    let unknown = fake.add_secret(APP, "Unkn0wn-Active-Secret-0000000000000000", true);
    let (plan, _env) = okta_plan(&fake, &old, Mode::Incident);
    let p = okta(OKTA_TOKEN);
    let inputs = literal_inputs(&plan, "okta-web/okta-deactivate-exposed", &[]);
    let c = call(&plan, "okta-web/okta-deactivate-exposed", &inputs);
    let out = p.execute(&c).await.unwrap();
    assert_eq!(
        fake.secrets(APP),
        vec![(old.clone(), false), (unknown.clone(), false)]
    );
    assert_eq!(out["deactivated"].expose(), format!("{old},{unknown}"));
    assert!(!fake.accepts(CLIENT, OLD_SECRET));
    let warnings = c.reports.take();
    assert!(
        warnings
            .iter()
            .any(|r| r.event == "provider_warning" && r.detail.contains(&unknown)),
        "{warnings:?}"
    );
    let new = run(&p, &plan, "okta-web/okta-create", &[]).await;
    assert!(fake.accepts(CLIENT, new["client_secret"].expose()));
    assert_eq!(fake.secrets(APP).len(), 2, "a spare inactive one made room");
    run(
        &p,
        &plan,
        "okta-web/okta-delete-old",
        &[("except_secret_id", new["secret_id"].clone())],
    )
    .await;
    assert!(fake.secrets(APP).iter().all(|(id, _)| id != &old));
}

/// 20 % of the requests fail (429 with `x-rate-limit-reset`, 502 before or after the effect,
/// reset connections); retried as the engine does, a drill still ends with one working secret,
/// the minted one.
#[tokio::test]
async fn okta_faults_converge() {
    let fake = OktaFake::start(OKTA_TOKEN).await;
    let old = fake.add_app(APP, CLIENT, OLD_SECRET);
    let (plan, _env) = okta_plan(&fake, &old, Mode::Drill);
    fake.set_faults(0.2, 11);
    let p = okta(OKTA_TOKEN);
    let mut created: Option<Values> = None;
    for id in [
        "okta-web/okta-create",
        "okta-web/okta-deactivate-old",
        "okta-web/okta-delete-old",
    ] {
        let extra: Vec<(&str, Value)> = created
            .as_ref()
            .map(|c| vec![("except_secret_id", c["secret_id"].clone())])
            .unwrap_or_default();
        let inputs = literal_inputs(&plan, id, &extra);
        let out = with_retries(&p, &plan, id, &inputs).await;
        if id.ends_with("okta-create") {
            created = Some(out);
        }
    }
    assert!(fake.faults_injected() > 0);
    let new = created.unwrap();
    assert_eq!(
        fake.secrets(APP),
        vec![(new["secret_id"].expose().to_owned(), true)]
    );
    assert!(fake.accepts(CLIENT, new["client_secret"].expose()));
    assert!(!fake.accepts(CLIENT, OLD_SECRET));
}

/// Calls as the engine does: transient errors and rate limits are retried; a call whose
/// outcome is unknown is reconciled first.
async fn with_retries(p: &dyn Provider, plan: &Plan, id: &str, inputs: &Values) -> Values {
    for _ in 0..50 {
        let c = call(plan, id, inputs);
        match p.execute(&c).await {
            Ok(v) => return v,
            Err(e) if e.kind == ErrorKind::Permanent => panic!("{id}: {e}"),
            Err(e) => {
                assert_clean(&e.message, &[OKTA_TOKEN, AUTH0_TOKEN, OLD_SECRET]);
                tokio::time::sleep(Duration::from_millis(20)).await;
                // The answer may have been lost after the effect: reconcile before a retry.
                let c = call(plan, id, inputs);
                if let Ok(rekey_engine::Reconciled::Done(v)) = p.reconcile(&c).await {
                    return v;
                }
            }
        }
    }
    panic!("{id}: still failing after 50 tries");
}

// ---------------------------------------------------------------------------------------------
// Auth0

/// A new secret Auth0 has not applied yet is refused for a moment: the check says so as a
/// transient error (the engine retries it), and passes once it applies. The old secret died at
/// the rotation.
#[tokio::test]
async fn auth0_rotation_then_a_check_that_waits_for_it() {
    let fake = Auth0Fake::start(AUTH0_TOKEN, AUDIENCE).await;
    fake.add_client(CLIENT, OLD_SECRET);
    fake.set_apply_delay(Duration::from_millis(600));
    let env = tempfile::tempdir().unwrap();
    let plan = crate::harness::compile(
        &auth0_inventory(&fake.domain(), &env.path().join("x.env")),
        Mode::Drill,
        None,
    );
    let a = auth0(AUTH0_TOKEN);
    a.preflight(step(&plan, "auth0-ml/auth0-rotate"))
        .await
        .unwrap();
    let new = run(&a, &plan, "auth0-ml/auth0-rotate", &[]).await;
    assert!(
        !fake.accepts(CLIENT, OLD_SECRET),
        "the old one died at once"
    );
    let v = OauthVerifyProvider::new(Duration::from_secs(5)).unwrap();
    let extra = [("client_secret", new["client_secret"].clone())];
    let e = run_err(&v, &plan, "auth0-ml/auth0-verify", &extra).await;
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("refuses the new secret"), "{e}");
    assert_clean(&e.message, &[new["client_secret"].expose(), AUTH0_TOKEN]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    run(&v, &plan, "auth0-ml/auth0-verify", &extra).await;
    // A missing client or a refused token: permanent, before anything changes.
    let e = auth0(WRONG_TOKEN)
        .preflight(step(&plan, "auth0-ml/auth0-rotate"))
        .await
        .unwrap_err();
    assert!(e.message.contains("not accepted"), "{e}");
    assert_eq!(fake.rotations(), 1);
}

// ---------------------------------------------------------------------------------------------
// The check

/// How `oauth.verify_client_credentials` reads a token endpoint: a token passes; 401 or
/// `invalid_client` is the secret refused (transient: a new secret may still be applying); a
/// grant or scope refusal came after the secret was accepted (passes, with a warning); anything
/// else proves nothing (permanent). The secret is never in a message.
#[tokio::test]
async fn the_check_reads_token_endpoint_answers() {
    use wiremock::matchers::{body_string_contains, header_exists, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let answers: HashMap<&str, ResponseTemplate> = [
        (
            "ok",
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"access_token": "t", "token_type": "Bearer"})),
        ),
        (
            "badclient",
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "invalid_client"})),
        ),
        (
            "unauth",
            ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "access_denied"})),
        ),
        (
            "scope",
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_scope"})),
        ),
        (
            "denied",
            ResponseTemplate::new(403).set_body_json(serde_json::json!({"error": "access_denied"})),
        ),
        (
            "odd",
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "invalid_request"})),
        ),
    ]
    .into();
    for (secret, answer) in answers {
        Mock::given(method("POST"))
            .and(header_exists("authorization"))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(wiremock::matchers::header(
                "authorization",
                format!("Basic {}", b64(&format!("c:{secret}-Secret-Value-000"))).as_str(),
            ))
            .respond_with(answer)
            .mount(&server)
            .await;
    }
    let env = tempfile::tempdir().unwrap();
    let plan = crate::harness::compile(
        &format!(
            "credentials:
  - id: g
    kind: oauth_client_secret
    owner: x
    provider: generic
    client_id: c
    token_url: {}/token
    delivered_to:
      - env_file: {{ path: {}, key: S, field: client_secret }}
",
            server.uri(),
            env.path().join("x.env").display()
        ),
        Mode::Drill,
        None,
    );
    let v = OauthVerifyProvider::new(Duration::from_secs(5)).unwrap();
    let check = |secret: &str| {
        let inputs = literal_inputs(
            &plan,
            "g/generic-verify",
            &[(
                "client_secret",
                Value::secret(format!("{secret}-Secret-Value-000")),
            )],
        );
        (inputs, secret.to_owned())
    };
    for (secret, want) in [
        ("ok", Ok(0)),
        ("badclient", Err(ErrorKind::Transient)),
        ("unauth", Err(ErrorKind::Transient)),
        ("scope", Ok(1)),
        ("denied", Ok(1)),
        ("odd", Err(ErrorKind::Permanent)),
    ] {
        let (inputs, _) = check(secret);
        let c = call(&plan, "g/generic-verify", &inputs);
        match (v.execute(&c).await, want) {
            (Ok(_), Ok(warnings)) => assert_eq!(c.reports.take().len(), warnings, "{secret}"),
            (Err(e), Err(kind)) => {
                assert_eq!(e.kind, kind, "{secret}: {e}");
                assert!(!e.message.contains("Secret-Value"), "{e}");
            }
            (got, want) => panic!("{secret}: {got:?}, wanted {want:?}"),
        }
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
