//! Reading one SBOM or lockfile into packages.
//!
//! The format is told by the content, never by the file name: a `package-lock.json` renamed to
//! `deps.json` reads the same. [`detect`] only looks; [`parse`] reads the whole document and says
//! which format it took the text for when something is wrong with it.
//!
//! What counts as a package: a release of a registry package (npm, `PyPI`, crates.io, Maven, Go
//! modules, GitHub Actions), which is what advisories name. The project itself (the `CycloneDX`
//! metadata component, uv's editable/virtual root, Cargo workspace members), linked workspace
//! folders and dependencies taken from git, a local path or a tarball URL are left out: an
//! advisory about `foo@1.2.3` on a registry says nothing about a checkout of `foo`'s repository.

// Samples and helpers the format modules' tests share; first, so that `scalibr!` is in scope in
// the modules below.
#[cfg(test)]
#[macro_use]
mod fixtures;

mod cargo_lock;
mod cyclonedx;
mod doc;
mod names;
mod npm_lock;
mod pnpm;
mod poetry;
mod purl;
mod requirements;
mod sniff;
mod spdx;
mod uv;
mod yarn;

use std::collections::BTreeSet;
use std::fmt;

use crate::Package;
use cargo_lock::read_cargo;
use cyclonedx::read_cyclonedx;
use doc::{not_json, toml_error};
use npm_lock::read_package_lock;
use pnpm::read_pnpm;
use poetry::read_poetry;
use requirements::read_requirements;
use sniff::{Doc, has_line, sniff};
use spdx::read_spdx;
use uv::read_uv;
use yarn::{read_yarn_berry, read_yarn_classic};

/// The kinds of document [`parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// `CycloneDX` JSON, spec 1.2 to 1.6 (components nested at any depth).
    CycloneDx,
    /// SPDX 2.x JSON (packages' `purl` external references).
    Spdx,
    /// npm's `package-lock.json` or `npm-shrinkwrap.json`, lockfile versions 1 to 3.
    PackageLock,
    /// `pnpm-lock.yaml`, lockfile versions 5 to 9.
    PnpmLock,
    /// `yarn.lock`, classic (v1) and berry (v2 and later).
    YarnLock,
    /// `poetry.lock`.
    PoetryLock,
    /// `uv.lock`.
    UvLock,
    /// `Cargo.lock`.
    CargoLock,
    /// A pip requirements file; only `name==version` pins are packages.
    Requirements,
}

impl Format {
    /// How the format is usually called, as it heads error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::CycloneDx => "CycloneDX",
            Self::Spdx => "SPDX",
            Self::PackageLock => "package-lock.json",
            Self::PnpmLock => "pnpm-lock.yaml",
            Self::YarnLock => "yarn.lock",
            Self::PoetryLock => "poetry.lock",
            Self::UvLock => "uv.lock",
            Self::CargoLock => "Cargo.lock",
            Self::Requirements => "requirements.txt",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One document read: its format and its packages, deduplicated and sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub format: Format,
    pub packages: Vec<Package>,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The content matches none of the formats.
    #[error(
        "not a recognized SBOM or lockfile (expected CycloneDX or SPDX JSON, package-lock.json, \
         pnpm-lock.yaml, yarn.lock, poetry.lock, uv.lock, Cargo.lock or requirements.txt)"
    )]
    Unrecognized,
    /// The document looks like `format` but is not well-formed JSON, YAML or TOML.
    #[error("{format}: invalid {syntax} at line {line}, column {column}: {message}")]
    Syntax {
        format: Format,
        /// `JSON`, `YAML` or `TOML`.
        syntax: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// One entry of the document is wrong, e.g. ``components[3]: missing `version` ``.
    #[error("{format}: {path}: {problem}")]
    Invalid {
        format: Format,
        path: String,
        problem: String,
    },
    /// The document is `format`, in a variant that is not read (`CycloneDX` XML, SPDX tag-value).
    #[error("{format}: {problem}")]
    Unsupported { format: Format, problem: String },
}

/// Which format `text` is in, from its content; `None` when it is none of them. A document that
/// is recognizably one format but broken (truncated JSON, say) is still detected, so that
/// [`parse`] can say what is wrong with it.
pub fn detect(text: &str) -> Option<Format> {
    sniff(text).map(|(format, _)| format)
}

