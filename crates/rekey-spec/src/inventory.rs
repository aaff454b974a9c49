//! The inventory: hosts, services and credentials, read from `inventory/*.yaml`.
//!
//! Reading happens in two passes, as in ripgrep's low/high args: the YAML is deserialized into
//! `Raw*` types that mirror the file (with spans), then [`check`] turns them into the types the
//! planner trusts: ids unique across files, every reference resolved, kind fields present and
//! well-formed, dates valid, and no value that looks like a secret.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::civil::Date;
use marked_yaml::{Node, Spanned};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Location, SourceFile, SpecError, SpecErrors};
use crate::kind::{CredentialKind, FieldSpec, FieldType, HostKind, Item, kind_names};
use crate::yaml;

// ---------------------------------------------------------------------------------------------
// Raw types: the file as written. Their `JsonSchema` derives are the inventory's JSON Schema
// (`rekey schema inventory`, `crate::schema`): a field added here is in the schema too, and
// its doc comment is the description editors show.

type S = Spanned<String>;

/// A machine or runner group where code runs, and so where credential values are present.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Host")]
pub(crate) struct RawHost {
    /// The host's id (letters, digits, `-`, `_`, `.`), unique among hosts; services'
    /// `built_on` and credentials' `present_on` name it.
    #[schemars(schema_with = "crate::schema::id")]
    id: S,
    /// What kind of machine it is.
    #[schemars(with = "HostKind")]
    kind: S,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
}

/// A service: what it is built from, where it is built, what it publishes.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Service")]
pub(crate) struct RawService {
    /// The service's id (letters, digits, `-`, `_`, `.`), unique among services; credentials'
    /// `used_by` names it.
    #[schemars(schema_with = "crate::schema::id")]
    id: S,
    /// The team or person who owns it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    owner: Option<S>,
    /// SBOMs and lockfiles the service is built from, relative to this file (`CycloneDX` or
    /// SPDX JSON, `package-lock.json`, `pnpm-lock.yaml`, `yarn.lock`, `poetry.lock`, `uv.lock`,
    /// `Cargo.lock`, `requirements.txt`; the format is told by the content): `rekey incident`
    /// finds compromised packages in them.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    sboms: Vec<S>,
    /// The hosts where it is built or run: a compromised package there exposes the
    /// credentials present on them.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    built_on: Vec<S>,
    /// The packages it publishes to a registry.
    #[serde(default)]
    publishes: Vec<RawPublish>,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
}

/// A package a service publishes: `{ registry: npm, package: "@acme/ui", trusted_publishing: true }`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Publish")]
pub(crate) struct RawPublish {
    /// The registry it is published to.
    #[schemars(with = "Registry")]
    registry: S,
    /// The package's name there (npm: `name` or `@scope/name`; PyPI: a project name), listed
    /// once per registry.
    #[schemars(with = "String")]
    package: S,
    /// Published through trusted publishing (OIDC from CI, no long-lived token). `rekey lint`
    /// names the tokens that could still publish it without provenance.
    #[serde(default)]
    trusted_publishing: bool,
}

// Kind-specific fields (the kind's field table in `kind.rs`) are split off before serde reads
// this struct.
/// A credential: where it is, who uses it, where its values go; never its value. Besides these
/// fields each kind takes its own (`user_name`, `role`, …).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Credential", transform = crate::schema::credential_kinds)]
pub(crate) struct RawCredential {
    /// The credential's id (letters, digits, `-`, `_`, `.`), unique among credentials.
    #[schemars(schema_with = "crate::schema::id")]
    id: S,
    /// The credential kind: it decides the kind-specific fields and the runbook.
    #[schemars(schema_with = "crate::schema::credential_kind")]
    kind: S,
    /// The team or person who owns it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    owner: Option<S>,
    /// The services that use it (their ids).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    used_by: Vec<S>,
    /// The hosts where its value is present (their ids): a compromised package built or run
    /// there exposes it.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    present_on: Vec<S>,
    /// The credential whose access this one's rotation uses (the GitHub token that writes its
    /// Actions secrets, the admin login that sets its password): steps marked `uses_helper`
    /// and deliveries wait until the helper's new value is verified.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    rotate_with: Option<S>,
    /// How often it must be rotated.
    #[serde(default)]
    policy: Option<RawPolicy>,
    /// The day of the last rotation (YYYY-MM-DD); with `policy`, when the next is due.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::date")]
    last_rotated: Option<S>,
    /// The places that receive every new value.
    #[serde(default)]
    delivered_to: Vec<RawConsumer>,
    /// The environment variable holding the GitHub token that writes this credential's Actions
    /// secrets (a consumer's own `token_env` wins); its name, never its value.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::token_env")]
    token_env: Option<S>,
    /// Free text.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    description: Option<S>,
}

/// One find of `rekey discover`, in a `discovered:` section (a `discovered-<host>.yaml` file it
/// wrote): with `credential`, the host is added to that credential's `present_on`; without, a
/// draft awaiting review (`rekey lint`'s `discovered-draft`). Never a value: its public ids and
/// keyed fingerprint only.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Discovered")]
pub(crate) struct RawDiscovered {
    /// The host it was found on (its id).
    #[schemars(with = "String")]
    host: S,
    /// Where on that host: a file path and line, or an environment variable.
    #[schemars(with = "String")]
    source: S,
    /// The inventory kind its format says it is.
    #[schemars(with = "String")]
    kind: S,
    /// The credential it is, once confirmed (a draft leaves it out).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    credential: Option<S>,
    /// How it was matched: a public id or the keyed fingerprint.
    #[serde(default)]
    matched_by: Option<String>,
    /// The keyed fingerprint of the value (`hmac-sha256:KID:HEX`), never the value.
    #[serde(default)]
    fingerprint: Option<String>,
    /// Free text.
    #[serde(default)]
    note: Option<String>,
    /// Public identifiers (access key id, registry, login, …).
    #[serde(default)]
    ids: BTreeMap<String, String>,
}

/// The fields every credential takes, whatever its kind: [`RawCredential`]'s (a test holds the
/// two together).
pub(crate) const COMMON_FIELDS: &[&str] = &[
    "id",
    "kind",
    "owner",
    "used_by",
    "present_on",
    "rotate_with",
    "policy",
    "last_rotated",
    "delivered_to",
    "token_env",
    "description",
];

/// The keys of an inventory file (the schema's `InventoryFile` has the same: a test holds the
/// two together).
pub(crate) const TOP_LEVEL_KEYS: [&str; 4] = ["hosts", "services", "credentials", "discovered"];

/// Rotation policy.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Policy")]
pub(crate) struct RawPolicy {
    /// The most days a value may live: at that age the credential is due (`rekey drill --due`,
    /// `rekey lint`).
    #[schemars(with = "u32", range(min = 1))]
    max_age_days: Spanned<u32>,
}

/// A place that receives every new value: exactly one of `aws_secrets_manager`,
/// `github_actions_secret` and `env_file`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Consumer", extend("minProperties" = 1, "maxProperties" = 1))]
pub(crate) struct RawConsumer {
    /// An AWS Secrets Manager secret: the new value is staged as `AWSPENDING`, then promoted to
    /// `AWSCURRENT` once verified.
    #[serde(default)]
    aws_secrets_manager: Option<RawSecretsManager>,
    /// A GitHub Actions secret of a repository, an environment or an organization (sealed
    /// with the scope's public key; write-only).
    #[serde(default)]
    github_actions_secret: Option<RawActionsSecret>,
    /// A `KEY=value` line of an env file, rewritten atomically.
    #[serde(default)]
    env_file: Option<RawEnvFile>,
}

/// An AWS Secrets Manager secret.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SecretsManager")]
pub(crate) struct RawSecretsManager {
    /// The secret's name or ARN.
    #[schemars(with = "String")]
    secret_id: S,
    /// Its region (default: the AWS configuration's).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    region: Option<S>,
    /// Store only this field of the new value's document (e.g. `SecretAccessKey`), not the
    /// whole JSON document.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    field: Option<S>,
    /// Create the secret if it does not exist (otherwise a missing secret stops the run before
    /// anything changes: a mistyped id must not receive the new value).
    #[serde(default)]
    create: bool,
}

