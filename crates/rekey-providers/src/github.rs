//! GitHub: Actions secrets as a consumer, PAT revocation, token and App key verification.
//!
//! Same four parts as every connector (see `aws.rs`):
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
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_box::aead::OsRng;
use rekey_engine::{Call, ErrorKind, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::PlannedStep;
use rekey_spec::Consumer;
use rekey_spec::inventory::ActionsScope;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::http::{BudgetSpec, HttpClient, Spend, error_of};

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
/// How long a revoke waits for `GET /user` with the old token to answer 401.
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_mins(1);
const INSTALLATION_TOKEN_LIFE: Duration = Duration::from_mins(50);

// ---------------------------------------------------------------------------------------------
// Client

/// Where the token that writes secrets comes from (named in `rekey validate`, never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// The environment variable a consumer names.
    TokenEnv(String),
    /// A GitHub App installation.
    App {
        app_id: String,
        installation_id: String,
    },
    /// `GITHUB_TOKEN`.
    GithubToken,
    /// No authentication (github.com's `/credentials/revoke`), or the credential's own token.
    None(&'static str),
}

impl fmt::Display for AuthSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TokenEnv(v) => write!(f, "the token in ${v}"),
            Self::App {
                app_id,
                installation_id,
            } => write!(f, "GitHub App {app_id}, installation {installation_id}"),
            Self::GithubToken => f.write_str("the token in $GITHUB_TOKEN"),
            Self::None(why) => f.write_str(why),
        }
    }
}

/// A GitHub App installation that writes secrets instead of a PAT.
pub struct AppAuth {
    pub app_id: String,
    pub installation_id: String,
    key: jsonwebtoken::EncodingKey,
    token: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppAuth")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .finish_non_exhaustive()
    }
}

impl AppAuth {
    /// From the App's private key (PEM). The key is never formatted.
    pub fn new(
        app_id: &str,
        installation_id: &str,
        pem: &SecretString,
    ) -> Result<Self, ProviderError> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(
            |_| {
                ProviderError::permanent(format!(
                    "github: the private key of GitHub App {app_id} is not an RSA key in PEM form"
                ))
            },
        )?;
        Ok(Self {
            app_id: app_id.to_owned(),
            installation_id: installation_id.to_owned(),
            key,
            token: tokio::sync::Mutex::new(None),
        })
    }
}

/// Where tokens named by `token_env` are looked up (the process environment; a map in tests).
pub type TokenLookup = Box<dyn Fn(&str) -> Option<SecretString> + Send + Sync>;

/// What the provider is built from.
pub struct GithubConfig {
    pub api_url: String,
    /// `GITHUB_TOKEN`.
    pub token: Option<SecretString>,
    pub app: Option<AppAuth>,
    pub lookup: TokenLookup,
    pub timeout: Duration,
    pub budget: BudgetSpec,
    pub propagation_wait: Duration,
}

impl fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubConfig")
            .field("api_url", &self.api_url)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl GithubConfig {
    /// For a base URL, with no token: tests add what they need.
    pub fn new(api_url: &str) -> Self {
        Self {
            api_url: api_url.trim_end_matches('/').to_owned(),
            token: None,
            app: None,
            lookup: Box::new(|_| None),
            timeout: Duration::from_secs(30),
            budget: GITHUB_BUDGET,
            propagation_wait: DEFAULT_PROPAGATION_WAIT,
        }
    }

    /// `GITHUB_API_URL`, `GITHUB_TOKEN`, the App variables, and `token_env` names from the
    /// process environment.
    pub fn from_env() -> Result<Self, ProviderError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut c = Self::new(&var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into()));
        c.token = var("GITHUB_TOKEN").map(SecretString::from);
        c.lookup = Box::new(move |k| var(k).map(SecretString::from));
        if let Some(app_id) = var("GITHUB_APP_ID") {
            let (Some(file), Some(inst)) = (
                var("GITHUB_APP_PRIVATE_KEY_FILE"),
                var("GITHUB_APP_INSTALLATION_ID"),
            ) else {
                return Err(ProviderError::permanent(
                    "github: GITHUB_APP_ID is set: set GITHUB_APP_PRIVATE_KEY_FILE (the App's .pem) and GITHUB_APP_INSTALLATION_ID too",
                ));
            };
            let pem = std::fs::read_to_string(&file).map_err(|e| {
                ProviderError::permanent(format!(
                    "github: cannot read GITHUB_APP_PRIVATE_KEY_FILE {file}: {}",
                    e.kind()
                ))
            })?;
            c.app = Some(AppAuth::new(&app_id, &inst, &SecretString::from(pem))?);
        }
        Ok(c)
    }
}

