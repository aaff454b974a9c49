//! npm registry tokens: granular tokens minted, verified and deleted through the registry's
//! token API, on the public registry or a private one (Verdaccio, Artifactory, GitHub Packages).
//!
//! Same four parts as every connector (see `aws.rs`, `github.rs`):
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
use crate::http::{BudgetSpec, HttpClient, Spend, classify};

pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";
/// npm does not publish the registry's rate limits (it answers 429 beyond them), and token
/// management authenticates with the account password, which registries throttle harder than
/// reads. So rekey keeps GitHub-like request pacing (4,500 an hour + 500 burst: reads are cheap
/// for a registry serving billions of downloads) but writes — each token costs two, a create
/// and a delete — far below anything a person's `npm token` use would trip: 30 a minute (+ 5),
/// 16 requests in flight, per registry. That is about 15 tokens a minute sustained; a private
/// registry may lift it (`REKEY_NPM_REQUESTS_PER_HOUR`, `REKEY_NPM_WRITES_PER_MINUTE`).
pub const NPM_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 4_500,
    hourly_burst: 500,
    concurrent: 16,
    writes_per_minute: 30,
    write_burst: 5,
};
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
    pub propagation_wait: Duration,
}

impl fmt::Debug for NpmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NpmConfig")
            .field("timeout", &self.timeout)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Default for NpmConfig {
    fn default() -> Self {
        Self {
            lookup: Box::new(|_| None),
            timeout: Duration::from_secs(30),
            budget: NPM_BUDGET,
            propagation_wait: DEFAULT_PROPAGATION_WAIT,
        }
    }
}

impl NpmConfig {
    /// Passwords from the process environment. A private registry with other limits than
    /// npm's may lift the budget: `REKEY_NPM_REQUESTS_PER_HOUR`, `REKEY_NPM_WRITES_PER_MINUTE`.
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
        if let Some(n) = num("REKEY_NPM_WRITES_PER_MINUTE") {
            budget.writes_per_minute = n;
            budget.write_burst = (n / 6).max(1);
        }
        Self {
            lookup: Box::new(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(SecretString::from)
            }),
            budget,
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

/// One token as the registry lists it (its value masked).
#[derive(Debug, Clone, Deserialize)]
struct Listed {
    key: String,
    /// The masked value: `npm_1f…` (npm), `YWQ1N...1Mw==` (Verdaccio).
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    objects: Vec<serde_json::Value>,
    #[serde(default)]
    urls: Urls,
}

#[derive(Deserialize, Default)]
struct Urls {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    key: String,
    token: String,
}

#[derive(Deserialize)]
struct WhoAmI {
    #[serde(default)]
    username: Option<String>,
}

/// The account a token-management step acts for.
struct Account {
    registry: String,
    user: String,
    password: SecretString,
    /// An operator's answer to the registry's OTP question, for this call only.
    otp: Option<SecretString>,
}

fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a Value> {
    call.inputs.get(name).filter(|v| !v.expose().is_empty())
}

fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a Value, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}

