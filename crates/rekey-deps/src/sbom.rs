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

use std::collections::BTreeSet;
use std::fmt;

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{LoadError, Node};
use serde_json::{Map, Value};

use crate::{Ecosystem, Package};

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

// ---------------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------------

/// What detection already parsed, so that [`parse`] does not parse it twice.
enum Doc {
    Json(Value),
    Toml(toml::Table),
    Text,
}

fn sniff(text: &str) -> Option<(Format, Doc)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let start = text.trim_start();
    if start.starts_with('{') {
        return sniff_json(text);
    }
    if start.starts_with('<') {
        // CycloneDX XML: recognized, so that the error can say to export JSON instead.
        return text
            .contains("cyclonedx.org/schema/bom")
            .then_some((Format::CycloneDx, Doc::Text));
    }
    if has_line(text, |l| l.starts_with("SPDXVersion:")) {
        return Some((Format::Spdx, Doc::Text));
    }
    if has_line(text, |l| l.starts_with("lockfileVersion:")) {
        return Some((Format::PnpmLock, Doc::Text));
    }
    if has_line(text, |l| {
        l.trim_end() == "__metadata:" || l.trim_end() == "# yarn lockfile v1"
    }) || looks_like_yarn_classic(text)
    {
        return Some((Format::YarnLock, Doc::Text));
    }
    if has_line(text, |l| {
        let l = l.trim_end();
        l == "[[package]]" || l == "[metadata]" || l.starts_with("package = [")
    }) {
        return sniff_toml(text);
    }
    looks_like_requirements(text).then_some((Format::Requirements, Doc::Text))
}

fn has_line(text: &str, pred: impl FnMut(&str) -> bool) -> bool {
    text.lines().any(pred)
}

fn sniff_json(text: &str) -> Option<(Format, Doc)> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        // Broken JSON: go by its keys, so that the error names the format it was meant to be.
        let format = if json_key_value(text, "bomFormat", "\"CycloneDX\"") {
            Format::CycloneDx
        } else if json_key_value(text, "spdxVersion", "") {
            Format::Spdx
        } else if json_key_value(text, "lockfileVersion", "") {
            Format::PackageLock
        } else {
            return None;
        };
        return Some((format, Doc::Text));
    };
    let obj = value.as_object()?;
    let format = if obj.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        Format::CycloneDx
    } else if obj.contains_key("spdxVersion") {
        Format::Spdx
    } else if obj.contains_key("lockfileVersion")
        && (obj.contains_key("packages") || obj.contains_key("dependencies"))
    {
        Format::PackageLock
    } else {
        return None;
    };
    Some((format, Doc::Json(value)))
}

/// Whether `"key"` occurs as a JSON object key (not inside a string) followed by a value starting
/// with `value`.
fn json_key_value(text: &str, key: &str, value: &str) -> bool {
    let quoted = format!("\"{key}\"");
    text.match_indices(&quoted).any(|(at, _)| {
        if text[..at].ends_with('\\') {
            return false;
        }
        let rest = text[at + quoted.len()..].trim_start();
        rest.strip_prefix(':')
            .is_some_and(|rest| rest.trim_start().starts_with(value))
    })
}

