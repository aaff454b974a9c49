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
//! IAM and STS are in `aws/iam.rs` (with how a key whose creation was lost is found); Secrets
//! Manager, with its staging labels, in `aws/secrets.rs`.
//!
//! [`ErrorKind::RateLimited`]: rekey_engine::ErrorKind::RateLimited

use std::collections::{BTreeMap, BTreeSet};
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
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::StatusType;
use aws_smithy_http_client::tls;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::PlannedStep;
use rekey_spec::Consumer;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::inputs::selector;

mod iam;
mod secrets;

use iam::{marker_key, prefixed_key};

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
