//! The scorecard's time-to-safe: the whole inventory planned as an incident (every credential
//! exposed), scheduled by `rekey_plan::estimate` with step durations measured in history.

use std::collections::BTreeMap;
use std::time::Duration;

use rekey_plan::estimate::{Limits, StepCost, default_cost, estimate};
use rekey_plan::{PlanRequest, PlannedStep, Selection};
use rekey_spec::{Effect, Inventory, Mode, Runbooks};
use rekey_store::Rotation;

use crate::scorecard::{Pole, TimeToSafeEstimate};

/// Medians per action over successful real rotations: `(work ms, human ms)`. Rehearsals do
/// not count: a simulated call's time is whatever `--latency` said.
fn measured(rows: &[Rotation]) -> BTreeMap<String, (u64, u64)> {
    let mut by: BTreeMap<&str, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.rotated() && !r.simulated) {
        for s in &r.steps {
            let e = by.entry(s.action.as_str()).or_default();
            e.0.push(s.ms);
            e.1.push(s.human_ms);
        }
    }
    by.into_iter()
        .map(|(action, (mut work, mut human))| {
            work.sort_unstable();
            human.sort_unstable();
            let pick = |v: &[i64]| u64::try_from(v[v.len() / 2]).unwrap_or(0);
            (action.to_owned(), (pick(&work), pick(&human)))
        })
        .collect()
}

/// The cost of `step`: its measured median where history has one, else the documented
/// default. A measured time past the default's call time is counted as waiting that holds no
/// slot (the engine's retries of a key still propagating), not as work.
fn cost(step: &PlannedStep, measured: &BTreeMap<String, (u64, u64)>) -> StepCost {
    let default = default_cost(step);
    let Some(&(work, human)) = measured.get(&step.action) else {
        return default;
    };
    let work = Duration::from_millis(work);
    let human = if step.effect == Effect::Human && human == 0 {
        default.human
    } else {
        Duration::from_millis(human)
    };
    let call = if default.propagation.is_zero() {
        work
    } else {
        work.min(default.work)
    };
    StepCost {
        work: call,
        propagation: work.saturating_sub(call),
        human,
    }
}

/// Time-to-safe of `inv` (every credential exposed), or why it cannot be estimated.
pub fn time_to_safe(
    inv: &Inventory,
    runbooks: &Runbooks,
    rows: &[Rotation],
    concurrency: usize,
    per_provider: usize,
) -> Result<TimeToSafeEstimate, String> {
    if inv.credentials.is_empty() {
        return Err("the inventory is empty".into());
    }
    let plan = rekey_plan::compile(&PlanRequest {
        inventory: inv,
        runbooks,
        selection: &Selection::default(),
        mode: Mode::Incident,
        exposed: None,
    })
    .map_err(|e| {
        format!("the whole inventory does not plan as an incident ({e}); see `rekey plan --mode incident`")
    })?;
    let measured = measured(rows);
    let limits = Limits {
        concurrency,
        per_provider,
        ..Limits::documented()
    };
    let e = estimate(&plan, &|s| cost(s, &measured), &limits);
    let actions: std::collections::BTreeSet<&str> =
        plan.steps.iter().map(|s| s.action.as_str()).collect();
    let measured_actions = actions
        .iter()
        .filter(|a| measured.contains_key(**a))
        .count();
    let pole = |p: &rekey_plan::estimate::Pole| Pole {
        credential: p.credential.clone(),
        kind: p.kind.as_str().to_owned(),
        done_after_s: p.done_after.as_secs_f64(),
        why: p
            .reasons
            .iter()
            .take(2)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    };
    Ok(TimeToSafeEstimate {
        disabled_after_s: e.disabled_after.map(|d| d.as_secs_f64()),
        replaced_after_s: e.replaced_after.map(|d| d.as_secs_f64()),
        cleaned_after_s: Some(e.cleaned_after.as_secs_f64()),
        summary: e.summary(),
        long_pole: e.long_pole.as_ref().map(pole),
        dominant: e.dominant.iter().map(pole).collect(),
        measured_actions,
        default_actions: actions.len() - measured_actions,
    })
}
