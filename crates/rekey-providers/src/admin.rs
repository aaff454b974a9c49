//! What the database providers share: where the admin connection string comes from, the
//! new random passwords, step inputs, and scrubbing secrets out of messages.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekey_engine::{Call, ProviderError};
use secrecy::{ExposeSecret, SecretString};

pub(crate) const PASSWORD_BYTES: usize = 32;

/// How a provider looks up an environment variable (the process environment by default).
pub(crate) type EnvLookup = dyn Fn(&str) -> Result<String, std::env::VarError> + Send + Sync;

/// Where a database provider reads its admin connection string, and how long it waits to
/// connect.
#[derive(Clone)]
pub(crate) struct AdminEnv {
    pub(crate) env: Arc<EnvLookup>,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for AdminEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminEnv")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl AdminEnv {
    /// The process environment, 10 s to connect.
    pub(crate) fn new() -> Self {
        Self {
            env: Arc::new(|name| std::env::var(name)),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The variable named by the step's `admin_url_env` and its value (the connection string,
    /// kept secret). `example` shows the expected form in the error for a missing variable.
    pub(crate) fn admin_url(
        &self,
        call: &Call<'_>,
        example: &str,
    ) -> Result<(String, SecretString), ProviderError> {
        let var = required(call, "admin_url_env")?.into_owned();
        match (self.env)(&var) {
            Ok(url) => Ok((var, SecretString::from(url))),
            Err(std::env::VarError::NotPresent) => Err(ProviderError::permanent(format!(
                "the environment variable {var} (admin_url_env) is not set: it must hold the admin connection string, e.g. {example}"
            ))),
            Err(std::env::VarError::NotUnicode(_)) => Err(ProviderError::permanent(format!(
                "the environment variable {var} (admin_url_env) is not valid UTF-8"
            ))),
        }
    }
}

/// The admin password (as written in the URL and decoded) plus `secrets`, for scrubbing.
pub(crate) fn scrub_with<'a>(password: &'a [SecretString], secrets: &[&'a str]) -> Scrub<'a> {
    let mut all: Vec<&str> = password.iter().map(ExposeSecret::expose_secret).collect();
    all.extend_from_slice(secrets);
    Scrub(all)
}

/// Secret strings that must not appear in a message.
pub(crate) struct Scrub<'a>(pub(crate) Vec<&'a str>);

impl Scrub<'_> {
    pub(crate) fn apply(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for s in &self.0 {
            // Very short strings would mangle the message and are not worth hiding.
            if s.len() >= 4 {
                out = out.replace(s, "***");
            }
        }
        out
    }
}

/// An input of the step: the resolved value, else the literal the plan filled in (the engine
/// may call `undo` and `reconcile` without resolved inputs).
pub(crate) fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<Cow<'a, str>> {
    if let Some(v) = call.inputs.get(name) {
        return Some(Cow::Borrowed(v.expose()));
    }
    call.step
        .inputs
        .get(name)
        .and_then(rekey_spec::template::Template::as_literal)
        .map(Cow::Owned)
}

pub(crate) fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<Cow<'a, str>, ProviderError> {
    input(call, name).filter(|v| !v.is_empty()).ok_or_else(|| {
        ProviderError::permanent(format!(
            "step {} ({}) needs the input `{name}`",
            call.step.id, call.step.action
        ))
    })
}

/// The password in `scheme://user:password@host…`, raw and percent-decoded.
pub(crate) fn url_password(url: &str) -> Vec<SecretString> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // A password may hold an unencoded `/`: look for the last `@` before any `?`.
    let before_query = &rest[..rest.find('?').unwrap_or(rest.len())];
    let userinfo = match before_query.rfind('@') {
        Some(at) => &before_query[..at],
        None => match rest[..authority_end].rfind('@') {
            Some(at) => &rest[..at],
            None => return Vec::new(),
        },
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    let mut out = vec![SecretString::from(password.to_owned())];
    let decoded = percent_decode(password);
    if decoded != password {
        out.push(SecretString::from(decoded));
    }
    out
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A new strong password: 32 random bytes, base64url without padding (ASCII, so `SASLprep` leaves
/// it unchanged).
pub(crate) fn new_password() -> Result<SecretString, ProviderError> {
    let mut raw = [0u8; PASSWORD_BYTES];
    getrandom::fill(&mut raw)
        .map_err(|e| ProviderError::permanent(format!("no randomness from the OS: {e}")))?;
    let password = URL_SAFE_NO_PAD.encode(raw);
    raw.fill(0);
    Ok(SecretString::from(password))
}
