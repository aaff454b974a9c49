//! An in-process GitHub REST API (wiremock), written from GitHub's documentation, for the
//! connector's tests: Actions secrets at repository, environment and organization scope (a real
//! curve25519 key pair per scope: what rekey sends is decrypted and kept as plaintext, so tests
//! assert that what arrived equals what was minted), `GET /user` by token (401 for revoked or
//! unknown ones), `POST /credentials/revoke` (403 when authenticated on the github.com flavour,
//! ≤ 1,000 tokens a call, calls counted), `GET /app` verifying an RS256 JWT with the App's public
//! key, installation tokens, OAuth apps' token endpoint on the web host (`POST
//! /login/oauth/access_token`: `incorrect_client_credentials` for a wrong client secret, else
//! `bad_verification_code`, as GitHub answers a made-up code), and seeded fault injection (429 and 403 secondary rate limits with
//! `retry-after`, 502 before or after the effect, reset connections).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_box::SecretKey;
use crypto_box::aead::OsRng;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The App fixtures: private keys (PKCS#8 and PKCS#1) and public keys, throwaway.
pub const APP_KEY_1: &str = include_str!("../fixtures/app-key-1.pem");
pub const APP_KEY_1_RSA: &str = include_str!("../fixtures/app-key-1.rsa.pem");
pub const APP_KEY_1_PUB: &str = include_str!("../fixtures/app-key-1.pub.pem");
pub const APP_KEY_2: &str = include_str!("../fixtures/app-key-2.pem");
pub const APP_KEY_2_PUB: &str = include_str!("../fixtures/app-key-2.pub.pem");

/// One Actions secret scope.
struct Scope {
    key_id: String,
    secret: SecretKey,
    /// name → plaintext of the last write.
    secrets: BTreeMap<String, String>,
    /// name → visibility and selected repository ids (organization secrets).
    meta: BTreeMap<String, (String, Vec<u64>)>,
}

impl Scope {
    fn new(n: usize) -> Self {
        Self {
            key_id: format!("{}", 568_250_167_242_549_743u64 + n as u64),
            secret: SecretKey::generate(&mut OsRng),
            secrets: BTreeMap::new(),
            meta: BTreeMap::new(),
        }
    }
}

struct App {
    id: u64,
    slug: String,
    public_pems: Vec<String>,
}

#[derive(Default)]
struct State {
    enterprise: bool,
    prefix: String,
    repos: BTreeMap<String, u64>,
    /// "repo:O/R", "env:O/R/E", "org:O".
    scopes: BTreeMap<String, Scope>,
    orgs: BTreeSet<String>,
    /// token → login (PATs and installation tokens).
    tokens: HashMap<String, String>,
    /// Tokens that may write secrets.
    writers: BTreeSet<String>,
    revoked: BTreeSet<String>,
    apps: Vec<App>,
    /// OAuth app client id → its live client secrets.
    oauth_apps: HashMap<String, BTreeSet<String>>,
    oauth_checks: usize,
    installations: BTreeMap<u64, u64>,
    /// Counters.
    revoke_calls: usize,
    revoke_call_sizes: Vec<usize>,
    puts: BTreeMap<String, usize>,
    requests: usize,
    faults_injected: usize,
    /// Fault injection.
    fault_rate: f64,
    rng: u64,
    latency: Duration,
}

impl State {
    fn next(&mut self) -> f64 {
        // xorshift64*: seeded, reproducible.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        // 53 random bits, exactly representable.
        let bits = u32::try_from(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40).expect("24 bits");
        f64::from(bits) / f64::from(1u32 << 24)
    }
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake GitHub; stopped when dropped.
pub struct GithubFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl GithubFake {
    /// github.com's flavour: the API at the root, `/credentials/revoke` unauthenticated.
    pub async fn start() -> Self {
        Self::start_flavour(false).await
    }

    /// GitHub Enterprise Server's flavour: the API under `/api/v3`, the revoke authenticated.
    pub async fn start_enterprise() -> Self {
        Self::start_flavour(true).await
    }

    async fn start_flavour(enterprise: bool) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            enterprise,
            prefix: if enterprise {
                "/api/v3".into()
            } else {
                String::new()
            },
            rng: 0x9E37_79B9_7F4A_7C15,
            ..State::default()
        }));
        Mock::given(ResetFault(Arc::clone(&state)))
            .respond_with_err(|_: &Request| {
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset")
            })
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// What `GITHUB_API_URL` is set to.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.server.uri(), lock(&self.state).prefix)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// A repository (with its Actions secrets scope).
    pub fn add_repo(&self, repo: &str) -> u64 {
        self.with(|s| {
            let id = 1_000 + s.repos.len() as u64;
            s.repos.entry(repo.to_owned()).or_insert(id);
            let n = s.scopes.len();
            s.scopes
                .entry(format!("repo:{repo}"))
                .or_insert_with(|| Scope::new(n));
            s.repos[repo]
        })
    }

    pub fn add_environment(&self, repo: &str, environment: &str) {
        self.add_repo(repo);
        self.with(|s| {
            let n = s.scopes.len();
            s.scopes
                .entry(format!("env:{repo}/{environment}"))
                .or_insert_with(|| Scope::new(n));
        });
    }

    pub fn add_org(&self, org: &str) {
        self.with(|s| {
            s.orgs.insert(org.to_owned());
            let n = s.scopes.len();
            s.scopes
                .entry(format!("org:{org}"))
                .or_insert_with(|| Scope::new(n));
        });
    }

    /// A token GitHub accepts, belonging to `login`.
    pub fn add_token(&self, token: &str, login: &str) {
        self.with(|s| {
            s.tokens.insert(token.to_owned(), login.to_owned());
        });
    }

    /// A token that may also write Actions secrets.
    pub fn add_writer(&self, token: &str, login: &str) {
        self.add_token(token, login);
        self.with(|s| {
            s.writers.insert(token.to_owned());
        });
    }

    /// An OAuth app's client secret GitHub accepts (an app holds several while one is rotated).
    pub fn add_oauth_secret(&self, client_id: &str, secret: &str) {
        self.with(|s| {
            s.oauth_apps
                .entry(client_id.to_owned())
                .or_default()
                .insert(secret.to_owned());
        });
    }

    /// Deletes a client secret, as an owner does in the app's settings.
    pub fn delete_oauth_secret(&self, client_id: &str, secret: &str) -> bool {
        self.with(|s| {
            s.oauth_apps
                .get_mut(client_id)
                .is_some_and(|set| set.remove(secret))
        })
    }

    /// Whether the OAuth app `client_id` accepts `secret` (it was added and not deleted).
    pub fn oauth_secret_live(&self, client_id: &str, secret: &str) -> bool {
        self.with(|s| {
            s.oauth_apps
                .get(client_id)
                .is_some_and(|set| set.contains(secret))
        })
    }

    /// Calls to the OAuth token endpoint that were answered.
    pub fn oauth_checks(&self) -> usize {
        self.with(|s| s.oauth_checks)
    }

    /// The web host (`GITHUB_SERVER_URL`): the root of the server in both flavours.
    pub fn server_url(&self) -> String {
        self.server.uri()
    }

    /// A GitHub App with its accepted public keys, and an installation.
    pub fn add_app(&self, id: u64, slug: &str, public_pems: &[&str], installation: u64) {
        self.with(|s| {
            s.apps.push(App {
                id,
                slug: slug.to_owned(),
                public_pems: public_pems.iter().map(|p| (*p).to_owned()).collect(),
            });
            s.installations.insert(installation, id);
        });
    }

    /// Adds a public key to the App `id`, as "Generate a private key" in its settings does.
    pub fn add_app_key(&self, id: u64, public_pem: &str) {
        self.with(|s| {
            for a in s.apps.iter_mut().filter(|a| a.id == id) {
                a.public_pems.push(public_pem.to_owned());
            }
        });
    }

    /// Deletes one of an App's public keys, as an owner does in the App's settings.
    pub fn delete_app_key(&self, id: u64, public_pem: &str) -> bool {
        self.with(|s| {
            s.apps.iter_mut().filter(|a| a.id == id).any(|a| {
                let before = a.public_pems.len();
                a.public_pems.retain(|p| p != public_pem);
                a.public_pems.len() < before
            })
        })
    }

    /// Whether the App `id` accepts a JWT signed with `private_pem` (what `GET /app` checks).
    pub fn app_accepts(&self, id: u64, private_pem: &str) -> bool {
        let Ok(key) = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()) else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({ "iat": now - 30, "exp": now + 300, "iss": id.to_string() });
        let Ok(jwt) = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        ) else {
            return false;
        };
        self.with(|s| app_of(s, Some(&jwt)).is_some_and(|i| s.apps[i].id == id))
    }

    /// The plaintext that arrived last in a secret: scope `repo:O/R`, `env:O/R/E` or `org:O`.
    pub fn secret(&self, scope: &str, name: &str) -> Option<String> {
        self.with(|s| s.scopes.get(scope)?.secrets.get(name).cloned())
    }

    /// An organization secret's visibility and selected repository ids.
    pub fn org_secret_meta(&self, org: &str, name: &str) -> Option<(String, Vec<u64>)> {
        self.with(|s| s.scopes.get(&format!("org:{org}"))?.meta.get(name).cloned())
    }

    /// Every secret that holds a value, as (scope, name).
    pub fn secrets(&self) -> Vec<(String, String)> {
        self.with(|s| {
            s.scopes
                .iter()
                .flat_map(|(k, sc)| sc.secrets.keys().map(move |n| (k.clone(), n.clone())))
                .collect()
        })
    }

    /// How many `PUT`s reached a secret (scope/name).
    pub fn puts(&self, scope: &str, name: &str) -> usize {
        self.with(|s| s.puts.get(&format!("{scope}/{name}")).copied().unwrap_or(0))
    }

    pub fn is_revoked(&self, token: &str) -> bool {
        self.with(|s| s.revoked.contains(token))
    }

    /// Revokes a token as its owner would in the settings (no revoke call is counted).
    pub fn revoke_token(&self, token: &str) {
        self.with(|s| {
            s.revoked.insert(token.to_owned());
        });
    }

    /// `POST /credentials/revoke` calls that were accepted, and their sizes.
    pub fn revoke_calls(&self) -> Vec<usize> {
        self.with(|s| s.revoke_call_sizes.clone())
    }

    /// Every request that reached the fake, faults included.
    pub fn requests(&self) -> usize {
        self.with(|s| s.requests)
    }

    pub fn faults_injected(&self) -> usize {
        self.with(|s| s.faults_injected)
    }

    /// Injects faults into this share of requests (0..1), reproducibly from `seed`.
    pub fn set_faults(&self, rate: f64, seed: u64) {
        self.with(|s| {
            s.fault_rate = rate;
            s.rng = seed.max(1);
        });
    }

    /// Every answer waits this long.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// Rotates a scope's public key (what GitHub may do at any time).
    pub fn rotate_scope_key(&self, scope: &str) {
        self.with(|s| {
            let n = s.scopes.len() + 100;
            if let Some(sc) = s.scopes.get_mut(scope) {
                let fresh = Scope::new(n);
                sc.key_id = fresh.key_id;
                sc.secret = fresh.secret;
            }
        });
    }
}

