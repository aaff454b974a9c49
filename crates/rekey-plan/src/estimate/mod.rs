//! Time to safe (issue #13 §4): if every credential were exposed now, how long would the
//! incident take?
//!
//! [`estimate`] replays the engine's list scheduling over a plan as a discrete-event
//! simulation: a step is ready when every step it waits for is done; a person answers it if it
//! is manual (as the engine does, once the run has nothing else to do: [`Ask`]); it waits out a new value's propagation; a batched action gathers it with others;
//! its request waits for a token of every rate limit it spends; it then takes a global and a
//! per-provider slot (ready requests picked longest remaining chain first, in steps, then plan
//! order, like `rekey-engine/src/run.rs`) and works. Waits for a person, for propagation and
//! for a rate limit waited out by the engine hold no slot; a provider budget waited for inside
//! the call holds its slots. Each step counts as one request of each limit it spends (the few
//! look-ups a step makes beside its main call are not counted).
//!
//! For an incident over the whole inventory, compile it with [`Mode::Incident`] and
//! `exposed: None`: every selected credential is then revoked first.
//!
//! The answer: when every exposed credential is disabled, when every new value is verified,
//! when everything is done, and which credentials finish last and why, read off the path of
//! waits that made each one late.

mod limits;
mod sim;

use std::fmt::{self, Write as _};
use std::time::Duration;

use rekey_spec::kind::CredentialKind;
use serde::Serialize;

use crate::{Plan, PlannedStep};
#[cfg(doc)]
use rekey_spec::action::Mode;

pub use limits::{Ask, Limits, Operators, RateLimit, StepCost, default_cost};

/// How many credentials [`Estimate::dominant`] lists.
pub const DOMINANT: usize = 5;

/// The answer of [`estimate`]; durations are from the start of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Every revoke-phase step of every credential revoked first (the exposed ones) is done.
    #[serde(serialize_with = "secs::opt")]
    pub disabled_after: Option<Duration>,
    /// Every verify-phase step is done: new values are verified everywhere.
    #[serde(serialize_with = "secs::opt")]
    pub replaced_after: Option<Duration>,
    /// Every step is done.
    #[serde(with = "secs")]
    pub cleaned_after: Duration,
    /// The credential finishing last.
    pub long_pole: Option<Pole>,
    /// The credentials finishing last, latest first (at most [`DOMINANT`]).
    pub dominant: Vec<Pole>,
    pub steps: usize,
    pub credentials: usize,
    /// Provider requests: a batch is one.
    pub requests: usize,
}

/// A credential that finishes late, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pole {
    pub credential: String,
    pub kind: CredentialKind,
    #[serde(with = "secs")]
    pub done_after: Duration,
    /// Along the path of steps that made it finish then: the helpers it waited for (weighed by
    /// when the path left them) and the waits, longest first, then the chain itself.
    pub reasons: Vec<Reason>,
}

/// One cause of a credential's finish time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// It waits for its `rotate_with` helper, whose part of the path ended at `until`.
    Helper {
        helper: String,
        #[serde(with = "secs")]
        until: Duration,
    },
    /// A manual step (or a provider's question) waited for a person.
    Human {
        step: String,
        #[serde(with = "secs")]
        wait: Duration,
    },
    /// Requests waited for a rate limit's budget.
    RateLimited {
        limit: String,
        #[serde(with = "secs")]
        waited: Duration,
    },
    /// A new value took time to be accepted.
    Propagation {
        step: String,
        #[serde(with = "secs")]
        wait: Duration,
    },
    /// Ready requests of `provider` waited for a free slot (the provider's or a global one)
    /// or for their batch to gather.
    Queued {
        provider: String,
        #[serde(with = "secs")]
        waited: Duration,
    },
    /// The path itself: its steps and their work.
    Chain {
        steps: usize,
        #[serde(with = "secs")]
        work: Duration,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Helper { helper, until } => write!(
                f,
                "it waits for its rotate_with helper {helper} (until {})",
                Hms(*until)
            ),
            Self::Human { step, wait } => write!(
                f,
                "a manual step ({step}, {} waiting for a person)",
                Hms(*wait)
            ),
            Self::RateLimited { limit, waited } => {
                write!(
                    f,
                    "rate limited ({limit}, {} waiting for budget)",
                    Hms(*waited)
                )
            }
            Self::Propagation { step, wait } => {
                write!(f, "a new value propagating ({step}, {})", Hms(*wait))
            }
            Self::Queued { provider, waited } => write!(
                f,
                "{} waiting for a free slot or a batch ({provider} steps)",
                Hms(*waited)
            ),
            Self::Chain { steps, work } => {
                write!(f, "a chain of {steps} steps ({} of work)", Hms(*work))
            }
        }
    }
}

impl Estimate {
    /// One sentence: "all exposed credentials disabled after 2m 10s, all replaced after 31m;
    /// the long pole is gh-app-key (31m): a manual step (gh-app-key/create, 15m waiting for a
    /// person)".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.disabled_after {
            parts.push(format!("all exposed credentials disabled after {}", Hms(d)));
        }
        if let Some(r) = self.replaced_after {
            parts.push(format!("all replaced after {}", Hms(r)));
        }
        let done = Hms(self.cleaned_after).to_string();
        if self.replaced_after.map(|r| Hms(r).to_string()) != Some(done.clone()) {
            parts.push(format!("all done after {done}"));
        }
        let mut s = parts.join(", ");
        if let Some(p) = &self.long_pole {
            let why: Vec<String> = p.reasons.iter().take(2).map(ToString::to_string).collect();
            let _ = write!(
                s,
                "; the long pole is {} ({}): {}",
                p.credential,
                Hms(p.done_after),
                why.join("; ")
            );
        }
        s
    }
}

/// A duration as a person reads it: `0.4s`, `45s`, `2m 10s`, `3h 5m`, `2d 4h`.
struct Hms(Duration);

impl fmt::Display for Hms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms < 10_000 && !ms.is_multiple_of(1000) {
            return write!(f, "{:.1}s", self.0.as_secs_f64());
        }
        let s = (ms + 500) / 1000;
        let (big, small, units) = match s {
            0..60 => return write!(f, "{s}s"),
            60..3600 => (s / 60, s % 60, ("m", "s")),
            3600..86_400 => (s / 3600, s % 3600 / 60, ("h", "m")),
            _ => (s / 86_400, s % 86_400 / 3600, ("d", "h")),
        };
        write!(f, "{big}{}", units.0)?;
        if small > 0 {
            write!(f, " {small}{}", units.1)?;
        }
        Ok(())
    }
}

/// Durations as seconds (a float) in JSON.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let f = f64::deserialize(d)?;
        Duration::try_from_secs_f64(f).map_err(serde::de::Error::custom)
    }

    #[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<_>`
    pub(crate) fn opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// Estimates how long the engine takes to carry out `plan` with `limits`, each step costing
/// `cost(step)` (see [`default_cost`]). The plan must be acyclic, as [`crate::compile`] makes
/// it.
pub fn estimate(plan: &Plan, cost: &dyn Fn(&PlannedStep) -> StepCost, limits: &Limits) -> Estimate {
    let mut sim = sim::Sim::new(plan, cost, limits);
    sim.run();
    sim.answer()
}

#[cfg(test)]
mod tests;
