//! `rekey discover`: which credentials are present on this machine (`rekey-discover`), each
//! fingerprinted with the installation key and matched against the inventory; text, JSON, or
//! an inventory file of `discovered:` entries. Exit 0 when every find is known, 1 when one is
//! unknown to the inventory, 2 on bad input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use rekey_discover::{Environment, Status, WRITTEN_MARK};
use serde_json::json;

use crate::cli::{DiscoverArgs, Global};
use crate::report::Failure;

fn refused(message: String) -> Failure {
    Failure::Exit { code: 2, message }
}

/// This machine's name: `HOSTNAME`, else `/etc/hostname`.
fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

pub(crate) fn run(global: &Global, args: &DiscoverArgs) -> Result<(), Failure> {
    let inventory = super::load_inventory(global)?;
    let Some(host) = args.host.clone().or_else(hostname) else {
        return Err(refused(
            "error: this machine has no host name; pass --host ID".into(),
        ));
    };
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(refused(format!(
            "error: invalid host id `{host}`: ids use letters, digits, `-`, `_` and `.`"
        )));
    }
    for p in &args.paths {
        if !p.exists() {
            return Err(refused(format!(
                "error: --path {}: no such file or folder",
                p.display()
            )));
        }
    }
    // A file this command did not write is the operator's: never overwritten.
    if let Some(out) = &args.write
        && out.exists()
    {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if !text.starts_with(WRITTEN_MARK) {
            return Err(refused(format!(
                "error: {} exists and was not written by `rekey discover`; choose another --write FILE",
                out.display()
            )));
        }
    }
    // Fingerprints match across machines only under one installation key: say so when this
    // run is about to create a key of its own.
    let key_was_there = super::state::key_path(global).is_ok_and(|p| p.exists());
    let fingerprinter = super::state::fingerprinter(global)?;
    if !key_was_there {
        eprintln!(
            "note: created a new installation key (key id {}); finds match other machines' only when they use the same key (REKEY_FINGERPRINT_KEY_FILE)",
            fingerprinter.key_id()
        );
    }
    let env = Environment::from_process(args.paths.clone());
    let mut finds = if args.online {
        let mut online = Online::new()?;
        rekey_discover::discover_with(&env, &|v| fingerprinter.fingerprint(v), &mut |f, v| {
            online.inspect(f, v)
        })
    } else {
        rekey_discover::discover(&env, &|v| fingerprinter.fingerprint(v))
    };
    drop(env);
    let minted = minted_fingerprints(global)?;
    let summary = rekey_discover::match_inventory(&inventory, &host, &minted, &mut finds);

    let mut stdout = anstream::stdout().lock();
    if args.json {
        let doc = json!({
            "format": 1,
            "host": host,
            "summary": summary,
            "finds": finds,
        });
        serde_json::to_writer_pretty(&mut stdout, &doc).context("cannot write the JSON")?;
        writeln!(stdout).context("cannot write the output")?;
    } else {
        let mut text = format!(
            "{host}: {} find(s): {} known, {} unknown to the inventory, {} short-lived, {} outside the inventory's kinds\n",
            finds.len(),
            summary.known,
            summary.unknown,
            summary.short_lived,
            summary.outside
        );
        for (status, title) in [
            (Status::Unknown, "unknown to the inventory"),
            (Status::Known, "known"),
            (Status::ShortLived, "short-lived"),
            (Status::Outside, "outside the inventory's kinds"),
        ] {
            let group: Vec<_> = finds.iter().filter(|f| f.status == status).collect();
            if group.is_empty() {
                continue;
            }
            let _ = write!(text, "\n{title}:\n");
            for f in group {
                let _ = writeln!(text, "  {f}");
            }
        }
        stdout
            .write_all(text.as_bytes())
            .context("cannot write the output")?;
    }

    if let Some(out) = &args.write {
        // Declare the host unless the operator's inventory does (a host this file declared
        // before is declared again: the file is rewritten).
        let declare = match inventory.host(&host) {
            Some(h) if !same_file(h.location.file.path(), out) => None,
            Some(h) => Some(h.kind),
            None => Some(
                if std::env::var_os("CI").is_some() || std::env::var_os("GITHUB_ACTIONS").is_some()
                {
                    rekey_spec::HostKind::CiRunner
                } else {
                    rekey_spec::HostKind::DeveloperMachine
                },
            ),
        };
        let kind = declare.map(|k| match k {
            rekey_spec::HostKind::CiRunner => "ci_runner",
            rekey_spec::HostKind::DeveloperMachine => "developer_machine",
            rekey_spec::HostKind::Server => "server",
        });
        let text = rekey_discover::render(&host, kind, &super::today(global).to_string(), &finds);
        write_atomically(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!(
            "wrote {}: {} entr(ies); `rekey validate` loads it when it is in the inventory folder",
            out.display(),
            finds.iter().filter(|f| f.class.inventoried()).count()
        );
    }
    if summary.unknown > 0 {
        return Err(Failure::Exit {
            code: 1,
            message: format!(
                "{} credential(s) on {host} unknown to the inventory",
                summary.unknown
            ),
        });
    }
    Ok(())
}

