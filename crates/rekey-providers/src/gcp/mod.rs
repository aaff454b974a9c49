//! GCP: service-account keys through the IAM REST API (`gcp.iam.*`).
//!
//! The same four parts as every connector (see `aws/`):
//!
//! - **client**: the shared [`HttpClient`] at `https://iam.googleapis.com`, or where
//!   `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM` points (gcloud's override: the API root, e.g.
//!   `https://iam.example.internal/`, under which `v1/…` is requested). rekey authenticates with
//!   Application Default Credentials: the key file named by `GOOGLE_APPLICATION_CREDENTIALS`,
//!   else gcloud's `application_default_credentials.json` — a `service_account` file (a JWT
//!   signed with its key, RS256, exchanged at the file's own `token_uri` with the JWT-bearer
//!   grant) or an `authorized_user` file (its refresh token at its `token_uri`). The access
//!   token is cached until five minutes before it expires. The metadata server is not asked.
//! - **actions**: `list_keys` (prepare: refuses at IAM's 10 user-managed keys, with their ids;
//!   records every enabled key), `create_key` (`privateKeyData`, the new key file, held in memory
//!   only as a secret), `verify_key` (a JWT signed with the new key exchanged at the key file's
//!   `token_uri`: the key authenticates, not merely exists; retried while a new key propagates),
//!   `disable_key` (with the API's reason; undo is `:enable` of exactly the keys it disabled),
//!   `delete_key`.
//! - **reconcile**: `keys.create` takes no idempotency token, so a create whose answer was lost
//!   is recognized by listing the account's keys: one that is not among the key ids the prepare
//!   step recorded (`existing_key_ids`, a plain output kept by the state database and the audit
//!   log) and was made after that listing (`not_before`) was made by this step; it is deleted
//!   (its key file is gone) and reported. A retried create does the same first. A lost disable
//!   is done when every key it targets is disabled; a lost delete when none is left.
//! - **capabilities**: `supports` refuses unknown actions and disable reasons the API does not
//!   have; `preflight` gets the admin's access token and reads the service account, so a typo
//!   or refused credentials stop the run before anything changes.
//!
//! Nothing formats a key file, a JWT or an access token: errors carry the operation, the
//! status and Google's `error.message`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use rekey_engine::{Call, ErrorKind, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::{PlannedStep, Strategy};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::http::path_segment as seg;
use crate::http::{BudgetSpec, HttpClient, Spend, error_of};

mod auth;
mod keys;

use auth::{
    Admin, KeyFile, check_token_uri, load_admin, parse_duration, str_field, unix_now,
    well_known_file,
};
pub use auth::{format_rfc3339, parse_rfc3339};
use keys::{Account, account, disable_reason, id_list, join, plain, selector, step_account};

pub const DEFAULT_IAM_URL: &str = "https://iam.googleapis.com";
/// gcloud's endpoint override for the IAM API.
pub const ENDPOINT_VAR: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM";
/// Application Default Credentials: a key file.
pub const CREDENTIALS_VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// How long a verify waits for a new key to be accepted (`90s`, `2m`, …).
pub const PROPAGATION_WAIT_VAR: &str = "REKEY_GCP_PROPAGATION_WAIT";
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_mins(5);
/// IAM allows 10 user-managed keys per service account.
pub const MAX_KEYS: usize = 10;
/// The scope of every access token rekey asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Kept well below IAM's default per-project quotas (reads and writes per minute).
pub const GCP_BUDGET: BudgetSpec = BudgetSpec {
    per_hour: 20_000,
    hourly_burst: 500,
    concurrent: 32,
    writes_per_minute: 100,
    write_burst: 20,
};
/// A key made this long before the prepare step's listing (clock skew between this host and
/// Google) still counts as made after it.
const SKEW: Duration = Duration::from_mins(5);
const TOKEN_MARGIN: Duration = Duration::from_mins(5);

/// The disable reasons `keys.disable` accepts, by the short names a runbook may use.
const REASONS: &[(&str, &str)] = &[
    (
        "user_initiated",
        "SERVICE_ACCOUNT_KEY_DISABLE_REASON_USER_INITIATED",
    ),
    ("exposed", "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED"),
    (
        "compromise_detected",
        "SERVICE_ACCOUNT_KEY_DISABLE_REASON_COMPROMISE_DETECTED",
    ),
];

// ---------------------------------------------------------------------------------------------
// Client

