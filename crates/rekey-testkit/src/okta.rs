//! Okta's management API for OAuth client secrets and a token endpoint, in process (wiremock),
//! written from Okta's documentation ("Client secret rotation", the Application SSO credential
//! OAuth 2.0 client auth API): an app holds up to two secrets, `ACTIVE` or `INACTIVE`; only
//! an inactive one can be deleted; `Authorization: SSWS <token>`; errors as `errorCode` /
//! `errorSummary`; 429 with `x-rate-limit-reset`. Its token endpoint
//! (`/oauth2/default/v1/token`, `client_credentials` with HTTP Basic or the body) answers only
//! for an active secret of the app, `invalid_client` otherwise — so a test proves which
//! secret works.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

use crate::faults::{self, Dice, Fault, HasDice};

struct Secret {
    id: String,
    value: String,
    active: bool,
    created: String,
}

struct App {
    client_id: String,
    secrets: Vec<Secret>,
}

#[derive(Default)]
struct State {
    token: String,
    apps: BTreeMap<String, App>,
    counter: u64,
    dice: Dice,
    requests: usize,
    token_checks: usize,
}

impl HasDice for State {
    fn dice(&mut self) -> &mut Dice {
        &mut self.dice
    }

    fn count_request(&mut self) {
        self.requests += 1;
    }
}

impl State {
    fn new_secret(&mut self, value: Option<&str>, active: bool) -> Secret {
        self.counter += 1;
        let n = self.counter;
        Secret {
            id: format!("ocs{n:017}"),
            value: value.map_or_else(
                || {
                    format!(
                        "okta{:016x}{:016x}",
                        n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        !n
                    )
                },
                str::to_owned,
            ),
            active,
            created: format!("2026-12-06T00:00:{n:02}.000Z"),
        }
    }
}

/// The fake Okta org; stopped when dropped.
pub struct OktaFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OktaFake {
    /// An org whose management API takes `SSWS api_token`.
    pub async fn start(api_token: &str) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            token: api_token.to_owned(),
            ..State::default()
        }));
        faults::mount(
            &server,
            &state,
            |f| match f {
                Fault::RateLimited => rate_limited(),
                Fault::Before | Fault::After => error(502, "E0000009", "Internal Server Error"),
            },
            route,
        )
        .await;
        Self { server, state }
    }

    /// The org's domain, with its scheme (as the credential's `domain`).
    pub fn domain(&self) -> String {
        self.server.uri()
    }

    /// An app with one active secret `value`; returns the secret's id.
    pub fn add_app(&self, app_id: &str, client_id: &str, value: &str) -> String {
        let mut s = lock(&self.state);
        let secret = s.new_secret(Some(value), true);
        let id = secret.id.clone();
        s.apps.insert(
            app_id.to_owned(),
            App {
                client_id: client_id.to_owned(),
                secrets: vec![secret],
            },
        );
        id
    }

    /// Another secret of the app (as if made in the Admin Console); returns its id.
    pub fn add_secret(&self, app_id: &str, value: &str, active: bool) -> String {
        let mut s = lock(&self.state);
        let secret = s.new_secret(Some(value), active);
        let id = secret.id.clone();
        s.apps
            .get_mut(app_id)
            .expect("a known app")
            .secrets
            .push(secret);
        id
    }

    /// The app's secrets: (id, active).
    pub fn secrets(&self, app_id: &str) -> Vec<(String, bool)> {
        lock(&self.state)
            .apps
            .get(app_id)
            .map(|a| a.secrets.iter().map(|s| (s.id.clone(), s.active)).collect())
            .unwrap_or_default()
    }

    /// The value of a secret, by id (what the Admin Console showed once).
    pub fn value(&self, app_id: &str, secret_id: &str) -> Option<String> {
        lock(&self.state).apps.get(app_id).and_then(|a| {
            a.secrets
                .iter()
                .find(|s| s.id == secret_id)
                .map(|s| s.value.clone())
        })
    }

    /// Whether the token endpoint gives `client_id` a token for `secret` now.
    pub fn accepts(&self, client_id: &str, secret: &str) -> bool {
        live(&lock(&self.state), client_id, secret)
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

    /// Token requests answered.
    pub fn token_checks(&self) -> usize {
        lock(&self.state).token_checks
    }
}

