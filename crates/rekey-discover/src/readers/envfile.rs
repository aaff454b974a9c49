//! `.env` files under the `--path`s (`.env`, `.env.local`, `.env.production`, …; not the
//! `.example`/`.sample`/`.template` ones): keys that look like secrets (`…TOKEN`, `…SECRET…`,
//! `…PASSWORD`, `…API_KEY`, …) or values of a known token format. An
//! `AWS_SECRET_ACCESS_KEY` takes the file's `AWS_ACCESS_KEY_ID`; a database URL with a
//! password is that database's password.

use secrecy::SecretString;

use super::{at, project_files, text};
use crate::classify::token_class;
use crate::{Environment, Origin, Raw, ini};

fn is_env_file(name: &str) -> bool {
    let ext = std::path::Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let env_like = name == ".env" || name.starts_with(".env.") || ext.as_deref() == Some("env");
    env_like
        && !matches!(
            ext.as_deref(),
            Some("example" | "sample" | "template" | "dist")
        )
}

fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "_PWD",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "AUTH",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| k.contains(w))
        && !k.ends_with("_ID")
        && !k.ends_with("_URL")
        && !k.ends_with("_FILE")
        && !k.ends_with("_PATH")
}

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    for path in project_files(env, &is_env_file) {
        let Some(t) = text(&path) else { continue };
        let pairs: Vec<(usize, String, String)> = t
            .lines()
            .enumerate()
            .filter_map(|(i, l)| {
                let l = l.trim();
                let l = l.strip_prefix("export ").unwrap_or(l);
                if l.starts_with('#') {
                    return None;
                }
                let (k, v) = l.split_once('=')?;
                Some((
                    i + 1,
                    k.trim().to_owned(),
                    ini::unquote(v.trim()).to_owned(),
                ))
            })
            .collect();
        let key_id = pairs
            .iter()
            .find(|(_, k, _)| k == "AWS_ACCESS_KEY_ID")
            .map(|(_, _, v)| v.clone())
            .unwrap_or_default();
        for (line, key, value) in pairs {
            if value.is_empty() || value.starts_with("${") || key == "AWS_ACCESS_KEY_ID" {
                continue;
            }
            let source = at(env, &path, line);
            if let Some(raw) = database_url(&source, &value) {
                out.push(raw.id("variable", key));
                continue;
            }
            if key == "AWS_SECRET_ACCESS_KEY" {
                out.push(
                    Raw::new(Origin::Aws, source, Some(SecretString::from(value)))
                        .id("access_key_id", key_id.clone())
                        .id("variable", key),
                );
                continue;
            }
            if secret_name(&key) || token_class(&value).is_some() {
                out.push(
                    Raw::new(Origin::EnvFile, source, Some(SecretString::from(value)))
                        .id("variable", key),
                );
            }
        }
    }
}

/// `postgres://user:password@host:5432/db` → the password of that role (`mysql://` alike).
fn database_url(source: &str, value: &str) -> Option<Raw> {
    let (scheme, rest) = value.split_once("://")?;
    let origin = match scheme {
        "postgres" | "postgresql" => Origin::Postgres,
        "mysql" | "mariadb" => Origin::Mysql,
        _ => return None,
    };
    let (userinfo, host) = rest.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    let host = host.split(['/', '?']).next().unwrap_or_default();
    Some(
        Raw::new(
            origin,
            source.to_owned(),
            Some(SecretString::from(password.to_owned())),
        )
        .id("user", user)
        .id("host", host),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn secret_keys_and_token_values() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            "proj/.env",
            "# app\nPORT=8080\nexport OPENAI_API_KEY=\"sk-proj-abc123\"\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nDATABASE_URL=postgres://app:pg-s3cret@db.internal:5432/app\nDEPLOY_NOTE=ghp_eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\nGITHUB_TOKEN=${GITHUB_TOKEN}\nCLIENT_ID=abc\n",
        );
        write(home.path(), "proj/.env.example", "API_TOKEN=changeme\n");
        write(
            home.path(),
            "proj/node_modules/x/.env",
            "API_TOKEN=vendored\n",
        );
        let mut e = env(home.path(), &[]);
        e.paths = vec![home.path().join("proj")];
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(
            show(&out),
            vec![
                (
                    "~/proj/.env:3".into(),
                    "variable=OPENAI_API_KEY".into(),
                    Some("sk-proj-abc123".into())
                ),
                (
                    "~/proj/.env:5".into(),
                    "access_key_id=AKIAIOSFODNN7EXAMPLE variable=AWS_SECRET_ACCESS_KEY".into(),
                    Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into())
                ),
                (
                    "~/proj/.env:6".into(),
                    "host=db.internal:5432 user=app variable=DATABASE_URL".into(),
                    Some("pg-s3cret".into())
                ),
                (
                    "~/proj/.env:7".into(),
                    "variable=DEPLOY_NOTE".into(),
                    Some("ghp_eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee".into())
                ),
            ]
        );
    }
}
