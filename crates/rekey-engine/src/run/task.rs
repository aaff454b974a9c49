//! One step's task: its write-ahead records through the group-commit writer, its provider
//! call with retries by time, and what it reports.

use std::sync::Arc;
use std::time::Duration;

use rekey_plan::PlannedStep;
use rekey_spec::Effect;
use rekey_store::{AuditDraft, StepEvent, StepState, Store, StoreError, Transition};
use secrecy::SecretString;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::fingerprint::Fingerprinter;
use crate::provider::{
    Call, ErrorKind, OPERATOR_INPUT, Provider, ProviderError, Reports, Value, Values, plain_json,
};
use crate::sim::crash_point;

use super::{EngineConfig, Observer, TaskResult, idempotency_key};

/// A step transition waiting for the group-commit writer.
pub(super) struct WriteReq {
    pub(super) run_id: String,
    pub(super) idx: i64,
    pub(super) from: StepState,
    pub(super) event: StepEvent,
    pub(super) outputs_json: Option<String>,
    pub(super) error: Option<String>,
    pub(super) audit: AuditDraft,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<StepState, StoreError>>,
}

/// Commits the transitions of all steps in flight together: one transaction per batch instead
/// of one per transition. Each task still waits for its own commit before going on, so
/// `started` is durable before the call and `succeeded` before dependents start.
pub(super) async fn writer(
    store: Arc<Store>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<WriteReq>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let ts: Vec<Transition<'_>> = batch
            .iter()
            .map(|r| Transition {
                run_id: &r.run_id,
                idx: r.idx,
                from: r.from,
                event: r.event,
                outputs_json: r.outputs_json.as_deref(),
                error: r.error.as_deref(),
                bump_attempts: r.event == StepEvent::Start,
                audit: Some(r.audit.clone()),
            })
            .collect();
        let results = store.transitions(&ts).await;
        drop(ts);
        match results {
            Ok(results) => {
                for (req, res) in batch.into_iter().zip(results) {
                    let _ = req.reply.send(res);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for req in batch {
                    let _ = req.reply.send(Err(StoreError::Corrupt(msg.clone())));
                }
            }
        }
    }
}

/// Everything one step task needs, owned so the task can outlive the scheduler's borrow.
pub(crate) struct TaskCtx {
    /// Calls in flight, across providers and per provider.
    pub(crate) calls: Arc<Semaphore>,
    pub(crate) provider_slots: Arc<Semaphore>,
    /// Step tasks in flight, and this task's slot: given back while it waits to retry.
    pub(crate) tasks: Arc<Semaphore>,
    pub(super) task_slot: tokio::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    pub(super) store: Arc<Store>,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    pub(super) writer: tokio::sync::mpsc::UnboundedSender<WriteReq>,
    pub(super) fingerprints: Arc<Fingerprinter>,
    pub(crate) config: EngineConfig,
    pub(super) simulated: bool,
    pub(crate) run_id: String,
    pub(crate) step: PlannedStep,
    pub(crate) credential: rekey_plan::PlannedCredential,
    pub(crate) from: StepState,
    pub(crate) idx: usize,
    /// See [`Call::tried_before`].
    pub(crate) tried_before: bool,
}

/// What a step's call came to, ready to be recorded.
pub(crate) struct Outcome {
    pub(crate) event: StepEvent,
    pub(crate) outputs: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) audit: AuditDraft,
    pub(crate) result: TaskResult,
}

/// A transition queued for the group-commit writer.
pub(crate) type Sent =
    Result<tokio::sync::oneshot::Receiver<Result<StepState, StoreError>>, StoreError>;

impl TaskCtx {
    pub(crate) fn audit(&self, event: &str, outcome: &str) -> AuditDraft {
        AuditDraft {
            run_id: Some(self.run_id.clone()),
            actor: self.config.actor.clone(),
            reason: self.config.reason.clone(),
            credential: Some(self.credential.id.clone()),
            step: Some(self.step.id.clone()),
            action: Some(self.step.action.clone()),
            event: event.to_owned(),
            outcome: outcome.to_owned(),
            detail: None,
            fingerprint: None,
            simulated: self.simulated,
        }
    }

    pub(super) async fn write(
        &self,
        from: StepState,
        event: StepEvent,
        outputs: Option<&str>,
        error: Option<&str>,
        audit: AuditDraft,
    ) -> Result<StepState, StoreError> {
        Self::written(self.send(from, event, outputs, error, audit)).await
    }

    /// Queues a transition without waiting for its commit: a batch queues all of its steps'
    /// before waiting, so they share one transaction.
    pub(crate) fn send(
        &self,
        from: StepState,
        event: StepEvent,
        outputs: Option<&str>,
        error: Option<&str>,
        audit: AuditDraft,
    ) -> Sent {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let req = WriteReq {
            run_id: self.run_id.clone(),
            idx: i64::try_from(self.idx).expect("few steps"),
            from,
            event,
            outputs_json: outputs.map(str::to_owned),
            error: error.map(str::to_owned),
            audit,
            reply,
        };
        self.writer.send(req).map_err(|_| writer_stopped())?;
        Ok(rx)
    }