/// A quarter of the faults: the connection is reset before any answer.
struct ResetFault(Arc<Mutex<State>>);

impl Match for ResetFault {
    fn matches(&self, _request: &Request) -> bool {
        let mut s = lock(&self.0);
        if s.fault_rate <= 0.0 {
            return false;
        }
        let hit = s.next() < s.fault_rate / 4.0;
        if hit {
            s.requests += 1;
            s.faults_injected += 1;
        }
        hit
    }
}

struct Responder(Arc<Mutex<State>>);

fn answer(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn msg(status: u16, m: &str) -> ResponseTemplate {
    answer(
        status,
        &json!({ "message": m, "documentation_url": "https://docs.github.com/rest" }),
    )
}

fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = seg.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bearer(req: &Request) -> Option<String> {
    let h = req.headers.get("authorization")?.to_str().ok()?;
    h.strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("token "))
        .map(str::to_owned)
}

impl wiremock::Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = lock(&self.0);
        s.requests += 1;
        let latency = s.latency;
        let r = fault(&mut s, req).unwrap_or_else(|| route(&mut s, req));
        r.set_delay(latency)
    }
}

/// The other three quarters of the faults: 429, a 403 secondary limit, a 502 (half of
/// them after the request took effect: a lost answer).
fn fault(s: &mut State, req: &Request) -> Option<ResponseTemplate> {
    if s.fault_rate <= 0.0 {
        return None;
    }
    // Given no reset (rate/4), the remaining share so that the total is `rate`.
    let p = (s.fault_rate * 0.75) / (1.0 - s.fault_rate / 4.0);
    if s.next() >= p {
        return None;
    }
    s.faults_injected += 1;
    let pick = s.next();
    Some(if pick < 1.0 / 3.0 {
        msg(429, "Too many requests").insert_header("retry-after", "1")
    } else if pick < 2.0 / 3.0 {
        msg(
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        )
        .insert_header("retry-after", "1")
    } else {
        if s.next() < 0.5 {
            let _ = route(s, req);
        }
        msg(502, "Server Error")
    })
}

