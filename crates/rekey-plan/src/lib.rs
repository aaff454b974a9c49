//! The plan: inventory × runbooks × mode, compiled into one dependency DAG over every selected
//! credential.
//!
//! A [`Plan`] is plain data (serde), so a run stores it once and resume never re-reads YAML.
//! Steps are kept in a topological order; `edges` say which step waits for which.

mod compile;
pub mod estimate;
mod render;
mod safe;

use std::collections::BTreeMap;

use rekey_spec::action::{Effect, Mode, Phase};
use rekey_spec::kind::CredentialKind;
use rekey_spec::runbook::Manual;
use rekey_spec::template::Template;
use serde::{Deserialize, Serialize};

pub use compile::{PlanError, PlanRequest, Refusal, Selection, compile};
pub use estimate::{Estimate, Limits, StepCost, default_cost, estimate};
pub use render::{render_dot, render_json, render_mermaid, render_text, write_json};
pub use safe::{TimeToSafe, closes_exposure, time_to_safe};

/// Bumped when the stored plan's shape changes, so an old run is not misread.
pub const PLAN_FORMAT: u32 = 1;

/// How one credential is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// mint → deliver → verify → revoke old: no revoke before verification passed.
    RotateFirst,
    /// revoke (disable) old first, then mint → deliver → verify: downtime accepted.
    RevokeFirst,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RotateFirst => "rotate first",
            Self::RevokeFirst => "revoke first",
        }
    }

    /// The order of phases for this strategy.
    pub fn phases(self) -> [Phase; 6] {
        match self {
            Self::RotateFirst => [
                Phase::Prepare,
                Phase::Mint,
                Phase::Deliver,
                Phase::Verify,
                Phase::Revoke,
                Phase::Cleanup,
            ],
            Self::RevokeFirst => [
                Phase::Prepare,
                Phase::Revoke,
                Phase::Mint,
                Phase::Deliver,
                Phase::Verify,
                Phase::Cleanup,
            ],
        }
    }

    /// The runbook mode whose steps apply under this strategy.
    pub fn mode(self) -> Mode {
        match self {
            Self::RotateFirst => Mode::Drill,
            Self::RevokeFirst => Mode::Incident,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteLevel {
    Info,
    Warning,
}

/// Something an operator should know before running the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub level: NoteLevel,
    pub text: String,
}

/// A credential's `rotate_with` helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperRef {
    pub id: String,
    /// Whether the helper is rotated in this plan (then it goes first).
    pub in_plan: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedCredential {
    pub id: String,
    pub kind: CredentialKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub strategy: Strategy,
    /// Why this credential is in the plan and why this strategy ("why this order").
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperRef>,
    /// Where the runbook came from.
    pub runbook: String,
    pub notes: Vec<Note>,
    /// Indices into [`Plan::steps`], in execution order.
    pub steps: Vec<u32>,
    /// The first step that cannot be undone: before it, a failure rolls back; after it, the
    /// run goes forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_irreversible: Option<u32>,
}

/// One step of one credential, with its inputs filled from the inventory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Unique in the plan: `credential/step` or `credential/step[consumer]`.
    pub id: String,
    /// Index into [`Plan::credentials`].
    pub credential: u32,
    /// The runbook step it comes from.
    pub step: String,
    pub phase: Phase,
    pub action: String,
    pub provider: String,
    /// The provider call, for the operator.
    pub call: String,
    pub effect: Effect,
    /// Index into the credential's `delivered_to`, for per-consumer steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_label: Option<String>,
    /// The consumer itself, so a run never needs the inventory again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<rekey_spec::Consumer>,
    /// Credential and consumer variables are filled in; step outputs stay references.
    pub inputs: BTreeMap<String, Template>,
    /// Names of the outputs, with whether each is secret (kept in memory only).
    pub outputs: Vec<OutputDecl>,
    pub irreversible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual: Option<Manual>,
}

impl PlannedStep {
    /// The pool of per-provider slots the step takes: its provider's, and for a consumer step
    /// its consumer type's (`consumer:env_file`): the consumer router sends each type to a
    /// different service, so GitHub's paced Actions-secret writes do not hold the slots env
    /// files and Secrets Manager would use.
    pub fn slot_pool(&self) -> std::borrow::Cow<'_, str> {
        match &self.target {
            Some(t) => format!("{}:{}", self.provider, t.type_name()).into(),
            None => self.provider.as_str().into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDecl {
    pub name: String,
    pub secret: bool,
}

/// Why an edge exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// The runbook says so (`needs`, or a template uses the other step's output).
    Needs,
    /// The mode's phase order.
    Phase,
    /// A `rotate_with` helper must be rotated and verified first.
    Helper,
    /// A write-only consumer waits until the readable ones hold the value (crash recovery
    /// reads it back from them).
    Readback,
}

/// `to` waits for `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: u32,
    pub to: u32,
    pub kind: EdgeKind,
}

/// The compiled plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub mode: Mode,
    pub credentials: Vec<PlannedCredential>,
    /// In a topological order: every step comes after all steps it waits for.
    pub steps: Vec<PlannedStep>,
    pub edges: Vec<Edge>,
}

impl Plan {
    /// The steps `step` waits for.
    pub fn dependencies(&self, step: u32) -> impl Iterator<Item = u32> + '_ {
        self.edges
            .iter()
            .filter(move |e| e.to == step)
            .map(|e| e.from)
    }

    pub fn step(&self, id: &str) -> Option<(u32, &PlannedStep)> {
        self.steps
            .iter()
            .enumerate()
            .find(|(_, s)| s.id == id)
            .map(|(i, s)| {
                (
                    u32::try_from(i).expect("plans hold fewer than 2^32 steps"),
                    s,
                )
            })
    }

    /// Builds the petgraph view of the plan (node weight: step index).
    pub fn graph(&self) -> petgraph::graph::DiGraph<u32, EdgeKind> {
        let mut g = petgraph::graph::DiGraph::with_capacity(self.steps.len(), self.edges.len());
        for i in 0..self.steps.len() {
            g.add_node(u32::try_from(i).expect("plans hold fewer than 2^32 steps"));
        }
        for e in &self.edges {
            g.add_edge(e.from.into(), e.to.into(), e.kind);
        }
        g
    }

    /// Whether `a` must finish before `b` starts (directly or through other steps).
    pub fn precedes(&self, a: u32, b: u32) -> bool {
        let g = self.graph();
        petgraph::algo::has_path_connecting(&g, a.into(), b.into(), None)
    }
}
