//! What the estimator assumes about steps and the engine: the cost of a step when no history
//! is known, and the limits a run is held to (the engine's slots, the providers' request
//! budgets, batching, the people who answer manual steps).
//!
//! This crate sits below the engine and the providers, so their numbers are repeated here;
//! each entry names the file it comes from. Keep them in step when a provider changes.

use std::collections::BTreeMap;
use std::time::Duration;

use rekey_spec::action::Effect;
use serde::{Deserialize, Serialize};

use crate::PlannedStep;

use super::secs;

/// What one step costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCost {
    /// Time in provider calls: holds a global and a per-provider slot.
    #[serde(with = "secs")]
    pub work: Duration,
    /// Waiting, between calls, for something outside to settle (a new key propagating: the
    /// engine retries with backoff and holds no slot meanwhile).
    #[serde(with = "secs", default)]
    pub propagation: Duration,
    /// Waiting for a person (a manual step, an OTP): holds no slot.
    #[serde(with = "secs", default)]
    pub human: Duration,
}

impl StepCost {
    pub const fn work(work: Duration) -> Self {
        Self {
            work,
            propagation: Duration::ZERO,
            human: Duration::ZERO,
        }
    }
}

/// The documented cost of a step when no run history is known; a caller with history passes
/// measured medians instead.
///
/// | step | work | propagation | human | why |
/// |---|---|---|---|---|
/// | effect `read` | 1 s | – | – | one API read or SQL query |
/// | effect `create` | 2 s | – | – | one mint call (`CreateAccessKey`, `keys.create`, `ALTER ROLE`) |
/// | effect `write` | 1 s | – | – | one `PUT` of a secret, one file written and fsynced |
/// | effect `disable` | 1 s | – | – | one status change (`UpdateAccessKey`, `NOLOGIN`, `ACCOUNT LOCK`) |
/// | effect `delete` | 1 s | – | – | one delete call |
/// | effect `verify` | 2 s | – | – | one call authenticated with the new value |
/// | effect `human` | 0 | – | 15 min | a person reads the instructions, acts in a console and answers |
/// | `aws.sts.get_caller_identity` | 2 s | 10 s | – | IAM is eventually consistent: STS refuses a new key for seconds (`aws/iam.rs` retries up to 5 min) |
/// | `gcp.iam.verify_key` | 2 s | 60 s | – | a new service-account key is refused for up to about a minute (`gcp/keys.rs` retries up to 5 min) |
/// | `github.credentials.revoke`, `huggingface.credentials.revoke` | 10 s | – | – | the call, then `GET /user` (`whoami-v2`) per token until 401, polled from 200 ms to 5 s (`confirm.rs`) |
/// | `npm.tokens.delete` | 5 s | – | – | the delete, then waiting for the registry to refuse the old token |
///
/// An npm registry that asks for a one-time password makes a mint wait for a person too; the
/// default cannot know, so it counts none.
pub fn default_cost(step: &PlannedStep) -> StepCost {
    const fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    match step.action.as_str() {
        "aws.sts.get_caller_identity" => StepCost {
            propagation: s(10),
            ..StepCost::work(s(2))
        },
        "gcp.iam.verify_key" => StepCost {
            propagation: s(60),
            ..StepCost::work(s(2))
        },
        "github.credentials.revoke" | "huggingface.credentials.revoke" => StepCost::work(s(10)),
        "npm.tokens.delete" => StepCost::work(s(5)),
        _ => match step.effect {
            Effect::Read | Effect::Write | Effect::Disable | Effect::Delete => StepCost::work(s(1)),
            Effect::Create | Effect::Verify => StepCost::work(s(2)),
            Effect::Human => StepCost {
                human: Duration::from_mins(15),
                ..StepCost::default()
            },
        },
    }
}

