//! Tokens: `GET /user` checks and `POST /credentials/revoke` in batches.

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

    /// Who a token found on a machine belongs to (`rekey discover --online`): `GET /user`,
    /// read-only, under no budget of rekey's own; `None` when GitHub refuses the token.
    pub async fn identity(&self, token: &Value) -> Result<Option<String>, ProviderError> {
        self.login_of(token).await
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
        crate::confirm::revoke_tokens(
            calls,
            REVOKE_BATCH,
            self.propagation_wait,
            "revoked, but GitHub still",
            |t| self.login_of(t),
            |tokens| async move {
                self.revoke_pace.take()?;
                self.revoke_request(&tokens).await
            },
        )
        .await
    }
}