fn route(s: &mut State, req: &Request) -> ResponseTemplate {
    if req.method.as_str() == "POST" && req.url.path() == "/login/oauth/access_token" {
        return oauth_token(s, req);
    }
    let path = req.url.path().to_owned();
    let Some(path) = path.strip_prefix(&s.prefix) else {
        return msg(404, "Not Found");
    };
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    let auth = bearer(req);
    match (method, segs.as_slice()) {
        ("GET", ["user"]) => user(s, auth.as_deref()),
        ("POST", ["credentials", "revoke"]) => revoke(s, req, auth.is_some()),
        ("GET", ["app"]) => match app_of(s, auth.as_deref()) {
            Some(i) => answer(
                200,
                &json!({ "id": s.apps[i].id, "slug": s.apps[i].slug, "name": s.apps[i].slug }),
            ),
            None => msg(401, "A JSON web token could not be decoded"),
        },
        ("POST", ["app", "installations", inst, "access_tokens"]) => {
            let Some(i) = app_of(s, auth.as_deref()) else {
                return msg(401, "A JSON web token could not be decoded");
            };
            let app = s.apps[i].id;
            match inst
                .parse::<u64>()
                .ok()
                .and_then(|n| s.installations.get(&n))
            {
                Some(a) if *a == app => {
                    let n = s.tokens.len();
                    let token = format!("ghs_fakeinstallation{n:020}");
                    s.tokens.insert(token.clone(), format!("app-{app}[bot]"));
                    s.writers.insert(token.clone());
                    answer(
                        201,
                        &json!({ "token": token, "expires_at": "2099-01-01T00:00:00Z" }),
                    )
                }
                _ => msg(404, "Not Found"),
            }
        }
        _ => {
            // Everything else needs a token that may write secrets.
            match auth.as_deref() {
                Some(t) if s.writers.contains(t) && !s.revoked.contains(t) => {}
                Some(t) if s.tokens.contains_key(t) && !s.revoked.contains(t) => {
                    return msg(403, "Resource not accessible by personal access token");
                }
                _ => return msg(401, "Bad credentials"),
            }
            secrets_api(s, req, method, &segs)
        }
    }
}

