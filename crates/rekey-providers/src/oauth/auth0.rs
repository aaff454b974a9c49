//! Auth0: one secret per client. `POST /api/v2/clients/{id}/rotate-secret` answers the client
//! with its new `client_secret`, and the old one stops working at once: the mint is the
//! revoke, irreversible, and the plan warns of downtime in both modes. A rotation whose answer
//! was lost left a secret nobody knows: rotating again ends it.
//!
//! `Authorization: Bearer <token>` from the credential's `api_token_env` (a Management API
//! token with `update:client_keys`, and `read:clients` for the check before the run).

use std::time::Duration;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::PlannedStep;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{TokenLookup, base_url, env_lookup, management_token, required, seg};
use crate::http::{BudgetSpec, HttpClient, Spend, error_of};

/// Auth0's Management API allows 2 requests a second with bursts of 10 on the smallest plans;
/// rekey keeps under that.
pub const AUTH0_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 6_000,
    hourly_burst: 10,
    concurrent: 4,
    writes_per_minute: 60,
    write_burst: 5,
};

#[derive(Deserialize)]
struct Rotated {
    client_secret: String,
}

/// The Auth0 provider.
pub struct Auth0Provider {
    http: HttpClient,
    lookup: TokenLookup,
}

impl std::fmt::Debug for Auth0Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Provider").finish_non_exhaustive()
    }
}

impl Auth0Provider {
    pub fn new(
        timeout: Duration,
        budget: BudgetSpec,
        lookup: TokenLookup,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            http: HttpClient::new("auth0", "", timeout, budget)?,
            lookup,
        })
    }

    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(Duration::from_secs(30), AUTH0_BUDGET, env_lookup())
    }

    async fn send(
        &self,
        token: &SecretString,
        method: Method,
        url: &str,
        op: &str,
    ) -> Result<reqwest::Response, ProviderError> {
        let req = self
            .http
            .request_url(method, url)
            .bearer_auth(token.expose_secret());
        let resp = self.http.send(op, req, Spend::Ours).await?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => Err(ProviderError::permanent(format!(
                "auth0: {op}: HTTP 401: the Management API token in the credential's api_token_env is not accepted (expired, or another tenant's)"
            ))),
            StatusCode::NOT_FOUND => Err(ProviderError::permanent(format!(
                "auth0: {op}: the client does not exist in this tenant"
            ))),
            s if s.is_success() => Ok(resp),
            _ => Err(error_of(op, resp).await),
        }
    }

    /// `auth0.rotate_client_secret`.
    async fn rotate(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let base = base_url(required(call, "domain")?);
        let client = required(call, "client_id")?;
        let token = management_token(&self.lookup, call, "auth0")?;
        let url = format!("{base}/api/v2/clients/{}/rotate-secret", seg(client));
        let op = format!("POST /api/v2/clients/{client}/rotate-secret");
        let resp = self.send(&token, Method::POST, &url, &op).await?;
        let r: Rotated = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok([("client_secret".to_owned(), Value::secret(r.client_secret))].into())
    }
}

#[async_trait]
impl Provider for Auth0Provider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "auth0.rotate_client_secret" => Ok(()),
            a => Err(format!("the Auth0 provider does not handle action {a}")),
        }
    }

    /// The client exists and the token works, before anything changes.
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        let plain = |k: &str| -> Option<String> { step.inputs.get(k)?.as_literal() };
        let (Some(domain), Some(client), Some(var)) =
            (plain("domain"), plain("client_id"), plain("api_token_env"))
        else {
            return Ok(());
        };
        let token = (self.lookup)(&var).ok_or_else(|| {
            ProviderError::permanent(format!(
                "auth0: ${var} (the credential's api_token_env) is not set: put the Management API token there"
            ))
        })?;
        let url = format!(
            "{}/api/v2/clients/{}?fields=client_id&include_fields=true",
            base_url(&domain),
            seg(&client)
        );
        self.send(
            &token,
            Method::GET,
            &url,
            &format!("GET /api/v2/clients/{client}"),
        )
        .await
        .map(|_| ())
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match call.step.action.as_str() {
            "auth0.rotate_client_secret" => self.rotate(call).await,
            a => Err(ProviderError::permanent(format!(
                "step {}: the Auth0 provider does not handle action {a}",
                call.step.id
            ))),
        }
    }

    /// A rotation cannot be taken back: the old secret is gone. When the engine redoes a
    /// rotation whose secret was lost, the redo's own rotation ends the lost one, so there is
    /// nothing to undo first.
    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        call.reports.warning(format!(
            "Auth0 client {}: a rotated secret cannot be taken back; the next rotation ends it",
            call.inputs
                .get("client_id")
                .map_or("(unknown)", Value::expose)
        ));
        Ok(())
    }

    /// A lost rotation left a secret nobody knows: rotate again.
    async fn reconcile(&self, _call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        Ok(Reconciled::NotDone)
    }
}
