//! GitHub App private keys: a JWT signed with the new key, `GET /app`.

use rekey_engine::{Call, ProviderError, Value, Values};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::auth::app_jwt;
use super::{GithubProvider, required};
use crate::http::{Spend, error_of};

#[derive(Deserialize)]
struct AppAnswer {
    id: u64,
    slug: String,
}

impl GithubProvider {
    /// `github.app.verify_key`: a JWT signed with the new key is accepted by `GET /app`, and
    /// the App is the credential's.
    pub(super) async fn verify_app_key(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
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
