//! Auth0's Management API for client secrets and its token endpoint, in process (wiremock),
//! written from Auth0's documentation: `POST /api/v2/clients/{id}/rotate-secret` answers the
//! client with a new `client_secret` and the old one stops working at once; `GET
//! /api/v2/clients/{id}`; `Authorization: Bearer <management token>`; errors as `statusCode` /
//! `error` / `message`; 429 with `x-ratelimit-reset`. Its `/oauth/token` (`client_credentials`,
//! the secret in the body or HTTP Basic, an `audience`) answers only for the client's current
//! secret — after an optional delay, as Auth0 may take a few seconds to apply a new one — with
//! 401 `access_denied` otherwise.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

use crate::faults::{self, Dice, Fault, HasDice};

struct Client {
    secret: String,
    /// When the current secret starts to work.
    live_from: Instant,
}

#[derive(Default)]
struct State {
    token: String,
    audience: String,
    clients: BTreeMap<String, Client>,
    apply_delay: Duration,
    counter: u64,
    rotations: usize,
    dice: Dice,
    requests: usize,
}

impl HasDice for State {
    fn dice(&mut self) -> &mut Dice {
        &mut self.dice
    }

    fn count_request(&mut self) {
        self.requests += 1;
    }
}

/// The fake Auth0 tenant; stopped when dropped.
pub struct Auth0Fake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Auth0Fake {
    /// A tenant whose Management API takes `Bearer mgmt_token` and whose token endpoint
    /// issues tokens for `audience`.
    pub async fn start(mgmt_token: &str, audience: &str) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            token: mgmt_token.to_owned(),
            audience: audience.to_owned(),
            ..State::default()
        }));
        faults::mount(
            &server,
            &state,
            |f| match f {
                Fault::RateLimited => rate_limited(),
                Fault::Before | Fault::After => error(502, "Bad Gateway", "upstream error"),
            },
            route,
        )
        .await;
        Self { server, state }
    }

    /// The tenant's domain, with its scheme (as the credential's `domain`).
    pub fn domain(&self) -> String {
        self.server.uri()
    }

    /// A client with its current secret.
    pub fn add_client(&self, client_id: &str, secret: &str) {
        lock(&self.state).clients.insert(
            client_id.to_owned(),
            Client {
                secret: secret.to_owned(),
                live_from: Instant::now(),
            },
        );
    }

    /// How long a rotated secret takes to work.
    pub fn set_apply_delay(&self, d: Duration) {
        lock(&self.state).apply_delay = d;
    }

    /// The client's current secret.
    pub fn secret(&self, client_id: &str) -> Option<String> {
        lock(&self.state)
            .clients
            .get(client_id)
            .map(|c| c.secret.clone())
    }

    /// Whether the token endpoint gives `client_id` a token for `secret` now.
    pub fn accepts(&self, client_id: &str, secret: &str) -> bool {
        live(&lock(&self.state), client_id, secret)
    }

    /// Rotations done.
    pub fn rotations(&self) -> usize {
        lock(&self.state).rotations
    }

    pub fn set_faults(&self, rate: f64, seed: u64) {
        lock(&self.state).dice.set(rate, seed);
    }

    pub fn faults_injected(&self) -> usize {
        lock(&self.state).dice.injected
    }

    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }
}

fn live(s: &State, client_id: &str, secret: &str) -> bool {
    s.clients
        .get(client_id)
        .is_some_and(|c| c.secret == secret && Instant::now() >= c.live_from)
}

fn error(status: u16, error: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "statusCode": status,
        "error": error,
        "message": message,
    }))
}

fn rate_limited() -> ResponseTemplate {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 1;
    error(429, "Too Many Requests", "Global limit has been reached")
        .insert_header("x-ratelimit-limit", "10")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", reset.to_string().as_str())
}

fn route(s: &mut State, req: &Request) -> ResponseTemplate {
    let path = req.url.path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method.as_str();
    if method == "POST" && segs == ["oauth", "token"] {
        return token(s, req);
    }
    let authed = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        == Some(s.token.as_str());
    if !authed {
        return error(401, "Unauthorized", "Invalid token");
    }
    match (method, segs.as_slice()) {
        ("GET", ["api", "v2", "clients", id]) => match s.clients.get(*id) {
            Some(_) => ResponseTemplate::new(200).set_body_json(json!({ "client_id": id })),
            None => error(404, "Not Found", "The client does not exist"),
        },
        ("POST", ["api", "v2", "clients", id, "rotate-secret"]) => {
            s.counter += 1;
            let n = s.counter;
            let delay = s.apply_delay;
            let Some(c) = s.clients.get_mut(*id) else {
                return error(404, "Not Found", "The client does not exist");
            };
            c.secret = format!(
                "a0{:016x}{:016x}{:08x}",
                n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                !n,
                n
            );
            c.live_from = Instant::now() + delay;
            let secret = c.secret.clone();
            s.rotations += 1;
            ResponseTemplate::new(200).set_body_json(json!({
                "client_id": id,
                "name": "fake client",
                "client_secret": secret,
            }))
        }
        _ => error(404, "Not Found", "Not Found"),
    }
}

/// `client_credentials`: the secret in the body (form or JSON) or HTTP Basic.
fn token(s: &mut State, req: &Request) -> ResponseTemplate {
    let body: BTreeMap<String, String> = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| {
            v.as_object().map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
        })
        .unwrap_or_else(|| form_urlencoded::parse(&req.body).into_owned().collect());
    let basic = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| B64.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|c| c.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let (id, secret) = basic.unwrap_or_else(|| {
        (
            body.get("client_id").cloned().unwrap_or_default(),
            body.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    if body.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return ResponseTemplate::new(403).set_body_json(json!({
            "error": "unsupported_grant_type",
            "error_description": "Unsupported grant type"
        }));
    }
    if !live(s, &id, &secret) {
        return ResponseTemplate::new(401).set_body_json(json!({
            "error": "access_denied",
            "error_description": "Unauthorized"
        }));
    }
    if body.get("audience") != Some(&s.audience) {
        return ResponseTemplate::new(403).set_body_json(json!({
            "error": "access_denied",
            "error_description": "Service not found"
        }));
    }
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": "eyJfake.auth0.sig",
        "token_type": "Bearer",
        "expires_in": 86400
    }))
}
