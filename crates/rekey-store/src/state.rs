//! The persisted state machines of steps and runs.
//!
//! As in steno's saga log, every change is one `(state, event)` pair checked by
//! [`StepState::next`]; anything else is an illegal transition and is rejected before it is
//! written.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    /// Written before the provider is called: after a crash the outcome is unknown and the
    /// step is reconciled with the provider.
    Started,
    Succeeded,
    Failed,
    WaitingForOperator,
    UndoStarted,
    Undone,
    /// An undo failed: a distinct, loud terminal state an operator must resolve.
    UndoFailed,
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent {
    Start,
    Succeed,
    Fail,
    /// A manual step waits for its operator.
    Wait,
    /// Reconciliation found the call never took effect: run it again.
    Retry,
    UndoStart,
    UndoFinish,
    UndoFail,
    /// A rolled-back step is run again (its secret output was lost with a crashed process).
    Redo,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal step transition: {event:?} in state {from}")]
pub struct IllegalTransition {
    pub from: StepState,
    pub event: StepEvent,
}

impl StepState {
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Started,
        Self::Succeeded,
        Self::Failed,
        Self::WaitingForOperator,
        Self::UndoStarted,
        Self::Undone,
        Self::UndoFailed,
    ];

    pub fn next(self, event: StepEvent) -> Result<Self, IllegalTransition> {
        use StepEvent as E;
        use StepState as S;
        let to = match (self, event) {
            (S::Pending | S::WaitingForOperator, E::Start) => S::Started,
            (S::Started, E::Succeed) => S::Succeeded,
            (S::Started, E::Fail) => S::Failed,
            (S::Started, E::Wait) => S::WaitingForOperator,
            // Reconciliation found nothing done, or an operator resumes a stopped run.
            (S::Started | S::Failed, E::Retry) | (S::Undone, E::Redo) => S::Pending,
            (S::Succeeded | S::Failed | S::UndoStarted, E::UndoStart) => S::UndoStarted,
            (S::UndoStarted, E::UndoFinish) => S::Undone,
            (S::UndoStarted, E::UndoFail) => S::UndoFailed,
            (from, event) => return Err(IllegalTransition { from, event }),
        };
        Ok(to)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::WaitingForOperator => "waiting_for_operator",
            Self::UndoStarted => "undo_started",
            Self::Undone => "undone",
            Self::UndoFailed => "undo_failed",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown step state `{s}`"))
    }
}

/// A run's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// A manual step waits for its operator (exit code 3).
    Paused,
    Succeeded,
    /// Failed before its irreversible steps and rolled back.
    Failed,
    /// Stopped after an irreversible step, or an undo failed: a person must look.
    NeedsOperator,
    Abandoned,
}

impl RunStatus {
    pub const ALL: [Self; 6] = [
        Self::Running,
        Self::Paused,
        Self::Succeeded,
        Self::Failed,
        Self::NeedsOperator,
        Self::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::NeedsOperator => "needs_operator",
            Self::Abandoned => "abandoned",
        }
    }

    /// Terminal runs hold no credential locks.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Abandoned)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown run status `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_paths() {
        use StepEvent as E;
        let s = StepState::Pending.next(E::Start).unwrap();
        assert_eq!(s.next(E::Succeed).unwrap(), StepState::Succeeded);
        assert_eq!(s.next(E::Retry).unwrap(), StepState::Pending);
        let undone = StepState::Succeeded
            .next(E::UndoStart)
            .and_then(|s| s.next(E::UndoFinish))
            .unwrap();
        assert_eq!(undone, StepState::Undone);
        assert_eq!(undone.next(E::Redo).unwrap(), StepState::Pending);
    }

    #[test]
    fn illegal_transitions_are_rejected() {
        use StepEvent as E;
        for (from, event) in [
            (StepState::Pending, E::Succeed),
            (StepState::Succeeded, E::Start),
            (StepState::Undone, E::Succeed),
            (StepState::UndoFailed, E::UndoStart),
            (StepState::Pending, E::UndoStart),
        ] {
            assert_eq!(from.next(event), Err(IllegalTransition { from, event }));
        }
    }
}
