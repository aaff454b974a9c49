//! Docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`): `auths` per registry, `auth`
//! being base64 `user:password` (the password is often a registry token: a GitHub PAT for
//! ghcr.io), or an `identitytoken`. Credential helpers (`credsStore`) keep no value here.

use secrecy::SecretString;

use super::{at, base64_decode, text};
use crate::{Environment, Origin, Raw};

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let path = env
        .path_var("DOCKER_CONFIG")
        .unwrap_or_else(|| env.home.join(".docker"))
        .join("config.json");
    let Some(t) = text(&path) else { return };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&t) else {
        return;
    };
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return;
    };
    for (registry, entry) in auths {
        let line = t
            .find(&format!("\"{registry}\""))
            .map_or(1, |i| t[..i].lines().count().max(1));
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let (login, secret) = if let Some(auth) = field("auth") {
            let Some(plain) = base64_decode(auth).and_then(|b| String::from_utf8(b).ok()) else {
                continue;
            };
            let Some((u, p)) = plain.split_once(':') else {
                continue;
            };
            (u.to_owned(), p.to_owned())
        } else if let Some(tok) = field("identitytoken") {
            (String::new(), tok.to_owned())
        } else {
            continue;
        };
        out.push(
            Raw::new(
                Origin::Docker,
                at(env, &path, line),
                Some(SecretString::from(secret)),
            )
            .id("registry", registry.clone())
            .id("login", login),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn auths_per_registry() {
        let home = tempfile::tempdir().unwrap();
        // base64("alice:ghp_dddddddddddddddddddddddddddddddddddd")
        write(
            home.path(),
            ".docker/config.json",
            "{\n  \"auths\": {\n    \"ghcr.io\": {\n      \"auth\": \"YWxpY2U6Z2hwX2RkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZA==\"\n    },\n    \"https://index.docker.io/v1/\": {}\n  },\n  \"credsStore\": \"desktop\"\n}\n",
        );
        let mut out = Vec::new();
        read(&env(home.path(), &[]), &mut out);
        assert_eq!(
            show(&out),
            vec![(
                "~/.docker/config.json:3".into(),
                "login=alice registry=ghcr.io".into(),
                Some("ghp_dddddddddddddddddddddddddddddddddddd".into())
            )]
        );
    }
}
