//! The `postgres.*` actions against a real, throwaway `PostgreSQL` cluster on 127.0.0.1, through
//! the [`Provider`] trait and through the whole engine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rekey_engine::{
    Call, Engine, EngineConfig, ErrorKind, Fingerprinter, Provider, ProviderError, Providers,
    Reconciled, Value, Values,
};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::envfile::EnvFileProvider;
use rekey_providers::postgres::PostgresProvider;
use rekey_providers::router::ConsumerRouter;
use rekey_spec::Mode;
use rekey_testkit::{ADMIN_PASSWORD, OLD_APP_PASSWORD, PgCluster, free_port};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection;

use crate::conformance::{ConsumerView, Subject};
use crate::harness::{
    assert_clean, call, digest, env_value, literal_inputs as inputs, run, run_err,
};

const ADMIN_ENV: &str = "REKEY_TEST_PG_ADMIN_URL";

/// The `pick-role` step's answer for the single strategy, as later steps receive it.
fn picked() -> (&'static str, Value) {
    ("role", Value::Plain("app".into()))
}

// ---------------------------------------------------------------------------------------------
// The cluster.

/// A provider whose `admin_url_env` variable holds `pg`'s admin URL (the test cannot change
/// its own environment safely).
fn provider(pg: &PgCluster) -> PostgresProvider {
    let url = pg.admin_url();
    PostgresProvider::new().with_env_lookup(move |name| {
        if name == ADMIN_ENV {
            Ok(url.clone())
        } else {
            Err(std::env::VarError::NotPresent)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Plans and calls.

fn inventory(admin_env: &str) -> String {
    inventory_to(
        admin_env,
        "{ path: /etc/web/db.env, key: PGPASSWORD, field: password }",
    )
}

/// The role `app`, delivered to the `env_file` consumer `env_file`.
fn inventory_to(admin_env: &str, env_file: &str) -> String {
    format!(
        r"
hosts:
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
    policy: {{ max_age_days: 90 }}
    last_rotated: 2026-08-20
    role: app
    database: postgres
    admin_url_env: {admin_env}
    delivered_to:
      - env_file: {env_file}
"
    )
}

fn plan(mode: Mode, admin_env: &str) -> Plan {
    crate::harness::compile(&inventory(admin_env), mode, Some("pg-app"))
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_password_replaces_the_old_one_and_verifies() {
    let pg = PgCluster::start().await;
    let p = provider(&pg);
    let plan = plan(Mode::Drill, ADMIN_ENV);
    pg.login("app", OLD_APP_PASSWORD)
        .await
        .expect("the old password works before");

    let out = run(&p, &plan, "pg-app/set-password", &[picked()]).await;
    let password = out.get("password").expect("a password output").clone();
    assert!(password.is_secret(), "the password is a secret output");
    let new = password.expose().to_owned();
    assert!(new.len() >= 32, "a strong password");
    // Debug of the outputs (what a log line would show) holds no password.
    let debug = format!("{out:?}");
    assert!(!debug.contains(&new), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert_eq!(rekey_engine::provider::plain_json(&out), "{}");

    pg.login("app", &new).await.expect("the new password works");
    assert_eq!(
        pg.login("app", OLD_APP_PASSWORD).await.err().as_deref(),
        Some("28P01"),
        "the old password no longer works"
    );
    let mut admin = pg.admin().await;
    let stored: String =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!stored.contains(&new));
    // The server never saw the cleartext: not in its log either.
    let log = std::fs::read_to_string(pg.path().join("log")).unwrap_or_default();
    assert!(!log.contains(&new));

    // verify_login: the new password logs in; a wrong one is a permanent error without values.
    let verified = run(
        &p,
        &plan,
        "pg-app/verify",
        &[("password", password.clone()), picked()],
    )
    .await;
    assert!(verified.is_empty());
    let wrong = "Wr0ng-Pa55word-Not-Shown";
    let e = run_err(
        &p,
        &plan,
        "pg-app/verify",
        &[("password", Value::secret(wrong)), picked()],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(
        e.message.contains("the new password is not accepted"),
        "{e}"
    );
    assert!(
        e.message.contains("28P01") && e.message.contains("\"app\""),
        "{e}"
    );
    assert_clean(&e.message, &[wrong, &new]);

    // Running set_password again (a lost outcome) sets another password; the engine's
    // reconcile answer for it is "not done".
    let i = inputs(&plan, "pg-app/set-password", &[picked()]);
    assert!(matches!(
        p.reconcile(&call(&plan, "pg-app/set-password", &i))
            .await
            .unwrap(),
        Reconciled::NotDone
    ));
    let again = run(&p, &plan, "pg-app/set-password", &[picked()]).await;
    let newer = again["password"].expose().to_owned();
    assert_ne!(newer, new);
    pg.login("app", &newer).await.expect("the newest works");
    assert!(pg.login("app", &new).await.is_err());
    // Undo of set_password changes nothing (irreversible).
    p.undo(&call(&plan, "pg-app/set-password", &i), &again)
        .await
        .unwrap();
    pg.login("app", &newer).await.expect("still the newest");
    admin.close().await.unwrap();
}

/// A drill does not re-enable a role an operator disabled (its verify then says the role
/// cannot log in); an incident, which disabled it itself, does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_incident_enables_login() {
    let pg = PgCluster::start().await;
    let p = provider(&pg);
    let mut admin = pg.admin().await;
    sqlx::raw_sql("ALTER ROLE app NOLOGIN")
        .execute(&mut admin)
        .await
        .unwrap();
    let can_login = async || -> bool {
        let mut admin = pg.admin().await;
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'")
            .fetch_one(&mut admin)
            .await
            .unwrap()
    };
    let drill = plan(Mode::Drill, ADMIN_ENV);
    let out = run(&p, &drill, "pg-app/set-password", &[picked()]).await;
    assert!(!can_login().await, "a drill left the role disabled");
    let e = run_err(
        &p,
        &drill,
        "pg-app/verify",
        &[("password", out["password"].clone()), picked()],
    )
    .await;
    assert!(e.message.contains("28000"), "{e}");
    run(
        &p,
        &plan(Mode::Incident, ADMIN_ENV),
        "pg-app/set-password",
        &[picked()],
    )
    .await;
    assert!(
        can_login().await,
        "the incident's new password enables the login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_disables_login_terminates_sessions_and_undoes() {
    let pg = PgCluster::start().await;
    let p = provider(&pg);
    let plan = plan(Mode::Incident, ADMIN_ENV);
    let mut session = pg
        .login("app", OLD_APP_PASSWORD)
        .await
        .expect("the app logs in");
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();

    let disable = inputs(&plan, "pg-app/disable-login", &[]);
    let disable_call = call(&plan, "pg-app/disable-login", &disable);
    assert!(matches!(
        p.reconcile(&disable_call).await.unwrap(),
        Reconciled::NotDone
    ));
    assert!(p.execute(&disable_call).await.unwrap().is_empty());
    // Idempotent.
    assert!(p.execute(&disable_call).await.unwrap().is_empty());
    assert_eq!(
        pg.login("app", OLD_APP_PASSWORD).await.err().as_deref(),
        Some("28000"),
        "login is disabled"
    );
    assert!(matches!(
        p.reconcile(&disable_call).await.unwrap(),
        Reconciled::Done(v) if v.is_empty()
    ));
    // The open session survived NOLOGIN ...
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();

    // ... until terminated.
    let term = inputs(&plan, "pg-app/terminate-sessions", &[]);
    let term_call = call(&plan, "pg-app/terminate-sessions", &term);
    assert!(matches!(
        p.reconcile(&term_call).await.unwrap(),
        Reconciled::NotDone
    ));
    let out = p.execute(&term_call).await.unwrap();
    assert_eq!(out["terminated"].expose(), "1");
    assert!(!out["terminated"].is_secret());
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "the session was terminated"
    );
    drop(session);
    // The backend goes away shortly after the signal.
    let mut gone = false;
    for _ in 0..50 {
        if let Reconciled::Done(v) = p.reconcile(&term_call).await.unwrap() {
            assert_eq!(v["terminated"].expose(), "0");
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "no session of the role is left");
    assert_eq!(
        p.execute(&term_call).await.unwrap()["terminated"].expose(),
        "0"
    );

    // Undo re-enables login; undo works without resolved inputs (the engine may pass none).
    let none = Values::new();
    p.undo(&call(&plan, "pg-app/disable-login", &none), &Values::new())
        .await
        .unwrap();
    pg.login("app", OLD_APP_PASSWORD)
        .await
        .expect("login is enabled again");
    // Undo of terminate and verify is a no-op.
    p.undo(&term_call, &out).await.unwrap();

    // The role that cannot log in is reported by verify_login as a permanent error.
    p.execute(&disable_call).await.unwrap();
    let e = run_err(
        &p,
        &plan,
        "pg-app/verify",
        &[("password", Value::secret(OLD_APP_PASSWORD)), picked()],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("not accepted"), "{e}");
    assert!(e.message.contains("28000"), "{e}");
    assert_clean(&e.message, &[OLD_APP_PASSWORD]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_give_clear_errors_without_secrets() {
    // A missing variable, through the real process environment.
    let unset = "REKEY_TEST_PG_URL_THAT_IS_NEVER_SET";
    assert!(std::env::var_os(unset).is_none());
    let plan_unset = plan(Mode::Incident, unset);
    let e = run_err(
        &PostgresProvider::new(),
        &plan_unset,
        "pg-app/disable-login",
        &[],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains(unset), "{e}");
    assert!(e.message.contains("not set"), "{e}");

    let plan = plan(Mode::Incident, ADMIN_ENV);
    let with_url = |url: &'static str| {
        PostgresProvider::new()
            .with_env_lookup(move |_| Ok(url.to_owned()))
            .with_connect_timeout(Duration::from_secs(5))
    };

    // Not a connection string: the message names the variable, not the value.
    let e = run_err(
        &with_url("postgres://admin:S3cret-In-Bad-Url@[::1/x"),
        &plan,
        "pg-app/disable-login",
        &[],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains(ADMIN_ENV), "{e}");
    assert_clean(&e.message, &["S3cret-In-Bad-Url"]);

    // Nothing listens: transient, and the admin password is not shown.
    let port = free_port();
    let url: &'static str = Box::leak(
        format!("postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:{port}/postgres").into_boxed_str(),
    );
    let e = run_err(&with_url(url), &plan, "pg-app/disable-login", &[]).await;
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_clean(&e.message, &[]);

    // A wrong admin password: permanent, not shown.
    let pg = PgCluster::start().await;
    let url: &'static str = Box::leak(
        format!(
            "postgres://postgres:Wr0ng-Admin-Pa55@127.0.0.1:{}/postgres",
            pg.port()
        )
        .into_boxed_str(),
    );
    let e = run_err(&with_url(url), &plan, "pg-app/disable-login", &[]).await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("28P01"), "{e}");
    assert_clean(&e.message, &["Wr0ng-Admin-Pa55"]);

    // An unknown role: permanent.
    let mut admin = pg.admin().await;
    sqlx::query("DROP ROLE app")
        .execute(&mut admin)
        .await
        .unwrap();
    let e = run_err(&provider(&pg), &plan, "pg-app/disable-login", &[]).await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("\"app\""), "{e}");
    assert_clean(&e.message, &[]);
}

/// Takes delivered values into memory: a stand-in for the consumers.
#[derive(Default)]
struct MemoryConsumer {
    delivered: Mutex<Vec<SecretString>>,
    /// The `username` of each delivery.
    usernames: Mutex<Vec<String>>,
}

#[async_trait]
impl Provider for MemoryConsumer {
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        if call.step.action == "consumer.deliver" {
            let v = call
                .inputs
                .get("password")
                .ok_or_else(|| ProviderError::permanent("nothing to deliver"))?;
            assert!(v.is_secret());
            self.delivered
                .lock()
                .unwrap()
                .push(SecretString::from(v.expose().to_owned()));
            if let Some(u) = call.inputs.get("username") {
                self.usernames.lock().unwrap().push(u.expose().to_owned());
            }
            return Ok(Values::from([(
                "version".to_owned(),
                Value::Plain("v1".into()),
            )]));
        }
        Ok(Values::new())
    }

    async fn undo(&self, _call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn reconcile(&self, _call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        Ok(Reconciled::NotDone)
    }
}

/// One installation key for every engine of this test binary: runs that share a state
/// database must share the key that chains its audit log.
static INSTALLATION: std::sync::LazyLock<Arc<Fingerprinter>> =
    std::sync::LazyLock::new(|| Arc::new(Fingerprinter::ephemeral()));

/// An engine over `store` with the real PostgreSQL provider and `consumer` for every consumer.
fn engine(
    pg: &PgCluster,
    plan: &Plan,
    store: rekey_store::Store,
    consumer: &Arc<MemoryConsumer>,
) -> Engine {
    let mut providers = Providers::default().with("postgres", Arc::new(provider(pg)));
    for s in &plan.steps {
        if s.provider != "postgres" {
            providers = providers.with(&s.provider, consumer.clone());
        }
    }
    Engine {
        store: Arc::new(store),
        providers,
        fingerprints: Arc::clone(&INSTALLATION),
        config: EngineConfig {
            actor: "test".into(),
            backoff_base: Duration::from_millis(1),
            ..EngineConfig::default()
        },
        simulated: false,
        observer: None,
    }
}

async fn engine_run(mode: Mode) {
    let pg = PgCluster::start().await;
    let plan = plan(mode, ADMIN_ENV);
    let dir = tempfile::tempdir().unwrap();
    let store = rekey_store::Store::open(dir.path().join("state.db").to_str().unwrap())
        .await
        .unwrap();
    let consumer = Arc::new(MemoryConsumer::default());
    let engine = engine(&pg, &plan, store, &consumer);
    let outcome = engine
        .start(&plan, &rekey_engine::new_run_id(), "{}")
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        rekey_store::RunStatus::Succeeded,
        "{:?}",
        outcome.message
    );
    let delivered = consumer.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "one consumer got the new password");
    let new = delivered[0].expose_secret();
    pg.login("app", new)
        .await
        .expect("the delivered password logs in");
    assert!(pg.login("app", OLD_APP_PASSWORD).await.is_err());

    // Nothing stored (state database with its audit log, and its WAL) holds the new password.
    // Read while the store is open: closing it may remove the WAL files meanwhile.
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let f = f.unwrap().path();
        let Ok(bytes) = std::fs::read(&f) else {
            continue; // a -shm/-wal file that went away
        };
        assert!(
            !bytes.windows(new.len()).any(|w| w == new.as_bytes()),
            "{} holds the password",
            f.display()
        );
    }
    drop(engine);
}

