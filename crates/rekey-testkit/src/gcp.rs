//! An in-process Google IAM API and OAuth 2 token endpoint (wiremock), written from Google's
//! documentation, for the GCP connector's tests.
//!
//! - `projects.serviceAccounts.get` and `projects.serviceAccounts.keys` `list` (`keyTypes`
//!   filter; one system-managed key per account beside the user-managed ones), `create` (a real
//!   RSA key file, `privateKeyData` base64 of its JSON, `TYPE_GOOGLE_CREDENTIALS_FILE`; at most
//!   10 user-managed keys: `FAILED_PRECONDITION`), `get`, `:disable` (with a valid
//!   `serviceAccountKeyDisableReason`), `:enable`, `delete`; Google's error shape
//!   (`{"error": {"code", "message", "status"}}`), and only for a bearer token the token
//!   endpoint issued to an admin account;
//! - `POST /token`: the JWT-bearer grant (and the refresh-token grant of `authorized_user`
//!   credentials made by [`GcpFake::add_user_credentials`]). The JWT's signature is verified with the public half
//!   of the key its `kid` names; disabled and deleted keys, a wrong `aud` or `iss`, and
//!   assertions longer than an hour are refused (`invalid_grant`). So a test proves that a key
//!   file authenticates, and that a revoked one does not.
//! - seeded faults: 429 `RESOURCE_EXHAUSTED` with `retry-after`, 503 before or after the
//!   effect, reset connections.
//!
//! Keys come from a pool of throwaway RSA keys (`fixtures/gcp/key-NN.pem`), handed out in turn.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

use crate::faults::{self, Dice, Fault, HasDice};

/// (private PKCS#8 PEM, public SPKI PEM) of the pool.
const POOL: [(&str, &str); 16] = [
    (
        include_str!("../fixtures/gcp/key-01.pem"),
        include_str!("../fixtures/gcp/key-01.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-02.pem"),
        include_str!("../fixtures/gcp/key-02.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-03.pem"),
        include_str!("../fixtures/gcp/key-03.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-04.pem"),
        include_str!("../fixtures/gcp/key-04.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-05.pem"),
        include_str!("../fixtures/gcp/key-05.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-06.pem"),
        include_str!("../fixtures/gcp/key-06.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-07.pem"),
        include_str!("../fixtures/gcp/key-07.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-08.pem"),
        include_str!("../fixtures/gcp/key-08.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-09.pem"),
        include_str!("../fixtures/gcp/key-09.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-10.pem"),
        include_str!("../fixtures/gcp/key-10.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-11.pem"),
        include_str!("../fixtures/gcp/key-11.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-12.pem"),
        include_str!("../fixtures/gcp/key-12.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-13.pem"),
        include_str!("../fixtures/gcp/key-13.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-14.pem"),
        include_str!("../fixtures/gcp/key-14.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-15.pem"),
        include_str!("../fixtures/gcp/key-15.pub.pem"),
    ),
    (
        include_str!("../fixtures/gcp/key-16.pem"),
        include_str!("../fixtures/gcp/key-16.pub.pem"),
    ),
];
/// The pool index of the admin's key; [`WRONG`] is never handed out (a wrong admin key).
const ADMIN: usize = 0;
const WRONG: usize = 15;
/// The admin account every fake has.
pub const ADMIN_PROJECT: &str = "rekey-admin-project";
pub const ADMIN_EMAIL: &str = "rekey-admin@rekey-admin-project.iam.gserviceaccount.com";
/// IAM's limit of user-managed keys per service account.
pub const MAX_KEYS: usize = 10;

const REASONS: &[&str] = &[
    "SERVICE_ACCOUNT_KEY_DISABLE_REASON_UNSPECIFIED",
    "SERVICE_ACCOUNT_KEY_DISABLE_REASON_USER_INITIATED",
    "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED",
    "SERVICE_ACCOUNT_KEY_DISABLE_REASON_COMPROMISE_DETECTED",
];

struct Key {
    id: String,
    email: String,
    pem: usize,
    disabled: bool,
    deleted: bool,
    valid_after: u64,
    reason: Option<String>,
    /// Token requests still refused: a new key propagating.
    refusals_left: usize,
}

struct Account {
    project: String,
    unique_id: u64,
}