/// A token bucket: `burst` requests at once, then one every `3600 / per_hour` seconds (the
/// providers' governor GCRA limiters behave the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub per_hour: u32,
    pub burst: u32,
    /// Which steps spend one token per request: an action (`github.credentials.revoke`), or a
    /// consumer action for one consumer type (`consumer.deliver:github_actions_secret`).
    pub spent_by: Vec<String>,
    /// Whether a request waits for its token inside the call, holding its slots (a provider's
    /// request budget, `http.rs` `Budget::acquire`), rather than outside holding none (a
    /// `Pace`, answered as a rate limit the engine waits out).
    pub holds_slots: bool,
}

impl RateLimit {
    /// A limit waited out by the engine (no slot held), spent by `spent_by`.
    pub fn new(per_hour: u32, burst: u32, spent_by: &[&str]) -> Self {
        Self {
            per_hour,
            burst,
            spent_by: spent_by.iter().map(|&s| s.to_owned()).collect(),
            holds_slots: false,
        }
    }

    /// The same, waited for inside the call (slots held).
    #[must_use]
    pub fn holding_slots(mut self) -> Self {
        self.holds_slots = true;
        self
    }
}

/// When a person answers manual steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// As soon as the step is ready (and a person is free).
    AtOnce,
    /// What the engine does: a manual step waits until the run has nothing else to do (it
    /// pauses, exit 3); then the CLI asks every waiting step in plan order and resumes with
    /// all the answers (`rekey/src/command/run.rs`, `ask_operator`).
    WhenPaused,
}

/// The people who answer manual steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operators {
    /// How many answer at once; `None`: as many as there are questions.
    pub people: Option<usize>,
    pub ask: Ask,
}

/// The limits a run is held to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Calls in flight at once, across providers (`--concurrency`).
    pub concurrency: usize,
    /// Calls in flight at once per provider (`--per-provider`); consumer steps all count
    /// against the one provider `consumer`, like the engine's semaphore keyed by
    /// `PlannedStep::provider`.
    pub per_provider: usize,
    /// A provider's own, lower cap on requests in flight.
    pub provider_slots: BTreeMap<String, usize>,
    /// Token buckets, by name.
    pub rates: BTreeMap<String, RateLimit>,
    /// Actions whose steps share requests: at most this many steps a request.
    pub batches: BTreeMap<String, usize>,
    /// How long a gathered batch waits for another step to join (restarted while one that
    /// could join is in flight).
    #[serde(with = "secs")]
    pub batch_window: Duration,
    /// The longest a batch waits after its first step.
    #[serde(with = "secs")]
    pub batch_max_wait: Duration,
    pub operators: Operators,
}

impl Limits {
    /// `concurrency` and `per_provider` slots and nothing else: no rate limit, no batching,
    /// every manual step answered at once.
    pub fn slots(concurrency: usize, per_provider: usize) -> Self {
        Self {
            concurrency,
            per_provider,
            provider_slots: BTreeMap::new(),
            rates: BTreeMap::new(),
            batches: BTreeMap::new(),
            batch_window: Duration::from_millis(250),
            batch_max_wait: Duration::from_secs(5),
            operators: Operators {
                people: None,
                ask: Ask::AtOnce,
            },
        }
    }

