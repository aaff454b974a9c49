//! Hugging Face: access-token verification and revocation.
//!
//! Same four parts as every connector (see `aws/`, `github/`):
//!
//! - **client**: the shared [`HttpClient`] at `HF_ENDPOINT` (default `https://huggingface.co`,
//!   the variable `huggingface_hub` reads). No token of rekey's own: `whoami-v2` is called with
//!   the token it checks, and the Hub's leaked-token revocation needs no authentication.
//! - **actions**: `huggingface.whoami` (`GET /api/whoami-v2` with the new token: the account —
//!   or one of its organisations — must be the inventory's `hf_user`, and its role at least the
//!   inventory's `role`), `huggingface.credentials.revoke` (`POST /api/credentials/revoke` with
//!   `{"credentials": [token, …]}`, batched: ≤ 1,000 tokens a request; the Hub answers 202
//!   whether or not a token existed, so each token is then polled with `whoami-v2` until it
//!   answers 401).
//! - **reconcile**: a lost revoke is done when `whoami-v2` with the old token answers 401;
//!   a check runs again.
//! - **capabilities**: no token-creation API (the mint is a manual step); nothing to undo (a
//!   revoke cannot be, a check changes nothing).
//!
//! Roles: `read` < `write`; `fineGrained` is its own kind (its permissions are per resource and
//! cannot be compared with the inventory), so an inventory `role: fineGrained` needs a
//! fine-grained token, `write` needs a write token, and `read` accepts any token. A token
//! stronger than recorded is accepted, with a `provider_warning`.
//!
//! No token is ever formatted: errors carry the operation, the status and the Hub's `error`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::PlannedStep;
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::{BudgetSpec, HttpClient, Spend, classify};
use crate::inputs::{input, required};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Tokens per `POST /api/credentials/revoke`. The Hub documents no maximum; rekey stays at
/// GitHub's documented 1,000 so that one request body stays small (≈ 40 kB).
pub const REVOKE_BATCH: usize = 1000;
/// The Hub's API limit for anonymous callers is 500 requests per 5 minutes per IP (more for
/// signed-in users): 4,800 an hour spread evenly (400 per 5 minutes) + bursts of 100 stay under
/// it in any window. Only rekey's own unauthenticated requests (the revoke) spend it; a token
/// checking itself spends its own limit. 16 requests in flight.
pub const HF_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 4_800,
    hourly_burst: 100,
    concurrent: 16,
    writes_per_minute: 60,
    write_burst: 10,
};
/// How long a revoke waits for `whoami-v2` with the old token to answer 401.
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_mins(1);

/// The roles a Hugging Face access token may have, as `whoami-v2` names them.
pub const ROLES: &[&str] = &["read", "write", "fineGrained"];

// ---------------------------------------------------------------------------------------------
// Client

/// What the provider is built from.
#[derive(Debug, Clone)]
pub struct HuggingfaceConfig {
    pub endpoint: String,
    pub timeout: Duration,
    pub budget: BudgetSpec,
    pub propagation_wait: Duration,
}

impl HuggingfaceConfig {
    pub fn new(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            budget: HF_BUDGET,
            propagation_wait: DEFAULT_PROPAGATION_WAIT,
        }
    }

    /// `HF_ENDPOINT`, as `huggingface_hub` reads it, else the public Hub.
    pub fn from_env() -> Self {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        Self::new(&endpoint)
    }
}

/// The real Hugging Face provider.
pub struct HuggingfaceProvider {
    http: HttpClient,
    propagation_wait: Duration,
}

