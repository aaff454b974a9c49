//! The Hugging Face provider against the in-process Hub fake (`rekey_testkit::HuggingfaceFake`):
//! `huggingface.whoami` (account, organisation, role), `huggingface.credentials.revoke`
//! (unauthenticated, confirmed by 401, batched: 500 tokens in one request), the Hub's 429
//! without `retry-after`, 20 % injected faults, and per action the conformance classes (crash
//! before the call, lost answer, repeated call, undo, wrong value, no secret in any error,
//! `Debug` or `tracing` event).

use std::fmt::Write as _;
use std::time::Duration;

use rekey_engine::{Call, ErrorKind, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::{Plan, PlannedStep};
use rekey_providers::http::BudgetSpec;
use rekey_providers::huggingface::{HuggingfaceConfig, HuggingfaceProvider};
use rekey_spec::Mode;
use rekey_testkit::HuggingfaceFake;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::conformance::LogCapture;
use crate::harness;

const RUN: &str = "run-huggingface";
const OLD: &str = "hf_OldGatewayTokenForTests00000000000";
const NEW: &str = "hf_NewGatewayTokenForTests00000000000";

const INVENTORY: &str = r"
credentials:
  - id: hf-write
    kind: huggingface_token
    owner: team-ml
    hf_user: acme-ml
    token_name: gateway
    role: write
    delivered_to:
      - env_file: { path: /tmp/rekey-hf-test-never-written.env, key: HF_TOKEN }
  - id: hf-read
    kind: huggingface_token
    owner: team-ml
    hf_user: alice
    role: read
    delivered_to:
      - env_file: { path: /tmp/rekey-hf-test-never-written.env, key: HF_READ }
  - id: hf-fine
    kind: huggingface_token
    owner: team-ml
    hf_user: acme-ml
    role: fineGrained
    delivered_to:
      - env_file: { path: /tmp/rekey-hf-test-never-written.env, key: HF_FINE }
  - id: hf-any
    kind: huggingface_token
    owner: team-ml
    hf_user: alice
    delivered_to:
      - env_file: { path: /tmp/rekey-hf-test-never-written.env, key: HF_ANY }
";

fn config(fake: &HuggingfaceFake) -> HuggingfaceConfig {
    let mut c = HuggingfaceConfig::new(&fake.endpoint());
    c.timeout = Duration::from_secs(5);
    c.propagation_wait = Duration::from_secs(5);
    c.budget = BudgetSpec {
        per_hour: 1_000_000,
        hourly_burst: 1_000_000,
        concurrent: 64,
        writes_per_minute: 1_000_000,
        write_burst: 1_000_000,
    };
    c
}

fn provider(fake: &HuggingfaceFake) -> HuggingfaceProvider {
    HuggingfaceProvider::new(config(fake)).unwrap()
}

fn plan(mode: Mode) -> Plan {
    harness::compile(INVENTORY, mode, None)
}

fn step<'p>(plan: &'p Plan, action: &str, cred: &str) -> &'p PlannedStep {
    plan.steps
        .iter()
        .find(|s| s.action == action && s.id.starts_with(&format!("{cred}/")))
        .unwrap_or_else(|| panic!("no {action} step for {cred}"))
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

/// The verify step's inputs as the plan fills them, with `token`.
fn whoami_inputs(plan: &Plan, s: &PlannedStep, token: &str) -> Values {
    let mut i = harness::literal_inputs(plan, &s.id, &[]);
    i.insert("token".into(), Value::secret(token));
    i
}

fn secret(v: &str) -> Values {
    [("token".to_owned(), Value::secret(v))].into()
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
                tokio::time::sleep(Duration::from_millis(20)).await;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap())
}

// ---------------------------------------------------------------------------------------------
// whoami

