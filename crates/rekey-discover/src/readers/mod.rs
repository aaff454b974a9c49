//! One reader per place credentials live. Each appends [`Raw`] finds; a missing file is no
//! find, an unreadable one is skipped (discovery looks, it does not insist).

pub mod aws;
pub mod database;
pub mod docker;
pub mod envfile;
pub mod gcp;
pub mod github;
pub mod huggingface;
pub mod npm;

use std::path::{Path, PathBuf};

use crate::{Environment, Raw};

/// Every reader over `env`.
pub fn read_all(env: &Environment) -> Vec<Raw> {
    let mut out = Vec::new();
    aws::read(env, &mut out);
    npm::read(env, &mut out);
    github::read(env, &mut out);
    huggingface::read(env, &mut out);
    gcp::read(env, &mut out);
    docker::read(env, &mut out);
    envfile::read(env, &mut out);
    database::read(env, &mut out);
    out
}

/// A file's text, or nothing when it is absent or unreadable.
pub(crate) fn text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Files under the `--path` folders whose name `want` accepts, at most 6 levels deep,
/// skipping dependency and VCS folders; sorted.
pub(crate) fn project_files(env: &Environment, want: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, want: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let Ok(ty) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ty.is_dir() {
                if depth < 6
                    && !matches!(name.as_str(), "node_modules" | ".git" | "target" | ".venv")
                {
                    walk(&e.path(), depth + 1, want, out);
                }
            } else if ty.is_file() && want(&name) {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    for p in &env.paths {
        if p.is_file() {
            if p.file_name().is_some_and(|n| want(&n.to_string_lossy())) {
                out.push(p.clone());
            }
        } else {
            walk(p, 0, want, &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `~/x:3`.
pub(crate) fn at(env: &Environment, path: &Path, line: usize) -> String {
    format!("{}:{line}", env.show(path))
}

/// Standard base64 (with or without padding), for Docker's `auth` and npm's `_auth`.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).expect("masked to a byte"));
        }
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;
    use std::path::Path;

    use secrecy::SecretString;

    use crate::Environment;

    /// An environment over a temporary home, with these variables.
    pub(crate) fn env(home: &Path, vars: &[(&str, &str)]) -> Environment {
        Environment {
            home: home.to_owned(),
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
                .collect::<BTreeMap<_, _>>(),
            paths: Vec::new(),
        }
    }

    pub(crate) fn write(home: &Path, rel: &str, text: &str) {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// (source, ids as `k=v` joined by space, value) of each find.
    pub(crate) fn show(raws: &[crate::Raw]) -> Vec<(String, String, Option<String>)> {
        use secrecy::ExposeSecret;
        raws.iter()
            .map(|r| {
                let ids: Vec<String> = r.ids.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (
                    r.source.clone(),
                    ids.join(" "),
                    r.value.as_ref().map(|v| v.expose_secret().to_owned()),
                )
            })
            .collect()
    }
}
