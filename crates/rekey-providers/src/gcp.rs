//! GCP: service-account keys through the IAM REST API (`gcp.iam.*`).
//!
//! The same four parts as every connector (see `aws.rs`):
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

use crate::http::{BudgetSpec, HttpClient, Spend, error_of};

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
// Key files and JWTs

/// The parts of a service-account key file rekey uses; the private key is never formatted.
pub struct KeyFile {
    pub client_email: String,
    pub private_key_id: String,
    pub token_uri: String,
    key: jsonwebtoken::EncodingKey,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn str_field<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
}

impl KeyFile {
    /// From the key file's JSON text. `what` names the file in errors (never its content:
    /// serde's messages may quote it).
    pub fn parse(text: &str, what: &str) -> Result<Self, ProviderError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| ProviderError::permanent(format!("{what} is not JSON")))?;
        Self::from_json(&v, what)
    }

    fn from_json(v: &serde_json::Value, what: &str) -> Result<Self, ProviderError> {
        let field = |k: &str| {
            str_field(v, k).ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{what} is not a service-account key file (no `{k}`)"
                ))
            })
        };
        if field("type")? != "service_account" {
            return Err(ProviderError::permanent(format!(
                "{what} is not a service-account key file (type is not service_account)"
            )));
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(field("private_key")?.as_bytes())
            .map_err(|_| {
                ProviderError::permanent(format!("{what}: private_key is not an RSA key"))
            })?;
        Ok(Self {
            client_email: field("client_email")?.to_owned(),
            private_key_id: field("private_key_id")?.to_owned(),
            token_uri: str_field(v, "token_uri")
                .unwrap_or(DEFAULT_TOKEN_URI)
                .to_owned(),
            key,
        })
    }

    /// The JWT-bearer assertion: `iss`/`sub` the account, `aud` the token URI, one hour.
    fn assertion(&self, scope: &str) -> Result<SecretString, ProviderError> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            scope: &'a str,
            iat: u64,
            exp: u64,
        }
        let now = unix_now();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.private_key_id.clone());
        jsonwebtoken::encode(
            &header,
            &Claims {
                iss: &self.client_email,
                sub: &self.client_email,
                aud: &self.token_uri,
                scope,
                iat: now,
                exp: now + 3600,
            },
            &self.key,
        )
        .map(SecretString::from)
        .map_err(|_| {
            ProviderError::permanent(format!(
                "gcp: cannot sign a JWT with key {} of {}",
                self.private_key_id, self.client_email
            ))
        })
    }
}

/// Who rekey is when it calls IAM.
enum Admin {
    ServiceAccount(KeyFile),
    AuthorizedUser {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        token_uri: String,
    },
}

impl Admin {
    fn describe(&self) -> String {
        match self {
            Self::ServiceAccount(k) => format!("service account {}", k.client_email),
            Self::AuthorizedUser { client_id, .. } => {
                format!("gcloud user credentials (client {client_id})")
            }
        }
    }

    fn token_uri(&self) -> &str {
        match self {
            Self::ServiceAccount(k) => &k.token_uri,
            Self::AuthorizedUser { token_uri, .. } => token_uri,
        }
    }
}

/// Reads Application Default Credentials from `path`.
fn load_admin(path: &PathBuf) -> Result<Admin, String> {
    let what = format!("the credentials file {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {what}: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("{what} is not JSON"))?;
    match str_field(&v, "type") {
        Some("service_account") => KeyFile::from_json(&v, &what)
            .map(Admin::ServiceAccount)
            .map_err(|e| e.message),
        Some("authorized_user") => {
            let f = |k: &str| {
                str_field(&v, k)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} has no `{k}`"))
            };
            Ok(Admin::AuthorizedUser {
                client_id: f("client_id")?,
                client_secret: SecretString::from(f("client_secret")?),
                refresh_token: SecretString::from(f("refresh_token")?),
                token_uri: str_field(&v, "token_uri")
                    .unwrap_or(DEFAULT_TOKEN_URI)
                    .to_owned(),
            })
        }
        Some(t) => Err(format!(
            "{what} holds `{t}` credentials; rekey takes a service_account key file or authorized_user credentials"
        )),
        None => Err(format!("{what} has no `type`")),
    }
}

/// gcloud's Application Default Credentials file, when `GOOGLE_APPLICATION_CREDENTIALS` is
/// not set.
fn well_known_file() -> Option<PathBuf> {
    let base = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    let p = base.join("application_default_credentials.json");
    p.is_file().then_some(p)
}

