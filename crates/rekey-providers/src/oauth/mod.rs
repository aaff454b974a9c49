//! OAuth client secrets: Okta (`okta.rs`: a second secret, then the old one deactivated and
//! deleted), Auth0 (`auth0.rs`: one secret, rotated in place) and the check every provider's
//! secret gets (`verify.rs`: a `client_credentials` request at the token endpoint).
//!
//! Same four parts as every connector:
//! - **client**: the shared [`HttpClient`](crate::http::HttpClient); every credential names its own host (`domain`: a
//!   bare host means `https://`, a URL with a scheme is kept, for tests and private
//!   deployments), so requests go to full URLs. Management tokens come from the environment
//!   variable the credential's `api_token_env` names.
//! - **actions**: one function per registry action.
//! - **reconcile**: per action, in its module.
//! - **capabilities**: `supports` per provider.
//!
//! No secret, management token or response body is ever formatted: errors carry the operation,
//! the status and the provider's own message.

mod auth0;
mod okta;
mod verify;

pub use auth0::{AUTH0_BUDGET, Auth0Provider};
pub use okta::{OKTA_BUDGET, OktaProvider};
pub use verify::OauthVerifyProvider;

use rekey_engine::{Call, ProviderError, Value};
use secrecy::SecretString;

use crate::http::path_segment as seg;

/// Where management tokens named by `api_token_env` are looked up (the process environment; a
/// map in tests).
pub type TokenLookup = Box<dyn Fn(&str) -> Option<SecretString> + Send + Sync>;

/// The process environment, ignoring empty variables.
pub fn env_lookup() -> TokenLookup {
    Box::new(|k| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(SecretString::from)
    })
}

/// The base URL of a `domain`: a bare host means `https://`.
pub fn base_url(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('/');
    if d.contains("://") {
        d.to_owned()
    } else {
        format!("https://{d}")
    }
}

use crate::inputs::input;

/// A required input's text.
fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a str, ProviderError> {
    crate::inputs::required(call, name).map(Value::expose)
}

/// A narrowing input (a secret id to act on or to spare): absent means "not narrowed";
/// present, it must be a plain, non-empty id.
fn selector<'a>(call: &'a Call<'_>, name: &str) -> Result<Option<&'a str>, ProviderError> {
    match call.inputs.get(name) {
        None => Ok(None),
        Some(Value::Plain(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(_) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is empty or secret; refusing to widen the call to every secret",
            call.step.id
        ))),
    }
}

/// The management token in the variable the step's `api_token_env` names.
fn management_token(
    lookup: &TokenLookup,
    call: &Call<'_>,
    who: &str,
) -> Result<SecretString, ProviderError> {
    let var = required(call, "api_token_env")?;
    lookup(var).ok_or_else(|| {
        ProviderError::permanent(format!(
            "{who}: ${var} (the credential's api_token_env) is not set: put the management API token there"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(base_url("acme.okta.com"), "https://acme.okta.com");
        assert_eq!(base_url("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(seg("0oa/x y"), "0oa%2Fx%20y");
    }
}