#[tokio::test]
async fn whoami_checks_the_account_its_organisations_and_the_role() {
    let fake = HuggingfaceFake::start().await;
    fake.add_user("alice", &["acme-ml"]);
    fake.add_user("mallory", &["evil-corp"]);
    let write = "hf_AliceWriteToken000000000000000000000";
    let read = "hf_AliceReadToken0000000000000000000000";
    let fine = "hf_AliceFineToken0000000000000000000000";
    let other = "hf_MalloryWriteToken0000000000000000000";
    fake.add_token(write, "alice", "write");
    fake.add_token(read, "alice", "read");
    fake.add_token(fine, "alice", "fineGrained");
    fake.add_token(other, "mallory", "write");
    let p = provider(&fake);
    let plan = plan(Mode::Drill);
    let check = async |cred: &str, token: &str| {
        let st = step(&plan, "huggingface.whoami", cred);
        let inputs = whoami_inputs(&plan, st, token);
        let c = call(&plan, st, &inputs, "k");
        let r = p.execute(&c).await;
        (r, c.reports.take())
    };
    // The plan passes the inventory's account and role.
    let s = step(&plan, "huggingface.whoami", "hf-write");
    assert_eq!(
        s.inputs["expected_role"].as_literal().as_deref(),
        Some("write")
    );
    assert_eq!(
        s.inputs["expected_user"].as_literal().as_deref(),
        Some("acme-ml")
    );
    assert!(
        !step(&plan, "huggingface.whoami", "hf-any")
            .inputs
            .contains_key("expected_role"),
        "no role recorded: no role check"
    );

    // hf_user an organisation the account belongs to, role write: a write token.
    let (ok, reports) = check("hf-write", write).await;
    let ok = ok.unwrap();
    assert_eq!(ok["name"].expose(), "alice");
    assert_eq!(ok["role"].expose(), "write");
    assert!(reports.is_empty(), "{reports:?}");
    // A weaker token is refused, and so is a fine-grained one for a write role.
    for weaker in [read, fine] {
        let e = check("hf-write", weaker).await.0.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.contains("inventory records write"), "{e}");
    }
    // Another account, not a member of acme-ml.
    let e = check("hf-write", other).await.0.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("mallory"), "{e}");
    // fineGrained needs a fine-grained token.
    check("hf-fine", fine).await.0.unwrap();
    let e = check("hf-fine", write).await.0.unwrap_err();
    assert!(e.message.contains("role write"), "{e}");
    // read accepts any token; a stronger one is reported.
    check("hf-read", read).await.0.unwrap();
    let (ok, reports) = check("hf-read", write).await;
    ok.unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].detail.contains("more than"), "{reports:?}");
    // hf_user the account itself, no role recorded.
    check("hf-any", fine).await.0.unwrap();
    // A token the Hub does not know: 401, named without its value.
    let unknown = "hf_UnknownTokenValue00000000000000000000";
    let e = check("hf-any", unknown).await.0.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("401"), "{e}");
    for t in [write, read, fine, other, unknown] {
        assert!(!format!("{e} {e:?}").contains(t));
    }
}

/// The Hub's 429 carries `RateLimit: "api";r=0;t=N` rather than `retry-after`: the wait comes
/// from `t`; its `{"error": …}` body is the message.
#[tokio::test]
async fn the_hubs_rate_limit_header_gives_the_wait() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("ratelimit", "\"api\";r=0;t=42")
                .set_body_json(serde_json::json!({ "error": "You have exceeded our hourly quotas for action: api" })),
        )
        .mount(&server)
        .await;
    let mut cfg = HuggingfaceConfig::new(&server.uri());
    cfg.timeout = Duration::from_secs(5);
    let p = HuggingfaceProvider::new(cfg).unwrap();
    let plan = plan(Mode::Drill);
    let s = step(&plan, "huggingface.whoami", "hf-any");
    let i = whoami_inputs(&plan, s, NEW);
    let e = p.execute(&call(&plan, s, &i, "k")).await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::RateLimited(Some(Duration::from_secs(42))),
        "{e}"
    );
    assert!(e.message.contains("hourly quotas"), "{e}");
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let p = HuggingfaceProvider::new(HuggingfaceConfig::new(&server.uri())).unwrap();
    let e = p.execute(&call(&plan, s, &i, "k")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
}

// ---------------------------------------------------------------------------------------------
// Revoke

#[tokio::test]
async fn revoke_is_unauthenticated_and_confirmed_by_401() {
    let fake = HuggingfaceFake::start().await;
    fake.add_token(OLD, "alice", "write");
    fake.add_token(NEW, "alice", "write");
    let p = provider(&fake);
    let plan = plan(Mode::Incident);
    let s = step(&plan, "huggingface.credentials.revoke", "hf-write");
    assert_eq!(p.batch_limit(s), Some(1000));
    assert!(s.irreversible, "the plan marks the revoke irreversible");
    let inputs = secret(OLD);
    let key = rekey_engine::run::idempotency_key(RUN, &s.id);
    // Crash before the call: not done, nothing sent.
    assert!(matches!(
        p.reconcile(&call(&plan, s, &inputs, &key)).await.unwrap(),
        Reconciled::NotDone
    ));
    assert!(fake.revoke_calls().is_empty());
    p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
    assert!(!fake.is_live(OLD), "the Hub refuses the old token");
    assert!(
        fake.is_live(NEW),
        "the other token of the account still works"
    );
    assert_eq!(fake.revoke_calls(), vec![1]);
    assert_eq!(
        fake.authenticated_revokes(),
        0,
        "the revoke is unauthenticated"
    );
    // Lost answer: done. Repeated call: no second request.
    assert!(matches!(
        p.reconcile(&call(&plan, s, &inputs, &key)).await.unwrap(),
        Reconciled::Done(_)
    ));
    p.execute(&call(&plan, s, &inputs, &key)).await.unwrap();
    assert_eq!(fake.revoke_calls(), vec![1]);
    // Undo has nothing to do and changes nothing.
    p.undo(&call(&plan, s, &inputs, &key), &Values::new())
        .await
        .unwrap();
    assert!(!fake.is_live(OLD));
}

