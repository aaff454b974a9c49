//! `rekey discover`: which credentials are present on this laptop or runner. Readers look
//! where credentials live (`readers/`), each find is classified by its documented format
//! (`classify.rs`), fingerprinted with the installation key and matched against the inventory
//! (`matching.rs`); `write.rs` renders the `discovered:` file the inventory loader reads.
//!
//! Values are read into `SecretString`s, fingerprinted and dropped inside the reader: a
//! [`Find`] holds the kind, public identifiers and the fingerprint, never the value.

mod classify;
mod ini;
mod matching;
pub mod readers;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

pub use classify::{Class, classify};
pub use matching::{Summary, match_inventory};
pub use write::{WRITTEN_MARK, render};

/// The machine being looked at: its home folder, its environment and the project folders to
/// search for `.env` and `.npmrc` files. Injected, so tests never read the real machine.
pub struct Environment {
    pub home: PathBuf,
    pub vars: BTreeMap<String, SecretString>,
    pub paths: Vec<PathBuf>,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("home", &self.home)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("paths", &self.paths)
            .finish()
    }
}

impl Environment {
    /// This process's home and environment (the command; never tests).
    pub fn from_process(paths: Vec<PathBuf>) -> Self {
        let vars: BTreeMap<String, SecretString> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        let home = vars
            .get("HOME")
            .or_else(|| vars.get("USERPROFILE"))
            .map_or_else(PathBuf::new, |h| PathBuf::from(h.expose_secret()));
        Self { home, vars, paths }
    }

    /// A variable that may hold a secret.
    pub fn secret(&self, name: &str) -> Option<&SecretString> {
        self.vars
            .get(name)
            .filter(|v| !v.expose_secret().trim().is_empty())
    }

    /// A variable that names a place (`HF_HOME`, `DOCKER_CONFIG`, …), not a secret.
    pub fn path_var(&self, name: &str) -> Option<PathBuf> {
        self.secret(name).map(|v| PathBuf::from(v.expose_secret()))
    }

    /// `~/…` for files under the home folder: the same find reads the same on every machine.
    pub fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.home) {
            Ok(rest) if !self.home.as_os_str().is_empty() => format!("~/{}", rest.display()),
            _ => path.display().to_string(),
        }
    }

    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    pub fn config_dir(&self) -> PathBuf {
        self.path_var("XDG_CONFIG_HOME")
            .unwrap_or_else(|| self.home.join(".config"))
    }

    /// `$XDG_CACHE_HOME`, else `~/.cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.path_var("XDG_CACHE_HOME")
            .unwrap_or_else(|| self.home.join(".cache"))
    }
}

/// Which provider's file or variable a find came from: decides how its value is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Aws,
    Npm,
    Github,
    GitCredentials,
    Huggingface,
    Gcp,
    Docker,
    EnvFile,
    Postgres,
    Mysql,
}

/// What a reader hands over: where, what it knows publicly, and the value (or none: an SSO
/// profile has no secret to fingerprint).
pub struct Raw {
    pub origin: Origin,
    pub source: String,
    pub ids: BTreeMap<String, String>,
    pub value: Option<SecretString>,
    /// What the reader knows beside the value (`sso`, `service_account`, `authorized_user`).
    pub hint: Option<&'static str>,
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Raw")
            .field("origin", &self.origin)
            .field("source", &self.source)
            .field("ids", &self.ids)
            .field("value", &self.value.as_ref().map(|_| "[REDACTED]"))
            .field("hint", &self.hint)
            .finish()
    }
}

impl Raw {
    pub(crate) fn new(origin: Origin, source: String, value: Option<SecretString>) -> Self {
        Self {
            origin,
            source,
            ids: BTreeMap::new(),
            value,
            hint: None,
        }
    }

    pub(crate) fn id(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.ids.insert(name.to_owned(), value);
        }
        self
    }

    pub(crate) fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
}

/// Whether the inventory knows a find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It is a credential of the inventory (by public id or fingerprint).
    Known,
    /// A long-lived secret the inventory does not know: exit 1.
    Unknown,
    /// Short-lived (STS session keys, SSO profiles, Actions installation tokens): noted only.
    ShortLived,
    /// A secret no inventory kind describes (GitHub OAuth and user tokens, gcloud user
    /// logins): listed, for a person to judge; not counted as unknown.
    Outside,
}

