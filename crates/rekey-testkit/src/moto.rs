//! A moto server (IAM, STS, Secrets Manager) from `.peers/moto-venv`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;

use crate::{free_port, poll, repo_root};

/// An access key: (access key id, secret access key).
pub type AccessKey = (String, String);

/// A moto server on a free loopback port, killed on drop. Signature checks are off until
/// [`Moto::setup`] (or [`Moto::require_signatures`]) turns them on, so that a deleted or
/// disabled key really fails afterwards.
pub struct Moto {
    child: Child,
    url: String,
    port: u16,
}

/// What [`Moto::setup`] made.
pub struct MotoAccounts {
    /// The key of the user `admin` (inline policy allowing everything).
    pub admin: AccessKey,
    /// The one key of each user asked for, by user name.
    pub keys: BTreeMap<String, AccessKey>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> PathBuf {
    repo_root().join(".peers/moto-venv/bin/moto_server")
}

impl Moto {
    /// Starts moto and waits (up to a minute) until it answers.
    pub fn start() -> Self {
        let bin = moto_bin();
        assert!(
            bin.exists(),
            "moto server not found at {}: run ./scripts/peers.sh to install it",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        };
        poll(Duration::from_mins(1), "the moto server to answer", || {
            matches!(moto.http("GET", "/moto-api/data.json", ""), Ok((200, _))).then_some(())
        });
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// One HTTP/1.1 request to moto (its `/moto-api/…`); returns the status code and body.
    pub fn http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let port = self.port;
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
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

    /// An SDK configuration for this server (region `us-east-1`) signing with the given key,
    /// over the same rustls/ring HTTP client the AWS provider uses.
    pub fn sdk_config(&self, key_id: &str, secret: &str) -> SdkConfig {
        SdkConfig::builder()
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                key_id, secret, None, None, "test",
            )))
            .behavior_version(BehaviorVersion::latest())
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build()
    }

    /// Turns signature checks on: from now on only keys moto issued, still active, work.
    pub fn require_signatures(&self) {
        let (status, body) = self.http("POST", "/moto-api/reset-auth", "0").unwrap();
        assert_eq!(status, 200, "reset-auth: {body}");
    }

    /// On a fresh server: creates the user `admin` with an inline policy allowing everything
    /// and one key, and each of `users` with one key; then turns signature checks on.
    /// Everything else is done with the admin's key (`self.sdk_config(&admin.0, &admin.1)`).
    pub async fn setup(&self, users: &[&str]) -> MotoAccounts {
        let boot = self.sdk_config("AKIAIOSFODNN7EXAMPLE", "bootstrap-not-checked");
        let iam = aws_sdk_iam::Client::new(&boot);
        iam.create_user().user_name("admin").send().await.unwrap();
        iam.put_user_policy()
            .user_name("admin")
            .policy_name("all")
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap();
        let admin = create_key(&iam, "admin").await;
        let mut keys = BTreeMap::new();
        for &user in users {
            iam.create_user().user_name(user).send().await.unwrap();
            keys.insert(user.to_owned(), create_key(&iam, user).await);
        }
        self.require_signatures();
        MotoAccounts { admin, keys }
    }

    /// The environment for a `rekey` process signing with `key` against this server, shut off
    /// from the machine's AWS configuration (`none` is a path that does not exist).
    pub fn client_env(&self, key: &AccessKey, none: &Path) -> Vec<(&'static str, String)> {
        let none = none.display().to_string();
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", key.0.clone()),
            ("AWS_SECRET_ACCESS_KEY", key.1.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_SESSION_TOKEN", String::new()),
            ("AWS_PROFILE", String::new()),
            ("AWS_CONFIG_FILE", none.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", none),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// What a [`StandIn`] answers instead of moto: an HTTP status and an XML body; with
/// [`Answer::after_forwarding`], only once moto has carried the request out (an answer lost
/// after the call took effect).
pub struct Answer {
    status: u16,
    body: String,
    forward: bool,
}

impl Answer {
    #[must_use]
    pub fn after_forwarding(self) -> Self {
        Self {
            forward: true,
            ..self
        }
    }
}

/// Decides, from an AWS request's action (`TagUser`, `GetCallerIdentity`, or the
/// `X-Amz-Target` of a JSON API), whether a [`StandIn`] answers it itself.
pub(crate) type Rule = dyn Fn(&str) -> Option<Answer> + Send + Sync;

/// An HTTP stand-in in front of a [`Moto`]: requests pass through to moto unchanged (so
/// signatures still verify: the `Host` header is kept), except those its rule answers — an
/// AWS behaviour moto does not have (IAM's 50-tag limit, a new key STS refuses for a while).
/// Stops on drop.
pub struct StandIn {
    url: String,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop up so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl StandIn {
    /// `http://127.0.0.1:PORT`: use it as the endpoint instead of moto's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An SDK configuration through the stand-in, like [`Moto::sdk_config`].
    pub fn sdk_config(&self, moto: &Moto, key_id: &str, secret: &str) -> SdkConfig {
        moto.sdk_config(key_id, secret)
            .into_builder()
            .endpoint_url(&self.url)
            .build()
    }
}

/// An AWS query-protocol (IAM, STS) error answer with AWS's own code and message.
pub fn aws_error(status: u16, code: &str, message: &str) -> Answer {
    Answer {
        status,
        body: format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        ),
        forward: false,
    }
}

/// One HTTP/1.1 request: its head (request line and headers, without `Connection`), its
/// body, and its AWS action.
struct Request {
    head: Vec<String>,
    body: Vec<u8>,
    action: String,
}

fn read_request(r: &mut impl BufRead) -> Option<Request> {
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut target = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if lower.starts_with("x-amz-target:") {
            line["x-amz-target:".len()..].trim().clone_into(&mut target);
        }
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    let text = String::from_utf8_lossy(&body);
    let action = text
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_owned)
        .unwrap_or(target);
    Some(Request { head, body, action })
}

/// Sends `req` to moto and returns its whole answer.
fn forward(req: &Request, upstream: u16) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    for line in &req.head {
        write!(up, "{line}\r\n")?;
    }
    write!(up, "Connection: close\r\n\r\n")?;
    up.write_all(&req.body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    Ok(answer)
}

fn serve(client: TcpStream, upstream: u16, rule: &Rule) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some(req) = read_request(&mut reader) {
        let Some(answer) = rule(&req.action) else {
            client.write_all(&forward(&req, upstream)?)?;
            continue;
        };
        if answer.forward {
            forward(&req, upstream)?;
        }
        write!(
            client,
            "HTTP/1.1 {} Stand-in\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        )?;
    }
    Ok(())
}

impl Moto {
    /// A [`StandIn`] in front of this server answering what `rule` picks.
    pub fn stand_in(
        &self,
        rule: impl Fn(&str) -> Option<Answer> + Send + Sync + 'static,
    ) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let rule: Arc<Rule> = Arc::new(rule);
        let upstream = self.port;
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let rule = Arc::clone(&rule);
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, rule.as_ref());
                });
            }
        });
        StandIn {
            url: format!("http://127.0.0.1:{port}"),
            stop,
            port,
        }
    }
}

/// A new access key of `user`.
pub async fn create_key(iam: &aws_sdk_iam::Client, user: &str) -> AccessKey {
    let out = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap();
    let k = out.access_key().unwrap();
    (
        k.access_key_id().to_owned(),
        k.secret_access_key().to_owned(),
    )
}

/// `access key id → status` (`Active`, `Inactive`) of every key of `user`.
pub async fn access_keys(iam: &aws_sdk_iam::Client, user: &str) -> BTreeMap<String, String> {
    iam.list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap().to_owned(),
                k.status().unwrap().as_str().to_owned(),
            )
        })
        .collect()
}