/// The Hub answers 202 for any token: the revoke is confirmed only by `whoami-v2` answering 401
/// (waited for while it propagates), and a token that keeps working is not reported revoked.
#[tokio::test]
async fn the_202_is_not_taken_as_proof() {
    let fake = HuggingfaceFake::start().await;
    fake.add_token(OLD, "alice", "write");
    let plan = plan(Mode::Incident);
    let s = step(&plan, "huggingface.credentials.revoke", "hf-write");
    let inputs = secret(OLD);
    // Propagation: the old token works for 3 more answers; the step waits for the 401.
    fake.set_revoke_delay(3);
    let p = provider(&fake);
    p.execute(&call(&plan, s, &inputs, "k")).await.unwrap();
    assert!(!fake.is_live(OLD));
    assert_eq!(fake.revoke_calls(), vec![1]);
    // A 202 that revokes nothing: a transient error, which the engine retries, then reports.
    let other = "hf_TokenTheHubIgnores0000000000000000";
    fake.add_token(other, "alice", "read");
    fake.set_revoke_delay(0);
    fake.set_ignore_revokes(true);
    let mut cfg = config(&fake);
    cfg.propagation_wait = Duration::from_millis(600);
    let impatient = HuggingfaceProvider::new(cfg).unwrap();
    let inputs = secret(other);
    let e = impatient
        .execute(&call(&plan, s, &inputs, "k2"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("still accepts"), "{e}");
    assert!(!e.message.contains(other));
    assert!(fake.is_live(other));
    assert!(matches!(
        impatient
            .reconcile(&call(&plan, s, &inputs, "k2"))
            .await
            .unwrap(),
        Reconciled::NotDone
    ));
}

#[tokio::test]
async fn revoking_500_tokens_takes_one_call() {
    let fake = HuggingfaceFake::start().await;
    let n = 500;
    let token = |i: usize| format!("hf_Exposed{i:05}Token000000000000000000");
    let mut yaml = String::from("credentials:\n");
    for i in 0..n {
        fake.add_token(&token(i), &format!("u{i}"), "read");
        let _ = writeln!(
            yaml,
            "  - id: t{i}\n    kind: huggingface_token\n    owner: x\n    hf_user: u{i}\n    delivered_to:\n      - env_file: {{ path: /tmp/never.env, key: T{i} }}"
        );
    }
    let plan = harness::compile(&yaml, Mode::Incident, None);
    let revokes: Vec<&PlannedStep> = plan
        .steps
        .iter()
        .filter(|s| s.action == "huggingface.credentials.revoke")
        .collect();
    assert_eq!(revokes.len(), n);
    let inputs: Vec<Values> = (0..n).map(|i| secret(&token(i))).collect();
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
    assert_eq!(fake.revoke_calls(), vec![n], "one request");
    assert!((0..n).all(|i| !fake.is_live(&token(i))));
}

#[tokio::test]
async fn faults_still_verify_and_revoke() {
    let fake = HuggingfaceFake::start().await;
    fake.add_user("alice", &["acme-ml"]);
    let count = 40;
    let old = |i: usize| format!("hf_FaultOld{i:04}Token0000000000000000000");
    for i in 0..count {
        fake.add_token(&old(i), "alice", "write");
    }
    fake.add_token(NEW, "alice", "write");
    let plan = plan(Mode::Drill);
    fake.set_faults(0.2, 11);
    let p = provider(&fake);
    let mut errors = Vec::new();
    let v = step(&plan, "huggingface.whoami", "hf-write");
    let r = with_retries(30, async || {
        let i = whoami_inputs(&plan, v, NEW);
        p.execute(&call(&plan, v, &i, "k")).await
    })
    .await;
    if let Err(e) = r {
        errors.push(e.to_string());
    }
    let s = step(&plan, "huggingface.credentials.revoke", "hf-write");
    for i in 0..count {
        let inputs = secret(&old(i));
        let r = with_retries(30, async || p.execute(&call(&plan, s, &inputs, "k")).await).await;
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    }
    assert!(errors.is_empty(), "{errors:?}");
    assert!(fake.faults_injected() > 5, "faults were injected");
    assert!(
        (0..count).all(|i| !fake.is_live(&old(i))),
        "every old token died"
    );
    assert!(fake.is_live(NEW));
    assert_eq!(fake.live_tokens_of("alice"), vec![NEW.to_owned()]);
}

// ---------------------------------------------------------------------------------------------
// Conformance classes, per action

/// Every Hugging Face action: crash before the call (reconcile changes nothing and does not
/// claim a revoke of a live token), the call, a lost answer (reconcile, then the engine's
/// re-run converges), the same call again, undo (changes nothing), a wrong value for the check
/// (refused), and no secret in any error, `Debug` or `tracing` event.
#[tokio::test]
async fn conformance_of_every_huggingface_action() {
    let fake = HuggingfaceFake::start().await;
    fake.add_user("alice", &["acme-ml"]);
    fake.add_token(OLD, "alice", "write");
    fake.add_token(NEW, "alice", "write");
    let good = provider(&fake);
    let log = LogCapture::install();
    let mut shown: Vec<String> = Vec::new();
    let wrong_token = "hf_WrongTokenForConformance0000000000";
    for mode in [Mode::Drill, Mode::Incident] {
        let plan = plan(mode);
        let cases: Vec<(&PlannedStep, Values)> = vec![
            (
                step(&plan, "huggingface.whoami", "hf-write"),
                whoami_inputs(&plan, step(&plan, "huggingface.whoami", "hf-write"), NEW),
            ),
            (
                step(&plan, "huggingface.credentials.revoke", "hf-write"),
                secret(OLD),
            ),
        ];
        for (s, inputs) in &cases {
            tracing::callsite::rebuild_interest_cache();
            let _on = log.on();
            let key = rekey_engine::run::idempotency_key(RUN, &s.id);
            let c = || call(&plan, s, inputs, &key);
            good.supports(s).unwrap();
            let snapshot = || (fake.revoke_calls(), fake.is_live(OLD), fake.is_live(NEW));
            let before = snapshot();
            // 1. Crash before the call.
            let r = good.reconcile(&c()).await.unwrap();
            shown.push(format!("{r:?}"));
            let revoke = s.action == "huggingface.credentials.revoke";
            if fake.is_live(OLD) || !revoke {
                assert!(
                    matches!(r, Reconciled::NotDone),
                    "{}: done before it ran",
                    s.id
                );
            }
            assert_eq!(snapshot(), before, "{}: reconcile changed something", s.id);
            // The call.
            let out = good.execute(&c()).await.unwrap();
            shown.push(format!(
                "{out:?} {}",
                rekey_engine::provider::plain_json(&out)
            ));
            let after = snapshot();
            if revoke {
                assert!(!fake.is_live(OLD), "{}: the old token still works", s.id);
            } else {
                assert_eq!(after, before, "{}: a check changed something", s.id);
            }
            assert!(fake.is_live(NEW), "{}: the new token stopped working", s.id);
            // 3. Lost answer: reconcile, and the engine's re-run if not done.
            match good.reconcile(&c()).await.unwrap() {
                Reconciled::Done(v) => {
                    assert!(revoke, "{}: a check claims done", s.id);
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
            // 2./5. Undo changes nothing, with or without outputs.
            good.undo(&c(), &out).await.unwrap();
            good.undo(&c(), &Values::new()).await.unwrap();
            assert_eq!(snapshot(), after, "{}: undo changed something", s.id);
            // The check refuses a wrong value (and the revoked old one).
            if !revoke {
                for bad in [wrong_token, OLD] {
                    let mut i = inputs.clone();
                    i.insert("token".into(), Value::secret(bad));
                    if fake.is_live(bad) {
                        continue;
                    }
                    let e = good.execute(&call(&plan, s, &i, &key)).await.unwrap_err();
                    assert_eq!(e.kind, ErrorKind::Permanent);
                    shown.push(format!("{e} {e:?}"));
                }
            }
        }
    }
    assert!(!fake.is_live(OLD));
    assert_eq!(fake.revoke_calls(), vec![1], "one revoke request in all");
    let text = log.text();
    assert!(
        text.contains("rekey_providers"),
        "the provider's events were captured"
    );
    for t in shown.iter().chain([&text]) {
        for s in [OLD, NEW, wrong_token] {
            assert!(!t.contains(s), "a secret ({} chars) shows", s.len());
        }
    }
}

#[tokio::test]
async fn supports_refuses_what_the_hub_cannot_do() {
    let fake = HuggingfaceFake::start().await;
    let p = provider(&fake);
    let plan = plan(Mode::Drill);
    let create = plan
        .steps
        .iter()
        .find(|s| s.id == "hf-write/create")
        .unwrap();
    assert!(
        p.supports(create).is_err(),
        "a manual step is not the Hub's"
    );
    assert!(
        p.supports(step(&plan, "huggingface.whoami", "hf-write"))
            .is_ok()
    );
}
