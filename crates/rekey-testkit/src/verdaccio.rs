//! A real npm registry: Verdaccio 6.8.0 from `.peers/verdaccio` (installed by
//! `scripts/peers.sh`), on 127.0.0.1 and a free port, with htpasswd accounts and its storage
//! in a temporary folder; killed on drop. And [`FaultProxy`], a loopback HTTP proxy that puts
//! seeded faults (429, 503, reset connections) in front of it.
//!
//! What Verdaccio does with tokens (6.8.0): `POST /-/npm/v1/tokens` with Basic auth and the
//! password in the body mints one (`key`, `token`); the list shows `token` masked as
//! `ABCDE...VWXYZ` and no names (names, expiry and read-only flags are ignored); `DELETE
//! /-/npm/v1/tokens/token/KEY` answers 200 whether or not the key exists; a deleted token gets
//! 403 from `/-/whoami`, an unknown one 200 `{}`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{free_port, poll, repo_root};

/// The folder `scripts/peers.sh` installs Verdaccio into.
pub fn verdaccio_dir() -> PathBuf {
    repo_root().join(".peers/verdaccio")
}

/// A Verdaccio server, killed on drop.
pub struct Verdaccio {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status and body.
pub type Answer = (u16, String);

/// One HTTP/1.0 request to 127.0.0.1:`port` (the server closes the connection after it, so no
/// chunking); `auth` is a whole `authorization` header value.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    if let Some(a) = auth {
        let _ = write!(head, "authorization: {a}\r\n");
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    let _ = write!(head, "content-length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

impl Verdaccio {
    /// Starts Verdaccio and waits (up to a minute) until it answers. Panics, saying how to
    /// install it, when `.peers/verdaccio` lacks it.
    pub fn start() -> Self {
        let bin = verdaccio_dir().join("node_modules/.bin/verdaccio");
        assert!(
            bin.exists(),
            "Verdaccio not found at {}: run ./scripts/peers.sh to install it (needs node and npm)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "storage: {storage}\n\
                 auth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 100000\n    algorithm: bcrypt\n    rounds: 4\n\
                 uplinks: {{}}\n\
                 packages:\n  '**':\n    access: $authenticated\n    publish: $authenticated\n\
                 userRateLimit:\n  windowMs: 1000\n  max: 100000\n\
                 log: {{ type: stdout, format: json, level: error }}\n",
                storage = dir.path().join("storage").display(),
                htpasswd = dir.path().join("htpasswd").display(),
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run ./scripts/peers.sh to install it",
                    bin.display()
                )
            });
        let v = Self {
            child,
            port,
            _dir: dir,
        };
        poll(Duration::from_mins(1), "Verdaccio to answer", || {
            matches!(http(port, "GET", "/-/ping", None, None), Ok((200, _))).then_some(())
        });
        v
    }

    /// The registry URL, as npm addresses it: `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Registers an account (`npm adduser`).
    pub fn add_user(&self, user: &str, password: &str) {
        let body = serde_json::json!({ "name": user, "password": password }).to_string();
        let (status, answer) = http(
            self.port,
            "PUT",
            &format!("/-/user/org.couchdb.user:{user}"),
            None,
            Some(&body),
        )
        .unwrap();
        assert!(
            status == 201 || status == 200,
            "adduser {user}: {status} {answer}"
        );
    }