/// What the provider is built from.
pub struct GcpConfig {
    /// The IAM API root (no `/v1`).
    pub iam_url: String,
    /// The Application Default Credentials file, or why there is none.
    pub credentials: Result<PathBuf, String>,
    pub timeout: Duration,
    pub budget: BudgetSpec,
    pub propagation_wait: Duration,
}

impl fmt::Debug for GcpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpConfig")
            .field("iam_url", &self.iam_url)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl GcpConfig {
    /// For an IAM root and a credentials file (tests).
    pub fn new(iam_url: &str, credentials: impl Into<PathBuf>) -> Self {
        Self {
            iam_url: iam_url.trim_end_matches('/').to_owned(),
            credentials: Ok(credentials.into()),
            timeout: Duration::from_secs(30),
            budget: GCP_BUDGET,
            propagation_wait: DEFAULT_PROPAGATION_WAIT,
        }
    }

    /// `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM`, `GOOGLE_APPLICATION_CREDENTIALS` (else gcloud's
    /// well-known file), `REKEY_GCP_PROPAGATION_WAIT`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let iam_url = var(ENDPOINT_VAR).unwrap_or_else(|| DEFAULT_IAM_URL.to_owned());
        // gcloud's overrides may carry the version (`…/v1/`); the paths add it.
        let iam_url = iam_url.trim_end_matches('/');
        let iam_url = iam_url.strip_suffix("/v1").unwrap_or(iam_url);
        let credentials = match var(CREDENTIALS_VAR) {
            Some(p) => Ok(PathBuf::from(p)),
            None => well_known_file().ok_or_else(|| {
                format!(
                    "no GCP credentials: set {CREDENTIALS_VAR} to a service-account key file (or run `gcloud auth application-default login`)"
                )
            }),
        };
        let mut c = Self::new(iam_url, PathBuf::new());
        c.credentials = credentials;
        if let Some(text) = var(PROPAGATION_WAIT_VAR) {
            if let Some(d) = parse_duration(&text) {
                c.propagation_wait = d;
            } else {
                tracing::warn!(
                    "{PROPAGATION_WAIT_VAR}={text:?} is not a duration (such as 90s, 2m or 1h); waiting up to {}s for a new key",
                    c.propagation_wait.as_secs()
                );
            }
        }
        c
    }
}

/// One user-managed key, as `keys.list` shows it.
#[derive(Debug, Clone)]
struct Key {
    id: String,
    disabled: bool,
    /// `validAfterTime`, seconds since the epoch.
    created: Option<i64>,
}

/// The real GCP provider.
pub struct GcpProvider {
    http: HttpClient,
    admin: Result<Admin, String>,
    token: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
    propagation_wait: Duration,
    /// Service accounts `preflight` found, for this run.
    seen: Mutex<HashSet<String>>,
    /// Service account → the credential whose create step `supports` saw (see there).
    creators: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for GcpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpProvider")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl GcpProvider {
    pub fn new(config: GcpConfig) -> Result<Self, ProviderError> {
        let admin = config.credentials.and_then(|p| load_admin(&p));
        Ok(Self {
            http: HttpClient::new("gcp", &config.iam_url, config.timeout, config.budget)?
                .with_accept("application/json"),
            admin,
            token: tokio::sync::Mutex::new(None),
            propagation_wait: config.propagation_wait,
            seen: Mutex::new(HashSet::new()),
            creators: Mutex::new(HashMap::new()),
        })
    }

    pub fn from_env() -> Result<Self, ProviderError> {
        Self::new(GcpConfig::from_env())
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Which credentials rekey calls IAM with (for messages; never a secret).
    pub fn describe_auth(&self) -> String {
        match &self.admin {
            Ok(a) => a.describe(),
            Err(e) => e.clone(),
        }
    }

    fn admin(&self) -> Result<&Admin, ProviderError> {
        self.admin
            .as_ref()
            .map_err(|e| ProviderError::permanent(format!("gcp: {e}")))
    }

    /// Posts a form to a token endpoint; the access token and its lifetime.
    async fn token_request(
        &self,
        op: &str,
        uri: &str,
        form: &[(&str, &str)],
        spend: Spend,
    ) -> Result<(SecretString, Duration), ProviderError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let req = self.http.request_url(Method::POST, uri).form(form);
        let resp = self.http.send_ok(op, req, spend).await?;
        let a: Answer = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok((
            SecretString::from(a.access_token),
            Duration::from_secs(a.expires_in.unwrap_or(3600)),
        ))
    }

