//! Coalescing steps into one provider request: GitHub's `POST /credentials/revoke` takes 1,000
//! tokens a call and allows 60 calls an hour, so an incident over 2,000 tokens must not make
//! 2,000 calls.
//!
//! The scheduler hands ready steps whose provider answers [`Provider::batch_limit`] to a
//! [`Gathering`] instead of starting them; a group of one (provider, action) is sent as one
//! [`BatchTask`] once it is full, once every step of that action still to run is in it, once
//! nothing in flight could add one, or once no step joined it for the window. Each step of a
//! batch still has its own write-ahead record, outcome, audit rows and crash points; only the
//! call (and its call slots) is shared.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rekey_plan::Plan;
use rekey_store::{StepEvent, StepState, StoreError};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::provider::{Call, ErrorKind, Provider, ProviderError, Reports, Values};
use crate::run::{TaskCtx, TaskResult, backoff, idempotency_key, next_try_at, sleep_without_slot};
use crate::sim::crash_point;

/// Steps gathered per (provider, action).
struct Group {
    members: Vec<usize>,
    first: Instant,
    last: Instant,
}

struct Key {
    limit: usize,
    /// Every step of this key in the plan.
    steps: Vec<usize>,
    /// Steps of this key that may still become ready (not gathered yet, not finished).
    to_come: usize,
    group: Option<Group>,
}

/// The batchable steps of a run and the groups being gathered.
pub(crate) struct Gathering {
    key_of: Vec<Option<usize>>,
    /// Steps that joined a group (whatever became of them since).
    joined: Vec<bool>,
    keys: Vec<Key>,
    window: Duration,
    max_wait: Duration,
}

impl Gathering {
    /// `limit(i)`: how many steps like step `i` its provider takes in one request, if more
    /// than one.
    pub(crate) fn new(
        plan: &Plan,
        state: &[StepState],
        limit: impl Fn(usize) -> Option<usize>,
        window: Duration,
        max_wait: Duration,
    ) -> Self {
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        let mut keys: Vec<Key> = Vec::new();
        let mut key_of = vec![None; plan.steps.len()];
        for (i, s) in plan.steps.iter().enumerate() {
            let Some(n) = limit(i).filter(|&n| n > 1) else {
                continue;
            };
            let k = *index
                .entry((s.provider.as_str(), s.action.as_str()))
                .or_insert_with(|| {
                    keys.push(Key {
                        limit: n,
                        steps: Vec::new(),
                        to_come: 0,
                        group: None,
                    });
                    keys.len() - 1
                });
            keys[k].limit = keys[k].limit.min(n);
            if matches!(state[i], StepState::Pending | StepState::WaitingForOperator) {
                keys[k].to_come += 1;
            }
            keys[k].steps.push(i);
            key_of[i] = Some(k);
        }
        Self {
            joined: vec![false; plan.steps.len()],
            key_of,
            keys,
            window,
            max_wait,
        }
    }

    pub(crate) fn is_batched(&self, i: usize) -> bool {
        self.key_of.get(i).is_some_and(Option::is_some)
    }

    /// Step `i` is ready: it waits in its group.
    pub(crate) fn join(&mut self, i: usize, now: Instant) {
        let k = self.key_of[i].expect("a batchable step");
        self.joined[i] = true;
        let key = &mut self.keys[k];
        key.to_come = key.to_come.saturating_sub(1);
        let g = key.group.get_or_insert(Group {
            members: Vec::new(),
            first: now,
            last: now,
        });
        g.members.push(i);
        g.last = now;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.iter().all(|k| k.group.is_none())
    }

    /// Drops every gathered step (they stay pending): the run's lease was lost.
    pub(crate) fn clear(&mut self) {
        for k in &mut self.keys {
            k.group = None;
        }
    }

    fn deadline(&self, g: &Group) -> Instant {
        (g.last + self.window).min(g.first + self.max_wait)
    }

    /// A group to send now: full, holding every step of its action still to come, waiting
    /// for `max_wait`, `idle` (nothing in flight or ready could add a step to it), or quiet for
    /// the window. `coming(i)`: whether step `i`, not gathered yet, is on its way (its
    /// credential has a step in flight); while one is, the quiet window starts again, so a
    /// busy engine (a batch's thousand records being written) does not split a batch.
    /// `want(first member)` narrows the groups looked at (those that close exposure).
    pub(crate) fn due(
        &mut self,
        now: Instant,
        idle: bool,
        coming: impl Fn(usize) -> bool,
        want: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        for (k, key) in self.keys.iter_mut().enumerate() {
            let Some(g) = key.group.as_mut() else {
                continue;
            };
            if !g.members.first().is_some_and(|&i| want(i)) {
                continue;
            }
            if idle
                || key.to_come == 0
                || g.members.len() >= key.limit
                || now >= g.first + self.max_wait
            {
                return Some(k);
            }
            if now >= g.last + self.window {
                if key.steps.iter().any(|&i| !self.joined[i] && coming(i)) {
                    g.last = now;
                    continue;
                }
                return Some(k);
            }
        }
        None
    }

