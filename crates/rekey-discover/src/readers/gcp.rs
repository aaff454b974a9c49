//! Google Cloud: `GOOGLE_APPLICATION_CREDENTIALS`; gcloud's Application Default Credentials
//! (`$CLOUDSDK_CONFIG`, else `~/.config/gcloud`, `application_default_credentials.json`);
//! key files named by gcloud configurations (`configurations/config_*`, `[auth]
//! credential_file_override`) and `legacy_credentials/*/adc.json`. A `service_account` file
//! is a key (`client_email`, `private_key_id`, its value the private key); an
//! `authorized_user` file a person's refresh token.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::text;
use crate::{Environment, Origin, Raw, ini};

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let gcloud = env
        .path_var("CLOUDSDK_CONFIG")
        .unwrap_or_else(|| env.config_dir().join("gcloud"));
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    if let Some(p) = env.path_var("GOOGLE_APPLICATION_CREDENTIALS") {
        files.push((p, "env:GOOGLE_APPLICATION_CREDENTIALS".into()));
    }
    files.push((
        gcloud.join("application_default_credentials.json"),
        String::new(),
    ));
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for conf in list(&gcloud.join("configurations")) {
        let is_config = conf
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("config_"));
        let Some(t) = text(&conf).filter(|_| is_config) else {
            continue;
        };
        let entries = ini::parse(&t);
        if let Some(e) = ini::get(&entries, "auth", "credential_file_override") {
            let p = PathBuf::from(e.value.expose_secret());
            let p = if p.is_relative() { gcloud.join(p) } else { p };
            files.push((p, String::new()));
        }
    }
    for acct in list(&gcloud.join("legacy_credentials")) {
        files.push((acct.join("adc.json"), String::new()));
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    for (path, via) in files {
        let canon = path.canonicalize().unwrap_or_else(|_| path.clone());
        if seen.contains(&canon) {
            continue;
        }
        seen.push(canon);
        if let Some(raw) = key_file(env, &path, &via) {
            out.push(raw);
        }
    }
}

/// One credentials file: `service_account` or `authorized_user`.
fn key_file(env: &Environment, path: &Path, via: &str) -> Option<Raw> {
    let doc: serde_json::Value = serde_json::from_str(&text(path)?).ok()?;
    let s = |k: &str| {
        doc.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let source = if via.is_empty() {
        env.show(path)
    } else {
        format!("{} ({via})", env.show(path))
    };
    let raw = match doc.get("type").and_then(|t| t.as_str()) {
        Some("service_account") => Raw::new(
            Origin::Gcp,
            source,
            Some(SecretString::from(s("private_key"))),
        )
        .id("client_email", s("client_email"))
        .id("key_id", s("private_key_id"))
        .id("project", s("project_id"))
        .hint("service_account"),
        Some("authorized_user") => Raw::new(
            Origin::Gcp,
            source,
            Some(SecretString::from(s("refresh_token"))),
        )
        .id("client_id", s("client_id"))
        .hint("authorized_user"),
        _ => return None,
    };
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    const KEY: &str = r#"{"type": "service_account", "project_id": "acme-prod", "private_key_id": "8e2f0c4b1a3d5e7f9a0b2c4d6e8f0a1b2c3d4e5f", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEsecret\n-----END PRIVATE KEY-----\n", "client_email": "deploy@acme-prod.iam.gserviceaccount.com", "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}"#;

    #[test]
    fn adc_configurations_and_environment() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".config/gcloud/application_default_credentials.json",
            r#"{"type": "authorized_user", "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com", "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": "1//0refresh"}"#,
        );
        write(home.path(), "keys/deploy.json", KEY);
        write(
            home.path(),
            ".config/gcloud/configurations/config_prod",
            "[core]\nproject = acme-prod\n\n[auth]\ncredential_file_override = ../../keys/deploy.json\n",
        );
        let e = env(home.path(), &[]);
        let mut out = Vec::new();
        read(&e, &mut out);
        let shown = show(&out);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(
            shown[0].1,
            "client_id=764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com"
        );
        assert_eq!(shown[0].2.as_deref(), Some("1//0refresh"));
        assert_eq!(
            shown[1].1,
            "client_email=deploy@acme-prod.iam.gserviceaccount.com key_id=8e2f0c4b1a3d5e7f9a0b2c4d6e8f0a1b2c3d4e5f project=acme-prod"
        );
        // The same key through the environment is one find.
        let e = env(
            home.path(),
            &[(
                "GOOGLE_APPLICATION_CREDENTIALS",
                home.path().join("keys/deploy.json").to_str().unwrap(),
            )],
        );
        let mut out = Vec::new();
        read(&e, &mut out);
        let shown = show(&out);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(
            shown[0].0,
            "~/keys/deploy.json (env:GOOGLE_APPLICATION_CREDENTIALS)"
        );
    }
}