/// One credential found on the machine. Never holds the value.
#[derive(Debug, Clone, Serialize)]
pub struct Find {
    pub source: String,
    pub origin: Origin,
    /// A credential kind, `unknown`, or what the find is when no kind fits
    /// (`github_oauth_token`, `aws_sso_profile`, …).
    pub kind: String,
    #[serde(skip)]
    pub class: Class,
    pub ids: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub status: Status,
    /// The inventory credential it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// `access_key_id`, `key_id`, `fingerprint`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<String>,
    /// Other hosts where discovery saw the same value (by fingerprint).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_on: Vec<String>,
}

impl fmt::Display for Find {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", self.source, self.kind)?;
        for (k, v) in &self.ids {
            write!(f, "  {k}={v}")?;
        }
        match (&self.credential, self.status) {
            (Some(c), _) => write!(
                f,
                "  → {c} (by {})",
                self.matched_by.as_deref().unwrap_or("?")
            )?,
            (None, Status::Unknown) => f.write_str("  UNKNOWN to the inventory")?,
            (None, Status::ShortLived) => f.write_str("  short-lived")?,
            (None, Status::Outside) => f.write_str("  no inventory kind")?,
            (None, Status::Known) => {}
        }
        if let Some(n) = &self.note {
            write!(f, "  ({n})")?;
        }
        if !self.also_on.is_empty() {
            write!(f, "  also on {}", self.also_on.join(", "))?;
        }
        Ok(())
    }
}

/// Runs every reader over `env`, classifies each find and fingerprints its value with
/// `fingerprint` (the installation key's HMAC); the values are dropped before this returns.
pub fn discover(env: &Environment, fingerprint: &dyn Fn(&str) -> String) -> Vec<Find> {
    discover_with(env, fingerprint, &mut |_, _| Inspection::default())
}

/// What an identity check (`--online`) learned of a value.
#[derive(Debug, Default)]
pub struct Inspection {
    /// Public ids to add (`login`).
    pub ids: Vec<(String, String)>,
    pub note: Option<String>,
}

