//! What a run did, as evidence a person files: the drill/incident report (Markdown with a
//! Mermaid timeline, self-contained HTML with an inline SVG timeline, JSON for machines), and
//! the scorecard (coverage, rotation times, the time-to-safe estimate).
//!
//! Everything here is read from the state database and the audit log: a report of a run from
//! last quarter is the same as the one printed when it ended. Nothing here ever holds a secret:
//! the store keeps none, and fingerprints are keyed HMACs.

pub mod estimate;
pub mod html;
pub mod markdown;
pub mod model;
pub mod scorecard;

#[cfg(test)]
mod fixture;

pub use html::html;
pub use markdown::markdown;
pub use model::{
    CredentialReport, Evidence, FailureReport, RunReport, RunSummary, StepReport, Summary,
    TimeToSafe, gather,
};
pub use scorecard::text as scorecard_text;
pub use scorecard::{KindStats, Pole, Scorecard, TimeToSafeEstimate};