/// A comma-separated inventory list.
fn list_of(call: &Call<'_>, name: &str) -> Vec<String> {
    input(call, name)
        .map(|v| {
            v.expose()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The registry's base URL without its trailing slash, as npm joins paths to it.
pub fn registry_base(registry: &str) -> String {
    registry.trim().trim_end_matches('/').to_owned()
}

/// The part of a new token's name that ties it to one step of one run.
fn name_tag(idempotency_key: &str) -> String {
    idempotency_key.chars().take(16).collect()
}

/// Whether `masked`, as a registry lists a token (`npm_1f…`, `YWQ1N...1Mw==`), shows `value`:
/// what it shows before and after the ellipsis must be the value's start and end, and show at
/// least 2 characters besides npm's `npm_` prefix (several tokens may still match: the caller
/// refuses to guess).
pub fn masked_matches(masked: &str, value: &str) -> bool {
    let (prefix, suffix) = if let Some((a, b)) = masked.split_once("...") {
        (a, b)
    } else if let Some((a, b)) = masked.split_once('…') {
        (a, b)
    } else {
        // Shown whole (a registry that does not mask): compare as is.
        return !masked.is_empty() && masked == value;
    };
    // `npm_` says nothing about which token it is.
    prefix.trim_start_matches("npm_").len() + suffix.len() >= 2
        && value.len() >= prefix.len() + suffix.len()
        && value.starts_with(prefix)
        && value.ends_with(suffix)
}

/// Reads an unsuccessful answer: npm's and Verdaccio's bodies say `{"error": …}` where GitHub's
/// say `{"message": …}`. A 401 asking for a one-time password becomes
/// [`ErrorKind::NeedsInput`].
async fn npm_error(op: &str, resp: Response, otp_sent: bool) -> ProviderError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED && asks_otp(&headers, &body) {
        return ProviderError::needs_input(if otp_sent {
            format!(
                "{op}: the registry refused the one-time password: enter a fresh one from your authenticator"
            )
        } else {
            format!(
                "{op}: the registry asks for a one-time password (two-factor authentication): enter the code from your authenticator"
            )
        });
    }
    let body = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.get("message").is_none() => match v.get("error").and_then(|e| e.as_str()) {
            Some(e) => serde_json::to_vec(&serde_json::json!({ "message": e })).unwrap_or_default(),
            None => body.to_vec(),
        },
        _ => body.to_vec(),
    };
    classify(op, status, &headers, &body, SystemTime::now())
}

/// npm's OTP challenge: `www-authenticate: OTP`, or a body that says a one-time password is
/// required.
fn asks_otp(headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let header = headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("otp")));
    header || {
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        text.contains("one-time pass")
    }
}

