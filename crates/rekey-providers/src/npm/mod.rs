//! npm registry tokens: granular tokens minted, verified and deleted through the registry's
//! token API, on the public registry or a private one (Verdaccio, Artifactory, GitHub Packages).
//!
//! Same four parts as every connector (see `aws/`, `github/`):
//!
//! - **client**: the shared [`HttpClient`], one per registry. The registry is the step's
//!   `registry` input (the credential's `registry`, default `https://registry.npmjs.org/`),
//!   addressed exactly as `npm` does: the token API is `{registry}-/npm/v1/tokens`, so a
//!   registry under a path (`https://host/artifactory/api/npm/npm-local/`) works the same way.
//!   Token management authenticates as the account, with HTTP Basic `npm_user:password`, the
//!   password read from the environment variable the credential names (`password_env`); the
//!   create request carries the password in its body too, as npm asks. A registry that wants a
//!   one-time password answers 401 with `www-authenticate: OTP`: the step asks the operator
//!   ([`ProviderError::needs_input`]) and is called again with the answer, sent as `npm-otp`.
//!   No password, OTP or token is ever formatted.
//! - **actions**: `npm.tokens.list` (the account's token keys before the mint),
//!   `npm.tokens.create`, `npm.whoami` (with the new token: `username` must be the account —
//!   Verdaccio answers 200 `{}` to a token it does not know, so the field is checked, not the
//!   status), `npm.tokens.delete` (by key; or, with only the old value, found in the list by the
//!   prefix and suffix the registry shows of it, then by key; afterwards whoami with the old
//!   value must fail).
//! - **reconcile**: a created token is named `<token_name>-<idempotency key>`; a mint whose
//!   answer was lost is found by that name and deleted (an orphan). A registry that lists no
//!   names (Verdaccio ignores them) is handled with the keys `npm.tokens.list` recorded before
//!   the mint: a token not among them (and not minted by another step of this process) is this
//!   step's orphan; when more than one such token exists the step stops rather than guess. A
//!   lost delete is done when the key is no longer listed (or the old value is refused).
//! - **capabilities**: a delete needs the old token's key or its value; a write token lives at
//!   most 90 days (checked by `rekey validate`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use rekey_engine::{
    Call, ErrorKind, OPERATOR_INPUT, Provider, ProviderError, Reconciled, Value, Values,
};
use rekey_plan::PlannedStep;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::http::path_segment as seg;

mod api;

use crate::http::{BudgetSpec, HttpClient, Spend, classify};
use api::input;
pub use api::{masked_matches, registry_base};

pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";
/// npm does not publish the registry's rate limits (it answers 429 beyond them), and token
/// management authenticates with the account password, which registries throttle harder than
/// reads. So rekey keeps GitHub-like request pacing (4,500 an hour + 500 burst: reads are cheap
/// for a registry serving billions of downloads) but writes — each token costs two, a create
/// and a delete — far below anything a person's `npm token` use would trip: 30 creates a
/// minute (+ 5), deletes paced apart ([`DELETE_PACE`]), 16 requests in flight, per registry.
/// That is about 30 tokens a minute sustained; a private registry may lift it
/// (`REKEY_NPM_REQUESTS_PER_HOUR`, `REKEY_NPM_WRITES_PER_MINUTE`,
/// `REKEY_NPM_DELETES_PER_MINUTE`).
pub const NPM_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 4_500,
    hourly_burst: 500,
    concurrent: 16,
    writes_per_minute: 30,
    write_burst: 5,
};
/// Token deletes, per minute and burst: paced apart from creates because in an incident they
/// are what closes exposure, and they must not queue behind the replacements' creates. Twice
/// the create pace: 50 exposed tokens are deleted in about 35 s instead of 90. A registry
/// that throttles anyway answers 429 with `retry-after`, which the engine waits out.
/// `REKEY_NPM_DELETES_PER_MINUTE` sets it (by default never below the writes' own pace).
pub const DELETE_PACE: (u32, u32) = (60, 15);
/// How long a delete waits for the registry to refuse the old value.
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_secs(30);
/// Default life of a new token, in days (npm's maximum for a write token).
pub const DEFAULT_EXPIRES_DAYS: u32 = 90;
/// How many pages of `GET /-/npm/v1/tokens` are followed at most.
const MAX_PAGES: usize = 100;

/// Where `password_env` names are looked up (the process environment; a map in tests).
pub type PasswordLookup = Box<dyn Fn(&str) -> Option<SecretString> + Send + Sync>;

/// What the provider is built from.
pub struct NpmConfig {
    pub lookup: PasswordLookup,
    pub timeout: Duration,
    pub budget: BudgetSpec,
    /// Token deletes per minute, and burst ([`DELETE_PACE`]).
    pub delete_pace: (u32, u32),
    pub propagation_wait: Duration,
}

impl fmt::Debug for NpmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NpmConfig")
            .field("timeout", &self.timeout)
            .field("budget", &self.budget)
            .field("delete_pace", &self.delete_pace)
            .finish_non_exhaustive()
    }
}

