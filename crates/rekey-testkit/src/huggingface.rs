//! An in-process Hugging Face Hub (wiremock), written from the Hub's documentation ("User
//! access tokens", "Revoking a leaked token") and `huggingface_hub`'s `whoami`:
//!
//! - `GET /api/whoami-v2` with `Authorization: Bearer TOKEN`: the account (`type`, `name`,
//!   `orgs[].name`, `auth.type`, `auth.accessToken.displayName` / `role`, and
//!   `auth.accessToken.fineGrained` for fine-grained tokens); 401
//!   `{"error":"Invalid credentials in Authorization header"}` for an unknown or revoked token
//!   (and `{"error":"Invalid username or password."}` without one);
//! - `POST /api/credentials/revoke` `{"credentials": [token, …]}`: no authentication, 202
//!   whether or not a token existed (known ones stop working); 400 for a body that is not that;
//!   calls, their sizes and whether they were authenticated are recorded;
//! - seeded faults like the GitHub fake: 429 with `retry-after` and the `RateLimit` header, 502
//!   (half of them after the request took effect: a lost answer), reset connections.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

use crate::faults::{self, Dice, Fault, HasDice};

/// One access token the Hub knows.
#[derive(Debug, Clone)]
struct Token {
    user: String,
    role: String,
    display_name: String,
}

#[derive(Default)]
struct State {
    /// user → organisations it is a member of.
    users: BTreeMap<String, Vec<String>>,
    tokens: BTreeMap<String, Token>,
    revoked: BTreeSet<String>,
    revoke_call_sizes: Vec<usize>,
    authenticated_revokes: usize,
    /// Revocations take effect only after this many more `whoami-v2` answers (propagation).
    revoke_delay: usize,
    /// Revoke calls answer 202 and revoke nothing.
    ignore_revokes: bool,
    /// token → `whoami-v2` answers it still gets before its revocation takes effect.
    pending: BTreeMap<String, usize>,
    whoami_calls: usize,
    requests: usize,
    dice: Dice,
    latency: Duration,
}

impl HasDice for State {
    fn dice(&mut self) -> &mut Dice {
        &mut self.dice
    }

    fn count_request(&mut self) {
        self.requests += 1;
    }

    fn latency(&self) -> Duration {
        self.latency
    }
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake Hub; stopped when dropped.
pub struct HuggingfaceFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl HuggingfaceFake {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        faults::mount(&server, &state, fault, route).await;
        Self { server, state }
    }

    /// What `HF_ENDPOINT` is set to.
    pub fn endpoint(&self) -> String {
        self.server.uri()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// A user and the organisations it belongs to.
    pub fn add_user(&self, user: &str, orgs: &[&str]) {
        self.with(|s| {
            s.users.insert(
                user.to_owned(),
                orgs.iter().map(|o| (*o).to_owned()).collect(),
            );
        });
    }

    /// A token of `user` (added if unknown) with `role` (`read`, `write`, `fineGrained`): what
    /// a person creates in Settings, Access Tokens.
    pub fn add_token(&self, token: &str, user: &str, role: &str) {
        self.with(|s| {
            s.users.entry(user.to_owned()).or_default();
            let n = s.tokens.len();
            s.tokens.insert(
                token.to_owned(),
                Token {
                    user: user.to_owned(),
                    role: role.to_owned(),
                    display_name: format!("token-{n}"),
                },
            );
        });
    }

    /// The Hub accepts this token (known and not revoked).
    pub fn is_live(&self, token: &str) -> bool {
        self.with(|s| s.tokens.contains_key(token) && !s.revoked.contains(token))
    }

    pub fn is_revoked(&self, token: &str) -> bool {
        self.with(|s| s.revoked.contains(token))
    }

    /// Tokens of `user` that still work.
    pub fn live_tokens_of(&self, user: &str) -> Vec<String> {
        self.with(|s| {
            s.tokens
                .iter()
                .filter(|(t, k)| k.user == user && !s.revoked.contains(*t))
                .map(|(t, _)| t.clone())
                .collect()
        })
    }

    /// `POST /api/credentials/revoke` calls that were answered 202, and their sizes.
    pub fn revoke_calls(&self) -> Vec<usize> {
        self.with(|s| s.revoke_call_sizes.clone())
    }

    /// Revoke calls that carried an `Authorization` header (the API needs none).
    pub fn authenticated_revokes(&self) -> usize {
        self.with(|s| s.authenticated_revokes)
    }

    pub fn whoami_calls(&self) -> usize {
        self.with(|s| s.whoami_calls)
    }

    /// Every request that reached the fake, faults included.
    pub fn requests(&self) -> usize {
        self.with(|s| s.requests)
    }

    pub fn faults_injected(&self) -> usize {
        self.with(|s| s.dice.injected)
    }

    /// Injects faults into this share of requests (0..1), reproducibly from `seed`.
    pub fn set_faults(&self, rate: f64, seed: u64) {
        self.with(|s| s.dice.set(rate, seed));
    }

    /// Revocations take effect only after `answers` more `whoami-v2` answers for the token
    /// (the Hub's caches).
    pub fn set_revoke_delay(&self, answers: usize) {
        self.with(|s| s.revoke_delay = answers);
    }

    /// Revoke calls still answer 202 but revoke nothing: what the Hub says for a token it does
    /// not recognise as one of its own.
    pub fn set_ignore_revokes(&self, ignore: bool) {
        self.with(|s| s.ignore_revokes = ignore);
    }

    /// Every answer waits this long.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }
}

fn error(status: u16, m: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({ "error": m }))
        .insert_header("x-error-message", m)
}