#[derive(Default)]
struct State {
    base: String,
    accounts: BTreeMap<String, Account>,
    keys: Vec<Key>,
    next_pem: usize,
    /// Issued access tokens → account.
    tokens: HashMap<String, String>,
    admins: Vec<String>,
    creates: usize,
    grants: usize,
    /// gcloud user credentials (`authorized_user`): client id, client secret, refresh token.
    users: Vec<(String, String, String)>,
    /// How many token requests a key made by `keys.create` is refused before it works.
    propagation: usize,
    refused_propagating: usize,
    requests: usize,
    dice: Dice,
    /// Seeds the key ids.
    rng: u64,
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

impl State {
    fn next(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let bits = u32::try_from(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40).expect("24 bits");
        f64::from(bits) / f64::from(1u32 << 24)
    }

    fn token_uri(&self) -> String {
        format!("{}/token", self.base)
    }

    fn key_file(&self, k: &Key, pem: usize) -> String {
        let project = &self.accounts[&k.email].project;
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": k.id,
            "private_key": POOL[pem].0,
            "client_email": k.email,
            "client_id": self.accounts[&k.email].unique_id.to_string(),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{}", k.email),
            "universe_domain": "googleapis.com"
        })
        .to_string()
    }

    /// A new key of `email` from the pool; its index in `keys`.
    fn new_key(&mut self, email: &str) -> usize {
        let pem = loop {
            let p = self.next_pem % POOL.len();
            self.next_pem += 1;
            if p != ADMIN && p != WRONG {
                break p;
            }
        };
        let n = self.keys.len() as u64;
        let _ = self.next();
        let r = self.rng >> 32;
        self.keys.push(Key {
            id: format!("{:08x}{:032x}", r, 0x5eed_0000_u128 + u128::from(n)),
            email: email.to_owned(),
            pem,
            disabled: false,
            deleted: false,
            valid_after: now(),
            reason: None,
            refusals_left: 0,
        });
        self.keys.len() - 1
    }

    fn live(&self, email: &str) -> impl Iterator<Item = &Key> {
        self.keys
            .iter()
            .filter(move |k| k.email == email && !k.deleted)
    }

    /// The JWT-bearer grant: the account whose key signed `jwt`, or why not.
    fn grant(&mut self, jwt: &str) -> Result<String, &'static str> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "Invalid JWT.")?;
        let kid = header.kid.ok_or("Invalid JWT Signature.")?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or("Invalid JWT Signature.")?;
        if key.deleted {
            return Err("Invalid JWT Signature.");
        }
        if key.disabled {
            return Err("Invalid grant: account found but key is disabled.");
        }
        let dk = jsonwebtoken::DecodingKey::from_rsa_pem(POOL[key.pem].1.as_bytes())
            .map_err(|_| "Invalid JWT Signature.")?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&[self.token_uri()]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let d =
            jsonwebtoken::decode::<Value>(jwt, &dk, &v).map_err(|_| "Invalid JWT Signature.")?;
        let iss = d.claims["iss"].as_str().unwrap_or_default();
        if iss != key.email {
            return Err("Invalid JWT: iss is not the key's account.");
        }
        let iat = d.claims["iat"].as_u64().unwrap_or(0);
        let exp = d.claims["exp"].as_u64().unwrap_or(u64::MAX);
        if exp.saturating_sub(iat) > 3600 {
            return Err("Invalid JWT: Token must be a short-lived token (60 minutes).");
        }
        let email = key.email.clone();
        if let Some(k) = self.keys.iter_mut().find(|k| k.id == kid)
            && k.refusals_left > 0
        {
            k.refusals_left -= 1;
            self.refused_propagating += 1;
            return Err("Invalid JWT Signature.");
        }
        Ok(email)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 UTC.
fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake; stopped when dropped.
pub struct GcpFake {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

/// A key as the fake holds it (tests assert on these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeKey {
    pub id: String,
    pub disabled: bool,
    pub reason: Option<String>,
}