/// [`discover`], with `inspect` called on each value of a known class while it is still held
/// (the command's read-only identity calls); the value is dropped right after.
pub fn discover_with(
    env: &Environment,
    fingerprint: &dyn Fn(&str) -> String,
    inspect: &mut dyn FnMut(&Find, &SecretString) -> Inspection,
) -> Vec<Find> {
    let mut finds: Vec<Find> = Vec::new();
    for raw in readers::read_all(env) {
        let class = classify(&raw);
        let fp = raw
            .value
            .as_ref()
            .map(|v| fingerprint(v.expose_secret().trim()));
        // The same value read twice (a profile and the environment): one find per place.
        let find = Find {
            source: raw.source,
            origin: raw.origin,
            kind: class.name().to_owned(),
            class,
            ids: raw.ids,
            fingerprint: fp,
            note: class.note().map(str::to_owned),
            status: class.initial_status(),
            credential: None,
            matched_by: None,
            also_on: Vec::new(),
        };
        let mut find = find;
        if let Some(value) = &raw.value {
            let learned = inspect(&find, value);
            for (k, v) in learned.ids {
                find.ids.entry(k).or_insert(v);
            }
            if let Some(n) = learned.note {
                find.note = Some(match find.note.take() {
                    Some(old) => format!("{old}; {n}"),
                    None => n,
                });
            }
        }
        finds.push(find);
    }
    finds
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rekey_spec::SourceFile;

    use super::*;
    use crate::readers::fixture::{env, write};

    const PAT: &str = "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// (source, credential, matched by, also on).
    type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<String>);
    const AWS: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn fake_fp(v: &str) -> String {
        // Stands in for the installation key's HMAC: equal values, equal prints.
        let sum: u32 = v.bytes().map(u32::from).sum();
        format!("hmac-sha256:test:{sum:x}-{}", v.len())
    }

    #[test]
    fn debug_and_display_never_show_a_value() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".aws/credentials",
            &format!(
                "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {AWS}\n"
            ),
        );
        let e = env(home.path(), &[("GH_TOKEN", PAT)]);
        let raws = readers::read_all(&e);
        let finds = discover(&e, &fake_fp);
        assert_eq!(finds.len(), 2);
        let shown = format!(
            "{e:?} {raws:?} {finds:?} {} {}",
            finds[0],
            serde_json::to_string(&finds).unwrap()
        );
        for secret in [PAT, AWS] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(shown.contains("[REDACTED]"));
    }

    #[test]
    fn matching_by_public_id_and_by_fingerprint() {
        let inv = rekey_spec::parse_inventory(&[Arc::new(SourceFile::new(
            "inv.yaml",
            format!(
                "hosts:\n  - {{ id: a, kind: developer_machine }}\n  - {{ id: b, kind: ci_runner }}\ncredentials:\n  - {{ id: k, kind: aws_iam_access_key, user_name: u, access_key_id: AKIAIOSFODNN7EXAMPLE }}\n  - {{ id: pat, kind: github_classic_pat, github_user: bot }}\n  - {{ id: pat2, kind: github_classic_pat, github_user: two }}\n  - {{ id: pat3, kind: github_classic_pat, github_user: two }}\n  - {{ id: npm-k, kind: npm_granular_token, npm_user: x, password_env: NPM_PW }}\ndiscovered:\n  - {{ host: b, source: env:GH_TOKEN, kind: github_classic_pat, credential: pat3, fingerprint: \"{}\" }}\n",
                fake_fp(PAT)
            ),
        ))])
        .unwrap_or_else(|e| panic!("{e:?}"));
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".aws/credentials",
            &format!(
                "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {AWS}\n"
            ),
        );
        // `two` owns two PATs: the login cannot tell which; the fingerprint can.
        write(
            home.path(),
            ".config/gh/hosts.yml",
            &format!("github.com:\n    user: two\n    oauth_token: {PAT}\n"),
        );
        write(
            home.path(),
            ".git-credentials",
            "https://bot:ghp_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@github.com\n",
        );
        let e = env(
            home.path(),
            &[("NPM_TOKEN", "npm_cccccccccccccccccccccccccccccccccccc")],
        );
        let mut finds = discover(&e, &fake_fp);
        let summary = match_inventory(&inv, "a", &BTreeMap::new(), &mut finds);
        let got: Vec<Row> = finds
            .iter()
            .map(|f| {
                (
                    f.source.as_str(),
                    f.credential.as_deref(),
                    f.matched_by.as_deref(),
                    f.also_on.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "~/.aws/credentials:3",
                    Some("k"),
                    Some("access_key_id"),
                    vec![]
                ),
                ("env:NPM_TOKEN", None, None, vec![]),
                (
                    "~/.config/gh/hosts.yml:3",
                    Some("pat3"),
                    Some("fingerprint"),
                    vec!["b".to_owned()]
                ),
                (
                    "~/.git-credentials:1",
                    Some("pat"),
                    Some("github_user"),
                    vec![]
                ),
            ]
        );
        assert_eq!(
            summary,
            Summary {
                known: 3,
                unknown: 1,
                short_lived: 0,
                outside: 0
            }
        );
        // The written file: the known ones name their credential, the unknown one is a draft.
        let text = render("a", None, "2026-12-07", &finds);
        // A value rekey minted for `k` (the audit log's fingerprint) is `k` wherever found.
        let npm_fp = finds[1].fingerprint.clone().unwrap();
        // Never to a credential of another kind.
        let minted = BTreeMap::from([(npm_fp.clone(), "pat".to_owned())]);
        let mut again = discover(&e, &fake_fp);
        match_inventory(&inv, "a", &minted, &mut again);
        assert_eq!(again[1].credential, None);
        let minted = BTreeMap::from([(npm_fp, "npm-k".to_owned())]);
        let mut again = discover(&e, &fake_fp);
        match_inventory(&inv, "a", &minted, &mut again);
        assert_eq!(again[1].credential.as_deref(), Some("npm-k"));
        assert_eq!(
            again[1].matched_by.as_deref(),
            Some("fingerprint in the audit log")
        );
        assert!(text.starts_with(WRITTEN_MARK));
        assert_eq!(text.matches("  - host: \"a\"").count(), 4);
        assert_eq!(text.matches("# draft").count(), 1);
        assert!(!text.contains(PAT) && !text.contains(AWS));
    }
}
