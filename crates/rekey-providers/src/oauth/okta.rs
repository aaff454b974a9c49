//! Okta: an app holds up to two client secrets, so a rotation adds the new one, delivers and
//! verifies it, then deactivates and deletes the old one (Okta deletes only inactive secrets).
//! An incident deactivates the exposed secret first, and every other active secret of the app
//! with it (named as unknown: the inventory did not list them). Undo of a deactivation is an
//! activation; undo of a creation deactivates and deletes the new secret.
//!
//! `Authorization: SSWS <token>` from the credential's `api_token_env`. Errors carry Okta's
//! `errorSummary`; 429s wait for `x-rate-limit-reset`.

use std::time::Duration;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::PlannedStep;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{TokenLookup, base_url, env_lookup, management_token, required, seg, selector};
use crate::http::{BudgetSpec, HttpClient, Spend, error_of};

/// Okta's management API allows from 100 to 1,200 requests a minute per endpoint family,
/// depending on the org; rekey keeps to the lowest.
pub const OKTA_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 5_000,
    hourly_burst: 100,
    concurrent: 8,
    writes_per_minute: 80,
    write_burst: 10,
};

#[derive(Deserialize, Clone)]
struct Secret {
    id: String,
    status: String,
    #[serde(default)]
    created: String,
}

impl Secret {
    fn active(&self) -> bool {
        self.status.eq_ignore_ascii_case("ACTIVE")
    }
}

#[derive(Deserialize)]
struct Created {
    id: String,
    client_secret: String,
}

/// The Okta provider.
pub struct OktaProvider {
    http: HttpClient,
    lookup: TokenLookup,
}

impl std::fmt::Debug for OktaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaProvider").finish_non_exhaustive()
    }
}

/// Which app of which org a call is about, with its management token.
struct App {
    base: String,
    id: String,
    token: SecretString,
}

