//! Credential kinds, the fields each kind takes, and the capability map: what each provider's
//! API can do for a kind, and what needs a human.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The eleven credential kinds of the inventory contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    AwsIamAccessKey,
    GcpServiceAccountKey,
    GithubFineGrainedPat,
    GithubClassicPat,
    GithubAppPrivateKey,
    NpmGranularToken,
    NpmClassicToken,
    HuggingfaceToken,
    OauthClientSecret,
    PostgresPassword,
    MysqlPassword,
}

/// How a provider lets rekey perform one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// An API call does it.
    Api,
    /// Only a human can, in the provider's UI.
    Manual,
    /// Not possible at all (e.g. disabling a PAT without revoking it).
    None,
}

/// The capability map row of one kind (DESIGN.md, "What each provider's API allows").
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Capabilities {
    pub mint: Support,
    pub disable: Support,
    pub revoke: Support,
    pub verify: Support,
    /// How many values may be valid at once (IAM: 2 keys per user). `None`: no practical limit.
    pub max_overlap: Option<u32>,
    /// What the old value's end means for consumers when overlap is 1.
    pub note: &'static str,
}

/// The type of a kind-specific field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Any non-empty string without whitespace.
    Name,
    /// The name of an environment variable (never its value).
    EnvVar,
    /// An `https://` or `http://` URL.
    Url,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// A list of items: a YAML list, or (as first written) one comma-separated string. Kept
    /// comma-joined in `Credential::fields`, so templates and providers read it as before.
    List(Item),
}

/// The type of each item of a [`FieldType::List`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// An npm package name, scoped (`@acme/ui`) or not.
    NpmPackage,
    /// An npm scope with its `@` (`@acme`).
    NpmScope,
}

/// A kind-specific field.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub required: bool,
    pub ty: FieldType,
    pub doc: &'static str,
}

const fn req(name: &'static str, ty: FieldType, doc: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        required: true,
        ty,
        doc,
    }
}

const fn opt(name: &'static str, ty: FieldType, doc: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        required: false,
        ty,
        doc,
    }
}

use FieldType::{EnvVar, List, Name, OneOf, Url};

const AWS_IAM_FIELDS: &[FieldSpec] = &[
    req("user_name", Name, "the IAM user that owns the key"),
    opt(
        "access_key_id",
        Name,
        "the current key's id (AKIA…), if known",
    ),
    opt("account_id", Name, "the AWS account id"),
    opt("region", Name, "the region for STS verification"),
];

const GCP_SA_FIELDS: &[FieldSpec] = &[
    req("project", Name, "the GCP project id"),
    req("service_account", Name, "the service account e-mail"),
    opt("key_id", Name, "the current key's id"),
];

const GITHUB_PAT_FIELDS: &[FieldSpec] = &[
    req("github_user", Name, "the GitHub login that owns the token"),
    opt("token_name", Name, "the token's note/name in GitHub's UI"),
];

const GITHUB_APP_FIELDS: &[FieldSpec] = &[
    req("app_id", Name, "the GitHub App id"),
    req("app_slug", Name, "the App's slug (URL name)"),
    opt("github_org", Name, "the organization that owns the App"),
    opt(
        "key_fingerprint",
        Name,
        "the current key's SHA-256 fingerprint",
    ),
];

/// Both npm kinds: a classic token is revoked and replaced by a granular one, so it takes the
/// granular token's fields too. `packages` and `scopes` are what a granular token may publish
/// (and what its replacement is limited to); a classic token can publish every package of its
/// account whatever they say (`rekey lint`'s `npm-token-outranks-trusted-publishing`).
const NPM_FIELDS: &[FieldSpec] = &[
    req("npm_user", Name, "the npm account"),
    opt(
        "registry",
        Url,
        "the registry (default https://registry.npmjs.org/), as npm addresses it",
    ),
    opt(
        "token_key",
        Name,
        "the current token's key (id), as listed by npm; without it the old token is read from a consumer and found by its listed prefix",
    ),
    req(
        "password_env",
        EnvVar,
        "environment variable with the account password, used to mint, list and delete tokens",
    ),
    opt(
        "token_name",
        Name,
        "the new token's name (default rekey-<credential id>; the run's idempotency key is appended)",
    ),
    opt(
        "permission",
        OneOf(&["read-only", "read-write"]),
        "the new token's packages-and-scopes permission (default read-write)",
    ),
    opt(
        "packages",
        List(Item::NpmPackage),
        "the packages the token may access, e.g. [\"@acme/ui\", left-pad]; with neither packages nor scopes a granular token can publish every package of its account",
    ),
    opt(
        "scopes",
        List(Item::NpmScope),
        "the scopes the token may access, with their @, e.g. [\"@acme\"]",
    ),
    opt(
        "expires_days",
        Name,
        "days until the new token expires (default 90; npm allows a write token at most 90)",
    ),
    opt(
        "cidr_whitelist",
        Name,
        "comma-separated CIDR ranges the new token may be used from",
    ),
];

