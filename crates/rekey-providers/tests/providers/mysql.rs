//! The `mysql.*` actions against a real, throwaway `MariaDB` server on 127.0.0.1, through the
//! [`Provider`] trait.

use std::sync::Arc;
use std::time::Duration;

use rekey_engine::{ErrorKind, Provider, Reconciled, Value, Values};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::envfile::EnvFileProvider;
use rekey_providers::mysql::MysqlProvider;
use rekey_providers::router::ConsumerRouter;
use rekey_spec::Mode;
use rekey_testkit::{ADMIN_PASSWORD, MariaDb, OLD_APP_PASSWORD, free_port};
use sqlx::Connection;
use sqlx::mysql::MySqlConnection;

use crate::conformance::{ConsumerView, Subject};
use crate::harness::{
    assert_clean, call, digest, env_value, literal_inputs as inputs, run, run_err,
};

const ADMIN_ENV: &str = "REKEY_TEST_MYSQL_ADMIN_URL";

// ---------------------------------------------------------------------------------------------
// The server.

/// A provider whose `admin_url_env` variable holds `db`'s admin URL (the test cannot change
/// its own environment safely).
fn provider(db: &MariaDb) -> MysqlProvider {
    let url = db.admin_url();
    MysqlProvider::new().with_env_lookup(move |name| {
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
        "app",
        "{ path: /etc/web/db.env, key: MYSQL_PASSWORD, field: password }",
    )
}

/// The credential `my-app` (the user `user`), delivered to the `env_file` consumer `env_file`.
fn inventory_to(admin_env: &str, user: &str, env_file: &str) -> String {
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
  - id: my-app
    kind: mysql_password
    owner: team-web
    used_by: [web]
    present_on: [ci]
    policy: {{ max_age_days: 90 }}
    last_rotated: 2026-08-20
    user: {user}
    admin_url_env: {admin_env}
    delivered_to:
      - env_file: {env_file}
"
    )
}

