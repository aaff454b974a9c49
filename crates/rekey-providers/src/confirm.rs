//! Confirming that revoked tokens are dead. Leaked-token APIs (GitHub's, the Hugging Face
//! Hub's) answer before the revocation has propagated, or whether or not the token existed, so
//! a revoke is done only when the provider refuses each old token.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rekey_engine::{ErrorKind, ProviderError, Value};

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
