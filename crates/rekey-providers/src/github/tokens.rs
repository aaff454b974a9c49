//! Tokens: `GET /user` checks and `POST /credentials/revoke` in batches.

use futures_util::future::join_all;
use rekey_engine::{Call, ProviderError, Value, Values};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{GithubProvider, REVOKE_BATCH, input, required};
use crate::http::{Spend, error_of};

#[derive(Deserialize)]
struct UserAnswer {
    login: String,
}

impl GithubProvider {
    /// `GET /user` with a token: its login, or `None` for 401 (not a valid token).
    pub(super) async fn login_of(&self, token: &Value) -> Result<Option<String>, ProviderError> {
        let op = "GET /user";
        let req = self
            .http
            .request(Method::GET, "/user")
            .bearer_auth(token.expose());
        let resp = self.http.send(op, req, Spend::NotOurs).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(error_of(op, resp).await);
        }
        let u: UserAnswer = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok(Some(u.login))
    }

    /// `github.user.get`: the new token works and belongs to `expected_login`.
    pub(super) async fn user_get(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let token = required(call, "token")?;
        let Some(login) = self.login_of(token).await? else {
            return Err(ProviderError::permanent(format!(
                "step {}: GitHub does not accept the new token (401 Bad credentials)",
                call.step.id
            )));
        };
        if let Some(want) = input(call, "expected_login")
            && !want.expose().eq_ignore_ascii_case(&login)
        {
            return Err(ProviderError::permanent(format!(
                "step {}: the new token belongs to {login}, not {}",
                call.step.id,
                want.expose()
            )));
        }
        Ok([("login".to_owned(), Value::Plain(login))].into())
    }

    /// `POST /credentials/revoke` with up to 1,000 tokens: unauthenticated on github.com (an
    /// authenticated request gets 403), authenticated on GHES.
    async fn revoke_request(&self, tokens: &[&str]) -> Result<(), ProviderError> {
        let op = "POST /credentials/revoke";
        let mut req = self
            .http
            .request(Method::POST, "/credentials/revoke")
            .json(&serde_json::json!({ "credentials": tokens }));
        let spend = if self.enterprise {
            let t = self.writer_token(None).await?;
            req = req.bearer_auth(t.expose_secret());
            Spend::Ours
        } else {
            Spend::NotOurs
        };
        self.http.send_ok(op, req, spend).await.map(|_| ())
    }

    /// Revokes the tokens of several revoke steps: those GitHub still accepts go in requests
    /// of up to 1,000, then each is checked dead.
    pub(super) async fn revoke_all(
        &self,
        calls: &[Call<'_>],
    ) -> Vec<Result<Values, ProviderError>> {
        let mut results: Vec<Option<Result<Values, ProviderError>>> = vec![None; calls.len()];
        let mut tokens: Vec<(usize, &Value)> = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            match required(c, "token") {
                Ok(t) => tokens.push((i, t)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // A token GitHub already refuses needs no request (a retry after a lost answer).
        let alive = join_all(tokens.iter().map(|(_, t)| self.login_of(t))).await;
        let mut to_revoke: Vec<(usize, &Value)> = Vec::new();
        for ((i, t), a) in tokens.into_iter().zip(alive) {
            match a {
                Ok(None) => results[i] = Some(Ok(Values::new())),
                Ok(Some(_)) => to_revoke.push((i, t)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for chunk in to_revoke.chunks(REVOKE_BATCH) {
            let plain: Vec<&str> = chunk.iter().map(|(_, t)| t.expose()).collect();
            let sent = match self.revoke_pace.take() {
                Ok(()) => self.revoke_request(&plain).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                for (i, _) in chunk {
                    results[*i] = Some(Err(e.clone()));
                }
                continue;
            }
            let vals: Vec<&Value> = chunk.iter().map(|(_, t)| *t).collect();
            let dead =
                crate::confirm::wait_dead(&vals, self.propagation_wait, |t| self.login_of(t)).await;
            for ((i, _), dead) in chunk.iter().zip(dead) {
                results[*i] = Some(match dead {
                    Ok(true) => Ok(Values::new()),
                    Ok(false) => Err(ProviderError::transient(format!(
                        "step {}: revoked, but GitHub still accepts the old token after {}s",
                        calls[*i].step.id,
                        self.propagation_wait.as_secs()
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
}