/// A GitHub Actions secret: `repo`, `org`, or `repo` with `environment`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ActionsSecret", transform = crate::schema::actions_secret_scope)]
pub(crate) struct RawActionsSecret {
    /// A repository secret (or, with `environment`, an environment's): OWNER/NAME.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::repo")]
    repo: Option<S>,
    /// An organization secret: the organization's login.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    org: Option<S>,
    /// The deployment environment of `repo` whose secret it is.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    environment: Option<S>,
    /// The secret's name.
    #[schemars(with = "String")]
    name: S,
    /// Store only this field of the new value's document (e.g. `AccessKeyId`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    field: Option<S>,
    /// Organization secrets: which repositories see it (absent: as the secret is now, `private`
    /// if new).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::visibility")]
    visibility: Option<S>,
    /// With `visibility: selected`: the repositories that see it (`web` or `acme/web`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    selected_repositories: Option<Vec<S>>,
    /// The environment variable holding the token that writes this secret (instead of the
    /// credential's `token_env`, `GITHUB_TOKEN` or a GitHub App installation); its name, never
    /// its value.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::token_env")]
    token_env: Option<S>,
}

/// A `KEY=value` line of an env file.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "EnvFile")]
pub(crate) struct RawEnvFile {
    /// The file; a relative path is resolved against this inventory file's folder.
    #[schemars(with = "String", length(min = 1))]
    path: S,
    /// The variable's name in the file.
    #[schemars(with = "String")]
    key: S,
    /// Write only this field of the new value's document (e.g. `password`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    field: Option<S>,
    /// Create the file if it does not exist.
    #[serde(default)]
    create: bool,
}

// ---------------------------------------------------------------------------------------------
// Checked types: what the planner trusts.

/// A machine or runner group where code runs and credential values are present.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub id: String,
    pub kind: HostKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip)]
    pub location: Location,
}

/// A service: what it is built from (SBOMs, lockfiles), where it is built, what it publishes.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Paths resolved against the inventory file's folder.
    pub sboms: Vec<PathBuf>,
    pub built_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publishes: Vec<Publish>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip)]
    pub location: Location,
}

/// A package registry a service publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Registry {
    /// The public npm registry (registry.npmjs.org).
    Npm,
    /// PyPI. Its trusted publishers are recorded, but no inventory kind is a PyPI token, so
    /// nothing can be found to outrank them.
    Pypi,
}

impl Registry {
    pub const NAMES: &'static [&'static str] = &["npm", "pypi"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pypi => "pypi",
        }
    }
}

/// A package a service publishes, and whether through trusted publishing (OIDC from CI, no
/// long-lived token).
#[derive(Debug, Clone, Serialize)]
pub struct Publish {
    pub registry: Registry,
    pub package: String,
    pub trusted_publishing: bool,
    /// Where `package:` was written.
    #[serde(skip)]
    pub location: Location,
}

/// Where a GitHub Actions secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionsScope {
    Repo {
        repo: String,
    },
    Org {
        org: String,
        /// `all`, `private` or `selected`; absent: as the secret is now (`private` if new).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visibility: Option<String>,
        /// With `visibility: selected`: repository names (`web` or `acme/web`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        selected_repositories: Vec<String>,
    },
    Environment {
        repo: String,
        environment: String,
    },
}

/// A place that receives every new value of a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Consumer {
    AwsSecretsManager {
        secret_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Store only this field of the value document instead of the whole JSON document.
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// Create the secret if it does not exist (otherwise a missing one stops the run
        /// before anything changes: a typo'd id must not receive the new value).
        #[serde(default, skip_serializing_if = "is_false")]
        create: bool,
    },
    GithubActionsSecret {
        #[serde(flatten)]
        scope: ActionsScope,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// The environment variable holding the token that writes this secret (instead of
        /// `GITHUB_TOKEN` or a GitHub App installation); its name, never its value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_env: Option<String>,
    },
    EnvFile {
        /// Absolute: a relative path in the inventory is resolved against the inventory file.
        path: String,
        key: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        /// Create the file if it does not exist.
        #[serde(default, skip_serializing_if = "is_false")]
        create: bool,
    },
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

impl Consumer {
    /// The consumer type's name as written in the inventory.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::AwsSecretsManager { .. } => "aws_secrets_manager",
            Self::GithubActionsSecret { .. } => "github_actions_secret",
            Self::EnvFile { .. } => "env_file",
        }
    }

    /// A short human label: `secretsmanager:prod/web/aws`, `actions:acme/web/AWS_KEY`.
    pub fn label(&self) -> String {
        match self {
            Self::AwsSecretsManager { secret_id, .. } => format!("secretsmanager:{secret_id}"),
            Self::GithubActionsSecret { scope, name, .. } => match scope {
                ActionsScope::Repo { repo } => format!("actions:{repo}/{name}"),
                ActionsScope::Org { org, .. } => format!("actions:org/{org}/{name}"),
                ActionsScope::Environment { repo, environment } => {
                    format!("actions:{repo}@{environment}/{name}")
                }
            },
            Self::EnvFile { path, key, .. } => format!("env:{path}#{key}"),
        }
    }

    /// The consumer's fields as template variables (`{{ consumer.secret_id }}`).
    pub fn field(&self, name: &str) -> Option<String> {
        let v = match (self, name) {
            (_, "type") => Some(self.type_name()),
            (_, "label") => return Some(self.label()),
            (Self::AwsSecretsManager { secret_id, .. }, "secret_id") => Some(secret_id.as_str()),
            (Self::AwsSecretsManager { region, .. }, "region") => region.as_deref(),
            (Self::GithubActionsSecret { name, .. }, "name") => Some(name.as_str()),
            (Self::EnvFile { path, .. }, "path") => Some(path.as_str()),
            (Self::EnvFile { key, .. }, "key") => Some(key.as_str()),
            (
                Self::AwsSecretsManager { field, .. }
                | Self::GithubActionsSecret { field, .. }
                | Self::EnvFile { field, .. },
                "field",
            ) => field.as_deref(),
            _ => None,
        };
        v.map(str::to_owned)
    }

    /// Whether the current value can be read back (GitHub Actions secrets are write-only).
    pub fn readable(&self) -> bool {
        !matches!(self, Self::GithubActionsSecret { .. })
    }

    /// Whether a delivery can be taken back. Secrets Manager stages a new value as
    /// `AWSPENDING` and keeps the old one current; an env file is overwritten and a GitHub
    /// Actions secret is write-only. Delivering to a consumer that cannot be taken back is a
    /// point of no return: from then on the new value may be live, so it is never deleted.
    pub fn reversible(&self) -> bool {
        matches!(self, Self::AwsSecretsManager { .. })
    }
}

/// Rotation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub max_age_days: u32,
}

/// A credential: where it is, who uses it, where its values go. Never its value.
#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    pub id: String,
    pub kind: CredentialKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub used_by: Vec<String>,
    pub present_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_with: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotated: Option<Date>,
    pub delivered_to: Vec<Consumer>,
    /// Kind-specific fields (`user_name`, `role`, …), all plain identifiers.
    pub fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip)]
    pub location: Location,
    #[serde(skip)]
    pub rotate_with_location: Option<Location>,
    #[serde(skip)]
    pub reference_locations: ReferenceLocations,
    /// Where each item of a list field (`packages`, `scopes`) was written, index for index.
    #[serde(skip)]
    pub list_locations: BTreeMap<String, Vec<Location>>,
}

/// Where each `used_by` / `present_on` entry was written, index for index.
#[derive(Debug, Clone, Default)]
pub struct ReferenceLocations {
    pub used_by: Vec<Location>,
    pub present_on: Vec<Location>,
}

impl Credential {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The items of a list field (`packages`, `scopes`), each with where it was written; empty
    /// when the field is absent.
    pub fn list(&self, name: &str) -> Vec<(&str, &Location)> {
        let (Some(joined), Some(locations)) = (self.field(name), self.list_locations.get(name))
        else {
            return Vec::new();
        };
        // Items never hold a comma (checked), so the joined form splits back exactly.
        joined.split(',').zip(locations).collect()
    }

    /// Days since the last rotation, when known.
    pub fn age_days(&self, today: Date) -> Option<i64> {
        let last = self.last_rotated?;
        let span = today.since(last).ok()?;
        Some(i64::from(span.get_days()))
    }