    /// When the first group's window closes.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.keys
            .iter()
            .filter_map(|k| k.group.as_ref().map(|g| self.deadline(g)))
            .min()
    }

    /// Up to a request's worth of the group's steps, in the order they became ready.
    pub(crate) fn take(&mut self, k: usize) -> Vec<usize> {
        let key = &mut self.keys[k];
        let Some(g) = key.group.as_mut() else {
            return Vec::new();
        };
        if g.members.len() <= key.limit {
            return key.group.take().map(|g| g.members).unwrap_or_default();
        }
        let rest = g.members.split_off(key.limit);
        std::mem::replace(&mut g.members, rest)
    }
}

/// Steps of one action carried out by one request per try.
pub(crate) struct BatchTask {
    /// Each step with its resolved inputs; their own `task_slot`s are empty.
    pub(crate) members: Vec<(TaskCtx, Values)>,
    /// The batch's one task slot, given back while it waits to retry.
    pub(crate) task_slot: tokio::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

impl BatchTask {
    pub(crate) async fn run(self, p: Arc<dyn Provider>) -> Vec<(usize, TaskResult)> {
        let n = self.members.len();
        let mut results: Vec<Option<TaskResult>> = (0..n).map(|_| None).collect();
        let crash_at = self.members[0].0.config.crash_at;
        // Write-ahead: every `started` is durable before the call, in one group commit.
        let sent: Vec<_> = self
            .members
            .iter()
            .map(|(m, _)| {
                m.send(
                    m.from,
                    StepEvent::Start,
                    None,
                    None,
                    m.audit("step_started", "ok"),
                )
            })
            .collect();
        let mut started: Vec<Option<StepState>> = vec![None; n];
        for (k, s) in sent.into_iter().enumerate() {
            match TaskCtx::written(s).await {
                Ok(state) => started[k] = Some(state),
                Err(e) => results[k] = Some(TaskResult::Failed(format!("state store: {e}"))),
            }
        }
        let live: Vec<usize> = (0..n).filter(|&k| started[k].is_some()).collect();
        for _ in &live {
            crash_point(crash_at);
        }
        let answers = match self.call_with_retries(p.as_ref(), &live).await {
            Ok(a) => a,
            Err(e) => {
                // The state store failed: nothing more can be recorded.
                for &k in &live {
                    results[k] = Some(TaskResult::Failed(format!("state store: {e}")));
                }
                return Self::collect(&self.members, results);
            }
        };
        for _ in &live {
            crash_point(crash_at);
        }
        let mut sent = Vec::with_capacity(answers.len());
        for (k, answer) in answers {
            let (m, _) = &self.members[k];
            let o = m.outcome(answer);
            let from = started[k].expect("started");
            sent.push((
                k,
                m.send(
                    from,
                    o.event,
                    o.outputs.as_deref(),
                    o.error.as_deref(),
                    o.audit,
                ),
                o.result,
            ));
        }
        let mut succeeded = 0;
        for (k, s, result) in sent {
            results[k] = Some(match TaskCtx::written(s).await {
                Ok(_) => {
                    succeeded += usize::from(matches!(result, TaskResult::Succeeded(_)));
                    result
                }
                Err(e) => TaskResult::Failed(format!("state store: {e}")),
            });
        }
        for _ in 0..succeeded {
            crash_point(crash_at);
        }
        Self::collect(&self.members, results)
    }

    fn collect(
        members: &[(TaskCtx, Values)],
        results: Vec<Option<TaskResult>>,
    ) -> Vec<(usize, TaskResult)> {
        members
            .iter()
            .zip(results)
            .map(|((m, _), r)| {
                (
                    m.idx,
                    r.unwrap_or_else(|| TaskResult::Failed("not called".into())),
                )
            })
            .collect()
    }

