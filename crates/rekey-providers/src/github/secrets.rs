//! Actions secrets: a scope's public key, the sealed box, the PUT.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_box::aead::OsRng;
use rekey_engine::{Call, ProviderError, Value, Values};
use rekey_plan::PlannedStep;
use rekey_spec::Consumer;
use rekey_spec::inventory::ActionsScope;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{GithubProvider, not_actions, repo_path, seg};
use crate::http::{Spend, error_of};

pub(super) type ScopeKey = tokio::sync::OnceCell<(String, crypto_box::PublicKey)>;

// ---------------------------------------------------------------------------------------------
// The Actions secret a step targets

pub(super) struct Target<'a> {
    pub(super) scope: &'a ActionsScope,
    pub(super) name: &'a str,
    pub(super) field: Option<&'a str>,
    pub(super) token_env: Option<&'a str>,
}

pub(super) fn target(step: &PlannedStep) -> Option<Target<'_>> {
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

pub(super) fn token_env(step: &PlannedStep) -> Option<&str> {
    target(step).and_then(|t| t.token_env)
}

/// Where a scope's secrets are: `/repos/O/R/actions/secrets`, `/repos/O/R/environments/E/secrets`,
/// `/orgs/O/actions/secrets`.
pub(super) fn secrets_path(scope: &ActionsScope) -> String {
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
pub(super) fn check_secret_name(name: &str) -> Result<(), String> {
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

impl GithubProvider {
    /// The scope's public key, fetched once per run (a 404 means the scope does not exist or
    /// the token cannot see it).
    pub(super) async fn public_key(
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
    pub(super) async fn repo_id(
        &self,
        repo: &str,
        token: &SecretString,
    ) -> Result<u64, ProviderError> {
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

    /// A 401 to the token that writes secrets, said so that an operator knows what to do: the
    /// token was revoked or expired, maybe by this very run (rotating the writer token itself
    /// revokes the value rekey was started with).
    pub(super) fn writer_refused(
        &self,
        e: ProviderError,
        token_env: Option<&str>,
    ) -> ProviderError {
        if !e.message.contains(": HTTP 401") {
            return e;
        }
        ProviderError::permanent(format!(
            "{}; GitHub refuses {} (revoked or expired). If this run rotated the token that writes Actions secrets, put its new value there and `rekey resume` the run",
            e.message,
            self.writer_source(token_env)
        ))
    }

    /// `consumer.deliver`: seal the value with the scope's public key and `PUT` it.
    pub(super) async fn deliver(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let t = target(call.step).ok_or_else(|| not_actions(call.step))?;
        let value = delivered_value(call, t.field)?;
        self.deliver_to(call, &t, value)
            .await
            .map_err(|e| self.writer_refused(e, t.token_env))
    }

    async fn deliver_to(
        &self,
        call: &Call<'_>,
        t: &Target<'_>,
        value: &Value,
    ) -> Result<Values, ProviderError> {
        let token = self.writer_token(t.token_env).await?;
        let (key_id, key) = self.public_key(t.scope, &token).await?;
        let sealed = key
            .seal(&mut OsRng, value.expose().as_bytes())
            .map_err(|_| ProviderError::permanent("github: sealing the value failed"))?;
        let mut body = self.org_visibility(t, &token).await?;
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
}
