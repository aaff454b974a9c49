//! GitHub: Actions secrets as a consumer, PAT revocation, token and App key verification.
//!
//! Same four parts as every connector (see `aws/`):
//!
//! - **client**: the shared [`HttpClient`] at `GITHUB_API_URL` (default
//!   `https://api.github.com`; GitHub Enterprise Server as `https://HOST/api/v3`). The token that
//!   writes secrets is, in order: the environment variable the consumer names (`token_env`), a
//!   GitHub App installation (`GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY_FILE`,
//!   `GITHUB_APP_INSTALLATION_ID`: an installation token is minted and cached for 50 minutes),
//!   then `GITHUB_TOKEN`. Requests made as rekey spend the budget (5,000/h, 80 writes/min, 100
//!   at once, kept below); a credential checking itself spends its own.
//! - **actions**: `consumer.deliver` to `github_actions_secret` (the scope's public key, cached
//!   per scope for the run; libsodium's sealed box; `PUT` with the `key_id`), `github.user.get`,
//!   `github.credentials.revoke` (batched: ≤ 1,000 tokens a request), `github.app.verify_key`.
//! - **reconcile**: a `PUT` is idempotent, so a lost delivery is delivered again; a lost revoke
//!   is done when `GET /user` with the old token answers 401.
//! - **capabilities**: Actions secrets are write-only (no read-back, no capture, undo refused:
//!   the plan marks the delivery a point of no return); names GitHub would refuse are refused
//!   before the run.
//!
//! No token, sealed value or JWT is ever formatted: errors carry the operation, the status and
//! GitHub's `message`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Values};
use rekey_plan::PlannedStep;
use rekey_spec::inventory::ActionsScope;
use secrecy::SecretString;

use crate::http::path_segment as seg;
use crate::http::{BudgetSpec, HttpClient, Pace};
use crate::inputs::{input, required};
use secrets::{ScopeKey, check_secret_name, target};

mod app;
mod auth;
mod oauth;
mod secrets;
mod tokens;

pub use auth::{
    AppAuth, AuthSource, GithubConfig, TokenLookup, describe_auth_from_env, is_enterprise,
};
pub use oauth::{SecretCheck, server_url_of};

pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// `POST /credentials/revoke` takes at most this many tokens a request.
pub const REVOKE_BATCH: usize = 1000;
/// GitHub's limits, kept below in any window: 5,000 requests an hour per token (4,500 spread
/// evenly + bursts of 500), 100 concurrent (64), 80 content-creating requests a minute (78 + 2).
pub const GITHUB_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 4_500,
    hourly_burst: 500,
    concurrent: 64,
    writes_per_minute: 78,
    write_burst: 2,
};
/// `POST /credentials/revoke` may be called 60 times an hour: 55 spread evenly + bursts of 5.
pub const REVOKE_PACE: (u32, u32) = (55, 5);
/// How long a revoke waits for `GET /user` with the old token to answer 401.
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_mins(1);
const INSTALLATION_TOKEN_LIFE: Duration = Duration::from_mins(50);

/// The real GitHub provider.
pub struct GithubProvider {
    http: HttpClient,
    /// GitHub Enterprise Server (`…/api/v3`): `/credentials/revoke` is called authenticated.
    enterprise: bool,
    token: Option<SecretString>,
    app: Option<AppAuth>,
    lookup: TokenLookup,
    propagation_wait: Duration,
    /// The web host (`GITHUB_SERVER_URL`, as Actions sets it; else derived from the API URL):
    /// OAuth apps' token endpoint.
    server_url: String,
    /// `POST /credentials/revoke`'s own limit, beside the budget (unauthenticated calls do not
    /// spend it).
    revoke_pace: Pace,
    /// Public key per scope, for this run (scope path → key id, key); concurrent deliveries to
    /// one scope wait for one fetch.
    keys: Mutex<HashMap<String, Arc<ScopeKey>>>,
}

impl fmt::Debug for GithubProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubProvider")
            .field("http", &self.http)
            .field("enterprise", &self.enterprise)
            .finish_non_exhaustive()
    }
}

