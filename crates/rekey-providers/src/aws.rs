//! AWS: IAM access keys, STS verification, Secrets Manager as a consumer.
//!
//! [`AwsProvider`] answers the `aws.*` actions and the `consumer.*` actions whose target is an
//! `aws_secrets_manager` consumer. It authenticates with the standard AWS credential chain
//! (`aws-config`: environment, profile, web identity, container and instance metadata) and
//! honours `AWS_ENDPOINT_URL` (and the service-specific `AWS_ENDPOINT_URL_<SERVICE>`).
//!
//! Retries belong to the engine (backoff, `Retry-After`, resume), so the SDK's own retries are
//! turned off and every error is classified once: throttling → [`ErrorKind::RateLimited`],
//! 5xx, timeouts and connection failures → transient, everything else → permanent. Messages carry
//! the operation, AWS's error code and message — never a secret (AWS never echoes secret access
//! keys or secret strings in errors, and no request is ever formatted).
//!
//! # Finding a key whose creation was lost
//!
//! IAM shows a secret access key once. If the process dies after `CreateAccessKey` succeeded but
//! before the step's outcome was stored, the key exists and its secret is gone: an orphan that
//! also holds one of the user's two key slots. Access keys cannot be tagged, and a time window
//! ("created after the step started") depends on clocks agreeing, so `create_access_key` keeps a
//! write-ahead marker on the IAM *user* instead:
//!
//! 1. `ListAccessKeys` → the ids that exist before the call;
//! 2. `TagUser rekey:create:<idempotency key>` = those ids (written before the call);
//! 3. `CreateAccessKey`.
//!
//! A key of the user that is not in the marker's list was made by that step. `reconcile` (and
//! `undo` when the outputs were lost, and a retried `execute`) delete exactly those keys, then
//! drop the marker; no marker means `CreateAccessKey` was never sent. The marker stays after a
//! successful create — the step's outcome may still be lost — and is removed by the step's undo,
//! `rekey abandon`, the final delete, or the next create on the same user (a credential has one
//! run at a time, so by then every older marker on it is settled). Needs `iam:TagUser`,
//! `iam:UntagUser`, `iam:ListUserTags`.
//!
//! The marker must never stand between an incident and the new key: a user at IAM's 50-tag
//! limit, or a policy without `iam:TagUser`, cannot be tagged. Then the step goes on and says so
//! (a `provider_warning` in the audit log), and the key ids the `free-slot` step recorded just
//! before (its plain output `access_key_ids`, passed as `existing_access_key_ids`, kept by the
//! state database and the audit log) are the list instead.
//!
//! Every deletion beside a step's own job (an inactive key removed to make room, an orphan, a
//! stale `AWSPENDING` moved aside) is reported through `Call::reports` and audited by id.
//!
//! # Secrets Manager staging
//!
//! `consumer.deliver` writes a new version labelled `AWSPENDING` with a `ClientRequestToken`
//! derived from the step's idempotency key (and a counter, for a step that must deliver a new
//! value after its mint was redone), so a repeated call is a no-op. A stale `AWSPENDING` left by
//! an earlier half-done rotation is moved off its version first. `consumer.promote` moves `AWSCURRENT` to the pending
//! version (the old one becomes `AWSPREVIOUS`) and removes `AWSPENDING`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::StatusType;
use aws_smithy_http_client::tls;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::{PlannedStep, Strategy};
use rekey_spec::Consumer;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The HTTP response type shared by every SDK crate.
type HttpResponse = aws_sdk_iam::config::http::HttpResponse;

const AWSCURRENT: &str = "AWSCURRENT";
const AWSPENDING: &str = "AWSPENDING";
const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// IAM is global; requests are signed for this region when none is configured.
const DEFAULT_REGION: &str = "us-east-1";
/// How many request tokens one deliver step may use (see [`AwsProvider::deliver`]).
const MAX_DELIVERIES: u32 = 16;
const MARKER_PREFIX: &str = "rekey:create:";
/// The marker of a deactivate step: which keys it set out to turn off.
const OFF_PREFIX: &str = "rekey:off:";
/// Between key ids in a marker's value: allowed in tag values and never percent-encoded (moto
/// recomputes signatures over its own encoding, which differs from the SDK's for spaces).
const MARKER_SEPARATOR: &str = "_";

/// How long a verify waits, by default, for STS to accept a new key (see
/// [`AwsProvider::with_propagation_wait`]).
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_mins(5);
/// The environment variable that sets [`AwsProvider::with_propagation_wait`] for
/// [`AwsProvider::from_env`]: `90s`, `2m`, `500ms`, `1h`, or a number of seconds.
pub const PROPAGATION_WAIT_VAR: &str = "REKEY_AWS_PROPAGATION_WAIT";

/// The real AWS provider.
///
/// Build it with [`AwsProvider::from_env`] (the standard credential chain) or
/// [`AwsProvider::from_sdk_config`] (an explicit configuration, as tests do).
pub struct AwsProvider {
    config: SdkConfig,
    iam: aws_sdk_iam::Client,
    propagation_wait: Duration,
    /// No region was configured; said once, at the first AWS step (see [`Self::from_env`]).
    region_missing: bool,
    region_said: AtomicBool,
}

/// The HTTPS client every AWS client uses: hyper 1 with rustls on ring.
pub fn https_client() -> aws_sdk_iam::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