/// The real GitHub provider.
pub struct GithubProvider {
    http: HttpClient,
    /// GitHub Enterprise Server (`…/api/v3`): `/credentials/revoke` is called authenticated.
    enterprise: bool,
    token: Option<SecretString>,
    app: Option<AppAuth>,
    lookup: TokenLookup,
    propagation_wait: Duration,
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

/// Which auth a GitHub step will use with the process environment as it is (for `rekey
/// validate`), and whether its variable is set; never a value. `None` for other steps.
pub fn describe_auth_from_env(step: &PlannedStep) -> Option<String> {
    let github_step = step.provider == "github" || target(step).is_some();
    if !github_step {
        return None;
    }
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let api = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| DEFAULT_API_URL.into());
    let source = match step.action.as_str() {
        "github.user.get" => return Some("the new token itself".into()),
        "github.app.verify_key" => return Some("a JWT signed with the new key".into()),
        "github.credentials.revoke" if !is_enterprise(&api) => {
            return Some(format!(
                "unauthenticated ({api} refuses an authenticated revoke)"
            ));
        }
        _ => match token_env(step) {
            Some(v) => (format!("the token in ${v}"), set(v)),
            None if set("GITHUB_APP_ID") => (
                format!(
                    "GitHub App {} (installation from $GITHUB_APP_INSTALLATION_ID, key from $GITHUB_APP_PRIVATE_KEY_FILE)",
                    std::env::var("GITHUB_APP_ID").unwrap_or_default()
                ),
                set("GITHUB_APP_INSTALLATION_ID") && set("GITHUB_APP_PRIVATE_KEY_FILE"),
            ),
            None => ("the token in $GITHUB_TOKEN".to_owned(), set("GITHUB_TOKEN")),
        },
    };
    Some(if source.1 {
        source.0
    } else {
        format!("{} — not set", source.0)
    })
}

type ScopeKey = tokio::sync::OnceCell<(String, crypto_box::PublicKey)>;

/// GitHub Enterprise Server's API lives under `/api/v3`; github.com's at the host's root.
pub fn is_enterprise(api_url: &str) -> bool {
    api_url.trim_end_matches('/').ends_with("/api/v3")
}

