//! Classification by documented prefix or format. Sources:
//!
//! - AWS: IAM User Guide, "Unique identifiers" / STS `GetAccessKeyInfo`: access key ids
//!   beginning `AKIA` are long-term credentials of an IAM user (or root), `ASIA` temporary
//!   credentials made by STS (20 characters in all).
//! - GitHub: "Authentication token format updates" (github.blog changelog, 2021-03-31): `ghp_`
//!   personal access tokens (classic), `gho_` OAuth access tokens, `ghu_` GitHub App
//!   user-to-server tokens, `ghs_` server-to-server (installation, Actions' `GITHUB_TOKEN`),
//!   `ghr_` refresh tokens, characters `[A-Za-z0-9_]`, 40 long today and up to 255 later;
//!   fine-grained PATs are `github_pat_` + 22 + `_` + 59 characters.
//! - npm: "npm has a new access token format" (github.blog, 2021-09-23): tokens created since
//!   begin `npm_` (36 more characters); before that, tokens were UUIDs (legacy/classic).
//!   Granular tokens always have the prefix; a `npm_` legacy token made between 2021 and the
//!   end of legacy tokens (revoked by npm in 2025) cannot be told apart by format and is
//!   taken as granular.
//! - Hugging Face: "User access tokens" (huggingface.co/docs/hub/security-tokens): `hf_` and
//!   34 letters.
//! - GCP: a service-account key file is JSON with `"type": "service_account"`,
//!   `private_key_id`, `client_email` (IAM, "Create and delete service account keys"); ADC of
//!   a user login is `"type": "authorized_user"` (a refresh token of a person).

use rekey_spec::CredentialKind;

use crate::{Origin, Raw, Status};
use secrecy::ExposeSecret;

/// What a find is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A kind of the inventory.
    Kind(CredentialKind),
    /// `ASIA…`: an STS session key, short-lived.
    AwsTemporaryKey,
    /// An `~/.aws/config` profile signing in through IAM Identity Center: no stored secret.
    AwsSsoProfile,
    /// `gho_`: an OAuth app's token for a person (what `gh auth login` stores).
    GithubOauthToken,
    /// `ghu_`: a GitHub App's user-to-server token.
    GithubUserToken,
    /// `ghs_`: an installation token (Actions' `GITHUB_TOKEN`), one hour.
    GithubInstallationToken,
    /// `ghr_`: a GitHub App refresh token.
    GithubRefreshToken,
    /// gcloud's login of a person (`authorized_user`): a refresh token.
    GcpUserCredentials,
    /// A secret of no recognised format.
    Unknown,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kind(k) => k.as_str(),
            Self::AwsTemporaryKey => "aws_temporary_key",
            Self::AwsSsoProfile => "aws_sso_profile",
            Self::GithubOauthToken => "github_oauth_token",
            Self::GithubUserToken => "github_user_token",
            Self::GithubInstallationToken => "github_installation_token",
            Self::GithubRefreshToken => "github_refresh_token",
            Self::GcpUserCredentials => "gcp_user_credentials",
            Self::Unknown => "unknown",
        }
    }

    pub fn note(self) -> Option<&'static str> {
        Some(match self {
            Self::AwsTemporaryKey => "temporary STS credentials (ASIA…): expire on their own",
            Self::AwsSsoProfile => "SSO profile: short-lived credentials, nothing stored to rotate",
            Self::GithubOauthToken => {
                "OAuth token (gho_): no inventory kind; revoke it in the account's applications settings if exposed"
            }
            Self::GithubUserToken => "GitHub App user-to-server token (ghu_): no inventory kind",
            Self::GithubInstallationToken => "installation token (ghs_): expires within an hour",
            Self::GithubRefreshToken => "GitHub App refresh token (ghr_): no inventory kind",
            Self::GcpUserCredentials => {
                "a person's gcloud login (authorized_user): revoke with `gcloud auth application-default revoke` if exposed"
            }
            Self::Kind(_) | Self::Unknown => return None,
        })
    }

    /// Before matching: long-lived secrets are unknown until the inventory claims them.
    pub(crate) fn initial_status(self) -> Status {
        match self {
            Self::Kind(_) | Self::Unknown => Status::Unknown,
            Self::AwsTemporaryKey | Self::AwsSsoProfile | Self::GithubInstallationToken => {
                Status::ShortLived
            }
            Self::GithubOauthToken
            | Self::GithubUserToken
            | Self::GithubRefreshToken
            | Self::GcpUserCredentials => Status::Outside,
        }
    }

    /// Whether it belongs in a written inventory file (a kind, or an unknown secret).
    pub fn inventoried(self) -> bool {
        matches!(self, Self::Kind(_) | Self::Unknown)
    }
}