    /// The engine's defaults and every provider's documented limits.
    pub fn documented() -> Self {
        let mut l = Self::slots(16, 8); // rekey-engine/src/run.rs: EngineConfig::default
        // rekey/src/command/run.rs: a terminal asks after the run paused, one question at a time.
        l.operators = Operators {
            people: Some(1),
            ask: Ask::WhenPaused,
        };
        // rekey-providers/src/oauth/auth0.rs: AUTH0_BUDGET.concurrent (the others allow ≥ 8).
        l.provider_slots.insert("auth0".into(), 4);
        // rekey-providers/src/github/mod.rs: REVOKE_BATCH; huggingface.rs: REVOKE_BATCH.
        l.batches.insert("github.credentials.revoke".into(), 1000);
        l.batches
            .insert("huggingface.credentials.revoke".into(), 1000);
        let mut rate = |name: &str, r: RateLimit| {
            l.rates.insert(name.into(), r);
        };
        // rekey-providers/src/github/mod.rs: REVOKE_PACE, a `Pace` (http.rs) answered as a rate
        // limit: 55 an hour + bursts of 5, under GitHub's 60 calls an hour.
        rate(
            "github revoke pace",
            RateLimit::new(55, 5, &["github.credentials.revoke"]),
        );
        // github/mod.rs: GITHUB_BUDGET (4,500 an hour + 500; 78 writes a minute + 2). Only
        // requests with rekey's own token spend it: Actions-secret deliveries (`PUT`); checks
        // with the credential's own token and the unauthenticated revoke do not.
        let gh_writes = ["consumer.deliver:github_actions_secret"];
        rate(
            "github requests",
            RateLimit::new(4_500, 500, &gh_writes).holding_slots(),
        );
        rate(
            "github writes",
            RateLimit::new(78 * 60, 2, &gh_writes).holding_slots(),
        );
        // huggingface.rs: HF_BUDGET (4,800 an hour + 100; 60 writes a minute + 10), spent by
        // the unauthenticated revoke (the anonymous per-IP limit is rekey's own).
        let hf = ["huggingface.credentials.revoke"];
        rate(
            "huggingface requests",
            RateLimit::new(4_800, 100, &hf).holding_slots(),
        );
        rate(
            "huggingface writes",
            RateLimit::new(60 * 60, 10, &hf).holding_slots(),
        );
        // npm/mod.rs: NPM_BUDGET (4,500 an hour + 500; 30 writes a minute + 5), per registry.
        rate(
            "npm requests",
            RateLimit::new(
                4_500,
                500,
                &["npm.tokens.list", "npm.tokens.create", "npm.tokens.delete"],
            )
            .holding_slots(),
        );
        rate(
            "npm writes",
            RateLimit::new(30 * 60, 5, &["npm.tokens.create"]).holding_slots(),
        );
        // npm/mod.rs: DELETE_PACE, deletes paced apart from creates.
        rate(
            "npm deletes",
            RateLimit::new(60 * 60, 15, &["npm.tokens.delete"]).holding_slots(),
        );
        // gcp/mod.rs: GCP_BUDGET (20,000 an hour + 500; 100 writes a minute + 20); the verify
        // authenticates with the new key and spends none.
        let gcp_writes = [
            "gcp.iam.create_key",
            "gcp.iam.disable_key",
            "gcp.iam.delete_key",
        ];
        let mut gcp_all = vec!["gcp.iam.list_keys"];
        gcp_all.extend(gcp_writes);
        rate(
            "gcp requests",
            RateLimit::new(20_000, 500, &gcp_all).holding_slots(),
        );
        rate(
            "gcp writes",
            RateLimit::new(100 * 60, 20, &gcp_writes).holding_slots(),
        );
        // oauth/okta.rs: OKTA_BUDGET (5,000 an hour + 100; 80 writes a minute + 10).
        let okta = [
            "okta.create_client_secret",
            "okta.deactivate_client_secret",
            "okta.delete_client_secret",
        ];
        rate(
            "okta requests",
            RateLimit::new(5_000, 100, &okta).holding_slots(),
        );
        rate(
            "okta writes",
            RateLimit::new(80 * 60, 10, &okta).holding_slots(),
        );
        // oauth/auth0.rs: AUTH0_BUDGET (6,000 an hour + 10; 60 writes a minute + 5).
        let auth0 = ["auth0.rotate_client_secret"];
        rate(
            "auth0 requests",
            RateLimit::new(6_000, 10, &auth0).holding_slots(),
        );
        rate(
            "auth0 writes",
            RateLimit::new(60 * 60, 5, &auth0).holding_slots(),
        );
        l
    }
}
