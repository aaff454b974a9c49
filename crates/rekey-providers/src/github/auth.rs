//! Who rekey is when it calls GitHub: a consumer's token, an App installation, or `GITHUB_TOKEN`.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rekey_engine::ProviderError;
use rekey_plan::PlannedStep;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::secrets::{target, token_env};
use super::{
    BudgetSpec, DEFAULT_API_URL, DEFAULT_PROPAGATION_WAIT, GITHUB_BUDGET, GithubProvider,
    INSTALLATION_TOKEN_LIFE, REVOKE_PACE, seg,
};
use crate::http::Spend;

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
    /// `GITHUB_SERVER_URL`: the web host, when it is not derived from the API URL.
    pub server_url: Option<String>,
    /// `POST /credentials/revoke` calls per hour and burst ([`super::REVOKE_PACE`]).
    pub revoke_pace: (u32, u32),
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
            server_url: None,
            revoke_pace: REVOKE_PACE,
        }
    }

    /// `GITHUB_API_URL`, `GITHUB_TOKEN`, the App variables, and `token_env` names from the
    /// process environment.
    pub fn from_env() -> Result<Self, ProviderError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut c = Self::new(&var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into()));
        c.token = var("GITHUB_TOKEN").map(SecretString::from);
        c.server_url = var("GITHUB_SERVER_URL");
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
        "github.oauth_app.check_secret" => {
            return Some("the OAuth app's client id and secret themselves".into());
        }
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

/// GitHub Enterprise Server's API lives under `/api/v3`; github.com's at the host's root.
pub fn is_enterprise(api_url: &str) -> bool {
    api_url.trim_end_matches('/').ends_with("/api/v3")
}

impl GithubProvider {
    /// Which token a step authenticates with, without reading it.
    pub fn auth_source(&self, step: &PlannedStep) -> AuthSource {
        match step.action.as_str() {
            "github.user.get" => AuthSource::None("the new token itself"),
            "github.app.verify_key" => AuthSource::None("a JWT signed with the new key"),
            "github.oauth_app.check_secret" => {
                AuthSource::None("the OAuth app's client id and secret themselves")
            }
            "github.credentials.revoke" if !self.enterprise => {
                AuthSource::None("unauthenticated (github.com refuses an authenticated revoke)")
            }
            _ => self.writer_source(token_env(step)),
        }
    }

    pub(super) fn writer_source(&self, token_env: Option<&str>) -> AuthSource {
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
    pub(super) async fn writer_token(
        &self,
        token_env: Option<&str>,
    ) -> Result<SecretString, ProviderError> {
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
pub(super) fn app_jwt(
    app_id: &str,
    key: &jsonwebtoken::EncodingKey,
) -> Result<SecretString, ProviderError> {
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

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}