/// The web flow's code exchange. GitHub checks the client credentials before the code and
/// answers errors with 200 and a JSON `error` (when asked for JSON).
fn oauth_token(s: &mut State, req: &Request) -> ResponseTemplate {
    let form: HashMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
    let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
        return answer(200, &json!({ "error": "incorrect_client_credentials" }));
    };
    s.oauth_checks += 1;
    let live = s.oauth_apps.get(id).is_some_and(|set| set.contains(secret));
    let error = if live {
        // No code was ever issued by this fake.
        "bad_verification_code"
    } else {
        "incorrect_client_credentials"
    };
    answer(
        200,
        &json!({
            "error": error,
            "error_description": "see error_uri",
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
        }),
    )
}

fn user(s: &State, auth: Option<&str>) -> ResponseTemplate {
    match auth {
        Some(t) if !s.revoked.contains(t) => match s.tokens.get(t) {
            Some(login) => answer(200, &json!({ "login": login, "id": 1, "type": "User" })),
            None => msg(401, "Bad credentials"),
        },
        _ => msg(401, "Bad credentials"),
    }
}

fn revoke(s: &mut State, req: &Request, authenticated: bool) -> ResponseTemplate {
    if authenticated && !s.enterprise {
        return msg(403, "Must not be authenticated");
    }
    if !authenticated && s.enterprise {
        return msg(401, "Requires authentication");
    }
    let Ok(body) = req.body_json::<Value>() else {
        return msg(400, "Problems parsing JSON");
    };
    let Some(list) = body.get("credentials").and_then(Value::as_array) else {
        return msg(422, "Invalid request: credentials is missing");
    };
    if list.is_empty() || list.len() > 1000 {
        return msg(
            422,
            "Invalid request: credentials must hold between 1 and 1000 items",
        );
    }
    s.revoke_calls += 1;
    s.revoke_call_sizes.push(list.len());
    for t in list.iter().filter_map(Value::as_str) {
        if s.tokens.contains_key(t) {
            s.revoked.insert(t.to_owned());
        }
    }
    answer(202, &json!({}))
}

