//! The GitHub CLI's `hosts.yml` (`GH_CONFIG_DIR`, else `~/.config/gh`): per host its `user`
//! and `oauth_token` (and, since gh 2.40, per account under `users:`); `GH_TOKEN`,
//! `GITHUB_TOKEN`, `GH_ENTERPRISE_TOKEN`, `GITHUB_ENTERPRISE_TOKEN`; and Git's credential
//! store (`~/.git-credentials`, `~/.config/git/credentials`): `https://login:token@host`.

use marked_yaml::Node;
use secrecy::SecretString;

use super::{at, text};
use crate::{Environment, Origin, Raw};

fn line(node: &Node) -> usize {
    node.span().start().map_or(1, marked_yaml::Marker::line)
}

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let dir = env
        .path_var("GH_CONFIG_DIR")
        .unwrap_or_else(|| env.config_dir().join("gh"));
    let path = dir.join("hosts.yml");
    if let Some(root) = text(&path).and_then(|t| marked_yaml::parse_yaml(0, t).ok())
        && let Some(hosts) = root.as_mapping()
    {
        for (host, cfg) in hosts.iter() {
            let Some(cfg) = cfg.as_mapping() else {
                continue;
            };
            let active = cfg.get_scalar("user").map(|u| u.as_str().to_owned());
            let mut seen_active = false;
            if let Some(users) = cfg.get_mapping("users") {
                for (login, u) in users.iter() {
                    if let Some(tok) = u.as_mapping().and_then(|m| m.get_node("oauth_token")) {
                        seen_active |= active.as_deref() == Some(login.as_str());
                        push(env, out, &path, host.as_str(), Some(login.as_str()), tok);
                    }
                }
            }
            if let Some(tok) = cfg.get_node("oauth_token")
                && !seen_active
            {
                push(env, out, &path, host.as_str(), active.as_deref(), tok);
            }
        }
    }
    let gh_host = env
        .path_var("GH_HOST")
        .map_or_else(|| "github.com".to_owned(), |p| p.display().to_string());
    for var in [
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "GH_ENTERPRISE_TOKEN",
        "GITHUB_ENTERPRISE_TOKEN",
    ] {
        if let Some(v) = env.secret(var) {
            let host = if var.contains("ENTERPRISE") {
                gh_host.clone()
            } else {
                "github.com".to_owned()
            };
            out.push(
                Raw::new(Origin::Github, format!("env:{var}"), Some(v.clone())).id("host", host),
            );
        }
    }
    for path in [
        env.home.join(".git-credentials"),
        env.config_dir().join("git/credentials"),
    ] {
        let Some(t) = text(&path) else { continue };
        for (i, l) in t.lines().enumerate() {
            let Some((scheme, rest)) = l.trim().split_once("://") else {
                continue;
            };
            let Some((userinfo, host)) = rest.rsplit_once('@') else {
                continue;
            };
            let Some((login, secret)) = userinfo.split_once(':') else {
                continue;
            };
            if secret.is_empty() {
                continue;
            }
            let host = host.split('/').next().unwrap_or(host);
            out.push(
                Raw::new(
                    Origin::GitCredentials,
                    at(env, &path, i + 1),
                    Some(SecretString::from(secret.to_owned())),
                )
                .id("host", format!("{scheme}://{host}"))
                .id("login", login),
            );
        }
    }
}

fn push(
    env: &Environment,
    out: &mut Vec<Raw>,
    path: &std::path::Path,
    host: &str,
    login: Option<&str>,
    tok: &Node,
) {
    let Some(s) = tok.as_scalar() else { return };
    if s.as_str().is_empty() {
        return;
    }
    out.push(
        Raw::new(
            Origin::Github,
            at(env, path, line(tok)),
            Some(SecretString::from(s.as_str().to_owned())),
        )
        .id("host", host)
        .id("login", login.unwrap_or_default()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn gh_hosts_environment_and_git_credentials() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".config/gh/hosts.yml",
            "github.com:\n    git_protocol: https\n    users:\n        octocat:\n            oauth_token: gho_16C7e42F292c6912E7710c838347Ae178B4a\n    user: octocat\n    oauth_token: gho_16C7e42F292c6912E7710c838347Ae178B4a\nghe.acme.dev:\n    user: alice\n    oauth_token: ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
        );
        write(
            home.path(),
            ".git-credentials",
            "https://alice:ghp_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@github.com\nhttps://github.com\n",
        );
        let e = env(
            home.path(),
            &[("GH_TOKEN", "ghp_cccccccccccccccccccccccccccccccccccc")],
        );
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(
            show(&out),
            vec![
                (
                    "~/.config/gh/hosts.yml:5".into(),
                    "host=github.com login=octocat".into(),
                    Some("gho_16C7e42F292c6912E7710c838347Ae178B4a".into())
                ),
                (
                    "~/.config/gh/hosts.yml:10".into(),
                    "host=ghe.acme.dev login=alice".into(),
                    Some("ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into())
                ),
                (
                    "env:GH_TOKEN".into(),
                    "host=github.com".into(),
                    Some("ghp_cccccccccccccccccccccccccccccccccccc".into())
                ),
                (
                    "~/.git-credentials:1".into(),
                    "host=https://github.com login=alice".into(),
                    Some("ghp_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into())
                ),
            ]
        );
    }
}
