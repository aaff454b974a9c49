//! The registry's token API: answers, errors (and one-time-password challenges), and the
//! calls behind each `npm.*` action.

#![allow(clippy::wildcard_imports)]

use super::*;

/// One token as the registry lists it (its value masked).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Listed {
    pub(super) key: String,
    /// The masked value: `npm_1f…` (npm), `YWQ1N...1Mw==` (Verdaccio).
    #[serde(default)]
    pub(super) token: String,
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ListAnswer {
    #[serde(default)]
    pub(super) objects: Vec<serde_json::Value>,
    #[serde(default)]
    pub(super) urls: Urls,
}

#[derive(Deserialize, Default)]
pub(super) struct Urls {
    #[serde(default)]
    pub(super) next: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Created {
    pub(super) key: String,
    pub(super) token: String,
}

#[derive(Deserialize)]
pub(super) struct WhoAmI {
    #[serde(default)]
    pub(super) username: Option<String>,
}

/// The account a token-management step acts for.
pub(super) struct Account {
    pub(super) registry: String,
    pub(super) user: String,
    pub(super) password: SecretString,
    /// An operator's answer to the registry's OTP question, for this call only.
    pub(super) otp: Option<SecretString>,
}

pub(super) use crate::inputs::{input, required};

/// A comma-separated inventory list.
pub(super) fn list_of(call: &Call<'_>, name: &str) -> Vec<String> {
    input(call, name)
        .map(|v| {
            v.expose()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The registry's base URL without its trailing slash, as npm joins paths to it.
pub fn registry_base(registry: &str) -> String {
    registry.trim().trim_end_matches('/').to_owned()
}

/// The part of a new token's name that ties it to one step of one run.
pub(super) fn name_tag(idempotency_key: &str) -> String {
    idempotency_key.chars().take(16).collect()
}

/// Whether `masked`, as a registry lists a token (`npm_1f…`, `YWQ1N...1Mw==`), shows `value`:
/// what it shows before and after the ellipsis must be the value's start and end, and show at
/// least 2 characters besides npm's `npm_` prefix (several tokens may still match: the caller
/// refuses to guess).
pub fn masked_matches(masked: &str, value: &str) -> bool {
    let (prefix, suffix) = if let Some((a, b)) = masked.split_once("...") {
        (a, b)
    } else if let Some((a, b)) = masked.split_once('…') {
        (a, b)
    } else {
        // Shown whole (a registry that does not mask): compare as is.
        return !masked.is_empty() && masked == value;
    };
    // `npm_` says nothing about which token it is.
    prefix.trim_start_matches("npm_").len() + suffix.len() >= 2
        && value.len() >= prefix.len() + suffix.len()
        && value.starts_with(prefix)
        && value.ends_with(suffix)
}

/// Reads an unsuccessful answer: npm's and Verdaccio's bodies say `{"error": …}` where GitHub's
/// say `{"message": …}`. A 401 asking for a one-time password becomes
/// [`ErrorKind::NeedsInput`].
pub(super) async fn npm_error(op: &str, resp: Response, otp_sent: bool) -> ProviderError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED && asks_otp(&headers, &body) {
        return ProviderError::needs_input(if otp_sent {
            format!(
                "{op}: the registry refused the one-time password: enter a fresh one from your authenticator"
            )
        } else {
            format!(
                "{op}: the registry asks for a one-time password (two-factor authentication): enter the code from your authenticator"
            )
        });
    }
    let body = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.get("message").is_none() => match v.get("error").and_then(|e| e.as_str()) {
            Some(e) => serde_json::to_vec(&serde_json::json!({ "message": e })).unwrap_or_default(),
            None => body.to_vec(),
        },
        _ => body.to_vec(),
    };
    classify(op, status, &headers, &body, SystemTime::now())
}

/// npm's OTP challenge: `www-authenticate: OTP`, or a body that says a one-time password is
/// required.
pub(super) fn asks_otp(headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let header = headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("otp")));
    header || {
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        text.contains("one-time pass")
    }
}

impl NpmProvider {
    pub fn new(config: NpmConfig) -> Self {
        Self {
            config,
            clients: Mutex::new(HashMap::new()),
            minted: Mutex::new(HashMap::new()),
            kept_at_undo: Mutex::new(HashMap::new()),
            writes: Mutex::new(HashMap::new()),
        }
    }