impl GithubProvider {
    pub fn new(config: GithubConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            http: HttpClient::new("github", &config.api_url, config.timeout, config.budget)?,
            enterprise: is_enterprise(&config.api_url),
            token: config.token,
            app: config.app,
            lookup: config.lookup,
            propagation_wait: config.propagation_wait,
            keys: Mutex::new(HashMap::new()),
        })
    }

    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(GithubConfig::from_env()?)
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Which token a step authenticates with, without reading it.
    pub fn auth_source(&self, step: &PlannedStep) -> AuthSource {
        match step.action.as_str() {
            "github.user.get" => AuthSource::None("the new token itself"),
            "github.app.verify_key" => AuthSource::None("a JWT signed with the new key"),
            "github.credentials.revoke" if !self.enterprise => {
                AuthSource::None("unauthenticated (github.com refuses an authenticated revoke)")
            }
            _ => self.writer_source(token_env(step)),
        }
    }

    fn writer_source(&self, token_env: Option<&str>) -> AuthSource {
        if let Some(v) = token_env {
            AuthSource::TokenEnv(v.to_owned())
        } else if let Some(app) = &self.app {
            AuthSource::App {
                app_id: app.app_id.clone(),
                installation_id: app.installation_id.clone(),
            }
        } else {
            AuthSource::GithubToken
        }
    }

    /// The token that writes secrets (and revokes on GHES).
    async fn writer_token(&self, token_env: Option<&str>) -> Result<SecretString, ProviderError> {
        match self.writer_source(token_env) {
            AuthSource::TokenEnv(v) => (self.lookup)(&v).ok_or_else(|| {
                ProviderError::permanent(format!(
                    "github: the consumer's token_env names ${v}, which is not set"
                ))
            }),
            AuthSource::App { .. } => self.installation_token().await,
            _ => self.token.clone().ok_or_else(|| {
                ProviderError::permanent(
                    "github: no token: set GITHUB_TOKEN, `token_env` on the consumer, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_APP_INSTALLATION_ID",
                )
            }),
        }
    }

    /// An installation access token of the configured App, minted once and kept 50 minutes
    /// (GitHub's last an hour).
    async fn installation_token(&self) -> Result<SecretString, ProviderError> {
        let app = self.app.as_ref().expect("an App is configured");
        let mut cached = app.token.lock().await;
        if let Some((t, at)) = cached.as_ref()
            && at.elapsed() < INSTALLATION_TOKEN_LIFE
        {
            return Ok(t.clone());
        }
        let jwt = app_jwt(&app.app_id, &app.key)?;
        let op = format!(
            "POST /app/installations/{}/access_tokens",
            app.installation_id
        );
        let req = self
            .http
            .request(
                Method::POST,
                &format!(
                    "/app/installations/{}/access_tokens",
                    seg(&app.installation_id)
                ),
            )
            .bearer_auth(jwt.expose_secret());
        let resp = self.http.send_ok(&op, req, Spend::Ours).await?;
        let t: TokenAnswer = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        let t = SecretString::from(t.token);
        *cached = Some((t.clone(), Instant::now()));
        Ok(t)
    }
}

/// An RS256 JWT for a GitHub App: issued 60 s in the past (clock drift), valid 9 minutes
/// (GitHub refuses more than 10).
fn app_jwt(app_id: &str, key: &jsonwebtoken::EncodingKey) -> Result<SecretString, ProviderError> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iat: u64,
        exp: u64,
        iss: &'a str,
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        iat: now.saturating_sub(60),
        exp: now + 540,
        iss: app_id,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        key,
    )
    .map(SecretString::from)
    .map_err(|_| ProviderError::permanent(format!("github: cannot sign a JWT for App {app_id}")))
}

/// One path segment, percent-encoded (environment names may hold spaces).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `OWNER/NAME` as two encoded segments.
fn repo_path(repo: &str) -> String {
    repo.split('/').map(seg).collect::<Vec<_>>().join("/")
}

// ---------------------------------------------------------------------------------------------
// The Actions secret a step targets

struct Target<'a> {
    scope: &'a ActionsScope,
    name: &'a str,
    field: Option<&'a str>,
    token_env: Option<&'a str>,
}

fn target(step: &PlannedStep) -> Option<Target<'_>> {
    match &step.target {
        Some(Consumer::GithubActionsSecret {
            scope,
            name,
            field,
            token_env,
        }) => Some(Target {
            scope,
            name,
            field: field.as_deref(),
            token_env: token_env.as_deref(),
        }),
        _ => None,
    }
}

fn token_env(step: &PlannedStep) -> Option<&str> {
    target(step).and_then(|t| t.token_env)
}

/// Where a scope's secrets are: `/repos/O/R/actions/secrets`, `/repos/O/R/environments/E/secrets`,
/// `/orgs/O/actions/secrets`.
fn secrets_path(scope: &ActionsScope) -> String {
    match scope {
        ActionsScope::Repo { repo } => format!("/repos/{}/actions/secrets", repo_path(repo)),
        ActionsScope::Environment { repo, environment } => format!(
            "/repos/{}/environments/{}/secrets",
            repo_path(repo),
            seg(environment)
        ),
        ActionsScope::Org { org, .. } => format!("/orgs/{}/actions/secrets", seg(org)),
    }
}