impl NpmProvider {
    pub fn new(config: NpmConfig) -> Self {
        Self {
            config,
            clients: Mutex::new(HashMap::new()),
            minted: Mutex::new(HashMap::new()),
            kept_at_undo: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_env() -> Self {
        Self::new(NpmConfig::from_env())
    }

    fn client(&self, registry: &str) -> Result<Arc<HttpClient>, ProviderError> {
        let base = registry_base(registry);
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ProviderError::permanent(format!(
                "npm: the registry `{base}` is not an http(s) URL"
            )));
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(&base) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(
            HttpClient::new("npm", &base, self.config.timeout, self.config.budget)?
                .with_accept("application/json"),
        );
        clients.insert(base, Arc::clone(&c));
        Ok(c)
    }

    fn registry(call: &Call<'_>) -> String {
        input(call, "registry")
            .map_or_else(|| DEFAULT_REGISTRY.to_owned(), |v| v.expose().to_owned())
    }

    /// The account of a token-management step: user, password from `password_env`, and the
    /// operator's OTP if the step was given one.
    fn account(&self, call: &Call<'_>) -> Result<Account, ProviderError> {
        let user = required(call, "user")?.expose().to_owned();
        let var = required(call, "password_env")?.expose().to_owned();
        let password = (self.config.lookup)(&var).ok_or_else(|| {
            ProviderError::permanent(format!(
                "npm: the credential's password_env names ${var}, which is not set (the password of npm account {user})"
            ))
        })?;
        let otp = call
            .inputs
            .get(OPERATOR_INPUT)
            .map(|v| SecretString::from(v.expose().trim().to_owned()))
            .filter(|v| !v.expose_secret().is_empty());
        Ok(Account {
            registry: Self::registry(call),
            user,
            password,
            otp,
        })
    }

    /// A request authenticated as the account (and with the OTP, when there is one).
    fn authed(
        &self,
        a: &Account,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, ProviderError> {
        // `basic_auth` marks the header sensitive; so is the OTP's.
        let mut req = self
            .client(&a.registry)?
            .request(method, path)
            .basic_auth(&a.user, Some(a.password.expose_secret()));
        if let Some(otp) = &a.otp {
            let mut v =
                reqwest::header::HeaderValue::from_str(otp.expose_secret()).map_err(|_| {
                    ProviderError::needs_input(
                        "npm: that is not a one-time password (digits only): enter the code again",
                    )
                })?;
            v.set_sensitive(true);
            req = req.header("npm-otp", v);
        }
        Ok(req)
    }

    async fn send_ok(
        &self,
        a: &Account,
        op: &str,
        req: RequestBuilder,
    ) -> Result<Response, ProviderError> {
        let resp = self.client(&a.registry)?.send(op, req, Spend::Ours).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(npm_error(op, resp, a.otp.is_some()).await)
        }
    }

    /// Every token of the account, following `urls.next`.
    async fn list(&self, a: &Account) -> Result<(Vec<Listed>, bool), ProviderError> {
        let mut out = Vec::new();
        let mut names = false;
        let mut path = "/-/npm/v1/tokens".to_owned();
        for _ in 0..MAX_PAGES {
            let op = "GET /-/npm/v1/tokens";
            let req = self.authed(a, Method::GET, &path)?;
            let resp = self.send_ok(a, op, req).await?;
            let page: ListAnswer = resp
                .json()
                .await
                .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
            for o in page.objects {
                names |= o.get("name").is_some_and(serde_json::Value::is_string);
                if let Ok(t) = serde_json::from_value::<Listed>(o) {
                    out.push(t);
                }
            }
            match page.urls.next.filter(|n| !n.is_empty()) {
                // `next` is absolute (npm) or relative to the registry; either way only its
                // path and query are followed, on this registry (never another host).
                Some(next) => {
                    let rest = if let Some(i) = next.find("/-/npm/v1/tokens") {
                        next[i..].to_owned()
                    } else {
                        return Err(ProviderError::permanent(format!(
                            "{op}: the next page is not a token list of this registry"
                        )));
                    };
                    if rest == path {
                        break;
                    }
                    path = rest;
                }
                None => return Ok((out, names)),
            }
        }
        Ok((out, names))
    }

    async fn delete_key(&self, a: &Account, key: &str) -> Result<(), ProviderError> {
        let op = "DELETE /-/npm/v1/tokens/token/{key}";
        let path = format!("/-/npm/v1/tokens/token/{}", seg(key));
        let req = self.authed(a, Method::DELETE, &path)?;
        let resp = self.client(&a.registry)?.send(op, req, Spend::Ours).await?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(npm_error(op, resp, a.otp.is_some()).await)
        }
    }

    /// `GET /-/whoami` with a token: the username, or `None` when the registry does not take
    /// the token (401/403, or Verdaccio's 200 `{}`).
    async fn whoami(&self, registry: &str, token: &Value) -> Result<Option<String>, ProviderError> {
        let op = "GET /-/whoami";
        let client = self.client(registry)?;
        let req = client
            .request(Method::GET, "/-/whoami")
            .bearer_auth(token.expose());
        let resp = client.send(op, req, Spend::NotOurs).await?;
        if matches!(
            resp.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(npm_error(op, resp, false).await);
        }
        let w: WhoAmI = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok(w.username.filter(|u| !u.is_empty()))
    }

    fn minted_key(&self, a: &Account, key: &str, idem: &str) {
        self.minted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((registry_base(&a.registry), a.user.clone()))
            .or_default()
            .insert(key.to_owned(), idem.to_owned());
    }