    /// Whether the policy's maximum age has passed.
    pub fn is_due(&self, today: Date) -> bool {
        match (self.policy, self.age_days(today)) {
            (Some(p), Some(age)) => age >= i64::from(p.max_age_days),
            // No record of a rotation: treat as due, the safe answer.
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// A find of `rekey discover` read back from a `discovered:` section (see `RawDiscovered`).
#[derive(Debug, Clone, Serialize)]
pub struct Discovered {
    pub host: String,
    /// Where it was found: `~/.npmrc:3`, `env:GH_TOKEN`.
    pub source: String,
    /// A credential kind, or `unknown`.
    pub kind: String,
    /// The credential it is (confirmed or matched); `None`: a draft awaiting review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<String>,
    /// The installation key's fingerprint of the value (`hmac-sha256:KID:HEX`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Public identifiers: `access_key_id`, `key_id`, `registry`, `login`, …
    pub ids: BTreeMap<String, String>,
    #[serde(skip)]
    pub location: Location,
}

impl Discovered {
    /// Not yet tied to a credential of the inventory.
    pub fn is_draft(&self) -> bool {
        self.credential.is_none()
    }
}

/// The checked inventory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    pub hosts: Vec<Host>,
    pub services: Vec<Service>,
    pub credentials: Vec<Credential>,
    /// What `rekey discover` found on hosts (`discovered:` sections).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discovered: Vec<Discovered>,
    #[serde(skip)]
    credential_index: HashMap<String, usize>,
    #[serde(skip)]
    service_index: HashMap<String, usize>,
    #[serde(skip)]
    host_index: HashMap<String, usize>,
}

impl Inventory {
    pub fn credential(&self, id: &str) -> Option<&Credential> {
        self.credential_index.get(id).map(|&i| &self.credentials[i])
    }

    pub fn credential_index(&self, id: &str) -> Option<usize> {
        self.credential_index.get(id).copied()
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.service_index.get(id).map(|&i| &self.services[i])
    }

    pub fn host(&self, id: &str) -> Option<&Host> {
        self.host_index.get(id).map(|&i| &self.hosts[i])
    }
}

// ---------------------------------------------------------------------------------------------
// Loading.

/// Lists the `*.yaml` / `*.yml` files of a folder, sorted for deterministic output.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, SpecError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        SpecError::new(None, format!("cannot read folder {}: {e}", dir.display()))
            .help("pass the folder with --inventory/--runbooks, or run rekey where ./inventory is")
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

pub(crate) fn read_source(path: &Path) -> Result<Arc<SourceFile>, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::new(None, format!("cannot read {}: {e}", path.display())))?;
    Ok(Arc::new(SourceFile::new(path, text)))
}

/// Reads and checks every inventory file in `dir`.
pub fn load_inventory(dir: &Path) -> Result<Inventory, SpecErrors> {
    let files = yaml_files(dir)?;
    if files.is_empty() {
        return Err(SpecError::new(
            None,
            format!("no inventory files (*.yaml) in {}", dir.display()),
        )
        .into());
    }
    let mut sources = Vec::with_capacity(files.len());
    let mut errors = SpecErrors::default();
    for path in &files {
        match read_source(path) {
            Ok(s) => sources.push(s),
            Err(e) => errors.push(e),
        }
    }
    let inv = parse_inventory(&sources);
    match inv {
        Ok(inv) if errors.is_empty() => Ok(inv),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.0.extend(more.0);
            Err(errors)
        }
    }
}