fn plan(mode: Mode, admin_env: &str) -> Plan {
    crate::harness::compile(&inventory(admin_env), mode, Some("my-app"))
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_password_replaces_the_old_one_and_verifies() {
    let db = MariaDb::start().await;
    let p = provider(&db);
    let plan = plan(Mode::Drill, ADMIN_ENV);
    db.login("app", OLD_APP_PASSWORD)
        .await
        .expect("the old password works before");

    let out = run(&p, &plan, "my-app/set-password", &[]).await;
    let password = out.get("password").expect("a password output").clone();
    assert!(password.is_secret(), "the password is a secret output");
    let new = password.expose().to_owned();
    assert_eq!(new.len(), 43, "a strong password");
    // Debug of the outputs (what a log line would show) holds no password.
    let debug = format!("{out:?}");
    assert!(!debug.contains(&new), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
    assert_eq!(rekey_engine::provider::plain_json(&out), "{}");

    db.login("app", &new).await.expect("the new password works");
    assert_eq!(
        db.login("app", OLD_APP_PASSWORD).await.err().as_deref(),
        Some("1045"),
        "the old password no longer works"
    );

    // verify_login: the new password logs in; a wrong one is a permanent error.
    let verified = run(
        &p,
        &plan,
        "my-app/verify",
        &[("password", password.clone())],
    )
    .await;
    assert!(verified.is_empty());
    let wrong = "Wr0ng-Pa55word-Not-Shown";
    let e = run_err(
        &p,
        &plan,
        "my-app/verify",
        &[("password", Value::secret(wrong))],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(
        e.message.contains("the new password is not accepted"),
        "{e}"
    );
    assert!(
        e.message.contains("1045") && e.message.contains("'app'"),
        "{e}"
    );
    assert!(!e.message.contains("mysql://"), "{e}");
    assert_clean(&e.message, &[wrong, &new]);

    // Running set_password again sets another password; reconcile says "not done".
    let i = inputs(&plan, "my-app/set-password", &[]);
    assert!(matches!(
        p.reconcile(&call(&plan, "my-app/set-password", &i))
            .await
            .unwrap(),
        Reconciled::NotDone
    ));
    let again = run(&p, &plan, "my-app/set-password", &[]).await;
    let newer = again["password"].expose().to_owned();
    assert_ne!(newer, new);
    db.login("app", &newer).await.expect("the newest works");
    assert!(db.login("app", &new).await.is_err());
}

/// A drill does not unlock an account an operator locked; an incident (which locked it
/// itself) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_incident_unlocks_the_account() {
    let db = MariaDb::start().await;
    let p = provider(&db);
    let mut admin = db.admin().await;
    sqlx::raw_sql("ALTER USER 'app'@'%' ACCOUNT LOCK")
        .execute(&mut admin)
        .await
        .unwrap();
    let drill = run(
        &p,
        &plan(Mode::Drill, ADMIN_ENV),
        "my-app/set-password",
        &[],
    )
    .await;
    let new = drill["password"].expose().to_owned();
    assert_eq!(
        db.login("app", &new).await.err().as_deref(),
        Some("4151"),
        "still locked after a drill"
    );
    let incident = run(
        &p,
        &plan(Mode::Incident, ADMIN_ENV),
        "my-app/set-password",
        &[],
    )
    .await;
    db.login("app", incident["password"].expose())
        .await
        .expect("unlocked by the incident's new password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_locks_the_account_kills_sessions_and_undoes() {
    let db = MariaDb::start().await;
    let p = provider(&db);
    let plan = plan(Mode::Incident, ADMIN_ENV);
    let mut session = db
        .login("app", OLD_APP_PASSWORD)
        .await
        .expect("the app logs in");
    sqlx::raw_sql("SELECT 1")
        .execute(&mut session)
        .await
        .unwrap();

    // lock_account.
    let lock = inputs(&plan, "my-app/lock-account", &[]);
    let lock_call = call(&plan, "my-app/lock-account", &lock);
    assert!(matches!(
        p.reconcile(&lock_call).await.unwrap(),
        Reconciled::NotDone
    ));
    assert!(p.execute(&lock_call).await.unwrap().is_empty());
    // Idempotent.
    assert!(p.execute(&lock_call).await.unwrap().is_empty());
    assert_eq!(
        db.login("app", OLD_APP_PASSWORD).await.err().as_deref(),
        Some("4151"),
        "the account is locked"
    );
    assert!(matches!(
        p.reconcile(&lock_call).await.unwrap(),
        Reconciled::Done(v) if v.is_empty()
    ));

    // kill_sessions: the open session (opened before the lock) is ended.
    let kill = inputs(&plan, "my-app/kill-sessions", &[]);
    let kill_call = call(&plan, "my-app/kill-sessions", &kill);
    assert!(matches!(
        p.reconcile(&kill_call).await.unwrap(),
        Reconciled::NotDone
    ));
    let out = p.execute(&kill_call).await.unwrap();
    assert_eq!(out["killed"].expose(), "1", "{out:?}");
    assert!(
        sqlx::raw_sql("SELECT 1")
            .execute(&mut session)
            .await
            .is_err(),
        "the session was killed"
    );
    let out = p.execute(&kill_call).await.unwrap();
    assert_eq!(out["killed"].expose(), "0", "nothing left to kill");
    match p.reconcile(&kill_call).await.unwrap() {
        Reconciled::Done(v) => assert_eq!(v["killed"].expose(), "0"),
        Reconciled::NotDone => panic!("no sessions are left"),
    }

    // Undo of the lock: the app logs in again.
    p.undo(&lock_call, &Values::new()).await.unwrap();
    db.login("app", OLD_APP_PASSWORD)
        .await
        .expect("unlocked again");
    assert!(matches!(
        p.reconcile(&lock_call).await.unwrap(),
        Reconciled::NotDone
    ));

    // set_password unlocks a locked account.
    p.execute(&lock_call).await.unwrap();
    let out = run(&p, &plan, "my-app/set-password", &[]).await;
    db.login("app", out["password"].expose())
        .await
        .expect("set_password unlocks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_give_clear_errors_without_secrets() {
    // A missing variable, through the real process environment.
    let unset = "REKEY_TEST_MYSQL_URL_THAT_IS_NEVER_SET";
    assert!(std::env::var_os(unset).is_none());
    let plan_unset = plan(Mode::Incident, unset);
    let e = run_err(
        &MysqlProvider::new(),
        &plan_unset,
        "my-app/lock-account",
        &[],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(
        e.message.contains(unset) && e.message.contains("not set"),
        "{e}"
    );

    let plan = plan(Mode::Incident, ADMIN_ENV);
    let with_url = |url: String| {
        MysqlProvider::new()
            .with_env_lookup(move |_| Ok(url.clone()))
            .with_connect_timeout(Duration::from_secs(5))
    };

    // Not a connection string: the message names the variable, not the value.
    let e = run_err(
        &with_url("mysql://admin:S3cret-In-Bad-Url@[::1/x".to_owned()),
        &plan,
        "my-app/lock-account",
        &[],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains(ADMIN_ENV), "{e}");
    assert_clean(&e.message, &["S3cret-In-Bad-Url"]);

    // Nothing listens: transient, and the admin password is not shown.
    let port = free_port();
    let e = run_err(
        &with_url(format!("mysql://admin:{ADMIN_PASSWORD}@127.0.0.1:{port}")),
        &plan,
        "my-app/lock-account",
        &[],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_clean(&e.message, &[]);

    // A wrong admin password: permanent, not shown.
    let db = MariaDb::start().await;
    let e = run_err(
        &with_url(format!(
            "mysql://admin:Wr0ng-Admin-Pa55@127.0.0.1:{}",
            db.port()
        )),
        &plan,
        "my-app/lock-account",
        &[],
    )
    .await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("1045"), "{e}");
    assert_clean(&e.message, &["Wr0ng-Admin-Pa55"]);

    // An unknown user: permanent; reconcile of the lock says "not done".
    let mut admin = db.admin().await;
    sqlx::raw_sql("DROP USER 'app'@'%'")
        .execute(&mut admin)
        .await
        .unwrap();
    let e = run_err(&provider(&db), &plan, "my-app/lock-account", &[]).await;
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("'app'@'%'"), "{e}");
    assert_clean(&e.message, &[]);
    let lock = inputs(&plan, "my-app/lock-account", &[]);
    assert!(matches!(
        provider(&db)
            .reconcile(&call(&plan, "my-app/lock-account", &lock))
            .await
            .unwrap(),
        Reconciled::NotDone
    ));
    admin.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Conformance subject

/// The wrong admin password of the misconfigured provider.
const WRONG_ADMIN_PASSWORD: &str = "Wr0ng-My-Admin-Pa55-Never-Shown";

/// A user of a throwaway server (`app`, or one made for the subject), delivered to an env
/// file (`MYSQL_PASSWORD`, holding the old password before the run).
pub(crate) struct MysqlSubject {
    db: Arc<MariaDb>,
    user: String,
    plan: Plan,
    env: tempfile::TempDir,
    provider: Arc<dyn Provider>,
    consumers: Arc<dyn Provider>,
    wrong: Arc<dyn Provider>,
}

impl MysqlSubject {
    /// The user `app` of a new server.
    pub(crate) async fn start(mode: Mode) -> Self {
        Self::on(Arc::new(MariaDb::start().await), "app", mode).await
    }

    /// The user `user` of `db`, made (with the old password) unless it is `app`.
    pub(crate) async fn on(db: Arc<MariaDb>, user: &str, mode: Mode) -> Self {
        if user != "app" {
            db.create_user(user, OLD_APP_PASSWORD).await;
        }
        let env = tempfile::tempdir().unwrap();
        let file = env.path().join("db.env");
        std::fs::write(&file, format!("# web\nMYSQL_PASSWORD={OLD_APP_PASSWORD}\n")).unwrap();
        let plan = crate::harness::compile(
            &inventory_to(
                ADMIN_ENV,
                user,
                &format!(
                    "{{ path: {}, key: MYSQL_PASSWORD, field: password }}",
                    file.display()
                ),
            ),
            mode,
            Some("my-app"),
        );
        let wrong_url = format!(
            "mysql://admin:{WRONG_ADMIN_PASSWORD}@127.0.0.1:{}",
            db.port()
        );
        Self {
            provider: Arc::new(provider(&db)),
            consumers: Arc::new(ConsumerRouter {
                aws: None,
                github: None,
                env_file: Arc::new(EnvFileProvider),
            }),
            wrong: Arc::new(MysqlProvider::new().with_env_lookup(move |_| Ok(wrong_url.clone()))),
            user: user.to_owned(),
            plan,
            env,
            db,
        }
    }

    async fn admin(&self) -> MySqlConnection {
        self.db.admin().await
    }
}

impl Subject for MysqlSubject {
    fn name(&self) -> String {
        format!(
            "MariaDB user password ({}, {:?})",
            self.user, self.plan.mode
        )
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn provider(&self, step: &PlannedStep) -> Arc<dyn Provider> {
        match step.provider.as_str() {
            "mysql" => Arc::clone(&self.provider),
            "consumer" => Arc::clone(&self.consumers),
            other => panic!("no {other} provider for {}", step.id),
        }
    }

    fn misconfigured(&self, step: &PlannedStep) -> Option<Arc<dyn Provider>> {
        (step.provider == "mysql").then(|| Arc::clone(&self.wrong))
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
        match self.db.login(&self.user, value["password"].expose()).await {
            Ok(conn) => {
                let _ = conn.close().await;
                true
            }
            Err(_) => false,
        }
    }

    async fn values(&self) -> usize {
        let mut admin = self.admin().await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM mysql.user WHERE User = ?")
            .bind(&self.user)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        usize::try_from(n).unwrap()
    }

    /// A hash of `SHOW CREATE USER` (the password hash and the lock) and of the env file.
    async fn snapshot(&self) -> String {
        let mut admin = self.admin().await;
        let row = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SHOW CREATE USER '{}'@'%'",
            self.user
        )))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        let user: String = sqlx::Row::try_get_unchecked(&row, 0).unwrap();
        admin.close().await.unwrap();
        let file = std::fs::read(self.env.path().join("db.env")).unwrap_or_default();
        format!(
            "user {} (locked: {}), env file {}",
            digest(user.as_bytes()),
            user.to_ascii_uppercase().contains(" ACCOUNT LOCK"),
            digest(&file)
        )
    }

    async fn consumer(&self) -> ConsumerView {
        let text = std::fs::read_to_string(self.env.path().join("db.env")).unwrap_or_default();
        ConsumerView {
            current: env_value(&text, "MYSQL_PASSWORD"),
            pending: None,
        }
    }
}