fn live(s: &State, client_id: &str, secret: &str) -> bool {
    s.apps
        .values()
        .filter(|a| a.client_id == client_id)
        .any(|a| a.secrets.iter().any(|x| x.active && x.value == secret))
}

fn error(status: u16, code: &str, summary: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae-fake",
        "errorCauses": []
    }))
}

fn rate_limited() -> ResponseTemplate {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 1;
    error(
        429,
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
    )
    .insert_header("x-rate-limit-limit", "100")
    .insert_header("x-rate-limit-remaining", "0")
    .insert_header("x-rate-limit-reset", reset.to_string().as_str())
}

fn secret_json(s: &Secret, with_value: bool) -> Value {
    let mut v = json!({
        "id": s.id,
        "status": if s.active { "ACTIVE" } else { "INACTIVE" },
        "secret_hash": format!("h{}", s.id),
        "created": s.created,
        "lastUpdated": s.created,
    });
    if with_value {
        v["client_secret"] = json!(s.value);
    }
    v
}

fn route(s: &mut State, req: &Request) -> ResponseTemplate {
    let path = req.url.path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method.as_str();
    if method == "POST" && segs == ["oauth2", "default", "v1", "token"] {
        return token(s, req);
    }
    let authed = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("SSWS "))
        == Some(s.token.as_str());
    if !authed {
        return error(401, "E0000011", "Invalid token provided");
    }
    let [
        "api",
        "v1",
        "apps",
        app_id,
        "credentials",
        "secrets",
        rest @ ..,
    ] = segs.as_slice()
    else {
        return error(
            404,
            "E0000022",
            "The endpoint does not support the provided HTTP method",
        );
    };
    let app_id = (*app_id).to_owned();
    if !s.apps.contains_key(&app_id) {
        return error(
            404,
            "E0000007",
            &format!("Not found: Resource not found: {app_id} (AppInstance)"),
        );
    }
    match (method, rest) {
        ("GET", []) => {
            let app = &s.apps[&app_id];
            let list: Vec<Value> = app.secrets.iter().map(|x| secret_json(x, false)).collect();
            ResponseTemplate::new(200).set_body_json(Value::Array(list))
        }
        ("POST", []) => {
            if s.apps[&app_id].secrets.len() >= 2 {
                return error(
                    400,
                    "E0000001",
                    "Api validation failed: client_secret. You can't create more than two client secrets.",
                );
            }
            let secret = s.new_secret(None, true);
            let body = secret_json(&secret, true);
            s.apps.get_mut(&app_id).expect("known").secrets.push(secret);
            ResponseTemplate::new(200).set_body_json(body)
        }
        ("POST", [id, "lifecycle", to @ ("activate" | "deactivate")]) => {
            let app = s.apps.get_mut(&app_id).expect("known");
            let Some(x) = app.secrets.iter_mut().find(|x| x.id == *id) else {
                return error(
                    404,
                    "E0000007",
                    "Not found: Resource not found (ClientSecret)",
                );
            };
            x.active = *to == "activate";
            ResponseTemplate::new(200).set_body_json(secret_json(x, false))
        }
        ("DELETE", [id]) => {
            let app = s.apps.get_mut(&app_id).expect("known");
            let Some(i) = app.secrets.iter().position(|x| x.id == *id) else {
                return error(
                    404,
                    "E0000007",
                    "Not found: Resource not found (ClientSecret)",
                );
            };
            if app.secrets[i].active {
                return error(
                    400,
                    "E0000001",
                    "Api validation failed: Cannot delete an active client secret. Deactivate it first.",
                );
            }
            app.secrets.remove(i);
            ResponseTemplate::new(204)
        }
        _ => error(
            404,
            "E0000022",
            "The endpoint does not support the provided HTTP method",
        ),
    }
}

/// `client_credentials` at the default authorization server.
fn token(s: &mut State, req: &Request) -> ResponseTemplate {
    s.token_checks += 1;
    let form: BTreeMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
    let basic = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| B64.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|cred| {
            cred.split_once(':')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        });
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return ResponseTemplate::new(400).set_body_json(json!({
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported by the authorization server."
        }));
    }
    if !live(s, &id, &secret) {
        return ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": "The client secret supplied for a confidential client is invalid."
        }));
    }
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": format!("eyJfake.{}.sig", s.token_checks),
        "scope": "rekey.check"
    }))
}