/// Parses and checks inventory sources already in memory (tests, generated inventories).
pub fn parse_inventory(sources: &[Arc<SourceFile>]) -> Result<Inventory, SpecErrors> {
    let mut errors = SpecErrors::default();
    // YAML parsing dominates for large inventories and files are independent: parse them on
    // all cores, then merge in file order so ids and errors come out deterministically.
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(sources.len())
        .max(1);
    let chunk = sources.len().div_ceil(threads).max(1);
    let parsed: Vec<Vec<(RawInventory, SpecErrors)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .chunks(chunk)
            .map(|files| {
                scope.spawn(move || {
                    files
                        .iter()
                        .map(|file| {
                            let mut raw = RawInventory::default();
                            let errs = read_file(file, &mut raw).err().unwrap_or_default();
                            (raw, errs)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parser threads do not panic"))
            .collect()
    });
    let mut raw = RawInventory::default();
    for (part, errs) in parsed.into_iter().flatten() {
        raw.hosts.extend(part.hosts);
        raw.services.extend(part.services);
        raw.credentials.extend(part.credentials);
        raw.discovered.extend(part.discovered);
        errors.0.extend(errs.0);
    }
    let inventory = check(raw, &mut errors);
    errors.into_result(inventory)
}

struct Located<T> {
    file: Arc<SourceFile>,
    raw: T,
}

/// A credential split into its common part and its kind-specific fields.
struct SplitCredential {
    common: RawCredential,
    /// Where each `delivered_to` entry starts.
    consumer_locations: Vec<Location>,
    /// Kind-specific fields: where the key is, the key, its value.
    extra: Vec<(Location, String, RawValue)>,
}

/// A kind-specific field's value as written: one plain value, or a list of them.
enum RawValue {
    Scalar(Location, String),
    List(Location, Vec<(Location, String)>),
}

#[derive(Default)]
struct RawInventory {
    hosts: Vec<Located<RawHost>>,
    services: Vec<Located<RawService>>,
    credentials: Vec<Located<SplitCredential>>,
    discovered: Vec<Located<(Location, RawDiscovered)>>,
}

fn read_file(file: &Arc<SourceFile>, out: &mut RawInventory) -> Result<(), SpecErrors> {
    let root = yaml::parse(file)?;
    let mut errors = SpecErrors::default();
    yaml::refuse_secrets(file, &root, &mut errors);
    let Some(map) = root.as_mapping() else {
        return Err(SpecError::at(
            Location::from_span(file, root.span()),
            "expected a mapping with `hosts`, `services` and `credentials`",
        )
        .into());
    };
    for (key, value) in map.iter() {
        let key_loc = Location::from_span(file, key.span());
        let Some(items) = value.as_sequence() else {
            if value.as_scalar().is_some_and(|s| s.as_str().is_empty()) {
                continue; // `credentials:` with nothing under it
            }
            errors.push(SpecError::at(
                Location::from_span(file, value.span()),
                format!("`{}` must be a list", key.as_str()),
            ));
            continue;
        };
        match key.as_str() {
            "hosts" => {
                for item in items.iter() {
                    match yaml::from_node::<RawHost>(file, item, "host") {
                        Ok(raw) => out.hosts.push(Located {
                            file: Arc::clone(file),
                            raw,
                        }),
                        Err(e) => errors.push(e),
                    }
                }
            }
            "services" => {
                for item in items.iter() {
                    match yaml::from_node::<RawService>(file, item, "service") {
                        Ok(raw) => out.services.push(Located {
                            file: Arc::clone(file),
                            raw,
                        }),
                        Err(e) => errors.push(e),
                    }
                }
            }
            "credentials" => {
                for item in items.iter() {
                    match split_credential(file, item) {
                        Ok(raw) => out.credentials.push(Located {
                            file: Arc::clone(file),
                            raw,
                        }),
                        Err(e) => errors.push(e),
                    }
                }
            }
            "discovered" => {
                for item in items.iter() {
                    match yaml::from_node::<RawDiscovered>(file, item, "discovered") {
                        Ok(raw) => out.discovered.push(Located {
                            file: Arc::clone(file),
                            raw: (Location::from_span(file, raw.host.span()), raw),
                        }),
                        Err(e) => errors.push(e),
                    }
                }
            }
            other => errors.push(
                SpecError::at(key_loc, format!("unknown top-level key `{other}`"))
                    .label("unknown key")
                    .help(format!(
                        "expected one of {}",
                        TOP_LEVEL_KEYS.map(|k| format!("`{k}`")).join(", ")
                    )),
            ),
        }
    }
    errors.into_result(())
}

/// Splits a credential mapping into the common fields (read by serde, unknown ones rejected
/// there) and the kind-specific ones (checked against the kind once it is known).
fn split_credential(file: &Arc<SourceFile>, node: &Node) -> Result<SplitCredential, SpecError> {
    let Some(map) = node.as_mapping() else {
        return Err(SpecError::at(
            Location::from_span(file, node.span()),
            "a credential must be a mapping with at least `id` and `kind`",
        ));
    };
    // Copy only the common fields: kind fields are read straight from `map` below.
    let common: marked_yaml::types::MarkedMappingNode = map
        .iter()
        .filter(|(k, _)| COMMON_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut extra = Vec::new();
    for (k, v) in map.iter() {
        if COMMON_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let value = if let Some(items) = v.as_sequence() {
            let items = items
                .iter()
                .map(|item| {
                    let s = item.as_scalar().ok_or_else(|| {
                        SpecError::at(
                            Location::from_span(file, item.span()),
                            format!(
                                "the items of `{}` must be plain values, not lists or mappings",
                                k.as_str()
                            ),
                        )
                    })?;
                    Ok((Location::from_span(file, s.span()), s.as_str().to_owned()))
                })
                .collect::<Result<Vec<_>, SpecError>>()?;
            RawValue::List(Location::from_span(file, v.span()), items)
        } else {
            let v = yaml::scalar(file, v, k.as_str())?;
            RawValue::Scalar(Location::from_span(file, v.span()), v.as_str().to_owned())
        };
        extra.push((
            Location::from_span(file, k.span()),
            k.as_str().to_owned(),
            value,
        ));
    }
    let consumer_locations = map
        .get_sequence("delivered_to")
        .map(|items| {
            items
                .iter()
                .map(|n| Location::from_span(file, n.span()))
                .collect()
        })
        .unwrap_or_default();
    let common = yaml::from_node::<RawCredential>(file, &Node::Mapping(common), "credential")?;
    Ok(SplitCredential {
        common,
        consumer_locations,
        extra,
    })
}

// ---------------------------------------------------------------------------------------------
// Checking.

fn loc(file: &Arc<SourceFile>, s: &S) -> Location {
    Location::from_span(file, s.span())
}

fn check_id(errors: &mut SpecErrors, file: &Arc<SourceFile>, id: &S, what: &str) {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        errors.push(
            SpecError::at(
                loc(file, id),
                format!("invalid {what} id `{}`", id.as_str()),
            )
            .help("ids use letters, digits, `-`, `_` and `.`"),
        );
    }
}

fn check(raw: RawInventory, errors: &mut SpecErrors) -> Inventory {
    let mut inv = Inventory::default();
    // One namespace per entity type; ids are unique across all files.
    let mut first_seen: HashMap<(&'static str, String), Location> = HashMap::new();
    let mut unique =
        |errors: &mut SpecErrors, what: &'static str, id: &str, at: &Location| -> bool {
            if let Some(first) = first_seen.get(&(what, id.to_owned())) {
                errors.push(
                    SpecError::at(at.clone(), format!("duplicate {what} id `{id}`"))
                        .label("defined again here")
                        .related(first.clone(), "first defined"),
                );
                false
            } else {
                first_seen.insert((what, id.to_owned()), at.clone());
                true
            }
        };

    for Located { file, raw } in raw.hosts {
        check_id(errors, &file, &raw.id, "host");
        let at = loc(&file, &raw.id);
        let Some(kind) = HostKind::parse(&raw.kind) else {
            errors.push(
                SpecError::at(
                    loc(&file, &raw.kind),
                    format!("unknown host kind `{}`", raw.kind.as_str()),
                )
                .help(format!("expected one of {}", HostKind::NAMES.join(", "))),
            );
            continue;
        };
        if unique(errors, "host", &raw.id, &at) {
            inv.host_index.insert(raw.id.to_string(), inv.hosts.len());
            inv.hosts.push(Host {
                id: raw.id.to_string(),
                kind,
                description: raw.description,
                location: at,
            });
        }
    }

    let mut service_refs = Vec::new();
    for Located { file, raw } in raw.services {
        check_id(errors, &file, &raw.id, "service");
        let at = loc(&file, &raw.id);
        if !unique(errors, "service", &raw.id, &at) {
            continue;
        }
        let base = file.path().parent().unwrap_or(Path::new("."));
        for h in &raw.built_on {
            service_refs.push((loc(&file, h), h.to_string()));
        }
        let publishes = check_publishes(&file, &raw.publishes, errors);
        inv.service_index
            .insert(raw.id.to_string(), inv.services.len());
        inv.services.push(Service {
            id: raw.id.to_string(),
            owner: raw.owner.map(|o| o.to_string()),
            sboms: raw.sboms.iter().map(|p| base.join(p.as_str())).collect(),
            built_on: raw.built_on.iter().map(|h| h.to_string()).collect(),
            publishes,
            description: raw.description,
            location: at,
        });
    }
    for (at, host) in service_refs {
        if inv.host(&host).is_none() {
            errors.push(dangling(
                at,
                "host",
                &host,
                inv.hosts.iter().map(|h| h.id.as_str()),
            ));
        }
    }

    let mut pending = Vec::new();
    for Located { file, raw } in raw.credentials {
        if let Some(c) = check_credential(&file, raw, errors)
            && unique(errors, "credential", &c.id, &c.location)
        {
            pending.push((file, c));
        }
    }
    for (i, (_, c)) in pending.iter().enumerate() {
        inv.credential_index.insert(c.id.clone(), i);
    }
    inv.credentials = pending.into_iter().map(|(_, c)| c).collect();
    check_discovered(&mut inv, raw.discovered, errors);
    check_references(&inv, errors);
    check_rotate_with_cycles(&inv, errors);
    inv
}

/// `discovered:` entries: a known kind (or `unknown`); one naming a credential must agree with
/// its kind and adds its host to the credential's `present_on` (where the entry was written is
/// the reference's location, so an unknown host points at it).
fn check_discovered(
    inv: &mut Inventory,
    raw: Vec<Located<(Location, RawDiscovered)>>,
    errors: &mut SpecErrors,
) {
    for Located { file, raw: (at, d) } in raw {
        if d.kind.as_str() != "unknown" && d.kind.parse::<CredentialKind>().is_err() {
            errors.push(
                SpecError::at(
                    loc(&file, &d.kind),
                    format!("unknown credential kind `{}`", d.kind.as_str()),
                )
                .help(format!("expected `unknown` or one of {}", kind_names())),
            );
            continue;
        }
        if let Some(id) = &d.credential {
            let Some(i) = inv.credential_index(id) else {
                errors.push(dangling(
                    loc(&file, id),
                    "credential",
                    id,
                    inv.credentials.iter().map(|c| c.id.as_str()),
                ));
                continue;
            };
            let c = &mut inv.credentials[i];
            if d.kind.as_str() != "unknown" && c.kind.as_str() != d.kind.as_str() {
                errors.push(
                    SpecError::at(
                        loc(&file, &d.kind),
                        format!(
                            "credential `{}` is a {}, not a {}",
                            c.id,
                            c.kind.as_str(),
                            d.kind.as_str()
                        ),
                    )
                    .related(c.location.clone(), "defined here"),
                );
                continue;
            }
            if !c.present_on.iter().any(|h| h == d.host.as_str()) {
                c.present_on.push(d.host.to_string());
                c.reference_locations.present_on.push(loc(&file, &d.host));
            }
        } else if inv.host(&d.host).is_none() {
            errors.push(dangling(
                loc(&file, &d.host),
                "host",
                &d.host,
                inv.hosts.iter().map(|h| h.id.as_str()),
            ));
            continue;
        }
        inv.discovered.push(Discovered {
            host: d.host.to_string(),
            source: d.source.to_string(),
            kind: d.kind.to_string(),
            credential: d.credential.map(|c| c.to_string()),
            matched_by: d.matched_by,
            fingerprint: d.fingerprint,
            note: d.note,
            ids: d.ids,
            location: at,
        });
    }
}

/// A service's `publishes:`: a known registry, a package name valid there, each package once.
fn check_publishes(
    file: &Arc<SourceFile>,
    raw: &[RawPublish],
    errors: &mut SpecErrors,
) -> Vec<Publish> {
    let mut out: Vec<Publish> = Vec::new();
    for p in raw {
        let registry = match p.registry.as_str() {
            "npm" => Registry::Npm,
            "pypi" => Registry::Pypi,
            other => {
                let mut e = SpecError::at(
                    loc(file, &p.registry),
                    format!("unknown registry `{other}`"),
                )
                .label("unknown registry")
                .help(format!("expected one of {}", Registry::NAMES.join(", ")));
                if let Some(best) =
                    closest(&other.to_ascii_lowercase(), Registry::NAMES.iter().copied())
                {
                    e = e.help(format!(
                        "did you mean `{best}`? Registries: {}",
                        Registry::NAMES.join(", ")
                    ));
                }
                errors.push(e);
                continue;
            }
        };
        let at = loc(file, &p.package);
        let checked = match registry {
            Registry::Npm => check_npm_package(&p.package),
            Registry::Pypi => check_pypi_package(&p.package),
        };
        if let Err(why) = checked {
            errors.push(SpecError::at(at, format!("invalid `package`: {why}")));
            continue;
        }
        if let Some(first) = out
            .iter()
            .find(|q| q.registry == registry && same_package(registry, &q.package, &p.package))
        {
            errors.push(
                SpecError::at(at, format!("`{}` is listed twice", p.package.as_str()))
                    .label("listed again here")
                    .related(first.location.clone(), "first listed"),
            );
            continue;
        }
        out.push(Publish {
            registry,
            package: p.package.to_string(),
            trusted_publishing: p.trusted_publishing,
            location: at,
        });
    }
    out
}

/// Whether two names are one package: npm refuses names that differ only by case, and PyPI
/// normalizes case and runs of `-`, `_`, `.` (PEP 503).
pub fn same_package(registry: Registry, a: &str, b: &str) -> bool {
    match registry {
        Registry::Npm => a.eq_ignore_ascii_case(b),
        Registry::Pypi => {
            let norm = |s: &str| {
                s.to_ascii_lowercase()
                    .split(['-', '_', '.'])
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("-")
            };
            norm(a) == norm(b)
        }
    }
}

fn dangling<'a>(
    at: Location,
    what: &str,
    id: &str,
    known: impl Iterator<Item = &'a str>,
) -> SpecError {
    let mut e =
        SpecError::at(at, format!("unknown {what} `{id}`")).label(format!("no {what} has this id"));
    if let Some(best) = closest(id, known) {
        e = e.help(format!("did you mean `{best}`?"));
    }
    e
}

/// The nearest known name by edit distance, for "did you mean".
pub fn closest<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, k)| *d <= (k.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: edits plus swaps of neighbours (`wbe` → `web` is 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn check_credential(
    file: &Arc<SourceFile>,
    split: SplitCredential,
    errors: &mut SpecErrors,
) -> Option<Credential> {
    let raw = split.common;
    check_id(errors, file, &raw.id, "credential");
    let Ok(kind) = raw.kind.parse::<CredentialKind>() else {
        let mut e = SpecError::at(
            loc(file, &raw.kind),
            format!("unknown credential kind `{}`", raw.kind.as_str()),
        )
        .label("unknown kind")
        .help(format!("expected one of {}", kind_names()));
        if let Some(best) = closest(&raw.kind, CredentialKind::ALL.iter().map(|k| k.as_str())) {
            e = e.help(format!("did you mean `{best}`? Kinds: {}", kind_names()));
        }
        errors.push(e);
        return None;
    };
    let before = errors.len();

    // Kind-specific fields.
    let specs = kind.fields();
    let mut fields = BTreeMap::new();
    // Fields present but rejected: not reported again as missing.
    let mut rejected: Vec<&str> = Vec::new();
    let mut value_locs: BTreeMap<String, Location> = BTreeMap::new();
    let mut list_locations: BTreeMap<String, Vec<Location>> = BTreeMap::new();
    for (key_loc, key, value) in split.extra {
        let Some(spec) = specs.iter().find(|s| s.name == key) else {
            let expected: Vec<&str> = COMMON_FIELDS
                .iter()
                .copied()
                .chain(specs.iter().map(|s| s.name))
                .collect();
            let mut e = SpecError::at(key_loc, format!("unknown field `{key}` for kind {kind}"))
                .label("unknown field");
            e = match closest(&key, expected.iter().copied()) {
                Some(best) => e.help(format!(
                    "did you mean `{best}`? {kind} takes: {}",
                    expected.join(", ")
                )),
                None => e.help(format!("{kind} takes: {}", expected.join(", "))),
            };
            errors.push(e);
            continue;
        };
        let (value_loc, value) = match (spec.ty, value) {
            (FieldType::List(item), value) => {
                match check_list(spec, item, value, errors) {
                    Some((joined, locations)) => {
                        list_locations.insert(key.clone(), locations);
                        fields.insert(key, joined);
                    }
                    None => rejected.push(spec.name),
                }
                continue;
            }
            (_, RawValue::List(at, _)) => {
                errors.push(
                    SpecError::at(at, format!("`{key}` must be a plain value, not a list"))
                        .help(spec.doc),
                );
                rejected.push(spec.name);
                continue;
            }
            (_, RawValue::Scalar(at, value)) => (at, value),
        };
        if looks_like_secret(&value).is_some() {
            // Refused (without echoing it) by `yaml::refuse_secrets` when the file was read.
            rejected.push(spec.name);
            continue;
        }
        if let Err(why) = check_field_value(spec.ty, &value) {
            errors.push(SpecError::at(value_loc, format!("invalid `{key}`: {why}")).help(spec.doc));
            rejected.push(spec.name);
            continue;
        }
        value_locs.insert(key.clone(), value_loc);
        fields.insert(key, value);
    }
    if matches!(
        kind,
        CredentialKind::NpmGranularToken | CredentialKind::NpmClassicToken
    ) {
        check_npm_expiry(&fields, &value_locs, errors);
    }
    let provider = fields.get("provider").map(String::as_str);
    let strategy = fields.get("strategy").map(String::as_str);
    let conditional = kind.conditional_fields(provider, strategy);
    for spec in specs {
        let needed = spec.required || conditional.contains(&spec.name);
        if needed && !fields.contains_key(spec.name) && !rejected.contains(&spec.name) {
            let why = if spec.required {
                format!(
                    "credential `{}` of kind {kind} is missing required field `{}`",
                    raw.id.as_str(),
                    spec.name
                )
            } else {
                format!(
                    "credential `{}` is missing field `{}`, required with {}",
                    raw.id.as_str(),
                    spec.name,
                    provider.map_or_else(
                        || format!("strategy {}", strategy.unwrap_or_default()),
                        |p| format!("provider {p}")
                    )
                )
            };
            errors.push(
                SpecError::at(loc(file, &raw.id), why)
                    .help(format!("`{}`: {}", spec.name, spec.doc)),
            );
        }
    }

    let last_rotated = raw
        .last_rotated
        .as_ref()
        .and_then(|d| match d.parse::<Date>() {
            Ok(date) if d.len() == 10 => Some(date),
            _ => {
                errors.push(
                    SpecError::at(loc(file, d), format!("invalid date `{}`", d.as_str()))
                        .label("not a calendar date")
                        .help("expected a date as YYYY-MM-DD, e.g. 2026-08-01"),
                );
                None
            }
        });
    let policy = raw.policy.as_ref().map(|p| Policy {
        max_age_days: *p.max_age_days,
    });
    if let Some(p) = &raw.policy
        && *p.max_age_days == 0
    {
        errors.push(SpecError::at(
            Location::from_span(file, p.max_age_days.span()),
            "`max_age_days` must be at least 1",
        ));
    }

    let mut delivered_to = Vec::new();
    for (i, c) in raw.delivered_to.iter().enumerate() {
        let at = split
            .consumer_locations
            .get(i)
            .cloned()
            .unwrap_or_else(|| loc(file, &raw.id));
        if let Some(c) = check_consumer(file, c, at, errors) {
            delivered_to.push(c);
        }
    }

    if let Some(t) = &raw.token_env
        && check_token_env(file, t, errors)
    {
        for c in &mut delivered_to {
            if let Consumer::GithubActionsSecret { token_env, .. } = c {
                token_env.get_or_insert_with(|| t.to_string());
            }
        }
        if !raw
            .delivered_to
            .iter()
            .any(|c| c.github_actions_secret.is_some())
        {
            errors.push(
                SpecError::at(
                    loc(file, t),
                    "`token_env` names the token that writes GitHub Actions secrets, and this credential has none",
                )
                .help("remove it, or add a `github_actions_secret` consumer"),
            );
        }
    }

    if errors.len() > before {
        return None;
    }
    Some(Credential {
        id: raw.id.to_string(),
        kind,
        owner: raw.owner.map(|o| o.to_string()),
        used_by: raw.used_by.iter().map(|s| s.to_string()).collect(),
        present_on: raw.present_on.iter().map(|s| s.to_string()).collect(),
        rotate_with_location: raw.rotate_with.as_ref().map(|r| loc(file, r)),
        rotate_with: raw.rotate_with.map(|r| r.to_string()),
        policy,
        last_rotated,
        delivered_to,
        fields,
        description: raw.description.map(|d| d.to_string()),
        location: loc(file, &raw.id),
        reference_locations: ReferenceLocations {
            used_by: raw.used_by.iter().map(|s| loc(file, s)).collect(),
            present_on: raw.present_on.iter().map(|s| loc(file, s)).collect(),
        },
        list_locations,
    })
}

fn check_references(inv: &Inventory, errors: &mut SpecErrors) {
    for c in &inv.credentials {
        for (s, at) in c.used_by.iter().zip(&c.reference_locations.used_by) {
            if inv.service(s).is_none() {
                errors.push(dangling(
                    at.clone(),
                    "service",
                    s,
                    inv.services.iter().map(|s| s.id.as_str()),
                ));
            }
        }
        for (h, at) in c.present_on.iter().zip(&c.reference_locations.present_on) {
            if inv.host(h).is_none() {
                errors.push(dangling(
                    at.clone(),
                    "host",
                    h,
                    inv.hosts.iter().map(|h| h.id.as_str()),
                ));
            }
        }
        if let (Some(helper), Some(at)) = (&c.rotate_with, &c.rotate_with_location) {
            if helper == &c.id {
                errors.push(SpecError::at(
                    at.clone(),
                    format!("credential `{}` cannot rotate with itself", c.id),
                ));
            } else if inv.credential(helper).is_none() {
                errors.push(dangling(
                    at.clone(),
                    "credential",
                    helper,
                    inv.credentials.iter().map(|c| c.id.as_str()),
                ));
            }
        }
    }
}

/// `rotate_with` chains must end: a → b → a can never be ordered.
fn check_rotate_with_cycles(inv: &Inventory, errors: &mut SpecErrors) {
    // Each credential has at most one helper, so walking the chain finds any cycle.
    let mut reported: std::collections::HashSet<String> = std::collections::HashSet::new();
    for start in &inv.credentials {
        let mut path: Vec<&Credential> = vec![start];
        let mut cur = start;
        while let Some(next) = cur.rotate_with.as_deref().and_then(|h| inv.credential(h)) {
            if next.id == cur.id {
                break; // self-reference, reported already
            }
            if let Some(pos) = path.iter().position(|c| c.id == next.id) {
                let cycle = &path[pos..];
                if cycle.iter().any(|c| reported.contains(&c.id)) {
                    break;
                }
                // Start the printed cycle at its smallest id so it reads the same from anywhere.
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, c)| &c.id)
                    .map_or(0, |(i, _)| i);
                let ordered: Vec<&Credential> =
                    cycle[min..].iter().chain(&cycle[..min]).copied().collect();
                let text = ordered
                    .iter()
                    .map(|c| c.id.as_str())
                    .chain(std::iter::once(ordered[0].id.as_str()))
                    .collect::<Vec<_>>()
                    .join(" → ");
                let first = ordered[0];
                let mut e = SpecError::at(
                    first
                        .rotate_with_location
                        .clone()
                        .unwrap_or_else(|| first.location.clone()),
                    format!("rotate_with cycle: {text}"),
                )
                .label("cycle starts here")
                .help("a credential's rotate_with helper must not (indirectly) need it back");
                for c in &ordered[1..] {
                    if let Some(at) = &c.rotate_with_location {
                        e = e.related(
                            at.clone(),
                            format!(
                                "{} rotate_with {}",
                                c.id,
                                c.rotate_with.as_deref().unwrap_or_default()
                            ),
                        );
                    }
                }
                errors.push(e);
                reported.extend(cycle.iter().map(|c| c.id.clone()));
                break;
            }
            path.push(next);
            cur = next;
        }
    }
}

/// A `token_env` must name an environment variable (never hold a token: those are refused
/// earlier, without echoing them).
fn check_token_env(file: &Arc<SourceFile>, t: &S, errors: &mut SpecErrors) -> bool {
    let ok = !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        errors.push(
            SpecError::at(
                loc(file, t),
                format!("`{}` is not an environment variable name", t.as_str()),
            )
            .help("name the variable that holds the token, e.g. token_env: GH_SECRETS_TOKEN"),
        );
    }
    ok
}

fn check_consumer(
    file: &Arc<SourceFile>,
    c: &RawConsumer,
    at: Location,
    errors: &mut SpecErrors,
) -> Option<Consumer> {
    let set = usize::from(c.aws_secrets_manager.is_some())
        + usize::from(c.github_actions_secret.is_some())
        + usize::from(c.env_file.is_some());
    if set != 1 {
        errors.push(
            SpecError::at(at, format!("a consumer names exactly one destination, found {set}"))
                .help("write `- aws_secrets_manager: {…}`, `- github_actions_secret: {…}` or `- env_file: {…}`"),
        );
        return None;
    }
    let opt = |s: &Option<S>| s.as_ref().map(|v| v.to_string());
    if let Some(sm) = &c.aws_secrets_manager {
        return Some(Consumer::AwsSecretsManager {
            secret_id: sm.secret_id.to_string(),
            region: opt(&sm.region),
            field: opt(&sm.field),
            create: sm.create,
        });
    }
    if let Some(gh) = &c.github_actions_secret {
        let scope = match (&gh.repo, &gh.org, &gh.environment) {
            (Some(repo), None, None) => ActionsScope::Repo {
                repo: repo.to_string(),
            },
            (None, Some(org), None) => ActionsScope::Org {
                org: org.to_string(),
                visibility: opt(&gh.visibility),
                selected_repositories: gh
                    .selected_repositories
                    .iter()
                    .flatten()
                    .map(|r| r.as_str().to_owned())
                    .collect(),
            },
            (Some(repo), None, Some(env)) => ActionsScope::Environment {
                repo: repo.to_string(),
                environment: env.to_string(),
            },
            _ => {
                errors.push(
                    SpecError::at(
                        at,
                        "a GitHub Actions secret needs `repo`, `org`, or `repo` with `environment`",
                    )
                    .help("repo: acme/web | org: acme | repo: acme/web + environment: production"),
                );
                return None;
            }
        };
        if let ActionsScope::Repo { repo } | ActionsScope::Environment { repo, .. } = &scope
            && (repo.split('/').count() != 2 || repo.split('/').any(str::is_empty))
        {
            let r = gh.repo.as_ref().expect("repo scope has a repo");
            errors.push(
                SpecError::at(loc(file, r), format!("invalid repository `{repo}`"))
                    .help("expected OWNER/NAME, e.g. acme/web"),
            );
            return None;
        }
        if let Some(v) = &gh.visibility
            && !matches!(&scope, ActionsScope::Org { .. })
        {
            errors.push(
                SpecError::at(
                    loc(file, v),
                    "`visibility` applies to organization secrets only",
                )
                .help("remove it, or use `org:` instead of `repo:`"),
            );
            return None;
        }
        if let Some(v) = &gh.visibility
            && !matches!(v.as_str(), "all" | "private" | "selected")
        {
            errors.push(
                SpecError::at(loc(file, v), format!("unknown visibility `{}`", v.as_str()))
                    .help("expected one of: all, private, selected"),
            );
            return None;
        }
        if let Some(repos) = &gh.selected_repositories
            && let Some(first) = repos.first()
            && gh
                .visibility
                .as_ref()
                .is_none_or(|v| v.as_str() != "selected")
        {
            errors.push(
                SpecError::at(
                    loc(file, first),
                    "`selected_repositories` needs `visibility: selected`",
                )
                .help("add `visibility: selected`"),
            );
            return None;
        }
        if let Some(t) = &gh.token_env
            && !check_token_env(file, t, errors)
        {
            return None;
        }
        return Some(Consumer::GithubActionsSecret {
            scope,
            name: gh.name.to_string(),
            field: opt(&gh.field),
            token_env: opt(&gh.token_env),
        });
    }
    let env = c.env_file.as_ref().expect("one consumer type is set");
    if env.path.is_empty() {
        errors.push(SpecError::at(
            loc(file, &env.path),
            "an empty env_file path",
        ));
        return None;
    }
    // Relative to the inventory file (as SBOM paths are), never to the directory rekey runs in.
    let base = file.path().parent().unwrap_or(Path::new("."));
    let path = std::path::absolute(base.join(env.path.as_str()))
        .unwrap_or_else(|_| base.join(env.path.as_str()));
    Some(Consumer::EnvFile {
        path: path.display().to_string(),
        key: env.key.to_string(),
        field: opt(&env.field),
        create: env.create,
    })
}

/// npm's limits on a new token's life: a whole number of days, at most 90 for a write token
/// (`permission` other than `read-only`), at most 365 for a read-only one.
fn check_npm_expiry(
    fields: &BTreeMap<String, String>,
    locs: &BTreeMap<String, Location>,
    errors: &mut SpecErrors,
) {
    use crate::kind::{NPM_TOKEN_MAX_DAYS, NPM_WRITE_TOKEN_MAX_DAYS};
    let (Some(days), Some(at)) = (fields.get("expires_days"), locs.get("expires_days")) else {
        return;
    };
    let write = fields.get("permission").map(String::as_str) != Some("read-only");
    let max = if write {
        NPM_WRITE_TOKEN_MAX_DAYS
    } else {
        NPM_TOKEN_MAX_DAYS
    };
    match days.parse::<u32>() {
        Ok(d) if (1..=max).contains(&d) => {}
        Ok(d) if d > max && write => errors.push(
            SpecError::at(
                at.clone(),
                format!("invalid `expires_days`: npm lets a write token live at most {max} days, not {d}"),
            )
            .label("longer than npm allows")
            .help(format!(
                "set expires_days: {max} or less, or permission: read-only for a token that only installs"
            )),
        ),
        _ => errors.push(
            SpecError::at(
                at.clone(),
                format!("invalid `expires_days`: expected a whole number of days from 1 to {max}, found `{days}`"),
            )
            .label("not a number of days"),
        ),
    }
}

/// A list field: a YAML list, or one comma-separated string (each item then located at the
/// string). Returns the items comma-joined, as templates and providers read them, and where
/// each was written; `None` after reporting what is wrong.
fn check_list(
    spec: &FieldSpec,
    item: Item,
    value: RawValue,
    errors: &mut SpecErrors,
) -> Option<(String, Vec<Location>)> {
    let key = spec.name;
    let items: Vec<(Location, String)> = match value {
        RawValue::List(at, items) if items.is_empty() => {
            // `[]` reads both as "nothing" and as "no limit": refuse it rather than guess.
            errors.push(
                SpecError::at(at, format!("an empty `{key}` list")).help(format!(
                    "remove `{key}`, or list what the token may access: {}",
                    spec.doc
                )),
            );
            return None;
        }
        RawValue::List(_, items) => items,
        RawValue::Scalar(at, joined) => joined
            .split(',')
            .map(|i| (at.clone(), i.trim().to_owned()))
            .collect(),
    };
    let before = errors.len();
    for (at, value) in &items {
        if looks_like_secret(value).is_some() {
            continue; // refused, without echoing it, when the file was read
        }
        if value.is_empty() {
            errors.push(
                SpecError::at(at.clone(), format!("an empty `{key}` item"))
                    .help("remove it (a comma too many?)"),
            );
        } else if let Err(why) = check_item(item, value) {
            errors.push(
                SpecError::at(at.clone(), format!("invalid `{key}` item: {why}")).help(spec.doc),
            );
        }
    }
    if errors.len() > before || items.iter().any(|(_, v)| looks_like_secret(v).is_some()) {
        return None;
    }
    let joined = items
        .iter()
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(",");
    Some((joined, items.into_iter().map(|(at, _)| at).collect()))
}

fn check_item(item: Item, value: &str) -> Result<(), String> {
    match item {
        Item::NpmPackage => check_npm_package(value),
        Item::NpmScope => match value.strip_prefix('@') {
            Some(name) if npm_name_part(name) => Ok(()),
            Some(_) => Err(format!(
                "`{value}` is not an npm scope (expected @ and a name of letters, digits, `-`, `.`, `_` or `~`, e.g. @acme)"
            )),
            None if npm_name_part(value) => Err(format!(
                "`{value}` is not an npm scope: write it with its @, as @{value}"
            )),
            None => Err(format!(
                "`{value}` is not an npm scope (expected e.g. @acme)"
            )),
        },
    }
}

/// One part of an npm name (a scope without its `@`, or a package name without its scope):
/// URL-safe characters, not starting with `.` or `_`. Mixed case is let through for old
/// packages; comparisons ignore case, as npm refuses names that differ only by case.
fn npm_name_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with(['.', '_'])
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// npm's rules for a package name: at most 214 characters, `name` or `@scope/name`.
fn check_npm_package(value: &str) -> Result<(), String> {
    let ok = value.len() <= 214
        && match value.strip_prefix('@') {
            Some(scoped) => scoped
                .split_once('/')
                .is_some_and(|(scope, name)| npm_name_part(scope) && npm_name_part(name)),
            None => npm_name_part(value),
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not an npm package name (expected `name` or `@scope/name`: letters, digits, `-`, `.`, `_`, `~`, not starting with `.` or `_`, at most 214 characters)"
        ))
    }
}