impl AwsProvider {
    /// From the standard AWS credential chain and environment (`AWS_REGION`, `AWS_PROFILE`,
    /// `AWS_ENDPOINT_URL`, …), and [`PROPAGATION_WAIT_VAR`].
    ///
    /// The region comes from the environment or the profile only. The SDK's own chain ends at
    /// the instance metadata service (IMDS): on a laptop that means warnings full of
    /// internals, or timeouts, before the real error. Without a region, the first AWS step
    /// says so once, plainly.
    pub async fn from_env() -> Self {
        let found = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::new())
            .region()
            .await;
        // Always a region for the loader: without one, building the credential chain asks
        // IMDS for it.
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(found.clone().unwrap_or_else(|| Region::new(DEFAULT_REGION)))
            .load()
            .await;
        let mut provider = Self::from_sdk_config(&config);
        provider.region_missing = found.is_none();
        if let Ok(text) = std::env::var(PROPAGATION_WAIT_VAR) {
            if let Some(d) = parse_duration(&text) {
                provider.propagation_wait = d;
            } else {
                tracing::warn!(
                    "{PROPAGATION_WAIT_VAR}={text:?} is not a duration (such as 90s, 2m or 1h); waiting up to {}s for a new key",
                    provider.propagation_wait.as_secs()
                );
            }
        }
        provider
    }

    /// How long a verify keeps retrying a new key that STS does not accept yet (IAM is
    /// eventually consistent) before it fails, when that is longer than the run's retry
    /// budget. Default [`DEFAULT_PROPAGATION_WAIT`].
    #[must_use]
    pub fn with_propagation_wait(mut self, wait: Duration) -> Self {
        self.propagation_wait = wait;
        self
    }

    /// Says once that no region is set, and how to set one.
    fn say_if_no_region(&self) {
        if self.region_missing && !self.region_said.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no AWS region is set: IAM and STS are called in {DEFAULT_REGION}, and an aws_secrets_manager consumer without `region:` is looked for there. Set AWS_REGION (or `region` in your AWS profile), or `region:` on each aws_secrets_manager consumer"
            );
        }
    }

    /// From an explicit configuration. Missing pieces are filled in: the HTTPS client, a
    /// region for IAM, timeouts; SDK retries are turned off (the engine retries).
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        let mut b = config.to_builder();
        if config.http_client().is_none() {
            b.set_http_client(Some(https_client()));
        }
        if config.behavior_version().is_none() {
            b.set_behavior_version(Some(BehaviorVersion::latest()));
        }
        b.set_retry_config(Some(RetryConfig::disabled()));
        b.set_timeout_config(Some(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        ));
        let config = b.build();
        let iam_config = aws_sdk_iam::config::Builder::from(&config)
            .region(
                config
                    .region()
                    .cloned()
                    .unwrap_or_else(|| Region::new(DEFAULT_REGION)),
            )
            .build();
        Self {
            iam: aws_sdk_iam::Client::from_conf(iam_config),
            config,
            propagation_wait: DEFAULT_PROPAGATION_WAIT,
            region_missing: false,
            region_said: AtomicBool::new(false),
        }
    }

    fn region_or_default(&self, region: Option<&str>) -> Region {
        region
            .filter(|r| !r.is_empty())
            .map(|r| Region::new(r.to_owned()))
            .or_else(|| self.config.region().cloned())
            .unwrap_or_else(|| Region::new(DEFAULT_REGION))
    }

    fn secrets(&self, region: Option<&str>) -> aws_sdk_secretsmanager::Client {
        let conf = aws_sdk_secretsmanager::config::Builder::from(&self.config)
            .region(self.region_or_default(region))
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Classifies an SDK error; the message names the operation and AWS's code, never a value.
fn sdk_error<E>(op: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::TimeoutError(_) => ProviderError::transient(format!("{op}: timed out")),
        SdkError::DispatchFailure(d) => {
            if d.is_user() {
                ProviderError::permanent(format!("{op}: the request could not be sent"))
            } else {
                ProviderError::transient(format!("{op}: could not reach AWS (connection failed)"))
            }
        }
        SdkError::ResponseError(_) => {
            ProviderError::transient(format!("{op}: unreadable response from AWS"))
        }
        SdkError::ConstructionFailure(_) => {
            ProviderError::permanent(format!("{op}: the request could not be built"))
        }
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            let code = service_code(err);
            let code = code.as_deref().unwrap_or("UnknownError");
            let message = match err.message() {
                Some(m) if !m.is_empty() => format!("{op}: {code}: {m}"),
                _ => format!("{op}: {code} (HTTP {status})"),
            };
            if is_throttling(code) || status == 429 {
                let retry_after = e
                    .raw()
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                ProviderError::rate_limited(retry_after, message)
            } else if status >= 500 || code == "ServiceUnavailable" || code == "InternalFailure" {
                ProviderError::transient(message)
            } else {
                ProviderError::permanent(message)
            }
        }
        _ => ProviderError::transient(format!("{op}: request failed")),
    }
}

/// `90s`, `2m`, `500ms`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" | "min" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
            | "BandwidthLimitExceeded"
    )
}

/// AWS's error code. moto answers some errors (failed signature checks) in a shape the SDK does
/// not parse; the code is then taken from the body (error bodies hold no secrets).
fn service_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    let SdkError::ServiceError(e) = err else {
        return None;
    };
    err.code().map(str::to_owned).or_else(|| {
        let body = std::str::from_utf8(e.raw().body().bytes()?).ok()?;
        let (_, rest) = body.split_once("<Code>")?;
        let (code, _) = rest.split_once("</Code>")?;
        Some(code.to_owned())
    })
}

fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(
        service_code(err).as_deref(),
        Some("NoSuchEntity" | "ResourceNotFoundException")
    )
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a str> {
    call.inputs
        .get(name)
        .map(Value::expose)
        .filter(|s| !s.is_empty())
}

/// A selector (which key to touch, which to spare): absent means "not narrowed"; present, it
/// must be a plain, non-empty key id. Anything else is an error, never "no selector": a lost
/// exception must not turn "every key but the new one" into every key.
fn selector<'a>(call: &'a Call<'_>, name: &str) -> Result<Option<&'a str>, ProviderError> {
    match call.inputs.get(name) {
        None => Ok(None),
        Some(Value::Plain(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(Value::Plain(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is empty; refusing to widen the call to every key",
            call.step.id
        ))),
        Some(Value::Secret(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is a secret value, not a key id; refusing to widen the call",
            call.step.id
        ))),
    }
}

fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a str, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}

/// The key ids the user had before a create step (`existing_access_key_ids`, recorded by the
/// `free-slot` step: a plain output, so the state database and the audit log keep it). `None`
/// when the plan does not pass them (plans stored before they existed).
fn existing_keys(call: &Call<'_>) -> Result<Option<BTreeSet<String>>, ProviderError> {
    match call.inputs.get("existing_access_key_ids") {
        None => Ok(None),
        Some(Value::Plain(s)) => Ok(Some(s.split_whitespace().map(str::to_owned).collect())),
        Some(Value::Secret(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `existing_access_key_ids` is a secret value, not key ids",
            call.step.id
        ))),
    }
}

/// Of `ids`, those other than the key the inventory names (`access_key_id`); none when it
/// names no key (then every key of the user is the credential's).
fn unknown_keys(call: &Call<'_>, ids: &[String]) -> Result<Vec<String>, ProviderError> {
    Ok(match selector(call, "access_key_id")? {
        Some(known) => ids.iter().filter(|k| *k != known).cloned().collect(),
        None => Vec::new(),
    })
}

fn plain(pairs: &[(&str, String)]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::Plain(v.clone())))
        .collect()
}

/// The Secrets Manager consumer a step targets.
struct SecretTarget<'a> {
    secret_id: &'a str,
    region: Option<&'a str>,
    field: Option<&'a str>,
    create: bool,
}

fn secret_target(step: &PlannedStep) -> Option<SecretTarget<'_>> {
    match &step.target {
        Some(Consumer::AwsSecretsManager {
            secret_id,
            region,
            field,
            create,
        }) => Some(SecretTarget {
            secret_id,
            region: region.as_deref(),
            field: field.as_deref(),
            create: *create,
        }),
        _ => None,
    }
}