fn sniff_toml(text: &str) -> Option<(Format, Doc)> {
    let generated_by = |tool: &str| {
        text.lines()
            .take_while(|l| l.starts_with('#') || l.trim().is_empty())
            .any(|l| l.contains(&format!("@generated by {tool}")))
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        // Broken TOML: go by the tool's header comment and telltale lines.
        let format = if generated_by("Poetry") || text.contains("\ncontent-hash = ") {
            Format::PoetryLock
        } else if generated_by("Cargo") || text.contains("\nsource = \"registry+") {
            Format::CargoLock
        } else if has_line(text, |l| l.starts_with("requires-python = "))
            || text.contains("\nsource = { ")
        {
            Format::UvLock
        } else {
            return None;
        };
        return Some((format, Doc::Text));
    };
    let packages = table
        .get("package")
        .and_then(toml::Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let metadata = table.get("metadata").and_then(toml::Value::as_table);
    let source_is =
        |pred: fn(&toml::Value) -> bool| packages.iter().filter_map(|p| p.get("source")).any(pred);
    let format = if metadata.is_some_and(|m| {
        m.contains_key("lock-version")
            || m.contains_key("content-hash")
            || m.contains_key("python-versions")
    }) || generated_by("Poetry")
    {
        Format::PoetryLock
    } else if table.contains_key("requires-python")
        || table.contains_key("manifest")
        || source_is(toml::Value::is_table)
    {
        Format::UvLock
    } else if generated_by("Cargo")
        || source_is(toml::Value::is_str)
        || packages.iter().any(|p| p.get("checksum").is_some())
        || metadata.is_some_and(|m| m.keys().any(|k| k.starts_with("checksum ")))
    {
        Format::CargoLock
    } else {
        return None;
    };
    Some((format, Doc::Toml(table)))
}

fn looks_like_yarn_classic(text: &str) -> bool {
    // `"@scope/a@^1.0.0", a@~1.0:` then `  version "1.2.3"` on one of the next lines.
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let Some(first) = lines.next() else {
        return false;
    };
    !first.starts_with(' ')
        && first.trim_end().ends_with(':')
        && first.contains('@')
        && lines
            .take_while(|l| l.starts_with(' '))
            .any(|l| l.starts_with("  version \"") || l.starts_with("  version: "))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn invalid(format: Format, path: impl Into<String>, problem: impl Into<String>) -> SbomError {
    SbomError::Invalid {
        format,
        path: path.into(),
        problem: problem.into(),
    }
}

fn not_json(format: Format, text: &str) -> SbomError {
    let start = text.trim_start();
    if start.starts_with('<') {
        return SbomError::Unsupported {
            format,
            problem: "XML documents are not read; export the SBOM as JSON".to_owned(),
        };
    }
    if !start.starts_with('{') {
        return SbomError::Unsupported {
            format,
            problem: "tag-value documents are not read; export the SBOM as SPDX JSON".to_owned(),
        };
    }
    match serde_json::from_str::<Value>(text) {
        Err(e) => {
            let position = format!(" at line {} column {}", e.line(), e.column());
            let message = e.to_string();
            SbomError::Syntax {
                format,
                syntax: "JSON",
                line: e.line(),
                column: e.column(),
                message: message
                    .strip_suffix(&position)
                    .unwrap_or(&message)
                    .to_owned(),
            }
        }
        Ok(v) => invalid(
            format,
            "(document)",
            format!("expected an object, found {}", json_kind(&v)),
        ),
    }
}

fn toml_error(format: Format, text: &str, e: &toml::de::Error) -> SbomError {
    let (line, column) = e
        .span()
        .map_or((0, 0), |span| line_column(text, span.start));
    SbomError::Syntax {
        format,
        syntax: "TOML",
        line,
        column,
        message: e.message().trim_end().to_owned(),
    }
}

fn yaml_error(format: Format, e: &LoadError) -> SbomError {
    let (marker, message) = match e {
        LoadError::TopLevelMustBeMapping(m) => (Some(m), "the top level must be a mapping"),
        LoadError::TopLevelMustBeSequence(m) => (Some(m), "the top level must be a sequence"),
        LoadError::UnexpectedAnchor(m) => (Some(m), "anchors and aliases are not supported"),
        LoadError::MappingKeyMustBeScalar(m) => (Some(m), "mapping keys must be scalars"),
        LoadError::UnexpectedTag(m) => (Some(m), "tags are not supported"),
        LoadError::ScanError(m, scan) => (Some(m), scan.info()),
        LoadError::DuplicateKey(inner) => (inner.key.span().start(), "duplicate key"),
    };
    SbomError::Syntax {
        format,
        syntax: "YAML",
        line: marker.map_or(0, marked_yaml::Marker::line),
        column: marker.map_or(0, marked_yaml::Marker::column),
        message: message.to_owned(),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // A parser's offset may fall inside a character: round down rather than panic.
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_object(
    format: Format,
    path: impl std::fmt::Display,
    v: &Value,
) -> Result<&Map<String, Value>, SbomError> {
    v.as_object().ok_or_else(|| {
        invalid(
            format,
            path.to_string(),
            format!("expected an object, found {}", json_kind(v)),
        )
    })
}

fn json_array(
    format: Format,
    path: impl std::fmt::Display,
    v: &Value,
) -> Result<&[Value], SbomError> {
    v.as_array().map(Vec::as_slice).ok_or_else(|| {
        invalid(
            format,
            path.to_string(),
            format!("expected an array, found {}", json_kind(v)),
        )
    })
}

/// An optional string field: absent and `null` are `None`, another type is an error.
fn json_str<'a>(
    format: Format,
    path: impl std::fmt::Display,
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, SbomError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(
            format,
            path.to_string(),
            format!("`{field}`: expected a string, found {}", json_kind(other)),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Package URLs
// ---------------------------------------------------------------------------------------------

/// A purl read leniently, as SBOMs write them: the version is optional (the SBOM may give it
/// elsewhere) and is not checked against its ecosystem's scheme.
#[derive(Debug, PartialEq, Eq)]
struct Purl {
    ecosystem: Ecosystem,
    name: String,
    version: Option<String>,
}

/// Reads `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS#SUBPATH`. `Ok(None)` for a type that does
/// not map to an ecosystem advisories are matched in (`deb`, `generic`, ...).
fn read_purl(purl: &str) -> Result<Option<Purl>, String> {
    let s = purl.trim();
    let rest = match s.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => &s[4..],
        _ => {
            return Err(format!(
                "invalid purl `{purl}`: it does not start with `pkg:`"
            ));
        }
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let Some((purl_type, rest)) = rest.split_once('/') else {
        return Err(format!("invalid purl `{purl}`: expected `pkg:TYPE/NAME`"));
    };
    let ecosystem = match purl_type.to_ascii_lowercase().as_str() {
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "cargo" => Ecosystem::Cargo,
        "maven" => Ecosystem::Maven,
        "golang" => Ecosystem::Go,
        "github" => Ecosystem::GitHubActions,
        "" => return Err(format!("invalid purl `{purl}`: missing type after `pkg:`")),
        _ => return Ok(None),
    };
    // The version follows the last `@` of the last segment: an npm scope may be written with a
    // bare `@` (`pkg:npm/@babel/core@7.0.0`).
    let segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, version) = match rest[segment_start..].rfind('@') {
        Some(at) if segment_start + at > 0 => {
            let at = segment_start + at;
            (&rest[..at], Some(&rest[at + 1..]))
        }
        _ => (rest, None),
    };
    let fail = |problem: &str| format!("invalid purl `{purl}`: {problem}");
    let version = version
        .map(crate::percent_decode)
        .transpose()
        .map_err(|e| fail(&e))?
        .filter(|v| !v.trim().is_empty());
    let mut segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(crate::percent_decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&e))?;
    let Some(last) = segments.pop() else {
        return Err(fail("missing package name"));
    };
    let name = match (ecosystem, segments.as_slice()) {
        // The whole module path (`github.com/foo/bar`) for Go, or `stdlib` as syft writes Go.
        (Ecosystem::Npm | Ecosystem::PyPI | Ecosystem::Cargo | Ecosystem::Go, []) => last,
        (Ecosystem::Npm, [scope]) => {
            format!("@{}/{last}", scope.strip_prefix('@').unwrap_or(scope))
        }
        (Ecosystem::Maven, [group]) => format!("{group}:{last}"),
        (Ecosystem::GitHubActions, [owner]) => format!("{owner}/{last}"),
        (Ecosystem::Go, module) => format!("{}/{last}", module.join("/")),
        (Ecosystem::Maven, _) => return Err(fail("expected `pkg:maven/GROUP/ARTIFACT`")),
        (Ecosystem::GitHubActions, _) => return Err(fail("expected `pkg:github/OWNER/REPO`")),
        (_, namespace) => {
            return Err(fail(&format!(
                "unexpected namespace `{}` for a {purl_type} package",
                namespace.join("/")
            )));
        }
    };
    Ok(Some(Purl {
        ecosystem,
        name,
        version,
    }))
}

/// The package a purl names, with `fallback_version` when the purl has none. `Ok(None)` for a
/// purl type that is not read.
fn purl_package(purl: &str, fallback_version: Option<&str>) -> Result<Option<Package>, String> {
    let Some(p) = read_purl(purl)? else {
        return Ok(None);
    };
    let version = p
        .version
        .as_deref()
        .or(fallback_version.filter(|v| !v.trim().is_empty()))
        .ok_or_else(|| format!("missing `version` (the purl `{purl}` has none either)"))?;
    Ok(Some(Package::new(p.ecosystem, &p.name, version)))
}

// ---------------------------------------------------------------------------------------------
// CycloneDX and SPDX
// ---------------------------------------------------------------------------------------------

fn read_cyclonedx(doc: &Value, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::CycloneDx;
    let doc = json_object(F, "(document)", doc)?;
    let root_ref = doc
        .get("metadata")
        .and_then(|m| m.get("component"))
        .and_then(|c| c.get("bom-ref"))
        .and_then(Value::as_str);
    match doc.get("components") {
        None | Some(Value::Null) => Ok(()),
        Some(components) => {
            let list = json_array(F, "components", components)?;
            read_components(list, "components", root_ref, out)
        }
    }
}

/// `path[i]`, formatted only when an error names it (a large SBOM has millions of these).
struct Elem<'a>(&'a str, usize);

impl std::fmt::Display for Elem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

fn read_components(
    list: &[Value],
    path: &str,
    root_ref: Option<&str>,
    out: &mut BTreeSet<Package>,
) -> Result<(), SbomError> {
    const F: Format = Format::CycloneDx;
    for (i, component) in list.iter().enumerate() {
        let here = Elem(path, i);
        let obj = json_object(F, &here, component)?;
        let is_root = root_ref.is_some() && json_str(F, &here, obj, "bom-ref")? == root_ref;
        if !is_root && let Some(purl) = json_str(F, &here, obj, "purl")? {
            let version = json_str(F, &here, obj, "version")?;
            if let Some(p) =
                purl_package(purl, version).map_err(|e| invalid(F, here.to_string(), e))?
            {
                out.insert(p);
            }
        }
        match obj.get("components") {
            None | Some(Value::Null) => {}
            Some(children) => {
                let children_path = format!("{here}.components");
                let children = json_array(F, &children_path, children)?;
                read_components(children, &children_path, root_ref, out)?;
            }
        }
    }
    Ok(())
}

fn read_spdx(doc: &Value, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::Spdx;
    let doc = json_object(F, "(document)", doc)?;
    let packages = match doc.get("packages") {
        None | Some(Value::Null) => return Ok(()),
        Some(v) => json_array(F, "packages", v)?,
    };
    for (i, package) in packages.iter().enumerate() {
        let here = format!("packages[{i}]");
        let obj = json_object(F, &here, package)?;
        let version = json_str(F, &here, obj, "versionInfo")?
            .filter(|v| !matches!(*v, "NOASSERTION" | "NONE"));
        let refs = match obj.get("externalRefs") {
            None | Some(Value::Null) => continue,
            Some(v) => json_array(F, format!("{here}.externalRefs"), v)?,
        };
        for (j, reference) in refs.iter().enumerate() {
            let at = format!("{here}.externalRefs[{j}]");
            let reference = json_object(F, &at, reference)?;
            // SPDX 2.3 spells the category `PACKAGE-MANAGER`, 2.2 `PACKAGE_MANAGER`.
            let category = json_str(F, &at, reference, "referenceCategory")?.unwrap_or_default();
            let kind = json_str(F, &at, reference, "referenceType")?.unwrap_or_default();
            if !category
                .replace('_', "-")
                .eq_ignore_ascii_case("PACKAGE-MANAGER")
                || !kind.eq_ignore_ascii_case("purl")
            {
                continue;
            }
            let Some(purl) = json_str(F, &at, reference, "referenceLocator")? else {
                return Err(invalid(F, at, "missing `referenceLocator`"));
            };
            if let Some(p) = purl_package(purl, version).map_err(|e| invalid(F, &at, e))? {
                out.insert(p);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// npm, pnpm, yarn
// ---------------------------------------------------------------------------------------------

/// A version as registries publish them (`1.2.3`, not a git ref, URL or path).
fn is_release(version: &str) -> bool {
    version.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether a `resolved` URL or a dependency range points outside the registry.
fn is_off_registry(spec: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "git+",
        "git:",
        "git@",
        "github:",
        "gitlab:",
        "bitbucket:",
        "file:",
        "link:",
        "portal:",
        "workspace:",
    ];
    PREFIXES.iter().any(|p| spec.starts_with(p))
}

/// Splits `name@rest` at the `@` after the name, so an npm scope's `@` is not taken for it.
fn split_npm(spec: &str) -> Option<(&str, &str)> {
    let at = 1 + spec.get(1..)?.find('@')?;
    Some((&spec[..at], &spec[at + 1..]))
}

fn read_package_lock(doc: &Value, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::PackageLock;
    let doc = json_object(F, "(document)", doc)?;
    if let Some(packages) = doc.get("packages") {
        // Lockfile v2 and v3: keys are install paths.
        let packages = json_object(F, "packages", packages)?;
        for (key, entry) in packages {
            let Some(folder) = key.rfind("node_modules/") else {
                continue; // the root "" and workspace folders: the project's own code
            };
            let here = format!("packages[\"{key}\"]");
            let entry = json_object(F, &here, entry)?;
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue; // a symlink to a workspace folder
            }
            let resolved = json_str(F, &here, entry, "resolved")?;
            let Some(version) = json_str(F, &here, entry, "version")? else {
                if resolved.is_some() {
                    return Err(invalid(F, here, "missing `version`"));
                }
                continue; // nothing installed there
            };
            // An alias (`"string-width-cjs": "npm:string-width@^4"`) installs the real
            // package, named by `name`, under the alias's folder.
            let name = json_str(F, &here, entry, "name")?
                .unwrap_or(&key[folder + "node_modules/".len()..]);
            if is_release(version) && !resolved.is_some_and(is_off_registry) {
                out.insert(Package::new(Ecosystem::Npm, name, version));
            }
        }
        Ok(())
    } else if let Some(dependencies) = doc.get("dependencies") {
        read_package_lock_v1(dependencies, "dependencies", out)
    } else {
        Ok(())
    }
}

fn read_package_lock_v1(
    dependencies: &Value,
    path: &str,
    out: &mut BTreeSet<Package>,
) -> Result<(), SbomError> {
    const F: Format = Format::PackageLock;
    for (name, entry) in json_object(F, path, dependencies)? {
        let here = format!("{path}[\"{name}\"]");
        let entry = json_object(F, &here, entry)?;
        let Some(version) = json_str(F, &here, entry, "version")? else {
            return Err(invalid(F, here, "missing `version`"));
        };
        // An alias: `"string-width-cjs": {"version": "npm:string-width@4.2.0"}`.
        let (name, version) = match version.strip_prefix("npm:") {
            Some(aliased) => split_npm(aliased)
                .ok_or_else(|| invalid(F, &here, format!("cannot read the alias `{version}`")))?,
            None => (name.as_str(), version),
        };
        let resolved = json_str(F, &here, entry, "resolved")?;
        if is_release(version) && !resolved.is_some_and(is_off_registry) {
            out.insert(Package::new(Ecosystem::Npm, name, version));
        }
        if let Some(nested) = entry.get("dependencies") {
            read_package_lock_v1(nested, &format!("{here}.dependencies"), out)?;
        }
    }
    Ok(())
}

fn read_yaml_mapping(format: Format, text: &str) -> Result<MarkedMappingNode, SbomError> {
    match marked_yaml::parse_yaml(0, text).map_err(|e| yaml_error(format, &e))? {
        Node::Mapping(map) => Ok(map),
        _ => Err(invalid(format, "(document)", "expected a mapping")),
    }
}

fn yaml_path(key: &marked_yaml::types::MarkedScalarNode, parent: &str) -> String {
    match key.span().start() {
        Some(m) => format!("{parent}[\"{}\"] (line {})", key.as_str(), m.line()),
        None => format!("{parent}[\"{}\"]", key.as_str()),
    }
}

fn read_pnpm(text: &str, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::PnpmLock;
    let doc = read_yaml_mapping(F, text)?;
    let lockfile_version = doc
        .get_scalar("lockfileVersion")
        .map(|s| s.as_str().to_owned());
    let major = lockfile_version
        .as_deref()
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| invalid(F, "lockfileVersion", "expected a version such as '9.0'"))?;
    let packages = match doc.get_node("packages") {
        None => return Ok(()),
        Some(Node::Scalar(s)) if s.as_str().trim().is_empty() => return Ok(()),
        Some(Node::Mapping(m)) => m,
        Some(_) => return Err(invalid(F, "packages", "expected a mapping")),
    };
    for key in packages.keys() {
        match pnpm_key(key.as_str(), major) {
            Ok(Some((name, version))) => {
                out.insert(Package::new(Ecosystem::Npm, name, version));
            }
            Ok(None) => {}
            Err(problem) => return Err(invalid(F, yaml_path(key, "packages"), problem)),
        }
    }
    Ok(())
}

/// Reads a `packages:` key: `name@1.0.0` (v9), `/name@1.0.0(peer@2.0.0)` (v6),
/// `/name/1.0.0_peer@2.0.0` (v5). `Ok(None)` for a package not from the registry: a git commit,
/// a tarball, a local directory.
fn pnpm_key(key: &str, major: u32) -> Result<Option<(&str, &str)>, String> {
    let key = match key.strip_prefix('/') {
        Some(k) => k,
        // Before v9, registry packages are `/...`; others start with a host or `file:`.
        None if major < 9 => return Ok(None),
        None => key,
    };
    let (name, version) = if major < 6 {
        let slash = key
            .rfind('/')
            .ok_or_else(|| "expected `/NAME/VERSION`".to_owned())?;
        let version = &key[slash + 1..];
        let version = version.split_once('_').map_or(version, |(v, _)| v);
        (&key[..slash], version)
    } else {
        let key = key.split_once('(').map_or(key, |(k, _)| k);
        split_npm(key).ok_or_else(|| "expected `NAME@VERSION`".to_owned())?
    };
    if name.is_empty() || name == "@" {
        return Err("missing package name".to_owned());
    }
    Ok(is_release(version).then_some((name, version)))
}

fn read_yarn_berry(text: &str, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::YarnLock;
    for (key, entry) in read_yaml_mapping(F, text)?.iter() {
        if key.as_str() == "__metadata" {
            continue;
        }
        let Some(entry) = entry.as_mapping() else {
            return Err(invalid(F, yaml_path(key, ""), "expected a mapping"));
        };
        let Some(resolution) = entry.get_scalar("resolution") else {
            return Err(invalid(F, yaml_path(key, ""), "missing `resolution`"));
        };
        // `name@npm:1.2.3` for registry packages; workspaces, patches, git, links and files
        // resolve through other protocols.
        let resolution = resolution.as_str();
        let Some(at) = resolution
            .get(1..)
            .and_then(|r| r.find("@npm:"))
            .map(|i| i + 1)
        else {
            continue;
        };
        let (name, version) = (&resolution[..at], &resolution[at + "@npm:".len()..]);
        if is_release(version) {
            out.insert(Package::new(Ecosystem::Npm, name, version));
        }
    }
    Ok(())
}

fn read_yarn_classic(text: &str, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::YarnLock;
    // (line number, header, version)
    let mut entry: Option<(usize, &str, Option<&str>)> = None;
    let mut finish = |entry: Option<(usize, &str, Option<&str>)>| -> Result<(), SbomError> {
        let Some((line, header, version)) = entry else {
            return Ok(());
        };
        let here = format!("line {line}: `{header}`");
        let version = version.ok_or_else(|| invalid(F, &here, "missing `version`"))?;
        // Every specifier of an entry resolves to the same package; the first names it.
        let first = header
            .split(", ")
            .next()
            .unwrap_or(header)
            .trim()
            .trim_matches('"');
        let (name, range) =
            split_npm(first).ok_or_else(|| invalid(F, &here, "expected `NAME@RANGE:`"))?;
        let name = match range.strip_prefix("npm:") {
            // An alias: `string-width-cjs@npm:string-width@^4.2.0`.
            Some(aliased) => split_npm(aliased).map_or(aliased, |(real, _)| real),
            None if range.contains("://") || range.contains('/') || is_off_registry(range) => {
                return Ok(());
            }
            None => name,
        };
        if is_release(version) {
            out.insert(Package::new(Ecosystem::Npm, name, version));
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            finish(entry.take())?;
            let Some(header) = line.trim_end().strip_suffix(':') else {
                return Err(invalid(
                    F,
                    format!("line {}", i + 1),
                    format!("expected `NAME@RANGE:`, found `{line}`"),
                ));
            };
            entry = Some((i + 1, header, None));
        } else if let Some(version) = line.strip_prefix("  version ")
            && let Some((_, _, slot)) = entry.as_mut()
        {
            *slot = Some(version.trim().trim_matches('"'));
        }
    }
    finish(entry)
}

// ---------------------------------------------------------------------------------------------
// poetry, uv, Cargo
// ---------------------------------------------------------------------------------------------

/// The `[[package]]` tables, with their index.
fn toml_packages(
    format: Format,
    doc: &toml::Table,
) -> Result<Vec<(String, &toml::Table)>, SbomError> {
    let Some(packages) = doc.get("package") else {
        return Ok(Vec::new());
    };
    let packages = packages
        .as_array()
        .ok_or_else(|| invalid(format, "package", "expected an array of tables"))?;
    packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let here = format!("package[{i}]");
            p.as_table()
                .map(|t| (here.clone(), t))
                .ok_or_else(|| invalid(format, here, "expected a table"))
        })
        .collect()
}

fn toml_str<'a>(
    format: Format,
    path: &str,
    table: &'a toml::Table,
    field: &str,
) -> Result<&'a str, SbomError> {
    match table.get(field) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(
            format,
            path,
            format!("`{field}`: expected a string, found {}", other.type_str()),
        )),
        None => Err(invalid(format, path, format!("missing `{field}`"))),
    }
}