/// A token endpoint receives signed assertions and refresh tokens: HTTPS, or plain HTTP to
/// this machine only (tests, a local emulator).
fn check_token_uri(uri: &str, what: &str) -> Result<(), ProviderError> {
    let Ok(u) = reqwest::Url::parse(uri) else {
        return Err(ProviderError::permanent(format!(
            "{what}: token_uri is not a URL"
        )));
    };
    let host = u.host_str().unwrap_or("").trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if u.scheme() == "https" || (u.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(ProviderError::permanent(format!(
            "{what}: token_uri must be https (or http on this machine), not {}://{}",
            u.scheme(),
            u.host_str().unwrap_or("?")
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Time

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-12-06T23:01:02.123Z`, or with an
/// offset); fractions are dropped.
#[allow(clippy::many_single_char_names)]
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (t, o) = rest.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':');
    let (h, mi, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// `secs` since the epoch as RFC 3339 UTC.
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `90s`, `2m`, `500ms`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" | "min" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

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

/// One path segment, percent-encoded (`@` kept: service-account e-mails).
fn seg(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
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
        let body = form_body(form);
        let req = self
            .http
            .request_url(Method::POST, uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
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

fn form_body(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        use std::fmt::Write as _;
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
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a str> {
    call.inputs
        .get(name)
        .map(Value::expose)
        .filter(|s| !s.is_empty())
}

fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a str, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}

/// A selector (which key to touch, which to spare): absent means "not narrowed"; present, it
/// must be a plain, non-empty key id (see `aws.rs::selector`).
fn selector<'a>(call: &'a Call<'_>, name: &str) -> Result<Option<&'a str>, ProviderError> {
    match call.inputs.get(name) {
        None => Ok(None),
        Some(Value::Plain(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
        Some(Value::Plain(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is empty; refusing to widen the call to every key",
            call.step.id
        ))),
        Some(Value::Secret(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is a secret value, not a key id; refusing to widen the call",
            call.step.id
        ))),
    }
}

/// A plain list of key ids (`existing_key_ids`, `enabled_key_ids`); `None` when not given.
fn id_list(call: &Call<'_>, name: &str) -> Result<Option<BTreeSet<String>>, ProviderError> {
    match call.inputs.get(name) {
        None => Ok(None),
        Some(Value::Plain(s)) => Ok(Some(s.split_whitespace().map(str::to_owned).collect())),
        Some(Value::Secret(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is a secret value, not key ids",
            call.step.id
        ))),
    }
}

fn plain(pairs: &[(&str, String)]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::Plain(v.clone())))
        .collect()
}

fn join(ids: &[String]) -> String {
    ids.join(" ")
}

/// The API's disable reason for a step: its `reason` input (a short name or the API's own
/// value), else by strategy (revoke first: exposed).
fn disable_reason(step_reason: Option<&str>, strategy: Strategy) -> Result<&'static str, String> {
    match step_reason {
        Some(r) => REASONS
            .iter()
            .find(|(short, api)| r.eq_ignore_ascii_case(short) || r == *api)
            .map(|(_, api)| *api)
            .ok_or_else(|| {
                format!(
                    "disable reason `{r}` is not one keys.disable accepts: {}",
                    REASONS
                        .iter()
                        .map(|(s, _)| *s)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        None if strategy == Strategy::RevokeFirst => Ok(REASONS[1].1),
        None => Ok(REASONS[0].1),
    }
}

// ---------------------------------------------------------------------------------------------
// Actions

struct Account<'a> {
    project: &'a str,
    email: &'a str,
}

impl Account<'_> {
    fn path(&self) -> String {
        format!(
            "/v1/projects/{}/serviceAccounts/{}",
            seg(self.project),
            seg(self.email)
        )
    }

    fn keys(&self) -> String {
        format!("{}/keys", self.path())
    }

    fn key(&self, id: &str) -> String {
        format!("{}/keys/{}", self.path(), seg(id))
    }
}

fn account<'a>(call: &'a Call<'_>) -> Result<Account<'a>, ProviderError> {
    Ok(Account {
        project: required(call, "project")?,
        email: required(call, "service_account")?,
    })
}

fn step_account(step: &PlannedStep) -> Option<(String, String)> {
    let lit = |k: &str| {
        step.inputs
            .get(k)
            .and_then(rekey_spec::Template::as_literal)
    };
    Some((lit("project")?, lit("service_account")?))
}

impl GcpProvider {
    async fn list_keys(&self, a: &Account<'_>) -> Result<Vec<Key>, ProviderError> {
        let resp = self
            .iam_ok(
                "keys.list",
                Method::GET,
                &format!("{}?keyTypes=USER_MANAGED", a.keys()),
                None,
            )
            .await
            .map_err(|e| Self::explain_missing(e, a))?;
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient("keys.list: unreadable answer"))?;
        let mut keys: Vec<Key> = v
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter(|k| str_field(k, "keyType").is_none_or(|t| t == "USER_MANAGED"))
            .filter_map(|k| {
                Some(Key {
                    id: str_field(k, "name")?.rsplit('/').next()?.to_owned(),
                    disabled: k
                        .get("disabled")
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(false),
                    created: str_field(k, "validAfterTime").and_then(parse_rfc3339),
                })
            })
            .collect();
        keys.sort_by(|x, y| x.created.cmp(&y.created).then(x.id.cmp(&y.id)));
        Ok(keys)
    }

    fn explain_missing(mut e: ProviderError, a: &Account<'_>) -> ProviderError {
        if e.message.contains("HTTP 404") {
            e.message = format!(
                "{} (service account {} in project {}: check `project` and `service_account`)",
                e.message, a.email, a.project
            );
        }
        e
    }

    /// `true` when the key was there; a missing key (404) is `false`.
    async fn key_call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<bool, ProviderError> {
        let resp = self.iam(op, method, path, body).await?;
        if resp.status().is_success() {
            Ok(true)
        } else if resp.status() == StatusCode::NOT_FOUND {
            Ok(false)
        } else {
            Err(error_of(op, resp).await)
        }
    }

    async fn delete_key(&self, a: &Account<'_>, id: &str) -> Result<bool, ProviderError> {
        self.key_call("keys.delete", Method::DELETE, &a.key(id), None)
            .await
    }

    async fn set_disabled(
        &self,
        a: &Account<'_>,
        id: &str,
        disabled: bool,
        reason: &str,
    ) -> Result<bool, ProviderError> {
        if disabled {
            self.key_call(
                "keys.disable",
                Method::POST,
                &format!("{}:disable", a.key(id)),
                Some(json!({ "serviceAccountKeyDisableReason": reason })),
            )
            .await
        } else {
            self.key_call(
                "keys.enable",
                Method::POST,
                &format!("{}:enable", a.key(id)),
                Some(json!({})),
            )
            .await
        }
    }

    /// Prepare: the account's user-managed keys; refuses at IAM's limit, before anything
    /// changes, and refuses an inventory `key_id` the account no longer has.
    async fn prepare(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let known = selector(call, "key_id")?;
        let listed_at = format_rfc3339(i64::try_from(unix_now()).unwrap_or(i64::MAX));
        let keys = self.list_keys(&a).await?;
        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        if let Some(k) = known
            && !ids.iter().any(|i| i == k)
        {
            return Err(ProviderError::permanent(format!(
                "service account {} has no user-managed key {k} (its keys: {}): the inventory's `key_id` is out of date; set it to the key in use (or remove it to mean every key of the account) and plan again",
                a.email,
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            )));
        }
        if keys.len() >= MAX_KEYS {
            return Err(ProviderError::permanent(format!(
                "service account {} already has {} user-managed keys, IAM's limit ({MAX_KEYS}), so a new key cannot be made: {}. Delete keys that are no longer used, then run again",
                a.email,
                keys.len(),
                ids.join(", ")
            )));
        }
        let enabled: Vec<String> = keys
            .iter()
            .filter(|k| !k.disabled)
            .map(|k| k.id.clone())
            .collect();
        let unknown: Vec<String> = match known {
            Some(k) => enabled.iter().filter(|i| *i != k).cloned().collect(),
            None => Vec::new(),
        };
        if !unknown.is_empty() && call.credential.strategy == Strategy::RevokeFirst {
            call.reports.warning(format!(
                "service account {} has enabled keys the inventory does not name: {}; the incident disables them too. Find out who made them",
                a.email,
                unknown.join(", ")
            ));
        }
        Ok(plain(&[
            ("key_ids", join(&ids)),
            ("enabled_key_ids", join(&enabled)),
            ("unknown_keys", join(&unknown)),
            ("listed_at", listed_at),
        ]))
    }

    /// Deletes keys an earlier, lost attempt of this create step made: not among the keys
    /// listed before it (`existing_key_ids`) and made after that listing (`not_before`, less a
    /// margin for clock skew). `None` when the step has no such record.
    async fn remove_created(
        &self,
        call: &Call<'_>,
        keep: Option<&str>,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let a = account(call)?;
        let Some(before) = id_list(call, "existing_key_ids")? else {
            return Ok(None);
        };
        let not_before = input(call, "not_before")
            .map(|t| {
                parse_rfc3339(t).ok_or_else(|| {
                    ProviderError::permanent(format!(
                        "step {}: input `not_before` is not an RFC 3339 time",
                        call.step.id
                    ))
                })
            })
            .transpose()?;
        let skew = i64::try_from(SKEW.as_secs()).unwrap_or(0);
        let mut deleted = Vec::new();
        for k in self.list_keys(&a).await? {
            let recent = match (not_before, k.created) {
                (Some(nb), Some(c)) => c >= nb - skew,
                _ => true,
            };
            if before.contains(&k.id) || !recent || keep == Some(k.id.as_str()) {
                continue;
            }
            if self.delete_key(&a, &k.id).await? {
                call.reports.side_effect(format!(
                    "deleted key {} of service account {}: made by this step in a call whose answer was lost, so its key file is gone",
                    k.id, a.email
                ));
                deleted.push(k.id);
            }
        }
        Ok(Some(deleted))
    }

    async fn create(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        // keys.create has no idempotency token: what an earlier attempt of this step made is
        // an orphan (its key file was lost with the answer) and holds one of the ten slots.
        if self.remove_created(call, None).await?.is_none() {
            tracing::debug!(step = %call.step.id, "no key ids recorded before the create");
        }
        let resp = self
            .iam(
                "keys.create",
                Method::POST,
                &a.keys(),
                Some(json!({
                    "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
                    "keyAlgorithm": "KEY_ALG_RSA_2048"
                })),
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let mut e = error_of("keys.create", resp).await;
            if status == StatusCode::BAD_REQUEST || status == StatusCode::PRECONDITION_FAILED {
                e.message = format!(
                    "{} (a service account may have at most {MAX_KEYS} user-managed keys)",
                    e.message
                );
            }
            return Err(Self::explain_missing(e, &a));
        }
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient("keys.create: unreadable answer"))?;
        let id = str_field(&v, "name")
            .and_then(|n| n.rsplit('/').next())
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::transient("keys.create: no key name in the answer"))?;
        let data = str_field(&v, "privateKeyData").ok_or_else(|| {
            ProviderError::permanent(format!(
                "keys.create: key {id} came without privateKeyData; delete it by hand"
            ))
        })?;
        let file = base64::engine::general_purpose::STANDARD
            .decode(data)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "keys.create: the privateKeyData of key {id} is not base64 text"
                ))
            })?;
        let file = SecretString::from(file);
        // The key file must be one rekey can verify and consumers can use.
        let parsed = KeyFile::parse(file.expose_secret(), &format!("the key file of key {id}"))?;
        if parsed.private_key_id != id {
            return Err(ProviderError::permanent(format!(
                "keys.create: the key file's private_key_id is not the new key {id}"
            )));
        }
        let mut out = plain(&[("key_id", id)]);
        out.insert("private_key_data".into(), Value::Secret(file));
        Ok(out)
    }

    async fn verify(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let key_id = required(call, "key_id")?;
        let data = call
            .inputs
            .get("private_key_data")
            .filter(|v| !v.expose().is_empty())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "step {}: input `private_key_data` is missing",
                    call.step.id
                ))
            })?;
        let file = KeyFile::parse(data.expose(), "the new key file")?;
        if file.private_key_id != key_id || file.client_email != a.email {
            return Err(ProviderError::permanent(format!(
                "the key file to verify is not key {key_id} of {}",
                a.email
            )));
        }
        check_token_uri(&file.token_uri, "the new key file")?;
        let jwt = file.assertion(SCOPE)?;
        match self
            .token_request(
                "token (new key)",
                &file.token_uri,
                &[
                    ("grant_type", JWT_BEARER),
                    ("assertion", jwt.expose_secret()),
                ],
                Spend::NotOurs,
            )
            .await
        {
            // The access token proves the key; it is dropped at once.
            Ok(_) => Ok(Values::new()),
            // A brand-new key takes a while to be accepted everywhere.
            Err(e) if e.message.contains("HTTP 400") || e.message.contains("HTTP 401") => {
                Err(ProviderError::transient(format!(
                    "{e}; the new key {key_id} is not accepted yet: a new key may take a while to propagate, and rekey waits up to {}s for it ({PROPAGATION_WAIT_VAR}; the run's --retry-budget if longer)",
                    self.propagation_wait.as_secs()
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// The keys a disable step turns off: an incident's (revoke first) every enabled key but
    /// `except_key_id`, whatever the inventory names; a rotation's `key_id` (or every key)
    /// but `except_key_id`.
    async fn disable_targets(&self, call: &Call<'_>) -> Result<Vec<Key>, ProviderError> {
        let a = account(call)?;
        let only = selector(call, "key_id")?;
        let except = selector(call, "except_key_id")?;
        let everything = call.credential.strategy == Strategy::RevokeFirst;
        Ok(self
            .list_keys(&a)
            .await?
            .into_iter()
            .filter(|k| {
                (everything || only.is_none_or(|o| o == k.id)) && except != Some(k.id.as_str())
            })
            .collect())
    }

    /// The last line of defence of a disable or delete: a rotation must name the key it keeps,
    /// and only an incident's revoke-first disable may leave the account with no enabled key.
    async fn guard_removal(
        &self,
        call: &Call<'_>,
        removing: &BTreeSet<&str>,
        may_leave_none: bool,
    ) -> Result<(), ProviderError> {
        let a = account(call)?;
        if call.credential.strategy == Strategy::RotateFirst
            && selector(call, "except_key_id")?.is_none()
        {
            return Err(ProviderError::permanent(format!(
                "step {}: a rotation must name the key it keeps (`except_key_id`); refusing to touch every key of {}",
                call.step.id, a.email
            )));
        }
        if may_leave_none || removing.is_empty() {
            return Ok(());
        }
        let keys = self.list_keys(&a).await?;
        if !keys
            .iter()
            .any(|k| !k.disabled && !removing.contains(k.id.as_str()))
        {
            return Err(ProviderError::permanent(format!(
                "step {}: this would leave service account {} with no enabled user-managed key ({} would go); refusing",
                call.step.id,
                a.email,
                removing.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    fn unknown(call: &Call<'_>, ids: &[String]) -> Result<Vec<String>, ProviderError> {
        Ok(match selector(call, "key_id")? {
            Some(known) if call.credential.strategy == Strategy::RevokeFirst => {
                ids.iter().filter(|k| *k != known).cloned().collect()
            }
            _ => Vec::new(),
        })
    }

    async fn disable(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let reason = disable_reason(input(call, "reason"), call.credential.strategy)
            .map_err(ProviderError::permanent)?;
        let targets: Vec<String> = self
            .disable_targets(call)
            .await?
            .into_iter()
            .filter(|k| !k.disabled)
            .map(|k| k.id)
            .collect();
        let removing: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        self.guard_removal(
            call,
            &removing,
            call.credential.strategy == Strategy::RevokeFirst,
        )
        .await?;
        let unknown = Self::unknown(call, &targets)?;
        if !unknown.is_empty() {
            call.reports.warning(format!(
                "service account {} had enabled keys the inventory does not name: {}; disabled too (an incident disables every key of the account). Find out who made them",
                a.email,
                unknown.join(", ")
            ));
        }
        let mut changed = Vec::new();
        for id in targets {
            if self.set_disabled(&a, &id, true, reason).await? {
                changed.push(id);
            }
        }
        Ok(plain(&[
            ("disabled", join(&changed)),
            ("unknown_keys", join(&unknown)),
        ]))
    }

    /// Enables again what a disable step turned off: its `disabled` output, or — its outputs
    /// lost — the keys it targets that are disabled now and were enabled when the prepare step
    /// listed them (`enabled_key_ids`); never a key that was off before the run.
    async fn undo_disable(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        let a = account(call)?;
        let ids: Vec<String> = if let Some(d) = outputs.get("disabled") {
            d.expose().split_whitespace().map(str::to_owned).collect()
        } else {
            let enabled = id_list(call, "enabled_key_ids")?;
            self.disable_targets(call)
                .await?
                .into_iter()
                .filter(|k| k.disabled && enabled.as_ref().is_none_or(|e| e.contains(&k.id)))
                .map(|k| k.id)
                .collect()
        };
        for id in ids {
            self.set_disabled(&a, &id, false, "").await?;
        }
        Ok(())
    }

    async fn delete_selected(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = account(call)?;
        let only = selector(call, "key_id")?;
        let except = selector(call, "except_key_id")?;
        let selected: Vec<String> = self
            .list_keys(&a)
            .await?
            .into_iter()
            .filter(|k| only.is_none_or(|o| o == k.id) && except != Some(k.id.as_str()))
            .map(|k| k.id)
            .collect();
        let removing: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        self.guard_removal(call, &removing, false).await?;
        let mut deleted = Vec::new();
        for id in selected {
            if self.delete_key(&a, &id).await? {
                deleted.push(id);
            }
        }
        Ok(plain(&[("deleted", join(&deleted))]))
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
