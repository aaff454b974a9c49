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
use sqlx::ConnectOptions;

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

impl AdminEnv {
    /// The admin connection the step names: its options parsed (statement logging off, so no
    /// password statement reaches the client's logs) and its password kept for scrubbing.
    /// `database` names the kind of server in the error for a malformed string.
    pub(crate) fn admin<O: ConnectOptions>(
        &self,
        call: &Call<'_>,
        example: &str,
        database: &str,
    ) -> Result<Admin<O>, ProviderError> {
        let (var, url) = self.admin_url(call, example)?;
        // The parse error is not passed on: it may quote the connection string.
        let options = O::from_str(&require_tls(url.expose_secret()))
            .map_err(|_| {
                ProviderError::permanent(format!(
                    "the environment variable {var} (admin_url_env) does not hold a valid {database} connection string"
                ))
            })?
            .disable_statement_logging();
        let password = url_password(url.expose_secret());
        Ok(Admin {
            var,
            options,
            password,
        })
    }

    /// Connects within the timeout; `classify` turns the provider's failures into errors.
    pub(crate) async fn connect<O>(
        &self,
        options: &O,
        what: &str,
        scrub: &Scrub<'_>,
        classify: fn(&sqlx::Error, &str, &Scrub<'_>) -> ProviderError,
    ) -> Result<O::Connection, ProviderError>
    where
        O: ConnectOptions,
        O::Connection: Sized,
    {
        match tokio::time::timeout(self.connect_timeout, options.connect()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(&e, &format!("connecting {what}"), scrub)),
            Err(_) => Err(ProviderError::transient(format!(
                "connecting {what}: timed out after {:?}",
                self.connect_timeout
            ))),
        }
    }
}

/// The admin connection named by a step.
pub(crate) struct Admin<O> {
    /// The environment variable it came from (named in messages).
    pub(crate) var: String,
    pub(crate) options: O,
    /// The admin password as written in the URL (and decoded), to scrub from messages.
    password: Vec<SecretString>,
}

impl<O> Admin<O> {
    pub(crate) fn scrub<'a>(&'a self, secrets: &[&'a str]) -> Scrub<'a> {
        scrub_with(&self.password, secrets)
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

/// The admin connection string with TLS required (`sslmode=require` for PostgreSQL,
/// `ssl-mode=REQUIRED` for MySQL/MariaDB): an admin password must not cross a network in
/// clear. Unchanged when the server is on this machine (a loopback address, `localhost`, a
/// Unix socket) or the string already says how to use TLS.
pub(crate) fn require_tls(url: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let mode = match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => "sslmode=require",
        "mysql" | "mariadb" => "ssl-mode=REQUIRED",
        _ => return Cow::Borrowed(url),
    };
    let (rest, fragment) = rest
        .split_once('#')
        .map_or((rest, None), |(r, f)| (r, Some(f)));
    // The user info ends at the last `@` before the query: a password may hold `/` or `@`.
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (k.to_ascii_lowercase(), percent_decode(v)))
        .collect();
    let param = |names: &[&str]| {
        params
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    };
    if param(&["sslmode", "ssl-mode"]).is_some() {
        return Cow::Borrowed(url);
    }
    let host_port = before_query
        .rfind('@')
        .map_or(before_query, |at| &before_query[at + 1..]);
    let host_port = host_port.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_owned()
    } else {
        percent_decode(host_port.split(':').next().unwrap_or_default())
    };
    // A `host`/`hostaddr` (PostgreSQL) or `socket` (MySQL) parameter says where it really goes.
    let host = param(&["hostaddr", "host"]).map_or(host, str::to_owned);
    if param(&["socket"]).is_some() || is_local(&host) {
        return Cow::Borrowed(url);
    }
    let sep = if query.is_empty() {
        if before_query.len() < rest.len() {
            ""
        } else {
            "?"
        }
    } else {
        "&"
    };
    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
    Cow::Owned(format!("{scheme}://{rest}{sep}{mode}{fragment}"))
}