fn read_poetry(doc: &toml::Table, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::PoetryLock;
    for (here, package) in toml_packages(F, doc)? {
        // `[package.source]`: `legacy` (another index) and `url` are releases; a `git`
        // checkout, a local `directory` or `file` are not.
        let source_type = package
            .get("source")
            .and_then(|s| s.get("type"))
            .and_then(toml::Value::as_str);
        if matches!(source_type, Some("git" | "directory" | "file")) {
            continue;
        }
        let name = toml_str(F, &here, package, "name")?;
        let version = toml_str(F, &here, package, "version")?;
        out.insert(Package::new(Ecosystem::PyPI, name, version));
    }
    Ok(())
}

fn read_uv(doc: &toml::Table, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::UvLock;
    for (here, package) in toml_packages(F, doc)? {
        // `source = { registry = ... }` or `{ url = ... }` are releases; `editable` and
        // `virtual` are the project itself, `path`, `directory` and `git` not releases.
        // Early uv wrote the source as a string (`registry+https://...`).
        let release = match package.get("source") {
            None => true,
            Some(toml::Value::Table(source)) => {
                source.contains_key("registry") || source.contains_key("url")
            }
            Some(toml::Value::String(source)) => {
                source.starts_with("registry+") || source.starts_with("direct+")
            }
            Some(_) => return Err(invalid(F, here, "`source`: expected a table")),
        };
        if !release {
            continue;
        }
        let name = toml_str(F, &here, package, "name")?;
        let version = toml_str(F, &here, package, "version")?;
        out.insert(Package::new(Ecosystem::PyPI, name, version));
    }
    Ok(())
}