impl OktaProvider {
    pub fn new(
        timeout: Duration,
        budget: BudgetSpec,
        lookup: TokenLookup,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            http: HttpClient::new("okta", "", timeout, budget)?,
            lookup,
        })
    }

    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(Duration::from_secs(30), OKTA_BUDGET, env_lookup())
    }

    fn app(&self, call: &Call<'_>) -> Result<App, ProviderError> {
        Ok(App {
            base: base_url(required(call, "domain")?),
            id: required(call, "app_id")?.to_owned(),
            token: management_token(&self.lookup, call, "okta")?,
        })
    }

    fn secrets_url(app: &App) -> String {
        format!(
            "{}/api/v1/apps/{}/credentials/secrets",
            app.base,
            seg(&app.id)
        )
    }

    async fn send(
        &self,
        app: &App,
        method: Method,
        url: &str,
        op: &str,
    ) -> Result<reqwest::Response, ProviderError> {
        let req = self.http.request_url(method, url).header(
            "authorization",
            format!("SSWS {}", app.token.expose_secret()),
        );
        let resp = self.http.send(op, req, Spend::Ours).await?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => Err(ProviderError::permanent(format!(
                "okta: {op}: HTTP 401: the management token in the credential's api_token_env is not accepted (expired, or another org's)"
            ))),
            _ => Ok(resp),
        }
    }

    /// The app's client secrets (a 404: the app does not exist in this org).
    async fn list(&self, app: &App) -> Result<Vec<Secret>, ProviderError> {
        let op = format!("GET /api/v1/apps/{}/credentials/secrets", app.id);
        let resp = self
            .send(app, Method::GET, &Self::secrets_url(app), &op)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(ProviderError::permanent(format!(
                "okta: app {} does not exist in {}, or the token cannot see it",
                app.id, app.base
            )));
        }
        if !resp.status().is_success() {
            return Err(error_of(&op, resp).await);
        }
        resp.json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))
    }

    async fn lifecycle(&self, app: &App, id: &str, to: &str) -> Result<(), ProviderError> {
        let url = format!("{}/{}/lifecycle/{to}", Self::secrets_url(app), seg(id));
        let op = format!("POST …/secrets/{id}/lifecycle/{to}");
        let resp = self.send(app, Method::POST, &url, &op).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_of(&op, resp).await)
        }
    }

    /// Deactivates (if active) and deletes a secret; one already gone is fine.
    async fn remove(&self, app: &App, s: &Secret) -> Result<(), ProviderError> {
        if s.active() {
            self.lifecycle(app, &s.id, "deactivate").await?;
        }
        let url = format!("{}/{}", Self::secrets_url(app), seg(&s.id));
        let op = format!("DELETE …/secrets/{}", s.id);
        let resp = self.send(app, Method::DELETE, &url, &op).await?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(error_of(&op, resp).await)
        }
    }

    /// `okta.create_client_secret`: a second active secret. Before it: an active secret other
    /// than the current one can only be an earlier try of this step whose answer was lost
    /// (`preflight` refused an app with two active secrets, and an incident deactivated every
    /// one), so it is deleted; then, Okta keeping two, an inactive one other than the current
    /// secret makes room. Both are said. Only a step called before can have left one: on a
    /// first call an extra active secret is someone else's (made since `preflight`), and the
    /// app counts as full.
    async fn create(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let app = self.app(call)?;
        let current = selector(call, "secret_id")?;
        let mut secrets = if call.attempt > 1 || call.tried_before {
            self.remove_orphans(call, &app).await?
        } else {
            self.list(&app).await?
        };
        if secrets.len() >= 2 {
            secrets.sort_by(|a, b| a.created.cmp(&b.created));
            let spare = secrets
                .iter()
                .find(|s| !s.active() && Some(s.id.as_str()) != current)
                .or_else(|| secrets.iter().find(|s| !s.active()));
            let Some(spare) = spare else {
                return Err(full(&app, &secrets));
            };
            self.remove(&app, spare).await?;
            call.reports.side_effect(format!(
                "deleted inactive client secret {} of Okta app {} to make room (Okta keeps two)",
                spare.id, app.id
            ));
        }
        let op = format!("POST /api/v1/apps/{}/credentials/secrets", app.id);
        let req = self
            .http
            .request_url(Method::POST, &Self::secrets_url(&app))
            .header(
                "authorization",
                format!("SSWS {}", app.token.expose_secret()),
            )
            .json(&serde_json::json!({}));
        let resp = self.http.send(&op, req, Spend::Ours).await?;
        if !resp.status().is_success() {
            return Err(error_of(&op, resp).await);
        }
        let c: Created = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok([
            ("secret_id".to_owned(), Value::Plain(c.id)),
            ("client_secret".to_owned(), Value::secret(c.client_secret)),
        ]
        .into())
    }

    /// `okta.deactivate_client_secret`: the inventory's secret, except the one kept (a drill
    /// keeps the new one). Without one to keep (an incident), every other active secret is
    /// deactivated too and named. Outputs the ids that are inactive now.
    async fn deactivate(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let app = self.app(call)?;
        let target = selector(call, "secret_id")?;
        let keep = selector(call, "except_secret_id")?;
        let Some(target) = target else {
            return Err(ProviderError::permanent(format!(
                "step {}: no secret_id: refusing to deactivate every secret of app {}",
                call.step.id, app.id
            )));
        };
        if Some(target) == keep {
            return Err(ProviderError::permanent(format!(
                "step {}: secret {target} is the one to keep",
                call.step.id
            )));
        }
        let secrets = self.list(&app).await?;
        let mut off = Vec::new();
        let mut unknown = Vec::new();
        for s in &secrets {
            let ours = s.id == target;
            let other_in_incident = keep.is_none() && !ours;
            if !(ours || other_in_incident) || Some(s.id.as_str()) == keep {
                continue;
            }
            if s.active() {
                self.lifecycle(&app, &s.id, "deactivate").await?;
                if !ours {
                    unknown.push(s.id.clone());
                }
            }
            off.push(s.id.clone());
        }
        if !secrets.iter().any(|s| s.id == target) {
            call.reports.warning(format!(
                "Okta app {} has no secret {target} (the inventory's): it was deleted already, or the inventory is stale",
                app.id
            ));
        }
        if !unknown.is_empty() {
            call.reports.warning(format!(
                "deactivated active client secrets of Okta app {} that the inventory does not list: {}",
                app.id,
                unknown.join(", ")
            ));
        }
        Ok([("deactivated".to_owned(), Value::Plain(off.join(",")))].into())
    }

    /// `okta.delete_client_secret`: the old secret, never the one kept; one already gone is
    /// done.
    async fn delete(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let app = self.app(call)?;
        let Some(target) = selector(call, "secret_id")? else {
            return Err(ProviderError::permanent(format!(
                "step {}: no secret_id: refusing to delete every secret of app {}",
                call.step.id, app.id
            )));
        };
        if Some(target) == selector(call, "except_secret_id")? {
            return Err(ProviderError::permanent(format!(
                "step {}: secret {target} is the one to keep",
                call.step.id
            )));
        }
        if let Some(s) = self.list(&app).await?.into_iter().find(|s| s.id == target) {
            self.remove(&app, &s).await?;
        }
        Ok([("deleted".to_owned(), Value::Plain(target.to_owned()))].into())
    }

    /// Deletes the active secrets other than the current one: made by a `create` whose
    /// answer was lost (their values died with it). Returns the secrets left.
    async fn remove_orphans(
        &self,
        call: &Call<'_>,
        app: &App,
    ) -> Result<Vec<Secret>, ProviderError> {
        let current = selector(call, "secret_id")?;
        let mut left = Vec::new();
        for s in self.list(app).await? {
            if s.active() && Some(s.id.as_str()) != current {
                self.remove(app, &s).await?;
                call.reports.side_effect(format!(
                    "deleted client secret {} of Okta app {}: made by a try of this step whose answer was lost",
                    s.id, app.id
                ));
            } else {
                left.push(s);
            }
        }
        Ok(left)
    }
}

