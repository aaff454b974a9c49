//! The Hugging Face token cache, as `huggingface_hub` lays it out: `HF_TOKEN`; the active token
//! at `HF_TOKEN_PATH`, else `$HF_HOME/token` (`HF_HOME` default `~/.cache/huggingface`);
//! every saved token in `stored_tokens` (`HF_STORED_TOKENS_PATH`), an INI file of
//! `[name]` / `hf_token = …`.

use secrecy::{ExposeSecret, SecretString};

use super::{at, text};
use crate::{Environment, Origin, Raw, ini};

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let hf_home = env
        .path_var("HF_HOME")
        .unwrap_or_else(|| env.cache_dir().join("huggingface"));
    let token = env
        .path_var("HF_TOKEN_PATH")
        .unwrap_or_else(|| hf_home.join("token"));
    if let Some(t) = text(&token)
        && !t.trim().is_empty()
    {
        out.push(Raw::new(
            Origin::Huggingface,
            at(env, &token, 1),
            Some(SecretString::from(t.trim().to_owned())),
        ));
    }
    let stored = env
        .path_var("HF_STORED_TOKENS_PATH")
        .unwrap_or_else(|| hf_home.join("stored_tokens"));
    if let Some(t) = text(&stored) {
        for e in ini::parse(&t).into_iter().filter(|e| e.key == "hf_token") {
            if e.value.expose_secret().is_empty() {
                continue;
            }
            out.push(
                Raw::new(Origin::Huggingface, at(env, &stored, e.line), Some(e.value))
                    .id("token_name", e.section),
            );
        }
    }
    if let Some(v) = env.secret("HF_TOKEN") {
        out.push(Raw::new(
            Origin::Huggingface,
            "env:HF_TOKEN".into(),
            Some(v.clone()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn token_stored_tokens_and_environment() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".cache/huggingface/token",
            "hf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        );
        write(
            home.path(),
            ".cache/huggingface/stored_tokens",
            "[laptop-write]\nhf_token = hf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n[ci-read]\nhf_token = hf_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n",
        );
        // HF_HOME moves both files.
        write(
            home.path(),
            "hf/token",
            "hf_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
        );
        let e = env(
            home.path(),
            &[("HF_TOKEN", "hf_DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD")],
        );
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(
            show(&out),
            vec![
                (
                    "~/.cache/huggingface/token:1".into(),
                    String::new(),
                    Some("hf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())
                ),
                (
                    "~/.cache/huggingface/stored_tokens:2".into(),
                    "token_name=laptop-write".into(),
                    Some("hf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())
                ),
                (
                    "~/.cache/huggingface/stored_tokens:5".into(),
                    "token_name=ci-read".into(),
                    Some("hf_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".into())
                ),
                (
                    "env:HF_TOKEN".into(),
                    String::new(),
                    Some("hf_DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD".into())
                ),
            ]
        );
        let hf_home = home.path().join("hf");
        let e = env(home.path(), &[("HF_HOME", hf_home.to_str().unwrap())]);
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(show(&out)[0].0, "~/hf/token:1");
    }
}
