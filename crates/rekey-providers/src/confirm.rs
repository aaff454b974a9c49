//! Confirming that revoked tokens are dead. Leaked-token APIs (GitHub's, the Hugging Face
//! Hub's) answer before the revocation has propagated, or whether or not the token existed, so
//! a revoke is done only when the provider refuses each old token.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rekey_engine::{Call, ErrorKind, ProviderError, Value, Values};

/// Asks `alive` about every token until it answers `None` (refused), for up to `wait`, with
/// backoff from 200 ms to 5 s. Per token: dead, still accepted when the wait ran out, or the
/// error that stopped the asking (a permanent one at once, a passing one only at the end).
pub async fn wait_dead<'a, T, F, Fut>(
    tokens: &[&'a Value],
    wait: Duration,
    alive: F,
) -> Vec<Result<bool, ProviderError>>
where
    F: Fn(&'a Value) -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let deadline = Instant::now() + wait;
    let mut out: Vec<Option<Result<bool, ProviderError>>> = vec![None; tokens.len()];
    let mut pause = Duration::from_millis(200);
    loop {
        let pending: Vec<usize> = (0..tokens.len()).filter(|i| out[*i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let checks = join_all(pending.iter().map(|i| alive(tokens[*i]))).await;
        let late = Instant::now() >= deadline;
        for (i, r) in pending.into_iter().zip(checks) {
            match r {
                Ok(None) => out[i] = Some(Ok(true)),
                Ok(Some(_)) if late => out[i] = Some(Ok(false)),
                Err(e) if late || e.kind == ErrorKind::Permanent => out[i] = Some(Err(e)),
                // Still accepted, or a passing failure: ask again.
                Ok(Some(_)) | Err(_) => {}
            }
        }
        if late {
            break;
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    out.into_iter().map(|r| r.unwrap_or(Ok(false))).collect()
}

/// Revokes each call's `token` through a leaked-token API. A token the provider already refuses
/// needs no request (a retry after a lost answer); the rest go out in requests of up to
/// `batch` (`revoke`), each then confirmed dead by `alive` within `wait`. Every call gets its
/// own result; one still accepted after the wait is a transient error ("step S: {still}
/// accepts the old token after Ns").
pub async fn revoke_tokens<'b, T, A, AF, R, RF>(
    calls: &[Call<'b>],
    batch: usize,
    wait: Duration,
    still: &str,
    alive: A,
    revoke: R,
) -> Vec<Result<Values, ProviderError>>
where
    A: Fn(&'b Value) -> AF,
    AF: Future<Output = Result<Option<T>, ProviderError>>,
    R: Fn(Vec<&'b str>) -> RF,
    RF: Future<Output = Result<(), ProviderError>>,
{
    let mut results: Vec<Option<Result<Values, ProviderError>>> = vec![None; calls.len()];
    let mut tokens: Vec<(usize, &'b Value)> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let inputs: &'b Values = c.inputs;
        match inputs.get("token").filter(|v| !v.expose().is_empty()) {
            Some(t) => tokens.push((i, t)),
            None => {
                results[i] = Some(Err(ProviderError::permanent(format!(
                    "step {}: input `token` is missing",
                    c.step.id
                ))));
            }
        }
    }
    let answers = join_all(tokens.iter().map(|(_, t)| alive(t))).await;
    let mut to_revoke: Vec<(usize, &'b Value)> = Vec::new();
    for ((i, t), a) in tokens.into_iter().zip(answers) {
        match a {
            Ok(None) => results[i] = Some(Ok(Values::new())),
            Ok(Some(_)) => to_revoke.push((i, t)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    for chunk in to_revoke.chunks(batch) {
        if let Err(e) = revoke(chunk.iter().map(|(_, t)| t.expose()).collect()).await {
            for (i, _) in chunk {
                results[*i] = Some(Err(e.clone()));
            }
            continue;
        }
        let vals: Vec<&'b Value> = chunk.iter().map(|(_, t)| *t).collect();
        for ((i, _), dead) in chunk.iter().zip(wait_dead(&vals, wait, &alive).await) {
            results[*i] = Some(match dead {
                Ok(true) => Ok(Values::new()),
                Ok(false) => Err(ProviderError::transient(format!(
                    "step {}: {still} accepts the old token after {}s",
                    calls[*i].step.id,
                    wait.as_secs()
                ))),
                Err(e) => Err(e),
            });
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every call has a result"))
        .collect()
}
