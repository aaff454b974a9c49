//! Rotation history: how each credential's runs ended and how long their steps took.
//!
//! Timings are read back from the audit log (its step events are the only clock that
//! survives a crash and a resume), so a report of any past run and the history row written
//! when a run ends agree by construction.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{AuditEvent, Pool, Result, Store, StoreError};

/// How a credential's part of a run ended.
pub mod outcome {
    /// Every step succeeded: the credential has a new, verified value.
    pub const ROTATED: &str = "rotated";
    /// A step failed before the point of no return; what was done was undone.
    pub const ROLLED_BACK: &str = "rolled_back";
    /// A step failed past the point of no return: an operator must finish it.
    pub const NEEDS_OPERATOR: &str = "needs_operator";
    /// An undo failed: the provider may hold a half-done rotation.
    pub const UNDO_FAILED: &str = "undo_failed";
}

/// One step as the audit log saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepTiming {
    pub step: String,
    pub credential: String,
    pub action: Option<String>,
    /// The first `step_started`.
    pub started_at: Option<Timestamp>,
    /// The last event that ended it (succeeded, failed, undone, reconciled).
    pub ended_at: Option<Timestamp>,
    /// Time spent waiting for a person (between `waiting_for_operator` and the next event).
    pub human_ms: i64,
    /// Tries that were retried (`step_retry` events).
    pub retries: i64,
    /// The last state the log recorded: `succeeded`, `failed`, `undone`, `undo_failed`,
    /// `waiting`, `started`.
    pub state: String,
    /// The keyed fingerprint of the value it produced, if any.
    pub fingerprint: Option<String>,
    /// The error of its last failure (as audited: never a value).
    pub error: Option<String>,
}

impl StepTiming {
    /// Wall time from first start to end, less the time waiting for a person.
    pub fn work_ms(&self) -> Option<i64> {
        let (s, e) = (self.started_at?, self.ended_at?);
        Some((millis(s, e) - self.human_ms).max(0))
    }
}

/// Milliseconds from `a` to `b`.
pub fn millis(a: Timestamp, b: Timestamp) -> i64 {
    b.as_millisecond() - a.as_millisecond()
}

/// Each step's timing from one run's audit events (in chain order), in order of first event.
pub fn step_timings(events: &[AuditEvent]) -> Vec<StepTiming> {
    let mut out: Vec<StepTiming> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut waiting: HashMap<usize, Timestamp> = HashMap::new();
    for e in events {
        let (Some(step), Some(cred)) = (e.draft.step.as_deref(), e.draft.credential.as_deref())
        else {
            continue;
        };
        let Ok(at) = e.at.parse::<Timestamp>() else {
            continue;
        };
        let i = *index.entry(step).or_insert_with(|| {
            out.push(StepTiming {
                step: step.to_owned(),
                credential: cred.to_owned(),
                ..StepTiming::default()
            });
            out.len() - 1
        });
        let t = &mut out[i];
        if t.action.is_none() {
            t.action.clone_from(&e.draft.action);
        }
        if let Some(since) = waiting.remove(&i) {
            t.human_ms += millis(since, at).max(0);
        }
        match e.draft.event.as_str() {
            "step_started" | "step_redo" => {
                t.started_at.get_or_insert(at);
                t.state = "started".into();
            }
            "waiting_for_operator" => {
                t.started_at.get_or_insert(at);
                waiting.insert(i, at);
                t.state = "waiting".into();
            }
            "step_retry" => t.retries += 1,
            "step_succeeded" | "step_reconciled_done" => {
                t.ended_at = Some(at);
                t.state = "succeeded".into();
                if e.draft.fingerprint.is_some() {
                    t.fingerprint.clone_from(&e.draft.fingerprint);
                }
            }
            "step_failed" => {
                t.ended_at = Some(at);
                t.state = "failed".into();
                t.error.clone_from(&e.draft.detail);
            }
            "step_undone" => t.state = "undone".into(),
            "step_undo_failed" => {
                t.state = "undo_failed".into();
                t.error.clone_from(&e.draft.detail);
            }
            _ => {}
        }
    }
    out
}

/// What one step of a finished credential cost: the scorecard's measured durations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCost {
    pub step: String,
    pub action: String,
    pub provider: String,
    pub effect: String,
    pub ms: i64,
    pub human_ms: i64,
}

/// One credential's part of one run, once that part ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    pub run_id: String,
    pub credential: String,
    pub kind: String,
    /// `drill` or `incident`.
    pub mode: String,
    pub simulated: bool,
    /// One of [`outcome`].
    pub outcome: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub duration_ms: i64,
    pub human_ms: i64,
    pub steps: Vec<StepCost>,
}

impl Rotation {
    pub fn rotated(&self) -> bool {
        self.outcome == outcome::ROTATED
    }
}