fn scope_label(scope: &ActionsScope) -> String {
    match scope {
        ActionsScope::Repo { repo } => format!("repository {repo}"),
        ActionsScope::Environment { repo, environment } => {
            format!("environment {environment} of {repo}")
        }
        ActionsScope::Org { org, .. } => format!("organization {org}"),
    }
}

/// GitHub's rules for secret names: letters, digits and `_`, not starting with a digit or
/// `GITHUB_`.
fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a name GitHub accepts for an Actions secret (letters, digits and _, not starting with a digit or GITHUB_)"
        ))
    }
}

fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a Value> {
    call.inputs.get(name).filter(|v| !v.expose().is_empty())
}

fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a Value, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}

/// The value a secret receives: the consumer's `field`, or the only value delivered.
fn delivered_value<'a>(
    call: &'a Call<'_>,
    field: Option<&str>,
) -> Result<&'a Value, ProviderError> {
    if let Some(f) = field {
        return call.inputs.get(f).ok_or_else(|| {
            ProviderError::permanent(format!(
                "step {}: the delivered document has no field `{f}`",
                call.step.id
            ))
        });
    }
    match call.inputs.len() {
        1 => Ok(call.inputs.values().next().expect("one")),
        n => Err(ProviderError::permanent(format!(
            "step {}: an Actions secret holds one value, and this step delivers {n}: set the consumer's `field:`",
            call.step.id
        ))),
    }
}

#[derive(Deserialize)]
struct PublicKeyAnswer {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

#[derive(Deserialize)]
struct RepoId {
    id: u64,
}

#[derive(Deserialize)]
struct Repos {
    repositories: Vec<RepoId>,
}

#[derive(Deserialize)]
struct SecretMeta {
    visibility: String,
}

#[derive(Deserialize)]
struct UserAnswer {
    login: String,
}

#[derive(Deserialize)]
struct AppAnswer {
    id: u64,
    slug: String,
}

// ---------------------------------------------------------------------------------------------
// Actions

impl GithubProvider {
    /// The scope's public key, fetched once per run (a 404 means the scope does not exist or
    /// the token cannot see it).
    async fn public_key(
        &self,
        scope: &ActionsScope,
        token: &SecretString,
    ) -> Result<(String, crypto_box::PublicKey), ProviderError> {
        let path = format!("{}/public-key", secrets_path(scope));
        let cell = Arc::clone(
            self.keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(path.clone())
                .or_default(),
        );
        cell.get_or_try_init(|| self.fetch_public_key(scope, &path, token))
            .await
            .cloned()
    }

    async fn fetch_public_key(
        &self,
        scope: &ActionsScope,
        path: &str,
        token: &SecretString,
    ) -> Result<(String, crypto_box::PublicKey), ProviderError> {
        let op = format!("GET {path}");
        let req = self
            .http
            .request(Method::GET, path)
            .bearer_auth(token.expose_secret());
        let resp = self.http.send(&op, req, Spend::Ours).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(ProviderError::permanent(format!(
                "github: the {} does not exist, or the token cannot see its Actions secrets",
                scope_label(scope)
            )));
        }
        if !resp.status().is_success() {
            return Err(error_of(&op, resp).await);
        }
        let k: PublicKeyAnswer = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        let bytes = B64
            .decode(k.key.trim())
            .ok()
            .and_then(|b| crypto_box::PublicKey::from_slice(&b).ok())
            .ok_or_else(|| {
                ProviderError::permanent(format!("{op}: the public key is not a curve25519 key"))
            })?;
        Ok((k.key_id, bytes))
    }

