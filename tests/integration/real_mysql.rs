//! The real `rekey` binary against a throwaway `MariaDB` server on 127.0.0.1
//! (`rekey_testkit::MariaDb`; `./scripts/peers.sh` installs it, and these tests fail when it is
//! missing): `mysql_password` credentials delivered to env files, a drill and an incident run,
//! and crashes at every crash point followed by `rekey resume`. Every check asks the server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use rekey_testkit::{ADMIN_PASSWORD, MariaDb, OLD_APP_PASSWORD};
use sqlx::Connection;

use crate::harness::{Workspace, env_file_value, position, summary};

/// The environment variable the inventory names as `admin_url_env`.
const ADMIN_ENV: &str = "MYSQL_ADMIN_URL";

/// The credentials: (credential id, user, the user's password before any run).
const USERS: [(&str, &str, &str); 3] = [
    ("my-app", "app", OLD_APP_PASSWORD),
    ("my-billing", "billing", "0ld-Billing-Pa55word"),
    ("my-report", "report", "0ld-Report-Pa55word"),
];

/// A server with the users of `users` (old passwords set), and a workspace whose inventory
/// delivers each one's password to `etc/<user>.env` (`MYSQL_PASSWORD`, holding the old one).
struct World {
    db: MariaDb,
    ws: Workspace,
    admin_url: String,
}

impl World {
    /// `host_pattern`: written into the inventory when given (the account is `user@'%'`).
    async fn start(users: &[(&str, &str, &str)], host_pattern: Option<&str>) -> Self {
        let db = MariaDb::start().await;
        let mut inv = String::from(
            "hosts:\n  - id: ci\n    kind: ci_runner\nservices:\n  - id: web\n    owner: team-web\n    built_on: [ci]\ncredentials:\n",
        );
        let ws = Workspace::empty();
        for &(id, user, old) in users {
            if user != "app" {
                db.create_user(user, old).await;
            }
            let _ = write!(
                inv,
                "  - id: {id}
    kind: mysql_password
    owner: team-web
    used_by: [web]
    present_on: [ci]
    user: {user}
{host}    admin_url_env: {ADMIN_ENV}
    delivered_to:
      - env_file: {{ path: {}, key: MYSQL_PASSWORD, field: password }}
",
                ws.path().join("etc").join(format!("{user}.env")).display(),
                host = host_pattern.map_or(String::new(), |h| format!("    host_pattern: '{h}'\n")),
            );
        }
        std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
        std::fs::write(ws.path().join("inventory/acme.yaml"), inv).unwrap();
        std::fs::create_dir_all(ws.path().join("etc")).unwrap();
        for &(_, user, old) in users {
            std::fs::write(
                ws.path().join(format!("etc/{user}.env")),
                format!("# {user}\nMYSQL_HOST=127.0.0.1\nMYSQL_PASSWORD={old}\n"),
            )
            .unwrap();
        }
        Self {
            admin_url: db.admin_url(),
            db,
            ws,
        }
    }

    /// What `rekey` gets: the admin URL, and every log line there is.
    fn env(&self) -> [(&str, &str); 2] {
        [(ADMIN_ENV, &self.admin_url), ("REKEY_LOG", "trace")]
    }

    fn env_file(&self, user: &str) -> PathBuf {
        self.ws.path().join(format!("etc/{user}.env"))
    }