impl Store {
    /// Records (or, when a resume ends the run again, replaces) these rows.
    pub async fn record_rotations(&self, rows: &[Rotation]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            for r in rows {
                let steps = serde_json::to_string(&r.steps).expect("step costs serialize");
                sqlx::query("INSERT INTO rotations (run_id, credential, kind, mode, simulated, outcome, started_at, finished_at, duration_ms, human_ms, steps_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (run_id, credential) DO UPDATE SET outcome = excluded.outcome, started_at = excluded.started_at, finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, human_ms = excluded.human_ms, steps_json = excluded.steps_json")
                    .bind(&r.run_id)
                    .bind(&r.credential)
                    .bind(&r.kind)
                    .bind(&r.mode)
                    .bind(r.simulated)
                    .bind(&r.outcome)
                    .bind(r.started_at.to_string())
                    .bind(r.finished_at.to_string())
                    .bind(r.duration_ms)
                    .bind(r.human_ms)
                    .bind(steps)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every recorded row, oldest first.
    pub async fn rotations(&self) -> Result<Vec<Rotation>> {
        self.rotations_where(None).await
    }

    /// The rows of one run.
    pub async fn rotations_of_run(&self, run_id: &str) -> Result<Vec<Rotation>> {
        self.rotations_where(Some(run_id)).await
    }

    async fn rotations_where(&self, run_id: Option<&str>) -> Result<Vec<Rotation>> {
        let sql = "SELECT run_id, credential, kind, mode, simulated, outcome, started_at, finished_at, duration_ms, human_ms, steps_json FROM rotations WHERE ($1 IS NULL OR run_id = $1) ORDER BY finished_at, run_id, credential";
        with_pool!(self, p => {
            sqlx::query(sql).bind(run_id).fetch_all(p).await?.iter().map(|r| {
                let ts = |col: &str| -> Result<Timestamp> {
                    let s: String = r.try_get(col)?;
                    s.parse().map_err(|e| StoreError::Corrupt(format!("rotations.{col} `{s}`: {e}")))
                };
                let steps: String = r.try_get("steps_json")?;
                Ok(Rotation {
                    run_id: r.try_get("run_id")?,
                    credential: r.try_get("credential")?,
                    kind: r.try_get("kind")?,
                    mode: r.try_get("mode")?,
                    simulated: r.try_get("simulated")?,
                    outcome: r.try_get("outcome")?,
                    started_at: ts("started_at")?,
                    finished_at: ts("finished_at")?,
                    duration_ms: r.try_get("duration_ms")?,
                    human_ms: r.try_get("human_ms")?,
                    steps: serde_json::from_str(&steps)
                        .map_err(|e| StoreError::Corrupt(format!("rotations.steps_json: {e}")))?,
                })
            }).collect()
        })
    }
}

/// Per credential, its history in one place: the last successful rotation (real, and real or
/// simulated) and the last row of any outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CredentialHistory {
    /// The last rotation that changed the real credential.
    pub last_rotated: Option<Timestamp>,
    /// The last rotation, real or rehearsed (`--simulate`).
    pub last_rotated_or_simulated: Option<Timestamp>,
    /// The most recent row of any outcome.
    pub last: Option<Rotation>,
}

/// Folds rows (oldest first, as [`Store::rotations`] returns them) into one entry per credential.
pub fn by_credential(rows: &[Rotation]) -> BTreeMap<String, CredentialHistory> {
    let mut out: BTreeMap<String, CredentialHistory> = BTreeMap::new();
    for r in rows {
        let h = out.entry(r.credential.clone()).or_default();
        if r.rotated() {
            h.last_rotated_or_simulated = Some(r.finished_at);
            if !r.simulated {
                h.last_rotated = Some(r.finished_at);
            }
        }
        h.last = Some(r.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditDraft;

    fn ev(seq: i64, at: &str, step: &str, event: &str) -> AuditEvent {
        AuditEvent {
            seq,
            at: format!("2026-12-07T10:00:{at}Z"),
            draft: AuditDraft {
                run_id: Some("run-1".into()),
                actor: "t".into(),
                reason: None,
                credential: Some("c".into()),
                step: Some(step.into()),
                action: Some("a.b".into()),
                event: event.into(),
                outcome: "ok".into(),
                detail: (event == "step_failed").then(|| "boom".into()),
                fingerprint: (event == "step_succeeded").then(|| "value=hmac-sha256:k:f".into()),
                simulated: false,
            },
            prev_hash: String::new(),
            hash: String::new(),
            chain: 2,
        }
    }

    #[test]
    fn timings_take_waits_for_people_and_retries_apart() {
        let events = [
            ev(1, "00", "c/mint", "step_started"),
            ev(2, "01", "c/mint", "waiting_for_operator"),
            ev(3, "31", "c/mint", "step_succeeded"),
            ev(4, "31", "c/verify", "step_started"),
            ev(5, "33", "c/verify", "step_retry"),
            ev(6, "40", "c/verify", "step_failed"),
        ];
        let t = step_timings(&events);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].human_ms, t[0].work_ms()), (30_000, Some(1_000)));
        assert_eq!(t[0].state, "succeeded");
        assert_eq!(t[0].fingerprint.as_deref(), Some("value=hmac-sha256:k:f"));
        assert_eq!((t[1].retries, t[1].work_ms()), (1, Some(9_000)));
        assert_eq!(
            (t[1].state.as_str(), t[1].error.as_deref()),
            ("failed", Some("boom"))
        );
    }

    #[test]
    fn a_rehearsal_never_counts_as_a_real_rotation() {
        let row = |run: &str, simulated: bool, outcome: &str, at: &str| Rotation {
            run_id: run.into(),
            credential: "c".into(),
            kind: "k".into(),
            mode: "drill".into(),
            simulated,
            outcome: outcome.into(),
            started_at: at.parse().unwrap(),
            finished_at: at.parse().unwrap(),
            duration_ms: 0,
            human_ms: 0,
            steps: Vec::new(),
        };
        let rows = [
            row("r1", false, outcome::ROTATED, "2026-01-01T00:00:00Z"),
            row("r2", true, outcome::ROTATED, "2026-06-01T00:00:00Z"),
            row("r3", false, outcome::ROLLED_BACK, "2026-07-01T00:00:00Z"),
        ];
        let h = &by_credential(&rows)["c"];
        assert_eq!(
            h.last_rotated,
            Some("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            h.last_rotated_or_simulated,
            Some("2026-06-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(h.last.as_ref().unwrap().run_id, "r3");
    }
}