fn read_cargo(doc: &toml::Table, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::CargoLock;
    for (here, package) in toml_packages(F, doc)? {
        // No `source`: a workspace member or a path dependency. `git+`: not a release.
        let Some(source) = package.get("source") else {
            continue;
        };
        let source = source
            .as_str()
            .ok_or_else(|| invalid(F, &here, "`source`: expected a string"))?;
        if !(source.starts_with("registry+") || source.starts_with("sparse+")) {
            continue;
        }
        let name = toml_str(F, &here, package, "name")?;
        let version = toml_str(F, &here, package, "version")?;
        out.insert(Package::new(Ecosystem::Cargo, name, version));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// requirements.txt
// ---------------------------------------------------------------------------------------------

/// pip's options that may stand on a line of their own.
const PIP_OPTIONS: [&str; 24] = [
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--hash",
    "--require-hashes",
    "--pre",
    "--trusted-host",
    "--use-feature",
    "--no-binary",
    "--only-binary",
    "--prefer-binary",
    "--config-settings",
    "-C",
    "-Z",
    "--always-unzip",
];

/// One logical line of a requirements file, read.
#[derive(Debug, PartialEq, Eq)]
enum ReqLine<'a> {
    /// A pip option such as `-r other.txt` or `--index-url ...`.
    Option,
    /// A requirement by URL or path (`./pkg`, `name @ https://...`): not a release pin.
    Direct,
    /// `name[extras] SPECIFIERS`; `pin` is the version of an `==`/`===` specifier.
    Requirement {
        name: &'a str,
        pin: Option<&'a str>,
        constrained: bool,
    },
    /// Not requirements syntax.
    Other,
}

/// The logical lines: `\` continuations joined, comments and blank lines dropped.
fn requirement_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        if let Some(continued) = raw.trim_end().strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
            continue;
        }
        current.push_str(raw);
        let line = strip_comment(&current).trim();
        if !line.is_empty() {
            lines.push(line.to_owned());
        }
        current.clear();
    }
    let line = strip_comment(&current).trim();
    if !line.is_empty() {
        lines.push(line.to_owned());
    }
    lines
}

/// pip's comments: `#` at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    line.find(" #")
        .or_else(|| line.find("\t#"))
        .map_or(line, |i| &line[..i])
}