    fn minted_by_others(&self, a: &Account, idem: &str) -> HashSet<String> {
        self.minted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(registry_base(&a.registry), a.user.clone()))
            .map(|m| {
                m.iter()
                    .filter(|(_, i)| i.as_str() != idem)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tokens an earlier call of this create step made (its answer lost): by name where
    /// the registry keeps names, else the tokens missing from the keys listed before the mint.
    async fn orphans(&self, call: &Call<'_>, a: &Account) -> Result<Vec<String>, ProviderError> {
        let (tokens, names) = self.list(a).await?;
        let tag = name_tag(call.idempotency_key);
        if names {
            return Ok(tokens
                .into_iter()
                .filter(|t| t.name.as_deref().is_some_and(|n| n.ends_with(&tag)))
                .map(|t| t.key)
                .collect());
        }
        let Some(before) = input(call, "existing_keys") else {
            // Neither names nor a list from before the mint: nothing can be told apart.
            call.reports.warning(format!(
                "{}: the registry lists no token names and no keys were listed before the mint: a token made by a lost call cannot be found",
                call.step.id
            ));
            return Ok(Vec::new());
        };
        let before: HashSet<String> = serde_json::from_str::<Vec<String>>(before.expose())
            .map_err(|_| {
                ProviderError::permanent(format!(
                    "step {}: `existing_keys` is not the list npm.tokens.list gives",
                    call.step.id
                ))
            })?
            .into_iter()
            .collect();
        let others = self.minted_by_others(a, call.idempotency_key);
        let kept = self
            .kept_at_undo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(call.idempotency_key)
            .cloned()
            .unwrap_or_default();
        let candidates: Vec<String> = tokens
            .into_iter()
            .map(|t| t.key)
            .filter(|k| !before.contains(k) && !others.contains(k) && !kept.contains(k))
            .collect();
        if candidates.len() > 1 {
            return Err(ProviderError::permanent(format!(
                "step {}: the registry lists no token names, and {} tokens of {} appeared since the run listed them ({}): rekey cannot tell which one a lost mint made; delete the unknown ones by hand (npm token revoke KEY) and resume",
                call.step.id,
                candidates.len(),
                a.user,
                candidates.join(", ")
            )));
        }
        Ok(candidates)
    }

    async fn remove_orphans(&self, call: &Call<'_>, a: &Account) -> Result<usize, ProviderError> {
        let orphans = self.orphans(call, a).await?;
        for k in &orphans {
            self.delete_key(a, k).await?;
            call.reports.side_effect(format!(
                "deleted npm token {k} of {}: made by an earlier call of {} whose answer was lost (an orphan)",
                a.user, call.step.id
            ));
        }
        Ok(orphans.len())
    }

    /// `npm.tokens.list`: the keys of the account's tokens, as a JSON list.
    async fn list_keys(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = self.account(call)?;
        let (tokens, _) = self.list(&a).await?;
        let mut keys: Vec<String> = tokens.into_iter().map(|t| t.key).collect();
        keys.sort();
        Ok([(
            "keys".to_owned(),
            Value::Plain(serde_json::to_string(&keys).expect("strings serialize")),
        )]
        .into())
    }

    /// `npm.tokens.create`: removes what an earlier call of this step left, then mints.
    async fn create(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = self.account(call)?;
        self.remove_orphans(call, &a).await?;
        let readonly = input(call, "permission").is_some_and(|p| p.expose() == "read-only");
        let days = match input(call, "expires_days") {
            Some(d) => d.expose().parse::<u32>().map_err(|_| {
                ProviderError::permanent(format!(
                    "step {}: expires_days `{}` is not a number of days",
                    call.step.id,
                    d.expose()
                ))
            })?,
            None => DEFAULT_EXPIRES_DAYS,
        };
        if !readonly && days > rekey_spec::kind::NPM_WRITE_TOKEN_MAX_DAYS {
            return Err(ProviderError::permanent(format!(
                "step {}: npm lets a write token live at most {} days, not {days}",
                call.step.id,
                rekey_spec::kind::NPM_WRITE_TOKEN_MAX_DAYS
            )));
        }
        let base_name = input(call, "token_name").map_or_else(
            || format!("rekey-{}", call.credential.id),
            |v| v.expose().to_owned(),
        );
        let name = format!("{base_name}-{}", name_tag(call.idempotency_key));
        let permission = if readonly { "read-only" } else { "read-write" };
        let mut body = serde_json::json!({
            "password": a.password.expose_secret(),
            "name": name,
            "token_description": format!("rotated by rekey, run {}", call.run_id),
            "expires": days,
            "packages_and_scopes_permission": permission,
            "readonly": readonly,
            "cidr_whitelist": list_of(call, "cidr_whitelist"),
        });
        let packages = list_of(call, "packages");
        let scopes = list_of(call, "scopes");
        if !packages.is_empty() {
            body["packages"] = packages.into();
        }
        if !scopes.is_empty() {
            body["scopes"] = scopes.into();
        }
        let op = "POST /-/npm/v1/tokens";
        let req = self
            .authed(&a, Method::POST, "/-/npm/v1/tokens")?
            .json(&body);
        drop(body);
        let resp = self.send_ok(&a, op, req).await?;
        let c: Created = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        self.minted_key(&a, &c.key, call.idempotency_key);
        Ok([
            ("key".to_owned(), Value::Plain(c.key)),
            ("token".to_owned(), Value::secret(c.token)),
        ]
        .into())
    }

    /// `npm.whoami`: the new token is accepted and belongs to `expected_user`.
    async fn verify(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let token = required(call, "token")?;
        let registry = Self::registry(call);
        let Some(user) = self.whoami(&registry, token).await? else {
            return Err(ProviderError::permanent(format!(
                "step {}: the registry does not accept the new token (whoami names no user)",
                call.step.id
            )));
        };
        if let Some(want) = input(call, "expected_user")
            && want.expose() != user
        {
            return Err(ProviderError::permanent(format!(
                "step {}: the new token belongs to {user}, not {}",
                call.step.id,
                want.expose()
            )));
        }
        Ok([("username".to_owned(), Value::Plain(user))].into())
    }

    /// The key of the old token: the inventory's, else found in the list by the old value.
    /// `None` when the old value is not listed any more.
    async fn old_key(&self, call: &Call<'_>, a: &Account) -> Result<Option<String>, ProviderError> {
        let except = input(call, "except_key").map(|v| v.expose().to_owned());
        if let Some(k) = input(call, "key") {
            let k = k.expose().to_owned();
            if except.as_deref() == Some(k.as_str()) {
                return Err(ProviderError::permanent(format!(
                    "step {}: the token to delete ({k}) is the new one",
                    call.step.id
                )));
            }
            return Ok(Some(k));
        }
        let Some(value) = input(call, "token") else {
            return Err(ProviderError::permanent(format!(
                "step {}: neither the old token's key nor its value is known: set token_key in the inventory",
                call.step.id
            )));
        };
        let (tokens, _) = self.list(a).await?;
        let matches: Vec<String> = tokens
            .into_iter()
            .filter(|t| except.as_deref() != Some(t.key.as_str()))
            .filter(|t| masked_matches(&t.token, value.expose()))
            .map(|t| t.key)
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [k] => Ok(Some(k.clone())),
            ks => Err(ProviderError::permanent(format!(
                "step {}: {} tokens of {} look like the old one as the registry shows them ({}): set token_key in the inventory",
                call.step.id,
                ks.len(),
                a.user,
                ks.join(", ")
            ))),
        }
    }

    /// `npm.tokens.delete`.
    async fn delete(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = self.account(call)?;
        let key = self.old_key(call, &a).await?;
        if let Some(k) = &key {
            self.delete_key(&a, k).await?;
        }
        // With the old value at hand: the registry must refuse it now.
        if let Some(value) = input(call, "token") {
            let deadline = Instant::now() + self.config.propagation_wait;
            let mut pause = Duration::from_millis(100);
            loop {
                match self.whoami(&a.registry, value).await? {
                    None => break,
                    Some(_) if Instant::now() >= deadline => {
                        return Err(ProviderError::transient(format!(
                            "step {}: the registry still accepts the old token after the delete",
                            call.step.id
                        )));
                    }
                    Some(_) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(3));
                    }
                }
            }
        }
        Ok([("deleted".to_owned(), Value::Plain(key.unwrap_or_default()))].into())
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
