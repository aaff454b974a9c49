//! `~/.aws/credentials` and `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_CONFIG_FILE`): a profile's access key id and secret; an SSO profile (`sso_session`,
//! `sso_start_url`) is noted as short-lived. `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.

use secrecy::ExposeSecret;

use super::{at, text};
use crate::{Environment, Origin, Raw, ini};

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let creds = env
        .path_var("AWS_SHARED_CREDENTIALS_FILE")
        .unwrap_or_else(|| env.home.join(".aws/credentials"));
    let config = env
        .path_var("AWS_CONFIG_FILE")
        .unwrap_or_else(|| env.home.join(".aws/config"));
    for (path, is_config) in [(creds, false), (config, true)] {
        let Some(t) = text(&path) else { continue };
        let entries = ini::parse(&t);
        for section in ini::sections(&entries) {
            let profile = if is_config {
                match section.strip_prefix("profile ") {
                    Some(p) => p.trim(),
                    None if section == "default" => section,
                    None => continue, // `sso-session …`, `services …`
                }
            } else {
                section
            };
            let get = |k: &str| ini::get(&entries, section, k);
            if let Some(secret) = get("aws_secret_access_key") {
                let id = get("aws_access_key_id")
                    .map(|e| e.value.expose_secret().to_owned())
                    .unwrap_or_default();
                out.push(
                    Raw::new(
                        Origin::Aws,
                        at(env, &path, secret.line),
                        Some(secret.value.clone()),
                    )
                    .id("profile", profile)
                    .id("access_key_id", id),
                );
            } else if is_config && (get("sso_session").is_some() || get("sso_start_url").is_some())
            {
                let line = entries
                    .iter()
                    .find(|e| e.section == section)
                    .map_or(1, |e| e.line.saturating_sub(1).max(1));
                let account = get("sso_account_id")
                    .map(|e| e.value.expose_secret().to_owned())
                    .unwrap_or_default();
                out.push(
                    Raw::new(Origin::Aws, at(env, &path, line), None)
                        .id("profile", profile)
                        .id("account_id", account)
                        .hint("sso"),
                );
            }
        }
    }
    if let Some(secret) = env.secret("AWS_SECRET_ACCESS_KEY") {
        let id = env
            .secret("AWS_ACCESS_KEY_ID")
            .map(|v| v.expose_secret().trim().to_owned())
            .unwrap_or_default();
        out.push(
            Raw::new(
                Origin::Aws,
                "env:AWS_SECRET_ACCESS_KEY".into(),
                Some(secret.clone()),
            )
            .id("access_key_id", id),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn profiles_sso_and_environment() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".aws/credentials",
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\n[ci]\naws_access_key_id=ASIAIOSFODNN7EXAMPLE\naws_secret_access_key=tempSecret\naws_session_token=tok\n",
        );
        write(
            home.path(),
            ".aws/config",
            "[default]\nregion = eu-west-1\n\n[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n",
        );
        let e = env(
            home.path(),
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAI44QH8DHBEXAMPLE"),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
                ),
            ],
        );
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(
            show(&out),
            vec![
                (
                    "~/.aws/credentials:3".into(),
                    "access_key_id=AKIAIOSFODNN7EXAMPLE profile=default".into(),
                    Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into())
                ),
                (
                    "~/.aws/credentials:7".into(),
                    "access_key_id=ASIAIOSFODNN7EXAMPLE profile=ci".into(),
                    Some("tempSecret".into())
                ),
                (
                    "~/.aws/config:4".into(),
                    "account_id=111122223333 profile=dev".into(),
                    None
                ),
                (
                    "env:AWS_SECRET_ACCESS_KEY".into(),
                    "access_key_id=AKIAI44QH8DHBEXAMPLE".into(),
                    Some("je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY".into())
                ),
            ]
        );
        assert_eq!(out[2].hint, Some("sso"));
    }
}
