//! Time-to-safe of a run: how long from its first step until exposure was closed, until every
//! replacement was in place, and until the run was done. One definition for the run summary,
//! `status --json`, the audit log and the reports.

use rekey_spec::Phase;
use serde::{Deserialize, Serialize};

use crate::{Plan, Strategy};

/// Seconds from the run's first step; `None` while not reached (or, for `disabled_after_s`,
/// when no credential of the run was revoked first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeToSafe {
    /// Every exposed (revoked-first) credential's revoke phase succeeded.
    pub disabled_after_s: Option<f64>,
    /// Every credential's last mint, deliver or verify step succeeded: each replacement is
    /// delivered and checked (a credential checked before delivery has no verify phase).
    pub replaced_after_s: Option<f64>,
    /// Every step succeeded.
    pub cleaned_after_s: Option<f64>,
}

impl TimeToSafe {
    /// `disabled after 4.2 s, replaced after 12.0 s, done after 15.3 s` (what is reached).
    pub fn summary(&self) -> Option<String> {
        let parts: Vec<String> = [
            ("disabled", self.disabled_after_s),
            ("replaced", self.replaced_after_s),
            ("done", self.cleaned_after_s),
        ]
        .into_iter()
        .filter_map(|(what, s)| s.map(|s| format!("{what} after {s:.1} s")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Whether step `i` closes exposure: it is in the revoke phase of a credential revoked first
/// (an exposed one). Time-to-safe's "disabled" waits for these; the engine runs them first.
pub fn closes_exposure(plan: &Plan, i: usize) -> bool {
    let step = &plan.steps[i];
    step.phase == Phase::Revoke
        && plan.credentials[step.credential as usize].strategy == Strategy::RevokeFirst
}

/// The figures of `plan`, given `end_ms(i)`: milliseconds from the run's first step until
/// step `i` succeeded (`None`: it has not).
pub fn time_to_safe(plan: &Plan, end_ms: impl Fn(usize) -> Option<i64>) -> TimeToSafe {
    // The latest end over `steps`, or `None` when one of them has not succeeded.
    let all = |steps: &mut dyn Iterator<Item = usize>| -> Option<Option<i64>> {
        let mut last = None;
        for i in steps {
            last = last.max(Some(end_ms(i)?));
        }
        Some(last)
    };
    #[allow(clippy::cast_precision_loss)] // milliseconds of a run, far below 2^52
    let secs = |ms: Option<Option<i64>>| ms.flatten().map(|ms| ms as f64 / 1000.0);
    let exposed: Vec<usize> = (0..plan.steps.len())
        .filter(|&s| closes_exposure(plan, s))
        .collect();
    let replaced = plan.credentials.iter().map(|c| {
        c.steps
            .iter()
            .map(|&s| s as usize)
            .filter(|&s| {
                matches!(
                    plan.steps[s].phase,
                    Phase::Mint | Phase::Deliver | Phase::Verify
                )
            })
            .collect::<Vec<_>>()
    });
    TimeToSafe {
        disabled_after_s: secs(all(&mut exposed.into_iter())),
        replaced_after_s: secs(all(&mut replaced.flatten())),
        cleaned_after_s: secs(all(&mut (0..plan.steps.len()))),
    }
}