fn full(app: &App, secrets: &[Secret]) -> ProviderError {
    let ids: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
    ProviderError::permanent(format!(
        "okta: app {} has two active client secrets ({}): Okta keeps at most two. Deactivate and delete the one no consumer uses, then run again",
        app.id,
        ids.join(", ")
    ))
}

#[async_trait]
impl Provider for OktaProvider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "okta.create_client_secret"
            | "okta.deactivate_client_secret"
            | "okta.delete_client_secret" => Ok(()),
            a => Err(format!("the Okta provider does not handle action {a}")),
        }
    }

    /// The app exists and the management token works, before anything changes; a drill
    /// refuses an app with two active secrets now (an incident deactivates them first).
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        let plain = |k: &str| -> Option<String> { step.inputs.get(k)?.as_literal() };
        let (Some(domain), Some(app_id), Some(var)) =
            (plain("domain"), plain("app_id"), plain("api_token_env"))
        else {
            return Ok(());
        };
        let token = (self.lookup)(&var).ok_or_else(|| {
            ProviderError::permanent(format!(
                "okta: ${var} (the credential's api_token_env) is not set: put the management API token there"
            ))
        })?;
        let app = App {
            base: base_url(&domain),
            id: app_id,
            token,
        };
        let secrets = self.list(&app).await?;
        if step.action == "okta.create_client_secret"
            && let Some(current) = plain("secret_id")
            && !secrets.iter().any(|s| s.id == current)
        {
            let ids: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
            return Err(ProviderError::permanent(format!(
                "okta: the inventory's secret_id {current} is not a client secret of app {} (it has: {}): update the inventory",
                app.id,
                ids.join(", ")
            )));
        }
        let drill = step.action == "okta.deactivate_client_secret"
            && step.inputs.contains_key("except_secret_id");
        if drill && secrets.iter().filter(|s| s.active()).count() >= 2 {
            return Err(full(&app, &secrets));
        }
        Ok(())
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match call.step.action.as_str() {
            "okta.create_client_secret" => self.create(call).await,
            "okta.deactivate_client_secret" => self.deactivate(call).await,
            "okta.delete_client_secret" => self.delete(call).await,
            a => Err(ProviderError::permanent(format!(
                "step {}: the Okta provider does not handle action {a}",
                call.step.id
            ))),
        }
    }

    /// - create: the new secret is deactivated and deleted (by its id, else the orphan rule);
    /// - deactivate: what it deactivated is activated again;
    /// - delete: refused (irreversible).
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        let app = self.app(call)?;
        match call.step.action.as_str() {
            "okta.create_client_secret" => match outputs.get("secret_id") {
                Some(Value::Plain(id)) if !id.is_empty() => {
                    let made = self.list(&app).await?.into_iter().find(|s| &s.id == id);
                    if let Some(s) = made {
                        self.remove(&app, &s).await?;
                    }
                    Ok(())
                }
                _ => self.remove_orphans(call, &app).await.map(|_| ()),
            },
            "okta.deactivate_client_secret" => {
                let ids: Vec<String> = match outputs.get("deactivated") {
                    Some(Value::Plain(v)) => v
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    _ => selector(call, "secret_id")?
                        .map(str::to_owned)
                        .into_iter()
                        .collect(),
                };
                for id in ids {
                    self.lifecycle(&app, &id, "activate").await?;
                }
                Ok(())
            }
            _ => Err(ProviderError::permanent(format!(
                "step {}: a deleted Okta client secret cannot be brought back",
                call.step.id
            ))),
        }
    }

    /// - create: a secret made by the lost call (active, not the current one) is an orphan
    ///   whose value died with the process: deleted, and said so; run again;
    /// - deactivate and delete: run again (both are idempotent).
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        if call.step.action == "okta.create_client_secret" {
            let app = self.app(call)?;
            self.remove_orphans(call, &app).await?;
        }
        Ok(Reconciled::NotDone)
    }
}
