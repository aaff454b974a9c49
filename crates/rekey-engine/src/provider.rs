//! The provider interface: what the engine asks of AWS, GitHub, a database, or the simulator.
//!
//! Values that may be secret travel as [`Value::Secret`] (a `secrecy::SecretString`): their
//! `Debug` is redacted and they are never serialized. Only [`Value::Plain`] outputs are stored.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rekey_plan::{PlannedCredential, PlannedStep};
use secrecy::{ExposeSecret, SecretString};

/// An input or output value.
#[derive(Clone)]
pub enum Value {
    Plain(String),
    Secret(SecretString),
}

impl Value {
    pub fn secret(s: impl Into<String>) -> Self {
        Self::Secret(SecretString::from(s.into()))
    }

    /// The text of a value; for secrets this is the one greppable place where it is revealed.
    pub fn expose(&self) -> &str {
        match self {
            Self::Plain(s) => s,
            Self::Secret(s) => s.expose_secret(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(s) => write!(f, "{s:?}"),
            Self::Secret(_) => f.write_str("[REDACTED]"),
        }
    }
}

/// Named values (inputs or outputs of a step).
pub type Values = BTreeMap<String, Value>;

/// Splits outputs into the storable part (plain values as JSON) and the secret part.
pub fn plain_json(values: &Values) -> String {
    let plain: BTreeMap<&str, &str> = values
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Plain(s) => Some((k.as_str(), s.as_str())),
            Value::Secret(_) => None,
        })
        .collect();
    serde_json::to_string(&plain).expect("strings serialize")
}

/// One call of a step.
pub struct Call<'a> {
    pub run_id: &'a str,
    pub step: &'a PlannedStep,
    pub credential: &'a PlannedCredential,
    pub inputs: &'a Values,
    /// Stable for (run, step): providers that accept an idempotency token get this one.
    pub idempotency_key: &'a str,
    pub attempt: u32,
    /// A call of this step was made before this one, in this process or one before it (a
    /// crash, a pause, a resume): only then can a lost answer have left something behind, so a
    /// provider that cleans up after lost calls looks for leftovers only then (or when
    /// `attempt > 1`), never taking what someone else made meanwhile for one.
    pub tried_before: bool,
    /// What the call did or found beside its result; the engine audits it afterwards.
    pub reports: Reports,
}

/// Something a provider call did or found beside the step's own effect, for the audit log.
/// Ids and names only, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The audit event: `side_effect` or `provider_warning`.
    pub event: &'static str,
    /// The audit outcome: `ok` or `warning`.
    pub outcome: &'static str,
    pub detail: String,
}

/// Where a call puts its [`Report`]s. The engine writes them as audit events of the step
/// (with its credential) once the call returns, whatever it returned: a key deleted by a call
/// that then failed was still deleted.
#[derive(Debug, Default)]
pub struct Reports(Mutex<Vec<Report>>);

impl Reports {
    /// Something removed or moved that the step is not about: a key deleted to make room, an
    /// orphan of a lost call, a stale staging label moved aside.
    pub fn side_effect(&self, detail: impl Into<String>) {
        self.push("side_effect", "ok", detail.into());
    }

    /// A safety net that could not be used, or something unexpected that was found (keys the
    /// inventory does not name).
    pub fn warning(&self, detail: impl Into<String>) {
        self.push("provider_warning", "warning", detail.into());
    }

    fn push(&self, event: &'static str, outcome: &'static str, detail: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Report {
                event,
                outcome,
                detail,
            });
    }

    /// Everything reported so far, emptying the list.
    pub fn take(&self) -> Vec<Report> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Worth another try (timeouts, 5xx).
    Transient,
    /// 429 / throttling: wait at least this long.
    RateLimited(Option<Duration>),
    /// Will fail again (bad input, permission denied, a limit reached).
    Permanent,
    /// Cannot go on without an operator's answer (npm's one-time password): the step waits
    /// for one (`waiting_for_operator`, exit 3; a hidden prompt on a terminal, `resume --input
    /// STEP=PATH` otherwise) and is called again with it in its inputs as [`OPERATOR_INPUT`].
    /// The message is the question; the answer is never stored, audited or shown.
    NeedsInput,
}