    /// The password in `user`'s env file; the file's other lines are still there.
    fn delivered(&self, user: &str) -> String {
        let path = self.env_file(user);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("# {user}\n")) && text.contains("MYSQL_HOST=127.0.0.1\n"),
            "{user}: the env file lost its other lines"
        );
        env_file_value(&path, "MYSQL_PASSWORD")
    }

    /// Logs in as `user` and asks the server who that is: `Ok`, or the error number.
    async fn login(&self, user: &str, password: &str) -> Result<(), String> {
        let mut conn = self.db.login(user, password).await?;
        let who: String = sqlx::query_scalar("SELECT CURRENT_USER()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(who, format!("{user}@%"));
        conn.close().await.unwrap();
        Ok(())
    }

    /// `password` logs in as `user` and every one of `dead` is refused (access denied).
    async fn assert_only(&self, user: &str, password: &str, dead: &[&str]) {
        if let Err(e) = self.login(user, password).await {
            panic!("{user}: the password in its env file is refused (error {e})");
        }
        for d in dead {
            assert_ne!(d, &password, "{user}: the password did not change");
            assert_eq!(
                self.login(user, d).await.err().as_deref(),
                Some("1045"),
                "{user}: an earlier password still logs in"
            );
        }
        // One account, unlocked.
        let mut admin = self.db.admin().await;
        let (n, locked): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS SIGNED), \
             CAST(COALESCE(SUM(JSON_EXTRACT(Priv, '$.account_locked') = 'true'), 0) AS SIGNED) \
             FROM mysql.global_priv WHERE User = ?",
        )
        .bind(user)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        admin.close().await.unwrap();
        assert_eq!((n, locked), (1, 0), "{user}: accounts, locked ones");
    }

    /// The status of the run `id` (`rekey status ID --json`).
    fn run_status(&self, id: &str, seen: &mut String) -> String {
        let r = self.ws.rekey_seen(&["status", id, "--json"], &[], seen);
        r.ok("status");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["status"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_drill_and_incident_end_to_end() {
    let w = World::start(&USERS, None).await;
    let env = w.env();
    let ws = &w.ws;
    let mut seen = String::new();
    for (_, user, old) in USERS {
        w.assert_only(user, old, &[]).await;
    }

    // Drill: every user gets a new password.
    let t = Instant::now();
    ws.rekey_seen(&["validate"], &env, &mut seen).ok("validate");
    let r = ws.rekey_seen(&["run", "--yes", "--reason", "DRILL-MY"], &env, &mut seen);
    r.ok("run");
    eprintln!("drill run of {} users: {:?}", USERS.len(), t.elapsed());
    let drill_id = ws.run_ids(&[])[0].clone();
    assert_eq!(w.run_status(&drill_id, &mut seen), "succeeded");
    let mut drilled = BTreeMap::new();
    for (_, user, old) in USERS {
        let new = w.delivered(user);
        assert_eq!(new.len(), 43, "{user}: a strong password");
        w.assert_only(user, &new, &[old]).await;
        drilled.insert(user, new);
    }
    let events = ws.audit_events(Some(&drill_id), &mut seen);
    assert!(events.iter().all(|e| e["simulated"] == false));
    for (id, user, _) in USERS {
        let set = position(&events, "step_succeeded", &format!("{id}/set-password"));
        let deliver = format!(
            "{id}/deliver[env:{}#MYSQL_PASSWORD]",
            w.env_file(user).display()
        );
        let delivered = position(&events, "step_succeeded", &deliver);
        let verified = position(&events, "step_succeeded", &format!("{id}/verify"));
        assert!(
            set < delivered && delivered < verified,
            "{}",
            summary(&events)
        );
        assert!(
            events[set]["fingerprint"]
                .as_str()
                .is_some_and(|f| f.starts_with("password=")),
            "the new password's fingerprint is recorded: {}",
            events[set]
        );
    }
    ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");

    // Incident on `app`: its open session is killed, and the account is locked and the session
    // killed before the new password is set.
    let mut session = w.db.login("app", &drilled["app"]).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();
    let r = ws.rekey_seen(
        &[
            "run",
            "--yes",
            "--mode",
            "incident",
            "--credential",
            "my-app",
            "--reason",
            "INC-MY",
        ],
        &env,
        &mut seen,
    );
    r.ok("run --mode incident");
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "the open session of app survived the incident run"
    );
    drop(session);
    let incident_id = ws.run_ids(&[])[0].clone();
    assert_ne!(incident_id, drill_id);
    assert_eq!(w.run_status(&incident_id, &mut seen), "succeeded");
    let newest = w.delivered("app");
    w.assert_only("app", &newest, &[&drilled["app"], OLD_APP_PASSWORD])
        .await;
    // The other users were not touched.
    for (_, user, old) in &USERS[1..] {
        assert_eq!(w.delivered(user), drilled[user]);
        w.assert_only(user, &drilled[user], &[old]).await;
    }
    let events = ws.audit_events(Some(&incident_id), &mut seen);
    let locked = position(&events, "step_succeeded", "my-app/lock-account");
    let killed = position(&events, "step_succeeded", "my-app/kill-sessions");
    let set = position(&events, "step_started", "my-app/set-password");
    assert!(
        locked < killed && killed < set,
        "the account was locked and its session killed before the new password was set:\n{}",
        summary(&events)
    );
    assert_eq!(
        events[killed]["detail"], r#"{"killed":"1"}"#,
        "kill-sessions found the open session"
    );
    assert!(
        events
            .iter()
            .all(|e| e["credential"].is_null() || e["credential"] == "my-app"),
        "{}",
        summary(&events)
    );
    ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");

    // No password, old or new, nor the admin's, in anything rekey printed (at trace level), in
    // its state database or in the audit export.
    rekey_all_output(ws, &env, &mut seen);
    let mut secrets = vec![ADMIN_PASSWORD, newest.as_str()];
    secrets.extend(USERS.iter().map(|u| u.2));
    secrets.extend(drilled.values().map(String::as_str));
    assert!(seen.contains("TRACE"), "REKEY_LOG=trace logs");
    ws.assert_no_secrets(&seen, &secrets);
}

/// The commands that show state, their output appended to `seen`.
fn rekey_all_output(ws: &Workspace, env: &[(&str, &str)], seen: &mut String) {
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["audit", "show"],
        &["inventory", "list"],
        &["plan", "--mode", "incident"],
    ] {
        ws.rekey_seen(args, env, seen).ok(&args.join(" "));
    }
}