/// PEP 508 names: letters and digits, with `.`, `_` or `-` inside.
fn check_pypi_package(value: &str) -> Result<(), String> {
    let ok = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a PyPI project name (expected letters and digits, with `.`, `_` or `-` inside, e.g. acme-client)"
        ))
    }
}

fn check_field_value(ty: FieldType, value: &str) -> Result<(), String> {
    match ty {
        FieldType::Name => {
            if value.is_empty() || value.chars().any(char::is_whitespace) {
                return Err("expected a non-empty name without spaces".into());
            }
        }
        FieldType::EnvVar => {
            let ok = value
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && value
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(format!(
                    "`{value}` is not an environment variable name (expected e.g. PG_ADMIN_URL)"
                ));
            }
        }
        FieldType::Url => {
            if !(value.starts_with("https://") || value.starts_with("http://")) {
                return Err(format!("`{value}` is not an http(s) URL"));
            }
        }
        FieldType::OneOf(options) => {
            if !options.contains(&value) {
                return Err(format!(
                    "expected one of {}, found `{value}`",
                    options.join(", ")
                ));
            }
        }
        FieldType::List(_) => unreachable!("list fields are checked by check_list"),
    }
    Ok(())
}

/// Recognizes well-known secret formats, so a pasted token is refused instead of stored.
pub fn looks_like_secret(value: &str) -> Option<&'static str> {
    const PREFIXES: &[(&str, &str)] = &[
        ("ghp_", "a GitHub classic token"),
        ("gho_", "a GitHub OAuth token"),
        ("ghu_", "a GitHub user-to-server token"),
        ("ghs_", "a GitHub server-to-server token"),
        ("ghr_", "a GitHub refresh token"),
        ("github_pat_", "a GitHub fine-grained token"),
        ("npm_", "an npm token"),
        ("hf_", "a Hugging Face token"),
        ("-----BEGIN", "a PEM private key"),
        ("xoxb-", "a Slack token"),
        ("sk-", "an API secret key"),
    ];
    let v = value.trim();
    for (prefix, what) in PREFIXES {
        if v.starts_with(prefix) && v.len() >= prefix.len() + 16 {
            return Some(what);
        }
    }
    // user:password@host in a connection string
    if let Some((_, rest)) = v.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && userinfo.contains(':')
    {
        return Some("a URL with a password");
    }
    // AWS secret access keys: 40 characters of base64 with mixed classes.
    if v.len() == 40
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '+')
        && v.chars().any(|c| c.is_ascii_lowercase())
        && v.chars().any(|c| c.is_ascii_uppercase())
        && v.chars().any(|c| c.is_ascii_digit())
    {
        return Some("an AWS secret access key");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "hosts:\n  - id: ci\n    kind: ci_runner\n";

    fn errors(yaml: &str) -> Vec<String> {
        let text = format!("{HEAD}{yaml}");
        match parse_inventory(&[Arc::new(SourceFile::new("inv.yaml", text))]) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(SpecError::one_line).collect(),
        }
    }

    /// `discovered:` (a file `rekey discover --write` made, beside the operator's): an entry
    /// naming a credential adds its host to `present_on`, located at the entry; drafts are
    /// kept; bad entries are located.
    #[test]
    fn discovered_entries_add_exposure_or_are_refused() {
        let cred = "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n";
        let own = Arc::new(SourceFile::new(
            "inv.yaml",
            format!("{HEAD}  - id: laptop\n    kind: developer_machine\n{cred}"),
        ));
        let found = Arc::new(SourceFile::new(
            "discovered-laptop.yaml",
            "discovered:\n  - { host: laptop, source: \"~/.aws/credentials:3\", kind: aws_iam_access_key, credential: k, ids: { access_key_id: AKIAIOSFODNN7EXAMPLE } }\n  - { host: laptop, source: env:X, kind: unknown, fingerprint: \"hmac-sha256:0a1b2c3d:00\" }\n",
        ));
        let inv = parse_inventory(&[own, found]).unwrap_or_else(|e| panic!("{e:?}"));
        let k = inv.credential("k").unwrap();
        assert_eq!(k.present_on, ["laptop"]);
        assert_eq!(
            k.reference_locations.present_on[0].to_string(),
            "discovered-laptop.yaml:2:13"
        );
        assert_eq!(inv.discovered.len(), 2);
        assert!(inv.discovered[1].is_draft());
        let bad = |entry: &str| -> Vec<String> {
            errors(&format!("{cred}discovered:\n  - {entry}\n"))
                .into_iter()
                .map(|e| e.split(" (").next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            bad("{ host: ci, source: s, kind: aws_key }"),
            ["inv.yaml:9:34: unknown credential kind `aws_key`"]
        );
        assert_eq!(
            bad("{ host: ci, source: s, kind: unknown, credential: kk }"),
            ["inv.yaml:9:55: unknown credential `kk`"]
        );
        assert_eq!(
            bad("{ host: ci, source: s, kind: npm_granular_token, credential: k }"),
            [
                "inv.yaml:9:34: credential `k` is a aws_iam_access_key, not a npm_granular_token; defined here at inv.yaml:5:9"
            ]
        );
        assert_eq!(
            bad("{ host: cj, source: s, kind: unknown }"),
            ["inv.yaml:9:13: unknown host `cj`"]
        );
        assert_eq!(
            bad("{ host: ci, source: s, kind: unknown, value: x }").len(),
            1
        );
    }

    /// Bad `publishes:` entries and npm `packages:`/`scopes:`: one error each, at the exact
    /// place, saying what was expected.
    #[test]
    fn bad_publishes_and_npm_lists_are_located() {
        let service = |entries: &str| format!("services:\n  - id: web\n    publishes:\n{entries}");
        let npm = |extra: &str| {
            format!(
                "credentials:\n  - id: t\n    kind: npm_granular_token\n    npm_user: u\n    password_env: NPM_PW\n{extra}"
            )
        };
        let cases: Vec<(String, &str, &str)> = vec![
            (
                service("      - { registry: nmp, package: x }\n"),
                "inv.yaml:7:21",
                "unknown registry `nmp` (did you mean `npm`? Registries: npm, pypi)",
            ),
            (
                service("      - { registry: npm, package: x, trusted: true }\n"),
                "inv.yaml:7:38",
                "unknown field `trusted`, expected one of `registry`, `package`, or `trusted_publishing`",
            ),
            (
                service("      - { registry: npm }\n"),
                "inv.yaml:7:9",
                "publishes[0]: missing field `package`",
            ),
            (
                service("      - \"@acme/ui\"\n"),
                "inv.yaml:7:9",
                "expected a mapping `{ registry: npm|pypi, package: NAME, trusted_publishing: true|false }`, found a string",
            ),
            (
                service("      - { registry: npm, package: x, trusted_publishing: yes }\n"),
                "inv.yaml:7:58",
                "trusted_publishing: expected true or false",
            ),
            (
                service("      - { registry: npm, package: \"Acme UI\" }\n"),
                "inv.yaml:7:35",
                "`Acme UI` is not an npm package name (expected `name` or `@scope/name`",
            ),
            (
                service("      - { registry: npm, package: \"@acme\" }\n"),
                "inv.yaml:7:35",
                "`@acme` is not an npm package name",
            ),
            (
                service("      - { registry: pypi, package: -acme }\n"),
                "inv.yaml:7:36",
                "`-acme` is not a PyPI project name",
            ),
            (
                service(
                    "      - { registry: pypi, package: Acme_Client }\n      - { registry: pypi, package: acme-client }\n",
                ),
                "inv.yaml:8:36",
                "`acme-client` is listed twice; first listed at inv.yaml:7:36",
            ),
            (
                service(
                    "      - { registry: npm, package: \"@acme/ui\" }\n      - { registry: npm, package: \"@ACME/UI\" }\n",
                ),
                "inv.yaml:8:35",
                "`@ACME/UI` is listed twice",
            ),
            (
                npm("    packages: []\n"),
                "inv.yaml:9:15",
                "an empty `packages` list (remove `packages`, or list what the token may access",
            ),
            (
                npm("    scopes: [acme]\n"),
                "inv.yaml:9:14",
                "invalid `scopes` item: `acme` is not an npm scope: write it with its @, as @acme",
            ),
            (
                npm("    scopes: [\"@\"]\n"),
                "inv.yaml:9:14",
                "`@` is not an npm scope (expected @ and a name",
            ),
            (
                npm("    packages: [\"@acme/ui\", \"bad name\"]\n"),
                "inv.yaml:9:28",
                "invalid `packages` item: `bad name` is not an npm package name",
            ),
            (
                npm("    packages: \"a,,b\"\n"),
                "inv.yaml:9:15",
                "an empty `packages` item",
            ),
            (
                npm("    packages: [[a]]\n"),
                "inv.yaml:9:16",
                "the items of `packages` must be plain values, not lists or mappings",
            ),
            (
                npm("    token_key: [a]\n"),
                "inv.yaml:9:16",
                "`token_key` must be a plain value, not a list",
            ),
        ];
        for (yaml, location, needle) in cases {
            let errors = errors(&yaml);
            let [e] = errors.as_slice() else {
                panic!("one error expected for\n{yaml}got {errors:#?}")
            };
            assert!(
                e.starts_with(&format!("{location}: ")) && e.contains(needle),
                "{yaml}\nwant {location}: …{needle}…\ngot  {e}"
            );
        }
    }

    /// Good lists in both forms read back item by item, each at its place; `publishes`
    /// keeps its entries.
    #[test]
    fn npm_lists_and_publishes_read_back() {
        let text = format!(
            "{HEAD}services:
  - id: web
    publishes:
      - {{ registry: npm, package: \"@acme/ui\", trusted_publishing: true }}
      - {{ registry: pypi, package: acme.client }}
credentials:
  - id: t
    kind: npm_granular_token
    npm_user: u
    password_env: NPM_PW
    packages:
      - \"@acme/ui\"
      - left-pad
    scopes: \"@acme, @tools\"
"
        );
        let inv = parse_inventory(&[Arc::new(SourceFile::new("inv.yaml", text))])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let t = inv.credential("t").unwrap();
        // Templates and the npm provider read the comma-joined form, as before.
        assert_eq!(t.field("packages"), Some("@acme/ui,left-pad"));
        assert_eq!(t.field("scopes"), Some("@acme,@tools"));
        let at = |items: Vec<(&str, &Location)>| -> Vec<(String, String)> {
            items
                .into_iter()
                .map(|(i, l)| (i.to_owned(), l.to_string()))
                .collect()
        };
        assert_eq!(
            at(t.list("packages")),
            [
                ("@acme/ui".to_owned(), "inv.yaml:15:9".to_owned()),
                ("left-pad".to_owned(), "inv.yaml:16:9".to_owned())
            ]
        );
        assert_eq!(
            at(t.list("scopes")),
            [
                ("@acme".to_owned(), "inv.yaml:17:13".to_owned()),
                ("@tools".to_owned(), "inv.yaml:17:13".to_owned())
            ]
        );
        assert!(t.list("cidr_whitelist").is_empty());
        let web = inv.service("web").unwrap();
        let p: Vec<(Registry, &str, bool, String)> = web
            .publishes
            .iter()
            .map(|p| {
                (
                    p.registry,
                    p.package.as_str(),
                    p.trusted_publishing,
                    p.location.to_string(),
                )
            })
            .collect();
        assert_eq!(
            p,
            [
                (Registry::Npm, "@acme/ui", true, "inv.yaml:7:35".to_owned()),
                (
                    Registry::Pypi,
                    "acme.client",
                    false,
                    "inv.yaml:8:36".to_owned()
                )
            ]
        );
        assert!(same_package(Registry::Pypi, "Acme__Client", "acme.client"));
        assert!(!same_package(Registry::Pypi, "acme-client", "acmeclient"));
    }
}
