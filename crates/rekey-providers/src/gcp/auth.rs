//! Who rekey is at Google: Application Default Credentials, key files, JWTs, and times.

#![allow(clippy::wildcard_imports)]

use super::*;

// ---------------------------------------------------------------------------------------------
// Key files and JWTs

/// The parts of a service-account key file rekey uses; the private key is never formatted.
pub(super) struct KeyFile {
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

pub(super) fn str_field<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
}

impl KeyFile {
    /// From the key file's JSON text. `what` names the file in errors (never its content:
    /// serde's messages may quote it).
    pub(super) fn parse(text: &str, what: &str) -> Result<Self, ProviderError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| ProviderError::permanent(format!("{what} is not JSON")))?;
        Self::from_json(&v, what)
    }

    pub(super) fn from_json(v: &serde_json::Value, what: &str) -> Result<Self, ProviderError> {
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
    pub(super) fn assertion(&self, scope: &str) -> Result<SecretString, ProviderError> {
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
pub(super) enum Admin {
    ServiceAccount(KeyFile),
    AuthorizedUser {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        token_uri: String,
    },
}

impl Admin {
    pub(super) fn describe(&self) -> String {
        match self {
            Self::ServiceAccount(k) => format!("service account {}", k.client_email),
            Self::AuthorizedUser { client_id, .. } => {
                format!("gcloud user credentials (client {client_id})")
            }
        }
    }

    pub(super) fn token_uri(&self) -> &str {
        match self {
            Self::ServiceAccount(k) => &k.token_uri,
            Self::AuthorizedUser { token_uri, .. } => token_uri,
        }
    }
}

/// Reads Application Default Credentials from `path`.
pub(super) fn load_admin(path: &PathBuf) -> Result<Admin, String> {
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
pub(super) fn well_known_file() -> Option<PathBuf> {
    let base = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    let p = base.join("application_default_credentials.json");
    p.is_file().then_some(p)
}

/// A token endpoint receives signed assertions and refresh tokens: HTTPS, or plain HTTP to
/// this machine only (tests, a local emulator).
pub(super) fn check_token_uri(uri: &str, what: &str) -> Result<(), ProviderError> {
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

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch of an RFC 3339 time (`2026-12-06T23:01:02.123Z`, or with an
/// offset); fractions are dropped.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(jiff::Timestamp::as_second)
}

/// `secs` since the epoch as RFC 3339 UTC.
pub fn format_rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map_or_else(|_| "1970-01-01T00:00:00Z".into(), |t| t.to_string())
}

/// `90s`, `2m`, `500ms`, `1h`, or a number of seconds.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let d: jiff::SignedDuration = text.parse().ok()?;
    Duration::try_from(d).ok()
}