    fn forget_key(&self, scope: &ActionsScope) {
        let path = format!("{}/public-key", secrets_path(scope));
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&path);
    }

    /// A repository's numeric id (organization secrets name their repositories by id).
    async fn repo_id(&self, repo: &str, token: &SecretString) -> Result<u64, ProviderError> {
        let path = format!("/repos/{}", repo_path(repo));
        let op = format!("GET {path}");
        let req = self
            .http
            .request(Method::GET, &path)
            .bearer_auth(token.expose_secret());
        let resp = self.http.send(&op, req, Spend::Ours).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(ProviderError::permanent(format!(
                "github: repository {repo} does not exist, or the token cannot see it"
            )));
        }
        if !resp.status().is_success() {
            return Err(error_of(&op, resp).await);
        }
        let r: RepoId = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok(r.id)
    }

    /// The `visibility` and `selected_repository_ids` of an organization secret: as the
    /// inventory says, else as the secret has them now (a delivery must not widen or narrow
    /// who can read it), else `private`.
    async fn org_visibility(
        &self,
        t: &Target<'_>,
        token: &SecretString,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
        let ActionsScope::Org {
            org,
            visibility,
            selected_repositories,
        } = t.scope
        else {
            return Ok(serde_json::Map::new());
        };
        let mut out = serde_json::Map::new();
        let secret_path = format!("{}/{}", secrets_path(t.scope), seg(t.name));
        let visibility = if let Some(v) = visibility {
            v.clone()
        } else {
            let op = format!("GET {secret_path}");
            let req = self
                .http
                .request(Method::GET, &secret_path)
                .bearer_auth(token.expose_secret());
            let resp = self.http.send(&op, req, Spend::Ours).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                "private".to_owned()
            } else if resp.status().is_success() {
                resp.json::<SecretMeta>()
                    .await
                    .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?
                    .visibility
            } else {
                return Err(error_of(&op, resp).await);
            }
        };
        if visibility == "selected" {
            let ids: Vec<u64> = if selected_repositories.is_empty() {
                // Keep the repositories it has.
                let path = format!("{secret_path}/repositories");
                let op = format!("GET {path}");
                let req = self
                    .http
                    .request(Method::GET, &path)
                    .query(&[("per_page", "100")])
                    .bearer_auth(token.expose_secret());
                let resp = self.http.send_ok(&op, req, Spend::Ours).await?;
                resp.json::<Repos>()
                    .await
                    .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?
                    .repositories
                    .into_iter()
                    .map(|r| r.id)
                    .collect()
            } else {
                let mut ids = Vec::with_capacity(selected_repositories.len());
                for r in selected_repositories {
                    let full = if r.contains('/') {
                        r.clone()
                    } else {
                        format!("{org}/{r}")
                    };
                    ids.push(self.repo_id(&full, token).await?);
                }
                ids
            };
            out.insert("selected_repository_ids".into(), ids.into());
        }
        out.insert("visibility".into(), visibility.into());
        Ok(out)
    }

    /// `consumer.deliver`: seal the value with the scope's public key and `PUT` it.
    async fn deliver(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let t = target(call.step).ok_or_else(|| not_actions(call.step))?;
        let value = delivered_value(call, t.field)?;
        let token = self.writer_token(t.token_env).await?;
        let (key_id, key) = self.public_key(t.scope, &token).await?;
        let sealed = key
            .seal(&mut OsRng, value.expose().as_bytes())
            .map_err(|_| ProviderError::permanent("github: sealing the value failed"))?;
        let mut body = self.org_visibility(&t, &token).await?;
        body.insert("encrypted_value".into(), B64.encode(sealed).into());
        body.insert("key_id".into(), key_id.clone().into());
        let path = format!("{}/{}", secrets_path(t.scope), seg(t.name));
        let op = format!("PUT {path}");
        let req = self
            .http
            .request(Method::PUT, &path)
            .bearer_auth(token.expose_secret())
            .json(&body);
        let resp = self.http.send(&op, req, Spend::Ours).await?;
        if !resp.status().is_success() {
            // The scope's key may have been rotated: fetch it again next time.
            self.forget_key(t.scope);
            return Err(error_of(&op, resp).await);
        }
        Ok([(
            "version".to_owned(),
            Value::Plain(format!(
                "{}#key:{key_id}",
                call.step.consumer_label.as_deref().unwrap_or(t.name)
            )),
        )]
        .into())
    }

    /// `GET /user` with a token: its login, or `None` for 401 (not a valid token).
    async fn login_of(&self, token: &Value) -> Result<Option<String>, ProviderError> {
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
    async fn user_get(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
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

    /// Waits until `GET /user` with each token answers 401 (revocation propagates), up to the
    /// propagation wait. Returns, per token, whether it is dead.
    async fn wait_dead(&self, tokens: &[&Value]) -> Vec<Result<bool, ProviderError>> {
        let deadline = Instant::now() + self.propagation_wait;
        let mut out: Vec<Option<Result<bool, ProviderError>>> = vec![None; tokens.len()];
        let mut pause = Duration::from_millis(200);
        loop {
            let pending: Vec<usize> = (0..tokens.len()).filter(|i| out[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let checks = futures_join(pending.iter().map(|i| self.login_of(tokens[*i]))).await;
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

    /// Revokes the tokens of several revoke steps: those GitHub still accepts go in requests
    /// of up to 1,000, then each is checked dead.
    async fn revoke_all(&self, calls: &[Call<'_>]) -> Vec<Result<Values, ProviderError>> {
        let mut results: Vec<Option<Result<Values, ProviderError>>> = vec![None; calls.len()];
        let mut tokens: Vec<(usize, &Value)> = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            match required(c, "token") {
                Ok(t) => tokens.push((i, t)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // A token GitHub already refuses needs no request (a retry after a lost answer).
        let alive = futures_join(tokens.iter().map(|(_, t)| self.login_of(t))).await;
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
            if let Err(e) = self.revoke_request(&plain).await {
                for (i, _) in chunk {
                    results[*i] = Some(Err(e.clone()));
                }
                continue;
            }
            let vals: Vec<&Value> = chunk.iter().map(|(_, t)| *t).collect();
            for ((i, _), dead) in chunk.iter().zip(self.wait_dead(&vals).await) {
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

    /// `github.app.verify_key`: a JWT signed with the new key is accepted by `GET /app`, and
    /// the App is the credential's.
    async fn verify_app_key(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let app_id = required(call, "app_id")?.expose().to_owned();
        let pem = required(call, "private_key")?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|_| {
            ProviderError::permanent(format!(
                "step {}: the new private key is not an RSA key in PEM form (the .pem file GitHub downloads)",
                call.step.id
            ))
        })?;
        let jwt = app_jwt(&app_id, &key)?;
        let op = "GET /app";
        let req = self
            .http
            .request(Method::GET, "/app")
            .bearer_auth(jwt.expose_secret());
        let resp = self.http.send(op, req, Spend::NotOurs).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(ProviderError::permanent(format!(
                "step {}: GitHub does not accept a JWT signed with the new key for App {app_id} (401): is it this App's key?",
                call.step.id
            )));
        }
        if !resp.status().is_success() {
            return Err(error_of(op, resp).await);
        }
        let app: AppAnswer = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        if app.id.to_string() != app_id {
            return Err(ProviderError::permanent(format!(
                "step {}: the new key belongs to App {} ({}), not {app_id}",
                call.step.id, app.id, app.slug
            )));
        }
        Ok([("app_slug".to_owned(), Value::Plain(app.slug))].into())
    }
}

/// Runs futures concurrently (the budget's semaphore bounds them), keeping their order.
pub(crate) async fn futures_join<F: std::future::Future>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    join_all(futs.map(Box::pin).collect()).await
}

/// Polls every future until all are ready.
async fn join_all<F: std::future::Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    let mut done: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in futs.iter_mut().enumerate() {
            if done[i].is_none() {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().map(|d| d.expect("ready")).collect()
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
            "github.user.get" | "github.credentials.revoke" | "github.app.verify_key" => Ok(()),
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
        self.public_key(t.scope, &token).await?;
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
        // A revoke waits for propagation inside the call, and may be retried after it.
        (step.action == "github.credentials.revoke").then_some(self.propagation_wait * 3)
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
    /// - revoke: done when `GET /user` with the old token answers 401;
    /// - checks: run again.
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        if call.step.action == "github.credentials.revoke" {
            let token = required(call, "token")?;
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
