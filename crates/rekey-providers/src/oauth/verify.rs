//! `oauth.verify_client_credentials`: a `client_credentials` request at the token endpoint with
//! the new secret. An access token proves it. RFC 6749 §5.2 has the server authenticate the
//! client before anything else, so `invalid_client` (or a 401) is the one answer that means
//! "wrong secret"; an error about the grant or the scope (`unauthorized_client`,
//! `invalid_scope`, Auth0's 403 `access_denied`) came after the secret was accepted: the check
//! passes and the audit log says what the server refused.

use std::time::Duration;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Values};
use rekey_plan::PlannedStep;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::{input, required};
use crate::http::{BudgetSpec, HttpClient, Spend, error_of};

/// Token endpoints are called with the client's own credentials: only concurrency is bounded.
const VERIFY_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 100_000,
    hourly_burst: 1_000,
    concurrent: 16,
    writes_per_minute: 10_000,
    write_burst: 100,
};

#[derive(Deserialize, Default)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The provider of `oauth.verify_client_credentials` (every OAuth provider's check).
#[derive(Debug)]
pub struct OauthVerifyProvider {
    http: HttpClient,
}

impl OauthVerifyProvider {
    pub fn new(timeout: Duration) -> Result<Self, ProviderError> {
        Ok(Self {
            http: HttpClient::new("oauth", "", timeout, VERIFY_BUDGET)?,
        })
    }

    async fn verify(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let url = required(call, "token_url")?;
        let client_id = required(call, "client_id")?;
        let secret = input(call, "client_secret").ok_or_else(|| {
            ProviderError::permanent(format!(
                "step {}: input `client_secret` is missing",
                call.step.id
            ))
        })?;
        let post = match input(call, "token_auth").map(rekey_engine::Value::expose) {
            None | Some("basic") => false,
            Some("post") => true,
            Some(other) => {
                return Err(ProviderError::permanent(format!(
                    "step {}: token_auth `{other}` is not one of basic, post",
                    call.step.id
                )));
            }
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(a) = input(call, "audience") {
            form.push(("audience", a.expose()));
        }
        let mut req = self.http.request_url(Method::POST, url);
        if post {
            form.push(("client_id", client_id));
            form.push(("client_secret", secret.expose()));
        } else {
            req = req.basic_auth(client_id, Some(secret.expose()));
        }
        let req = req.form(&form);
        let op = "POST {token_url}";
        let resp = self.http.send(op, req, Spend::NotOurs).await?;
        let status = resp.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(error_of(op, resp).await);
        }
        let answer: TokenAnswer = resp.json().await.unwrap_or_default();
        let error = answer.error.as_deref().unwrap_or("");
        if status.is_success() && answer.access_token.is_some() {
            return Ok(Values::new());
        }
        if status == StatusCode::UNAUTHORIZED || error == "invalid_client" {
            // A new secret may take a few seconds to apply (Auth0): retried within the budget.
            return Err(ProviderError::transient(format!(
                "step {}: the token endpoint refuses the new secret of client {client_id} (HTTP {}{})",
                call.step.id,
                status.as_u16(),
                if error.is_empty() {
                    String::new()
                } else {
                    format!(", {}", short(error))
                }
            )));
        }
        if matches!(
            error,
            "unauthorized_client" | "invalid_scope" | "access_denied" | "unsupported_grant_type"
        ) {
            call.reports.warning(format!(
                "the token endpoint accepted the client secret of {client_id} but refused the grant ({}): the secret works; the client cannot use client_credentials{}",
                short(error),
                if error == "access_denied" {
                    " for this audience"
                } else {
                    ""
                }
            ));
            return Ok(Values::new());
        }
        Err(ProviderError::permanent(format!(
            "step {}: the token endpoint answered HTTP {}{} for client {client_id}: the check proves nothing",
            call.step.id,
            status.as_u16(),
            if error.is_empty() {
                String::new()
            } else {
                format!(" ({})", short(error))
            }
        )))
    }
}

/// An OAuth error code, cut short (it is the server's text).
fn short(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

#[async_trait]
impl Provider for OauthVerifyProvider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "oauth.verify_client_credentials" => Ok(()),
            a => Err(format!("the OAuth check does not handle action {a}")),
        }
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.verify(call).await
    }

    /// A check changes nothing.
    async fn undo(&self, _call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn reconcile(&self, _call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        Ok(Reconciled::NotDone)
    }
}