fn read_requirement_line(line: &str) -> ReqLine<'_> {
    if line.starts_with('-') {
        let known = PIP_OPTIONS.iter().any(|option| {
            line.strip_prefix(option).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with([' ', '\t', '='])
                    || (!option.starts_with("--") && !rest.starts_with('-'))
            })
        });
        return if known {
            ReqLine::Option
        } else {
            ReqLine::Other
        };
    }
    if line.starts_with(['.', '/', '~']) || line.contains("://") || line.starts_with("file:") {
        return ReqLine::Direct;
    }
    // Options after the requirement (`--hash=...`) and the environment marker do not matter.
    let line = line.find(" --").map_or(line, |i| &line[..i]);
    let line = line
        .split_once(';')
        .map_or(line, |(before, _)| before)
        .trim();

    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return ReqLine::Other;
    }
    let mut rest = line[name_end..].trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let Some(close) = extras.find(']') else {
            return ReqLine::Other;
        };
        rest = extras[close + 1..].trim_start();
    }
    if rest.starts_with('@') {
        return ReqLine::Direct;
    }
    let rest = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(rest)
        .trim();
    if rest.is_empty() {
        return ReqLine::Requirement {
            name,
            pin: None,
            constrained: false,
        };
    }
    let mut pin = None;
    for clause in rest.split(',') {
        let clause = clause.trim();
        let Some(op_len) = ["===", "==", "!=", "~=", "<=", ">=", "<", ">"]
            .iter()
            .find(|op| clause.starts_with(*op))
            .map(|op| op.len())
        else {
            return ReqLine::Other;
        };
        let version = clause[op_len..].trim();
        if version.is_empty()
            || !version.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '_' | '-')
            })
        {
            return ReqLine::Other;
        }
        if op_len >= 2 && clause.starts_with("==") && !version.contains('*') && pin.is_none() {
            pin = Some(version);
        }
    }
    ReqLine::Requirement {
        name,
        pin,
        constrained: true,
    }
}

/// Requirements when every line reads as one and at least one pins, constrains or is a pip
/// option: a bare word is too weak a sign on its own.
fn looks_like_requirements(text: &str) -> bool {
    let mut evidence = false;
    for line in requirement_lines(text) {
        match read_requirement_line(&line) {
            ReqLine::Other => return false,
            ReqLine::Option
            | ReqLine::Requirement {
                constrained: true, ..
            } => evidence = true,
            ReqLine::Direct | ReqLine::Requirement { .. } => {}
        }
    }
    evidence
}