impl Default for NpmConfig {
    fn default() -> Self {
        Self {
            lookup: Box::new(|_| None),
            timeout: Duration::from_secs(30),
            budget: NPM_BUDGET,
            delete_pace: DELETE_PACE,
            propagation_wait: DEFAULT_PROPAGATION_WAIT,
        }
    }
}

impl NpmConfig {
    /// Passwords from the process environment. A private registry with other limits than
    /// npm's may lift the budget: `REKEY_NPM_REQUESTS_PER_HOUR`, `REKEY_NPM_WRITES_PER_MINUTE`,
    /// `REKEY_NPM_DELETES_PER_MINUTE`.
    pub fn from_env() -> Self {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        let mut budget = NPM_BUDGET;
        if let Some(n) = num("REKEY_NPM_REQUESTS_PER_HOUR") {
            budget.per_hour = n;
            budget.hourly_burst = (n / 10).max(1);
        }
        let mut delete_pace = DELETE_PACE;
        if let Some(n) = num("REKEY_NPM_WRITES_PER_MINUTE") {
            budget.writes_per_minute = n;
            budget.write_burst = (n / 6).max(1);
            if n > delete_pace.0 {
                delete_pace = (n, budget.write_burst.max(DELETE_PACE.1));
            }
        }
        if let Some(n) = num("REKEY_NPM_DELETES_PER_MINUTE") {
            delete_pace = (n, (n / 4).max(1));
        }
        Self {
            lookup: Box::new(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(SecretString::from)
            }),
            budget,
            delete_pace,
            ..Self::default()
        }
    }
}

/// The npm provider.
pub struct NpmProvider {
    config: NpmConfig,
    /// One client (and budget) per registry.
    clients: Mutex<HashMap<String, Arc<HttpClient>>>,
    /// Keys this process minted, by (registry, user), with the idempotency key of the step
    /// that minted each: on a registry that lists no names, another step's fresh token is
    /// never taken for an orphan.
    minted: Mutex<HashMap<(String, String), HashMap<String, String>>>,
    /// By idempotency key of a create this process undid by its recorded key (a redo: the new
    /// value was lost with an earlier process): the account's tokens right after. None of them
    /// is an orphan of that step's next mint, though the keys listed before the first mint miss
    /// them (another credential of the account may have minted since, in an earlier process).
    kept_at_undo: Mutex<HashMap<String, HashSet<String>>>,
    /// Per registry, one token write (create, delete) at a time from this process: a
    /// registry's token store may be read-modify-write (Verdaccio's is: two concurrent creates
    /// can lose one token, which then fails its check), and npm's write budget is small anyway.
    pub(super) writes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for NpmProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registries: Vec<String> = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        f.debug_struct("NpmProvider")
            .field("registries", &registries)
            .finish_non_exhaustive()
    }
}
/// How an npm step will authenticate with the process environment as it is (for `rekey
/// validate`): the account, the registry and the password variable, and whether it is set;
/// never a value. `None` for other steps.
pub fn describe_auth_from_env(step: &PlannedStep) -> Option<String> {
    if step.provider != "npm" {
        return None;
    }
    let lit = |k: &str| {
        step.inputs
            .get(k)
            .and_then(rekey_spec::Template::as_literal)
    };
    let registry = lit("registry").unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
    if step.action == "npm.whoami" {
        return Some(format!("the new token itself at {registry}"));
    }
    let user = lit("user").unwrap_or_default();
    let var = lit("password_env").unwrap_or_default();
    let set = std::env::var_os(&var).is_some_and(|v| !v.is_empty());
    Some(format!(
        "account {user} at {registry} with the password in ${var}{}",
        if set { "" } else { " — not set" }
    ))
}