/// For N = 1, 2, …: a run of one credential in `mode` aborts at its N-th crash point (like
/// SIGKILL: no cleanup), `rekey resume` finishes it, and the user ends with exactly one working
/// password, the one in its env file, every earlier one refused; until a run has fewer crash
/// points than N (3 per step: after `started`, after the provider call, after `succeeded`).
async fn crash_at_every_point(mode: &str, host_pattern: Option<&str>) {
    let w = World::start(&USERS[..1], host_pattern).await;
    let env = w.env();
    let ws = &w.ws;
    let mut seen = String::new();
    let plan = ws.rekey_seen(
        &["plan", "--mode", mode, "--format", "json"],
        &env,
        &mut seen,
    );
    plan.ok("plan");
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap().len();
    let mut passwords = vec![OLD_APP_PASSWORD.to_owned()];
    let t = Instant::now();
    let mut n = 1;
    loop {
        let reason = format!("CRASH-{n}");
        let at = n.to_string();
        let mut crash_env = env.to_vec();
        crash_env.push(("REKEY_SIM_CRASH_AT", &at));
        let r = ws.rekey_seen(
            &["run", "--yes", "--mode", mode, "--reason", &reason],
            &crash_env,
            &mut seen,
        );
        let id = ws.run_ids(&[])[0].clone();
        if r.code == Some(0) {
            // No N-th crash point: the run went through.
            assert_eq!(n - 1, 3 * steps, "{steps} steps, {} crash points", n - 1);
            assert_eq!(w.run_status(&id, &mut seen), "succeeded");
        } else {
            assert_eq!(
                r.code, None,
                "crash point {n}: the run was not aborted\n{}",
                r.stderr
            );
            assert!(
                r.stderr
                    .contains(&format!("simulated crash at crash point {n}")),
                "{}",
                r.stderr
            );
            let status = w.run_status(&id, &mut seen);
            assert_eq!(status, "running", "crash point {n}: the crashed run");
            let resumed = ws.rekey_seen(&["resume", &id], &env, &mut seen);
            resumed.ok(&format!("resume after crash point {n}"));
            assert_eq!(w.run_status(&id, &mut seen), "succeeded", "crash point {n}");
        }
        let now = w.delivered("app");
        let dead: Vec<&str> = passwords.iter().map(String::as_str).collect();
        w.assert_only("app", &now, &dead).await;
        ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
            .ok(&format!("audit verify after crash point {n}"));
        passwords.push(now);
        if r.code == Some(0) {
            break;
        }
        n += 1;
    }
    eprintln!(
        "{mode}: {n} runs ({} crash points) in {:?}",
        n - 1,
        t.elapsed()
    );
    let mut secrets: Vec<&str> = passwords.iter().map(String::as_str).collect();
    secrets.push(ADMIN_PASSWORD);
    ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_drill_crash_at_every_point_then_resume() {
    crash_at_every_point("drill", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_drill_crash_at_every_point_with_host_pattern() {
    crash_at_every_point("drill", Some("%")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_incident_crash_at_every_point_then_resume() {
    crash_at_every_point("incident", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_incident_crash_at_every_point_with_host_pattern() {
    crash_at_every_point("incident", Some("%")).await;
}