/// npm refuses write tokens that live longer than this (granular tokens since 2025).
pub const NPM_WRITE_TOKEN_MAX_DAYS: u32 = 90;
/// The longest expiry npm offers a read-only granular token.
pub const NPM_TOKEN_MAX_DAYS: u32 = 365;

const HUGGINGFACE_FIELDS: &[FieldSpec] = &[
    req("hf_user", Name, "the Hugging Face account or organization"),
    opt(
        "token_name",
        Name,
        "the token's name in the Hugging Face UI",
    ),
    opt(
        "role",
        OneOf(&["read", "write", "fineGrained"]),
        "the token's role: a new token must have at least this one (read < write; fineGrained only fineGrained)",
    ),
];

const OAUTH_FIELDS: &[FieldSpec] = &[
    req("provider", OneOf(OAUTH_PROVIDERS), "who issues the secret"),
    req("client_id", Name, "the OAuth client id"),
    opt(
        "domain",
        Name,
        "Okta org or Auth0 tenant domain (okta, auth0)",
    ),
    opt("app_id", Name, "the Okta application id (okta)"),
    opt("secret_id", Name, "the current Okta secret id (okta)"),
    opt(
        "token_url",
        Url,
        "the token endpoint used to verify (generic)",
    ),
    opt(
        "api_token_env",
        EnvVar,
        "environment variable holding the Okta/Auth0 management token",
    ),
    opt(
        "audience",
        Name,
        "the API the verify's client_credentials request asks a token for (auth0)",
    ),
    opt(
        "token_auth",
        OneOf(&["basic", "post"]),
        "how the verify sends the client secret: HTTP Basic (client_secret_basic; default for okta and generic) or in the body (client_secret_post; default for auth0)",
    ),
];

const POSTGRES_FIELDS: &[FieldSpec] = &[
    req("role", Name, "the PostgreSQL role"),
    req(
        "admin_url_env",
        EnvVar,
        "environment variable with the admin connection string",
    ),
    opt("database", Name, "the database to verify the login against"),
    opt(
        "strategy",
        OneOf(&["single", "alternating"]),
        "single role, or two roles used in turn for zero downtime",
    ),
    opt(
        "alternate_role",
        Name,
        "the second role (strategy: alternating)",
    ),
];

const MYSQL_FIELDS: &[FieldSpec] = &[
    req("user", Name, "the MySQL/MariaDB user"),
    opt("host_pattern", Name, "the user's host part (default %)"),
    req(
        "admin_url_env",
        EnvVar,
        "environment variable with the admin connection string",
    ),
];

/// OAuth providers whose client secrets rekey knows how to rotate.
pub const OAUTH_PROVIDERS: &[&str] = &["okta", "auth0", "github_oauth_app", "generic"];

