//! The action registry: every named action a runbook step may use, with its inputs, outputs,
//! the provider call it makes and what it does to the world. Runbooks are checked against this
//! table, and the plan prints its `call` column so an operator sees every API call in advance.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::inventory::Consumer;

/// Where a step sits in a credential's rotation. The plan orders phases per mode:
/// rotate first (drill): prepare → mint → deliver → verify → revoke → cleanup;
/// revoke first (incident): prepare → revoke → mint → deliver → verify → cleanup.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Read-only look-ups (capture what the old value is, check headroom).
    Prepare,
    /// Disable or delete the old value.
    Revoke,
    /// Create the new value.
    Mint,
    /// Hand the new value to every consumer.
    Deliver,
    /// Prove the new value works (and switch consumers over to it).
    Verify,
    /// Remove what is left of the old value, record evidence.
    Cleanup,
}

impl Phase {
    pub const ALL: [Self; 6] = [
        Self::Prepare,
        Self::Revoke,
        Self::Mint,
        Self::Deliver,
        Self::Verify,
        Self::Cleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Revoke => "revoke",
            Self::Mint => "mint",
            Self::Deliver => "deliver",
            Self::Verify => "verify",
            Self::Cleanup => "cleanup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The run mode chosen by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Rotate first: nothing is revoked before the new value is verified.
    Drill,
    /// Revoke first: the exposed value is disabled before anything else.
    Incident,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drill => "drill",
            Self::Incident => "incident",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "drill" | "scheduled" => Some(Self::Drill),
            "incident" => Some(Self::Incident),
            _ => None,
        }
    }
}

/// What an action does to the world; used to check phases and to mark the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Looks only.
    Read,
    /// Creates a new credential value.
    Create,
    /// Writes a value to a consumer.
    Write,
    /// Disables a value, reversibly.
    Disable,
    /// Deletes or revokes a value; cannot be undone.
    Delete,
    /// Proves a value works.
    Verify,
    /// A human does it.
    Human,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Write => "write",
            Self::Disable => "disable",
            Self::Delete => "delete",
            Self::Verify => "verify",
            Self::Human => "human",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    /// May receive a secret step output (only in memory, never in the plan).
    pub secret: bool,
    /// Narrows what a call touches (which key to delete, which key to spare). Left out of the
    /// plan it means "not narrowed"; present, it must resolve to a plain, non-empty value at
    /// run time, or the step stops: a lost narrowing value must never widen a destructive call.
    pub narrows: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub name: &'static str,
    /// Secret outputs stay in memory and are never stored or printed.
    pub secret: bool,
}

#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub provider: &'static str,
    /// The provider call, as an operator would recognize it.
    pub call: &'static str,
    pub effect: Effect,
    pub inputs: &'static [Param],
    pub outputs: &'static [Output],
    /// Takes any input names (e.g. the fields of the document delivered to a consumer).
    pub open_inputs: bool,
    /// Runs once per consumer of the credential (`for_each: consumer`).
    pub per_consumer: bool,
    /// Waits for an operator; needs `manual:` instructions in the runbook.
    pub manual: bool,
}

const fn p(name: &'static str) -> Param {
    Param {
        name,
        required: true,
        secret: false,
        narrows: false,
    }
}
const fn o(name: &'static str) -> Param {
    Param {
        name,
        required: false,
        secret: false,
        narrows: false,
    }
}
/// An optional selector: narrows which values a call touches (see [`Param::narrows`]).
const fn n(name: &'static str) -> Param {
    Param {
        name,
        required: false,
        secret: false,
        narrows: true,
    }
}
const fn s(name: &'static str) -> Param {
    Param {
        name,
        required: true,
        secret: true,
        narrows: false,
    }
}
/// An optional input that may receive a secret step output.
const fn so(name: &'static str) -> Param {
    Param {
        name,
        required: false,
        secret: true,
        narrows: false,
    }
}
const fn out(name: &'static str) -> Output {
    Output {
        name,
        secret: false,
    }
}
const fn secret(name: &'static str) -> Output {
    Output { name, secret: true }
}

macro_rules! action {
    ($name:literal, $provider:literal, $call:literal, $effect:ident, [$($i:expr),*], [$($o:expr),*]) => {
        ActionSpec {
            name: $name,
            provider: $provider,
            call: $call,
            effect: Effect::$effect,
            inputs: &[$($i),*],
            outputs: &[$($o),*],
            open_inputs: false,
            per_consumer: false,
            manual: false,
        }
    };
}

