//! Small plans whose answers are known by hand.

// Hand-built plans read best with one-letter names for their credentials and steps.
#![allow(clippy::many_single_char_names)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rekey_spec::action::{ACTIONS, Effect, Mode, Phase};
use rekey_spec::kind::CredentialKind;

use super::*;
use crate::{Edge, EdgeKind, PLAN_FORMAT, PlannedCredential, Strategy};

const fn sec(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Builds a plan step by step (in a topological order) with each step's cost.
struct B {
    plan: Plan,
    costs: HashMap<String, StepCost>,
}

impl B {
    fn new() -> Self {
        Self {
            plan: Plan {
                format: PLAN_FORMAT,
                mode: Mode::Incident,
                credentials: Vec::new(),
                steps: Vec::new(),
                edges: Vec::new(),
            },
            costs: HashMap::new(),
        }
    }

    fn cred(&mut self, id: &str, strategy: Strategy) -> u32 {
        self.plan.credentials.push(PlannedCredential {
            id: id.into(),
            kind: CredentialKind::AwsIamAccessKey,
            owner: None,
            strategy,
            reason: "test".into(),
            helper: None,
            runbook: "test".into(),
            notes: Vec::new(),
            steps: Vec::new(),
            first_irreversible: None,
        });
        u32::try_from(self.plan.credentials.len() - 1).unwrap()
    }

    /// A step of credential `c`; its provider is the action's first word, its id `cred/name`.
    fn step(
        &mut self,
        c: u32,
        name: &str,
        phase: Phase,
        action: &str,
        effect: Effect,
        cost: StepCost,
    ) -> u32 {
        let i = u32::try_from(self.plan.steps.len()).unwrap();
        let id = format!("{}/{name}", self.plan.credentials[c as usize].id);
        self.costs.insert(id.clone(), cost);
        self.plan.steps.push(PlannedStep {
            id,
            credential: c,
            step: name.into(),
            phase,
            action: action.into(),
            provider: action.split('.').next().unwrap().into(),
            call: action.into(),
            effect,
            consumer: None,
            consumer_label: None,
            target: None,
            inputs: BTreeMap::new(),
            outputs: Vec::new(),
            irreversible: false,
            manual: None,
        });
        self.plan.credentials[c as usize].steps.push(i);
        i
    }

    /// An automatic step taking `secs` of work.
    fn work(&mut self, c: u32, name: &str, phase: Phase, action: &str, secs: u64) -> u32 {
        self.step(
            c,
            name,
            phase,
            action,
            Effect::Write,
            StepCost::work(sec(secs)),
        )
    }

    /// A manual step: `secs` waiting for a person.
    fn manual(&mut self, c: u32, name: &str, phase: Phase, secs: u64) -> u32 {
        let cost = StepCost {
            human: sec(secs),
            ..StepCost::default()
        };
        self.step(c, name, phase, "manual.confirm", Effect::Human, cost)
    }

    fn edge(&mut self, from: u32, to: u32, kind: EdgeKind) {
        self.plan.edges.push(Edge { from, to, kind });
    }

    fn chain(&mut self, steps: &[u32]) {
        for w in steps.windows(2) {
            self.edge(w[0], w[1], EdgeKind::Phase);
        }
    }

    fn run(&self, limits: &Limits) -> Estimate {
        estimate(&self.plan, &|st| self.costs[&st.id], limits)
    }
}

fn chain_reason(steps: usize, work: u64) -> Reason {
    Reason::Chain {
        steps,
        work: sec(work),
    }
}

#[test]
fn a_chain_takes_the_sum_of_its_steps() {
    let mut b = B::new();
    let a = b.cred("a", Strategy::RotateFirst);
    let x = b.work(a, "mint", Phase::Mint, "aws.mint", 1);
    let y = b.work(a, "deliver", Phase::Deliver, "consumer.deliver", 2);
    let z = b.work(a, "verify", Phase::Verify, "aws.verify", 3);
    b.chain(&[x, y, z]);
    let e = b.run(&Limits::slots(16, 8));
    assert_eq!(e.cleaned_after, sec(6));
    assert_eq!(e.replaced_after, Some(sec(6)));
    assert_eq!(e.disabled_after, None);
    assert_eq!((e.steps, e.credentials, e.requests), (3, 1, 3));
    let pole = e.long_pole.unwrap();
    assert_eq!(pole.credential, "a");
    assert_eq!(pole.done_after, sec(6));
    assert_eq!(pole.reasons, vec![chain_reason(3, 6)]);
}

#[test]
fn independent_credentials_share_the_global_slots() {
    let mut b = B::new();
    for id in ["a", "b"] {
        let c = b.cred(id, Strategy::RotateFirst);
        b.work(c, "mint", Phase::Mint, "aws.mint", 10);
    }
    assert_eq!(b.run(&Limits::slots(2, 8)).cleaned_after, sec(10));
    let e = b.run(&Limits::slots(1, 8));
    assert_eq!(e.cleaned_after, sec(20));
    // Plan order breaks the tie: b waits for a.
    let pole = e.long_pole.unwrap();
    assert_eq!(pole.credential, "b");
    assert_eq!(
        pole.reasons,
        vec![
            Reason::Queued {
                provider: "aws".into(),
                waited: sec(10)
            },
            chain_reason(1, 10)
        ]
    );
    assert_eq!(e.dominant.len(), 2);
    assert_eq!(e.dominant[1].credential, "a");
}

#[test]
fn a_provider_has_its_own_limit() {
    let mut same = B::new();
    let mut other = B::new();
    for (id, action) in [("a", "aws.mint"), ("b", "gcp.mint")] {
        let c = same.cred(id, Strategy::RotateFirst);
        same.work(c, "mint", Phase::Mint, "aws.mint", 10);
        let c = other.cred(id, Strategy::RotateFirst);
        other.work(c, "mint", Phase::Mint, action, 10);
    }
    let limits = Limits::slots(4, 1);
    assert_eq!(same.run(&limits).cleaned_after, sec(20));
    assert_eq!(other.run(&limits).cleaned_after, sec(10));
    // A provider's own cap below per_provider.
    let mut capped = Limits::slots(4, 8);
    capped.provider_slots.insert("aws".into(), 1);
    assert_eq!(same.run(&capped).cleaned_after, sec(20));
}

#[test]
fn the_longest_remaining_chain_goes_first() {
    let mut b = B::new();
    let short = b.cred("short", Strategy::RotateFirst);
    b.work(short, "one", Phase::Mint, "aws.one", 10);
    let long = b.cred("long", Strategy::RotateFirst);
    let x = b.work(long, "one", Phase::Mint, "aws.one", 10);
    let y = b.work(long, "two", Phase::Verify, "aws.two", 10);
    b.chain(&[x, y]);
    // One slot: the two-step chain starts first (0–10) although the short one comes first in
    // the plan; then both have one step left and plan order decides: short (10–20), long's
    // second step (20–30).
    let e = b.run(&Limits::slots(1, 1));
    assert_eq!(e.cleaned_after, sec(30));
    let done: Vec<(&str, Duration)> = e
        .dominant
        .iter()
        .map(|p| (p.credential.as_str(), p.done_after))
        .collect();
    assert_eq!(done, vec![("long", sec(30)), ("short", sec(20))]);
}

#[test]
fn a_person_s_wait_holds_no_slot() {
    // One slot. `a` asks a person (60 s) before its 10 s call (an OTP); `b` calls for 30 s
    // meanwhile. Holding the slot while waiting would end at 100 s.
    let mut b = B::new();
    let a = b.cred("a", Strategy::RotateFirst);
    let otp = StepCost {
        work: sec(10),
        propagation: Duration::ZERO,
        human: sec(60),
    };
    b.step(
        a,
        "mint",
        Phase::Mint,
        "npm.tokens.create",
        Effect::Create,
        otp,
    );
    let c = b.cred("b", Strategy::RotateFirst);
    b.work(c, "mint", Phase::Mint, "aws.mint", 30);
    let e = b.run(&Limits::slots(1, 1));
    assert_eq!(e.cleaned_after, sec(70));
    let pole = e.long_pole.unwrap();
    assert_eq!(pole.credential, "a");
    assert_eq!(
        pole.reasons,
        vec![
            Reason::Human {
                step: "a/mint".into(),
                wait: sec(60)
            },
            chain_reason(1, 10)
        ]
    );

    // A manual step calls no provider: it needs no slot even while every slot is busy.
    let mut b = B::new();
    let a = b.cred("a", Strategy::RotateFirst);
    b.manual(a, "confirm", Phase::Revoke, 60);
    let c = b.cred("b", Strategy::RotateFirst);
    b.work(c, "mint", Phase::Mint, "aws.mint", 100);
    let e = b.run(&Limits::slots(1, 1));
    assert_eq!(e.cleaned_after, sec(100));
    assert_eq!(e.dominant[1].credential, "a");
    assert_eq!(e.dominant[1].done_after, sec(60));
    assert_eq!(e.requests, 1);
}

#[test]
fn the_engine_asks_a_person_when_the_run_pauses() {
    // `a` and `b` each need a person (15 min) before a 1 s call; `c` keeps the run busy for
    // 100 s. The run pauses at 100 s, one person answers both questions in turn, and the run
    // resumes with both answers at 100 s + 30 min.
    let mut b = B::new();
    for id in ["a", "b"] {
        let c = b.cred(id, Strategy::RevokeFirst);
        let m = b.manual(c, "confirm", Phase::Revoke, 900);
        let w = b.work(c, "mint", Phase::Mint, "aws.mint", 1);
        b.chain(&[m, w]);
    }
    let c = b.cred("c", Strategy::RotateFirst);
    b.work(c, "mint", Phase::Mint, "aws.mint", 100);
    let mut limits = Limits::slots(16, 8);
    limits.operators = Operators {
        people: Some(1),
        ask: Ask::WhenPaused,
    };
    let e = b.run(&limits);
    assert_eq!(e.disabled_after, Some(sec(1900)));
    assert_eq!(e.cleaned_after, sec(1901));
    let pole = e.long_pole.unwrap();
    assert_eq!(pole.credential, "a");
    assert_eq!(
        pole.reasons,
        vec![
            Reason::Human {
                step: "a/confirm".into(),
                wait: sec(1900)
            },
            chain_reason(2, 1)
        ]
    );
    // Two people answer together.
    limits.operators.people = Some(2);
    assert_eq!(b.run(&limits).cleaned_after, sec(1001));
    // Asked at once, by as many people as needed.
    limits.operators = Operators {
        people: None,
        ask: Ask::AtOnce,
    };
    assert_eq!(b.run(&limits).cleaned_after, sec(901));
    // Asked at once by one person: one after the other.
    limits.operators.people = Some(1);
    assert_eq!(b.run(&limits).cleaned_after, sec(1801));
}

/// Five one-second calls of an action limited to 3,600 an hour (one a second) with bursts of
/// two: they may start at 0, 0, 1, 2 and 3 s.
fn five_calls() -> B {
    let mut b = B::new();
    for id in ["a", "b", "c", "d", "e"] {
        let c = b.cred(id, Strategy::RotateFirst);
        b.work(c, "call", Phase::Mint, "x.call", 1);
    }
    b
}

#[test]
fn a_rate_limit_is_a_token_bucket() {
    let b = five_calls();
    let mut limits = Limits::slots(16, 16);
    limits
        .rates
        .insert("x pace".into(), RateLimit::new(3600, 2, &["x.call"]));
    let e = b.run(&limits);
    assert_eq!(e.cleaned_after, sec(4));
    let waited: Vec<(String, Duration)> = e
        .dominant
        .iter()
        .map(|p| {
            let w = p
                .reasons
                .iter()
                .find_map(|r| match r {
                    Reason::RateLimited { limit, waited } => {
                        assert_eq!(limit, "x pace");
                        Some(*waited)
                    }
                    _ => None,
                })
                .unwrap_or_default();
            (p.credential.clone(), w)
        })
        .collect();
    // 0 + 0 + 1 + 2 + 3 = 6 s of waiting in all.
    assert_eq!(
        waited,
        vec![
            ("e".into(), sec(3)),
            ("d".into(), sec(2)),
            ("c".into(), sec(1)),
            ("a".into(), sec(0)),
            ("b".into(), sec(0)),
        ]
    );
    assert_eq!(
        e.long_pole.unwrap().reasons[0],
        Reason::RateLimited {
            limit: "x pace".into(),
            waited: sec(3)
        }
    );
    // A limit spent by another action changes nothing.
    let mut other = Limits::slots(16, 16);
    other
        .rates
        .insert("y pace".into(), RateLimit::new(1, 1, &["y.call"]));
    assert_eq!(b.run(&other).cleaned_after, sec(1));
}

#[test]
fn a_budget_waited_for_in_the_call_holds_the_slot() {
    // One slot; two `x.call`s limited to one every 2 s (burst 1), then a `y.call`, 1 s each.
    let mut b = B::new();
    for (id, action) in [("a", "x.call"), ("b", "x.call"), ("c", "y.call")] {
        let c = b.cred(id, Strategy::RotateFirst);
        b.work(c, "call", Phase::Mint, action, 1);
    }
    let mut limits = Limits::slots(1, 1);
    let pace = RateLimit::new(1800, 1, &["x.call"]);
    limits.rates.insert("x".into(), pace.clone());
    // Waited out by the engine: a 0–1, c 1–2 while b waits for its token, b 2–3.
    assert_eq!(b.run(&limits).cleaned_after, sec(3));
    // Waited for in the call: a 0–1, b holds the slot 1–3, c 3–4.
    limits.rates.insert("x".into(), pace.holding_slots());
    let e = b.run(&limits);
    assert_eq!(e.cleaned_after, sec(4));
    let b_pole = e.dominant.iter().find(|p| p.credential == "b").unwrap();
    assert_eq!(
        b_pole.reasons[0],
        Reason::RateLimited {
            limit: "x".into(),
            waited: sec(1)
        }
    );
}

/// `n` credentials each capturing the old token (1 s; staggered, the k-th 1 + 2k s) and
/// revoking it (10 s) through a batched action.
fn revokes(n: u64, stagger: bool) -> B {
    let mut b = B::new();
    for k in 0..n {
        let c = b.cred(&format!("pat{k}"), Strategy::RevokeFirst);
        let prep = if stagger { 1 + 2 * k } else { 1 };
        let p = b.work(c, "capture", Phase::Prepare, "consumer.read_current", prep);
        let cost = StepCost::work(sec(10));
        let r = b.step(
            c,
            "revoke",
            Phase::Revoke,
            "github.credentials.revoke",
            Effect::Delete,
            cost,
        );
        b.chain(&[p, r]);
    }
    b
}

fn batching(limit: usize) -> Limits {
    let mut l = Limits::slots(16, 16);
    l.batches.insert("github.credentials.revoke".into(), limit);
    // A second request would wait an hour.
    l.rates.insert(
        "revoke pace".into(),
        RateLimit::new(1, 1, &["github.credentials.revoke"]),
    );
    l
}

#[test]
fn a_batch_limit_collapses_steps_into_one_request() {
    let b = revokes(10, false);
    // Every capture ends at 1 s; the ten revokes go in one request, which spends one token.
    let e = b.run(&batching(1000));
    assert_eq!(e.requests, 11);
    assert_eq!(e.disabled_after, Some(sec(11)));
    assert_eq!(e.cleaned_after, sec(11));
    // Without batching, the second revoke waits an hour for the pace.
    let mut unbatched = batching(1000);
    unbatched.batches.clear();
    let e = b.run(&unbatched);
    assert_eq!(e.requests, 20);
    assert_eq!(e.disabled_after, Some(sec(9 * 3600 + 11)));
    // Batches of 4: three requests, one token each.
    let e = b.run(&batching(4));
    assert_eq!(e.requests, 13);
    assert_eq!(e.disabled_after, Some(sec(2 * 3600 + 11)));
}

#[test]
fn a_batch_waits_for_steps_on_their_way() {
    // Captures end at 1 s and 3 s. While the second is in flight its revoke may join: the
    // window (250 ms) starts again, and both go in one request at 3 s.
    let b = revokes(2, true);
    let e = b.run(&batching(1000));
    assert_eq!(e.requests, 3);
    assert_eq!(e.cleaned_after, sec(13));
    // ... at most `batch_max_wait` after the first joined: then the first goes alone at 2 s,
    // and the second waits an hour for the pace's next token.
    let mut impatient = batching(1000);
    impatient.batch_max_wait = sec(1);
    let e = b.run(&impatient);
    assert_eq!(e.requests, 4);
    assert_eq!(e.cleaned_after, sec(2 + 3600 + 10));
    let pole = e.long_pole.unwrap();
    assert_eq!(pole.credential, "pat1");
    assert_eq!(
        pole.reasons[0],
        Reason::RateLimited {
            limit: "revoke pace".into(),
            waited: sec(3600 - 1)
        }
    );
}

#[test]
fn a_helper_chain_makes_the_dependent_the_long_pole() {
    // `admin` (a person mints it, 15 min) is the rotate_with helper of `app`: app's delivery
    // waits for admin's verify.
    let mut b = B::new();
    let admin = b.cred("admin", Strategy::RotateFirst);
    let create = b.manual(admin, "create", Phase::Mint, 900);
    let check = b.work(admin, "verify", Phase::Verify, "github.user.get", 2);
    b.chain(&[create, check]);
    let app = b.cred("app", Strategy::RotateFirst);
    let mint = b.work(app, "mint", Phase::Mint, "aws.mint", 2);
    let deliver = b.work(app, "deliver", Phase::Deliver, "consumer.deliver", 1);
    let verify = b.work(app, "verify", Phase::Verify, "aws.verify", 2);
    b.chain(&[mint, deliver, verify]);
    b.edge(check, deliver, EdgeKind::Helper);
    let e = b.run(&Limits::slots(16, 8));
    assert_eq!(e.cleaned_after, sec(905));
    let pole = e.long_pole.clone().unwrap();
    assert_eq!(pole.credential, "app");
    assert_eq!(
        pole.reasons,
        vec![
            Reason::Helper {
                helper: "admin".into(),
                until: sec(902)
            },
            Reason::Human {
                step: "admin/create".into(),
                wait: sec(900)
            },
            chain_reason(4, 5),
        ]
    );
    assert_eq!(e.dominant[1].credential, "admin");
    assert_eq!(
        e.summary(),
        "all replaced after 15m 5s; the long pole is app (15m 5s): it waits for its \
         rotate_with helper admin (until 15m 2s); a manual step (admin/create, 15m waiting \
         for a person)"
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["cleaned_after"], 905.0);
    assert_eq!(json["disabled_after"], serde_json::Value::Null);
    assert_eq!(json["long_pole"]["reasons"][0]["reason"], "helper");
    assert_eq!(json["long_pole"]["reasons"][0]["until"], 902.0);
}

#[test]
fn disabled_before_replaced_before_cleaned() {
    // Revoke first: prepare 1 → revoke 2 → mint 2 → deliver 1 → verify 2 → cleanup 1.
    let mut b = B::new();
    let x = b.cred("exposed", Strategy::RevokeFirst);
    let steps = [
        ("capture", Phase::Prepare, 1),
        ("revoke", Phase::Revoke, 2),
        ("mint", Phase::Mint, 2),
        ("deliver", Phase::Deliver, 1),
        ("verify", Phase::Verify, 2),
        ("cleanup", Phase::Cleanup, 1),
    ];
    let ids: Vec<u32> = steps
        .iter()
        .map(|&(name, phase, secs)| b.work(x, name, phase, "aws.step", secs))
        .collect();
    b.chain(&ids);
    // An adjacent credential rotated first: its late revoke is no exposed one's.
    let adj = b.cred("adjacent", Strategy::RotateFirst);
    let m = b.work(adj, "mint", Phase::Mint, "gcp.mint", 1);
    let r = b.work(adj, "revoke", Phase::Revoke, "gcp.revoke", 5);
    b.chain(&[m, r]);
    let e = b.run(&Limits::slots(16, 8));
    assert_eq!(e.disabled_after, Some(sec(3)));
    assert_eq!(e.replaced_after, Some(sec(8)));
    assert_eq!(e.cleaned_after, sec(9));
    assert!(e.disabled_after < e.replaced_after);
    assert!(e.replaced_after <= Some(e.cleaned_after));
    assert_eq!(
        e.summary(),
        "all exposed credentials disabled after 3s, all replaced after 8s, all done after 9s; \
         the long pole is exposed (9s): a chain of 6 steps (9s of work)"
    );
}

#[test]
fn durations_read_like_a_person_writes_them() {
    let h = |d: Duration| Hms(d).to_string();
    assert_eq!(h(Duration::from_millis(400)), "0.4s");
    assert_eq!(h(sec(0)), "0s");
    assert_eq!(h(sec(45)), "45s");
    assert_eq!(h(sec(130)), "2m 10s");
    assert_eq!(h(sec(31 * 60)), "31m");
    assert_eq!(h(sec(3 * 3600 + 5 * 60 + 9)), "3h 5m");
    assert_eq!(h(sec(2 * 86_400 + 4 * 3600)), "2d 4h");
}

#[test]
fn the_documented_limits_name_real_actions() {
    let l = Limits::documented();
    assert_eq!((l.concurrency, l.per_provider), (16, 8));
    let providers: Vec<&str> = ACTIONS.iter().map(|a| a.provider).collect();
    for p in l.provider_slots.keys() {
        assert!(providers.contains(&p.as_str()), "no provider {p}");
    }
    let known = |name: &str| rekey_spec::action::action(name).is_some();
    for a in l.batches.keys() {
        assert!(known(a), "no action {a}");
    }
    for (name, r) in &l.rates {
        assert!(!r.spent_by.is_empty(), "{name} is spent by nothing");
        for key in &r.spent_by {
            let (action, consumer) = key
                .split_once(':')
                .map_or((key.as_str(), None), |(a, c)| (a, Some(c)));
            assert!(known(action), "{name}: no action {action}");
            if let Some(c) = consumer {
                assert!(
                    ["aws_secrets_manager", "github_actions_secret", "env_file"].contains(&c),
                    "{name}: no consumer type {c}"
                );
            }
        }
    }
    // Limits round-trip through JSON (a caller may keep its own).
    let json = serde_json::to_string(&l).unwrap();
    assert_eq!(serde_json::from_str::<Limits>(&json).unwrap(), l);
}

#[test]
fn every_action_has_a_default_cost() {
    let mut b = B::new();
    let c = b.cred("c", Strategy::RotateFirst);
    for a in ACTIONS {
        b.step(
            c,
            a.name,
            Phase::Mint,
            a.name,
            a.effect,
            StepCost::default(),
        );
    }
    for st in &b.plan.steps {
        let cost = default_cost(st);
        if st.effect == Effect::Human {
            assert_eq!(cost.human, Duration::from_mins(15), "{}", st.action);
        } else {
            assert!(cost.work > Duration::ZERO, "{}", st.action);
            assert_eq!(cost.human, Duration::ZERO, "{}", st.action);
        }
    }
}

/// The example inventory in the repository, whole, as an incident.
#[test]
fn the_example_incident() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../inventory");
    let sources: Vec<Arc<rekey_spec::SourceFile>> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            Arc::new(rekey_spec::SourceFile::new(p, text))
        })
        .collect();
    let inventory = rekey_spec::parse_inventory(&sources).unwrap();
    let runbooks = rekey_spec::load_runbooks(None).unwrap();
    let plan = crate::compile(&crate::PlanRequest {
        inventory: &inventory,
        runbooks: &runbooks,
        selection: &crate::Selection::default(),
        mode: Mode::Incident,
        exposed: None,
    })
    .unwrap();
    let e = estimate(&plan, &default_cost, &Limits::documented());
    assert_eq!(e.steps, plan.steps.len());
    assert_eq!(e.credentials, plan.credentials.len());
    assert!(e.requests <= e.steps);
    let (disabled, replaced) = (e.disabled_after.unwrap(), e.replaced_after.unwrap());
    assert!(disabled < replaced && replaced <= e.cleaned_after, "{e:?}");
    assert_eq!(e.dominant.len(), plan.credentials.len().min(DOMINANT));
    assert!(
        e.dominant
            .windows(2)
            .all(|w| w[0].done_after >= w[1].done_after)
    );
    assert_eq!(e.long_pole.as_ref().unwrap().done_after, e.cleaned_after);
    println!("{}", e.summary());
}