impl GithubProvider {
    pub fn new(config: GithubConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            http: HttpClient::new("github", &config.api_url, config.timeout, config.budget)?
                .with_accept("application/vnd.github+json"),
            enterprise: is_enterprise(&config.api_url),
            token: config.token,
            app: config.app,
            lookup: config.lookup,
            propagation_wait: config.propagation_wait,
            server_url: config.server_url.map_or_else(
                || server_url_of(&config.api_url),
                |u| u.trim_end_matches('/').to_owned(),
            ),
            revoke_pace: Pace::new(
                "POST /credentials/revoke",
                config.revoke_pace.0,
                Duration::from_hours(1),
                config.revoke_pace.1,
            ),
            keys: Mutex::new(HashMap::new()),
        })
    }

    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(GithubConfig::from_env()?)
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// `OWNER/NAME` as two encoded segments.
fn repo_path(repo: &str) -> String {
    repo.split('/').map(seg).collect::<Vec<_>>().join("/")
}

// ---------------------------------------------------------------------------------------------
// The trait (capabilities, reconcile)

fn not_actions(step: &PlannedStep) -> ProviderError {
    ProviderError::permanent(format!(
        "step {}: the GitHub provider delivers only to github_actions_secret consumers, not to {}",
        step.id,
        step.consumer_label.as_deref().unwrap_or("this target")
    ))
}