#[async_trait]
impl Provider for NpmProvider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "npm.tokens.list" | "npm.tokens.create" | "npm.whoami" => Ok(()),
            "npm.tokens.delete" => {
                if step.inputs.contains_key("key") || step.inputs.contains_key("token") {
                    Ok(())
                } else {
                    Err(format!(
                        "{}: the old token's key is not in the inventory (token_key) and no consumer gives its value: rekey cannot tell which token to delete",
                        step.id
                    ))
                }
            }
            a => Err(format!("the npm provider does not handle action {a}")),
        }
    }

    /// The password variable is set: a run must not stop half-way for it.
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        if step.action == "npm.whoami" {
            return Ok(());
        }
        if let Some(var) = step
            .inputs
            .get("password_env")
            .and_then(rekey_spec::Template::as_literal)
            && (self.config.lookup)(&var).is_none()
        {
            return Err(ProviderError::permanent(format!(
                "npm: {} needs the account password in ${var}, which is not set",
                step.id
            )));
        }
        Ok(())
    }

    fn retry_budget(&self, step: &PlannedStep) -> Option<Duration> {
        (step.action == "npm.tokens.delete").then_some(self.config.propagation_wait * 3)
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match call.step.action.as_str() {
            "npm.tokens.list" => self.list_keys(call).await,
            "npm.tokens.create" => self.create(call).await,
            "npm.whoami" => self.verify(call).await,
            "npm.tokens.delete" => self.delete(call).await,
            a => Err(ProviderError::permanent(format!(
                "step {}: the npm provider does not handle action {a}",
                call.step.id
            ))),
        }
    }

    /// A mint is undone by deleting what it made: by its key, or, without outputs, as an
    /// orphan. With the key known there is no orphan to look for (the mint removed those of
    /// earlier calls first), and on a registry that lists no names, looking would take another
    /// step's token made by an earlier process for this one's; the tokens left are remembered
    /// as not this step's for its next mint (a redo). A delete cannot be undone; reads and
    /// checks have nothing to undo.
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        match call.step.action.as_str() {
            "npm.tokens.create" => {
                let a = self.account(call)?;
                if let Some(k) = outputs.get("key").filter(|k| !k.expose().is_empty()) {
                    self.delete_key(&a, k.expose()).await?;
                    let (tokens, _) = self.list(&a).await?;
                    self.kept_at_undo
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(
                            call.idempotency_key.to_owned(),
                            tokens.into_iter().map(|t| t.key).collect(),
                        );
                } else {
                    self.remove_orphans(call, &a).await?;
                }
                Ok(())
            }
            "npm.tokens.delete" => Err(ProviderError::permanent(format!(
                "{}: a deleted npm token cannot be brought back",
                call.step.id
            ))),
            _ => Ok(()),
        }
    }

    /// - create: the orphan of a lost call is deleted → not done (mint again);
    /// - delete: done when the key is not listed any more (or the old value is refused);
    /// - reads and checks: run again.
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        match call.step.action.as_str() {
            "npm.tokens.create" => {
                let a = self.account(call)?;
                match self.remove_orphans(call, &a).await {
                    Ok(_) => {}
                    // Deleting the orphan needs an OTP: the step, run again, asks for one and
                    // deletes it before it mints (`create` removes orphans first).
                    Err(e) if e.kind == ErrorKind::NeedsInput => call.reports.warning(format!(
                        "{}: a token made by a lost call may be left; deleting it needs a one-time password, which the step asks for when it runs again",
                        call.step.id
                    )),
                    Err(e) => return Err(e),
                }
                Ok(Reconciled::NotDone)
            }
            "npm.tokens.delete" => {
                if input(call, "user").is_none() {
                    // Its inputs held a secret that died with the process (the old value read
                    // from a consumer): nothing to look with; running it again is harmless.
                    return Ok(Reconciled::NotDone);
                }
                let a = self.account(call)?;
                if let Some(k) = input(call, "key") {
                    let (tokens, _) = self.list(&a).await?;
                    return Ok(if tokens.iter().any(|t| t.key == k.expose()) {
                        Reconciled::NotDone
                    } else {
                        Reconciled::Done(
                            [("deleted".to_owned(), Value::Plain(k.expose().to_owned()))].into(),
                        )
                    });
                }
                if let Some(v) = input(call, "token")
                    && self.whoami(&a.registry, v).await?.is_none()
                {
                    return Ok(Reconciled::Done(
                        [("deleted".to_owned(), Value::Plain(String::new()))].into(),
                    ));
                }
                Ok(Reconciled::NotDone)
            }
            _ => Ok(Reconciled::NotDone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::api::asks_otp;
    use super::*;

    #[test]
    fn masks() {
        let v = "YWQ1NjIzODkzMGQ3NGVlMTAwZjBiNWU1YWQ0MGEwMzE6Y2Y0OTU1Mw==";
        assert!(masked_matches("YWQ1N...1Mw==", v));
        assert!(!masked_matches("YWQ1N...1Mx==", v));
        assert!(masked_matches("npm_1f…", "npm_1fabcdef"));
        assert!(
            !masked_matches("npm_…", "npm_2fabcdef"),
            "too little shown to tell"
        );
        assert!(!masked_matches("a…", "abcdef"), "too little shown to tell");
        assert!(!masked_matches("", v));
    }

    #[test]
    fn registries() {
        assert_eq!(
            registry_base("https://registry.npmjs.org/"),
            "https://registry.npmjs.org"
        );
        assert_eq!(
            registry_base("https://acme.jfrog.io/artifactory/api/npm/npm-local/"),
            "https://acme.jfrog.io/artifactory/api/npm/npm-local"
        );
    }

    #[test]
    fn otp_challenge() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("www-authenticate", "OTP".parse().unwrap());
        assert!(asks_otp(&h, b""));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("www-authenticate", "Basic, Bearer".parse().unwrap());
        assert!(!asks_otp(&h, b"{\"error\":\"bad username/password\"}"));
        assert!(asks_otp(
            &reqwest::header::HeaderMap::new(),
            b"{\"error\":\"This operation requires a one-time password.\"}"
        ));
    }
}
