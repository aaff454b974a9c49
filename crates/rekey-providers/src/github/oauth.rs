//! GitHub OAuth app client secrets: created and deleted in the web UI only, but checkable. The
//! web host's token endpoint (`POST /login/oauth/access_token`) checks the client credentials
//! before the code: with a code that cannot be valid it answers `bad_verification_code` when
//! the secret is right and `incorrect_client_credentials` when it is not (GitHub's
//! "Troubleshooting OAuth app access token request errors"). Nothing is authorized.

use rekey_engine::{Call, ProviderError, Value, Values};
use reqwest::Method;
use serde::Deserialize;

use super::{GithubProvider, input, required};
use crate::http::{Spend, error_of};

#[derive(Deserialize)]
struct TokenEndpointAnswer {
    #[serde(default)]
    error: Option<String>,
}

/// What GitHub's token endpoint made of a client id and secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    Accepted,
    Refused,
}

/// The web host of an API URL: `https://api.github.com` → `https://github.com`,
/// `https://HOST/api/v3` → `https://HOST`; anything else (a private proxy, a test) serves both.
pub fn server_url_of(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if api == super::DEFAULT_API_URL {
        "https://github.com".to_owned()
    } else if let Some(host) = api.strip_suffix("/api/v3") {
        host.to_owned()
    } else {
        api.to_owned()
    }
}

impl GithubProvider {
    async fn check_client_secret(
        &self,
        client_id: &str,
        secret: &Value,
    ) -> Result<SecretCheck, ProviderError> {
        let op = "POST /login/oauth/access_token";
        // A code GitHub never issued (theirs are 20 hex characters): it can only be refused.
        let code = format!("rekey-check-{:016x}", rand_u64());
        let req = self
            .http
            .request_url(
                Method::POST,
                &format!("{}/login/oauth/access_token", self.server_url),
            )
            .form(&[
                ("client_id", client_id),
                ("client_secret", secret.expose()),
                ("code", &code),
            ]);
        let resp = self.http.send(op, req, Spend::NotOurs).await?;
        if !resp.status().is_success() {
            return Err(error_of(op, resp).await);
        }
        let answer: TokenEndpointAnswer = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        match answer.error.as_deref() {
            Some("bad_verification_code") => Ok(SecretCheck::Accepted),
            Some("incorrect_client_credentials") => Ok(SecretCheck::Refused),
            Some(other) => Err(ProviderError::permanent(format!(
                "{op}: GitHub answered `{}` for OAuth app {client_id}",
                other.chars().take(60).collect::<String>()
            ))),
            None => Err(ProviderError::permanent(format!(
                "{op}: GitHub accepted a made-up code for OAuth app {client_id}; the check proves nothing"
            ))),
        }
    }

    /// `github.oauth_app.check_secret`: the secret is accepted (`expect: accepted`, the
    /// default: a new secret works) or refused (`expect: refused`: the old one was deleted).
    pub(super) async fn oauth_check(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let client_id = required(call, "client_id")?.expose().to_owned();
        let secret = required(call, "client_secret")?;
        let want = match input(call, "expect").map(Value::expose) {
            None | Some("accepted") => SecretCheck::Accepted,
            Some("refused") => SecretCheck::Refused,
            Some(other) => {
                return Err(ProviderError::permanent(format!(
                    "step {}: `expect: {other}` is not one of accepted, refused",
                    call.step.id
                )));
            }
        };
        let got = self.check_client_secret(&client_id, secret).await?;
        match (want, got) {
            (SecretCheck::Accepted, SecretCheck::Accepted) => {
                Ok([("secret".to_owned(), Value::Plain("accepted".into()))].into())
            }
            (SecretCheck::Refused, SecretCheck::Refused) => {
                Ok([("secret".to_owned(), Value::Plain("refused".into()))].into())
            }
            (SecretCheck::Accepted, SecretCheck::Refused) => {
                Err(ProviderError::permanent(format!(
                    "step {}: GitHub refuses the new client secret of OAuth app {client_id} (incorrect_client_credentials): was it copied whole, and for this app?",
                    call.step.id
                )))
            }
            // Deleting a secret in the UI takes effect at once; a retry covers a slow replica.
            (SecretCheck::Refused, SecretCheck::Accepted) => {
                Err(ProviderError::transient(format!(
                    "step {}: GitHub still accepts the old client secret of OAuth app {client_id}: delete it in the app's settings",
                    call.step.id
                )))
            }
        }
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    // A failure leaves zeros: still not a code GitHub issued.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