/// `--online`: read-only identity calls through the connectors (their budgets and error
/// scrubbing), for AWS access keys (STS `GetCallerIdentity` signed with the key found, at
/// `AWS_ENDPOINT_URL` if set), GitHub tokens (github.com's at `GITHUB_API_URL` if set, a
/// GitHub Enterprise Server's at its own `https://HOST/api/v3`), Hugging Face tokens
/// (`HF_ENDPOINT`) and npm tokens (at the registry they were found for). A token the provider
/// refuses is noted as not valid.
struct Online {
    rt: tokio::runtime::Runtime,
    aws: rekey_providers::aws::AwsProvider,
    /// At `GITHUB_API_URL` (default github.com's API).
    github: Option<rekey_providers::github::GithubProvider>,
    /// A GitHub Enterprise Server's, per host found.
    enterprise: BTreeMap<String, Option<rekey_providers::github::GithubProvider>>,
    hub: Option<rekey_providers::huggingface::HuggingfaceProvider>,
    npm: rekey_providers::npm::NpmProvider,
}

impl Online {
    fn new() -> anyhow::Result<Self> {
        let rt = super::state::runtime()?;
        Ok(Self {
            aws: rt.block_on(rekey_providers::aws::AwsProvider::from_env()),
            rt,
            github: rekey_providers::github::GithubProvider::from_env().ok(),
            enterprise: BTreeMap::new(),
            hub: rekey_providers::huggingface::HuggingfaceProvider::from_env().ok(),
            npm: rekey_providers::npm::NpmProvider::from_env(),
        })
    }

    /// The provider for a GitHub token found for `host` (`github.com`, `ghe.acme.com`,
    /// `https://ghe.acme.com`).
    fn github_for<'a>(
        github: Option<&'a rekey_providers::github::GithubProvider>,
        enterprise: &'a mut BTreeMap<String, Option<rekey_providers::github::GithubProvider>>,
        host: Option<&String>,
    ) -> Option<&'a rekey_providers::github::GithubProvider> {
        use rekey_providers::github::{DEFAULT_API_URL, GithubConfig, GithubProvider};
        let configured = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| DEFAULT_API_URL.into());
        let Some(api) = host.and_then(|h| enterprise_api_url(h, &configured)) else {
            return github;
        };
        enterprise
            .entry(api)
            .or_insert_with_key(|api| GithubProvider::new(GithubConfig::new(api)).ok())
            .as_ref()
    }

    fn inspect(
        &mut self,
        find: &rekey_discover::Find,
        value: &secrecy::SecretString,
    ) -> rekey_discover::Inspection {
        use rekey_discover::{Class, Inspection};
        use rekey_spec::CredentialKind as K;
        let token = rekey_engine::Value::Secret(value.clone());
        let answer = match find.class {
            Class::Kind(K::AwsIamAccessKey) => {
                let Some(key_id) = find.ids.get("access_key_id").filter(|k| !k.is_empty()) else {
                    return Inspection::default();
                };
                (
                    "AWS sts:GetCallerIdentity",
                    self.rt.block_on(self.aws.identity(key_id, value)),
                )
            }
            Class::Kind(K::GithubClassicPat | K::GithubFineGrainedPat)
            | Class::GithubOauthToken
            | Class::GithubUserToken => {
                let host = find.ids.get("host").cloned();
                let Some(gh) =
                    Self::github_for(self.github.as_ref(), &mut self.enterprise, host.as_ref())
                else {
                    return Inspection::default();
                };
                let answer = self.rt.block_on(gh.identity(&token));
                ("GitHub GET /user", answer)
            }
            Class::Kind(K::HuggingfaceToken) => {
                let Some(hub) = &self.hub else {
                    return Inspection::default();
                };
                (
                    "Hugging Face whoami-v2",
                    self.rt.block_on(hub.identity(&token)),
                )
            }
            Class::Kind(K::NpmGranularToken | K::NpmClassicToken) => {
                let registry = find
                    .ids
                    .get("registry")
                    .map_or(rekey_providers::npm::DEFAULT_REGISTRY, String::as_str);
                (
                    "npm GET /-/whoami",
                    self.rt.block_on(self.npm.identity(registry, &token)),
                )
            }
            _ => return Inspection::default(),
        };
        match answer {
            (_, Ok(Some(login))) => Inspection {
                ids: vec![("owner".into(), login)],
                note: None,
            },
            (call, Ok(None)) => Inspection {
                ids: Vec::new(),
                note: Some(format!("{call} refuses it: not a valid token")),
            },
            (call, Err(e)) => Inspection {
                ids: Vec::new(),
                note: Some(format!("{call} failed: {e}")),
            },
        }
    }
}