/// Reads one SBOM or lockfile.
pub fn parse(text: &str) -> Result<Parsed, SbomError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, doc) = sniff(text).ok_or(SbomError::Unrecognized)?;
    let mut out = BTreeSet::new();
    match format {
        Format::CycloneDx | Format::Spdx | Format::PackageLock => {
            let Doc::Json(doc) = doc else {
                return Err(not_json(format, text));
            };
            match format {
                Format::CycloneDx => read_cyclonedx(&doc, &mut out)?,
                Format::Spdx => read_spdx(&doc, &mut out)?,
                _ => read_package_lock(&doc, &mut out)?,
            }
        }
        Format::PoetryLock | Format::UvLock | Format::CargoLock => {
            let doc = match doc {
                Doc::Toml(doc) => doc,
                _ => text
                    .parse::<toml::Table>()
                    .map_err(|e| toml_error(format, text, &e))?,
            };
            match format {
                Format::PoetryLock => read_poetry(&doc, &mut out)?,
                Format::UvLock => read_uv(&doc, &mut out)?,
                _ => read_cargo(&doc, &mut out)?,
            }
        }
        Format::PnpmLock => read_pnpm(text, &mut out)?,
        Format::YarnLock => {
            if has_line(text, |l| l.trim_end() == "__metadata:") {
                read_yarn_berry(text, &mut out)?;
            } else {
                read_yarn_classic(text, &mut out)?;
            }
        }
        Format::Requirements => read_requirements(text, &mut out),
    }
    Ok(Parsed {
        format,
        packages: out.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::fixtures::{CARGO_LOCK, CDX_NPM, PACKAGE_LOCK, SPDX_CARGO, error};
    use super::*;

    #[test]
    fn truncated_json_errors_name_the_format() {
        for (text, format) in [
            (CDX_NPM, Format::CycloneDx),
            (SPDX_CARGO, Format::Spdx),
            (PACKAGE_LOCK, Format::PackageLock),
        ] {
            let truncated = &text[..text.len() / 2];
            assert_eq!(detect(truncated), Some(format));
            let e = parse(truncated).expect_err("truncated");
            assert!(
                matches!(e, SbomError::Syntax { format: f, syntax: "JSON", line, .. } if f == format && line > 1),
                "{e:?}"
            );
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("{format}: invalid JSON at line ")),
                "{message}"
            );
            assert!(message.contains(": EOF while parsing"), "{message}");
        }
    }

    #[test]
    fn truncated_toml_and_yaml_errors_name_the_format() {
        let cut = CARGO_LOCK.find("checksum = \"").expect("a checksum") + 20;
        let e = error(&CARGO_LOCK[..cut]);
        assert!(
            e.starts_with("Cargo.lock: invalid TOML at line 9, column "),
            "{e}"
        );

        let e = error("lockfileVersion: '9.0'\npackages:\n  foo@1.0.0: {resolution: [\n");
        assert!(
            e.starts_with("pnpm-lock.yaml: invalid YAML at line "),
            "{e}"
        );
    }

    #[test]
    fn unrecognized_documents() {
        let expected = "not a recognized SBOM or lockfile (expected CycloneDX or SPDX JSON, \
                        package-lock.json, pnpm-lock.yaml, yarn.lock, poetry.lock, uv.lock, \
                        Cargo.lock or requirements.txt)";
        for text in [
            "",
            "   \n",
            "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit.\n",
            "hello\n",
            "- item one\n- item two\n",
            "Flask==2.0 is required\n",
            "{}",
            "[1, 2, 3]",
            r#"{"name": "x", "version": "1.0.0", "dependencies": {"a": "^1"}}"#,
            "[server]\nport = 80\n",
            include_str!("../../tests/data/osv/MAL-2026-2307_npm_axios.json"),
        ] {
            assert_eq!(detect(text), None, "{text}");
            assert_eq!(error(text), expected);
        }
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::CycloneDx.to_string(), "CycloneDX");
        assert_eq!(Format::PackageLock.to_string(), "package-lock.json");
        assert_eq!(Format::Requirements.to_string(), "requirements.txt");
    }
}
