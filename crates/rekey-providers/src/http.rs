//! The HTTP layer every REST connector shares (GitHub first; npm, Hugging Face, GCP, Okta and
//! Auth0 plug in here too): one `reqwest` client per provider on rustls with ring (the AWS SDK's
//! TLS stack, so the binary has one), timeouts, `User-Agent: rekey/<version>`, a request budget,
//! and the classification of every failure into the engine's [`ErrorKind`]s.
//!
//! The engine is the one retry layer, so nothing here retries: a failure is classified once —
//! 429, a 403 that says "secondary rate limit" or carries `retry-after`, and any answer with
//! `x-ratelimit-remaining: 0` → [`ErrorKind::RateLimited`] with the wait from `retry-after` or
//! `x-ratelimit-reset`; 5xx, timeouts and broken connections → transient; other 4xx →
//! permanent, with the provider's own `message`.
//!
//! Redaction: requests and responses are never formatted. An error carries the operation, the
//! status and the provider's JSON `message` (cut short, token-shaped words replaced); a
//! `reqwest::Error` contributes only what kind of failure it was, never its text (which holds the
//! URL). [`HttpClient`]'s `Debug` names the provider and base URL only.
//!
//! [`ErrorKind`]: rekey_engine::ErrorKind
//! [`ErrorKind::RateLimited`]: rekey_engine::ErrorKind::RateLimited

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rekey_engine::ProviderError;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const USER_AGENT: &str = concat!("rekey/", env!("CARGO_PKG_VERSION"));

/// How many requests a provider may make, so that an incident over 1,000 credentials slows
/// down instead of being banned. Each rate is spread evenly (GCRA) with bursts of up to its
/// `*_burst`: in any window of the period, at most rate + burst requests go out, which is what
/// must stay under the provider's limit.
#[derive(Debug, Clone, Copy)]
pub struct BudgetSpec {
    /// Requests per hour (GitHub: 5,000 primary limit per token).
    pub per_hour: u32,
    pub hourly_burst: u32,
    /// Requests in flight at once (GitHub: 100).
    pub concurrent: u32,
    /// Content-creating requests (`POST`, `PUT`, `PATCH`, `DELETE`) per minute (GitHub: 80).
    pub writes_per_minute: u32,
    pub write_burst: u32,
}

/// The budget of one provider, shared by every step of a run.
pub struct Budget {
    spec: BudgetSpec,
    hourly: DefaultDirectRateLimiter,
    writes: DefaultDirectRateLimiter,
    /// A pace of their own for `DELETE`s, where the provider limits them apart from the
    /// other writes (npm's token deletes: what closes exposure in an incident).
    deletes: Option<DefaultDirectRateLimiter>,
    in_flight: Arc<Semaphore>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// `per_period` spread evenly over `period` (GCRA), with bursts of up to `burst`.
fn quota(per_period: u32, period: Duration, burst: u32) -> Quota {
    let n = NonZeroU32::new(per_period.max(1)).expect("nonzero");
    Quota::with_period(period / n.get())
        .expect("a positive period")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("nonzero"))
}

impl Budget {
    pub fn new(spec: BudgetSpec) -> Self {
        Self {
            spec,
            hourly: RateLimiter::direct(quota(
                spec.per_hour,
                Duration::from_hours(1),
                spec.hourly_burst,
            )),
            writes: RateLimiter::direct(quota(
                spec.writes_per_minute,
                Duration::from_mins(1),
                spec.write_burst,
            )),
            deletes: None,
            in_flight: Arc::new(Semaphore::new(spec.concurrent.max(1) as usize)),
        }
    }

    pub fn spec(&self) -> BudgetSpec {
        self.spec
    }