#[async_trait]
impl Provider for GithubProvider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "github.user.get"
            | "github.credentials.revoke"
            | "github.app.verify_key"
            | "github.oauth_app.check_secret" => Ok(()),
            "consumer.deliver" => {
                let t = target(step).ok_or_else(|| not_actions(step).message)?;
                check_secret_name(t.name)?;
                if let ActionsScope::Org {
                    visibility,
                    selected_repositories,
                    ..
                } = t.scope
                {
                    match visibility.as_deref() {
                        None | Some("all" | "private") if selected_repositories.is_empty() => {}
                        Some("selected") | None => {}
                        Some("all" | "private") => {
                            return Err(format!(
                                "{}: selected_repositories needs visibility: selected",
                                t.name
                            ));
                        }
                        Some(v) => {
                            return Err(format!(
                                "{}: visibility `{v}` is not one of all, private, selected",
                                t.name
                            ));
                        }
                    }
                }
                Ok(())
            }
            "consumer.read_current" | "consumer.promote" if target(step).is_some() => Err(format!(
                "{} is write-only: GitHub never returns an Actions secret's value",
                step.consumer_label
                    .as_deref()
                    .unwrap_or("an Actions secret")
            )),
            a => Err(format!("the GitHub provider does not handle action {a}")),
        }
    }

    /// The scope (repository, environment, organization) exists and the token may write its
    /// secrets: its public key is fetched now, and kept for the deliveries. On GHES, a revoke
    /// has a token to authenticate with.
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        // GHES wants the revoke authenticated: a missing token must stop the run now, not
        // after the other credentials moved on.
        if step.action == "github.credentials.revoke" && self.enterprise {
            self.writer_token(None).await?;
            return Ok(());
        }
        let Some(t) = target(step) else {
            return Ok(());
        };
        if step.action != "consumer.deliver" {
            return Ok(());
        }
        let token = self.writer_token(t.token_env).await?;
        self.public_key(t.scope, &token)
            .await
            .map_err(|e| self.writer_refused(e, t.token_env))?;
        if let ActionsScope::Org {
            org,
            selected_repositories,
            ..
        } = t.scope
        {
            for r in selected_repositories {
                let full = if r.contains('/') {
                    r.clone()
                } else {
                    format!("{org}/{r}")
                };
                self.repo_id(&full, &token).await?;
            }
        }
        Ok(())
    }

    fn retry_budget(&self, step: &PlannedStep) -> Option<Duration> {
        // A revoke waits for propagation inside the call, and may be retried after it, or
        // after its pace (a call a minute once the burst is spent) lets it go.
        (step.action == "github.credentials.revoke")
            .then_some(self.propagation_wait * 3 + Duration::from_secs(150))
    }

    fn batch_limit(&self, step: &PlannedStep) -> Option<usize> {
        (step.action == "github.credentials.revoke").then_some(REVOKE_BATCH)
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match call.step.action.as_str() {
            "consumer.deliver" => self.deliver(call).await,
            "github.user.get" => self.user_get(call).await,
            "github.credentials.revoke" => self
                .revoke_all(std::slice::from_ref(call))
                .await
                .pop()
                .expect("one result"),
            "github.app.verify_key" => self.verify_app_key(call).await,
            "github.oauth_app.check_secret" => self.oauth_check(call).await,
            a => Err(ProviderError::permanent(format!(
                "step {}: the GitHub provider does not handle action {a}",
                call.step.id
            ))),
        }
    }

    /// Revoke steps share requests (≤ 1,000 tokens each); anything else runs one by one.
    async fn execute_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        if calls
            .iter()
            .all(|c| c.step.action == "github.credentials.revoke")
        {
            return self.revoke_all(calls).await;
        }
        let mut out = Vec::with_capacity(calls.len());
        for c in calls {
            out.push(self.execute(c).await);
        }
        out
    }

    /// An Actions secret was overwritten and GitHub never gives the old value back: refused,
    /// loudly (the plan marked the delivery a point of no return). Checks and revokes have
    /// nothing to undo (a revoke cannot be).
    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        if call.step.action == "consumer.deliver" {
            return Err(ProviderError::permanent(format!(
                "{} was overwritten and GitHub never returns a secret's value: put the old value back from the credential's readable consumers",
                call.step
                    .consumer_label
                    .as_deref()
                    .unwrap_or("the Actions secret")
            )));
        }
        Ok(())
    }

    /// - deliver: a `PUT` is idempotent → not done (deliver again);
    /// - revoke: done when `GET /user` with the old token answers 401; not done while the
    ///   token is not known again;
    /// - checks: run again.
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        if call.step.action == "github.credentials.revoke" {
            // On resume the captured old token may not be known yet (it is read again before
            // the step runs): run it again then, which checks the token first.
            let Some(token) = input(call, "token") else {
                return Ok(Reconciled::NotDone);
            };
            return Ok(match self.login_of(token).await? {
                None => Reconciled::Done(Values::new()),
                Some(_) => Reconciled::NotDone,
            });
        }
        Ok(Reconciled::NotDone)
    }

    async fn read_back(
        &self,
        _call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::secrets::secrets_path;
    use super::*;

    #[test]
    fn enterprise_by_url() {
        assert!(!is_enterprise("https://api.github.com"));
        assert!(is_enterprise("https://ghe.acme.internal/api/v3/"));
        assert!(!is_enterprise("http://127.0.0.1:8080"));
    }

    #[test]
    fn paths() {
        assert_eq!(
            secrets_path(&ActionsScope::Environment {
                repo: "acme/web".into(),
                environment: "prod eu".into()
            }),
            "/repos/acme/web/environments/prod%20eu/secrets"
        );
        assert_eq!(
            secrets_path(&ActionsScope::Org {
                org: "acme".into(),
                visibility: None,
                selected_repositories: vec![]
            }),
            "/orgs/acme/actions/secrets"
        );
    }

    #[test]
    fn secret_names() {
        assert!(check_secret_name("AWS_SECRET_ACCESS_KEY").is_ok());
        assert!(check_secret_name("GITHUB_TOKEN").is_err());
        assert!(check_secret_name("1X").is_err());
        assert!(check_secret_name("A-B").is_err());
    }

    #[test]
    fn debug_hides_tokens() {
        let mut c = GithubConfig::new("http://127.0.0.1:1");
        c.token = Some(SecretString::from("ghp_supersecretvalue000000000000000000"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        let p = GithubProvider::new(c).unwrap();
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains("supersecret"), "{shown}");
    }
}