    /// Waits for the commit of a transition queued by [`Self::send`].
    pub(crate) async fn written(sent: Sent) -> Result<StepState, StoreError> {
        sent?.await.map_err(|_| writer_stopped())?
    }

    /// The record of a call's result: `succeeded` with its plain outputs and keyed
    /// fingerprints of its secrets, or `failed` with the error.
    pub(crate) fn outcome(&self, result: Result<Values, ProviderError>) -> Outcome {
        match result {
            Ok(values) => {
                let json = plain_json(&values);
                let mut a = self.audit("step_succeeded", "ok");
                // Evidence without values: keyed fingerprints of secrets, plain outputs as detail.
                let prints: Vec<String> = values
                    .iter()
                    .filter(|(_, v)| v.is_secret())
                    .map(|(k, v)| format!("{k}={}", self.fingerprints.fingerprint(v.expose())))
                    .collect();
                if !prints.is_empty() {
                    a.fingerprint = Some(prints.join(","));
                }
                if json != "{}" {
                    a.detail = Some(json.clone());
                }
                Outcome {
                    event: StepEvent::Succeed,
                    outputs: Some(json),
                    error: None,
                    audit: a,
                    result: TaskResult::Succeeded(values),
                }
            }
            Err(e) => {
                let mut a = self.audit("step_failed", "error");
                a.detail = Some(e.message.clone());
                Outcome {
                    event: StepEvent::Fail,
                    outputs: None,
                    error: Some(e.message.clone()),
                    audit: a,
                    result: TaskResult::Failed(e.message),
                }
            }
        }
    }

    /// Audits what a call reported (see [`Reports`]) as events of this step.
    pub(crate) async fn audit_reports(&self, reports: &Reports) -> Result<(), StoreError> {
        for r in reports.take() {
            log_report(&self.step, &r);
            let mut a = self.audit(r.event, r.outcome);
            a.detail = Some(r.detail);
            self.store.append_audit(a).await?;
        }
        Ok(())
    }

    /// Audits a try that will be made again.
    pub(crate) async fn audit_retry(&self, detail: String) -> Result<(), StoreError> {
        let mut a = self.audit("step_retry", "retry");
        a.detail = Some(detail);
        self.store.append_audit(a).await
    }

    pub(super) async fn run(
        self,
        provider: Option<Arc<dyn Provider>>,
        inputs: Values,
        operator: Option<SecretString>,
    ) -> TaskResult {
        match self.run_inner(provider, inputs, operator).await {
            Ok(r) => r,
            // The state store itself failed: the run cannot record progress, so it must stop.
            Err(e) => TaskResult::Failed(format!("state store: {e}")),
        }
    }

    pub(super) async fn run_inner(
        self,
        provider: Option<Arc<dyn Provider>>,
        inputs: Values,
        operator: Option<SecretString>,
    ) -> Result<TaskResult, StoreError> {
        // Write-ahead: `started` is durable before anything is called.
        let started = self
            .write(
                self.from,
                StepEvent::Start,
                None,
                None,
                self.audit("step_started", "ok"),
            )
            .await?;
        crash_point(self.config.crash_at);
        let key = idempotency_key(&self.run_id, &self.step.id);

        let result: Result<Values, ProviderError> = match provider {
            None => {
                // A manual step in a real run: the operator's answer, or wait for it.
                if let Some(v) = operator {
                    Ok(self
                        .step
                        .outputs
                        .iter()
                        .filter(|o| o.secret)
                        .map(|o| (o.name.clone(), Value::Secret(v.clone())))
                        .collect())
                } else {
                    let mut a = self.audit("waiting_for_operator", "paused");
                    a.detail = self
                        .step
                        .manual
                        .as_ref()
                        .map(|m| m.instructions.to_string());
                    self.write(started, StepEvent::Wait, None, None, a).await?;
                    return Ok(TaskResult::Waiting);
                }
            }
            Some(p) => {
                // An answer to a question the provider asked (an OTP): in memory, this call only.
                let mut inputs = inputs;
                if let Some(v) = operator {
                    inputs.insert(OPERATOR_INPUT.to_owned(), Value::Secret(v));
                }
                let r = self.call_with_retries(p.as_ref(), &inputs, &key).await?;
                if let Err(e) = &r
                    && e.kind == ErrorKind::NeedsInput
                {
                    // The provider needs an operator's answer: wait for it, like a manual step.
                    let mut a = self.audit("waiting_for_operator", "paused");
                    a.detail = Some(e.message.clone());
                    self.write(started, StepEvent::Wait, None, Some(&e.message), a)
                        .await?;
                    return Ok(TaskResult::Waiting);
                }
                r
            }
        };
        crash_point(self.config.crash_at);
        let o = self.outcome(result);
        let succeeded = matches!(o.result, TaskResult::Succeeded(_));
        self.write(
            started,
            o.event,
            o.outputs.as_deref(),
            o.error.as_deref(),
            o.audit,
        )
        .await?;
        if succeeded {
            crash_point(self.config.crash_at);
        }
        Ok(o.result)
    }