    /// Mints a token for `user` the way `npm token create` does: (key, token).
    pub fn create_token(&self, user: &str, password: &str) -> (String, String) {
        let body =
            serde_json::json!({ "password": password, "readonly": false, "cidr_whitelist": [] })
                .to_string();
        let (status, answer) = http(
            self.port,
            "POST",
            "/-/npm/v1/tokens",
            Some(&basic(user, password)),
            Some(&body),
        )
        .unwrap();
        assert_eq!(status, 200, "create token for {user}");
        let v = json(&answer);
        (
            v["key"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// The keys of `user`'s tokens.
    pub fn token_keys(&self, user: &str, password: &str) -> Vec<String> {
        let (status, answer) = http(
            self.port,
            "GET",
            "/-/npm/v1/tokens",
            Some(&basic(user, password)),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "list tokens of {user}");
        let mut keys: Vec<String> = json(&answer)["objects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["key"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Who the registry says `token` belongs to (`None` for a refused or unknown token).
    pub fn whoami(&self, token: &str) -> Option<String> {
        let (status, answer) = http(
            self.port,
            "GET",
            "/-/whoami",
            Some(&format!("Bearer {token}")),
            None,
        )
        .ok()?;
        if status != 200 {
            return None;
        }
        json(&answer)["username"].as_str().map(str::to_owned)
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

/// A loopback HTTP proxy in front of a server, one request per connection (it answers
/// `connection: close`), optionally slow (`set_latency`), that fails a seeded share of requests: 429 with `retry-after: 1`,
/// 503, or a connection closed without an answer (a reset) — each either before the request
/// reaches the server or, for 503 and resets, after it (the effect happened, the answer is
/// lost). Stopped on drop.
pub struct FaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    faults: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    rate: Arc<Mutex<f64>>,
    latency: Arc<Mutex<Duration>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one HTTP request (head and `content-length` body) from `s`.
fn read_request(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    // Forwarded as HTTP/1.0 with the connection closed after it: no chunked answers.
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines
        .next()
        .unwrap_or_default()
        .replace("HTTP/1.1", "HTTP/1.0");
    let mut out = first + "\r\n";
    for l in lines.filter(|l| !l.is_empty()) {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    let mut req = out.into_bytes();
    req.extend_from_slice(&buf[head_end..]);
    Ok(req)
}

fn respond(s: &mut TcpStream, status: &str, extra: &str) {
    let body = r#"{"error":"injected fault"}"#;
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl FaultProxy {
    /// A proxy to 127.0.0.1:`upstream` failing `rate` (0..1) of requests, seeded.
    pub fn start(upstream: u16, rate: f64, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let rate = Arc::new(Mutex::new(rate));
        let latency = Arc::new(Mutex::new(Duration::ZERO));
        let rng = Arc::new(AtomicU64::new(seed | 1));
        let (stop2, faults2, requests2, rate2, latency2) = (
            Arc::clone(&stop),
            Arc::clone(&faults),
            Arc::clone(&requests),
            Arc::clone(&rate),
            Arc::clone(&latency),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut client) = conn else { continue };
                let (faults, requests, rate, rng) = (
                    Arc::clone(&faults2),
                    Arc::clone(&requests2),
                    Arc::clone(&rate2),
                    Arc::clone(&rng),
                );
                let latency = *latency2.lock().unwrap_or_else(PoisonError::into_inner);
                std::thread::spawn(move || {
                    let Ok(req) = read_request(&mut client) else {
                        return;
                    };
                    std::thread::sleep(latency);
                    requests.fetch_add(1, Ordering::SeqCst);
                    // xorshift64*: seeded, reproducible per connection order.
                    let mut x = rng.load(Ordering::SeqCst);
                    x ^= x >> 12;
                    x ^= x << 25;
                    x ^= x >> 27;
                    rng.store(x, Ordering::SeqCst);
                    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
                    // 24 random bits, exactly representable.
                    let bits = u32::try_from(r >> 40).expect("24 bits");
                    let roll = f64::from(bits) / f64::from(1u32 << 24);
                    let which = (r >> 3) % 5;
                    let p = *rate.lock().unwrap_or_else(PoisonError::into_inner);
                    let fault = roll < p;
                    if fault {
                        faults.fetch_add(1, Ordering::SeqCst);
                        match which {
                            0 => {
                                respond(&mut client, "429 Too Many Requests", "retry-after: 1\r\n");
                                return;
                            }
                            1 => {
                                respond(&mut client, "503 Service Unavailable", "");
                                return;
                            }
                            2 => {
                                let _ = client.shutdown(Shutdown::Both);
                                return;
                            }
                            _ => {} // after the effect, below
                        }
                    }
                    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        respond(&mut client, "502 Bad Gateway", "");
                        return;
                    };
                    let _ = up.set_read_timeout(Some(Duration::from_mins(1)));
                    if up.write_all(&req).is_err() {
                        respond(&mut client, "502 Bad Gateway", "");
                        return;
                    }
                    let mut answer = Vec::new();
                    let _ = up.read_to_end(&mut answer);
                    if fault {
                        // The server did it; the answer is lost.
                        if which == 3 {
                            respond(&mut client, "503 Service Unavailable", "");
                        } else {
                            let _ = client.shutdown(Shutdown::Both);
                        }
                        return;
                    }
                    let _ = client.write_all(&answer);
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
        });
        Self {
            port,
            stop,
            faults,
            requests,
            rate,
            latency,
        }
    }

    /// Holds every request this long before it goes on (a slow server, a far region).
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(PoisonError::into_inner) = latency;
    }

    /// The proxied registry URL: `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// How many faults were injected so far.
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }

    /// How many requests arrived so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Changes the share of failed requests.
    pub fn set_rate(&self, rate: f64) {
        *self.rate.lock().unwrap_or_else(PoisonError::into_inner) = rate;
    }
}
