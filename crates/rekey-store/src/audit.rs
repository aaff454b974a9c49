//! The audit log: append-only rows, each carrying the hash of the one before it.
//!
//! `hash = sha256(prev_hash ‖ canonical JSON of the row's fields)`. Editing a row breaks its own
//! hash; deleting, inserting or reordering rows breaks the link of the row after. Fingerprints
//! of new secrets are keyed HMACs computed by the engine; no value ever reaches this table.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event before it is appended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub run_id: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    pub credential: Option<String>,
    pub step: Option<String>,
    pub action: Option<String>,
    /// What happened: `run_created`, `step_started`, `step_succeeded`, …
    pub event: String,
    /// `ok`, `error`, `skipped`, …
    pub outcome: String,
    /// Free text: an error message, the old key's last use, … Never a secret.
    pub detail: Option<String>,
    /// Keyed fingerprint (HMAC-SHA256, hex) of a new secret.
    pub fingerprint: Option<String>,
    pub simulated: bool,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    #[serde(flatten)]
    pub draft: AuditDraft,
    pub prev_hash: String,
    pub hash: String,
}

/// The hashed content of a row: every field but `hash`, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
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

pub(crate) fn row_hash(seq: i64, at: &str, d: &AuditDraft, prev_hash: &str) -> String {
    let canonical = Canonical {
        seq,
        at,
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
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(serde_json::to_vec(&canonical).expect("audit rows serialize"));
    hex::encode(h.finalize())
}

/// A break in the chain, naming the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    pub seq: i64,
    pub problem: String,
}

/// Walks the whole log in `seq` order.
pub fn verify(events: &[AuditEvent]) -> Vec<AuditProblem> {
    let mut problems = Vec::new();
    let mut expected_seq = 1;
    let mut expected_prev = GENESIS.to_owned();
    for e in events {
        if e.seq > expected_seq {
            let missing = if e.seq - expected_seq == 1 {
                format!("row {expected_seq} is missing (deleted)")
            } else {
                format!("rows {expected_seq}..{} are missing (deleted)", e.seq - 1)
            };
            problems.push(AuditProblem {
                seq: expected_seq,
                problem: missing,
            });
        }
        if row_hash(e.seq, &e.at, &e.draft, &e.prev_hash) != e.hash {
            problems.push(AuditProblem {
                seq: e.seq,
                problem: format!(
                    "row {}: its content does not match its hash (edited)",
                    e.seq
                ),
            });
        }
        if e.prev_hash != expected_prev {
            problems.push(AuditProblem {
                seq: e.seq,
                problem: format!(
                    "row {}: does not follow the row before it (a row was inserted, deleted or reordered here)",
                    e.seq
                ),
            });
        }
        expected_prev.clone_from(&e.hash);
        expected_seq = e.seq + 1;
    }
    problems
}