fn read_requirements(text: &str, out: &mut BTreeSet<Package>) {
    for line in requirement_lines(text) {
        if let ReqLine::Requirement {
            name,
            pin: Some(version),
            ..
        } = read_requirement_line(&line)
        {
            out.insert(Package::new(Ecosystem::PyPI, name, version));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDX_NPM: &str =
        include_str!("../tests/data/sbom/cyclonedx/npm_bundled-dependencies_flat.cdx-1.5.json");
    const CDX_PYPI: &str =
        include_str!("../tests/data/sbom/cyclonedx/pypi_poetry-normalize-packagename.cdx-1.6.json");
    const SPDX_CARGO: &str =
        include_str!("../tests/data/sbom/spdx/cargo_kong-atc-router_syft.spdx-2.3.json");
    const CARGO_LOCK: &str =
        include_str!("../tests/data/lockfiles/cargo_kong-atc-router_Cargo.lock");
    const PACKAGE_LOCK: &str = include_str!(
        "../tests/data/lockfiles/npm_cyclonedx-demo-package-integrity_package-lock.json"
    );
    const PNPM_LOCK: &str =
        include_str!("../tests/data/lockfiles/npm_tanstack-dexie-db-collection_pnpm-lock-v9.yaml");
    const POETRY_LOCK: &str =
        include_str!("../tests/data/lockfiles/pypi_normalize-packagename_poetry.lock");
    const UV_LOCK: &str = include_str!("../tests/data/lockfiles/pypi_cyclonedx-via-uv_uv.lock");

    macro_rules! scalibr {
        ($name:literal) => {
            include_str!(concat!(
                "../tests/data/lockfiles/osv-scalibr-fixtures/",
                $name
            ))
        };
    }

    /// Parses, checking that `detect` agrees, and lists the packages as `TYPE/NAME@VERSION`.
    fn read(text: &str, format: Format) -> Vec<String> {
        assert_eq!(detect(text), Some(format));
        let parsed = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.format, format);
        let mut sorted = parsed.packages.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            parsed.packages, sorted,
            "packages are sorted and deduplicated"
        );
        parsed
            .packages
            .iter()
            .map(|p| format!("{}/{}@{}", p.ecosystem, p.name, p.version))
            .collect()
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(parsed) => panic!("expected an error, read {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    // --- CycloneDX --------------------------------------------------------------------------

    #[test]
    fn cyclonedx_npm_sample() {
        let packages = read(CDX_NPM, Format::CycloneDx);
        assert_eq!(packages.len(), 52);
        assert!(packages.contains(&"npm/ansi-regex@2.0.0".to_owned()));
        assert!(packages.contains(&"npm/yargs@4.1.0".to_owned()));
        // The metadata component is the project itself.
        assert!(!packages.iter().any(|p| p.contains("demo-bundled-deps")));
    }

    #[test]
    fn cyclonedx_pypi_sample_has_normalized_names() {
        assert_eq!(
            read(CDX_PYPI, Format::CycloneDx),
            [
                "pypi/ruamel-yaml@0.18.10",
                "pypi/ruamel-yaml-clib@0.2.8",
                "pypi/ruamel-yaml-jinja2@0.2.7"
            ]
        );
    }

    #[test]
    fn cyclonedx_nested_components_and_purl_types() {
        let sbom = r#"{
          "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
          "metadata": {"component": {"bom-ref": "root", "name": "app", "purl": "pkg:npm/app@1.0.0"}},
          "components": [
            {"bom-ref": "root", "name": "app", "purl": "pkg:npm/app@1.0.0"},
            {"name": "code-frame", "purl": "pkg:npm/%40Babel/Code-Frame@7.0.0", "components": [
              {"name": "log4j-core", "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar",
               "components": [
                 {"name": "ruamel.yaml", "version": "0.18.10", "purl": "pkg:pypi/ruamel.yaml"}
               ]},
              {"name": "no purl", "version": "1.0.0"},
              {"name": "zlib", "purl": "pkg:deb/debian/zlib1g@1.2.13"}
            ]},
            {"name": "bar", "purl": "pkg:golang/github.com/foo/bar@v1.2.3"},
            {"name": "checkout", "purl": "pkg:github/actions/checkout@v4#.github/workflows/ci.yml"},
            {"name": "serde", "purl": "pkg:cargo/serde@1.0.219"},
            {"name": "tinycolor", "purl": "pkg:npm/@ctrl/tinycolor@4.1.1", "components": []}
          ]
        }"#;
        assert_eq!(
            read(sbom, Format::CycloneDx),
            [
                "npm/@babel/code-frame@7.0.0",
                "npm/@ctrl/tinycolor@4.1.1",
                "pypi/ruamel-yaml@0.18.10",
                "cargo/serde@1.0.219",
                "maven/org.apache.logging.log4j:log4j-core@2.14.1",
                "golang/github.com/foo/bar@v1.2.3",
                "github/actions/checkout@v4",
            ]
        );
    }

    #[test]
    fn cyclonedx_errors_name_the_component() {
        let missing = r#"{"bomFormat": "CycloneDX", "components": [
            {"purl": "pkg:npm/a@1.0.0"},
            {"purl": "pkg:npm/b@1.0.0", "components": [{"name": "c", "purl": "pkg:npm/c"}]}
        ]}"#;
        assert_eq!(
            error(missing),
            "CycloneDX: components[1].components[0]: missing `version` (the purl `pkg:npm/c` has \
             none either)"
        );
        assert_eq!(
            error(r#"{"bomFormat": "CycloneDX", "components": [{"purl": "npm/x@1.0.0"}]}"#),
            "CycloneDX: components[0]: invalid purl `npm/x@1.0.0`: it does not start with `pkg:`"
        );
        assert_eq!(
            error(r#"{"bomFormat": "CycloneDX", "components": {"purl": "pkg:npm/x@1"}}"#),
            "CycloneDX: components: expected an array, found an object"
        );
        assert_eq!(
            error(r#"{"bomFormat": "CycloneDX", "components": [{"purl": 7}]}"#),
            "CycloneDX: components[0]: `purl`: expected a string, found a number"
        );
    }

    #[test]
    fn cyclonedx_without_components_is_empty() {
        let sbom = r#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}"#;
        assert_eq!(read(sbom, Format::CycloneDx), Vec::<String>::new());
    }

    #[test]
    fn cyclonedx_xml_is_detected_but_not_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bom xmlns="http://cyclonedx.org/schema/bom/1.5" version="1"><components/></bom>"#;
        assert_eq!(detect(xml), Some(Format::CycloneDx));
        assert_eq!(
            error(xml),
            "CycloneDX: XML documents are not read; export the SBOM as JSON"
        );
    }

    // --- SPDX -------------------------------------------------------------------------------

    #[test]
    fn spdx_cargo_sample() {
        let packages = read(SPDX_CARGO, Format::Spdx);
        assert_eq!(packages.len(), 44);
        assert!(packages.contains(&"cargo/aho-corasick@1.0.2".to_owned()));
        assert!(packages.contains(&"cargo/atc-router@1.0.5".to_owned()));
    }

    #[test]
    fn spdx_reads_both_spellings_of_the_package_manager_category() {
        let sbom = r#"{
          "spdxVersion": "SPDX-2.2", "SPDXID": "SPDXRef-DOCUMENT", "name": "x",
          "packages": [
            {"SPDXID": "SPDXRef-root", "name": "x", "versionInfo": "NOASSERTION"},
            {"SPDXID": "SPDXRef-1", "name": "ruamel.yaml", "versionInfo": "0.18.10",
             "externalRefs": [
               {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                "referenceLocator": "cpe:2.3:a:ruamel:yaml:0.18.10:*:*:*:*:*:*:*"},
               {"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                "referenceLocator": "pkg:pypi/ruamel.yaml"}
             ]},
            {"SPDXID": "SPDXRef-2", "name": "checkout", "versionInfo": "v5.0.0",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:github/actions/checkout@v5.0.0"}]},
            {"SPDXID": "SPDXRef-3", "name": "libc6", "versionInfo": "2.36",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                               "referenceLocator": "pkg:deb/debian/libc6@2.36"}]}
          ]
        }"#;
        assert_eq!(
            read(sbom, Format::Spdx),
            ["pypi/ruamel-yaml@0.18.10", "github/actions/checkout@v5.0.0"]
        );
    }

    #[test]
    fn spdx_errors_name_the_reference() {
        let sbom = r#"{"spdxVersion": "SPDX-2.3", "packages": [{"name": "a"}, {"name": "b",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": "pkg:npm/b"}]}]}"#;
        assert_eq!(
            error(sbom),
            "SPDX: packages[1].externalRefs[0]: missing `version` (the purl `pkg:npm/b` has none \
             either)"
        );
    }

    #[test]
    fn spdx_tag_value_is_detected_but_not_read() {
        let tv = "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\n";
        assert_eq!(detect(tv), Some(Format::Spdx));
        assert_eq!(
            error(tv),
            "SPDX: tag-value documents are not read; export the SBOM as SPDX JSON"
        );
    }

    // --- package-lock.json ------------------------------------------------------------------

    #[test]
    fn package_lock_sample() {
        assert_eq!(
            read(PACKAGE_LOCK, Format::PackageLock),
            [
                "npm/base64-js@1.0.1",
                "npm/base64-js@1.3.1",
                "npm/buffer@5.4.3",
                "npm/ieee754@1.1.13",
                "npm/ignore@5.1.4"
            ]
        );
    }

    #[test]
    fn package_lock_aliases_are_the_real_package() {
        // `node_modules/babel-code-frame` is `@babel/code-frame`; `string-width-cjs` is
        // `string-width@4.2.0` next to `string-width@5.1.2`.
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__alias.v2.json"),
                Format::PackageLock
            ),
            [
                "npm/@babel/code-frame@7.0.0",
                "npm/string-width@4.2.0",
                "npm/string-width@5.1.2"
            ]
        );
    }

    #[test]
    fn package_lock_scoped_nested_and_bundled() {
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__scoped-packages.v2.json"),
                Format::PackageLock
            ),
            ["npm/@babel/code-frame@7.0.0", "npm/wrappy@1.0.2"]
        );
        // `node_modules/@vue/component-compiler-utils/node_modules/supports-color` and the like.
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__nested-dependencies-dup.v2.json"),
                Format::PackageLock
            ),
            ["npm/supports-color@2.0.0", "npm/supports-color@6.1.0"]
        );
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__bundled-dependencies.v3.json"),
                Format::PackageLock
            ),
            [
                "npm/ansi-regex@6.2.2",
                "npm/semver@7.7.2",
                "npm/strip-ansi@7.1.2"
            ]
        );
    }

    #[test]
    fn package_lock_skips_links_workspaces_and_git() {
        let lock = r#"{"name": "mono", "lockfileVersion": 3, "requires": true, "packages": {
            "": {"name": "mono", "workspaces": ["packages/*"]},
            "packages/a": {"name": "a", "version": "1.0.0"},
            "node_modules/a": {"resolved": "packages/a", "link": true},
            "node_modules/left-pad": {"version": "1.3.0",
                "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"},
            "node_modules/from-git": {"version": "2.0.0",
                "resolved": "git+ssh://git@github.com/o/from-git.git#0123abc"},
            "node_modules/x/node_modules/@Scope/y": {"version": "3.1.0"},
            "node_modules/not-installed": {"optional": true}
        }}"#;
        assert_eq!(
            read(lock, Format::PackageLock),
            ["npm/@scope/y@3.1.0", "npm/left-pad@1.3.0"]
        );
    }

    #[test]
    fn package_lock_v1_is_read_recursively() {
        let lock = r#"{"name": "old", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
          "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}},
            "cjs": {"version": "npm:string-width@4.2.0"},
            "g": {"version": "github:o/g#abc123", "from": "github:o/g"},
            "@s/c": {"version": "3.0.0", "bundled": true}
          }}"#;
        assert_eq!(
            read(lock, Format::PackageLock),
            [
                "npm/@s/c@3.0.0",
                "npm/a@1.0.0",
                "npm/b@2.0.0",
                "npm/string-width@4.2.0"
            ]
        );
    }

    #[test]
    fn package_lock_errors_name_the_entry() {
        let lock = r#"{"lockfileVersion": 2, "packages": {
            "node_modules/a": {"resolved": "https://registry.npmjs.org/a/-/a-1.0.0.tgz"}}}"#;
        assert_eq!(
            error(lock),
            "package-lock.json: packages[\"node_modules/a\"]: missing `version`"
        );
        let lock = r#"{"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0",
            "dependencies": {"b": {"requires": {}}}}}}"#;
        assert_eq!(
            error(lock),
            "package-lock.json: dependencies[\"a\"].dependencies[\"b\"]: missing `version`"
        );
    }

    // --- broken and unknown documents -------------------------------------------------------

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
            include_str!("../tests/data/osv/MAL-2026-2307_npm_axios.json"),
        ] {
            assert_eq!(detect(text), None, "{text}");
            assert_eq!(error(text), expected);
        }
    }

    // --- pnpm -------------------------------------------------------------------------------

    #[test]
    fn pnpm_real_sample() {
        let packages = read(PNPM_LOCK, Format::PnpmLock);
        assert_eq!(packages.len(), 526);
        assert!(packages.contains(&"npm/@tanstack/db@0.3.2".to_owned()));
        assert!(packages.contains(&"npm/jsonstream@1.3.5".to_owned()));
        assert!(!packages.iter().any(|p| p.contains('(')));
    }

    #[test]
    fn pnpm_scalibr_fixtures() {
        assert_eq!(
            read(
                scalibr!("javascript_pnpmlock__scoped-packages.v9.yaml"),
                Format::PnpmLock
            ),
            ["npm/@typescript-eslint/types@5.62.0"]
        );
        let peers = read(
            scalibr!("javascript_pnpmlock__peer-dependencies-advanced.v9.yaml"),
            Format::PnpmLock,
        );
        assert_eq!(peers.len(), 13);
        assert!(peers.contains(&"npm/@typescript-eslint/eslint-plugin@5.62.0".to_owned()));
        assert!(peers.contains(&"npm/typescript@4.9.5".to_owned()));
        // Git tarballs are not registry releases.
        assert_eq!(
            read(
                scalibr!("javascript_pnpmlock__commits.v9.yaml"),
                Format::PnpmLock
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn pnpm_peer_suffixes_and_older_lockfile_versions() {
        let v9 = "lockfileVersion: '9.0'\n\npackages:\n\n  \
                  '@scope/a@1.0.0(react@18.2.0)':\n    resolution: {integrity: sha512-x}\n\n  \
                  b@2.0.0:\n    resolution: {integrity: sha512-x}\n\n  \
                  c@file:../c:\n    resolution: {directory: ../c, type: directory}\n";
        assert_eq!(
            read(v9, Format::PnpmLock),
            ["npm/@scope/a@1.0.0", "npm/b@2.0.0"]
        );
        let v6 = "lockfileVersion: '6.0'\n\npackages:\n\n  \
                  /@babel/core@7.24.0:\n    resolution: {integrity: sha512-x}\n\n  \
                  /eslint-plugin-x@1.0.0(eslint@8.57.0):\n    resolution: {integrity: sha512-x}\n\n  \
                  github.com/o/repo/0123456789abcdef:\n    resolution: {tarball: https://codeload.github.com/o/repo/tar.gz/0123456789abcdef}\n    name: repo\n    version: 1.0.0\n";
        assert_eq!(
            read(v6, Format::PnpmLock),
            ["npm/@babel/core@7.24.0", "npm/eslint-plugin-x@1.0.0"]
        );
        let v5 = "lockfileVersion: 5.4\n\npackages:\n\n  \
                  /@babel/core/7.12.0:\n    resolution: {integrity: sha512-x}\n\n  \
                  /react-dom/17.0.2_react@17.0.2:\n    resolution: {integrity: sha512-x}\n";
        assert_eq!(
            read(v5, Format::PnpmLock),
            ["npm/@babel/core@7.12.0", "npm/react-dom@17.0.2"]
        );
        let empty = "lockfileVersion: '9.0'\n\nimporters:\n\n  .: {}\n";
        assert_eq!(read(empty, Format::PnpmLock), Vec::<String>::new());
    }

    #[test]
    fn pnpm_errors_name_the_key() {
        let bad = "lockfileVersion: '9.0'\n\npackages:\n\n  nameonly:\n    resolution: {}\n";
        assert_eq!(
            error(bad),
            "pnpm-lock.yaml: packages[\"nameonly\"] (line 5): expected `NAME@VERSION`"
        );
    }

    // --- yarn -------------------------------------------------------------------------------

    const YARN_CLASSIC: &str = r#"# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
  version "7.12.13"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.12.13.tgz#abc"
  integrity sha512-x
  dependencies:
    "@babel/highlight" "^7.12.13"

ansi-regex@^5.0.0, ansi-regex@^5.0.1:
  version "5.0.1"
  resolved "https://registry.yarnpkg.com/ansi-regex/-/ansi-regex-5.0.1.tgz#def"

"string-width-cjs@npm:string-width@^4.2.0":
  version "4.2.3"

is-number@jonschlinkert/is-number#master:
  version "7.0.0"
  resolved "https://codeload.github.com/jonschlinkert/is-number/tar.gz/98e8ff1"

local@file:../local:
  version "0.0.1"
"#;

    #[test]
    fn yarn_classic() {
        let expected = [
            "npm/@babel/code-frame@7.12.13",
            "npm/ansi-regex@5.0.1",
            "npm/string-width@4.2.3",
        ];
        assert_eq!(read(YARN_CLASSIC, Format::YarnLock), expected);
        // Without its header comment it is still told by its shape.
        let bare = YARN_CLASSIC
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(read(&bare, Format::YarnLock), expected);
    }

    #[test]
    fn yarn_classic_errors_name_the_line() {
        let lock = "# yarn lockfile v1\n\na@^1.0.0:\n  resolved \"https://r/a.tgz\"\n";
        assert_eq!(
            error(lock),
            "yarn.lock: line 3: `a@^1.0.0`: missing `version`"
        );
    }

    const YARN_BERRY: &str = r#"# This file is generated by running "yarn install" inside your project.
# Manual changes might be lost - proceed with caution!

__metadata:
  version: 8
  cacheKey: 10c0

"@babel/code-frame@npm:^7.0.0":
  version: 7.24.7
  resolution: "@babel/code-frame@npm:7.24.7"
  languageName: node
  linkType: hard

"ansi-regex@npm:^6.0.1, ansi-regex@npm:^6.1.0":
  version: 6.1.0
  resolution: "ansi-regex@npm:6.1.0"
  checksum: 10c0/a91d
  languageName: node
  linkType: hard

"my-app@workspace:.":
  version: 0.0.0-use.local
  resolution: "my-app@workspace:."
  languageName: unknown
  linkType: soft

"resolve@patch:resolve@npm%3A^1.22.1#~builtin<compat/resolve>":
  version: 1.22.8
  resolution: "resolve@patch:resolve@npm%3A1.22.8#~builtin<compat/resolve>::version=1.22.8&hash=c3c19d"
  languageName: node
  linkType: hard

"string-width-cjs@npm:string-width@^4.2.0":
  version: 4.2.3
  resolution: "string-width@npm:4.2.3"
  languageName: node
  linkType: hard
"#;

    #[test]
    fn yarn_berry() {
        assert_eq!(
            read(YARN_BERRY, Format::YarnLock),
            [
                "npm/@babel/code-frame@7.24.7",
                "npm/ansi-regex@6.1.0",
                "npm/string-width@4.2.3"
            ]
        );
        let broken = "__metadata:\n  version: 8\n\n\"a@npm:^1.0.0\":\n  version: 1.0.0\n";
        assert_eq!(
            error(broken),
            "yarn.lock: [\"a@npm:^1.0.0\"] (line 4): missing `resolution`"
        );
    }

    // --- poetry, uv, Cargo ------------------------------------------------------------------

    #[test]
    fn poetry_samples() {
        let packages = read(POETRY_LOCK, Format::PoetryLock);
        assert_eq!(
            packages,
            [
                "pypi/ruamel-yaml@0.18.10",
                "pypi/ruamel-yaml-clib@0.2.8",
                "pypi/ruamel-yaml-jinja2@0.2.7"
            ]
        );
        // The same packages as the CycloneDX SBOM made from this lockfile.
        assert_eq!(packages, read(CDX_PYPI, Format::CycloneDx));

        let many = read(
            scalibr!("python_poetrylock__multiple-packages.v2.lock"),
            Format::PoetryLock,
        );
        assert_eq!(many.len(), 11);
        assert!(many.contains(&"pypi/proto-plus@1.22.0".to_owned()));
        assert!(many.contains(&"pypi/proto-plus@1.23.0".to_owned()));
        assert!(many.contains(&"pypi/python-dateutil@2.9.0.post0".to_owned()));
    }

    #[test]
    fn poetry_names_are_normalized_and_checkouts_skipped() {
        let lock = r#"# This file is automatically @generated by Poetry 1.8.3 and should not be changed by hand.

[[package]]
name = "Ruamel.YAML"
version = "0.18.10"
description = ""
optional = false
python-versions = ">=3.7"
files = []

[[package]]
name = "internal"
version = "1.0.0"
description = ""
optional = false
python-versions = "*"
files = []

[package.source]
type = "legacy"
url = "https://pypi.example.com/simple"
reference = "private"

[[package]]
name = "from-git"
version = "0.1.0"
description = ""
optional = false
python-versions = "*"
files = []

[package.source]
type = "git"
url = "https://github.com/o/from-git.git"
reference = "main"
resolved_reference = "0123abc"

[metadata]
lock-version = "2.0"
python-versions = "^3.10"
content-hash = "abc"
"#;
        assert_eq!(
            read(lock, Format::PoetryLock),
            ["pypi/internal@1.0.0", "pypi/ruamel-yaml@0.18.10"]
        );
        let missing = "[[package]]\nname = \"a\"\n\n[metadata]\nlock-version = \"2.1\"\n";
        assert_eq!(error(missing), "poetry.lock: package[0]: missing `version`");
    }

    #[test]
    fn uv_samples() {
        // `via-uv` itself is `source = { virtual = "." }`.
        assert_eq!(
            read(UV_LOCK, Format::UvLock),
            ["pypi/ddt@1.7.2", "pypi/toml@0.10.2"]
        );
        let grouped = read(
            scalibr!("python_uvlock__grouped-packages.lock"),
            Format::UvLock,
        );
        assert_eq!(grouped.len(), 14);
        assert!(grouped.contains(&"pypi/black@24.10.0".to_owned()));
        assert!(!grouped.iter().any(|p| p.contains("uv-lockfiles")));
    }

    #[test]
    fn uv_skips_the_project_and_checkouts() {
        let lock = r#"version = 1
requires-python = ">=3.12"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "dynamic"
source = { virtual = "packages/dynamic" }

[[package]]
name = "lib"
version = "0.2.0"
source = { git = "https://github.com/o/lib?rev=main#0123abc" }

[[package]]
name = "Typing_Extensions"
version = "4.12.2"
source = { registry = "https://pypi.org/simple" }
"#;
        assert_eq!(
            read(lock, Format::UvLock),
            ["pypi/typing-extensions@4.12.2"]
        );
    }

    #[test]
    fn cargo_samples() {
        let packages = read(CARGO_LOCK, Format::CargoLock);
        assert_eq!(packages.len(), 138);
        assert!(packages.contains(&"cargo/aho-corasick@1.0.2".to_owned()));
        // The workspace member has no `source`.
        assert!(!packages.iter().any(|p| p.contains("atc-router")));
        assert_eq!(
            read(
                scalibr!("rust_cargolock__many-packages.lock"),
                Format::CargoLock
            ),
            [
                "cargo/aho-corasick@0.7.18",
                "cargo/libc@0.2.140",
                "cargo/memchr@2.4.1",
                "cargo/syn@1.0.109",
                "cargo/syn@2.0.15",
                "cargo/zstd@0.11.2"
            ]
        );
    }

    #[test]
    fn cargo_skips_workspace_members_and_git() {
        let lock = r#"# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = "app"
version = "0.1.0"

[[package]]
name = "forked"
version = "0.3.0"
source = "git+https://github.com/o/forked?branch=main#0123abc"

[[package]]
name = "serde"
version = "1.0.219"
source = "sparse+https://index.crates.io/"
checksum = "abc"
"#;
        assert_eq!(read(lock, Format::CargoLock), ["cargo/serde@1.0.219"]);
        // Only workspace members: still a Cargo.lock, by its header.
        let members = "# This file is automatically @generated by Cargo.\n# It is not intended \
                       for manual editing.\nversion = 4\n\n[[package]]\nname = \"app\"\nversion \
                       = \"0.1.0\"\n";
        assert_eq!(read(members, Format::CargoLock), Vec::<String>::new());
    }

    // --- requirements.txt -------------------------------------------------------------------

    #[test]
    fn requirements_pins() {
        let text = r#"# comment
-r base.txt
--index-url https://pypi.org/simple
ruamel.yaml==0.18.10  # pinned
Flask[async]==2.3.2 ; python_version >= "3.8"
requests>=2.0
urllib3 == 2.3.0 \
    --hash=sha256:abc \
    --hash=sha256:def
six===1.17.0
Django==4.*
attrs (==23.2.0)
./local-package
pkg @ https://example.com/pkg-1.0.tar.gz
-e git+https://github.com/o/r.git#egg=r
numpy
"#;
        assert_eq!(
            read(text, Format::Requirements),
            [
                "pypi/attrs@23.2.0",
                "pypi/flask@2.3.2",
                "pypi/ruamel-yaml@0.18.10",
                "pypi/six@1.17.0",
                "pypi/urllib3@2.3.0"
            ]
        );
        // Unpinned requirements are recognized but name no version.
        assert_eq!(
            read("flask>=2\nrequests\n", Format::Requirements),
            Vec::<String>::new()
        );
    }

    // --- purls ------------------------------------------------------------------------------

    #[test]
    fn purls() {
        let read_ok = |s: &str| read_purl(s).expect("valid").expect("supported");
        assert_eq!(
            read_ok("pkg:npm/%40ctrl/tinycolor@4.1.1?foo=bar#sub"),
            Purl {
                ecosystem: Ecosystem::Npm,
                name: "@ctrl/tinycolor".to_owned(),
                version: Some("4.1.1".to_owned())
            }
        );
        assert_eq!(
            read_ok("pkg:golang/golang.org/x/net@v0.17.0").name,
            "golang.org/x/net"
        );
        assert_eq!(read_ok("pkg:golang/stdlib@go1.22.1").name, "stdlib");
        assert_eq!(read_ok("pkg:pypi/ruamel.yaml").version, None);
        assert_eq!(
            read_ok("pkg:maven/org.apache.commons/commons-text@1.9%2Bx").version,
            Some("1.9+x".to_owned())
        );
        assert_eq!(read_purl("pkg:deb/debian/curl@7.88.1"), Ok(None));
        assert_eq!(read_purl("pkg:generic/openssl@3.0.0"), Ok(None));
        assert_eq!(
            read_purl("pkg:npm/a/b/c@1.0.0"),
            Err(
                "invalid purl `pkg:npm/a/b/c@1.0.0`: unexpected namespace `a/b` for a npm package"
                    .to_owned()
            )
        );
        assert_eq!(
            read_purl("pkg:npm/x%zz@1.0.0"),
            Err("invalid purl `pkg:npm/x%zz@1.0.0`: bad percent-escape `%zz`".to_owned())
        );
        assert_eq!(
            read_purl("pkg:maven/commons-text@1.9"),
            Err("invalid purl `pkg:maven/commons-text@1.9`: expected \
                 `pkg:maven/GROUP/ARTIFACT`"
                .to_owned())
        );
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::CycloneDx.to_string(), "CycloneDX");
        assert_eq!(Format::PackageLock.to_string(), "package-lock.json");
        assert_eq!(Format::Requirements.to_string(), "requirements.txt");
    }
}