/// Which App a JWT is from: RS256, signed by one of its keys, `iss` its id, at most 10 minutes.
fn app_of(s: &State, jwt: Option<&str>) -> Option<usize> {
    let jwt = jwt?;
    for (i, app) in s.apps.iter().enumerate() {
        for pem in &app.public_pems {
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).ok()?;
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "iss"]);
            if let Ok(d) = jsonwebtoken::decode::<Value>(jwt, &key, &v) {
                let iss = match &d.claims["iss"] {
                    Value::String(x) => x.clone(),
                    other => other.to_string(),
                };
                let iat = d.claims["iat"].as_u64().unwrap_or(0);
                let exp = d.claims["exp"].as_u64().unwrap_or(u64::MAX);
                if iss == app.id.to_string() && exp.saturating_sub(iat) <= 600 {
                    return Some(i);
                }
            }
        }
    }
    None
}

fn secrets_api(s: &mut State, req: &Request, method: &str, segs: &[&str]) -> ResponseTemplate {
    // Which scope, and what under it.
    let (scope, rest): (String, &[&str]) = match segs {
        ["repos", o, r] if method == "GET" => {
            let repo = format!("{o}/{r}");
            return match s.repos.get(&repo) {
                Some(id) => answer(200, &json!({ "id": id, "full_name": repo })),
                None => msg(404, "Not Found"),
            };
        }
        ["repos", o, r, "environments", e] if method == "GET" => {
            return if s.scopes.contains_key(&format!("env:{o}/{r}/{e}")) {
                answer(200, &json!({ "name": e }))
            } else {
                msg(404, "Not Found")
            };
        }
        ["orgs", o] if method == "GET" => {
            return if s.orgs.contains(*o) {
                answer(200, &json!({ "login": o }))
            } else {
                msg(404, "Not Found")
            };
        }
        ["repos", o, r, "actions", "secrets", rest @ ..] => (format!("repo:{o}/{r}"), rest),
        ["repos", o, r, "environments", e, "secrets", rest @ ..] => {
            (format!("env:{o}/{r}/{e}"), rest)
        }
        ["orgs", o, "actions", "secrets", rest @ ..] => (format!("org:{o}"), rest),
        _ => return msg(404, "Not Found"),
    };
    let org = scope.starts_with("org:");
    let Some(sc) = s.scopes.get_mut(&scope) else {
        return msg(404, "Not Found");
    };
    match (method, rest) {
        ("GET", ["public-key"]) => answer(
            200,
            &json!({ "key_id": sc.key_id, "key": B64.encode(sc.secret.public_key().as_bytes()) }),
        ),
        ("GET", [name]) if org => match (sc.secrets.get(*name), sc.meta.get(*name)) {
            (Some(_), Some((vis, _))) => answer(
                200,
                &json!({ "name": name, "visibility": vis, "created_at": "2026-01-01T00:00:00Z" }),
            ),
            _ => msg(404, "Not Found"),
        },
        ("GET", [name, "repositories"]) if org => match sc.meta.get(*name) {
            Some((_, ids)) => answer(
                200,
                &json!({ "total_count": ids.len(), "repositories": ids.iter().map(|i| json!({ "id": i })).collect::<Vec<_>>() }),
            ),
            None => msg(404, "Not Found"),
        },
        ("PUT", [name]) => {
            let Ok(body) = req.body_json::<Value>() else {
                return msg(400, "Problems parsing JSON");
            };
            if body.get("key_id").and_then(Value::as_str) != Some(sc.key_id.as_str()) {
                return msg(
                    422,
                    "Bad request: key_id does not match the current public key",
                );
            }
            let Some(plain) = body
                .get("encrypted_value")
                .and_then(Value::as_str)
                .and_then(|v| B64.decode(v).ok())
                .and_then(|c| sc.secret.unseal(&c).ok())
                .and_then(|p| String::from_utf8(p).ok())
            else {
                return msg(422, "Bad request: encrypted_value could not be decrypted");
            };
            if org {
                let vis = body.get("visibility").and_then(Value::as_str);
                let Some(vis @ ("all" | "private" | "selected")) = vis else {
                    return msg(422, "Invalid request: visibility is missing or invalid");
                };
                let ids: Vec<u64> = body
                    .get("selected_repository_ids")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                sc.meta.insert((*name).to_owned(), (vis.to_owned(), ids));
            }
            let created = sc.secrets.insert((*name).to_owned(), plain).is_none();
            *s.puts.entry(format!("{scope}/{name}")).or_default() += 1;
            ResponseTemplate::new(if created { 201 } else { 204 })
        }
        _ => msg(404, "Not Found"),
    }
}
