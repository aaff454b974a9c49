//! An in-process npm registry token API (wiremock), written from npm's documentation, for what
//! Verdaccio lacks: two-factor accounts whose token writes answer 401 with
//! `www-authenticate: OTP` until the request carries `npm-otp`, token names, masked values as
//! npm shows them (`npm_ab…`), and a paged list (`urls.next`, two tokens a page).
//!
//! - `POST /-/npm/v1/tokens` (Basic auth and `password` in the body) → `{key, token, name,
//!   readonly, cidr_whitelist, created}`;
//! - `GET /-/npm/v1/tokens[?page=N]` (Basic) → `{objects: [{key, token: "npm_ab…", name, …}],
//!   urls: {next}}`;
//! - `DELETE /-/npm/v1/tokens/token/{key}` (Basic; OTP for two-factor accounts) → 204;
//! - `GET /-/whoami` (Bearer) → `{username}` or 401.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The one-time password the fake accepts.
pub const FAKE_OTP: &str = "424242";

/// A token of the fake registry.
#[derive(Debug, Clone)]
pub struct FakeToken {
    pub key: String,
    pub token: String,
    pub user: String,
    pub name: Option<String>,
    /// The create request's body without its password.
    pub request: Value,
}

#[derive(Default)]
struct State {
    /// user → (password, two-factor on).
    users: BTreeMap<String, (String, bool)>,
    tokens: Vec<FakeToken>,
    n: u64,
    /// Requests with an `npm-otp` header, and how many of those were refused.
    otp_requests: usize,
    challenges: usize,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake registry; stopped when dropped.
pub struct NpmFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl NpmFake {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(&state),
                uri: server.uri(),
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The registry URL with its trailing slash, as npm addresses it.
    pub fn url(&self) -> String {
        format!("{}/", self.server.uri())
    }

    /// An account; `two_factor`: token writes need an OTP.
    pub fn add_user(&self, user: &str, password: &str, two_factor: bool) {
        lock(&self.state)
            .users
            .insert(user.to_owned(), (password.to_owned(), two_factor));
    }

    /// A token made outside rekey: (key, token).
    pub fn add_token(&self, user: &str) -> (String, String) {
        let mut s = lock(&self.state);
        let t = s.mint(user, Some("made-by-hand".into()), json!({}));
        (t.key, t.token)
    }

    /// The live tokens of `user`.
    pub fn tokens(&self, user: &str) -> Vec<FakeToken> {
        lock(&self.state)
            .tokens
            .iter()
            .filter(|t| t.user == user)
            .cloned()
            .collect()
    }

    /// Who `token` belongs to.
    pub fn whoami(&self, token: &str) -> Option<String> {
        let s = lock(&self.state);
        s.tokens
            .iter()
            .find(|t| t.token == token)
            .map(|t| t.user.clone())
    }

    /// (requests that carried `npm-otp`, OTP challenges answered).
    pub fn otp_counts(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.otp_requests, s.challenges)
    }
}

impl State {
    fn mint(&mut self, user: &str, name: Option<String>, request: Value) -> FakeToken {
        self.n += 1;
        let mut raw = [0u8; 18];
        getrandom_fill(&mut raw, self.n);
        let token = format!(
            "npm_{}",
            raw.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        );
        let t = FakeToken {
            key: format!(
                "{:08x}-{:04x}-4000-8000-{:012x}",
                self.n * 7919,
                self.n,
                self.n * 104_729
            ),
            token,
            user: user.to_owned(),
            name,
            request,
        };
        self.tokens.push(t.clone());
        t
    }
}

/// Bytes that differ per token and per process (the test values must not repeat across runs).
fn getrandom_fill(out: &mut [u8], n: u64) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0)
        });
    let mut x = t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    for b in out {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *b = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
    }
}

struct Responder {
    state: Arc<Mutex<State>>,
    uri: String,
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": message }))
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = lock(&self.state);
        let path = req.url.path().to_owned();
        let method = req.method.as_str().to_owned();
        if path == "/-/whoami" && method == "GET" {
            let Some(token) = header(req, "authorization").and_then(|a| a.strip_prefix("Bearer "))
            else {
                return error(401, "not logged in");
            };
            return match s.tokens.iter().find(|t| t.token == token) {
                Some(t) => ResponseTemplate::new(200).set_body_json(json!({ "username": t.user })),
                None => error(401, "invalid token"),
            };
        }
        if !path.starts_with("/-/npm/v1/tokens") {
            return error(404, "not found");
        }
        // Token management: the account's Basic credentials.
        let Some((user, password)) = header(req, "authorization")
            .and_then(|a| a.strip_prefix("Basic "))
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|b| b.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
        else {
            return error(401, "authentication required");
        };
        let Some((want, two_factor)) = s.users.get(&user).cloned() else {
            return error(401, "bad username or password");
        };
        if want != password {
            return error(401, "bad username or password");
        }
        let otp = header(req, "npm-otp").map(str::to_owned);
        if otp.is_some() {
            s.otp_requests += 1;
        }
        let write = method != "GET";
        if write && two_factor && otp.as_deref() != Some(FAKE_OTP) {
            s.challenges += 1;
            return error(401, "This operation requires a one-time password.")
                .insert_header("www-authenticate", "OTP");
        }
        match (method.as_str(), path.as_str()) {
            ("POST", "/-/npm/v1/tokens") => {
                let Ok(mut body) = serde_json::from_slice::<Value>(&req.body) else {
                    return error(400, "bad body");
                };
                if body["password"].as_str() != Some(want.as_str()) {
                    return error(401, "bad password in the body");
                }
                body.as_object_mut().map(|o| o.remove("password"));
                let name = body["name"].as_str().map(str::to_owned);
                let t = s.mint(&user, name, body.clone());
                ResponseTemplate::new(200).set_body_json(json!({
                    "key": t.key,
                    "token": t.token,
                    "name": t.name,
                    "readonly": body["readonly"],
                    "cidr_whitelist": body["cidr_whitelist"],
                    "created": "2026-12-06T00:00:00.000Z",
                }))
            }
            ("GET", "/-/npm/v1/tokens") => {
                let page: usize = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "page")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mine: Vec<&FakeToken> = s.tokens.iter().filter(|t| t.user == user).collect();
                let objects: Vec<Value> = mine
                    .iter()
                    .skip(page * 2)
                    .take(2)
                    .map(|t| {
                        json!({
                            "key": t.key,
                            "token": format!("{}…", &t.token[..6]),
                            "name": t.name,
                            "readonly": false,
                            "cidr_whitelist": null,
                            "created": "2026-12-06T00:00:00.000Z",
                        })
                    })
                    .collect();
                let next = if mine.len() > (page + 1) * 2 {
                    Value::String(format!("{}/-/npm/v1/tokens?page={}", self.uri, page + 1))
                } else {
                    Value::Null
                };
                ResponseTemplate::new(200).set_body_json(json!({
                    "objects": objects,
                    "total": mine.len(),
                    "urls": { "next": next },
                }))
            }
            ("DELETE", p) if p.starts_with("/-/npm/v1/tokens/token/") => {
                let key = &p["/-/npm/v1/tokens/token/".len()..];
                let before = s.tokens.len();
                s.tokens.retain(|t| !(t.user == user && t.key == key));
                if s.tokens.len() == before {
                    error(404, "no such token")
                } else {
                    ResponseTemplate::new(204)
                }
            }
            _ => error(404, "not found"),
        }
    }
}