/// Loopback, `localhost`, a Unix socket path, or no host at all (the local default).
fn is_local(host: &str) -> bool {
    let host = host.trim();
    host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_connections_require_tls_unless_local() {
        let tls = |u: &str| require_tls(u).into_owned();
        // Remote servers: TLS required, the rest of the string untouched.
        assert_eq!(
            tls("postgres://admin:s3cret@db.example.com:5432/app"),
            "postgres://admin:s3cret@db.example.com:5432/app?sslmode=require"
        );
        assert_eq!(
            tls("postgresql://admin:p%2Fw@10.0.0.5/app?connect_timeout=5"),
            "postgresql://admin:p%2Fw@10.0.0.5/app?connect_timeout=5&sslmode=require"
        );
        assert_eq!(
            tls("mysql://root:s3cret@db.internal:3306/mysql"),
            "mysql://root:s3cret@db.internal:3306/mysql?ssl-mode=REQUIRED"
        );
        assert_eq!(
            tls("postgres://a:b@[2001:db8::1]:5432/x"),
            "postgres://a:b@[2001:db8::1]:5432/x?sslmode=require"
        );
        // A password holding `@` and `/` does not hide the host.
        assert_eq!(
            tls("postgres://a:p@ss/w@db.example.com/x"),
            "postgres://a:p@ss/w@db.example.com/x?sslmode=require"
        );
        assert_eq!(
            tls("postgres://a:p@127.0.0.1@db.example.com/x"),
            "postgres://a:p@127.0.0.1@db.example.com/x?sslmode=require"
        );
        // A `host` parameter pointing elsewhere counts, not the placeholder before it.
        assert_eq!(
            tls("postgres://a:b@localhost/x?host=db.example.com"),
            "postgres://a:b@localhost/x?host=db.example.com&sslmode=require"
        );
        // Local servers and explicit modes: unchanged.
        for local in [
            "postgres://admin:s3cret@127.0.0.1:5432/app",
            "postgres://admin:s3cret@127.8.9.10/app",
            "postgres://admin:s3cret@localhost/app",
            "postgres://admin:s3cret@LOCALHOST:5432/app",
            "postgres://admin:s3cret@[::1]:5432/app",
            "postgres://admin@%2Fvar%2Frun%2Fpostgresql/app",
            "postgres:///app?host=/var/run/postgresql",
            "postgres://admin:s3cret@/app",
            "mysql://root:s3cret@127.0.0.1:3306/mysql",
            "mysql://root:s3cret@localhost/mysql?socket=/run/mysqld/mysqld.sock",
            "mysql://root:s3cret@db.internal/mysql?socket=/run/mysqld/mysqld.sock",
            "postgres://admin:s3cret@db.example.com/app?sslmode=disable",
            "postgres://admin:s3cret@db.example.com/app?SSLMODE=verify-full",
            "mysql://root:s3cret@db.internal/mysql?ssl-mode=VERIFY_IDENTITY",
            "mysql://root:s3cret@db.internal/mysql?sslmode=disabled",
            "sqlite://state.db",
        ] {
            assert_eq!(tls(local), local);
        }
    }

    #[test]
    fn url_passwords_are_found() {
        let p = |u: &str| {
            url_password(u)
                .iter()
                .map(|s| s.expose_secret().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(p("postgres://admin:s3cret@h:5432/db"), ["s3cret"]);
        assert_eq!(p("postgres://admin:a%40b@h/db"), ["a%40b", "a@b"]);
        assert_eq!(p("postgres://admin:a@b@h/db?sslmode=disable"), ["a@b"]);
        assert!(p("postgres://admin@h/db").is_empty());
        assert!(p("postgres://h/db").is_empty());
        assert_eq!(p("mysql://admin:s3cret@h:3306/db"), ["s3cret"]);
        assert_eq!(p("mysql://admin:a%40b@h"), ["a%40b", "a@b"]);
        assert!(p("mysql://admin@h").is_empty());
    }
}