/// Every action a runbook may name.
pub static ACTIONS: &[ActionSpec] = &[
    // AWS IAM / STS
    action!(
        "aws.iam.ensure_key_slot",
        "aws",
        "iam:ListAccessKeys; at the 2-key limit, iam:DeleteAccessKey of an inactive untracked key (refuses if both are active)",
        Write,
        [p("user_name"), n("keep_access_key_id")],
        [out("free_slots"), out("access_key_ids")]
    ),
    action!(
        "aws.iam.create_access_key",
        "aws",
        "iam:CreateAccessKey",
        Create,
        [p("user_name"), o("existing_access_key_ids")],
        [out("access_key_id"), secret("secret_access_key")]
    ),
    action!(
        "aws.iam.deactivate_access_key",
        "aws",
        "iam:UpdateAccessKey Status=Inactive",
        Disable,
        [
            p("user_name"),
            n("access_key_id"),
            n("except_access_key_id")
        ],
        [out("deactivated"), out("unknown_keys")]
    ),
    action!(
        "aws.iam.get_access_key_last_used",
        "aws",
        "iam:GetAccessKeyLastUsed",
        Read,
        [
            p("user_name"),
            n("access_key_id"),
            n("except_access_key_id")
        ],
        [out("last_used_date"), out("last_used_service")]
    ),
    action!(
        "aws.iam.delete_access_key",
        "aws",
        "iam:DeleteAccessKey",
        Delete,
        [
            p("user_name"),
            n("access_key_id"),
            n("except_access_key_id")
        ],
        [out("deleted")]
    ),
    action!(
        "aws.sts.get_caller_identity",
        "aws",
        "sts:GetCallerIdentity signed with the new key",
        Verify,
        [p("access_key_id"), s("secret_access_key"), o("region")],
        [out("arn"), out("account")]
    ),
    // GCP IAM
    action!(
        "gcp.iam.list_keys",
        "gcp",
        "GET iam/v1/projects/{project}/serviceAccounts/{sa}/keys?keyTypes=USER_MANAGED (refuses at 10 keys)",
        Read,
        [p("project"), p("service_account"), n("key_id")],
        [
            out("key_ids"),
            out("enabled_key_ids"),
            out("unknown_keys"),
            out("listed_at")
        ]
    ),
    action!(
        "gcp.iam.create_key",
        "gcp",
        "POST iam/v1/projects/{project}/serviceAccounts/{sa}/keys",
        Create,
        [
            p("project"),
            p("service_account"),
            o("existing_key_ids"),
            o("not_before")
        ],
        [out("key_id"), secret("private_key_data")]
    ),
    action!(
        "gcp.iam.verify_key",
        "gcp",
        "POST {token_uri} (JWT-bearer grant) with a JWT signed by the new key",
        Verify,
        [
            p("project"),
            p("service_account"),
            p("key_id"),
            s("private_key_data")
        ],
        []
    ),
    action!(
        "gcp.iam.disable_key",
        "gcp",
        "POST …/keys/{key_id}:disable (undo: …:enable)",
        Disable,
        [
            p("project"),
            p("service_account"),
            n("key_id"),
            n("except_key_id"),
            o("reason"),
            o("enabled_key_ids")
        ],
        [out("disabled"), out("unknown_keys")]
    ),
    action!(
        "gcp.iam.delete_key",
        "gcp",
        "DELETE …/keys/{key_id}",
        Delete,
        [
            p("project"),
            p("service_account"),
            n("key_id"),
            n("except_key_id")
        ],
        [out("deleted")]
    ),
    // GitHub
    action!(
        "github.user.get",
        "github",
        "GET /user with the new token",
        Verify,
        [s("token"), o("expected_login")],
        [out("login")]
    ),
    action!(
        "github.credentials.revoke",
        "github",
        "POST /credentials/revoke (irreversible)",
        Delete,
        [s("token")],
        []
    ),
    action!(
        "github.app.verify_key",
        "github",
        "GET /app with a JWT signed by the new key",
        Verify,
        [p("app_id"), s("private_key")],
        [out("app_slug")]
    ),
    action!(
        "github.oauth_app.check_secret",
        "github",
        "POST /login/oauth/access_token with a made-up code (GitHub checks the client secret first)",
        Verify,
        [p("client_id"), s("client_secret"), o("expect")],
        [out("secret")]
    ),
    // npm
    action!(
        "npm.tokens.list",
        "npm",
        "GET /-/npm/v1/tokens (every page)",
        Read,
        [p("registry"), p("user"), p("password_env")],
        [out("keys")]
    ),
    action!(
        "npm.tokens.create",
        "npm",
        "POST /-/npm/v1/tokens (password; an OTP if the registry asks)",
        Create,
        [
            p("registry"),
            p("user"),
            p("password_env"),
            o("token_name"),
            o("permission"),
            o("packages"),
            o("scopes"),
            o("expires_days"),
            o("cidr_whitelist"),
            o("existing_keys")
        ],
        [out("key"), secret("token")]
    ),
    action!(
        "npm.whoami",
        "npm",
        "GET /-/whoami with the new token",
        Verify,
        [p("registry"), s("token"), o("expected_user")],
        [out("username")]
    ),
    action!(
        "npm.tokens.delete",
        "npm",
        "DELETE /-/npm/v1/tokens/token/{key} (found by GET /-/npm/v1/tokens when only the value is known)",
        Delete,
        [
            p("registry"),
            p("user"),
            p("password_env"),
            n("key"),
            n("except_key"),
            so("token")
        ],
        [out("deleted")]
    ),
    // Hugging Face
    action!(
        "huggingface.whoami",
        "huggingface",
        "GET /api/whoami-v2 with the new token",
        Verify,
        [s("token"), o("expected_user"), o("expected_role")],
        [out("name"), out("role")]
    ),
    action!(
        "huggingface.credentials.revoke",
        "huggingface",
        "POST /api/credentials/revoke (unauthenticated, irreversible)",
        Delete,
        [s("token")],
        []
    ),
    // Okta / Auth0 / generic OAuth
    action!(
        "okta.create_client_secret",
        "okta",
        "POST /api/v1/apps/{app_id}/credentials/secrets",
        Create,
        [p("domain"), p("app_id"), p("api_token_env"), o("secret_id")],
        [out("secret_id"), secret("client_secret")]
    ),
    action!(
        "okta.deactivate_client_secret",
        "okta",
        "POST /api/v1/apps/{app_id}/credentials/secrets/{secret_id}/lifecycle/deactivate",
        Disable,
        [
            p("domain"),
            p("app_id"),
            p("api_token_env"),
            n("secret_id"),
            n("except_secret_id")
        ],
        [out("deactivated")]
    ),
    action!(
        "okta.delete_client_secret",
        "okta",
        "DELETE /api/v1/apps/{app_id}/credentials/secrets/{secret_id}",
        Delete,
        [
            p("domain"),
            p("app_id"),
            p("api_token_env"),
            n("secret_id"),
            n("except_secret_id")
        ],
        [out("deleted")]
    ),
    action!(
        "auth0.rotate_client_secret",
        "auth0",
        "POST /api/v2/clients/{client_id}/rotate-secret (the old secret stops working at once)",
        Create,
        [p("domain"), p("client_id"), p("api_token_env")],
        [secret("client_secret")]
    ),
    action!(
        "oauth.verify_client_credentials",
        "oauth",
        "POST {token_url} grant_type=client_credentials with the new secret",
        Verify,
        [
            p("token_url"),
            p("client_id"),
            s("client_secret"),
            o("token_auth"),
            o("audience")
        ],
        []
    ),
    // PostgreSQL
    action!(
        "postgres.pick_role",
        "postgres",
        "single: {role}; alternating: of {role} and {alternate_role}, the one not marked active (a `[rekey:active]` tag in the role's comment)",
        Read,
        [
            p("admin_url_env"),
            p("role"),
            o("strategy"),
            o("alternate_role")
        ],
        [out("role"), out("login")]
    ),
    action!(
        "postgres.mark_active",
        "postgres",
        "COMMENT ON ROLE: `[rekey:active]` moves to {role} from the other of {primary_role} and {alternate_role}, in one transaction",
        Write,
        [
            p("admin_url_env"),
            p("role"),
            p("primary_role"),
            p("alternate_role")
        ],
        []
    ),
    action!(
        "postgres.set_password",
        "postgres",
        "ALTER ROLE {role} PASSWORD '<SCRAM-SHA-256 verifier>' (+ LOGIN when revoking first or alternating)",
        Create,
        [p("admin_url_env"), p("role"), o("login")],
        [secret("password")]
    ),
    action!(
        "postgres.disable_login",
        "postgres",
        "ALTER ROLE {role} NOLOGIN",
        Disable,
        [p("admin_url_env"), p("role")],
        []
    ),
    action!(
        "postgres.terminate_sessions",
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {role}",
        Disable,
        [p("admin_url_env"), p("role")],
        [out("terminated")]
    ),
    action!(
        "postgres.verify_login",
        "postgres",
        "connect as {role} with the new password",
        Verify,
        [p("admin_url_env"), p("role"), s("password"), o("database")],
        []
    ),
    // MySQL / MariaDB
    action!(
        "mysql.set_password",
        "mysql",
        "ALTER USER {user}@{host} IDENTIFIED BY <new> (+ ACCOUNT UNLOCK when revoking first)",
        Create,
        [p("admin_url_env"), p("user"), n("host_pattern")],
        [secret("password")]
    ),
    action!(
        "mysql.lock_account",
        "mysql",
        "ALTER USER {user}@{host} ACCOUNT LOCK",
        Disable,
        [p("admin_url_env"), p("user"), n("host_pattern")],
        []
    ),
    action!(
        "mysql.kill_sessions",
        "mysql",
        "KILL CONNECTION for each session of {user}",
        Disable,
        [p("admin_url_env"), p("user")],
        [out("killed")]
    ),
    action!(
        "mysql.verify_login",
        "mysql",
        "connect as {user} with the new password",
        Verify,
        [p("admin_url_env"), p("user"), s("password")],
        []
    ),
    // Consumers
    ActionSpec {
        name: "consumer.deliver",
        provider: "consumer",
        call: "write the new value to the consumer",
        effect: Effect::Write,
        inputs: &[],
        outputs: &[out("version")],
        open_inputs: true,
        per_consumer: true,
        manual: false,
    },
    ActionSpec {
        name: "consumer.promote",
        provider: "consumer",
        call: "make the delivered value current",
        effect: Effect::Write,
        inputs: &[],
        outputs: &[],
        open_inputs: false,
        per_consumer: true,
        manual: false,
    },
    ActionSpec {
        name: "consumer.read_current",
        provider: "consumer",
        call: "read the value a consumer holds now",
        effect: Effect::Read,
        inputs: &[],
        // `version` pins what was read (Secrets Manager's VersionId), so a crash that loses
        // the value in memory can read that same version again, not the new value.
        outputs: &[secret("value"), out("version")],
        open_inputs: false,
        per_consumer: false,
        manual: false,
    },
    // People
    ActionSpec {
        name: "manual.provide_secret",
        provider: "operator",
        call: "an operator creates the value and enters it (hidden prompt or file descriptor)",
        effect: Effect::Human,
        inputs: &[],
        outputs: &[secret("value")],
        open_inputs: false,
        per_consumer: false,
        manual: true,
    },
    ActionSpec {
        name: "manual.confirm",
        provider: "operator",
        call: "an operator does it and confirms",
        effect: Effect::Human,
        inputs: &[],
        outputs: &[],
        open_inputs: false,
        per_consumer: false,
        manual: true,
    },
];

