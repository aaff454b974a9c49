//! The rotation history rows of a run, written when it ends (and rewritten when a resume ends
//! it again): what each finished credential's part cost, read from the run's audit events.

use std::collections::HashMap;

use rekey_plan::{Plan, TimeToSafe};
use rekey_store::history::{StepCost, StepTiming, millis};
use rekey_store::{Rotation, StepState};

/// Rows for the credentials of `plan` whose outcome is known (`outcomes[c]`, `None` for one
/// still paused or blocked), timed from the run's audit events (`timings`).
pub(crate) fn rotations(
    run_id: &str,
    plan: &Plan,
    simulated: bool,
    outcomes: &[Option<&str>],
    timings: &[StepTiming],
) -> Vec<Rotation> {
    let by_step: HashMap<&str, _> = timings.iter().map(|t| (t.step.as_str(), t)).collect();
    let mut rows = Vec::new();
    for (c, cred) in plan.credentials.iter().enumerate() {
        let Some(outcome) = outcomes[c] else { continue };
        let mut started = None;
        let mut finished = None;
        let mut human_ms = 0;
        let mut steps = Vec::new();
        for &s in &cred.steps {
            let step = &plan.steps[s as usize];
            let Some(t) = by_step.get(step.id.as_str()) else {
                continue;
            };
            if let Some(at) = t.started_at {
                started = Some(started.map_or(at, |s: jiff::Timestamp| s.min(at)));
            }
            finished = finished.max(t.ended_at);
            human_ms += t.human_ms;
            if let Some(ms) = t.work_ms() {
                steps.push(StepCost {
                    step: step.id.clone(),
                    action: step.action.clone(),
                    provider: step.provider.clone(),
                    effect: step.effect.as_str().to_owned(),
                    ms,
                    human_ms: t.human_ms,
                });
            }
        }
        // A credential none of whose steps ever started (stopped by a helper) has no times.
        let (Some(started), Some(finished)) = (started, finished) else {
            continue;
        };
        rows.push(Rotation {
            run_id: run_id.to_owned(),
            credential: cred.id.clone(),
            kind: cred.kind.as_str().to_owned(),
            mode: plan.mode.as_str().to_owned(),
            simulated,
            outcome: outcome.to_owned(),
            started_at: started,
            finished_at: finished,
            duration_ms: millis(started, finished),
            human_ms,
            steps,
        });
    }
    rows
}

/// The run's time-to-safe from its step states and audit timings.
pub(crate) fn time_to_safe(
    plan: &Plan,
    states: &[StepState],
    timings: &[StepTiming],
) -> TimeToSafe {
    let by_step: HashMap<&str, &StepTiming> =
        timings.iter().map(|t| (t.step.as_str(), t)).collect();
    let origin = timings.iter().filter_map(|t| t.started_at).min();
    rekey_plan::time_to_safe(plan, |i| {
        if states[i] != StepState::Succeeded {
            return None;
        }
        Some(millis(
            origin?,
            by_step.get(plan.steps[i].id.as_str())?.ended_at?,
        ))
    })
}