    /// This process's turn to write tokens at `registry` (see [`NpmProvider::writes`]).
    pub(super) async fn write_turn(&self, registry: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(
            self.writes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(registry_base(registry))
                .or_default(),
        );
        lock.lock_owned().await
    }

    pub fn from_env() -> Self {
        Self::new(NpmConfig::from_env())
    }

    pub(super) fn client(&self, registry: &str) -> Result<Arc<HttpClient>, ProviderError> {
        let base = registry_base(registry);
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ProviderError::permanent(format!(
                "npm: the registry `{base}` is not an http(s) URL"
            )));
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(&base) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(
            HttpClient::new("npm", &base, self.config.timeout, self.config.budget)?
                .with_delete_pace(self.config.delete_pace.0, self.config.delete_pace.1)
                .with_accept("application/json"),
        );
        clients.insert(base, Arc::clone(&c));
        Ok(c)
    }

    pub(super) fn registry(call: &Call<'_>) -> String {
        input(call, "registry")
            .map_or_else(|| DEFAULT_REGISTRY.to_owned(), |v| v.expose().to_owned())
    }

    /// The account of a token-management step: user, password from `password_env`, and the
    /// operator's OTP if the step was given one.
    pub(super) fn account(&self, call: &Call<'_>) -> Result<Account, ProviderError> {
        let user = required(call, "user")?.expose().to_owned();
        let var = required(call, "password_env")?.expose().to_owned();
        let password = (self.config.lookup)(&var).ok_or_else(|| {
            ProviderError::permanent(format!(
                "npm: the credential's password_env names ${var}, which is not set (the password of npm account {user})"
            ))
        })?;
        let otp = call
            .inputs
            .get(OPERATOR_INPUT)
            .map(|v| SecretString::from(v.expose().trim().to_owned()))
            .filter(|v| !v.expose_secret().is_empty());
        Ok(Account {
            registry: Self::registry(call),
            user,
            password,
            otp,
        })
    }

    /// A request authenticated as the account (and with the OTP, when there is one).
    pub(super) fn authed(
        &self,
        a: &Account,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, ProviderError> {
        // `basic_auth` marks the header sensitive; so is the OTP's.
        let mut req = self
            .client(&a.registry)?
            .request(method, path)
            .basic_auth(&a.user, Some(a.password.expose_secret()));
        if let Some(otp) = &a.otp {
            let mut v =
                reqwest::header::HeaderValue::from_str(otp.expose_secret()).map_err(|_| {
                    ProviderError::needs_input(
                        "npm: that is not a one-time password (digits only): enter the code again",
                    )
                })?;
            v.set_sensitive(true);
            req = req.header("npm-otp", v);
        }
        Ok(req)
    }

    pub(super) async fn send_ok(
        &self,
        a: &Account,
        op: &str,
        req: RequestBuilder,
    ) -> Result<Response, ProviderError> {
        let resp = self.client(&a.registry)?.send(op, req, Spend::Ours).await?;
        ok_or_error(a, op, resp).await
    }

    /// A token write at `a`'s registry: its pace is waited first, then the registry's write
    /// turn is taken, so a write waiting for its pace holds up no other (a delete would queue
    /// behind a create's slower pace). Send the request with [`Spend::Paced`] under the turn.
    pub(super) async fn paced_turn(
        &self,
        a: &Account,
        method: &Method,
    ) -> Result<(Arc<HttpClient>, tokio::sync::OwnedMutexGuard<()>), ProviderError> {
        let client = self.client(&a.registry)?;
        client.pace(method).await;
        let turn = self.write_turn(&a.registry).await;
        Ok((client, turn))
    }

    /// Every token of the account, following `urls.next`.
    pub(super) async fn list(&self, a: &Account) -> Result<(Vec<Listed>, bool), ProviderError> {
        let mut out = Vec::new();
        let mut names = false;
        let mut path = "/-/npm/v1/tokens".to_owned();
        for _ in 0..MAX_PAGES {
            let op = "GET /-/npm/v1/tokens";
            let req = self.authed(a, Method::GET, &path)?;
            let resp = self.send_ok(a, op, req).await?;
            let page: ListAnswer = resp
                .json()
                .await
                .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
            for o in page.objects {
                names |= o.get("name").is_some_and(serde_json::Value::is_string);
                if let Ok(t) = serde_json::from_value::<Listed>(o) {
                    out.push(t);
                }
            }
            match page.urls.next.filter(|n| !n.is_empty()) {
                // `next` is absolute (npm) or relative to the registry; either way only its
                // path and query are followed, on this registry (never another host).
                Some(next) => {
                    let rest = if let Some(i) = next.find("/-/npm/v1/tokens") {
                        next[i..].to_owned()
                    } else {
                        return Err(ProviderError::permanent(format!(
                            "{op}: the next page is not a token list of this registry"
                        )));
                    };
                    if rest == path {
                        break;
                    }
                    path = rest;
                }
                None => return Ok((out, names)),
            }
        }
        Ok((out, names))
    }

    pub(super) async fn delete_key(&self, a: &Account, key: &str) -> Result<(), ProviderError> {
        let op = "DELETE /-/npm/v1/tokens/token/{key}";
        let path = format!("/-/npm/v1/tokens/token/{}", seg(key));
        let req = self.authed(a, Method::DELETE, &path)?;
        let (client, turn) = self.paced_turn(a, &Method::DELETE).await?;
        let resp = client.send(op, req, Spend::Paced).await?;
        drop(turn);
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(npm_error(op, resp, a.otp.is_some()).await)
        }
    }

    /// Who a token found on a machine belongs to (`rekey discover --online`): `GET /-/whoami`
    /// on `registry`, read-only; `None` when the registry does not take the token.
    pub async fn identity(
        &self,
        registry: &str,
        token: &Value,
    ) -> Result<Option<String>, ProviderError> {
        self.whoami(registry, token).await
    }

    /// `GET /-/whoami` with a token: the username, or `None` when the registry does not take
    /// the token (401/403, or Verdaccio's 200 `{}`).
    pub(super) async fn whoami(
        &self,
        registry: &str,
        token: &Value,
    ) -> Result<Option<String>, ProviderError> {
        let op = "GET /-/whoami";
        let client = self.client(registry)?;
        let req = client
            .request(Method::GET, "/-/whoami")
            .bearer_auth(token.expose());
        let resp = client.send(op, req, Spend::NotOurs).await?;
        if matches!(
            resp.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(npm_error(op, resp, false).await);
        }
        let w: WhoAmI = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        Ok(w.username.filter(|u| !u.is_empty()))
    }

    pub(super) fn minted_key(&self, a: &Account, key: &str, idem: &str) {
        self.minted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((registry_base(&a.registry), a.user.clone()))
            .or_default()
            .insert(key.to_owned(), idem.to_owned());
    }

    pub(super) fn minted_by_others(&self, a: &Account, idem: &str) -> HashSet<String> {
        self.minted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(registry_base(&a.registry), a.user.clone()))
            .map(|m| {
                m.iter()
                    .filter(|(_, i)| i.as_str() != idem)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tokens an earlier call of this create step made (its answer lost): by name where
    /// the registry keeps names, else the tokens missing from the keys listed before the mint.
    pub(super) async fn orphans(
        &self,
        call: &Call<'_>,
        a: &Account,
    ) -> Result<Vec<String>, ProviderError> {
        // Under the write turn, every token this process minted is recorded as minted.
        let turn = self.write_turn(&a.registry).await;
        let (tokens, names) = self.list(a).await?;
        let others = self.minted_by_others(a, call.idempotency_key);
        drop(turn);
        let tag = name_tag(call.idempotency_key);
        if names {
            return Ok(tokens
                .into_iter()
                .filter(|t| t.name.as_deref().is_some_and(|n| n.ends_with(&tag)))
                .map(|t| t.key)
                .collect());
        }
        let Some(before) = input(call, "existing_keys") else {
            // Neither names nor a list from before the mint: nothing can be told apart.
            call.reports.warning(format!(
                "{}: the registry lists no token names and no keys were listed before the mint: a token made by a lost call cannot be found",
                call.step.id
            ));
            return Ok(Vec::new());
        };
        let before: HashSet<String> = serde_json::from_str::<Vec<String>>(before.expose())
            .map_err(|_| {
                ProviderError::permanent(format!(
                    "step {}: `existing_keys` is not the list npm.tokens.list gives",
                    call.step.id
                ))
            })?
            .into_iter()
            .collect();
        let kept = self
            .kept_at_undo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(call.idempotency_key)
            .cloned()
            .unwrap_or_default();
        let candidates: Vec<String> = tokens
            .into_iter()
            .map(|t| t.key)
            .filter(|k| !before.contains(k) && !others.contains(k) && !kept.contains(k))
            .collect();
        if candidates.len() > 1 {
            return Err(ProviderError::permanent(format!(
                "step {}: the registry lists no token names, and {} tokens of {} appeared since the run listed them ({}): rekey cannot tell which one a lost mint made; delete the unknown ones by hand (npm token revoke KEY) and resume",
                call.step.id,
                candidates.len(),
                a.user,
                candidates.join(", ")
            )));
        }
        Ok(candidates)
    }

    pub(super) async fn remove_orphans(
        &self,
        call: &Call<'_>,
        a: &Account,
    ) -> Result<usize, ProviderError> {
        let orphans = self.orphans(call, a).await?;
        for k in &orphans {
            self.delete_key(a, k).await?;
            call.reports.side_effect(format!(
                "deleted npm token {k} of {}: made by an earlier call of {} whose answer was lost (an orphan)",
                a.user, call.step.id
            ));
        }
        Ok(orphans.len())
    }

    /// `npm.tokens.list`: the keys of the account's tokens, as a JSON list.
    pub(super) async fn list_keys(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = self.account(call)?;
        let (tokens, _) = self.list(&a).await?;
        let mut keys: Vec<String> = tokens.into_iter().map(|t| t.key).collect();
        keys.sort();
        Ok([(
            "keys".to_owned(),
            Value::Plain(serde_json::to_string(&keys).expect("strings serialize")),
        )]
        .into())
    }

    /// `npm.tokens.create`: removes what an earlier call of this step left, then mints.
    /// A first call looks for no leftovers: on a registry that lists no names, a token someone
    /// else made since the keys were listed would pass for one.
    pub(super) async fn create(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = self.account(call)?;
        if call.attempt > 1 || call.tried_before {
            self.remove_orphans(call, &a).await?;
        }
        let readonly = input(call, "permission").is_some_and(|p| p.expose() == "read-only");
        let days = match input(call, "expires_days") {
            Some(d) => d.expose().parse::<u32>().map_err(|_| {
                ProviderError::permanent(format!(
                    "step {}: expires_days `{}` is not a number of days",
                    call.step.id,
                    d.expose()
                ))
            })?,
            None => DEFAULT_EXPIRES_DAYS,
        };
        if !readonly && days > rekey_spec::kind::NPM_WRITE_TOKEN_MAX_DAYS {
            return Err(ProviderError::permanent(format!(
                "step {}: npm lets a write token live at most {} days, not {days}",
                call.step.id,
                rekey_spec::kind::NPM_WRITE_TOKEN_MAX_DAYS
            )));
        }
        let base_name = input(call, "token_name").map_or_else(
            || format!("rekey-{}", call.credential.id),
            |v| v.expose().to_owned(),
        );
        let name = format!("{base_name}-{}", name_tag(call.idempotency_key));
        let permission = if readonly { "read-only" } else { "read-write" };
        let mut body = serde_json::json!({
            "password": a.password.expose_secret(),
            "name": name,
            "token_description": format!("rotated by rekey, run {}", call.run_id),
            "expires": days,
            "packages_and_scopes_permission": permission,
            "readonly": readonly,
            "cidr_whitelist": list_of(call, "cidr_whitelist"),
        });
        let packages = list_of(call, "packages");
        let scopes = list_of(call, "scopes");
        if !packages.is_empty() {
            body["packages"] = packages.into();
        }
        if !scopes.is_empty() {
            body["scopes"] = scopes.into();
        }
        let op = "POST /-/npm/v1/tokens";
        let req = self
            .authed(&a, Method::POST, "/-/npm/v1/tokens")?
            .json(&body);
        drop(body);
        // The key is recorded as this step's before the turn passes on: a concurrent search
        // for leftovers (listing under the turn) never sees it unrecorded.
        let (client, turn) = self.paced_turn(&a, &Method::POST).await?;
        let resp = client.send(op, req, Spend::Paced).await?;
        let resp = ok_or_error(&a, op, resp).await?;
        let c: Created = resp
            .json()
            .await
            .map_err(|_| ProviderError::transient(format!("{op}: unreadable answer")))?;
        self.minted_key(&a, &c.key, call.idempotency_key);
        drop(turn);
        Ok([
            ("key".to_owned(), Value::Plain(c.key)),
            ("token".to_owned(), Value::secret(c.token)),
        ]
        .into())
    }

    /// `npm.whoami`: the new token is accepted and belongs to `expected_user`.
    pub(super) async fn verify(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let token = required(call, "token")?;
        let registry = Self::registry(call);
        // A token the registry just issued may not be accepted at once (Verdaccio stores it
        // after answering the create): refused for the propagation wait, it is refused for good.
        let deadline = Instant::now() + self.config.propagation_wait;
        let mut pause = Duration::from_millis(100);
        let user = loop {
            if let Some(user) = self.whoami(&registry, token).await? {
                break user;
            }
            if Instant::now() >= deadline {
                return Err(ProviderError::permanent(format!(
                    "step {}: the registry does not accept the new token (whoami names no user)",
                    call.step.id
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(3));
        };
        if let Some(want) = input(call, "expected_user")
            && want.expose() != user
        {
            return Err(ProviderError::permanent(format!(
                "step {}: the new token belongs to {user}, not {}",
                call.step.id,
                want.expose()
            )));
        }
        Ok([("username".to_owned(), Value::Plain(user))].into())
    }

    /// The key of the old token: the inventory's, else found in the list by the old value.
    /// `None` when the old value is not listed any more.
    pub(super) async fn old_key(
        &self,
        call: &Call<'_>,
        a: &Account,
    ) -> Result<Option<String>, ProviderError> {
        let except = input(call, "except_key").map(|v| v.expose().to_owned());
        if let Some(k) = input(call, "key") {
            let k = k.expose().to_owned();
            if except.as_deref() == Some(k.as_str()) {
                return Err(ProviderError::permanent(format!(
                    "step {}: the token to delete ({k}) is the new one",
                    call.step.id
                )));
            }
            return Ok(Some(k));
        }
        let Some(value) = input(call, "token") else {
            return Err(ProviderError::permanent(format!(
                "step {}: neither the old token's key nor its value is known: set token_key in the inventory",
                call.step.id
            )));
        };
        let (tokens, _) = self.list(a).await?;
        let matches: Vec<String> = tokens
            .into_iter()
            .filter(|t| except.as_deref() != Some(t.key.as_str()))
            .filter(|t| masked_matches(&t.token, value.expose()))
            .map(|t| t.key)
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [k] => Ok(Some(k.clone())),
            ks => Err(ProviderError::permanent(format!(
                "step {}: {} tokens of {} look like the old one as the registry shows them ({}): set token_key in the inventory",
                call.step.id,
                ks.len(),
                a.user,
                ks.join(", ")
            ))),
        }
    }

    /// `npm.tokens.delete`.
    pub(super) async fn delete(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let a = self.account(call)?;
        let key = self.old_key(call, &a).await?;
        if let Some(k) = &key {
            self.delete_key(&a, k).await?;
        }
        // With the old value at hand: the registry must refuse it now.
        if let Some(value) = input(call, "token") {
            let deadline = Instant::now() + self.config.propagation_wait;
            let mut pause = Duration::from_millis(100);
            loop {
                match self.whoami(&a.registry, value).await? {
                    None => break,
                    Some(_) if Instant::now() >= deadline => {
                        return Err(ProviderError::transient(format!(
                            "step {}: the registry still accepts the old token after the delete",
                            call.step.id
                        )));
                    }
                    Some(_) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(3));
                    }
                }
            }
        }
        Ok([("deleted".to_owned(), Value::Plain(key.unwrap_or_default()))].into())
    }
}

/// A success status is returned; anything else is the registry's error, classified.
async fn ok_or_error(a: &Account, op: &str, resp: Response) -> Result<Response, ProviderError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(npm_error(op, resp, a.otp.is_some()).await)
    }
}