pub fn action(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

impl ActionSpec {
    pub fn input(&self, name: &str) -> Option<&Param> {
        self.inputs.iter().find(|p| p.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The call made for one consumer; `None` when the action has nothing to do there
    /// (only Secrets Manager has staging labels to promote).
    pub fn consumer_call(&self, consumer: &Consumer) -> Option<&'static str> {
        match (self.name, consumer) {
            ("consumer.deliver", Consumer::AwsSecretsManager { .. }) => Some(
                "secretsmanager:PutSecretValue as AWSPENDING (ClientRequestToken from run and step)",
            ),
            ("consumer.deliver", Consumer::GithubActionsSecret { .. }) => {
                Some("GET …/actions/secrets/public-key; PUT …/actions/secrets/{name} (sealed box)")
            }
            ("consumer.deliver", Consumer::EnvFile { .. }) => {
                Some("write the file atomically (temp file, fsync, rename)")
            }
            ("consumer.promote", Consumer::AwsSecretsManager { .. }) => {
                Some("secretsmanager:UpdateSecretVersionStage AWSCURRENT (old becomes AWSPREVIOUS)")
            }
            ("consumer.read_current", Consumer::AwsSecretsManager { .. }) => {
                Some("secretsmanager:GetSecretValue VersionStage=AWSCURRENT")
            }
            ("consumer.read_current", Consumer::EnvFile { .. }) => Some("read the file"),
            ("consumer.promote" | "consumer.read_current", _) => None,
            _ => Some(self.call),
        }
    }
}