    /// Like [`TaskCtx`]'s single call: one request per try for the steps still without an
    /// answer; steps answered transiently (or rate limited) are tried again together after
    /// the longest wait any of them was asked for, each within its own retry budget; a
    /// permanent error ends only its own step. `Err` only when the state store fails.
    #[allow(clippy::too_many_lines)]
    async fn call_with_retries(
        &self,
        p: &dyn Provider,
        live: &[usize],
    ) -> Result<Vec<(usize, Result<Values, ProviderError>)>, StoreError> {
        let first = &self.members[0].0;
        let config = &first.config;
        let keys: Vec<String> = self
            .members
            .iter()
            .map(|(m, _)| idempotency_key(&m.run_id, &m.step.id))
            .collect();
        let budgets: Vec<Duration> = self
            .members
            .iter()
            .map(|(m, _)| {
                p.retry_budget(&m.step)
                    .map_or(config.retry_budget, |b| b.max(config.retry_budget))
            })
            .collect();
        let began = Instant::now();
        let mut answers = Vec::with_capacity(live.len());
        let mut pending: Vec<usize> = live.to_vec();
        let mut attempt = 1;
        while !pending.is_empty() {
            let calls: Vec<Call<'_>> = pending
                .iter()
                .map(|&k| {
                    let (m, inputs) = &self.members[k];
                    Call {
                        run_id: &m.run_id,
                        step: &m.step,
                        credential: &m.credential,
                        inputs,
                        idempotency_key: &keys[k],
                        attempt,
                        tried_before: m.tried_before,
                        reports: Reports::default(),
                    }
                })
                .collect();
            // One request: the slots of one call.
            let permits = first.call_slots().await;
            if config.repeat_calls {
                let _ = tokio::time::timeout(config.step_timeout, p.execute_batch(&calls)).await;
            }
            let mut got = tokio::time::timeout(config.step_timeout, p.execute_batch(&calls))
                .await
                .unwrap_or_else(|_| {
                    let e = ProviderError::transient(format!(
                        "timed out after {}s",
                        config.step_timeout.as_secs()
                    ));
                    vec![Err(e); calls.len()]
                });
            drop(permits);
            if got.len() != calls.len() {
                // Which call an answer belongs to is unknown: none of them can be trusted.
                let e = ProviderError::permanent(format!(
                    "the provider answered {} results for a request of {} steps",
                    got.len(),
                    calls.len()
                ));
                got = vec![Err(e); calls.len()];
            }
            // Reports are audited per step, whatever the request answered.
            for (call, &k) in calls.iter().zip(&pending) {
                self.members[k].0.audit_reports(&call.reports).await?;
            }
            drop(calls);
            let mut again: Vec<(usize, ProviderError)> = Vec::new();
            let mut retry_after: Option<Duration> = None;
            let mut kind = "transient";
            for (&k, r) in pending.iter().zip(got) {
                match r {
                    Ok(v) => answers.push((k, Ok(v))),
                    Err(e) => match e.kind {
                        ErrorKind::Permanent | ErrorKind::NeedsInput => answers.push((k, Err(e))),
                        ErrorKind::Transient => again.push((k, e)),
                        ErrorKind::RateLimited(after) => {
                            kind = "rate limited";
                            retry_after = retry_after.max(after);
                            again.push((k, e));
                        }
                    },
                }
            }
            pending.clear();
            if again.is_empty() {
                break;
            }
            let wait = backoff(config, attempt, retry_after);
            let spent = began.elapsed();
            for (k, err) in again {
                let (m, _) = &self.members[k];
                if spent + wait > budgets[k] {
                    let message = format!(
                        "{} (gave up after {attempt} attempts in {:.1}s: the retry budget is {}s)",
                        err.message,
                        spent.as_secs_f64(),
                        budgets[k].as_secs()
                    );
                    answers.push((k, Err(ProviderError { message, ..err })));
                    continue;
                }
                let detail = format!(
                    "attempt {attempt} {}: {}; next try in {:.1}s",
                    match err.kind {
                        ErrorKind::RateLimited(_) => "rate limited",
                        _ => "transient",
                    },
                    err.message,
                    wait.as_secs_f64()
                );
                m.audit_retry(detail).await?;
                pending.push(k);
            }
            if pending.is_empty() {
                break;
            }
            if let Some(o) = &first.observer {
                o.message(&format!(
                    "{} step(s) of {} ({}, …) waiting: attempt {attempt} {kind}; next try at {}",
                    pending.len(),
                    first.step.action,
                    self.members[pending[0]].0.step.id,
                    next_try_at(wait)
                ));
            }
            sleep_without_slot(&self.task_slot, &first.tasks, wait).await;
            attempt += 1;
        }
        Ok(answers)
    }
}