/// The input under which a step that asked for an operator's answer ([`ErrorKind::NeedsInput`])
/// gets it on its next call, as a [`Value::Secret`]; the answer is only in memory, for that
/// call.
pub const OPERATOR_INPUT: &str = "operator_input";

/// A provider error. The message must never contain a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProviderError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// The step needs an operator's answer; `question` says which (never holds a secret).
    pub fn needs_input(question: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NeedsInput,
            message: question.into(),
        }
    }

    pub fn rate_limited(retry_after: Option<Duration>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::RateLimited(retry_after),
            message: message.into(),
        }
    }
}

/// What a provider found when asked about a step whose outcome was lost in a crash.
#[derive(Debug)]
pub enum Reconciled {
    /// The call took effect and its outputs are known again (no secret outputs).
    Done(Values),
    /// Nothing is left of it (anything it created has been removed): run it again.
    NotDone,
}

/// An operator's answer to a manual step.
pub enum OperatorAnswer {
    /// The value they created (for `manual.provide_secret`).
    Value(SecretString),
    /// They confirmed the step is done.
    Confirmed,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Whether this provider can carry out the step at all (e.g. a consumer type it has no
    /// connector for); checked for every step before a run starts. `Err` says what is missing.
    fn supports(&self, _step: &PlannedStep) -> Result<(), String> {
        Ok(())
    }

    /// How long this step may keep retrying, when the provider knows it needs longer than
    /// the run's budget (a verify of a value that takes a while to propagate). The run's
    /// budget still applies when it is longer.
    fn retry_budget(&self, _step: &PlannedStep) -> Option<Duration> {
        None
    }

    /// Checks, before a run changes anything, that what the step touches is there: a
    /// consumer's secret exists in its region, an env file exists (unless the inventory asks
    /// to create it). A typo must stop the run, not deliver the new value somewhere nobody
    /// reads while the old one is revoked.
    async fn preflight(&self, _step: &PlannedStep) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Performs the step. Must be idempotent for the same idempotency key. Anything removed
    /// beside the step's own effect goes to `call.reports` (this holds for `undo` and
    /// `reconcile` too).
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError>;

    /// How many ready steps like this one the provider can carry out in one request (GitHub's
    /// `POST /credentials/revoke` takes up to 1,000 tokens); `None`: one call per step. The
    /// engine gathers the steps of the same action that become ready within a short window
    /// and hands them to [`Provider::execute_batch`].
    fn batch_limit(&self, _step: &PlannedStep) -> Option<usize> {
        None
    }

    /// Carries out several steps of one action in as few requests as the API allows; one
    /// result per call, in order. Each result must be what `execute` would have answered for
    /// that call alone (idempotent per call, like `execute`).
    async fn execute_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        let mut out = Vec::with_capacity(calls.len());
        for c in calls {
            out.push(self.execute(c).await);
        }
        out
    }

    /// Reverses a step that succeeded (or partly ran and failed), best effort and idempotent.
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError>;

    /// After a crash, says whether a step that was started took effect, removing anything it
    /// created whose secret was lost (an orphan).
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError>;

    /// Reads again, after a crash lost it from memory, the value a capture step
    /// (`consumer.read_current`) read: the version its stored plain `outputs` pin (Secrets
    /// Manager's `VersionId`), never whatever the consumer holds now — by then that may be the
    /// new value, and revoking it would revoke the wrong one. `None` when the consumer keeps no
    /// earlier versions (an env file).
    async fn reread(
        &self,
        _call: &Call<'_>,
        _outputs: &Values,
    ) -> Result<Option<Values>, ProviderError> {
        Ok(None)
    }

    /// The run was abandoned by an operator: removes what the provider keeps only for this
    /// step of this run (AWS: its write-ahead marker on the IAM user) — never a credential or
    /// a delivered value. Called for every step that started; best effort.
    async fn abandon(&self, _call: &Call<'_>) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Reads back a delivered document from a consumer, to recover secrets lost with a crashed
    /// process. `None` when the consumer cannot be read.
    async fn read_back(
        &self,
        _call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        Ok(None)
    }
}