impl CredentialKind {
    pub const ALL: [Self; 11] = [
        Self::AwsIamAccessKey,
        Self::GcpServiceAccountKey,
        Self::GithubFineGrainedPat,
        Self::GithubClassicPat,
        Self::GithubAppPrivateKey,
        Self::NpmGranularToken,
        Self::NpmClassicToken,
        Self::HuggingfaceToken,
        Self::OauthClientSecret,
        Self::PostgresPassword,
        Self::MysqlPassword,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsIamAccessKey => "aws_iam_access_key",
            Self::GcpServiceAccountKey => "gcp_service_account_key",
            Self::GithubFineGrainedPat => "github_fine_grained_pat",
            Self::GithubClassicPat => "github_classic_pat",
            Self::GithubAppPrivateKey => "github_app_private_key",
            Self::NpmGranularToken => "npm_granular_token",
            Self::NpmClassicToken => "npm_classic_token",
            Self::HuggingfaceToken => "huggingface_token",
            Self::OauthClientSecret => "oauth_client_secret",
            Self::PostgresPassword => "postgres_password",
            Self::MysqlPassword => "mysql_password",
        }
    }

    /// Legacy kinds: still found in the wild, no longer mintable or recommended.
    pub fn is_legacy(self) -> bool {
        matches!(self, Self::GithubClassicPat | Self::NpmClassicToken)
    }

    /// The fields this kind takes besides the common ones.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Self::AwsIamAccessKey => AWS_IAM_FIELDS,
            Self::GcpServiceAccountKey => GCP_SA_FIELDS,
            Self::GithubFineGrainedPat | Self::GithubClassicPat => GITHUB_PAT_FIELDS,
            Self::GithubAppPrivateKey => GITHUB_APP_FIELDS,
            Self::NpmGranularToken | Self::NpmClassicToken => NPM_FIELDS,
            Self::HuggingfaceToken => HUGGINGFACE_FIELDS,
            Self::OauthClientSecret => OAUTH_FIELDS,
            Self::PostgresPassword => POSTGRES_FIELDS,
            Self::MysqlPassword => MYSQL_FIELDS,
        }
    }

    /// Fields required only for some values of another field (OAuth per provider, ...).
    pub fn conditional_fields(
        self,
        provider: Option<&str>,
        strategy: Option<&str>,
    ) -> Vec<&'static str> {
        match (self, provider, strategy) {
            (Self::OauthClientSecret, Some("okta"), _) => {
                vec!["domain", "app_id", "api_token_env", "secret_id"]
            }
            (Self::OauthClientSecret, Some("auth0"), _) => vec!["domain", "api_token_env"],
            (Self::OauthClientSecret, Some("generic"), _) => vec!["token_url"],
            (Self::PostgresPassword, _, Some("alternating")) => vec!["alternate_role"],
            _ => Vec::new(),
        }
    }

    pub fn capabilities(self) -> Capabilities {
        use Support::{Api, Manual, None};
        let c = |mint, disable, revoke, verify, max_overlap, note| Capabilities {
            mint,
            disable,
            revoke,
            verify,
            max_overlap,
            note,
        };
        match self {
            Self::AwsIamAccessKey => c(
                Api,
                Api,
                Api,
                Api,
                Some(2),
                "IAM allows 2 access keys per user",
            ),
            Self::GcpServiceAccountKey => c(
                Api,
                Api,
                Api,
                Api,
                Some(10),
                "10 keys per service account; tokens already minted stay valid until expiry",
            ),
            Self::GithubFineGrainedPat | Self::GithubClassicPat => c(
                Manual,
                None,
                Api,
                Api,
                Option::None,
                "created in the UI only; revoked through POST /credentials/revoke",
            ),
            Self::GithubAppPrivateKey => c(
                Manual,
                None,
                Manual,
                Api,
                Some(25),
                "keys are generated and deleted in the App settings only",
            ),
            Self::NpmGranularToken => c(
                Api,
                None,
                Api,
                Api,
                Option::None,
                "write tokens live at most 90 days; minting may ask for an OTP",
            ),
            Self::NpmClassicToken => c(
                Api,
                None,
                Api,
                Api,
                Option::None,
                "classic tokens can no longer be created, and npm revoked every classic token on the public registry on 2025-12-09: one still listed is already dead or lives on a private registry; the runbook revokes it and mints a granular replacement (or retire it for trusted publishing)",
            ),
            Self::HuggingfaceToken => c(
                Manual,
                None,
                Api,
                Api,
                Option::None,
                "tokens are created in the UI only; POST /api/credentials/revoke revokes leaked ones (unauthenticated, always 202)",
            ),
            Self::OauthClientSecret => c(
                Api,
                Api,
                Api,
                Api,
                Some(2),
                "Okta: 2 secrets; Auth0: 1 (rotation invalidates the old at once); GitHub OAuth apps: UI only",
            ),
            Self::PostgresPassword => c(
                Api,
                Api,
                Api,
                Api,
                Some(1),
                "one password per role: the old stops working when the new is set (2 with alternating roles); open sessions survive until terminated",
            ),
            Self::MysqlPassword => c(
                Api,
                Api,
                Api,
                Api,
                Some(1),
                "one password per user (2 with MySQL 8 dual passwords); open sessions survive until killed",
            ),
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown kind name; lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown credential kind `{}`", self.0)
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for CredentialKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Every kind name, for "expected one of" messages.
pub fn kind_names() -> String {
    CredentialKind::ALL.map(CredentialKind::as_str).join(", ")
}

/// Host kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// CI runners (GitHub-hosted or self-hosted) that build, test or publish.
    CiRunner,
    /// A person's laptop or workstation.
    DeveloperMachine,
    /// A machine that runs services.
    Server,
}

impl HostKind {
    pub const NAMES: &'static [&'static str] = &["ci_runner", "developer_machine", "server"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ci_runner" => Some(Self::CiRunner),
            "developer_machine" => Some(Self::DeveloperMachine),
            "server" => Some(Self::Server),
            _ => None,
        }
    }
}