    /// Waits until one more request fits; the permit is held while it is in flight.
    /// `counted` is false for requests that do not spend this budget (made with the
    /// credential's own token, or unauthenticated).
    pub async fn acquire(&self, method: &Method, counted: bool) -> OwnedSemaphorePermit {
        if counted {
            self.hourly.until_ready().await;
            match &self.deletes {
                Some(deletes) if *method == Method::DELETE => deletes.until_ready().await,
                _ if *method != Method::GET && *method != Method::HEAD => {
                    self.writes.until_ready().await;
                }
                _ => {}
            }
        }
        Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// A limit of its own on one endpoint (GitHub's `POST /credentials/revoke`: 60 calls an hour),
/// beside the provider's budget. It does not wait: a call that does not fit is told how long
/// until it does, so the engine waits it out as a rate limit (shown and audited) instead of a
/// call hanging for minutes.
pub struct Pace {
    what: &'static str,
    limiter: DefaultDirectRateLimiter,
}

impl fmt::Debug for Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pace")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl Pace {
    /// `per_period` spread evenly over `period`, with bursts of up to `burst`.
    pub fn new(what: &'static str, per_period: u32, period: Duration, burst: u32) -> Self {
        Self {
            what,
            limiter: RateLimiter::direct(quota(per_period, period, burst)),
        }
    }

    /// Takes one call now, or says how long until one fits (as a `RateLimited` error).
    pub fn take(&self) -> Result<(), ProviderError> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ProviderError::rate_limited(
                Some(wait),
                format!(
                    "{}: rekey's own pace for this endpoint is spent; next call in {}s",
                    self.what,
                    wait.as_secs().max(1)
                ),
            )
        })
    }
}

/// What one path segment escapes: all but RFC 3986's unreserved characters and `@` (GCP's
/// service-account emails).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// One URL path segment, percent-encoded (names from the inventory may hold `/` or spaces).
pub fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Authenticated as rekey (the token that writes secrets): counted.
    Ours,
    /// Authenticated as someone else (a credential checking itself) or not at all: only the
    /// concurrency limit applies.
    NotOurs,
    /// Authenticated as rekey, its pace already waited for with [`HttpClient::pace`] (before
    /// taking a lock the request must be sent under): only the concurrency limit applies.
    Paced,
}

/// One provider's HTTP client.
pub struct HttpClient {
    provider: &'static str,
    base: String,
    /// The `accept` header of requests under the base URL.
    accept: &'static str,
    client: reqwest::Client,
    budget: Arc<Budget>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// `base` is the provider's API root (no trailing slash needed).
    pub fn new(
        provider: &'static str,
        base: &str,
        timeout: Duration,
        budget: BudgetSpec,
    ) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            // Redirects could carry an Authorization header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| {
                ProviderError::permanent(format!("{provider}: cannot build the HTTPS client"))
            })?;
        Ok(Self {
            provider,
            base: base.trim_end_matches('/').to_owned(),
            accept: "application/json",
            client,
            budget: Arc::new(Budget::new(budget)),
        })
    }

    /// `DELETE`s paced apart from the other writes: `per_minute` with bursts of `burst`.
    #[must_use]
    pub fn with_delete_pace(mut self, per_minute: u32, burst: u32) -> Self {
        Arc::get_mut(&mut self.budget)
            .expect("set while the client is built, before it is shared")
            .deletes = Some(RateLimiter::direct(quota(
            per_minute,
            Duration::from_mins(1),
            burst,
        )));
        self
    }

    /// Waits until a request of `method` fits the budget's pace, and spends it: the request is
    /// then sent with [`Spend::Paced`].
    pub async fn pace(&self, method: &Method) {
        drop(self.budget.acquire(method, true).await);
    }

    /// The `accept` header the provider wants (GitHub: `application/vnd.github+json`).
    #[must_use]
    pub fn with_accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn provider(&self) -> &'static str {
        self.provider
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// A request to `path` (starting with `/`) under the base URL.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("accept", self.accept)
    }

    /// A request to a full URL: another host of the same provider (GitHub's web host, which
    /// serves the OAuth endpoints), or a provider whose every credential names its own host
    /// (an Okta org, an Auth0 tenant). Same budget and redaction.
    pub fn request_url(&self, method: Method, url: &str) -> RequestBuilder {
        self.client
            .request(method, url)
            .header("accept", "application/json")
    }

    /// Sends a request within the budget. Any answer is returned (the caller decides what a
    /// 404 means); only a request that got no answer is an error.
    pub async fn send(
        &self,
        op: &str,
        req: RequestBuilder,
        spend: Spend,
    ) -> Result<Response, ProviderError> {
        let req = req.build().map_err(|_| {
            ProviderError::permanent(format!("{op}: the request could not be built"))
        })?;
        let _permit = self
            .budget
            .acquire(req.method(), spend == Spend::Ours)
            .await;
        let started = std::time::Instant::now();
        let r = self
            .client
            .execute(req)
            .await
            .map_err(|e| transport_error(op, &e));
        // The operation and the outcome only: never a header, a body or the URL's query.
        match &r {
            Ok(resp) => tracing::debug!(
                provider = self.provider,
                op,
                status = resp.status().as_u16(),
                ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "request"
            ),
            Err(e) => tracing::debug!(provider = self.provider, op, error = %e, "request failed"),
        }
        r
    }

    /// Sends and classifies: a success status is returned, anything else is an error.
    pub async fn send_ok(
        &self,
        op: &str,
        req: RequestBuilder,
        spend: Spend,
    ) -> Result<Response, ProviderError> {
        let resp = self.send(op, req, spend).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_of(op, resp).await)
        }
    }
}

