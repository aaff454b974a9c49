//! The report of one run, gathered from the store: its stored plan, step rows and audit events.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use rekey_plan::Plan;
pub use rekey_plan::TimeToSafe;
use rekey_spec::{Effect, Phase};
use rekey_store::history::{StepTiming, millis, outcome, step_timings};
use rekey_store::{AuditEvent, RunRecord, StepRecord, StepState, Store, StoreError};
use serde::Serialize;

use crate::scorecard::Scorecard;

/// Bumped when the JSON shape changes incompatibly.
pub const REPORT_FORMAT: u32 = 1;

/// Everything a report shows. `--report x.json` is this, serialized.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub format: u32,
    pub generated_at: Timestamp,
    pub run: RunSummary,
    /// The run's first step: the origin of every `*_ms` offset below.
    pub started_at: Option<Timestamp>,
    pub summary: Summary,
    pub time_to_safe: TimeToSafe,
    /// In plan order.
    pub credentials: Vec<CredentialReport>,
    pub evidence: Evidence,
    /// Added by the caller that has the inventory (`rekey drill`, `rekey report`).
    pub scorecard: Option<Scorecard>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    /// `drill` or `incident`.
    pub mode: String,
    /// `succeeded`, `failed`, `needs_operator`, `paused`, `abandoned`, `running`.
    pub status: String,
    pub simulated: bool,
    pub reason: Option<String>,
    pub actor: String,
    pub created_at: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub credentials: usize,
    pub rotated: usize,
    /// Rolled back, stopped past the point of no return, or whose undo failed.
    pub failed: usize,
    /// Credentials with a step a person does (or a provider question a person answered).
    pub needed_human: usize,
    /// Not finished: waiting for an operator, blocked by a helper, or never started.
    pub skipped: usize,
    /// From the run's first step to its last event.
    pub total_ms: i64,
    /// Time spent waiting for people, summed over steps.
    pub human_ms: i64,
    /// The credential that took longest, and how long.
    pub longest: Option<(String, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CredentialReport {
    pub id: String,
    pub kind: String,
    pub owner: Option<String>,
    /// `rotate first` or `revoke first`.
    pub strategy: String,
    /// `rotated`, `rolled_back`, `needs_operator`, `undo_failed`, `waiting` (for a person),
    /// `blocked` (by a credential it waits for), `not_started`.
    pub outcome: String,
    /// Milliseconds since the run's first step (the timeline's origin).
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub human_ms: i64,
    pub steps: Vec<StepReport>,
    /// Consumers that received the new value (their delivery succeeded).
    pub delivered_to: Vec<String>,
    /// Keyed fingerprint (`hmac-sha256:KID:HEX`) of the new value.
    pub fingerprint: Option<String>,
    pub failure: Option<FailureReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    /// The runbook step's name.
    pub step: String,
    pub phase: String,
    pub action: String,
    pub provider: String,
    /// The provider call, e.g. `iam:CreateAccessKey`.
    pub call: String,
    pub effect: String,
    /// The step's state in the store (`succeeded`, `failed`, `pending`, …).
    pub state: String,
    /// A point of no return: once started, the credential is never rolled back past it.
    pub irreversible: bool,
    /// Milliseconds since the run's first step.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Wall time less the time waiting for a person.
    pub work_ms: Option<i64>,
    pub human_ms: i64,
    pub retries: i64,
    pub attempts: i64,
    pub consumer: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureReport {
    pub step: String,
    pub error: String,
    /// What to do next, as a command where there is one.
    pub next: String,
}

/// Where this run sits in the hash-chained audit log, for `rekey audit verify --head`.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub run_id: String,
    /// The run's first and last audit sequence numbers (other runs may interleave).
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub events: usize,
    /// The hash of the run's last audit row: pin it elsewhere and check it later.
    pub chain_head: Option<String>,
    pub verify_command: Option<String>,
}

/// Reads run `run_id` from the store and builds its report (without a scorecard).
pub async fn gather(store: &Store, run_id: &str) -> Result<RunReport, StoreError> {
    let run = store.run(run_id).await?;
    let plan: Plan = serde_json::from_str(&run.plan_json).map_err(|e| {
        StoreError::Corrupt(format!(
            "the stored plan of run {run_id} cannot be read: {e}"
        ))
    })?;
    let steps = store.steps(run_id).await?;
    let events = store.audit_events(Some(run_id)).await?;
    let outcomes = store
        .rotations_of_run(run_id)
        .await?
        .into_iter()
        .map(|r| (r.credential, r.outcome))
        .collect();
    Ok(build(
        &run,
        &plan,
        &steps,
        &events,
        &outcomes,
        Timestamp::now(),
    ))
}

/// The report from what [`gather`] read; pure, for tests. `outcomes` are the engine's
/// verdicts per credential as the history recorded them (a rollback leaves its failed step
/// `failed`, so the step states alone cannot tell it from a stop past the point of no return).
pub fn build(
    run: &RunRecord,
    plan: &Plan,
    rows: &[StepRecord],
    events: &[AuditEvent],
    outcomes: &BTreeMap<String, String>,
    now: Timestamp,
) -> RunReport {
    let timings = step_timings(events);
    let by_step: HashMap<&str, &StepTiming> =
        timings.iter().map(|t| (t.step.as_str(), t)).collect();
    let by_row: HashMap<&str, &StepRecord> = rows.iter().map(|r| (r.step_id.as_str(), r)).collect();
    let origin = timings
        .iter()
        .filter_map(|t| t.started_at)
        .min()
        .or_else(|| run.created_at.parse().ok());
    let since = |t: Option<Timestamp>| Some(millis(origin?, t?));

    let mut credentials = Vec::with_capacity(plan.credentials.len());
    let mut summary = Summary {
        credentials: plan.credentials.len(),
        ..Summary::default()
    };
    for cred in &plan.credentials {
        let mut steps = Vec::with_capacity(cred.steps.len());
        let mut delivered_to = Vec::new();
        let mut fingerprint = None;
        let mut failure = None;
        let mut human = false;
        for &s in &cred.steps {
            let p = &plan.steps[s as usize];
            let t = by_step.get(p.id.as_str()).copied();
            let row = by_row.get(p.id.as_str()).copied();
            let state = row.map_or(StepState::Pending, |r| r.state);
            human |= p.effect == Effect::Human || t.is_some_and(|t| t.human_ms > 0);
            if state == StepState::Succeeded {
                if p.phase == Phase::Deliver
                    && let Some(label) = &p.consumer_label
                {
                    delivered_to.push(label.clone());
                }
                if let Some(f) = t.and_then(|t| t.fingerprint.clone()) {
                    fingerprint = Some(f);
                }
            }
            let error = row
                .and_then(|r| r.error.clone())
                .filter(|_| state != StepState::Succeeded)
                .or_else(|| {
                    t.and_then(|t| t.error.clone())
                        .filter(|_| state != StepState::Succeeded)
                });
            if failure.is_none()
                // A rollback undoes the failed step too: its error stays on the row.
                && matches!(
                    state,
                    StepState::Failed | StepState::UndoFailed | StepState::Undone
                )
                && let Some(e) = &error
            {
                failure = Some(FailureReport {
                    step: p.id.clone(),
                    error: e.clone(),
                    next: String::new(),
                });
            }
            steps.push(StepReport {
                id: p.id.clone(),
                step: p.step.clone(),
                phase: p.phase.as_str().to_owned(),
                action: p.action.clone(),
                provider: p.provider.clone(),
                call: p.call.clone(),
                effect: p.effect.as_str().to_owned(),
                state: state.as_str().to_owned(),
                irreversible: p.irreversible,
                start_ms: since(t.and_then(|t| t.started_at)),
                end_ms: since(t.and_then(|t| t.ended_at)),
                work_ms: t.and_then(StepTiming::work_ms),
                human_ms: t.map_or(0, |t| t.human_ms),
                retries: t.map_or(0, |t| t.retries),
                attempts: row.map_or(0, |r| r.attempts),
                consumer: p.consumer_label.clone(),
                error,
            });
        }
        let outcome = match outcomes.get(&cred.id).map(String::as_str) {
            Some(outcome::ROTATED) => outcome::ROTATED,
            Some(outcome::ROLLED_BACK) => outcome::ROLLED_BACK,
            Some(outcome::UNDO_FAILED) => outcome::UNDO_FAILED,
            Some(outcome::NEEDS_OPERATOR) => outcome::NEEDS_OPERATOR,
            _ => credential_outcome(&steps),
        };
        let start_ms = steps.iter().filter_map(|s| s.start_ms).min();
        let end_ms = steps.iter().filter_map(|s| s.end_ms).max();
        let duration_ms = start_ms.zip(end_ms).map(|(a, b)| b - a);
        let human_ms = steps.iter().map(|s| s.human_ms).sum();
        if let Some(f) = &mut failure {
            f.next = next_step(outcome, &run.id);
        }
        match outcome {
            outcome::ROTATED => summary.rotated += 1,
            outcome::ROLLED_BACK | outcome::NEEDS_OPERATOR | outcome::UNDO_FAILED => {
                summary.failed += 1;
            }
            _ => summary.skipped += 1,
        }
        summary.needed_human += usize::from(human);
        summary.human_ms += human_ms;
        if let Some(d) = duration_ms
            && summary.longest.as_ref().is_none_or(|(_, l)| d > *l)
        {
            summary.longest = Some((cred.id.clone(), d));
        }
        credentials.push(CredentialReport {
            id: cred.id.clone(),
            kind: cred.kind.as_str().to_owned(),
            owner: cred.owner.clone(),
            strategy: cred.strategy.as_str().to_owned(),
            outcome: outcome.to_owned(),
            start_ms,
            end_ms,
            duration_ms,
            human_ms,
            steps,
            delivered_to,
            fingerprint,
            failure,
        });
    }
    let last_event = events
        .iter()
        .filter_map(|e| e.at.parse::<Timestamp>().ok())
        .max();
    summary.total_ms = since(last_event).unwrap_or(0);
    let time_to_safe = rekey_plan::time_to_safe(plan, |i| {
        let p = &plan.steps[i];
        let row = by_row.get(p.id.as_str())?;
        if row.state != StepState::Succeeded {
            return None;
        }
        since(by_step.get(p.id.as_str())?.ended_at)
    });
    let evidence = Evidence {
        run_id: run.id.clone(),
        first_seq: events.first().map(|e| e.seq),
        last_seq: events.last().map(|e| e.seq),
        events: events.len(),
        chain_head: events.last().map(|e| e.hash.clone()),
        verify_command: events
            .last()
            .map(|e| format!("rekey audit verify --head {}", e.hash)),
    };
    RunReport {
        format: REPORT_FORMAT,
        generated_at: now,
        run: RunSummary {
            id: run.id.clone(),
            mode: run.mode.clone(),
            status: run.status.as_str().to_owned(),
            simulated: run.simulated,
            reason: run.reason.clone(),
            actor: run.actor.clone(),
            created_at: run.created_at.clone(),
            message: run.message.clone(),
        },
        started_at: origin,
        summary,
        time_to_safe,
        credentials,
        evidence,
        scorecard: None,
    }
}

/// How a credential's part ended, from its steps' states.
fn credential_outcome(steps: &[StepReport]) -> &'static str {
    let any = |s: &str| steps.iter().any(|x| x.state == s);
    if steps.iter().all(|s| s.state == "succeeded") {
        outcome::ROTATED
    } else if any("undo_failed") {
        outcome::UNDO_FAILED
    } else if any("undone") {
        outcome::ROLLED_BACK
    } else if any("failed") || any("undo_started") {
        outcome::NEEDS_OPERATOR
    } else if any("waiting_for_operator") {
        "waiting"
    } else if steps.iter().any(|s| s.state != "pending") {
        "blocked"
    } else {
        "not_started"
    }
}

fn next_step(outcome: &str, run_id: &str) -> String {
    match outcome {
        outcome::ROLLED_BACK => {
            "nothing changed for good: fix the cause, then rotate it again (`rekey drill --credential …`)".to_owned()
        }
        outcome::UNDO_FAILED => format!(
            "the provider may hold a half-done rotation: inspect it by hand (`rekey status {run_id}`)"
        ),
        _ => format!("past the point of no return: fix the cause, then `rekey resume {run_id}`"),
    }
}
