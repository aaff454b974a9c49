//! What services are built from: SBOMs and lockfiles read into normalized packages, and OSV
//! advisories matched against them.

pub mod blast;
#[cfg(feature = "index")]
pub mod incident;
#[cfg(feature = "index")]
pub mod index;
pub mod osv;
pub mod sbom;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A package ecosystem, as OSV and purl name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Npm,
    PyPI,
    Cargo,
    Maven,
    Go,
    GitHubActions,
    Other,
}

impl Ecosystem {
    /// The OSV ecosystem name (`npm`, `PyPI`, `crates.io`, `Maven`, `Go`, `GitHub Actions`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::PyPI => "PyPI",
            Self::Cargo => "crates.io",
            Self::Maven => "Maven",
            Self::Go => "Go",
            Self::GitHubActions => "GitHub Actions",
            Self::Other => "other",
        }
    }

    /// The purl type (`npm`, `pypi`, `cargo`, `maven`, `golang`, `github`).
    pub fn purl_type(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::PyPI => "pypi",
            Self::Cargo => "cargo",
            Self::Maven => "maven",
            Self::Go => "golang",
            Self::GitHubActions => "github",
            Self::Other => "generic",
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.purl_type())
    }
}

/// One package at one version, with its name normalized for its ecosystem: npm names keep
/// their scope (`@ctrl/tinycolor`), `PyPI` names follow PEP 503 (`ruamel.yaml` → `ruamel-yaml`),
/// Maven names are `group:artifact`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
}

/// PEP 503: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Normalizes a name for its ecosystem.
pub fn normalize_name(ecosystem: Ecosystem, name: &str) -> String {
    match ecosystem {
        Ecosystem::PyPI => pep503(name),
        // npm names are lowercase by rule; crates are matched case-insensitively by crates.io.
        Ecosystem::Npm | Ecosystem::Cargo => name.to_lowercase(),
        _ => name.to_owned(),
    }
}

impl Package {
    pub fn new(ecosystem: Ecosystem, name: &str, version: &str) -> Self {
        Self {
            ecosystem,
            name: normalize_name(ecosystem, name),
            version: version.trim().to_owned(),
        }
    }
}

/// Decodes `%XX` escapes (purls); the result must be UTF-8. Strict: exactly two hex digits
/// (`u8::from_str_radix` alone would take `%+1`).
pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = match bytes.get(i + 1..i + 3) {
                Some(&[h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    // Two hex digits (checked above), ASCII: cannot fail.
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                    u8::from_str_radix(hex, 16).unwrap_or(0)
                }
                _ => {
                    // `i` is at a `%`, a character boundary.
                    let shown: String = s[i..].chars().take(3).collect();
                    return Err(format!("bad percent-escape `{shown}`"));
                }
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_names() {
        assert_eq!(pep503("ruamel.yaml"), "ruamel-yaml");
        assert_eq!(pep503("Flask_SQLAlchemy"), "flask-sqlalchemy");
        assert_eq!(pep503("a--b__c..d"), "a-b-c-d");
    }
}
