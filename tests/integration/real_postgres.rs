//! The real `rekey` binary against a throwaway PostgreSQL cluster on 127.0.0.1
//! (`rekey_testkit::PgCluster`; `./scripts/peers.sh` installs the server, and these tests fail
//! when it is missing): a `postgres_password` credential, single and alternating, aborted at
//! every crash point of a drill and of an incident, then resumed. Every check asks the server.

use std::path::PathBuf;
use std::time::Instant;

use rekey_testkit::{ADMIN_PASSWORD, OLD_APP_PASSWORD, PgCluster};

use crate::harness::{Workspace, env_file_value, summary};

const ADMIN_ENV: &str = "PG_ADMIN_URL";
const OLD_B_PASSWORD: &str = "0ld-AppB-Pa55word";

struct World {
    pg: PgCluster,
    ws: Workspace,
    admin_url: String,
}

impl World {
    /// Role `app` (and with `alternating`, its partner `app_b`), delivered to env files: the
    /// password to `etc/app.env`, the role consumers use to `etc/app-user.env`.
    async fn start(alternating: bool) -> Self {
        let pg = PgCluster::start().await;
        let ws = Workspace::empty();
        let etc = ws.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
        std::fs::write(
            etc.join("app.env"),
            format!("# app\nPGHOST=127.0.0.1\nPGPASSWORD={OLD_APP_PASSWORD}\n"),
        )
        .unwrap();
        std::fs::write(etc.join("app-user.env"), "PGUSER=app\n").unwrap();
        if alternating {
            let mut admin = pg.admin().await;
            sqlx::raw_sql("CREATE ROLE app_b LOGIN PASSWORD '0ld-AppB-Pa55word'")
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let strategy = if alternating {
            "    strategy: alternating\n    alternate_role: app_b\n"
        } else {
            ""
        };
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
{strategy}    database: postgres
    admin_url_env: {ADMIN_ENV}
    delivered_to:
      - env_file: {{ path: {}, key: PGPASSWORD, field: password }}
      - env_file: {{ path: {}, key: PGUSER, field: username }}
",
                etc.join("app.env").display(),
                etc.join("app-user.env").display(),
            ),
        )
        .unwrap();
        Self {
            admin_url: pg.admin_url(),
            pg,
            ws,
        }
    }

    fn env_file(&self, name: &str) -> PathBuf {
        self.ws.path().join("etc").join(name)
    }

    /// What consumers hold: (role, password); the password file keeps its other lines.
    fn delivered(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.env_file("app.env")).unwrap();
        assert!(
            text.starts_with("# app\nPGHOST=127.0.0.1\n"),
            "the env file lost its other lines: {}",
            text.lines().count()
        );
        (
            env_file_value(&self.env_file("app-user.env"), "PGUSER"),
            env_file_value(&self.env_file("app.env"), "PGPASSWORD"),
        )
    }

    fn run_status(&self, id: &str, seen: &mut String) -> String {
        let r = self.ws.rekey_seen(&["status", id, "--json"], &[], seen);
        r.ok("status");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["status"].as_str().unwrap().to_owned()
    }
}

/// For N = 1, 2, …: a run in `mode` aborts at its N-th crash point, `rekey resume` finishes
/// it, and the server shows what consumers hold is the one live password of its role: every
/// earlier password of that role is refused; the partner role of an alternating pair keeps
/// its last password in a drill (no downtime) and cannot log in after an incident.
async fn crash_at_every_point(mode: &str, alternating: bool) {
    let w = World::start(alternating).await;
    let env = [(ADMIN_ENV, w.admin_url.as_str())];
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
    // Every (role, password) consumers ever held, oldest first.
    let mut held: Vec<(String, String)> = vec![("app".into(), OLD_APP_PASSWORD.into())];
    let mut secrets = vec![OLD_APP_PASSWORD.to_owned(), OLD_B_PASSWORD.to_owned()];
    let t = Instant::now();
    let mut n = 1;
    loop {
        let label = format!("postgres {mode}, alternating {alternating}, crash point {n}");
        let at = n.to_string();
        let reason = format!("CRASH-{n}");
        let r = ws.rekey_seen(
            &["run", "--yes", "--mode", mode, "--reason", &reason],
            &[env[0], ("REKEY_SIM_CRASH_AT", &at)],
            &mut seen,
        );
        let id = ws.run_ids(&[])[0].clone();
        if r.code == Some(0) {
            assert_eq!(n - 1, 3 * steps, "{steps} steps, {} crash points", n - 1);
        } else {
            assert_eq!(r.code, None, "{label}: not aborted\n{}", r.stderr);
            assert_eq!(w.run_status(&id, &mut seen), "running", "{label}");
            let resumed = ws.rekey_seen(&["resume", &id], &env, &mut seen);
            if resumed.code != Some(0) {
                let events = ws.audit_events(Some(&id), &mut seen);
                let details: Vec<String> = events
                    .iter()
                    .filter(|e| e["outcome"] == "error")
                    .map(|e| format!("{} {}: {}", e["event"], e["step"], e["detail"]))
                    .collect();
                panic!(
                    "resume after {label}: {}\n{}\n{}",
                    resumed.stderr,
                    summary(&events),
                    details.join("\n")
                );
            }
        }
        assert_eq!(w.run_status(&id, &mut seen), "succeeded", "{label}");

        let (role, password) = w.delivered();
        let (last_role, last_password) = held.last().cloned().unwrap();
        if let Err(e) = w.pg.login(&role, &password).await {
            panic!("{label}: what consumers hold ({role}) is refused: {e}");
        }
        for (r, p) in held.iter().filter(|(r, _)| *r == role) {
            assert_eq!(
                w.pg.login(r, p).await.err().as_deref(),
                Some("28P01"),
                "{label}: an earlier password of {r} still logs in"
            );
        }
        if alternating {
            assert_ne!(role, last_role, "{label}: the roles did not take turns");
            // The partner's newest password is the one consumers held before.
            let standby = last_password.clone();
            let other = w.pg.login(&last_role, &standby).await.err();
            if mode == "drill" {
                assert_eq!(
                    other, None,
                    "{label}: the standby {last_role} stopped working"
                );
            } else {
                assert!(
                    other.is_some(),
                    "{label}: the exposed {last_role} still logs in"
                );
            }
        } else {
            assert_eq!(role, "app");
        }
        ws.rekey_seen(&["audit", "verify"], &[], &mut seen)
            .ok(&format!("audit verify after {label}"));
        secrets.push(password.clone());
        held.push((role, password));
        if r.code == Some(0) {
            break;
        }
        n += 1;
    }
    eprintln!(
        "postgres {mode} alternating={alternating}: {} crash points in {:?}",
        n - 1,
        t.elapsed()
    );
    secrets.push(ADMIN_PASSWORD.to_owned());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    ws.assert_no_secrets(&seen, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_drill_crash_at_every_point() {
    crash_at_every_point("drill", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_incident_crash_at_every_point() {
    crash_at_every_point("incident", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alternating_drill_crash_at_every_point() {
    crash_at_every_point("drill", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alternating_incident_crash_at_every_point() {
    crash_at_every_point("incident", true).await;
}