impl fmt::Debug for HuggingfaceProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuggingfaceProvider")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl HuggingfaceProvider {
    pub fn new(config: HuggingfaceConfig) -> Result<Self, ProviderError> {
        let HuggingfaceConfig {
            endpoint,
            timeout,
            budget,
            propagation_wait,
        } = config;
        Ok(Self {
            http: HttpClient::new("huggingface", &endpoint, timeout, budget)?,
            propagation_wait,
        })
    }

    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(HuggingfaceConfig::from_env())
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// Whether a token of role `have` is at least `want` (see the module's documentation).
pub fn role_satisfies(have: &str, want: &str) -> bool {
    match want {
        "read" => true,
        "write" => have == "write",
        "fineGrained" => have == "fineGrained",
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// `GET /api/whoami-v2`, the fields rekey reads (as `huggingface_hub`'s `whoami` returns them).
#[derive(Debug, Deserialize)]
struct Whoami {
    name: String,
    #[serde(default)]
    orgs: Vec<Org>,
    #[serde(default)]
    auth: Auth,
}

#[derive(Debug, Deserialize)]
struct Org {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct Auth {
    #[serde(rename = "accessToken")]
    access_token: Option<AccessToken>,
}

#[derive(Debug, Deserialize)]
struct AccessToken {
    #[serde(default)]
    role: Option<String>,
}

/// Classifies an unsuccessful answer. The Hub's 429 carries the IETF `RateLimit` header
/// (`"api";r=0;t=55`: `t` seconds until the window resets) rather than `retry-after`.
async fn hub_error(op: &str, resp: Response) -> ProviderError {
    let status = resp.status();
    let mut headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    if status == StatusCode::TOO_MANY_REQUESTS
        && !headers.contains_key(RETRY_AFTER)
        && let Some(t) = headers
            .get("ratelimit")
            .and_then(|v| v.to_str().ok())
            .and_then(ratelimit_reset)
    {
        headers.insert(RETRY_AFTER, HeaderValue::from(t));
    }
    classify(op, status, &headers, &body, std::time::SystemTime::now())
}

/// `t` of a `RateLimit` header (`"api";r=0;t=55`).
fn ratelimit_reset(v: &str) -> Option<u64> {
    v.split(';')
        .find_map(|p| p.trim().strip_prefix("t="))
        .and_then(|t| t.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Actions

impl HuggingfaceProvider {
    /// `GET /api/whoami-v2` with a token: who it is, or `None` for 401 (not a valid token).
    async fn whoami(&self, token: &Value) -> Result<Option<Whoami>, ProviderError> {
        let op = "GET /api/whoami-v2";
        let req = self
            .http
            .request(Method::GET, "/api/whoami-v2")
            .bearer_auth(token.expose());
        let resp = self.http.send(op, req, Spend::NotOurs).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(hub_error(op, resp).await);
        }
        resp.json::<Whoami>()
            .await
            .map(Some)
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))
    }

    /// Who a token found on a machine belongs to (`rekey discover --online`): `whoami-v2`,
    /// read-only; the account name, or `None` when the Hub refuses the token.
    pub async fn identity(&self, token: &Value) -> Result<Option<String>, ProviderError> {
        Ok(self.whoami(token).await?.map(|w| w.name))
    }

    /// `huggingface.whoami`: the new token works, belongs to `expected_user` (the account or
    /// one of its organisations) and has at least `expected_role`.
    async fn check(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let token = required(call, "token")?;
        let Some(who) = self.whoami(token).await? else {
            return Err(ProviderError::permanent(format!(
                "step {}: the Hub does not accept the new token (401 Invalid credentials)",
                call.step.id
            )));
        };
        if let Some(want) = input(call, "expected_user").map(Value::expose)
            && !who.name.eq_ignore_ascii_case(want)
            && !who.orgs.iter().any(|o| o.name.eq_ignore_ascii_case(want))
        {
            return Err(ProviderError::permanent(format!(
                "step {}: the new token belongs to {}, which is neither {want} nor a member of it",
                call.step.id, who.name
            )));
        }
        let role = who
            .auth
            .access_token
            .and_then(|t| t.role)
            .unwrap_or_default();
        if let Some(want) = input(call, "expected_role").map(Value::expose) {
            if !ROLES.contains(&want) {
                return Err(ProviderError::permanent(format!(
                    "step {}: expected_role `{want}` is not one of read, write, fineGrained",
                    call.step.id
                )));
            }
            if !role_satisfies(&role, want) {
                let shown = if role.is_empty() { "no role" } else { &role };
                return Err(ProviderError::permanent(format!(
                    "step {}: the new token has role {shown}, and the inventory records {want}: create a {want} token",
                    call.step.id
                )));
            }
            if role != want {
                call.reports.warning(format!(
                    "the new token has role {role}, more than the inventory's {want}"
                ));
            }
        }
        Ok([
            ("name".to_owned(), Value::Plain(who.name)),
            ("role".to_owned(), Value::Plain(role)),
        ]
        .into())
    }

    /// `POST /api/credentials/revoke` with up to 1,000 tokens, unauthenticated.
    async fn revoke_request(&self, tokens: &[&str]) -> Result<(), ProviderError> {
        let op = "POST /api/credentials/revoke";
        let req = self
            .http
            .request(Method::POST, "/api/credentials/revoke")
            .json(&serde_json::json!({ "credentials": tokens }));
        // Unauthenticated: the anonymous (per IP) budget is rekey's own.
        let resp = self.http.send(op, req, Spend::Ours).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(hub_error(op, resp).await)
        }
    }

    /// Revokes the tokens of several revoke steps: those the Hub still accepts go in requests
    /// of up to 1,000 (a token already refused needs none: a retry after a lost answer), then
    /// each is checked dead, since the Hub answers 202 for any token.
    async fn revoke_all(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        crate::confirm::revoke_tokens(
            calls,
            REVOKE_BATCH,
            self.propagation_wait,
            "revoke accepted (202), but the Hub still",
            |t| self.whoami(t),
            |tokens| async move { self.revoke_request(&tokens).await },
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// The trait (capabilities, reconcile)

#[async_trait]
impl Provider for HuggingfaceProvider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "huggingface.whoami" | "huggingface.credentials.revoke" => Ok(()),
            "huggingface.tokens.create" => Err(
                "Hugging Face has no API to create access tokens: the runbook's mint must be a manual step".into(),
            ),
            a => Err(format!("the Hugging Face provider does not handle action {a}")),
        }
    }

    fn retry_budget(&self, step: &PlannedStep) -> Option<Duration> {
        // A revoke waits for propagation inside the call, and may be retried after it.
        (step.action == "huggingface.credentials.revoke").then_some(self.propagation_wait * 3)
    }

    fn batch_limit(&self, step: &PlannedStep) -> Option<usize> {
        (step.action == "huggingface.credentials.revoke").then_some(REVOKE_BATCH)
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match call.step.action.as_str() {
            "huggingface.whoami" => self.check(call).await,
            "huggingface.credentials.revoke" => self
                .revoke_all(std::slice::from_ref(call))
                .await
                .pop()
                .expect("one result"),
            a => Err(ProviderError::permanent(format!(
                "step {}: the Hugging Face provider does not handle action {a}",
                call.step.id
            ))),
        }
    }

    /// Revoke steps share requests (≤ 1,000 tokens each); anything else runs one by one.
    async fn execute_batch(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        if calls
            .iter()
            .all(|c| c.step.action == "huggingface.credentials.revoke")
        {
            return self.revoke_all(calls).await;
        }
        let mut out = Vec::with_capacity(calls.len());
        for c in calls {
            out.push(self.execute(c).await);
        }
        out
    }

    /// A check changes nothing; a revoke cannot be undone.
    async fn undo(&self, _call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        Ok(())
    }

    /// - revoke: done when `whoami-v2` with the old token answers 401. On resume the old token
    ///   (captured in memory) may not be known yet: not done, so the step runs again once its
    ///   capture was read again, and a token already dead needs no request then;
    /// - checks: run again.
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        if call.step.action == "huggingface.credentials.revoke" {
            let Some(token) = input(call, "token") else {
                return Ok(Reconciled::NotDone);
            };
            return Ok(match self.whoami(token).await? {
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
    use super::*;

    #[test]
    fn roles() {
        for have in ROLES {
            assert!(role_satisfies(have, "read"), "{have} reads");
        }
        assert!(role_satisfies("write", "write"));
        assert!(!role_satisfies("read", "write"));
        assert!(!role_satisfies("fineGrained", "write"));
        assert!(role_satisfies("fineGrained", "fineGrained"));
        assert!(!role_satisfies("write", "fineGrained"));
        assert!(!role_satisfies("", "write"));
    }

    #[test]
    fn ratelimit_header() {
        assert_eq!(ratelimit_reset("\"api\";r=0;t=55"), Some(55));
        assert_eq!(ratelimit_reset("\"api\";r=10"), None);
    }

    #[test]
    fn endpoint_and_debug() {
        let c = HuggingfaceConfig::new("http://127.0.0.1:1/");
        assert_eq!(c.endpoint, "http://127.0.0.1:1");
        let p = HuggingfaceProvider::new(c).unwrap();
        assert!(format!("{p:?}").contains("127.0.0.1:1"));
    }
}