fn bearer(req: &Request) -> Option<String> {
    let h = req.headers.get("authorization")?.to_str().ok()?;
    h.strip_prefix("Bearer ").map(str::to_owned)
}

/// What a rolled fault answers: 429 with `retry-after` and the Hub's `RateLimit` header, or a
/// 502 (for a lost answer, after the request took effect).
fn fault(f: Fault) -> ResponseTemplate {
    match f {
        Fault::RateLimited => error(
            429,
            "You have exceeded our hourly quotas for action: api. We invite you to retry later.",
        )
        .insert_header("retry-after", "1")
        .insert_header("ratelimit", "\"api\";r=0;t=1")
        .insert_header("ratelimit-policy", "\"fixed window\";\"api\";q=500;w=300"),
        Fault::Before | Fault::After => {
            ResponseTemplate::new(502).set_body_string("<html>502 Bad Gateway</html>")
        }
    }
}

fn route(s: &mut State, req: &Request) -> ResponseTemplate {
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/api/whoami-v2") => whoami(s, bearer(req).as_deref()),
        ("POST", "/api/credentials/revoke") => revoke(s, req),
        _ => error(404, "Sorry, we can't find the page you are looking for."),
    }
}

fn whoami(s: &mut State, token: Option<&str>) -> ResponseTemplate {
    s.whoami_calls += 1;
    let Some(token) = token else {
        return error(401, "Invalid username or password.");
    };
    if let Some(left) = s.pending.get_mut(token) {
        if *left == 0 {
            s.pending.remove(token);
            s.revoked.insert(token.to_owned());
        } else {
            *left -= 1;
        }
    }
    let Some(t) = s.tokens.get(token).filter(|_| !s.revoked.contains(token)) else {
        return error(401, "Invalid credentials in Authorization header");
    };
    let orgs = s.users.get(&t.user).cloned().unwrap_or_default();
    let mut access = json!({
        "displayName": t.display_name,
        "role": t.role,
        "createdAt": "2026-01-01T00:00:00.000Z",
    });
    if t.role == "fineGrained" {
        access["fineGrained"] = json!({
            "canReadGatedRepos": false,
            "global": ["inference.serverless.write"],
            "scoped": [{
                "entity": { "_id": "0000000000000000000000aa", "type": "user", "name": t.user },
                "permissions": ["repo.content.read"],
            }],
        });
    }
    ResponseTemplate::new(200).set_body_json(json!({
        "type": "user",
        "id": "0000000000000000000000aa",
        "name": t.user,
        "fullname": t.user,
        "email": format!("{}@example.com", t.user),
        "emailVerified": true,
        "canPay": false,
        "isPro": false,
        "periodEnd": null,
        "avatarUrl": "/avatars/0.svg",
        "orgs": orgs.iter().enumerate().map(|(i, o)| json!({
            "type": "org",
            "id": format!("{i:024}"),
            "name": o,
            "fullname": o,
            "roleInOrg": "write",
            "isEnterprise": false,
        })).collect::<Vec<_>>(),
        "auth": { "type": "access_token", "accessToken": access },
    }))
}

fn revoke(s: &mut State, req: &Request) -> ResponseTemplate {
    let Ok(body) = req.body_json::<Value>() else {
        return error(400, "Invalid JSON body");
    };
    let Some(list) = body.get("credentials").and_then(Value::as_array) else {
        return error(400, "\"credentials\" must be an array of strings");
    };
    if list.iter().any(|v| !v.is_string()) {
        return error(400, "\"credentials\" must be an array of strings");
    }
    if req.headers.contains_key("authorization") {
        s.authenticated_revokes += 1;
    }
    s.revoke_call_sizes.push(list.len());
    if s.ignore_revokes {
        return ResponseTemplate::new(202);
    }
    for t in list.iter().filter_map(Value::as_str) {
        if !s.tokens.contains_key(t) || s.revoked.contains(t) {
            continue;
        }
        if s.revoke_delay == 0 {
            s.revoked.insert(t.to_owned());
        } else {
            let delay = s.revoke_delay;
            s.pending.entry(t.to_owned()).or_insert(delay);
        }
    }
    ResponseTemplate::new(202)
}