impl GcpFake {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            base: server.uri(),
            rng: 0x9E37_79B9_7F4A_7C15,
            next_pem: 1,
            ..State::default()
        }));
        faults::mount(&server, &state, fault, route).await;
        let fake = Self { server, state };
        fake.add_account(ADMIN_PROJECT, ADMIN_EMAIL);
        fake.with(|s| {
            s.admins.push(ADMIN_EMAIL.to_owned());
            let n = s.keys.len() as u64;
            s.keys.push(Key {
                id: format!("{:040x}", 0xad_0000_u128 + u128::from(n)),
                email: ADMIN_EMAIL.to_owned(),
                pem: ADMIN,
                disabled: false,
                deleted: false,
                valid_after: now(),
                reason: None,
                refusals_left: 0,
            });
        });
        fake
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// What `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM` is set to (gcloud's form, trailing slash).
    pub fn iam_url(&self) -> String {
        format!("{}/", self.server.uri())
    }

    pub fn token_uri(&self) -> String {
        self.with(|s| s.token_uri())
    }

    /// The admin's key file (what `GOOGLE_APPLICATION_CREDENTIALS` names).
    pub fn admin_key_file(&self) -> String {
        self.with(|s| {
            let k = s
                .keys
                .iter()
                .find(|k| k.email == ADMIN_EMAIL)
                .expect("admin key");
            s.key_file(k, ADMIN)
        })
    }

    /// The admin's key file with the right ids and a private key the fake does not know.
    pub fn wrong_admin_key_file(&self) -> String {
        self.with(|s| {
            let k = s
                .keys
                .iter()
                .find(|k| k.email == ADMIN_EMAIL)
                .expect("admin key");
            s.key_file(k, WRONG)
        })
    }

    /// The wrong admin key's private key, for secret searches.
    pub fn wrong_admin_private_key() -> &'static str {
        POOL[WRONG].0
    }

    pub fn admin_private_key() -> &'static str {
        POOL[ADMIN].0
    }

    /// A service account.
    pub fn add_account(&self, project: &str, email: &str) {
        self.with(|s| {
            let unique_id = 100_000_000_000_000_000 + s.accounts.len() as u64;
            s.accounts.entry(email.to_owned()).or_insert(Account {
                project: project.to_owned(),
                unique_id,
            });
        });
    }

    /// A user-managed key of `email` made outside rekey: its id and key file.
    pub fn add_key(&self, email: &str) -> (String, String) {
        self.with(|s| {
            let i = s.new_key(email);
            let k = &s.keys[i];
            (k.id.clone(), s.key_file(k, k.pem))
        })
    }

    /// A user-managed key of `email` with a given id (an inventory's `key_id`): its key file.
    pub fn add_key_with_id(&self, email: &str, id: &str) -> String {
        self.with(|s| {
            let i = s.new_key(email);
            id.clone_into(&mut s.keys[i].id);
            let k = &s.keys[i];
            s.key_file(k, k.pem)
        })
    }

    /// Sets a key disabled (as an operator would).
    pub fn set_disabled(&self, id: &str, disabled: bool) {
        self.with(|s| {
            if let Some(k) = s.keys.iter_mut().find(|k| k.id == id) {
                k.disabled = disabled;
            }
        });
    }

    /// The live (not deleted) user-managed keys of `email`, oldest first.
    pub fn keys(&self, email: &str) -> Vec<FakeKey> {
        self.with(|s| {
            s.live(email)
                .map(|k| FakeKey {
                    id: k.id.clone(),
                    disabled: k.disabled,
                    reason: k.reason.clone(),
                })
                .collect()
        })
    }

    /// Whether the token endpoint would grant an access token to `key_file` (a JWT signed with
    /// its key, checked as `POST /token` checks it).
    pub fn accepts(&self, key_file: &str) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(key_file) else {
            return false;
        };
        let (Some(pem), Some(email), Some(kid), Some(aud)) = (
            v["private_key"].as_str(),
            v["client_email"].as_str(),
            v["private_key_id"].as_str(),
            v["token_uri"].as_str(),
        ) else {
            return false;
        };
        let Ok(key) = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()) else {
            return false;
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let t = now();
        let Ok(jwt) = jsonwebtoken::encode(
            &header,
            &json!({ "iss": email, "sub": email, "aud": aud, "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": t, "exp": t + 3600 }),
            &key,
        ) else {
            return false;
        };
        self.with(|s| s.grant(&jwt).is_ok())
    }

    /// `authorized_user` credentials (what `gcloud auth application-default login` writes) of
    /// an admin: their JSON.
    pub fn add_user_credentials(&self, refresh_token: &str, client_secret: &str) -> String {
        self.with(|s| {
            let client_id = format!("{}-fake.apps.googleusercontent.com", s.users.len() + 1);
            s.users.push((
                client_id.clone(),
                client_secret.to_owned(),
                refresh_token.to_owned(),
            ));
            json!({
                "type": "authorized_user",
                "client_id": client_id,
                "client_secret": client_secret,
                "refresh_token": refresh_token,
                "token_uri": s.token_uri(),
            })
            .to_string()
        })
    }

    /// Keys made by `keys.create` from now on are refused at the token endpoint `n` times
    /// before they work (a new key propagating through Google).
    pub fn set_propagation(&self, n: usize) {
        self.with(|s| s.propagation = n);
    }

    /// How many token requests were refused because the key was still propagating.
    pub fn refused_propagating(&self) -> usize {
        self.with(|s| s.refused_propagating)
    }

    /// How many `keys.create` calls took effect.
    pub fn creates(&self) -> usize {
        self.with(|s| s.creates)
    }

    /// How many access tokens the token endpoint granted.
    pub fn grants(&self) -> usize {
        self.with(|s| s.grants)
    }

    pub fn requests(&self) -> usize {
        self.with(|s| s.requests)
    }

    pub fn faults_injected(&self) -> usize {
        self.with(|s| s.dice.injected)
    }

    pub fn set_faults(&self, rate: f64, seed: u64) {
        self.with(|s| s.dice.set(rate, seed));
    }

    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }
}

