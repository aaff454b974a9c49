//! Time-to-safe (issue 18): an incident closes exposure first — every exposed key is disabled
//! before forensics and before any replacement is minted — and reports how long that took.

use std::collections::BTreeMap;
use std::time::Duration;

use rekey_testkit::FaultProxy;
use serde_json::Value;

use crate::real::{env_through, setup_aws_with};

fn at(e: &Value) -> jiff::Timestamp {
    e["at"].as_str().unwrap().parse().unwrap()
}

/// 50 exposed IAM keys on moto behind 20 ms of latency a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_disables_every_exposed_key_first_and_measures_it() {
    let users: Vec<(&'static str, &'static str)> = (0..50)
        .map(|i| {
            let id: &'static str = Box::leak(format!("aws-svc{i:02}").into_boxed_str());
            let user: &'static str = Box::leak(format!("svc{i:02}").into_boxed_str());
            (id, user)
        })
        .collect();
    let aws = setup_aws_with(&users).await;
    let proxy = FaultProxy::start(aws.moto.port(), 0.0, 1);
    proxy.set_latency(Duration::from_millis(20));
    let env_owned = env_through(&aws, proxy.url().trim_end_matches('/'));
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ws = &aws.ws;
    let mut seen = String::new();

    let r = ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "INC-TTS"],
        &env,
        &mut seen,
    );
    r.ok("run --mode incident");
    assert!(
        r.stderr.contains("time to safe: disabled after"),
        "{}",
        r.stderr
    );
    let run = ws.run_ids(&[]).remove(0);
    let events = ws.audit_events(Some(&run), &mut seen);

    // Each step's phase, from the stored plan's steps.
    let plan = ws.rekey(&["plan", "--mode", "incident", "--format", "json"], &env);
    plan.ok("plan");
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let phase: BTreeMap<String, String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["phase"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let started = |ph: &str| -> Vec<(i64, &str)> {
        events
            .iter()
            .filter(|e| e["event"] == "step_started")
            .filter(|e| {
                phase
                    .get(e["step"].as_str().unwrap())
                    .is_some_and(|p| p == ph)
            })
            .map(|e| {
                (
                    e["seq"].as_i64().unwrap(),
                    e["credential"].as_str().unwrap(),
                )
            })
            .collect()
    };
    let disables = started("revoke");
    let captures = started("prepare");
    let mints = started("mint");
    assert_eq!(disables.len(), 50);
    assert_eq!(captures.len(), 50);
    let first_disable = disables.iter().map(|d| d.0).min().unwrap();
    let last_disable = disables.iter().map(|d| d.0).max().unwrap();
    // Forensics never go before the first disable; every disable starts before any mint.
    for (seq, cred) in &captures {
        assert!(
            *seq > first_disable,
            "{cred}: captured before the first disable"
        );
    }
    for (seq, cred) in &mints {
        assert!(
            *seq > last_disable,
            "{cred}: minted before every exposed key was disabled"
        );
    }

    // The figures: in `status --json`, and what the audit timestamps say.
    let status = ws.rekey(&["status", &run, "--json"], &env);
    status.ok("status --json");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let tts = &status["time_to_safe"];
    let origin = events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .map(at)
        .min()
        .unwrap();
    let last_ok = |pick: &dyn Fn(&str) -> bool| -> f64 {
        let end = events
            .iter()
            .filter(|e| e["event"] == "step_succeeded")
            .filter(|e| pick(phase[e["step"].as_str().unwrap()].as_str()))
            .map(at)
            .max()
            .unwrap();
        (end - origin).total(jiff::Unit::Second).unwrap()
    };
    let expect = [
        ("disabled_after_s", last_ok(&|p| p == "revoke")),
        (
            "replaced_after_s",
            last_ok(&|p| matches!(p, "mint" | "deliver" | "verify")),
        ),
        ("cleaned_after_s", last_ok(&|_| true)),
    ];
    for (field, want) in expect {
        let got = tts[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field}: {tts}"));
        assert!(
            (got - want).abs() < 0.002,
            "{field}: status says {got}, the audit log {want}"
        );
    }
    assert!(
        expect[0].1 < expect[1].1 && expect[1].1 <= expect[2].1,
        "{expect:?}"
    );
    // And the run's own audit record of them.
    let recorded: Value = serde_json::from_str(
        events
            .iter()
            .find(|e| e["event"] == "time_to_safe")
            .expect("a time_to_safe event")["detail"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(&recorded, tts);
    aws.assert_rotated().await;
}