/// A request that got no answer. Only the kind of failure is kept: reqwest's text names the
/// URL.
pub fn transport_error(op: &str, e: &reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::transient(format!("{op}: timed out"))
    } else if e.is_connect() {
        ProviderError::transient(format!("{op}: could not connect"))
    } else if e.is_builder() {
        ProviderError::permanent(format!("{op}: the request could not be built"))
    } else if e.is_decode() {
        ProviderError::transient(format!("{op}: unreadable answer"))
    } else {
        // Reset or closed connections, broken bodies.
        ProviderError::transient(format!("{op}: the connection failed"))
    }
}

/// Reads an unsuccessful answer and classifies it.
pub async fn error_of(op: &str, resp: Response) -> ProviderError {
    let status = resp.status();
    let headers = resp.headers().clone();
    // An error body is read only to take its `message`; it is never kept or printed whole.
    let body = resp.bytes().await.unwrap_or_default();
    classify(op, status, &headers, &body, SystemTime::now())
}

/// The wait a rate-limited answer asks for: `retry-after` (seconds), else
/// `x-ratelimit-reset` (epoch seconds) from `now`.
fn wait_of(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(s) = header("retry-after") {
        return Some(Duration::from_secs(s));
    }
    // GitHub and Auth0 say `x-ratelimit-reset`, Okta `x-rate-limit-reset`: UTC epoch seconds.
    let reset = header("x-ratelimit-reset").or_else(|| header("x-rate-limit-reset"))?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    // A reset in the past (clock skew) still means "wait a moment".
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// Classifies an answer that is not a success.
pub fn classify(
    op: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> ProviderError {
    let said = provider_message(body);
    let message = match &said {
        Some(m) => format!("{op}: HTTP {}: {m}", status.as_u16()),
        None => format!("{op}: HTTP {}", status.as_u16()),
    };
    let exhausted = headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    // GitHub's secondary limits, and its failed-login limit ("Maximum number of login attempts
    // exceeded"), which a revoke's checks of dead tokens can trip: both pass with time.
    let secondary = status == StatusCode::FORBIDDEN
        && (headers.contains_key("retry-after")
            || said.as_deref().is_some_and(|m| {
                let m = m.to_ascii_lowercase();
                m.contains("rate limit") || m.contains("login attempts")
            }));
    if status == StatusCode::TOO_MANY_REQUESTS
        || secondary
        || (exhausted && status == StatusCode::FORBIDDEN)
    {
        // GitHub: without either header, wait at least a minute before a secondary retry.
        let wait = wait_of(headers, now).or(secondary.then_some(Duration::from_mins(1)));
        ProviderError::rate_limited(wait, message)
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        ProviderError::transient(message)
    } else {
        ProviderError::permanent(message)
    }
}

/// The provider's own `message` (or `error`) from a JSON error body, cut to 200 characters, with anything
/// that looks like a token replaced.
pub fn provider_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    // GitHub and Auth0: `message`; Okta: `errorSummary`; Google: `error.message`; OAuth token
    // endpoints: `error_description`, else `error`.
    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    let m = text("message")
        .or_else(|| text("errorSummary"))
        .or_else(|| {
            v.pointer("/error/message")
                .and_then(serde_json::Value::as_str)
        })
        .or_else(|| text("error_description"))
        .or_else(|| text("error"))?;
    let cleaned: Vec<String> = m
        .split_whitespace()
        .map(|w| {
            if looks_like_token(w) {
                "[REDACTED]".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    let mut out = cleaned.join(" ");
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "…";
    }
    Some(out)
}

/// Words no provider message should carry: known token prefixes and long opaque strings.
pub fn looks_like_token(word: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "npm_",
        "hf_",
        "eyJ",
    ];
    let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
    PREFIXES.iter().any(|p| w.starts_with(p))
        || (w.len() >= 24
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-+/=".contains(c))
            && w.chars().any(|c| c.is_ascii_digit())
            && w.chars().any(|c| c.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rekey_engine::ErrorKind;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn classification() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let cases: Vec<(u16, HeaderMap, &str, ErrorKind)> = vec![
            (
                429,
                headers(&[("retry-after", "7")]),
                "",
                ErrorKind::RateLimited(Some(Duration::from_secs(7))),
            ),
            (
                403,
                headers(&[("retry-after", "30")]),
                r#"{"message":"You have exceeded a secondary rate limit."}"#,
                ErrorKind::RateLimited(Some(Duration::from_secs(30))),
            ),
            (
                403,
                HeaderMap::new(),
                r#"{"message":"You have exceeded a secondary rate limit. Please wait."}"#,
                ErrorKind::RateLimited(Some(Duration::from_mins(1))),
            ),
            (
                403,
                headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1042"),
                ]),
                r#"{"message":"API rate limit exceeded"}"#,
                ErrorKind::RateLimited(Some(Duration::from_secs(42))),
            ),
            (502, HeaderMap::new(), "<html>", ErrorKind::Transient),
            (503, HeaderMap::new(), "", ErrorKind::Transient),
            (
                403,
                HeaderMap::new(),
                r#"{"message":"Resource not accessible by personal access token"}"#,
                ErrorKind::Permanent,
            ),
            (
                404,
                HeaderMap::new(),
                r#"{"message":"Not Found"}"#,
                ErrorKind::Permanent,
            ),
            (422, HeaderMap::new(), "", ErrorKind::Permanent),
        ];
        for (status, h, body, want) in cases {
            let e = classify(
                "op",
                StatusCode::from_u16(status).unwrap(),
                &h,
                body.as_bytes(),
                now,
            );
            assert_eq!(e.kind, want, "{status} {body}");
        }
        let e = classify(
            "GET /repos/acme/web",
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"message":"Not Found","documentation_url":"https://docs.github.com"}"#,
            now,
        );
        assert_eq!(e.message, "GET /repos/acme/web: HTTP 404: Not Found");
        // Google's error shape; its rate limit is a 429 RESOURCE_EXHAUSTED.
        let e = classify(
            "keys.create",
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "3")]),
            br#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED"}}"#,
            now,
        );
        assert_eq!(e.kind, ErrorKind::RateLimited(Some(Duration::from_secs(3))));
        assert_eq!(e.message, "keys.create: HTTP 429: Quota exceeded.");
    }

    #[test]
    fn messages_hide_tokens() {
        let m = provider_message(
            br#"{"message":"token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and github_pat_11AAAA_x and Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA== are bad"}"#,
        )
        .unwrap();
        assert!(!m.contains("ghp_"), "{m}");
        assert!(!m.contains("github_pat_"), "{m}");
        assert!(!m.contains("Zm9v"), "{m}");
        assert!(m.contains("are bad"));
        assert_eq!(provider_message(b"not json"), None);
    }
}
