//! `~/.npmrc` (or `NPM_CONFIG_USERCONFIG`) and every `.npmrc` under the `--path`s:
//! `//registry.example/:_authToken=…` per registry (`_auth`, base64 `user:password`, too);
//! `${VAR}` references are not values. `NPM_TOKEN` in the environment.

use secrecy::{ExposeSecret, SecretString};

use super::{at, base64_decode, project_files, text};
use crate::{Environment, Origin, Raw};

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let user = env
        .path_var("NPM_CONFIG_USERCONFIG")
        .unwrap_or_else(|| env.home.join(".npmrc"));
    let mut files = vec![user];
    files.extend(project_files(env, &|n| n == ".npmrc"));
    files.dedup();
    for path in files {
        let Some(t) = text(&path) else { continue };
        // `registry=` and `@scope:registry=` give the scheme a `//host/path/:` key lacks.
        let registries: Vec<String> = t
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .filter(|(k, _)| k.trim() == "registry" || k.trim().ends_with(":registry"))
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            .collect();
        let with_scheme = |nerf: &str| {
            registries
                .iter()
                .find(|r| {
                    r.split_once("//").is_some_and(|(_, rest)| {
                        format!("//{}", rest.trim_end_matches('/')) == nerf.trim_end_matches('/')
                    })
                })
                .map_or_else(
                    || format!("https:{nerf}"),
                    |r| {
                        if r.ends_with('/') {
                            r.clone()
                        } else {
                            format!("{r}/")
                        }
                    },
                )
        };
        for (i, line) in t.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim().trim_matches('"'));
            if value.is_empty() || value.contains("${") {
                continue;
            }
            let (scope, setting) = match key.rsplit_once(':') {
                Some((s, k)) if s.starts_with("//") => (Some(s), k),
                _ => (None, key),
            };
            let registry =
                scope.map_or_else(|| "https://registry.npmjs.org/".to_owned(), with_scheme);
            let username = |v: &str| v.split_once(':').map(|(u, _)| u.to_owned());
            let (secret, login) = match setting {
                "_authToken" => (SecretString::from(value.to_owned()), None),
                "_auth" => {
                    let Some(plain) = base64_decode(value).and_then(|b| String::from_utf8(b).ok())
                    else {
                        continue;
                    };
                    let login = username(&plain);
                    let password = plain.split_once(':').map_or(plain.as_str(), |(_, p)| p);
                    (SecretString::from(password.to_owned()), login)
                }
                _ => continue,
            };
            out.push(
                Raw::new(Origin::Npm, at(env, &path, i + 1), Some(secret))
                    .id("registry", registry)
                    .id("login", login.unwrap_or_default()),
            );
        }
    }
    if let Some(v) = env.secret("NPM_TOKEN") {
        let value = v.expose_secret().trim().to_owned();
        out.push(Raw::new(
            Origin::Npm,
            "env:NPM_TOKEN".into(),
            Some(SecretString::from(value)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn tokens_per_registry_in_home_and_projects() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".npmrc",
            "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789\n@acme:registry=https://npm.acme.dev/\n//npm.acme.dev/:_authToken=0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f\n",
        );
        write(
            home.path(),
            "src/app/.npmrc",
            "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n//npm.pkg.github.com/:_auth=Ym90OmdocF9zZWNyZXQ=\n",
        );
        let mut e = env(home.path(), &[]);
        e.paths = vec![home.path().join("src")];
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(
            show(&out),
            vec![
                (
                    "~/.npmrc:1".into(),
                    "registry=https://registry.npmjs.org/".into(),
                    Some("npm_abcdefghijklmnopqrstuvwxyz0123456789".into())
                ),
                (
                    "~/.npmrc:3".into(),
                    "registry=https://npm.acme.dev/".into(),
                    Some("0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f".into())
                ),
                (
                    "~/src/app/.npmrc:2".into(),
                    "login=bot registry=https://npm.pkg.github.com/".into(),
                    Some("ghp_secret".into())
                ),
            ]
        );
    }
}
