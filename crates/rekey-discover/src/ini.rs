//! The INI dialect of `~/.aws/credentials`, `~/.aws/config`, `~/.my.cnf`, gcloud
//! configurations and the Hugging Face `stored_tokens`: `[section]`, `key = value` (or
//! `key: value`), `#`/`;` comments. Each entry keeps its 1-based line.

use secrecy::SecretString;

/// One `key = value` line. The value may be a secret: it is kept only as a `SecretString`.
pub(crate) struct Entry {
    pub(crate) section: String,
    pub(crate) key: String,
    pub(crate) value: SecretString,
    pub(crate) line: usize,
}

/// Every entry of `text`, in order; lines that are neither a section nor an entry are skipped.
pub(crate) fn parse(text: &str) -> Vec<Entry> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.trim().clone_into(&mut section);
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        out.push(Entry {
            section: section.clone(),
            key: key.trim().to_ascii_lowercase(),
            value: SecretString::from(unquote(value.trim())),
            line: i + 1,
        });
    }
    out
}

/// `"value"` or `'value'` → `value`.
pub(crate) fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// The sections, in order of first appearance.
pub(crate) fn sections(entries: &[Entry]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for e in entries {
        if !out.contains(&e.section.as_str()) {
            out.push(&e.section);
        }
    }
    out
}

/// The entry `key` of `section`.
pub(crate) fn get<'a>(entries: &'a [Entry], section: &str, key: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .find(|e| e.section == section && e.key == key)
}