/// The API of the GitHub Enterprise Server at `host` (`https://HOST/api/v3`, `http://` kept
/// when the find said so; `https://api.HOST` for GitHub Enterprise Cloud's `*.ghe.com`);
/// `None` for github.com and for the server `configured` (`GITHUB_API_URL`) is on, which
/// answer at `configured`.
fn enterprise_api_url(host: &str, configured: &str) -> Option<String> {
    let (scheme, bare) = host.split_once("://").unwrap_or(("https", host));
    let bare = bare.trim_end_matches('/');
    let configured_host = configured
        .split_once("://")
        .map_or(configured, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let configured_host = configured_host
        .strip_prefix("api.")
        .unwrap_or(configured_host);
    if bare == "github.com" || bare == configured_host {
        None
    } else if bare.ends_with(".ghe.com") {
        Some(format!("{scheme}://api.{bare}"))
    } else {
        Some(format!("{scheme}://{bare}/api/v3"))
    }
}

/// Fingerprint → credential of every value the audit log recorded (what rekey minted), or
/// nothing when there is no state database yet (discovery does not create one).
fn minted_fingerprints(global: &Global) -> anyhow::Result<BTreeMap<String, String>> {
    let url = &global.database_url;
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !postgres && !Path::new(url.strip_prefix("sqlite://").unwrap_or(url)).exists() {
        return Ok(BTreeMap::new());
    }
    super::state::runtime()?.block_on(async {
        let store = super::state::open_store(global).await?;
        let events = store
            .audit_events(None)
            .await
            .context("cannot read the audit log")?;
        store.close().await;
        Ok(events
            .into_iter()
            .filter_map(|e| Some((e.draft.fingerprint?, e.draft.credential?)))
            .collect())
    })
}

/// A temporary file beside `path`, then a rename: a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "discovered".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::enterprise_api_url;

    #[test]
    fn a_token_is_checked_at_the_api_of_its_host() {
        let dotcom = "https://api.github.com";
        for (host, configured, want) in [
            ("github.com", dotcom, None),
            ("https://github.com", dotcom, None),
            ("ghe.acme.com", dotcom, Some("https://ghe.acme.com/api/v3")),
            (
                "http://ghe.lab:8080",
                dotcom,
                Some("http://ghe.lab:8080/api/v3"),
            ),
            ("acme.ghe.com", dotcom, Some("https://api.acme.ghe.com")),
            // GITHUB_API_URL names the host's API already.
            ("ghe.acme.com", "https://ghe.acme.com/api/v3", None),
            ("acme.ghe.com", "https://api.acme.ghe.com", None),
            ("http://127.0.0.1:4010", "http://127.0.0.1:4010", None),
        ] {
            assert_eq!(
                enterprise_api_url(host, configured).as_deref(),
                want,
                "{host} with {configured}"
            );
        }
    }
}