/// `strategy: alternating`: each drill sets the standby role and moves the active tag to it,
/// while the role consumers used keeps working; an incident revokes both roles (login off,
/// sessions ended) and brings the standby back with a new password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_roles_take_turns() {
    let pg = PgCluster::start().await;
    let mut admin = pg.admin().await;
    // A comment ending in a backslash, read by admin sessions without standard-conforming
    // strings: the tag must still go in as data, never as SQL.
    sqlx::raw_sql(
        "CREATE ROLE app_b LOGIN PASSWORD 'old-b-password'; \
         COMMENT ON ROLE app IS E'the web app \\\\'; \
         ALTER ROLE postgres SET standard_conforming_strings = off",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let inventory = inventory(ADMIN_ENV).replace(
        "    role: app\n",
        "    role: app\n    strategy: alternating\n    alternate_role: app_b\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let comment = async |role: &str| -> Option<String> {
        let mut admin = pg.admin().await;
        sqlx::query_scalar(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_one(&mut admin)
        .await
        .unwrap()
    };
    let rotate = async |mode: Mode| -> (String, String) {
        let plan = crate::harness::compile(&inventory, mode, Some("pg-app"));
        let store = rekey_store::Store::open(dir.path().join("state.db").to_str().unwrap())
            .await
            .unwrap();
        let consumer = Arc::new(MemoryConsumer::default());
        let engine = engine(&pg, &plan, store, &consumer);
        let outcome = engine
            .start(&plan, &rekey_engine::new_run_id(), "{}")
            .await
            .unwrap();
        assert_eq!(
            outcome.status,
            rekey_store::RunStatus::Succeeded,
            "{mode:?}: {:?}",
            outcome.message
        );
        engine.store.close().await;
        let user = consumer.usernames.lock().unwrap()[0].clone();
        let password = consumer.delivered.lock().unwrap()[0]
            .expose_secret()
            .to_owned();
        (user, password)
    };

    // First drill: consumers used `app` (nothing tagged), so `app_b` gets the new password.
    let (user, first) = rotate(Mode::Drill).await;
    assert_eq!(user, "app_b");
    pg.login("app_b", &first).await.expect("the new password");
    pg.login("app", OLD_APP_PASSWORD)
        .await
        .expect("the role consumers used keeps working: no downtime");
    assert!(pg.login("app_b", "old-b-password").await.is_err());
    assert_eq!(comment("app_b").await.as_deref(), Some("[rekey:active]"));
    assert_eq!(
        comment("app").await.as_deref(),
        Some("the web app \\"),
        "its own comment is kept"
    );

    // Second drill: back to `app`.
    let (user, second) = rotate(Mode::Drill).await;
    assert_eq!(user, "app");
    pg.login("app", &second).await.expect("the new password");
    assert!(pg.login("app", OLD_APP_PASSWORD).await.is_err());
    pg.login("app_b", &first)
        .await
        .expect("the standby keeps working");
    assert_eq!(
        comment("app").await.as_deref(),
        Some("the web app \\ [rekey:active]")
    );
    assert_eq!(comment("app_b").await, None);

    // Incident: both roles' passwords may be exposed. An open session of the active role ends,
    // both stop logging in, and the standby comes back with a new password.
    let mut session = pg.login("app", &second).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();
    let (user, third) = rotate(Mode::Incident).await;
    assert_eq!(user, "app_b");
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "the session of the exposed role survived"
    );
    assert_eq!(
        pg.login("app", &second).await.err().as_deref(),
        Some("28000"),
        "the exposed active role cannot log in"
    );
    assert!(pg.login("app_b", &first).await.is_err());
    pg.login("app_b", &third).await.expect("the new password");
    assert_eq!(comment("app_b").await.as_deref(), Some("[rekey:active]"));
    assert_eq!(comment("app").await.as_deref(), Some("the web app \\"));

    // A leftover `alternate_role` without `strategy: alternating` pairs nothing.
    let single = inventory.replace("    strategy: alternating\n", "");
    assert!(single.contains("alternate_role: app_b"));
    let plan = crate::harness::compile(&single, Mode::Drill, Some("pg-app"));
    let picked = run(&provider(&pg), &plan, "pg-app/pick-role", &[]).await;
    assert_eq!(picked["role"].expose(), "app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_drill_rotates_the_password() {
    engine_run(Mode::Drill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_incident_rotates_the_password() {
    engine_run(Mode::Incident).await;
}

// ---------------------------------------------------------------------------------------------
// Conformance subject

/// The wrong admin password of the misconfigured provider.
const WRONG_ADMIN_PASSWORD: &str = "Wr0ng-Pg-Admin-Pa55-Never-Shown";

/// The role `app` of a throwaway cluster, delivered to an env file (`PGPASSWORD`, holding the old
/// password before the run).
pub(crate) struct PgSubject {
    pg: PgCluster,
    /// One admin session for the subject's own look-ups (a SCRAM login per look-up is slow).
    admin: tokio::sync::Mutex<sqlx::PgConnection>,
    plan: Plan,
    env: tempfile::TempDir,
    provider: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
    wrong: Arc<dyn Provider>,
}

impl PgSubject {
    pub(crate) async fn start(mode: Mode) -> Self {
        let pg = PgCluster::start().await;
        let env = tempfile::tempdir().unwrap();
        let file = env.path().join("db.env");
        std::fs::write(&file, format!("# web\nPGPASSWORD={OLD_APP_PASSWORD}\n")).unwrap();
        let plan = crate::harness::compile(
            &inventory_to(
                ADMIN_ENV,
                &format!(
                    "{{ path: {}, key: PGPASSWORD, field: password }}",
                    file.display()
                ),
            ),
            mode,
            Some("pg-app"),
        );
        let wrong_url = format!(
            "postgres://postgres:{WRONG_ADMIN_PASSWORD}@127.0.0.1:{}/postgres",
            pg.port()
        );
        Self {
            admin: tokio::sync::Mutex::new(pg.admin().await),
            provider: Arc::new(provider(&pg)),
            consumers: Arc::new(ConsumerRouter {
                aws: None,
                github: None,
                env_file: Arc::new(EnvFileProvider),
            }),
            wrong: Arc::new(
                PostgresProvider::new().with_env_lookup(move |_| Ok(wrong_url.clone())),
            ),
            plan,
            env,
            pg,
        }
    }
}

impl Subject for PgSubject {
    fn name(&self) -> String {
        format!("PostgreSQL role password ({:?})", self.plan.mode)
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "postgres" => Arc::clone(&self.provider),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        (step.provider == "postgres").then(|| Arc::clone(&self.wrong))
    }

    fn old_value(&self) -> Values {
        [("password".to_owned(), Value::secret(OLD_APP_PASSWORD))].into()
    }

    fn holds_two(&self) -> bool {
        false
    }

    fn secrets(&self) -> Vec<String> {
        vec![ADMIN_PASSWORD.to_owned(), WRONG_ADMIN_PASSWORD.to_owned()]
    }

    async fn accepts(&self, value: &Values) -> bool {
        match self.pg.login("app", value["password"].expose()).await {
            Ok(conn) => {
                let _ = conn.close().await;
                true
            }
            Err(_) => false,
        }
    }

    async fn values(&self) -> usize {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_authid WHERE rolname = 'app' AND rolpassword IS NOT NULL",
        )
        .fetch_one(&mut *self.admin.lock().await)
        .await
        .unwrap();
        usize::try_from(n).unwrap()
    }

    /// Whether the role can log in, a hash of its verifier, a hash of the env file.
    async fn snapshot(&self) -> String {
        let (login, verifier): (bool, Option<String>) =
            sqlx::query_as("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = 'app'")
                .fetch_one(&mut *self.admin.lock().await)
                .await
                .unwrap();
        let file = std::fs::read(self.env.path().join("db.env")).unwrap_or_default();
        format!(
            "login {login}, verifier {}, env file {}",
            verifier.map_or_else(|| "none".to_owned(), |v| digest(v.as_bytes())),
            digest(&file)
        )
    }

    async fn consumer(&self) -> ConsumerView {
        let text = std::fs::read_to_string(self.env.path().join("db.env")).unwrap_or_default();
        ConsumerView {
            current: env_value(&text, "PGPASSWORD"),
            pending: None,
        }
    }
}