fn answer(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// Google's error shape.
fn error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    answer(
        code,
        &json!({ "error": { "code": code, "message": message, "status": status } }),
    )
}

/// What a rolled fault answers: 429 `RESOURCE_EXHAUSTED` with `retry-after`, or a 503 (for a
/// lost answer, after the request took effect).
fn fault(f: Fault) -> ResponseTemplate {
    match f {
        Fault::RateLimited => error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Requests' of service 'iam.googleapis.com'.",
        )
        .insert_header("retry-after", "1"),
        Fault::Before | Fault::After => {
            error(503, "UNAVAILABLE", "The service is currently unavailable.")
        }
    }
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

fn route(s: &mut State, req: &Request) -> ResponseTemplate {
    let method = req.method.as_str();
    if method == "POST" && req.url.path() == "/token" {
        return token(s, req);
    }
    let caller = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| s.tokens.get(t))
        .cloned();
    match caller {
        Some(c) if s.admins.contains(&c) => {}
        Some(_) => {
            return error(
                403,
                "PERMISSION_DENIED",
                "Permission 'iam.serviceAccountKeys.list' denied on resource (or it may not exist).",
            );
        }
        None => {
            return error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            );
        }
    }
    let segs: Vec<String> = req
        .url
        .path()
        .trim_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let [
        "v1",
        "projects",
        project,
        "serviceAccounts",
        email,
        rest @ ..,
    ] = segs.as_slice()
    else {
        return error(404, "NOT_FOUND", "Requested entity was not found.");
    };
    let email = (*email).to_owned();
    let known = s
        .accounts
        .get(&email)
        .is_some_and(|a| a.project == *project || *project == "-");
    if !known {
        return error(
            404,
            "NOT_FOUND",
            &format!("Service account projects/{project}/serviceAccounts/{email} does not exist."),
        );
    }
    let name = |id: &str| format!("projects/{project}/serviceAccounts/{email}/keys/{id}");
    let key_json = |k: &Key| {
        let mut v = json!({
            "name": name(&k.id),
            "validAfterTime": rfc3339(k.valid_after),
            "validBeforeTime": "9999-12-31T23:59:59Z",
            "keyAlgorithm": "KEY_ALG_RSA_2048",
            "keyOrigin": "GOOGLE_PROVIDED",
            "keyType": "USER_MANAGED",
        });
        if k.disabled {
            v["disabled"] = json!(true);
        }
        v
    };
    match (method, rest) {
        ("GET", []) => {
            let a = &s.accounts[&email];
            answer(
                200,
                &json!({
                    "name": format!("projects/{}/serviceAccounts/{email}", a.project),
                    "projectId": a.project,
                    "uniqueId": a.unique_id.to_string(),
                    "email": email,
                }),
            )
        }
        ("GET", ["keys"]) => {
            let user_only = req
                .url
                .query_pairs()
                .any(|(k, v)| k == "keyTypes" && v == "USER_MANAGED");
            let mut keys: Vec<Value> = s.live(&email).map(key_json).collect();
            if !user_only {
                keys.push(json!({
                    "name": name("0000000000000000000000000000000000000000"),
                    "validAfterTime": rfc3339(now().saturating_sub(86_400)),
                    "validBeforeTime": rfc3339(now() + 86_400),
                    "keyAlgorithm": "KEY_ALG_RSA_2048",
                    "keyOrigin": "GOOGLE_PROVIDED",
                    "keyType": "SYSTEM_MANAGED",
                }));
            }
            answer(200, &json!({ "keys": keys }))
        }
        ("POST", ["keys"]) => {
            if s.live(&email).count() >= MAX_KEYS {
                return error(400, "FAILED_PRECONDITION", "Precondition check failed.");
            }
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            if body
                .get("privateKeyType")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "TYPE_GOOGLE_CREDENTIALS_FILE")
            {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    "Only TYPE_GOOGLE_CREDENTIALS_FILE is supported here.",
                );
            }
            let i = s.new_key(&email);
            s.creates += 1;
            s.keys[i].refusals_left = s.propagation;
            let k = &s.keys[i];
            let mut v = key_json(k);
            v["privateKeyType"] = json!("TYPE_GOOGLE_CREDENTIALS_FILE");
            v["privateKeyData"] = json!(B64.encode(s.key_file(k, k.pem)));
            answer(200, &v)
        }
        (_, ["keys", last]) => {
            let (id, verb) = match last.split_once(':') {
                Some((id, verb)) => (id, Some(verb)),
                None => (*last, None),
            };
            let Some(i) = s
                .keys
                .iter()
                .position(|k| k.id == id && k.email == email && !k.deleted)
            else {
                return error(
                    404,
                    "NOT_FOUND",
                    &format!("Service account key {id} does not exist."),
                );
            };
            match (method, verb) {
                ("GET", None) => answer(200, &key_json(&s.keys[i])),
                ("DELETE", None) => {
                    s.keys[i].deleted = true;
                    answer(200, &json!({}))
                }
                ("POST", Some("disable")) => {
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    let reason = body
                        .get("serviceAccountKeyDisableReason")
                        .and_then(Value::as_str);
                    if reason.is_some_and(|r| !REASONS.contains(&r)) {
                        return error(
                            400,
                            "INVALID_ARGUMENT",
                            "Invalid value at 'service_account_key_disable_reason'.",
                        );
                    }
                    s.keys[i].disabled = true;
                    s.keys[i].reason = reason.map(str::to_owned);
                    answer(200, &json!({}))
                }
                ("POST", Some("enable")) => {
                    s.keys[i].disabled = false;
                    s.keys[i].reason = None;
                    answer(200, &json!({}))
                }
                _ => error(404, "NOT_FOUND", "Requested entity was not found."),
            }
        }
        _ => error(404, "NOT_FOUND", "Requested entity was not found."),
    }
}