fn target_of<'a>(call: &'a Call<'_>) -> Result<SecretTarget<'a>, ProviderError> {
    secret_target(call.step).ok_or_else(|| {
        ProviderError::permanent(format!(
            "step {}: the AWS provider delivers only to aws_secrets_manager consumers, not to {}",
            call.step.id,
            call.step.consumer_label.as_deref().unwrap_or("this target")
        ))
    })
}

/// A UUID-shaped `ClientRequestToken` from the idempotency key and a delivery counter.
pub fn request_token(idempotency_key: &str, n: u32) -> String {
    let mut h = Sha256::new();
    h.update(b"rekey-secretsmanager-token\0");
    h.update(idempotency_key.as_bytes());
    h.update(n.to_le_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    // RFC 9562 version 8 (custom), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        write!(s, "{x:02x}").expect("writing to a String");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// IAM

struct KeyInfo {
    id: String,
    active: bool,
    created: Option<aws_sdk_iam::primitives::DateTime>,
}

/// The marker tag key of a create step (tag keys are at most 128 characters).
fn marker_key(idempotency_key: &str) -> String {
    prefixed_key(MARKER_PREFIX, idempotency_key)
}

fn prefixed_key(prefix: &str, idempotency_key: &str) -> String {
    let k: String = idempotency_key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    format!("{prefix}{k}")
}

impl AwsProvider {
    async fn list_keys(&self, user: &str) -> Result<Vec<KeyInfo>, ProviderError> {
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:ListAccessKeys", &e))?;
            for k in out.access_key_metadata() {
                if let Some(id) = k.access_key_id() {
                    keys.push(KeyInfo {
                        id: id.to_owned(),
                        active: k.status() == Some(&StatusType::Active),
                        created: k.create_date().copied(),
                    });
                }
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn set_status(
        &self,
        user: &str,
        key: &str,
        status: StatusType,
    ) -> Result<bool, ProviderError> {
        match self
            .iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(status)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(sdk_error("iam:UpdateAccessKey", &e)),
        }
    }

    async fn delete_key(&self, user: &str, key: &str) -> Result<bool, ProviderError> {
        match self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(sdk_error("iam:DeleteAccessKey", &e)),
        }
    }

    /// The keys a deactivate / delete / last-used step is about: `access_key_id` if given,
    /// otherwise every key of the user; never `except_access_key_id`.
    async fn selected_keys(&self, call: &Call<'_>) -> Result<Vec<KeyInfo>, ProviderError> {
        let user = required(call, "user_name")?;
        let only = selector(call, "access_key_id")?;
        let except = selector(call, "except_access_key_id")?;
        Ok(self
            .list_keys(user)
            .await?
            .into_iter()
            .filter(|k| only.is_none_or(|o| o == k.id) && except != Some(k.id.as_str()))
            .collect())
    }

    /// The last line of defence of a step that turns keys off or deletes them: a rotation
    /// (rotate first) must spare the key it minted, and no step may leave the user without an
    /// active key except an incident's revoke-first disable, whose point is exactly that.
    async fn guard_removal(
        &self,
        call: &Call<'_>,
        removing: &BTreeSet<&str>,
        may_leave_none: bool,
    ) -> Result<(), ProviderError> {
        let user = required(call, "user_name")?;
        let rotating = call.credential.strategy == Strategy::RotateFirst;
        if rotating && selector(call, "except_access_key_id")?.is_none() {
            return Err(ProviderError::permanent(format!(
                "step {}: a rotation must name the key it keeps (`except_access_key_id`); refusing to touch every key of IAM user {user}",
                call.step.id
            )));
        }
        if may_leave_none || removing.is_empty() {
            return Ok(());
        }
        let keys = self.list_keys(user).await?;
        if !keys
            .iter()
            .any(|k| k.active && !removing.contains(k.id.as_str()))
        {
            return Err(ProviderError::permanent(format!(
                "step {}: this would leave IAM user {user} with no active access key ({} would go); refusing",
                call.step.id,
                removing.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    async fn user_markers(&self, user: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        self.user_tags(user, MARKER_PREFIX).await
    }

    async fn user_tags(
        &self,
        user: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_user_tags()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("iam:ListUserTags", &e))?;
            for t in out.tags() {
                if t.key().starts_with(prefix) {
                    tags.insert(t.key().to_owned(), t.value().to_owned());
                }
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(tags)
    }

    async fn tag_user(&self, user: &str, key: &str, value: String) -> Result<(), ProviderError> {
        self.iam
            .tag_user()
            .user_name(user)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|_| ProviderError::permanent("iam:TagUser: invalid marker tag"))?,
            )
            .send()
            .await
            .map_err(|e| sdk_error("iam:TagUser", &e))?;
        Ok(())
    }

    /// The keys a deactivate step turns off: fixed by its first attempt in a marker written
    /// before any key changes, so that a retry after a lost answer reports (and an undo
    /// reactivates) exactly those keys — not "none", because they are already off — and never
    /// a key that was off before the step. `None` when no attempt started.
    async fn deactivation(&self, call: &Call<'_>) -> Result<Option<Vec<String>>, ProviderError> {
        let user = required(call, "user_name")?;
        let key = prefixed_key(OFF_PREFIX, call.idempotency_key);
        Ok(self.user_tags(user, OFF_PREFIX).await?.get(&key).map(|v| {
            v.split(MARKER_SEPARATOR)
                .filter(|k| !k.is_empty() && *k != "-")
                .map(str::to_owned)
                .collect()
        }))
    }

    async fn drop_markers(&self, user: &str, keys: Vec<String>) -> Result<(), ProviderError> {
        if keys.is_empty() {
            return Ok(());
        }
        match self
            .iam
            .untag_user()
            .user_name(user)
            .set_tag_keys(Some(keys))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(sdk_error("iam:UntagUser", &e)),
        }
    }

    /// Deletes the keys a create step made, then drops its marker. Made by the step: not in
    /// its marker or — without one (a user at IAM's 50-tag limit, a policy without
    /// `iam:TagUser`) — not among the key ids recorded before it (`existing_access_key_ids`,
    /// kept by the state database and the audit log), if `by_record`. Returns the deleted ids;
    /// `None` when there is no record at all (then nothing was created).
    async fn remove_created(
        &self,
        call: &Call<'_>,
        by_record: bool,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let user = required(call, "user_name")?;
        let key = marker_key(call.idempotency_key);
        let recorded = if by_record {
            existing_keys(call)?
        } else {
            None
        };
        let marker = match self.user_markers(user).await {
            Ok(markers) => markers.get(&key).cloned(),
            Err(e) if recorded.is_some() => {
                call.reports.warning(format!(
                    "cannot read the write-ahead markers of IAM user {user} ({e}); the key ids recorded before the create stand in for them"
                ));
                None
            }
            Err(e) => return Err(e),
        };
        let before: BTreeSet<String> = match (&marker, recorded) {
            (Some(m), _) => m.split(MARKER_SEPARATOR).map(str::to_owned).collect(),
            (None, Some(ids)) => ids,
            (None, None) => return Ok(None),
        };
        let mut deleted = Vec::new();
        for k in self.list_keys(user).await? {
            if !before.contains(&k.id) && self.delete_key(user, &k.id).await? {
                call.reports.side_effect(format!(
                    "deleted access key {} of IAM user {user}: made by this step in a call whose outcome was lost, so its secret is gone",
                    k.id
                ));
                deleted.push(k.id);
            }
        }
        if marker.is_some() {
            self.drop_markers(user, vec![key]).await?;
        }
        Ok(Some(deleted))
    }

    /// Drops markers where failing to must not fail the step (an undo that did its work):
    /// says so instead.
    async fn drop_markers_or_warn(&self, call: &Call<'_>, user: &str, keys: Vec<String>) {
        if let Err(e) = self.drop_markers(user, keys).await {
            call.reports.warning(format!(
                "cannot remove rekey's write-ahead marker from IAM user {user} ({e}); remove the `rekey:` tags by hand"
            ));
        }
    }

    async fn ensure_key_slot(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        let keep = selector(call, "keep_access_key_id")?;
        let keys = self.list_keys(user).await?;
        // The keys the create step after this one finds: any other key it sees was made by
        // itself, even when it cannot write its marker (see `remove_created`).
        let ids = |keys: &mut dyn Iterator<Item = &KeyInfo>| {
            keys.map(|k| k.id.as_str()).collect::<Vec<_>>().join(" ")
        };
        if keys.len() < 2 {
            return Ok(plain(&[
                ("free_slots", (2 - keys.len()).to_string()),
                ("access_key_ids", ids(&mut keys.iter())),
            ]));
        }
        if keys.iter().all(|k| k.active) {
            return Err(ProviderError::permanent(format!(
                "IAM user {user} already has two active keys ({}); deactivate or delete one that is no longer used, then run again",
                keys.iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // An inactive key other than the tracked one; the oldest if there are two.
        let mut candidates: Vec<&KeyInfo> = keys
            .iter()
            .filter(|k| !k.active && keep != Some(k.id.as_str()))
            .collect();
        candidates.sort_by_key(|k| k.created.map(|d| (d.secs(), d.subsec_nanos())));
        let Some(victim) = candidates.first() else {
            return Err(ProviderError::permanent(format!(
                "IAM user {user} has two keys: the tracked key {} (inactive) and an active untracked key; delete one of them, then run again",
                keep.unwrap_or("?")
            )));
        };
        if self.delete_key(user, &victim.id).await? {
            call.reports.side_effect(format!(
                "deleted inactive access key {} of IAM user {user} to make room for the new key",
                victim.id
            ));
        }
        Ok(plain(&[
            ("free_slots", "1".to_owned()),
            (
                "access_key_ids",
                ids(&mut keys.iter().filter(|k| k.id != victim.id)),
            ),
        ]))
    }

    async fn create_access_key(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        let key = marker_key(call.idempotency_key);
        // An earlier attempt of this very step whose answer never reached us: whatever it
        // created is unusable (its secret is gone), so remove it first. Its marker says which;
        // without one, the recorded key ids do, but only on a retry: a first attempt must not
        // take a key someone made since `free-slot` for an orphan of its own.
        self.remove_created(call, call.attempt > 1).await?;
        // Markers of other steps are settled (one run per credential), so they go too.
        match self.user_markers(user).await {
            Ok(markers) => {
                let stale: Vec<String> = markers.into_keys().filter(|k| *k != key).collect();
                self.drop_markers_or_warn(call, user, stale).await;
            }
            Err(e) => tracing::debug!(user, error = %e, "cannot list old markers"),
        }

        let before = self.list_keys(user).await?;
        let before = if before.is_empty() {
            "-".to_owned()
        } else {
            before
                .iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(MARKER_SEPARATOR)
        };
        // The marker must not stand between an incident and the new key (a user at IAM's
        // 50-tag limit, a policy without iam:TagUser): the key ids the `free-slot` step
        // recorded say the same, from the state database and the audit log.
        if let Err(e) = self.tag_user(user, &key, before).await {
            call.reports.warning(if existing_keys(call)?.is_some() {
                format!(
                    "cannot write the write-ahead marker on IAM user {user} ({e}); the key ids recorded before this step (the `access_key_ids` of the free-slot step, in the audit log) are the record of which key it makes"
                )
            } else {
                format!(
                    "cannot write the write-ahead marker on IAM user {user} ({e}), and this plan records no key ids before the create: if this step's outcome is lost, delete the key it made by hand"
                )
            });
        }
        let out = self
            .iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| {
                let mut err = sdk_error("iam:CreateAccessKey", &e);
                if service_code(&e).as_deref() == Some("LimitExceeded") {
                    err.message
                        .push_str(" (an IAM user may have at most two access keys)");
                }
                err
            })?;
        let k = out
            .access_key()
            .ok_or_else(|| ProviderError::transient("iam:CreateAccessKey: no key in the answer"))?;
        let mut outputs = plain(&[("access_key_id", k.access_key_id().to_owned())]);
        outputs.insert(
            "secret_access_key".into(),
            Value::Secret(SecretString::from(k.secret_access_key().to_owned())),
        );
        Ok(outputs)
    }

    async fn deactivate(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        // The marker makes a retry's report and an undo exact; it must never stand between an
        // incident and the revoke (a user at IAM's 50-tag limit, a policy without
        // iam:TagUser): without it, the step still turns the keys off.
        let marked = self.deactivation(call).await.unwrap_or_else(|e| {
            tracing::warn!(step = %call.step.id, error = %e, "cannot read the deactivation marker; going on without it");
            None
        });
        let planned = if let Some(planned) = marked {
            planned
        } else {
            let active: Vec<String> = self
                .deactivation_targets(call)
                .await?
                .into_iter()
                .filter(|k| k.active)
                .map(|k| k.id)
                .collect();
            let value = if active.is_empty() {
                "-".to_owned()
            } else {
                active.join(MARKER_SEPARATOR)
            };
            let key = prefixed_key(OFF_PREFIX, call.idempotency_key);
            if let Err(e) = self.tag_user(user, &key, value).await {
                tracing::warn!(step = %call.step.id, error = %e, "cannot write the deactivation marker; going on without it");
            }
            active
        };
        let removing: BTreeSet<&str> = planned.iter().map(String::as_str).collect();
        self.guard_removal(
            call,
            &removing,
            call.credential.strategy == Strategy::RevokeFirst,
        )
        .await?;
        let unknown = unknown_keys(call, &planned)?;
        if !unknown.is_empty() {
            call.reports.warning(format!(
                "IAM user {user} had active access keys the inventory does not name: {}; turned off too (an incident turns off every active key of the user). Find out who made them",
                unknown.join(", ")
            ));
        }
        let mut changed = Vec::new();
        for id in planned {
            // A key deleted since is not reported: there is nothing to reactivate.
            if self.set_status(user, &id, StatusType::Inactive).await? {
                changed.push(id);
            }
        }
        Ok(plain(&[
            ("deactivated", changed.join(" ")),
            ("unknown_keys", unknown.join(" ")),
        ]))
    }

    /// The keys a deactivate step is about. An incident's revoke (revoke first) turns off
    /// every key of the user but the one it keeps (`except_access_key_id`), whatever the
    /// inventory names: a second active key may be an attacker's. A rotation turns off the
    /// selected keys.
    async fn deactivation_targets(&self, call: &Call<'_>) -> Result<Vec<KeyInfo>, ProviderError> {
        if call.credential.strategy != Strategy::RevokeFirst {
            return self.selected_keys(call).await;
        }
        let user = required(call, "user_name")?;
        selector(call, "access_key_id")?;
        let except = selector(call, "except_access_key_id")?;
        Ok(self
            .list_keys(user)
            .await?
            .into_iter()
            .filter(|k| except != Some(k.id.as_str()))
            .collect())
    }

    async fn delete_selected(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user_name")?;
        let selected = self.selected_keys(call).await?;
        let removing: BTreeSet<&str> = selected.iter().map(|k| k.id.as_str()).collect();
        self.guard_removal(call, &removing, false).await?;
        let mut deleted = Vec::new();
        for k in selected {
            if self.delete_key(user, &k.id).await? {
                deleted.push(k.id);
            }
        }
        // The old key is gone for good: nothing of this rotation can be undone or lost any
        // more, so its markers go (the user keeps no rekey tags between rotations).
        let mut markers: Vec<String> = Vec::new();
        for prefix in [MARKER_PREFIX, OFF_PREFIX] {
            match self.user_tags(user, prefix).await {
                Ok(tags) => markers.extend(tags.into_keys()),
                Err(e) => {
                    tracing::warn!(user, error = %e, "cannot list rekey's markers to remove them");
                }
            }
        }
        if let Err(e) = self.drop_markers(user, markers).await {
            tracing::warn!(user, error = %e, "cannot remove rekey's markers");
        }
        Ok(plain(&[("deleted", deleted.join(" "))]))
    }

    async fn last_used(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        // The first step of a rotation: an inventory naming a key the user no longer has
        // (rotated by an earlier run or by hand) would make every later step select nothing
        // and leave the real old key alive, so stop here, before anything changes.
        if let Some(only) = selector(call, "access_key_id")? {
            let user = required(call, "user_name")?;
            let keys = self.list_keys(user).await?;
            if !keys.iter().any(|k| k.id == only) {
                let has: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
                return Err(ProviderError::permanent(format!(
                    "IAM user {user} has no access key {only} (its keys: {}): the inventory's \
                     `access_key_id` is out of date; set it to the key in use (or remove it to \
                     mean every key of the user) and plan again",
                    if has.is_empty() {
                        "none".to_owned()
                    } else {
                        has.join(", ")
                    }
                )));
            }
        }
        // Of the selected keys, the most recent use.
        let mut best: Option<(aws_sdk_iam::primitives::DateTime, String)> = None;
        for k in self.selected_keys(call).await? {
            let out = match self
                .iam
                .get_access_key_last_used()
                .access_key_id(&k.id)
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(sdk_error("iam:GetAccessKeyLastUsed", &e)),
            };
            if let Some(u) = out.access_key_last_used()
                && let Some(d) = u.last_used_date()
                && best.as_ref().is_none_or(|(b, _)| d.secs() > b.secs())
            {
                best = Some((*d, u.service_name().to_owned()));
            }
        }
        Ok(match best {
            Some((d, service)) => plain(&[
                (
                    "last_used_date",
                    d.fmt(aws_sdk_iam::primitives::DateTimeFormat::DateTime)
                        .unwrap_or_else(|_| d.secs().to_string()),
                ),
                ("last_used_service", service),
            ]),
            None => plain(&[
                ("last_used_date", "never".to_owned()),
                ("last_used_service", "N/A".to_owned()),
            ]),
        })
    }

    /// An STS client signing with the key `key_id` (not the process's own credentials).
    fn sts_as(&self, key_id: &str, secret: &str, region: Option<&str>) -> aws_sdk_sts::Client {
        let creds = Credentials::new(key_id, secret, None, None, "rekey-checked-key");
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .region(self.region_or_default(region))
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// Who the key `key_id` belongs to (`sts:GetCallerIdentity`, read-only): its ARN, or
    /// `None` when AWS refuses the key (deleted, deactivated, or never valid). For
    /// `rekey discover --online`.
    pub async fn identity(
        &self,
        key_id: &str,
        secret: &secrecy::SecretString,
    ) -> Result<Option<String>, ProviderError> {
        use secrecy::ExposeSecret;
        // STS answers in any region: no warning about a missing one here.
        match self
            .sts_as(key_id, secret.expose_secret(), None)
            .get_caller_identity()
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.arn().unwrap_or_default().to_owned())),
            Err(e)
                if matches!(
                    service_code(&e).as_deref(),
                    Some("InvalidClientTokenId" | "SignatureDoesNotMatch")
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("sts:GetCallerIdentity", &e)),
        }
    }

    async fn caller_identity(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let key_id = required(call, "access_key_id")?;
        let secret = call
            .inputs
            .get("secret_access_key")
            .filter(|v| !v.expose().is_empty())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "step {}: input `secret_access_key` is missing",
                    call.step.id
                ))
            })?;
        match self
            .sts_as(key_id, secret.expose(), input(call, "region"))
            .get_caller_identity()
            .send()
            .await
        {
            Ok(out) => Ok(plain(&[
                ("arn", out.arn().unwrap_or_default().to_owned()),
                ("account", out.account().unwrap_or_default().to_owned()),
            ])),
            // A brand-new IAM key takes a while to be accepted everywhere: worth retrying, for
            // as long as `retry_budget` allows.
            Err(e)
                if matches!(
                    service_code(&e).as_deref(),
                    Some("InvalidClientTokenId" | "SignatureDoesNotMatch")
                ) =>
            {
                Err(ProviderError::transient(format!(
                    "sts:GetCallerIdentity: the new key {key_id} is not accepted ({}: {}); a new key may take a while to propagate, and rekey waits up to {}s for it ({PROPAGATION_WAIT_VAR}; the run's --retry-budget if longer)",
                    service_code(&e).unwrap_or_default(),
                    e.message().unwrap_or("no message"),
                    self.propagation_wait.as_secs()
                )))
            }
            Err(e) => Err(sdk_error("sts:GetCallerIdentity", &e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

/// A secret's versions and their staging labels.
struct Versions(HashMap<String, Vec<String>>);

impl Versions {
    fn with_label(&self, label: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == label))
            .map(|(v, _)| v.as_str())
    }

    fn has(&self, version: &str) -> bool {
        self.0.contains_key(version)
    }
}

impl AwsProvider {
    /// The versions of a secret; `None` if the secret does not exist.
    async fn versions(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<Option<Versions>, ProviderError> {
        match sm.describe_secret().secret_id(secret_id).send().await {
            Ok(out) => Ok(Some(Versions(
                out.version_ids_to_stages().cloned().unwrap_or_default(),
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error("secretsmanager:DescribeSecret", &e)),
        }
    }

    async fn move_label(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        label: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), ProviderError> {
        if to.is_some() && to == from {
            return Ok(());
        }
        sm.update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(label)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("secretsmanager:UpdateSecretVersionStage", &e))?;
        Ok(())
    }

    async fn read_version(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<SecretString>, ProviderError> {
        match sm
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(out
                .secret_string()
                .map(|s| SecretString::from(s.to_owned()))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error("secretsmanager:GetSecretValue", &e)),
        }
    }

    /// The document a deliver step writes: only the input named by the consumer's `field`, or
    /// every input merged into the current JSON document (its other keys kept: a secret that
    /// also holds a host name or a second credential loses nothing).
    fn document(
        call: &Call<'_>,
        target: &SecretTarget<'_>,
        current: Option<&SecretString>,
    ) -> Result<SecretString, ProviderError> {
        if let Some(field) = target.field {
            let v = call.inputs.get(field).ok_or_else(|| {
                ProviderError::permanent(format!(
                    "step {}: consumer field `{field}` is not one of the step's inputs",
                    call.step.id
                ))
            })?;
            return Ok(SecretString::from(v.expose().to_owned()));
        }
        let mut doc = match current
            .map(|c| serde_json::from_str::<serde_json::Value>(c.expose_secret()))
        {
            None => serde_json::Map::new(),
            Some(Ok(serde_json::Value::Object(map))) => map,
            Some(_) if current.is_some_and(|c| c.expose_secret().trim().is_empty()) => {
                serde_json::Map::new()
            }
            Some(_) => {
                return Err(ProviderError::permanent(format!(
                    "secretsmanager: secret {} holds a value that is not a JSON object, and the new value is a document of {} fields: set `field:` on the consumer, or empty the secret",
                    target.secret_id,
                    call.inputs.len()
                )));
            }
        };
        for (k, v) in call.inputs {
            doc.insert(k.clone(), serde_json::Value::String(v.expose().to_owned()));
        }
        Ok(SecretString::from(
            serde_json::Value::Object(doc).to_string(),
        ))
    }

    /// A missing secret, said with the region it was looked for in (a consumer without
    /// `region:` uses the default one).
    fn no_secret(&self, target: &SecretTarget<'_>) -> ProviderError {
        ProviderError::permanent(format!(
            "secretsmanager: secret {} does not exist in {}{}: check `secret_id` and `region`, or set `create: true` on the consumer to create it",
            target.secret_id,
            self.region_or_default(target.region),
            if target.region.is_none() {
                " (the default region: the consumer sets none)"
            } else {
                ""
            }
        ))
    }

    /// Writes the document as a new `AWSPENDING` version.
    ///
    /// The request token is derived from the idempotency key, so a repeated call finds its
    /// version and does nothing more. A step may legitimately deliver a *different* document
    /// under the same key (its mint was undone and redone after a crash), and AWS refuses to
    /// change a version's content: then the next token of the sequence `request_token(key, n)`
    /// is used.
    async fn deliver(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let versions = if let Some(v) = self.versions(&sm, id).await? {
            v
        } else if !target.create {
            return Err(self.no_secret(&target));
        } else {
            // A new secret, created without a value. Its first version becomes AWSCURRENT as
            // well as AWSPENDING (AWS does that for a secret's first version): there is no
            // older value a consumer could be reading.
            match sm.create_secret().name(id).send().await {
                Ok(_) => {}
                Err(e) if service_code(&e).as_deref() == Some("ResourceExistsException") => {}
                Err(e) => return Err(sdk_error("secretsmanager:CreateSecret", &e)),
            }
            self.versions(&sm, id)
                .await?
                .unwrap_or(Versions(HashMap::new()))
        };
        let current = if target.field.is_none() && versions.with_label(AWSCURRENT).is_some() {
            self.read_version(&sm, id, None, Some(AWSCURRENT)).await?
        } else {
            None
        };
        let doc = Self::document(call, &target, current.as_ref())?;
        let pending = versions.with_label(AWSPENDING).map(str::to_owned);
        for n in 0..MAX_DELIVERIES {
            let token = request_token(call.idempotency_key, n);
            if versions.has(&token) {
                let same = self
                    .read_version(&sm, id, Some(&token), None)
                    .await?
                    .is_some_and(|v| v.expose_secret() == doc.expose_secret());
                if !same {
                    continue;
                }
                // Delivered before: make sure it is the pending one (unless already promoted).
                let stages = &versions.0[&token];
                if !stages.iter().any(|s| s == AWSCURRENT || s == AWSPENDING) {
                    self.move_label(&sm, id, AWSPENDING, Some(&token), pending.as_deref())
                        .await?;
                }
                return Ok(plain(&[("version", token)]));
            }
            // A stale AWSPENDING (an earlier rotation that never finished) is moved off first.
            if let Some(old) = &pending {
                self.move_label(&sm, id, AWSPENDING, None, Some(old))
                    .await?;
                call.reports.side_effect(format!(
                    "moved AWSPENDING off version {old} of secret {id}: left by an earlier rotation that never finished"
                ));
            }
            sm.put_secret_value()
                .secret_id(id)
                .client_request_token(&token)
                .secret_string(doc.expose_secret())
                .version_stages(AWSPENDING)
                .send()
                .await
                .map_err(|e| sdk_error("secretsmanager:PutSecretValue", &e))?;
            return Ok(plain(&[("version", token)]));
        }
        Err(ProviderError::permanent(format!(
            "step {}: delivered {MAX_DELIVERIES} different values to {id} under one step; giving up",
            call.step.id
        )))
    }

    async fn promote(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let versions = self.versions(&sm, id).await?.ok_or_else(|| {
            ProviderError::permanent(format!("secretsmanager: secret {id} does not exist"))
        })?;
        let current = versions.with_label(AWSCURRENT);
        let Some(pending) = versions.with_label(AWSPENDING) else {
            if current.is_some() {
                // Promoted already (a repeated call, or one whose outcome was lost).
                return Ok(Values::new());
            }
            return Err(ProviderError::permanent(format!(
                "secretsmanager: secret {id} has no AWSPENDING version to promote"
            )));
        };
        self.move_label(&sm, id, AWSCURRENT, Some(pending), current)
            .await?;
        self.move_label(&sm, id, AWSPENDING, None, Some(pending))
            .await?;
        Ok(Values::new())
    }

    async fn undo_promote(&self, call: &Call<'_>) -> Result<(), ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let Some(versions) = self.versions(&sm, id).await? else {
            return Ok(());
        };
        let (Some(current), Some(previous)) = (
            versions.with_label(AWSCURRENT),
            versions.with_label(AWSPREVIOUS),
        ) else {
            return Ok(());
        };
        // AWSPENDING on another version than AWSCURRENT: the promotion never took effect, or
        // was undone already. Moving AWSCURRENT to AWSPREVIOUS now would promote the delivered
        // value again (a repeated undo) or an older one (an undo of a promote that failed).
        let pending = versions.with_label(AWSPENDING);
        if pending.is_some_and(|p| p != current) {
            return Ok(());
        }
        // Back to before: the delivered version pending again, then the old one current. In
        // this order an interrupted undo leaves a half-done promotion, which a repeated undo
        // finishes.
        self.move_label(&sm, id, AWSPENDING, Some(current), pending)
            .await?;
        self.move_label(&sm, id, AWSCURRENT, Some(previous), Some(current))
            .await
    }

    /// Removes `AWSPENDING` from the version a deliver step wrote.
    async fn undo_deliver(&self, call: &Call<'_>) -> Result<(), ProviderError> {
        let target = target_of(call)?;
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let Some(versions) = self.versions(&sm, id).await? else {
            return Ok(());
        };
        if let Some(pending) = versions.with_label(AWSPENDING)
            && (0..MAX_DELIVERIES).any(|n| request_token(call.idempotency_key, n) == pending)
        {
            self.move_label(&sm, id, AWSPENDING, None, Some(pending))
                .await?;
        }
        Ok(())
    }

    /// Captures the value a secret holds now (`AWSCURRENT`), with the `VersionId` it was read
    /// from: after a crash, [`Provider::reread`] reads that same version again.
    async fn read_current(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let target = target_of(call)?;
        let id = target.secret_id;
        let (doc, version) = self
            .read_pinned(&target, None, Some(AWSCURRENT))
            .await?
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "secretsmanager: secret {id} has no AWSCURRENT value"
                ))
            })?;
        Ok([
            (
                "value".to_owned(),
                Value::Secret(Self::captured(&target, doc)?),
            ),
            ("version".to_owned(), Value::Plain(version)),
        ]
        .into())
    }

    /// A secret's value with the `VersionId` it came from.
    async fn read_pinned(
        &self,
        target: &SecretTarget<'_>,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<(SecretString, String)>, ProviderError> {
        let sm = self.secrets(target.region);
        match sm
            .get_secret_value()
            .secret_id(target.secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string().map(|s| {
                (
                    SecretString::from(s.to_owned()),
                    out.version_id().unwrap_or_default().to_owned(),
                )
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sdk_error("secretsmanager:GetSecretValue", &e)),
        }
    }

    /// The captured value in a secret's document: the whole string with `field:` (the
    /// consumer stores that field alone), else the only string of a JSON object, else the
    /// document itself.
    fn captured(
        target: &SecretTarget<'_>,
        doc: SecretString,
    ) -> Result<SecretString, ProviderError> {
        if target.field.is_some() {
            return Ok(doc);
        }
        match serde_json::from_str::<serde_json::Value>(doc.expose_secret()) {
            Ok(serde_json::Value::Object(map)) => {
                let mut strings = map.into_iter().filter_map(|(_, v)| match v {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                });
                match (strings.next(), strings.next()) {
                    (Some(s), None) => Ok(SecretString::from(s)),
                    _ => Err(ProviderError::permanent(format!(
                        "secretsmanager: secret {} holds a JSON document with several fields; set `field:` on the consumer to say which one is the value",
                        target.secret_id
                    ))),
                }
            }
            _ => Ok(doc),
        }
    }

    /// The document a deliver step wrote, if it is still pending (or was promoted).
    async fn read_delivered(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        let Some(target) = secret_target(call.step) else {
            return Ok(None);
        };
        let sm = self.secrets(target.region);
        let id = target.secret_id;
        let Some(versions) = self.versions(&sm, id).await? else {
            return Ok(None);
        };
        // AWSPENDING if it is ours; otherwise the newest of our versions that still exists.
        let ours: Vec<String> = (0..MAX_DELIVERIES)
            .map(|n| request_token(call.idempotency_key, n))
            .filter(|t| versions.has(t))
            .collect();
        let version = match versions.with_label(AWSPENDING) {
            Some(p) if ours.iter().any(|t| t == p) => p.to_owned(),
            _ => match ours.last() {
                Some(t) => t.clone(),
                None => return Ok(None),
            },
        };
        let Some(doc) = self.read_version(&sm, id, Some(&version), None).await? else {
            return Ok(None);
        };
        if let Some(field) = target.field {
            return Ok(Some([(field.to_owned(), doc)].into()));
        }
        match serde_json::from_str::<serde_json::Value>(doc.expose_secret()) {
            Ok(serde_json::Value::Object(map)) => Ok(Some(
                map.into_iter()
                    .filter_map(|(k, v)| match v {
                        serde_json::Value::String(s) => Some((k, SecretString::from(s))),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => Err(ProviderError::permanent(format!(
                "secretsmanager: the delivered version of {id} is not a JSON object"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The trait

fn unknown(call: &Call<'_>) -> ProviderError {
    ProviderError::permanent(format!(
        "step {}: the AWS provider does not handle action {}",
        call.step.id, call.step.action
    ))
}

#[async_trait]
impl Provider for AwsProvider {
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        self.say_if_no_region();
        let Some(target) = secret_target(step) else {
            return Ok(());
        };
        let sm = self.secrets(target.region);
        match self.versions(&sm, target.secret_id).await? {
            Some(_) => Ok(()),
            // The delivery creates it, before its promote runs; a capture needs it now.
            None if target.create && step.action != "consumer.read_current" => Ok(()),
            None => Err(self.no_secret(&target)),
        }
    }

    fn retry_budget(&self, step: &PlannedStep) -> Option<Duration> {
        // A new IAM key is eventually consistent: STS may refuse it for a while after
        // CreateAccessKey. AWS documents no bound; minutes have been seen.
        (step.action == "aws.sts.get_caller_identity").then_some(self.propagation_wait)
    }

    fn supports(&self, step: &PlannedStep) -> Result<(), String> {
        self.say_if_no_region();
        match step.action.as_str() {
            "aws.iam.ensure_key_slot"
            | "aws.iam.create_access_key"
            | "aws.iam.deactivate_access_key"
            | "aws.iam.get_access_key_last_used"
            | "aws.iam.delete_access_key"
            | "aws.sts.get_caller_identity" => Ok(()),
            "consumer.deliver" | "consumer.promote" | "consumer.read_current"
                if secret_target(step).is_some() =>
            {
                Ok(())
            }
            a if a.starts_with("consumer.") => Err(format!(
                "the AWS provider writes only to aws_secrets_manager consumers, not to {}",
                step.consumer_label.as_deref().unwrap_or("this target")
            )),
            a => Err(format!("the AWS provider does not handle action {a}")),
        }
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        self.say_if_no_region();
        match call.step.action.as_str() {
            "aws.iam.ensure_key_slot" => self.ensure_key_slot(call).await,
            "aws.iam.create_access_key" => self.create_access_key(call).await,
            "aws.iam.deactivate_access_key" => self.deactivate(call).await,
            "aws.iam.get_access_key_last_used" => self.last_used(call).await,
            "aws.iam.delete_access_key" => self.delete_selected(call).await,
            "aws.sts.get_caller_identity" => self.caller_identity(call).await,
            "consumer.deliver" => self.deliver(call).await,
            "consumer.promote" => self.promote(call).await,
            "consumer.read_current" => self.read_current(call).await,
            _ => Err(unknown(call)),
        }
    }

    /// - create: deletes the key it made (by its `access_key_id` output; if the outputs are
    ///   lost, every key not in the step's marker) and drops the marker;
    /// - deactivate: reactivates the keys it deactivated (its `deactivated` output; without it,
    ///   the keys its marker names);
    /// - deliver: removes `AWSPENDING` from the version it wrote;
    /// - promote: moves `AWSCURRENT` back to the `AWSPREVIOUS` version, if the promotion took
    ///   effect and was not undone yet (`AWSPENDING` on no other version than `AWSCURRENT`);
    /// - reads, verification, making room and deleting: nothing to undo.
    async fn undo(&self, call: &Call<'_>, outputs: &Values) -> Result<(), ProviderError> {
        match call.step.action.as_str() {
            "aws.iam.create_access_key" => {
                let user = required(call, "user_name")?;
                if let Some(Value::Plain(key)) = outputs.get("access_key_id") {
                    self.delete_key(user, key).await?;
                    self.drop_markers_or_warn(call, user, vec![marker_key(call.idempotency_key)])
                        .await;
                    Ok(())
                } else {
                    self.remove_created(call, true).await.map(|_| ())
                }
            }
            "aws.iam.deactivate_access_key" => {
                let user = required(call, "user_name")?;
                let keys: Vec<String> = match outputs.get("deactivated") {
                    Some(Value::Plain(s)) => s.split_whitespace().map(str::to_owned).collect(),
                    // Failed part-way: what it set out to turn off (never a key that was off).
                    _ => self.deactivation(call).await?.unwrap_or_default(),
                };
                for k in keys {
                    self.set_status(user, &k, StatusType::Active).await?;
                }
                // Undone: nothing is left for the marker to make exact.
                let marker = prefixed_key(OFF_PREFIX, call.idempotency_key);
                self.drop_markers_or_warn(call, user, vec![marker]).await;
                Ok(())
            }
            "consumer.deliver" => self.undo_deliver(call).await,
            "consumer.promote" => self.undo_promote(call).await,
            _ => Ok(()),
        }
    }

    /// - create: deletes every key the lost call made (the marker rule above) → not done;
    /// - deactivate: done when every key its marker names is off (no marker: when no selected
    ///   key is active), reporting those keys;
    /// - delete: done when none of the selected keys is still present;
    /// - everything else is safe to run again (deliver by its request token, promote finds
    ///   nothing pending) → not done.
    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        match call.step.action.as_str() {
            "aws.iam.create_access_key" => {
                self.remove_created(call, true).await?;
                Ok(Reconciled::NotDone)
            }
            "aws.iam.deactivate_access_key" => {
                let keys = self.deactivation_targets(call).await?;
                match self.deactivation(call).await? {
                    // Started: done when every key it set out to turn off is off (or gone).
                    Some(planned) => {
                        if keys.iter().any(|k| k.active && planned.contains(&k.id)) {
                            Ok(Reconciled::NotDone)
                        } else {
                            let off: Vec<String> = keys
                                .into_iter()
                                .map(|k| k.id)
                                .filter(|id| planned.contains(id))
                                .collect();
                            let unknown = unknown_keys(call, &off)?;
                            Ok(Reconciled::Done(plain(&[
                                ("deactivated", off.join(" ")),
                                ("unknown_keys", unknown.join(" ")),
                            ])))
                        }
                    }
                    // Never started: done only if there was nothing to do.
                    None if keys.iter().any(|k| k.active) => Ok(Reconciled::NotDone),
                    None => Ok(Reconciled::Done(plain(&[
                        ("deactivated", String::new()),
                        ("unknown_keys", String::new()),
                    ]))),
                }
            }
            "aws.iam.delete_access_key" => {
                if self.selected_keys(call).await?.is_empty() {
                    Ok(Reconciled::Done(plain(&[("deleted", String::new())])))
                } else {
                    Ok(Reconciled::NotDone)
                }
            }
            _ => Ok(Reconciled::NotDone),
        }
    }

    async fn reread(
        &self,
        call: &Call<'_>,
        outputs: &Values,
    ) -> Result<Option<Values>, ProviderError> {
        let Some(version) = outputs
            .get("version")
            .map(Value::expose)
            .filter(|v| !v.is_empty())
        else {
            return Ok(None);
        };
        if call.step.action != "consumer.read_current" {
            return Ok(None);
        }
        let target = target_of(call)?;
        let Some((doc, _)) = self.read_pinned(&target, Some(version), None).await? else {
            return Ok(None);
        };
        Ok(Some(
            [(
                "value".to_owned(),
                Value::Secret(Self::captured(&target, doc)?),
            )]
            .into(),
        ))
    }

    /// Drops the step's write-ahead marker (create, deactivate): nobody will resume the run, so
    /// nothing is left for it to make exact.
    async fn abandon(&self, call: &Call<'_>) -> Result<(), ProviderError> {
        let prefix = match call.step.action.as_str() {
            "aws.iam.create_access_key" => MARKER_PREFIX,
            "aws.iam.deactivate_access_key" => OFF_PREFIX,
            _ => return Ok(()),
        };
        let user = required(call, "user_name")?;
        self.drop_markers(user, vec![prefixed_key(prefix, call.idempotency_key)])
            .await
    }

    async fn read_back(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        if call.step.action != "consumer.deliver" {
            return Ok(None);
        }
        self.read_delivered(call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_wait_durations() {
        for (text, want) in [
            ("30", Some(30_000)),
            ("30s", Some(30_000)),
            (" 2m ", Some(120_000)),
            ("500ms", Some(500)),
            ("1h", Some(3_600_000)),
            ("", None),
            ("2 weeks", None),
            ("-1s", None),
        ] {
            assert_eq!(
                parse_duration(text).map(|d| d.as_millis()),
                want,
                "{text:?}"
            );
        }
    }
}