fn body_ok(body: &str, min: usize, extra: &[char]) -> bool {
    body.len() >= min
        && body.len() <= 255
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// A token's class from its documented prefix alone.
pub(crate) fn token_class(value: &str) -> Option<Class> {
    let v = value.trim();
    if let Some(b) = v.strip_prefix("github_pat_") {
        return body_ok(b, 60, &['_']).then_some(Class::Kind(CredentialKind::GithubFineGrainedPat));
    }
    for (prefix, class) in [
        ("ghp_", Class::Kind(CredentialKind::GithubClassicPat)),
        ("gho_", Class::GithubOauthToken),
        ("ghu_", Class::GithubUserToken),
        ("ghs_", Class::GithubInstallationToken),
        ("ghr_", Class::GithubRefreshToken),
        ("npm_", Class::Kind(CredentialKind::NpmGranularToken)),
    ] {
        if let Some(b) = v.strip_prefix(prefix) {
            return body_ok(b, 30, &['_']).then_some(class);
        }
    }
    if let Some(b) = v.strip_prefix("hf_") {
        return body_ok(b, 30, &[]).then_some(Class::Kind(CredentialKind::HuggingfaceToken));
    }
    None
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex): npm's tokens before the `npm_` prefix.
pub(crate) fn is_uuid(v: &str) -> bool {
    let parts: Vec<&str> = v.trim().split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The access key id's class: `AKIA` long-term, `ASIA` temporary.
pub(crate) fn aws_key_id_class(id: &str) -> Option<Class> {
    let ok = id.len() == 20
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !ok {
        return None;
    }
    if id.starts_with("AKIA") {
        Some(Class::Kind(CredentialKind::AwsIamAccessKey))
    } else if id.starts_with("ASIA") {
        Some(Class::AwsTemporaryKey)
    } else {
        None
    }
}

/// A reader's find → its class: the value's documented format first, then what the file says.
pub fn classify(raw: &Raw) -> Class {
    if raw.hint == Some("sso") {
        return Class::AwsSsoProfile;
    }
    match raw.hint {
        Some("service_account") => return Class::Kind(CredentialKind::GcpServiceAccountKey),
        Some("authorized_user") => return Class::GcpUserCredentials,
        _ => {}
    }
    if let Some(id) = raw.ids.get("access_key_id") {
        return aws_key_id_class(id).unwrap_or(Class::Unknown);
    }
    let value = raw.value.as_ref().map(ExposeSecret::expose_secret);
    if let Some(class) = value.and_then(token_class) {
        return class;
    }
    match raw.origin {
        Origin::Postgres => Class::Kind(CredentialKind::PostgresPassword),
        Origin::Mysql => Class::Kind(CredentialKind::MysqlPassword),
        Origin::Npm if value.is_some_and(is_uuid) => Class::Kind(CredentialKind::NpmClassicToken),
        _ => Class::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn raw(origin: Origin, value: &str) -> Raw {
        Raw::new(
            origin,
            "t".into(),
            Some(SecretString::from(value.to_owned())),
        )
    }

    /// Each provider's documented format (module docs) → its class. Example values are made
    /// up in the documented shape.
    #[test]
    fn documented_formats_classify() {
        use CredentialKind as K;
        let r36 = "A1bC2dE3fH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ"; // 36 (GitHub/npm bodies)
        let cases: Vec<(Origin, String, Class)> = vec![
            (
                Origin::Github,
                format!("ghp_{r36}"),
                Class::Kind(K::GithubClassicPat),
            ),
            (
                Origin::Github,
                format!("github_pat_11ABCDEFG0123456789abc_{}", "x".repeat(59)),
                Class::Kind(K::GithubFineGrainedPat),
            ),
            (
                Origin::Github,
                format!("gho_{r36}"),
                Class::GithubOauthToken,
            ),
            (Origin::Github, format!("ghu_{r36}"), Class::GithubUserToken),
            (
                Origin::EnvFile,
                format!("ghs_{r36}"),
                Class::GithubInstallationToken,
            ),
            (
                Origin::Github,
                format!("ghr_{r36}"),
                Class::GithubRefreshToken,
            ),
            (
                Origin::Npm,
                format!("npm_{r36}"),
                Class::Kind(K::NpmGranularToken),
            ),
            (
                Origin::Npm,
                "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f".into(),
                Class::Kind(K::NpmClassicToken),
            ),
            // A UUID outside npm's files is no npm token.
            (
                Origin::EnvFile,
                "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f".into(),
                Class::Unknown,
            ),
            (
                Origin::Huggingface,
                "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh".into(),
                Class::Kind(K::HuggingfaceToken),
            ),
            (
                Origin::Docker,
                format!("ghp_{r36}"),
                Class::Kind(K::GithubClassicPat),
            ),
            (
                Origin::Postgres,
                "s3cret".into(),
                Class::Kind(K::PostgresPassword),
            ),
            (
                Origin::Mysql,
                "s3cret".into(),
                Class::Kind(K::MysqlPassword),
            ),
            (Origin::EnvFile, "hunter2-but-longer".into(), Class::Unknown),
            // Too short to be the documented token: unknown, not a PAT.
            (Origin::Github, "ghp_short".into(), Class::Unknown),
            (Origin::Huggingface, "hf_short".into(), Class::Unknown),
        ];
        for (origin, value, want) in cases {
            assert_eq!(classify(&raw(origin, &value)), want, "{value}");
        }
        // AWS: by the access key id.
        for (id, want) in [
            ("AKIAIOSFODNN7EXAMPLE", Class::Kind(K::AwsIamAccessKey)),
            ("ASIAIOSFODNN7EXAMPLE", Class::AwsTemporaryKey),
            ("AIDAIOSFODNN7EXAMPLE", Class::Unknown),
            ("AKIA-not-a-key", Class::Unknown),
        ] {
            let r = raw(Origin::Aws, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
                .id("access_key_id", id);
            assert_eq!(classify(&r), want, "{id}");
        }
        let sso = Raw::new(Origin::Aws, "t".into(), None).hint("sso");
        assert_eq!(classify(&sso), Class::AwsSsoProfile);
        let sa = raw(Origin::Gcp, "-----BEGIN PRIVATE KEY-----").hint("service_account");
        assert_eq!(classify(&sa), Class::Kind(K::GcpServiceAccountKey));
        let user = raw(Origin::Gcp, "1//refresh").hint("authorized_user");
        assert_eq!(classify(&user), Class::GcpUserCredentials);
        // Statuses: only long-lived secrets can be unknown.
        assert_eq!(Class::AwsTemporaryKey.initial_status(), Status::ShortLived);
        assert_eq!(Class::GithubOauthToken.initial_status(), Status::Outside);
        assert_eq!(Class::Unknown.initial_status(), Status::Unknown);
    }
}
