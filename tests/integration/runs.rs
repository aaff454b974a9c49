//! The real binary, killed and resumed: crash safety, audit tampering, secrets in outputs.

use std::time::Duration;

use rekey_engine::{SimOptions, SimProvider};
use rekey_spec::Mode;
use rekey_store::{StepState, Store};

use crate::engine::{assert_converged, plan_for};
use crate::harness::Workspace;

const CREDS: &[&str] = &["aws-deploy-web", "gh-secrets-writer", "hf-ml-read"];

async fn ledger(ws: &Workspace) -> SimProvider {
    SimProvider::open(
        &ws.path().join(".rekey/sim-ledger.db"),
        SimOptions::default(),
    )
    .await
    .unwrap()
}

/// Resumes until the run finishes; asserts it succeeded and converged exactly once.
async fn finish_and_check(ws: &Workspace, context: &str) {
    let ids = ws.run_ids(&[]);
    assert_eq!(ids.len(), 1, "{context}: one run expected, found {ids:?}");
    let run_id = &ids[0];
    let status = ws.rekey(&["status", run_id, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    if v["status"] != "succeeded" {
        let r = ws.rekey(&["resume", run_id], &[]);
        assert_eq!(
            r.code,
            Some(0),
            "{context}: resume failed\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
    let store = keyed_store(ws, &ws.path().join(".rekey/state.db")).await;
    for s in store.steps(run_id).await.unwrap() {
        assert_eq!(
            s.state,
            StepState::Succeeded,
            "{context}: {} is {}",
            s.step_id,
            s.state
        );
    }
    assert!(
        store.verify_audit().await.unwrap().is_empty(),
        "{context}: audit chain broken"
    );
    // Redoing a mint whose secret a crash lost is recovery, not failure.
    for e in store.audit_events(Some(run_id)).await.unwrap() {
        if e.draft.event.starts_with("step_redo") || e.draft.event == "step_undone" {
            assert_eq!(e.draft.outcome, "ok", "{context}: {:?}", e.draft);
        }
    }
    store.close().await;
    let plan = plan_for(CREDS, Mode::Drill);
    assert_converged(&ledger(ws).await, &plan, run_id, true).await;
    let verify = ws.rekey(&["audit", "verify"], &[]);
    assert_eq!(verify.code, Some(0), "{context}: {}", verify.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_step_boundary_then_resume() {
    let creds = CREDS.join(",");
    let mut crashes = 0;
    for n in 1.. {
        let ws = Workspace::example();
        let at = n.to_string();
        let r = ws.rekey(
            &["run", "--simulate", "--yes", "--credential", &creds],
            &[("REKEY_SIM_CRASH_AT", &at)],
        );
        if r.code == Some(0) {
            // Past the last crash point: the run finished undisturbed.
            finish_and_check(&ws, "undisturbed").await;
            break;
        }
        assert_eq!(
            r.code, None,
            "crash point {n}: expected an abort, got {:?}\n{}",
            r.code, r.stderr
        );
        assert!(
            r.stderr
                .contains(&format!("simulated crash at crash point {n}")),
            "{}",
            r.stderr
        );
        crashes += 1;
        finish_and_check(&ws, &format!("crash point {n}")).await;
    }
    assert!(crashes > 60, "only {crashes} crash points were exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_instants_then_resume() {
    let creds = CREDS.join(",");
    // A fixed list of instants, spread over the run (deterministic, no RNG needed).
    for (round, delays) in [
        [35u64, 90, 160],
        [60, 20, 240],
        [120, 75, 10],
        [15, 300, 45],
    ]
    .iter()
    .enumerate()
    {
        let ws = Workspace::example();
        let mut child = ws
            .command(
                &[
                    "run",
                    "--simulate",
                    "--yes",
                    "--latency",
                    "8",
                    "--credential",
                    &creds,
                ],
                &[],
            )
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delays[0]));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for &d in &delays[1..] {
            let ids = ws.run_ids(&[]);
            let Some(id) = ids.first() else { break };
            let mut child = ws.command(&["resume", id], &[]).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(d));
            let _ = child.kill();
            let _ = child.wait();
        }
        if ws.run_ids(&[]).is_empty() {
            // Killed before the run was stored: nothing happened, nothing to resume.
            assert!(
                ledger(&ws)
                    .await
                    .summary("none")
                    .await
                    .unwrap()
                    .effects
                    .is_empty(),
                "round {round}"
            );
            continue;
        }
        finish_and_check(&ws, &format!("round {round}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_in_an_active_run_is_refused_until_abandoned() {
    let ws = Workspace::example();
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
        ],
        &[("REKEY_SIM_CRASH_AT", "3")],
    );
    assert_eq!(r.code, None);
    let first = ws.run_ids(&[])[0].clone();
    let r = ws.rekey(&["run", "--simulate", "--yes", "--service", "web"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "credential `aws-deploy-web` is already being rotated by run {first}"
        )),
        "{}",
        r.stderr
    );
    let r = ws.rekey(&["abandon", &first], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = ws.rekey(&["run", "--simulate", "--yes", "--service", "web"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = ws.rekey(&["resume", &first], &[]);
    assert_eq!(r.code, Some(2), "an abandoned run does not resume");
    assert!(r.stderr.contains("is abandoned"), "{}", r.stderr);
}

#[test]
fn run_exit_codes_and_refusals() {
    let ws = Workspace::example();
    // Not on a terminal and no --yes: refused, nothing stored.
    let r = ws.rekey(
        &["run", "--simulate", "--credential", "aws-deploy-web"],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("pass --yes"), "{}", r.stderr);
    assert!(!ws.path().join(".rekey/state.db").exists() || ws.run_ids(&[]).is_empty());
    // Every bundled kind has a connector (`command/run.rs::every_action_has_a_connector`).
    // A failure before the irreversible step rolls back: exit 1, status says so.
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
            "--sim-fail",
            "aws-deploy-web/create",
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("rolled back after aws-deploy-web/create failed"),
        "{}",
        r.stderr
    );
    let id = ws.run_ids(&[])[0].clone();
    let s = ws.rekey(&["status", &id], &[]);
    assert!(
        s.stdout.contains("failed") && s.stdout.contains("undone"),
        "{}",
        s.stdout
    );
    // A write-only consumer (a GitHub Actions secret) that may hold the new key is a point of
    // no return: a later failure stops for an operator instead of deleting the key it holds.
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
            "--sim-fail",
            "aws-deploy-web/verify",
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("needs_operator") && r.stderr.contains("point of no return"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("rolled back"), "{}", r.stderr);
    let id = r
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("run-"))
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let s = ws.rekey(&["status", &id], &[]);
    assert!(
        !s.stdout.contains("undone"),
        "nothing was undone: {}",
        s.stdout
    );
    // After the irreversible step: needs an operator (exit 1), resumable once fixed.
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "gh-secrets-writer",
            "--sim-fail",
            "gh-secrets-writer/promote[secretsmanager:platform/github/secrets-writer]",
            "--mode",
            "incident",
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("needs_operator"), "{}", r.stderr);
}

/// The store at `db`, its chain keyed with `ws`'s installation key.
async fn keyed_store(ws: &Workspace, db: &std::path::Path) -> Store {
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let key = rekey_engine::Fingerprinter::load(&ws.path().join(".rekey/fingerprint.key")).unwrap();
    store.set_chain_key(key.chain_key()).unwrap();
    store
}

async fn tamper(ws: &Workspace, sql: &[&str]) -> (Option<i32>, String) {
    let copy = tempfile::tempdir().unwrap();
    let db = copy.path().join("state.db");
    std::fs::copy(ws.path().join(".rekey/state.db"), &db).unwrap();
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    for s in sql {
        store.execute_raw((*s).to_owned()).await.unwrap();
    }
    store.close().await;
    let key = ws.path().join(".rekey/fingerprint.key");
    let r = ws.rekey(
        &["audit", "verify", "--database-url", db.to_str().unwrap()],
        &[("REKEY_FINGERPRINT_KEY_FILE", key.to_str().unwrap())],
    );
    (r.code, r.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_tampered_rows() {
    let ws = Workspace::example();
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
            "--reason",
            "INC-7",
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(ws.rekey(&["audit", "verify"], &[]).code, Some(0));

    let (code, err) = tamper(
        &ws,
        &["UPDATE audit_events SET outcome = 'ok', detail = 'nothing to see' WHERE seq = 5"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("row 5: its content does not match its hash (edited)"),
        "{err}"
    );

    let (code, err) = tamper(&ws, &["DELETE FROM audit_events WHERE seq = 6"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("row 6 is missing (deleted)")
            && err.contains("row 7: does not follow the row before it"),
        "{err}"
    );

    // Insert a forged row at 5 (later rows renumbered): the renumbered row no longer matches.
    let (code, err) = tamper(&ws, &[
        "UPDATE audit_events SET seq = -seq WHERE seq >= 5",
        "UPDATE audit_events SET seq = 1 - seq WHERE seq < 0",
        "INSERT INTO audit_events (seq, at, actor, event, outcome, simulated, prev_hash, hash) SELECT 5, at, actor, 'step_succeeded', 'ok', simulated, hash, hash FROM audit_events WHERE seq = 4",
    ]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("row 5: its content does not match its hash")
            && err.contains("row 6: its content does not match its hash"),
        "{err}"
    );

    // Swap two rows.
    let (code, err) = tamper(
        &ws,
        &[
            "UPDATE audit_events SET seq = -1 WHERE seq = 8",
            "UPDATE audit_events SET seq = 8 WHERE seq = 9",
            "UPDATE audit_events SET seq = 9 WHERE seq = -1",
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("row 8:") && err.contains("row 9:"), "{err}");
    assert!(err.contains("reordered"), "{err}");

    // Export: JSON lines with the reason and fingerprints of new secrets.
    let r = ws.rekey(&["audit", "export", "--format", "jsonl"], &[]);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["reason"] == "INC-7" && l["simulated"] == true)
    );
    let minted = lines
        .iter()
        .find(|l| l["event"] == "step_succeeded" && l["step"] == "aws-deploy-web/create")
        .unwrap();
    assert!(
        minted["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("secret_access_key=hmac-sha256:"),
        "{minted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_reaches_any_output_or_store() {
    let ws = Workspace::example();
    let env = [("REKEY_LOG", "trace")];
    let mut seen = String::new();
    // A full run, a crash and a resume (which recovers or re-mints secrets), a failure with rollback.
    for args in [
        vec![
            "run",
            "--simulate",
            "--yes",
            "--mode",
            "incident",
            "--credential",
            "gh-secrets-writer,hf-ml-read,pg-admin",
        ],
        vec![
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
            "--sim-fail",
            "aws-deploy-web/verify",
        ],
    ] {
        let r = ws.rekey(&args, &env);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-ml-bedrock",
        ],
        &[("REKEY_SIM_CRASH_AT", "20"), ("REKEY_LOG", "trace")],
    );
    assert_eq!(r.code, None);
    seen.push_str(&r.stderr);
    let id = ws.run_ids(&[])[0].clone();
    for args in [
        vec!["resume", id.as_str()],
        vec!["status", id.as_str(), "--json"],
        vec!["audit", "export"],
        vec!["audit", "show"],
    ] {
        let r = ws.rekey(&args, &env);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    let mut files = Vec::new();
    for name in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(ws.path().join(".rekey").join(name)) {
            files.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    let sim = ledger(&ws).await;
    let ids = sim.all_value_ids().await.unwrap();
    assert!(ids.len() >= 10, "the runs handled secrets: {ids:?}");
    for id in ids {
        let secret = sim.secret_for_test(id);
        assert!(!seen.contains(&secret), "secret of value {id} printed");
        for f in &files {
            assert!(
                !f.contains(&secret),
                "secret of value {id} in the state database"
            );
        }
    }
    assert!(
        seen.contains("hmac-sha256:"),
        "fingerprints are the evidence instead"
    );
}

#[test]
fn redacting_types_hide_values() {
    let v = rekey_engine::Value::secret("hunter2-very-secret");
    assert_eq!(format!("{v:?}"), "[REDACTED]");
    assert_eq!(format!("{v:#?}"), "[REDACTED]");
    let values: rekey_engine::Values = [("token".to_owned(), v)].into();
    assert!(!format!("{values:?}").contains("hunter2"));
    let f = rekey_engine::Fingerprinter::ephemeral();
    assert!(format!("{f:?}").contains("[REDACTED]"));
    // The store holds the chain key: its Debug shows none of it.
    let bytes = [0xabu8; 32];
    let key = rekey_store::ChainKey::new(bytes);
    assert_eq!(format!("{key:?}"), "ChainKey([REDACTED])");
    let dir = tempfile::tempdir().unwrap();
    let store = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let s = Store::open(dir.path().join("s.db").to_str().unwrap())
            .await
            .unwrap();
        s.set_chain_key(key).unwrap();
        s
    });
    let shown = format!("{store:?} {store:#?}");
    assert!(shown.contains("ChainKey([REDACTED])"), "{shown}");
    assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    assert_eq!(
        rekey_store::redact_url("postgres://admin:s3cret@db/x"),
        "postgres://admin:***@db/x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_during_resume_are_resumed_too() {
    let creds = CREDS.join(",");
    // Crash the run, then crash each resume early (recovering secrets, redoing mints), then
    // let the last resume finish.
    for n in (5..90).step_by(12) {
        let ws = Workspace::example();
        let at = n.to_string();
        let r = ws.rekey(
            &["run", "--simulate", "--yes", "--credential", &creds],
            &[("REKEY_SIM_CRASH_AT", &at)],
        );
        if r.code == Some(0) {
            continue;
        }
        let id = ws.run_ids(&[])[0].clone();
        for k in 1..=4 {
            let k = k.to_string();
            let r = ws.rekey(&["resume", &id], &[("REKEY_SIM_CRASH_AT", &k)]);
            assert!(
                r.code.is_none() || r.code == Some(0),
                "crash {n}, resume crash {k}: {:?}\n{}",
                r.code,
                r.stderr
            );
            // A resume that finished leaves nothing to resume.
            if r.code == Some(0) {
                break;
            }
        }
        finish_and_check(&ws, &format!("crash point {n}, then crashed resumes")).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 9, item 12: someone who can write the database but not read the installation key.

/// The row content the old, unkeyed chain hashed (the field order of `audit.rs`'s
/// `Canonical`): what a writer who knows the code can recompute.
#[derive(serde::Serialize)]
struct PlainRow<'a> {
    seq: i64,
    at: &'a str,
    run_id: Option<&'a str>,
    actor: &'a str,
    reason: Option<&'a str>,
    credential: Option<&'a str>,
    step: Option<&'a str>,
    action: Option<&'a str>,
    event: &'a str,
    outcome: &'a str,
    detail: Option<&'a str>,
    fingerprint: Option<&'a str>,
    simulated: bool,
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Edits row `seq`'s detail, then recomputes `sha256(prev ‖ row)` for it and every row after
/// it, as the chain was computed before it was keyed. `downgrade` also relabels the rows as
/// the old chain, if the store has such a label.
pub(crate) async fn rewrite_chain_plainly(url: &str, seq: i64, detail: &str, downgrade: bool) {
    use sha2::Digest as _;
    let store = Store::open(url).await.unwrap();
    let mut events = store.audit_events(None).await.unwrap();
    let mut prev = rekey_store::audit::GENESIS.to_owned();
    let mut sql = Vec::new();
    for e in &mut events {
        if e.seq == seq {
            e.draft.detail = Some(detail.to_owned());
        }
        if e.seq >= seq {
            let d = &e.draft;
            let row = PlainRow {
                seq: e.seq,
                at: &e.at,
                run_id: d.run_id.as_deref(),
                actor: &d.actor,
                reason: d.reason.as_deref(),
                credential: d.credential.as_deref(),
                step: d.step.as_deref(),
                action: d.action.as_deref(),
                event: &d.event,
                outcome: &d.outcome,
                detail: d.detail.as_deref(),
                fingerprint: d.fingerprint.as_deref(),
                simulated: d.simulated,
            };
            let mut h = sha2::Sha256::new();
            h.update(prev.as_bytes());
            h.update(serde_json::to_vec(&row).unwrap());
            let hash = hex::encode(h.finalize());
            sql.push(format!(
                "UPDATE audit_events SET detail = {}, prev_hash = {}, hash = {} WHERE seq = {}",
                d.detail
                    .as_deref()
                    .map_or_else(|| "NULL".to_owned(), sql_str),
                sql_str(&prev),
                sql_str(&hash),
                e.seq
            ));
            prev = hash;
        } else {
            prev.clone_from(&e.hash);
        }
    }
    if downgrade {
        // Ignored by a store whose rows carry no chain version.
        let _ = store
            .execute_raw("UPDATE audit_events SET chain = 1".into())
            .await;
    }
    for s in sql {
        store.execute_raw(s).await.unwrap();
    }
    store.close().await;
}

fn simulated_run(ws: &Workspace, creds: &str, env: &[(&str, &str)]) -> crate::harness::Ran {
    ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            creds,
            "--reason",
            "INC-12",
        ],
        env,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_who_recomputes_the_chain_is_caught() {
    let ws = Workspace::example();
    simulated_run(&ws, "aws-deploy-web", &[]).ok("run");
    let db = ws.path().join(".rekey/state.db");
    for downgrade in [false, true] {
        let copy = tempfile::tempdir().unwrap();
        let tampered = copy.path().join("state.db");
        std::fs::copy(&db, &tampered).unwrap();
        rewrite_chain_plainly(tampered.to_str().unwrap(), 3, "nothing to see", downgrade).await;
        let r = ws.rekey(
            &[
                "audit",
                "verify",
                "--database-url",
                tampered.to_str().unwrap(),
            ],
            &[("REKEY_FINGERPRINT_KEY_FILE", ".rekey/fingerprint.key")],
        );
        assert_eq!(
            r.code,
            Some(1),
            "downgrade {downgrade}: a recomputed chain must not verify\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

/// A run stopped by a crash after its mint, before any delivery.
fn crashed_before_delivery(ws: &Workspace) -> String {
    let r = simulated_run(ws, "aws-deploy-web", &[("REKEY_SIM_CRASH_AT", "12")]);
    assert_eq!(r.code, None, "crashed: {}", r.stderr);
    ws.run_ids(&[])[0].clone()
}

async fn snapshot(
    ws: &Workspace,
    run_id: &str,
) -> (
    Vec<(String, StepState)>,
    usize,
    rekey_engine::sim::LedgerSummary,
    Vec<i64>,
) {
    let store = Store::open(ws.path().join(".rekey/state.db").to_str().unwrap())
        .await
        .unwrap();
    let steps = store
        .steps(run_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.step_id, s.state))
        .collect();
    let n = store.audit_events(None).await.unwrap().len();
    store.close().await;
    let ledger = ledger(ws).await;
    (
        steps,
        n,
        ledger.summary(run_id).await.unwrap(),
        ledger.all_value_ids().await.unwrap(),
    )
}

async fn raw(ws: &Workspace, sql: &str) {
    let store = Store::open(ws.path().join(".rekey/state.db").to_str().unwrap())
        .await
        .unwrap();
    assert!(
        store.execute_raw(sql.to_owned()).await.unwrap() > 0,
        "{sql}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_a_plan_changed_in_the_database() {
    let ws = Workspace::example();
    let id = crashed_before_delivery(&ws);
    // Point the Secrets Manager delivery at another secret.
    raw(
        &ws,
        "UPDATE runs SET plan_json = replace(replace(plan_json, '\"consumer_label\":\"secretsmanager:prod/web/aws-deploy\"', '\"consumer_label\":\"secretsmanager:attacker/loot\"'), '\"secret_id\":\"prod/web/aws-deploy\"', '\"secret_id\":\"attacker/loot\"')",
    )
    .await;
    let before = snapshot(&ws, &id).await;
    let r = ws.rekey(&["resume", &id], &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&id) && r.stderr.contains("stored plan changed"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&ws, &id).await, before, "nothing may change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_stored_options_or_outputs_changed_in_the_database() {
    for sql in [
        // The simulator's ledger somewhere else (a real run's options would matter more).
        "UPDATE runs SET options_json = replace(options_json, '\"concurrency\":16', '\"concurrency\":15')",
        // The new key id the revoke steps keep: another one, so the new key would go.
        "UPDATE steps SET outputs_json = '{\"access_key_id\":\"AKIAOTHER\"}' WHERE idx = 2",
        // A row of the run deleted (an older success could then pass for the last one).
        "DELETE FROM audit_events WHERE seq = 3",
    ] {
        let ws = Workspace::example();
        let id = crashed_before_delivery(&ws);
        raw(&ws, sql).await;
        let before = snapshot(&ws, &id).await;
        let r = ws.rekey(&["resume", &id], &[]);
        assert_eq!(r.code, Some(2), "{sql}\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(&id), "{}", r.stderr);
        assert_eq!(
            snapshot(&ws, &id).await,
            before,
            "{sql}: nothing may change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_checks_against_an_exported_head() {
    let ws = Workspace::example();
    simulated_run(&ws, "aws-deploy-web", &[]).ok("run");
    let export = ws.rekey(&["audit", "export"], &[]);
    export.ok("export");
    let last: serde_json::Value =
        serde_json::from_str(export.stdout.lines().last().unwrap()).unwrap();
    let head = last["hash"].as_str().unwrap().to_owned();
    let total = export.stdout.lines().count();
    let r = ws.rekey(&["audit", "verify", "--head", &head], &[]);
    r.ok("verify at the head");
    assert!(r.stdout.contains("0 row(s) after the head"), "{}", r.stdout);
    // More rows later: they follow the head.
    simulated_run(&ws, "hf-ml-read", &[]).ok("second run");
    let r = ws.rekey(&["audit", "verify", "--head", &head], &[]);
    r.ok("verify with rows after the head");
    let now = ws.rekey(&["audit", "export"], &[]).stdout.lines().count();
    assert!(
        r.stdout
            .contains(&format!("{} row(s) after the head", now - total)),
        "{}",
        r.stdout
    );
    // The tail cut back to before the head: the head is gone.
    raw(
        &ws,
        &format!("DELETE FROM audit_events WHERE seq >= {total}"),
    )
    .await;
    let r = ws.rekey(&["audit", "verify", "--head", &head], &[]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&head), "{}", r.stderr);
    // Without --head, a truncated tail still verifies: that is what the head is for.
    ws.rekey(&["audit", "verify"], &[])
        .ok("verify without a head");
    let r = ws.rekey(&["audit", "verify", "--head", "nothex"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let ws = Workspace::example();
    simulated_run(&ws, "hf-ml-read", &[]).ok("run");
    let key = ws.path().join(".rekey/fingerprint.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = ws.rekey(&["audit", "verify"], &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    let r = simulated_run(&ws, "aws-deploy-web", &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    assert!(!r.stderr.contains("error: error"), "{}", r.stderr);
    assert_eq!(ws.run_ids(&[]).len(), 1, "no run was started");
}

#[test]
fn processes_creating_the_key_at_once_agree_on_it() {
    let key = ("REKEY_FINGERPRINT_KEY_FILE", "keys/fingerprint.key");
    for _ in 0..5 {
        let ws = Workspace::example();
        let dbs = ["a/state.db", "b/state.db", "c/state.db"];
        // One database each, so that only the key is shared (made here first: `status` does
        // not need the key).
        for db in dbs {
            ws.rekey(&["status", "--database-url", db], &[])
                .ok("status");
        }
        assert!(!ws.path().join("keys").exists());
        let children: Vec<_> = dbs
            .iter()
            .map(|db| {
                ws.command(
                    &[
                        "run",
                        "--simulate",
                        "--yes",
                        "--credential",
                        "aws-deploy-web",
                        "--database-url",
                        db,
                    ],
                    &[key],
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // One key: every database verifies with it, and every fingerprint has its id.
        let mut ids: Vec<String> = Vec::new();
        for db in dbs {
            ws.rekey(&["audit", "verify", "--database-url", db], &[key])
                .ok("verify");
            let export = ws.rekey(&["audit", "export", "--database-url", db], &[]);
            ids.extend(
                export
                    .stdout
                    .lines()
                    .filter_map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        v["fingerprint"].as_str().map(str::to_owned)
                    })
                    .flat_map(|f| {
                        f.split(',')
                            .map(|kv| kv.split(':').nth(1).unwrap_or_default().to_owned())
                            .collect::<Vec<_>>()
                    }),
            );
        }
        assert_eq!(ids.len(), 3, "{ids:?}");
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(
            std::fs::read_dir(ws.path().join("keys")).unwrap().count(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_swapped_with_its_recorded_hash_is_refused_too() {
    use sha2::Digest as _;
    let ws = Workspace::example();
    let id = crashed_before_delivery(&ws);
    raw(
        &ws,
        "UPDATE runs SET plan_json = replace(plan_json, '\"consumer_label\":\"secretsmanager:prod/web/aws-deploy\"', '\"consumer_label\":\"secretsmanager:attacker/loot\"')",
    )
    .await;
    // The writer also puts the new plan's hash into the run's creation row.
    let store = Store::open(ws.path().join(".rekey/state.db").to_str().unwrap())
        .await
        .unwrap();
    let plan = store.run(&id).await.unwrap().plan_json;
    let created = store.audit_events(Some(&id)).await.unwrap()[0].clone();
    let detail = created.draft.detail.unwrap();
    let (head, rest) = detail.split_once("plan sha256 ").unwrap();
    let forged = format!(
        "{head}plan sha256 {}{}",
        hex::encode(sha2::Sha256::digest(plan.as_bytes())),
        &rest[64..]
    );
    store
        .execute_raw(format!(
            "UPDATE audit_events SET detail = {} WHERE seq = {}",
            sql_str(&forged),
            created.seq
        ))
        .await
        .unwrap();
    store.close().await;
    let before = snapshot(&ws, &id).await;
    let r = ws.rekey(&["resume", &id], &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("does not match its keyed hash"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&ws, &id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unkeyed_log_from_an_earlier_rekey_is_reported_then_sealed() {
    let ws = Workspace::example();
    // An earlier rekey's log: rows on the plain chain (a store given no key writes those),
    // and an installation key already there, as that rekey created it on its first run.
    let store = Store::open(ws.path().join(".rekey/state.db").to_str().unwrap())
        .await
        .unwrap();
    for event in ["run_created", "run_finished"] {
        store
            .append_audit(rekey_store::AuditDraft {
                actor: "old".into(),
                event: event.into(),
                outcome: "ok".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    store.close().await;
    rekey_engine::Fingerprinter::load_or_create(&ws.path().join(".rekey/fingerprint.key")).unwrap();
    let r = ws.rekey(&["audit", "verify"], &[]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("rows 1..2: on the unkeyed chain"),
        "{}",
        r.stderr
    );
    // Pinned by a head exported earlier, they verify.
    let export = ws.rekey(&["audit", "export"], &[]);
    let last: serde_json::Value =
        serde_json::from_str(export.stdout.lines().last().unwrap()).unwrap();
    ws.rekey(
        &["audit", "verify", "--head", last["hash"].as_str().unwrap()],
        &[],
    )
    .ok("verify at the old head");
    // The next run's keyed rows seal them.
    simulated_run(&ws, "hf-ml-read", &[]).ok("run");
    let r = ws.rekey(&["audit", "verify"], &[]);
    r.ok("verify after a run");
    assert!(
        r.stdout
            .contains("the first 2 row(s), written before the chain was keyed, are sealed"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_created_on_the_unkeyed_chain_is_not_resumed() {
    let ws = Workspace::example();
    let id = crashed_before_delivery(&ws);
    // As an earlier rekey left it (or a writer made it look so): every row plain.
    let db = ws.path().join(".rekey/state.db");
    rewrite_chain_plainly(db.to_str().unwrap(), 1, "mode drill", true).await;
    let before = snapshot(&ws, &id).await;
    let r = ws.rekey(&["resume", &id], &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("its stored plan cannot be checked")
            && r.stderr.contains(&format!("rekey abandon {id}")),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&ws, &id).await, before);
    ws.rekey(&["abandon", &id], &[]).ok("abandon");
}

#[test]
fn audit_verify_needs_the_key_that_wrote_the_log() {
    let ws = Workspace::example();
    simulated_run(&ws, "hf-ml-read", &[]).ok("run");
    // Another installation's key: named as such, not as every row edited.
    rekey_engine::Fingerprinter::load_or_create(&ws.path().join("other.key")).unwrap();
    let r = ws.rekey(
        &["audit", "verify"],
        &[("REKEY_FINGERPRINT_KEY_FILE", "other.key")],
    );
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not the key that wrote this log"),
        "{}",
        r.stderr
    );
    // No key at all: refused, and none is created for the check.
    let r = ws.rekey(
        &["audit", "verify"],
        &[("REKEY_FINGERPRINT_KEY_FILE", "missing.key")],
    );
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("missing.key"), "{}", r.stderr);
    assert!(!ws.path().join("missing.key").exists());
}

#[test]
fn a_new_key_does_not_continue_a_log_another_key_wrote() {
    let ws = Workspace::example();
    simulated_run(&ws, "hf-ml-read", &[]).ok("run");
    // The key lost (or the variable pointing elsewhere): a new one is made, and refused.
    std::fs::remove_file(ws.path().join(".rekey/fingerprint.key")).unwrap();
    let before = ws.rekey(&["audit", "export"], &[]).stdout;
    let r = simulated_run(&ws, "aws-deploy-web", &[]);
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not written with this installation key"),
        "{}",
        r.stderr
    );
    assert_eq!(ws.rekey(&["audit", "export"], &[]).stdout, before);
    assert_eq!(ws.run_ids(&[]).len(), 1, "no run was started");
}

/// Two `resume`s of one crashed run at once: exactly one drives it, the other is refused
/// (exit 2) naming the holder; `abandon` is refused while the run is driven, and `--force`
/// takes it, after which the first process cannot overwrite `abandoned` with its verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_drives_a_run_at_a_time() {
    let ws = Workspace::example();
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--latency",
            "400",
            "--credential",
            "aws-deploy-web",
        ],
        &[("REKEY_SIM_CRASH_AT", "4")],
    );
    assert_eq!(r.code, None, "crashed: {}", r.stderr);
    let id = ws.run_ids(&[])[0].clone();

    let spawn = |args: &[&str]| {
        ws.command(args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&["resume", &id]), spawn(&["resume", &id]));
    let outs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(2)),
        "one proceeds, one is refused: {codes:?}\n{}",
        outs.iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let refused = &outs[codes.iter().position(|c| *c == Some(2)).unwrap()];
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("being driven by another process: pid "),
        "{stderr}"
    );
    let s = ws.rekey(&["status", &id, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["status"], "succeeded", "{}", s.stdout);
    let plan = plan_for(&["aws-deploy-web"], Mode::Drill);
    assert_converged(&ledger(&ws).await, &plan, &id, true).await;
    assert_eq!(ws.rekey(&["audit", "verify"], &[]).code, Some(0));

    // A live run: abandon is refused, then forced; the live process records no verdict.
    let ws = Workspace::example();
    let live = ws
        .command(
            &[
                "run",
                "--simulate",
                "--yes",
                "--latency",
                "400",
                "--credential",
                "aws-deploy-web",
            ],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = 0;
    let id = loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(id) = ws.run_ids(&[]).first() {
            break id.clone();
        }
        waited += 1;
        assert!(waited < 300, "the run never stored itself");
    };
    let r = ws.rekey(&["abandon", &id], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("being driven by another process"),
        "{}",
        r.stderr
    );
    let r = ws.rekey(&["abandon", &id, "--force"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = live.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("this process no longer holds run"),
        "{stderr}"
    );
    let s = ws.rekey(&["status", &id, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["status"], "abandoned", "{}", s.stdout);
}

/// A run holds new secrets in memory: the running process may write no core dump (its
/// `RLIMIT_CORE` is 0).
#[test]
fn a_running_process_writes_no_core_dump() {
    let ws = Workspace::example();
    let mut child = ws
        .command(
            &[
                "run",
                "--simulate",
                "--yes",
                "--latency",
                "300",
                "--credential",
                "aws-deploy-web",
            ],
            &[],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"],
        "{core}"
    );
    assert!(child.wait().unwrap().success());
}

/// A confirmation is answered with `done` and nothing else (`resume --input`); a value step
/// takes the value.
#[test]
fn a_confirmation_takes_done_and_nothing_else() {
    let ws = Workspace::empty();
    let env_file = ws.path().join("etc/app.env");
    std::fs::create_dir_all(ws.path().join("etc")).unwrap();
    std::fs::write(&env_file, "").unwrap();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::create_dir_all(ws.path().join("runbooks")).unwrap();
    std::fs::write(
        ws.path().join("inventory/acme.yaml"),
        format!(
            "credentials:\n  - id: pg-app\n    kind: postgres_password\n    owner: team-web\n    role: app\n    admin_url_env: PG_ADMIN_URL\n    delivered_to:\n      - env_file: {{ path: {}, key: PGPASSWORD, field: password }}\n",
            env_file.display()
        ),
    )
    .unwrap();
    std::fs::write(
        ws.path().join("runbooks/postgres_password.yaml"),
        r#"kind: postgres_password
steps:
  - id: create
    phase: mint
    action: manual.provide_secret
    manual: { instructions: "set a new password for role {{ credential.role }} and paste it" }
  - id: deliver
    phase: deliver
    action: consumer.deliver
    for_each: consumer
    with: { password: "{{ steps.create.outputs.value }}" }
  - id: restarted
    phase: verify
    action: manual.confirm
    manual: { instructions: "restart the app so that it reads the new password" }
"#,
    )
    .unwrap();
    let r = ws.rekey(&["run", "--yes"], &[]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    let id = ws.run_ids(&[])[0].clone();
    let answer = ws.path().join("answer.txt");
    let resume = |text: &str, step: &str| {
        std::fs::write(&answer, text).unwrap();
        ws.rekey(
            &[
                "resume",
                &id,
                "--input",
                &format!("pg-app/{step}={}", answer.display()),
            ],
            &[],
        )
    };
    let r = resume("Hand-Set-Pa55word\n", "create");
    assert_eq!(r.code, Some(3), "paused at the confirmation: {}", r.stderr);
    let r = resume("yes\n", "restarted");
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("must say `done`"), "{}", r.stderr);
    let r = resume("done\n", "restarted");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

/// The first commands on a new state file, at once: each finds its tables (one migrates at a
/// time).
#[test]
fn commands_at_once_on_a_new_state_file_all_work() {
    let ws = Workspace::example();
    let children: Vec<_> = (0..4)
        .map(|_| {
            ws.command(&["status", "--json"], &[])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