/// `POST /token`: the JWT-bearer grant.
fn token(s: &mut State, req: &Request) -> ResponseTemplate {
    let form: HashMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
    let oauth = |e: &str, d: &str| answer(400, &json!({ "error": e, "error_description": d }));
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        let f = |k: &str| form.get(k).cloned().unwrap_or_default();
        let known = s
            .users
            .iter()
            .any(|u| u == &(f("client_id"), f("client_secret"), f("refresh_token")));
        if !known {
            return oauth("invalid_grant", "Bad Request");
        }
        s.grants += 1;
        let t = format!("ya29.fake-user-{:06}", s.grants);
        s.tokens.insert(t.clone(), ADMIN_EMAIL.to_owned());
        return answer(
            200,
            &json!({ "access_token": t, "expires_in": 3599, "token_type": "Bearer" }),
        );
    }
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth("unsupported_grant_type", "Invalid grant_type.");
    }
    let Some(jwt) = form.get("assertion") else {
        return oauth("invalid_request", "Missing required parameter: assertion");
    };
    match s.grant(jwt) {
        Ok(email) => {
            s.grants += 1;
            let t = format!("ya29.fake-{:06}-{}", s.grants, s.tokens.len());
            s.tokens.insert(t.clone(), email);
            answer(
                200,
                &json!({ "access_token": t, "expires_in": 3599, "token_type": "Bearer" }),
            )
        }
        Err(why) => oauth("invalid_grant", why),
    }
}