    /// The admin's access token, cached until shortly before it expires.
    async fn access_token(&self) -> Result<SecretString, ProviderError> {
        let admin = self.admin()?;
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        check_token_uri(admin.token_uri(), "the GCP credentials file")?;
        let (token, life) = match admin {
            Admin::ServiceAccount(k) => {
                let jwt = k.assertion(SCOPE)?;
                self.token_request(
                    "token (admin credentials)",
                    &k.token_uri,
                    &[
                        ("grant_type", JWT_BEARER),
                        ("assertion", jwt.expose_secret()),
                    ],
                    Spend::Ours,
                )
                .await
            }
            Admin::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                self.token_request(
                    "token (admin credentials)",
                    token_uri,
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", client_id),
                        ("client_secret", client_secret.expose_secret()),
                        ("refresh_token", refresh_token.expose_secret()),
                    ],
                    Spend::Ours,
                )
                .await
            }
        }
        .map_err(|mut e| {
            e.message = format!("{} ({})", e.message, admin.describe());
            e
        })?;
        *cached = Some((
            token.clone(),
            Instant::now() + life.saturating_sub(TOKEN_MARGIN),
        ));
        Ok(token)
    }

    /// An authenticated IAM call; any answer is returned.
    async fn iam(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, ProviderError> {
        let token = self.access_token().await?;
        let mut req = self
            .http
            .request(method, path)
            .bearer_auth(token.expose_secret());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = self.http.send(op, req, Spend::Ours).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            // A token revoked since it was cached: the next try fetches a new one.
            *self.token.lock().await = None;
        }
        Ok(resp)
    }

    async fn iam_ok(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, ProviderError> {
        let resp = self.iam(op, method, path, body).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_of(op, resp).await)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The trait (capabilities, reconcile)

#[async_trait]
impl Provider for GcpProvider {
    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        match step.action.as_str() {
            "gcp.iam.list_keys" | "gcp.iam.verify_key" | "gcp.iam.delete_key" => Ok(()),
            // keys.create takes no idempotency token: a lost create is found as a key made
            // after the prepare step's listing. Two credentials of one account rotated in one
            // run would each take the other's new key for their own orphan.
            "gcp.iam.create_key" => {
                let Some((project, email)) = step_account(step) else {
                    return Ok(());
                };
                let credential = step.id.split('/').next().unwrap_or_default().to_owned();
                let mut creators = self
                    .creators
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match creators.get(&format!("{project}/{email}")) {
                    Some(other) if *other != credential => Err(format!(
                        "{other} and {credential} are keys of the same service account {email}: rotate them in separate runs (keys.create has no idempotency token, so after a crash rekey could not tell their new keys apart)"
                    )),
                    _ => {
                        creators.insert(format!("{project}/{email}"), credential);
                        Ok(())
                    }
                }
            }
            "gcp.iam.disable_key" => {
                match step
                    .inputs
                    .get("reason")
                    .map(rekey_spec::Template::as_literal)
                {
                    Some(Some(r)) => disable_reason(Some(&r), Strategy::RotateFirst).map(|_| ()),
                    // A templated reason is checked when it is known.
                    _ => Ok(()),
                }
            }
            a => Err(format!("the GCP provider does not handle action {a}")),
        }
    }

    /// The admin credentials work (an access token is fetched and kept) and the service
    /// account exists, before anything changes.
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        if !step.action.starts_with("gcp.iam.") || step.action == "gcp.iam.verify_key" {
            return Ok(());
        }
        let Some((project, email)) = step_account(step) else {
            return Ok(());
        };
        let key = format!("{project}/{email}");
        if self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key)
        {
            return Ok(());
        }
        let a = Account {
            project: &project,
            email: &email,
        };
        // A read-only check before anything changes: a passing blip (a 503, a reset, a 429)
        // is tried again here rather than stopping the run.
        let mut attempt = 0u32;
        loop {
            match self
                .iam_ok("serviceAccounts.get", Method::GET, &a.path(), None)
                .await
            {
                Ok(_) => break,
                Err(e) if e.kind != ErrorKind::Permanent && attempt < 5 => {
                    let wait = match e.kind {
                        ErrorKind::RateLimited(Some(w)) => w.min(Duration::from_secs(5)),
                        _ => Duration::from_millis(100 << attempt),
                    };
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(Self::explain_missing(e, &a)),
            }
        }
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        Ok(())
    }

    fn retry_budget(&self, step: &PlannedStep) -> Option<Duration> {
        (step.action == "gcp.iam.verify_key").then_some(self.propagation_wait)
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match call.step.action.as_str() {
            "gcp.iam.list_keys" => self.prepare(call).await,
            "gcp.iam.create_key" => self.create(call).await,
            "gcp.iam.verify_key" => self.verify(call).await,
            "gcp.iam.disable_key" => self.disable(call).await,
            "gcp.iam.delete_key" => self.delete_selected(call).await,
            a => Err(ProviderError::permanent(format!(
                "step {}: the GCP provider does not handle action {a}",
                call.step.id
            ))),
        }
    }

    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        match call.step.action.as_str() {
            "gcp.iam.create_key" => {
                let a = account(call)?;
                match outputs.get("key_id").map(Value::expose) {
                    Some(id) if !id.is_empty() => {
                        self.delete_key(&a, id).await?;
                    }
                    _ => {
                        self.remove_created(call, None).await?;
                    }
                }
                Ok(())
            }
            "gcp.iam.disable_key" => self.undo_disable(call, outputs).await,
            "gcp.iam.delete_key" => Err(ProviderError::permanent(format!(
                "step {}: a deleted service-account key cannot be restored",
                call.step.id
            ))),
            _ => Ok(()),
        }
    }

    /// - create: delete what the lost call made (see the module docs) → run it again;
    /// - disable: done when every key it targets is disabled (their ids reported);
    /// - delete: done when no selected key is left;
    /// - reads and checks: run again.
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        match call.step.action.as_str() {
            "gcp.iam.create_key" => {
                if self.remove_created(call, None).await?.is_none() {
                    call.reports.warning(format!(
                        "step {}: no key ids were recorded before the create, so a key its lost call may have made cannot be told apart: check the keys of the account by hand",
                        call.step.id
                    ));
                }
                Ok(Reconciled::NotDone)
            }
            "gcp.iam.disable_key" => {
                let targets = self.disable_targets(call).await?;
                if targets.iter().any(|k| !k.disabled) {
                    return Ok(Reconciled::NotDone);
                }
                let enabled = id_list(call, "enabled_key_ids")?;
                let ids: Vec<String> = targets
                    .into_iter()
                    .filter(|k| enabled.as_ref().is_none_or(|e| e.contains(&k.id)))
                    .map(|k| k.id)
                    .collect();
                let unknown = Self::unknown(call, &ids)?;
                Ok(Reconciled::Done(plain(&[
                    ("disabled", join(&ids)),
                    ("unknown_keys", join(&unknown)),
                ])))
            }
            "gcp.iam.delete_key" => {
                let a = account(call)?;
                let only = selector(call, "key_id")?;
                let except = selector(call, "except_key_id")?;
                let left = self
                    .list_keys(&a)
                    .await?
                    .into_iter()
                    .any(|k| only.is_none_or(|o| o == k.id) && except != Some(k.id.as_str()));
                Ok(if left {
                    Reconciled::NotDone
                } else {
                    Reconciled::Done(plain(&[("deleted", only.unwrap_or("").to_owned())]))
                })
            }
            _ => Ok(Reconciled::NotDone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2026-12-06T23:01:02Z",
            "2000-02-29T12:00:00Z",
        ] {
            assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
        }
        assert_eq!(
            parse_rfc3339("2026-12-06T23:01:02.123456Z"),
            parse_rfc3339("2026-12-06T23:01:02Z")
        );
        assert_eq!(
            parse_rfc3339("2026-12-07T00:01:02+01:00"),
            parse_rfc3339("2026-12-06T23:01:02Z")
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn reasons() {
        assert_eq!(
            disable_reason(Some("exposed"), Strategy::RotateFirst).unwrap(),
            "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED"
        );
        assert_eq!(
            disable_reason(None, Strategy::RevokeFirst).unwrap(),
            "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED"
        );
        assert!(disable_reason(Some("rekey run-1"), Strategy::RotateFirst).is_err());
    }

    #[test]
    fn token_uris() {
        assert!(check_token_uri("https://oauth2.googleapis.com/token", "f").is_ok());
        assert!(check_token_uri("http://127.0.0.1:9/token", "f").is_ok());
        assert!(check_token_uri("http://evil.example/token", "f").is_err());
    }

    #[test]
    fn key_files_are_not_shown() {
        let e = KeyFile::parse(r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nAAAAsecret\n-----END PRIVATE KEY-----\n","client_email":"a@b","private_key_id":"k"}"#, "f").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        let e = KeyFile::parse("{\"private_key\": \"secret", "f").unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