    /// The slots one provider request holds: its provider's first, then a call slot (a call
    /// waiting for a busy provider must not hold a call slot another provider's step could
    /// use). Single steps and batches both take them here, so the order is the same everywhere.
    pub(crate) async fn call_slots(&self) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        let provider = Arc::clone(&self.provider_slots)
            .acquire_owned()
            .await
            .expect("semaphore open");
        let call = Arc::clone(&self.calls)
            .acquire_owned()
            .await
            .expect("semaphore open");
        (provider, call)
    }

    /// Calls the provider until it answers, a permanent error, or the retry budget is spent.
    /// A call holds a slot of the global and the provider's limit; a wait between tries holds
    /// none (not even the task's), so a provider in an outage does not stall the others.
    /// Each retry is audited and shown; `Err` only when the state store fails.
    pub(super) async fn call_with_retries(
        &self,
        p: &dyn Provider,
        inputs: &Values,
        key: &str,
    ) -> Result<Result<Values, ProviderError>, StoreError> {
        let budget = p
            .retry_budget(&self.step)
            .map_or(self.config.retry_budget, |b| {
                b.max(self.config.retry_budget)
            });
        let began = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            let call = Call {
                run_id: &self.run_id,
                step: &self.step,
                credential: &self.credential,
                inputs,
                idempotency_key: key,
                attempt,
                tried_before: self.tried_before,
                reports: Reports::default(),
            };
            let timeout = if self.step.effect == Effect::Human {
                Duration::from_hours(24)
            } else {
                self.config.step_timeout
            };
            let permits = self.call_slots().await;
            if self.config.repeat_calls {
                let _ = tokio::time::timeout(timeout, p.execute(&call)).await;
            }
            let result = match tokio::time::timeout(timeout, p.execute(&call)).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::transient(format!(
                    "timed out after {}s",
                    timeout.as_secs()
                ))),
            };
            drop(permits);
            self.audit_reports(&call.reports).await?;
            let err = match result {
                Ok(v) => return Ok(Ok(v)),
                Err(e) => e,
            };
            let (kind, retry_after) = match &err.kind {
                ErrorKind::Permanent | ErrorKind::NeedsInput => return Ok(Err(err)),
                ErrorKind::Transient => ("transient", None),
                ErrorKind::RateLimited(after) => ("rate limited", *after),
            };
            let wait = backoff(&self.config, attempt, retry_after);
            let spent = began.elapsed();
            if spent + wait > budget {
                return Ok(Err(ProviderError {
                    message: format!(
                        "{} (gave up after {attempt} attempts in {:.1}s: the retry budget is {}s)",
                        err.message,
                        spent.as_secs_f64(),
                        budget.as_secs()
                    ),
                    ..err
                }));
            }
            let detail = format!(
                "attempt {attempt} {kind}: {}; next try in {:.1}s",
                err.message,
                wait.as_secs_f64()
            );
            self.audit_retry(detail.clone()).await?;
            if let Some(o) = &self.observer {
                o.message(&format!(
                    "{} waiting: {detail} (next try at {})",
                    self.step.id,
                    next_try_at(wait)
                ));
            }
            sleep_without_slot(&self.task_slot, &self.tasks, wait).await;
            attempt += 1;
        }
    }
}

pub(super) fn writer_stopped() -> StoreError {
    StoreError::Corrupt("the state writer stopped".into())
}

/// A provider's report on the log too: a warning shows in the run's output.
pub(super) fn log_report(step: &PlannedStep, r: &crate::provider::Report) {
    if r.event == "side_effect" {
        tracing::info!(step = %step.id, "{}", r.detail);
    } else {
        tracing::warn!(step = %step.id, "{}", r.detail);
    }
}

/// When a try `wait` from now happens, for people: `HH:MM:SS UTC`.
pub(crate) fn next_try_at(wait: Duration) -> String {
    let until = jiff::Timestamp::now()
        + jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::ZERO);
    until.strftime("%H:%M:%S UTC").to_string()
}

/// Waits between tries without holding a task slot (other steps run meanwhile), then takes
/// one back into `slot`.
pub(crate) async fn sleep_without_slot(
    slot: &tokio::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    tasks: &Arc<Semaphore>,
    wait: Duration,
) {
    drop(slot.lock().await.take());
    tokio::time::sleep(wait).await;
    *slot.lock().await = Some(
        Arc::clone(tasks)
            .acquire_owned()
            .await
            .expect("semaphore open"),
    );
}

/// Exponential backoff with full jitter, never shorter than a server's Retry-After.
pub(crate) fn backoff(
    config: &EngineConfig,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = config
        .backoff_base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(config.backoff_max);
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).expect("the OS has randomness");
    let jitter = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
    let d = exp.mul_f64(0.5 + jitter / 2.0);
    retry_after.map_or(d, |ra| d.max(ra))
}
