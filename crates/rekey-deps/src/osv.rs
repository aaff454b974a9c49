//! OSV advisories (<https://ossf.github.io/osv-schema/>) and matching a package version
//! against them.
//!
//! [`parse_advisory`] reads one OSV record and checks what matching depends on, naming the JSON
//! path of any problem (`affected[0].ranges[0].events[1].fixed: ...`). [`Affected::matches`]
//! follows the schema's evaluation algorithm: a version is affected if it is listed in
//! `versions[]` or falls in one of the `ranges[]`.
//!
//! Version orderings: `SEMVER` ranges, and `ECOSYSTEM` ranges of npm and crates.io, use Semantic
//! Versioning 2.0 precedence (build metadata ignored); `ECOSYSTEM` ranges of `PyPI` use PEP 440.
//! Ranges of other ecosystems can't be ordered here, so only their `versions[]` list and any range
//! that affects every version (`introduced: "0"` with nothing closing it) match. `GIT` ranges name
//! commits, not versions, and never match a package version.

use std::cmp::Ordering;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::{Ecosystem, Package, normalize_name};

/// One OSV record: the parts needed to say whether a package version is affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    pub summary: Option<String>,
    pub aliases: Vec<String>,
    /// The record's `affected[]` entries that name a package (entries without `package`, such as
    /// bare `GIT` ranges, can't match a package and are left out).
    pub affected: Vec<Affected>,
}

/// One `affected[]` entry: a package and the versions of it the advisory covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    pub ecosystem: Ecosystem,
    /// The package name, normalized like [`Package::new`] does.
    pub name: String,
    /// Versions listed one by one, as written in the record.
    pub versions: Vec<String>,
    pub ranges: Vec<Range>,
    /// Every version of the package is affected: a (non-`GIT`) range opens at `introduced: "0"`
    /// and nothing closes it. Set by [`parse_advisory`]; [`Affected::matches`] honours it.
    pub whole_package: bool,
}

/// The `type` of an OSV range: how its event versions are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeType {
    /// Semantic Versioning 2.0 precedence.
    Semver,
    /// The package ecosystem's own ordering.
    Ecosystem,
    /// Git commits; needs the repository's history, so never matched against a version here.
    Git,
}

impl RangeType {
    /// The name in OSV records (`SEMVER`, `ECOSYSTEM`, `GIT`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::Semver => "SEMVER",
            Self::Ecosystem => "ECOSYSTEM",
            Self::Git => "GIT",
        }
    }
}

/// One `ranges[]` entry: a timeline of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub kind: RangeType,
    pub events: Vec<Event>,
}

/// One event of a range's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Affected from this version on; `"0"` means from before the first version.
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Versions from this one on are outside the range; a version containing `*` is infinity.
    Limit(String),
}

impl Event {
    /// The event's version string.
    pub fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }

    /// The event's key in OSV records.
    pub fn osv_key(&self) -> &'static str {
        match self {
            Self::Introduced(_) => "introduced",
            Self::Fixed(_) => "fixed",
            Self::LastAffected(_) => "last_affected",
            Self::Limit(_) => "limit",
        }
    }

    fn is_introduced_zero(&self) -> bool {
        matches!(self, Self::Introduced(v) if v == "0")
    }

    fn is_infinite_limit(&self) -> bool {
        matches!(self, Self::Limit(v) if v.contains('*'))
    }
}

/// How an advisory covers a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// Every version of the package is affected (as many `MAL-` records say of a malicious
    /// package): the package itself is the problem, not one release of it.
    WholePackage,
    /// Specific versions (listed, or within bounded ranges) are affected.
    Versions,
}

/// Why an advisory, a package spec or a purl could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AdvisoryError {
    /// The text is not JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
        #[source]
        source: serde_json::Error,
    },
    /// A field the schema requires is absent.
    #[error("{path}: missing `{field}`")]
    MissingField { path: String, field: &'static str },
    /// A field has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// `affected[].package.ecosystem` is not an OSV ecosystem.
    #[error("{path}: unknown ecosystem `{ecosystem}`{}", did_you_mean(*.suggestion))]
    UnknownEcosystem {
        path: String,
        ecosystem: String,
        suggestion: Option<&'static str>,
    },
    /// `ranges[].type` is not `SEMVER`, `ECOSYSTEM` or `GIT`.
    #[error("{path}: unknown range type `{kind}` (expected SEMVER, ECOSYSTEM or GIT)")]
    UnknownRangeType { path: String, kind: String },
    /// A version in a range event does not follow the range's version scheme.
    #[error("{path}: `{version}` is not a valid {scheme} version ({reason})")]
    InvalidVersion {
        path: String,
        version: String,
        scheme: &'static str,
        reason: String,
    },
    /// Any other schema problem, e.g. an event with two keys or a range with no `introduced`.
    #[error("{path}: {problem}")]
    Schema { path: String, problem: String },
    /// A `--package ECOSYSTEM/NAME@VERSION` spec could not be read.
    #[error("invalid package `{spec}`: {problem}")]
    InvalidPackageSpec { spec: String, problem: String },
    /// A `pkg:TYPE/NAMESPACE/NAME@VERSION` purl could not be read.
    #[error("invalid purl `{purl}`: {problem}")]
    InvalidPurl { purl: String, problem: String },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (OSV spells it `{s}`)"))
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

impl Advisory {
    /// The `affected[]` entry that covers this package at its version, with how it covers it.
    /// An entry that affects the whole package wins over one that lists versions. Packages of
    /// [`Ecosystem::Other`] never match: their ecosystem is not known precisely enough.
    pub fn affected_for(&self, p: &Package) -> Option<(&Affected, MatchKind)> {
        if p.ecosystem == Ecosystem::Other {
            return None;
        }
        let name = normalize_name(p.ecosystem, &p.name);
        let mut found = None;
        for affected in &self.affected {
            if affected.ecosystem != p.ecosystem
                || affected.name != name
                || !affected.matches(&p.version)
            {
                continue;
            }
            let kind = affected.match_kind();
            if kind == MatchKind::WholePackage {
                return Some((affected, kind));
            }
            found.get_or_insert((affected, kind));
        }
        found
    }
}

impl Affected {
    /// Whether `version` of this entry's package is affected (OSV "Evaluation"): listed in
    /// `versions[]`, or inside one of the ranges.
    pub fn matches(&self, version: &str) -> bool {
        let version = version.trim();
        self.whole_package
            || self.listed(version)
            || self
                .ranges
                .iter()
                .any(|range| range.includes(self.ecosystem, version))
    }

    /// [`MatchKind::WholePackage`] if every version is affected, else [`MatchKind::Versions`].
    pub fn match_kind(&self) -> MatchKind {
        if self.whole_package {
            MatchKind::WholePackage
        } else {
            MatchKind::Versions
        }
    }

    /// `versions[]` membership: for `PyPI`, PEP 440 `==` (`1.0` is `1.0.0`, and a listed public
    /// version covers its local builds such as `1.0+cpu`); for Go, a leading `v` ignored; exact
    /// strings otherwise.
    fn listed(&self, version: &str) -> bool {
        match self.ecosystem {
            Ecosystem::PyPI => {
                let wanted = pep440_rs::Version::from_str(version).ok();
                self.versions.iter().any(|listed| {
                    listed == version
                        || wanted.as_ref().is_some_and(|wanted| {
                            pep440_rs::Version::from_str(listed).is_ok_and(|listed| {
                                if listed.is_local() {
                                    listed == *wanted
                                } else {
                                    listed == wanted.clone().without_local()
                                }
                            })
                        })
                })
            }
            Ecosystem::Go => {
                let bare = strip_v(version);
                self.versions.iter().any(|listed| strip_v(listed) == bare)
            }
            _ => self.versions.iter().any(|listed| listed == version),
        }
    }
}

fn strip_v(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version)
}

impl Range {
    /// Whether this range affects every version: opened at `introduced: "0"` and never closed
    /// by a `fixed`, `last_affected` or finite `limit`. `GIT` ranges never do.
    pub fn affects_every_version(&self) -> bool {
        self.kind != RangeType::Git
            && self.events.iter().any(Event::is_introduced_zero)
            && self.events.iter().all(|e| match e {
                Event::Introduced(_) => true,
                Event::Limit(_) => e.is_infinite_limit(),
                Event::Fixed(_) | Event::LastAffected(_) => false,
            })
    }

    /// Whether `version` of a package of `ecosystem` falls in this range.
    fn includes(&self, ecosystem: Ecosystem, version: &str) -> bool {
        if self.affects_every_version() {
            return true;
        }
        match Scheme::for_range(self.kind, ecosystem) {
            Some(Scheme::SemVer) => parse_installed_semver(version).is_some_and(|v| {
                included_by_events(
                    &self.events,
                    &v,
                    |s| semver::Version::parse(s).ok(),
                    semver_precedence,
                )
            }),
            Some(Scheme::Pep440) => pep440_rs::Version::from_str(version).is_ok_and(|v| {
                included_by_events(
                    &self.events,
                    &v,
                    |s| pep440_rs::Version::from_str(s).ok(),
                    Ord::cmp,
                )
            }),
            None => false,
        }
    }
}

/// A point on a range's timeline: before every version, a version, or infinity.
enum Bound<V> {
    Min,
    At(V),
    Max,
}

/// The schema's `IncludedInRanges` for one range (`BeforeLimits`, then the sorted timeline).
/// An event whose version can't be parsed makes the whole range unusable: not included.
fn included_by_events<V>(
    events: &[Event],
    version: &V,
    parse: impl Fn(&str) -> Option<V>,
    cmp: impl Fn(&V, &V) -> Ordering,
) -> bool {
    let mut timeline = Vec::with_capacity(events.len());
    for event in events {
        let bound = if event.is_introduced_zero() {
            Bound::Min
        } else if event.is_infinite_limit() {
            Bound::Max
        } else if let Some(v) = parse(event.version()) {
            Bound::At(v)
        } else {
            return false;
        };
        timeline.push((bound, event));
    }
    let bound_cmp = |a: &Bound<V>, b: &Bound<V>| match (a, b) {
        (Bound::Min, Bound::Min) | (Bound::Max, Bound::Max) => Ordering::Equal,
        (Bound::Min, _) | (_, Bound::Max) => Ordering::Less,
        (_, Bound::Min) | (Bound::Max, _) => Ordering::Greater,
        (Bound::At(a), Bound::At(b)) => cmp(a, b),
    };
    // A stable sort: events at the same version keep the record's order.
    timeline.sort_by(|a, b| bound_cmp(&a.0, &b.0));
    let against = |bound: &Bound<V>| match bound {
        Bound::Min => Ordering::Greater,
        Bound::Max => Ordering::Less,
        Bound::At(b) => cmp(version, b),
    };

    let mut limits = timeline
        .iter()
        .filter(|(_, e)| matches!(e, Event::Limit(_)))
        .peekable();
    if limits.peek().is_some() && !limits.any(|(bound, _)| against(bound) == Ordering::Less) {
        return false;
    }

    let mut affected = false;
    for (bound, event) in &timeline {
        let order = against(bound);
        match event {
            Event::Introduced(_) if order != Ordering::Less => affected = true,
            Event::Fixed(_) if order != Ordering::Less => affected = false,
            Event::LastAffected(_) if order == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    affected
}

/// Semantic Versioning 2.0 precedence (spec item 11): build metadata does not count, unlike in
/// `semver::Version`'s `Ord`.
fn semver_precedence(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// An installed version, read leniently: some tools print a leading `v` or `=`.
fn parse_installed_semver(version: &str) -> Option<semver::Version> {
    let version = version.strip_prefix(['v', 'V', '=']).unwrap_or(version);
    semver::Version::parse(version).ok()
}

/// How a range's versions are ordered, when this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    SemVer,
    Pep440,
}

impl Scheme {
    fn for_range(kind: RangeType, ecosystem: Ecosystem) -> Option<Self> {
        match kind {
            RangeType::Semver => Some(Self::SemVer),
            RangeType::Ecosystem => Self::for_ecosystem(ecosystem),
            RangeType::Git => None,
        }
    }

    fn for_ecosystem(ecosystem: Ecosystem) -> Option<Self> {
        match ecosystem {
            Ecosystem::Npm | Ecosystem::Cargo => Some(Self::SemVer),
            Ecosystem::PyPI => Some(Self::Pep440),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SemVer => "SemVer",
            Self::Pep440 => "PEP 440",
        }
    }

    /// Checks a version strictly, returning the parser's reason when it is not valid.
    fn check(self, version: &str) -> Result<(), String> {
        match self {
            Self::SemVer => semver::Version::parse(version)
                .map(drop)
                .map_err(|e| e.to_string()),
            Self::Pep440 => pep440_rs::Version::from_str(version)
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing advisories
// ---------------------------------------------------------------------------------------------

/// Reads one OSV record (JSON). Fields matching does not use (`details`, `references`,
/// `database_specific`, ...) are not checked.
pub fn parse_advisory(text: &str) -> Result<Advisory, AdvisoryError> {
    let root: Value = serde_json::from_str(text).map_err(|source| {
        let (line, column) = (source.line(), source.column());
        let full = source.to_string();
        let message = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full)
            .to_owned();
        AdvisoryError::Json {
            line,
            column,
            message,
            source,
        }
    })?;
    let root = as_object(&root, "")?;

    let id = required_str(root, "", "id")?;
    if id.trim().is_empty() {
        return Err(schema("id", "empty id"));
    }
    let summary = optional_str(root, "", "summary")?.map(str::to_owned);
    let aliases = string_list(root, "", "aliases")?;

    let mut affected = Vec::new();
    for (i, entry) in optional_array(root, "", "affected")?.iter().enumerate() {
        if let Some(a) = parse_affected(entry, &format!("affected[{i}]"))? {
            affected.push(a);
        }
    }

    Ok(Advisory {
        id: id.to_owned(),
        summary,
        aliases,
        affected,
    })
}

fn parse_affected(value: &Value, path: &str) -> Result<Option<Affected>, AdvisoryError> {
    let entry = as_object(value, path)?;
    // The JSON schema lets an entry go without `package` (bare `GIT` ranges); such an entry
    // names no package, so no package can match it.
    let Some(package) = optional(entry, "package") else {
        return Ok(None);
    };
    let package_path = child(path, "package");
    let package = as_object(package, &package_path)?;
    let raw_ecosystem = required_str(package, &package_path, "ecosystem")?;
    let ecosystem = ecosystem_from_osv(raw_ecosystem).map_err(|suggestion| {
        AdvisoryError::UnknownEcosystem {
            path: child(&package_path, "ecosystem"),
            ecosystem: raw_ecosystem.to_owned(),
            suggestion,
        }
    })?;
    let name = required_str(package, &package_path, "name")?;
    if name.trim().is_empty() {
        return Err(schema(&child(&package_path, "name"), "empty package name"));
    }

    let versions = string_list(entry, path, "versions")?;
    let mut ranges = Vec::new();
    for (i, range) in optional_array(entry, path, "ranges")?.iter().enumerate() {
        ranges.push(parse_range(
            range,
            &format!("{path}.ranges[{i}]"),
            ecosystem,
        )?);
    }
    let whole_package = ranges.iter().any(Range::affects_every_version);

    Ok(Some(Affected {
        ecosystem,
        name: normalize_name(ecosystem, name.trim()),
        versions,
        ranges,
        whole_package,
    }))
}

fn parse_range(value: &Value, path: &str, ecosystem: Ecosystem) -> Result<Range, AdvisoryError> {
    let range = as_object(value, path)?;
    let raw_kind = required_str(range, path, "type")?;
    let kind = match raw_kind {
        "SEMVER" => RangeType::Semver,
        "ECOSYSTEM" => RangeType::Ecosystem,
        "GIT" => RangeType::Git,
        other => {
            return Err(AdvisoryError::UnknownRangeType {
                path: child(path, "type"),
                kind: other.to_owned(),
            });
        }
    };
    let scheme = Scheme::for_range(kind, ecosystem);

    let events_path = child(path, "events");
    let Some(raw_events) = optional(range, "events") else {
        return Err(missing(path, "events"));
    };
    let raw_events = as_array(raw_events, &events_path)?;
    let mut events = Vec::with_capacity(raw_events.len());
    for (i, raw) in raw_events.iter().enumerate() {
        events.push(parse_event(raw, &format!("{events_path}[{i}]"), scheme)?);
    }
    if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return Err(schema(
            &events_path,
            "no `introduced` event (a range needs at least one)",
        ));
    }
    Ok(Range { kind, events })
}

const EVENT_KEYS: [&str; 4] = ["introduced", "fixed", "last_affected", "limit"];

fn parse_event(value: &Value, path: &str, scheme: Option<Scheme>) -> Result<Event, AdvisoryError> {
    let event = as_object(value, path)?;
    let present: Vec<&str> = EVENT_KEYS
        .into_iter()
        .filter(|key| event.contains_key(*key))
        .collect();
    let key = match present.as_slice() {
        [key] => *key,
        [] => {
            return Err(schema(
                path,
                "expected one of `introduced`, `fixed`, `last_affected` or `limit`",
            ));
        }
        [first, second, ..] => {
            return Err(schema(
                path,
                &format!("has both `{first}` and `{second}`; an event holds exactly one"),
            ));
        }
    };
    let key_path = child(path, key);
    let version = as_str(&event[key], &key_path)?;
    if version.trim().is_empty() {
        return Err(schema(&key_path, "empty version"));
    }
    let event = match key {
        "introduced" => Event::Introduced(version.to_owned()),
        "fixed" => Event::Fixed(version.to_owned()),
        "last_affected" => Event::LastAffected(version.to_owned()),
        _ => Event::Limit(version.to_owned()),
    };
    if let Some(scheme) = scheme
        && !event.is_introduced_zero()
        && !event.is_infinite_limit()
    {
        scheme
            .check(version)
            .map_err(|reason| AdvisoryError::InvalidVersion {
                path: key_path,
                version: version.to_owned(),
                scheme: scheme.name(),
                reason,
            })?;
    }
    Ok(event)
}

/// OSV ecosystems this crate has no [`Ecosystem`] variant for (schema 1.7, "Defined
/// ecosystems"); they read as [`Ecosystem::Other`]. Compared on the part before any `:`.
const OTHER_OSV_ECOSYSTEMS: &[&str] = &[
    "AlmaLinux",
    "Alpaquita",
    "Alpine",
    "Android",
    "BellSoft Hardened Containers",
    "Bioconductor",
    "Bitnami",
    "Chainguard",
    "CleanStart",
    "ConanCenter",
    "CRAN",
    "Debian",
    "Docker Hardened Images",
    "Echo",
    "FreeBSD",
    "GHC",
    "Hackage",
    "Hex",
    "Julia",
    "Kubernetes",
    "Linux",
    "Mageia",
    "MinimOS",
    "NuGet",
    "opam",
    "openEuler",
    "openSUSE",
    "OSS-Fuzz",
    "Packagist",
    "Photon OS",
    "Pub",
    "Red Hat",
    "Rocky Linux",
    "Root",
    "RubyGems",
    "SUSE",
    "SwiftURL",
    "Ubuntu",
    "VSCode",
    "Wolfi",
];

const MODELED_OSV_ECOSYSTEMS: [Ecosystem; 6] = [
    Ecosystem::Npm,
    Ecosystem::PyPI,
    Ecosystem::Cargo,
    Ecosystem::Maven,
    Ecosystem::Go,
    Ecosystem::GitHubActions,
];

/// An OSV ecosystem string as an [`Ecosystem`]; on failure, the right spelling when the string
/// differs from one only in case.
fn ecosystem_from_osv(raw: &str) -> Result<Ecosystem, Option<&'static str>> {
    if let Some(e) = MODELED_OSV_ECOSYSTEMS
        .into_iter()
        .find(|e| e.osv_name() == raw)
    {
        return Ok(e);
    }
    let base = raw.split_once(':').map_or(raw, |(base, _)| base);
    // `Maven:<repository URL>` names a Maven repository other than Central.
    if base == "Maven" {
        return Ok(Ecosystem::Maven);
    }
    if OTHER_OSV_ECOSYSTEMS.contains(&base) {
        return Ok(Ecosystem::Other);
    }
    let suggestion = MODELED_OSV_ECOSYSTEMS
        .into_iter()
        .map(Ecosystem::osv_name)
        .chain(OTHER_OSV_ECOSYSTEMS.iter().copied())
        .find(|name| name.eq_ignore_ascii_case(base));
    Err(suggestion)
}

// --- small JSON helpers; `path` is the JSON path of the object, "" for the root ---

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "advisory".to_owned()
    } else {
        path.to_owned()
    }
}

fn schema(path: &str, problem: &str) -> AdvisoryError {
    AdvisoryError::Schema {
        path: shown(path),
        problem: problem.to_owned(),
    }
}

fn missing(path: &str, field: &'static str) -> AdvisoryError {
    AdvisoryError::MissingField {
        path: shown(path),
        field,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(value: &Value, path: &str, expected: &'static str) -> AdvisoryError {
    AdvisoryError::WrongType {
        path: shown(path),
        expected,
        found: json_type(value),
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, AdvisoryError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(value, path, "an object"))
}

fn as_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], AdvisoryError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong_type(value, path, "an array"))
}

fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, AdvisoryError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(value, path, "a string"))
}

/// A field that is present and not `null`.
fn optional<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &'static str,
) -> Result<&'a str, AdvisoryError> {
    match object.get(key) {
        None => Err(missing(path, key)),
        Some(value) => as_str(value, &child(path, key)),
    }
}

fn optional_str<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a str>, AdvisoryError> {
    optional(object, key)
        .map(|value| as_str(value, &child(path, key)))
        .transpose()
}

fn optional_array<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a [Value], AdvisoryError> {
    optional(object, key).map_or(Ok(&[]), |value| as_array(value, &child(path, key)))
}

fn string_list(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Vec<String>, AdvisoryError> {
    let list_path = child(path, key);
    optional_array(object, path, key)?
        .iter()
        .enumerate()
        .map(|(i, v)| as_str(v, &format!("{list_path}[{i}]")).map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Package specs and purls
// ---------------------------------------------------------------------------------------------

/// Reads `ECOSYSTEM/NAME@VERSION`, as `--package` takes it: `npm/axios@1.14.1`,
/// `npm/@ctrl/tinycolor@4.1.1`, `pypi/litellm@1.82.7`, `cargo/serde@1.0.219`,
/// `maven/org.apache.logging.log4j:log4j-core@2.14.1`, `go/github.com/foo/bar@v1.2.3`,
/// `github/actions/checkout@v4`. Ecosystems are named as purl types or as OSV does, in any case.
/// A string starting with `pkg:` is read as a purl.
pub fn parse_package_spec(s: &str) -> Result<Package, AdvisoryError> {
    let spec = s.trim();
    // `get`, not `[..4]`: the fourth byte may be inside a character (`é€/x@1`).
    if spec
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("pkg:"))
    {
        return parse_purl(spec);
    }
    let fail = |problem: String| AdvisoryError::InvalidPackageSpec {
        spec: s.to_owned(),
        problem,
    };
    let Some((raw_ecosystem, rest)) = spec.split_once('/') else {
        return Err(fail(
            "expected `ECOSYSTEM/NAME@VERSION`, e.g. `npm/axios@1.14.1`".to_owned(),
        ));
    };
    let ecosystem = match raw_ecosystem.to_ascii_lowercase().as_str() {
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "cargo" | "crates.io" => Ecosystem::Cargo,
        "maven" => Ecosystem::Maven,
        "go" | "golang" => Ecosystem::Go,
        "github" | "github actions" | "github-actions" => Ecosystem::GitHubActions,
        "" => return Err(fail("missing ecosystem before `/`".to_owned())),
        _ => {
            return Err(fail(format!(
                "unknown ecosystem `{raw_ecosystem}` (expected npm, pypi, cargo, maven, go \
                 or github)"
            )));
        }
    };
    let Some((name, version)) = split_version(rest) else {
        return Err(fail(format!(
            "missing `@VERSION` after the name, e.g. `{raw_ecosystem}/NAME@1.2.3`"
        )));
    };
    let name = if ecosystem == Ecosystem::Maven && !name.contains(':') {
        // `maven/group/artifact` as well as `maven/group:artifact`.
        name.replacen('/', ":", 1)
    } else {
        name.to_owned()
    };
    check_name(ecosystem, &name).map_err(&fail)?;
    check_version(ecosystem, version).map_err(&fail)?;
    Ok(Package::new(ecosystem, &name, version))
}

/// Reads a package URL (<https://github.com/package-url/purl-spec>) with a version:
/// `pkg:npm/axios@1.14.1`, `pkg:npm/%40ctrl/tinycolor@4.1.1`, `pkg:pypi/litellm@1.82.7`,
/// `pkg:cargo/serde@1.0.219`, `pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1`,
/// `pkg:golang/github.com/foo/bar@v1.2.3`, `pkg:github/actions/checkout@v4`. Qualifiers
/// (`?...`) and a subpath (`#...`) are ignored.
pub fn parse_purl(s: &str) -> Result<Package, AdvisoryError> {
    let fail = |problem: String| AdvisoryError::InvalidPurl {
        purl: s.to_owned(),
        problem,
    };
    let purl = s.trim();
    let rest = match purl.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => &purl[4..],
        _ => {
            return Err(fail(
                "a purl starts with `pkg:`, e.g. `pkg:npm/axios@1.14.1`".to_owned(),
            ));
        }
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let Some((raw_type, rest)) = rest.split_once('/') else {
        return Err(fail(
            "expected `pkg:TYPE/NAME@VERSION`, e.g. `pkg:npm/axios@1.14.1`".to_owned(),
        ));
    };
    let ecosystem = match raw_type.to_ascii_lowercase().as_str() {
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "cargo" => Ecosystem::Cargo,
        "maven" => Ecosystem::Maven,
        "golang" => Ecosystem::Go,
        "github" => Ecosystem::GitHubActions,
        "" => return Err(fail("missing type after `pkg:`".to_owned())),
        _ => {
            return Err(fail(format!(
                "purl type `{raw_type}` is not supported (supported: npm, pypi, cargo, maven, \
                 golang, github)"
            )));
        }
    };
    let Some((path, version)) = split_version(rest) else {
        return Err(fail(
            "missing `@VERSION`: without a version the purl can't be matched against advisories"
                .to_owned(),
        ));
    };
    let version = crate::percent_decode(version).map_err(&fail)?;
    let mut segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(crate::percent_decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    let Some(last) = segments.pop() else {
        return Err(fail("missing package name".to_owned()));
    };
    let namespace = segments;

    let name = match (ecosystem, namespace.as_slice()) {
        (Ecosystem::Npm | Ecosystem::PyPI | Ecosystem::Cargo, []) => last,
        (Ecosystem::Npm, [scope]) => {
            // The purl spec writes the scope with its `@` (`%40ctrl`); accept it without too.
            let scope = scope.strip_prefix('@').unwrap_or(scope);
            format!("@{scope}/{last}")
        }
        (Ecosystem::Maven, [group]) => format!("{group}:{last}"),
        (Ecosystem::Maven, _) => {
            return Err(fail(
                "a Maven purl is `pkg:maven/GROUP/ARTIFACT@VERSION`".to_owned(),
            ));
        }
        (Ecosystem::GitHubActions, [owner]) => format!("{owner}/{last}"),
        (Ecosystem::GitHubActions, _) => {
            return Err(fail(
                "a GitHub purl is `pkg:github/OWNER/REPO@VERSION`".to_owned(),
            ));
        }
        (Ecosystem::Go, namespace) => {
            let mut module = namespace.join("/");
            if !module.is_empty() {
                module.push('/');
            }
            module.push_str(&last);
            module
        }
        (_, namespace) => {
            return Err(fail(format!(
                "a {raw_type} purl has no namespace, but this one has `{}`",
                namespace.join("/")
            )));
        }
    };
    check_name(ecosystem, &name).map_err(&fail)?;
    check_version(ecosystem, &version).map_err(&fail)?;
    Ok(Package::new(ecosystem, &name, &version))
}

/// Splits `NAME@VERSION` at the `@` in the last `/`-separated segment, so a leading npm scope
/// (`@ctrl/tinycolor@4.1.1`) is not taken for the version.
fn split_version(rest: &str) -> Option<(&str, &str)> {
    let segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    let at = segment_start + rest[segment_start..].rfind('@')?;
    (at > 0).then(|| (&rest[..at], &rest[at + 1..]))
}

fn check_name(ecosystem: Ecosystem, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing package name".to_owned());
    }
    if name.chars().any(char::is_whitespace) {
        return Err(format!("package name `{name}` contains whitespace"));
    }
    match ecosystem {
        Ecosystem::Npm if name.starts_with('@') => match name.split_once('/') {
            Some((scope, bare)) if scope.len() > 1 && !bare.is_empty() && !bare.contains('/') => {
                Ok(())
            }
            _ => Err(format!("`{name}` is not a scoped npm name (`@SCOPE/NAME`)")),
        },
        Ecosystem::Npm | Ecosystem::PyPI | Ecosystem::Cargo if name.contains('/') => Err(format!(
            "`{name}` contains `/`, which {} names can't",
            ecosystem.osv_name()
        )),
        Ecosystem::Maven => match name.split_once(':') {
            Some((group, artifact)) if !group.is_empty() && !artifact.is_empty() => Ok(()),
            _ => Err(format!("`{name}` is not a Maven `GROUP:ARTIFACT` name")),
        },
        _ => Ok(()),
    }
}

/// A version to look up must be readable in its ecosystem's scheme (strictly: npm and crates.io
/// versions are semantic versions, without a leading `v`), so that an advisory's ranges can place
/// it.
fn check_version(ecosystem: Ecosystem, version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("missing version after `@`".to_owned());
    }
    if version.chars().any(char::is_whitespace) {
        return Err(format!("version `{version}` contains whitespace"));
    }
    match Scheme::for_ecosystem(ecosystem) {
        Some(scheme) => scheme.check(version).map_err(|reason| {
            format!(
                "`{version}` is not a valid {} version ({reason})",
                scheme.name()
            )
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIOS: &str = include_str!("../tests/data/osv/MAL-2026-2307_npm_axios.json");
    const LITELLM: &str = include_str!("../tests/data/osv/MAL-2026-2144_pypi_litellm.json");
    const LIGHTNING: &str = include_str!("../tests/data/osv/MAL-2026-3201_pypi_lightning.json");
    const TINYCOLOR: &str =
        include_str!("../tests/data/osv/MAL-2025-47141_npm_ctrl-tinycolor.json");
    const ESLINT_CONFIG_PRETTIER: &str =
        include_str!("../tests/data/osv/MAL-2025-6022_npm_eslint-config-prettier.json");
    const TANSTACK_ROUTER: &str =
        include_str!("../tests/data/osv/MAL-2026-3465_npm_tanstack-react-router.json");

    fn npm(name: &str, version: &str) -> Package {
        Package::new(Ecosystem::Npm, name, version)
    }

    fn pypi(name: &str, version: &str) -> Package {
        Package::new(Ecosystem::PyPI, name, version)
    }

    fn kind_for(advisory: &Advisory, p: &Package) -> Option<MatchKind> {
        advisory.affected_for(p).map(|(_, kind)| kind)
    }

    /// One `affected[]` entry with the given `ranges` JSON.
    fn with_ranges(ecosystem: &str, name: &str, ranges: &str) -> String {
        format!(
            r#"{{"id": "TEST-1", "affected": [{{"package": {{"ecosystem": "{ecosystem}",
            "name": "{name}"}}, "ranges": {ranges}}}]}}"#
        )
    }

    fn one_range(ecosystem: &str, kind: &str, events: &str) -> Affected {
        let text = with_ranges(
            ecosystem,
            "pkg",
            &format!(r#"[{{"type": "{kind}", "events": {events}}}]"#),
        );
        let mut advisory = parse_advisory(&text).unwrap();
        advisory.affected.remove(0)
    }

    fn err(text: &str) -> String {
        parse_advisory(text).unwrap_err().to_string()
    }

    #[test]
    fn axios_lists_two_versions() {
        let a = parse_advisory(AXIOS).unwrap();
        assert_eq!(a.id, "MAL-2026-2307");
        assert_eq!(a.aliases, ["GHSA-fw8c-xr5c-95f9"]);
        assert_eq!(a.summary.as_deref(), Some("Malicious code in axios (npm)"));
        assert_eq!(a.affected.len(), 1);
        let entry = &a.affected[0];
        assert_eq!(
            (entry.ecosystem, entry.name.as_str()),
            (Ecosystem::Npm, "axios")
        );
        assert_eq!(entry.versions, ["0.30.4", "1.14.1"]);
        assert!(entry.ranges.is_empty());
        assert_eq!(entry.match_kind(), MatchKind::Versions);

        assert_eq!(
            kind_for(&a, &npm("axios", "1.14.1")),
            Some(MatchKind::Versions)
        );
        assert_eq!(
            kind_for(&a, &npm("axios", "0.30.4")),
            Some(MatchKind::Versions)
        );
        assert_eq!(kind_for(&a, &npm("axios", "1.14.0")), None);
        assert_eq!(kind_for(&a, &npm("axios", "1.14.2")), None);
        assert_eq!(
            kind_for(&a, &npm("Axios", "1.14.1")),
            Some(MatchKind::Versions)
        );
        assert_eq!(kind_for(&a, &pypi("axios", "1.14.1")), None);
        assert_eq!(kind_for(&a, &npm("axios-retry", "1.14.1")), None);
    }

    #[test]
    fn litellm_versions_compare_as_pep440() {
        let a = parse_advisory(LITELLM).unwrap();
        assert_eq!(a.aliases, ["PYSEC-2026-2"]);
        let entry = &a.affected[0];
        assert_eq!(
            (entry.ecosystem, entry.name.as_str()),
            (Ecosystem::PyPI, "litellm")
        );
        assert_eq!(entry.versions, ["1.82.7", "1.82.8"]);
        for v in ["1.82.7", "1.82.8", "1.82.7.0", "v1.82.8"] {
            assert_eq!(
                kind_for(&a, &pypi("litellm", v)),
                Some(MatchKind::Versions),
                "{v}"
            );
        }
        // PEP 440 `==`: a public version covers its local builds.
        assert!(a.affected_for(&pypi("litellm", "1.82.7+cpu")).is_some());
        for v in [
            "1.82.6",
            "1.82.9",
            "1.82.7.post1",
            "1.82.8rc1",
            "1.82",
            "1!1.82.7",
        ] {
            assert_eq!(kind_for(&a, &pypi("litellm", v)), None, "{v}");
        }
        // PEP 503 names: `LiteLLM` is `litellm`.
        assert!(a.affected_for(&pypi("LiteLLM", "1.82.7")).is_some());
        assert!(a.affected_for(&npm("litellm", "1.82.7")).is_none());
    }

    #[test]
    fn lightning_and_other_version_lists() {
        let a = parse_advisory(LIGHTNING).unwrap();
        assert!(a.aliases.is_empty());
        assert!(a.affected_for(&pypi("lightning", "2.6.2")).is_some());
        assert!(a.affected_for(&pypi("lightning", "2.6.3")).is_some());
        assert!(a.affected_for(&pypi("lightning", "2.6.1")).is_none());
        assert!(
            a.affected_for(&pypi("pytorch-lightning", "2.6.2"))
                .is_none()
        );

        let a = parse_advisory(ESLINT_CONFIG_PRETTIER).unwrap();
        assert!(a.aliases.is_empty());
        for v in ["8.10.1", "9.1.1", "10.1.6", "10.1.7"] {
            assert!(
                a.affected_for(&npm("eslint-config-prettier", v)).is_some(),
                "{v}"
            );
        }
        assert!(
            a.affected_for(&npm("eslint-config-prettier", "10.1.5"))
                .is_none()
        );
    }

    #[test]
    fn scoped_npm_names() {
        let a = parse_advisory(TANSTACK_ROUTER).unwrap();
        assert_eq!(a.affected[0].name, "@tanstack/react-router");
        let hit = a.affected_for(&npm("@tanstack/react-router", "1.169.5"));
        assert_eq!(hit.map(|(_, k)| k), Some(MatchKind::Versions));
        assert!(
            a.affected_for(&npm("@TanStack/React-Router", "1.169.8"))
                .is_some()
        );
        assert!(
            a.affected_for(&npm("@tanstack/react-router", "1.169.6"))
                .is_none()
        );
        // 0.10.1 appears only in `database_specific` (one source's report), not in `versions[]`.
        assert!(
            a.affected_for(&npm("@tanstack/react-router", "0.10.1"))
                .is_none()
        );
        // Neither the bare name nor another scope matches.
        assert!(a.affected_for(&npm("react-router", "1.169.5")).is_none());
        assert!(
            a.affected_for(&npm("@other/react-router", "1.169.5"))
                .is_none()
        );
    }

    #[test]
    fn tinycolor_introduced_zero_is_whole_package() {
        let a = parse_advisory(TINYCOLOR).unwrap();
        let entry = &a.affected[0];
        assert_eq!(entry.name, "@ctrl/tinycolor");
        assert!(entry.versions.is_empty());
        assert_eq!(entry.ranges.len(), 2);
        assert_eq!(entry.ranges[0].events, [Event::Introduced("0".into())]);
        assert_eq!(
            entry.ranges[1].events,
            [
                Event::Introduced("4.1.1".into()),
                Event::LastAffected("4.1.2".into())
            ]
        );
        // The record keeps the first source's `introduced: "0"` range beside the later, narrower
        // one; a version in any range is affected, so every version is.
        assert!(entry.whole_package);
        assert_eq!(entry.match_kind(), MatchKind::WholePackage);
        for v in ["4.1.1", "4.1.2", "1.0.0", "5.0.0", "0.0.1-alpha"] {
            assert_eq!(
                kind_for(&a, &npm("@ctrl/tinycolor", v)),
                Some(MatchKind::WholePackage),
                "{v}"
            );
        }
        let p = parse_purl("pkg:npm/%40ctrl/tinycolor@4.1.1").unwrap();
        assert_eq!(kind_for(&a, &p), Some(MatchKind::WholePackage));
        assert!(a.affected_for(&npm("tinycolor", "4.1.1")).is_none());

        // The second range alone: 4.1.1 up to and including 4.1.2.
        let narrow = Affected {
            ranges: vec![entry.ranges[1].clone()],
            whole_package: false,
            ..entry.clone()
        };
        assert_eq!(narrow.match_kind(), MatchKind::Versions);
        for (v, hit) in [
            ("4.1.0", false),
            ("4.1.1-rc.1", false),
            ("4.1.1", true),
            ("4.1.2-beta", true),
            ("4.1.2", true),
            ("4.1.2+build.5", true),
            ("4.1.3-alpha", false),
            ("4.1.3", false),
        ] {
            assert_eq!(narrow.matches(v), hit, "{v}");
        }
    }

    #[test]
    fn pep440_ordering_in_ecosystem_ranges() {
        let a = one_range(
            "PyPI",
            "ECOSYSTEM",
            r#"[{"introduced": "1.0"}, {"fixed": "2.0"}]"#,
        );
        assert!(!a.whole_package);
        for (v, hit) in [
            ("0.9", false),
            ("1.0.dev1", false),
            ("1.0a1", false),
            ("1.0rc1", false),
            ("1.0", true),
            ("1.0.0", true),
            ("1.0.post1", true),
            ("1.5", true),
            ("2.0.dev3", true),
            ("2.0rc1", true),
            ("2.0", false),
            ("2.0.0", false),
            ("2.0.post1", false),
            ("1!0.5", false),
            ("not a version", false),
        ] {
            assert_eq!(a.matches(v), hit, "{v}");
        }

        // Epochs sort before the release numbers.
        let a = one_range(
            "PyPI",
            "ECOSYSTEM",
            r#"[{"introduced": "0"}, {"fixed": "1!1.0"}]"#,
        );
        assert!(a.matches("2024.1"));
        assert!(a.matches("1!0.9"));
        assert!(!a.matches("1!1.0"));

        // `versions[]` compares as PEP 440 too: `1.0` is `1.0.0`.
        let text = r#"{"id": "T", "affected": [{"package": {"ecosystem": "PyPI", "name": "Ruamel.YAML"},
            "versions": ["1.0", "2.1rc1"]}]}"#;
        let adv = parse_advisory(text).unwrap();
        assert_eq!(adv.affected[0].name, "ruamel-yaml");
        assert!(adv.affected_for(&pypi("ruamel_yaml", "1.0.0")).is_some());
        assert!(adv.affected_for(&pypi("ruamel.yaml", "2.1.0rc1")).is_some());
        assert!(adv.affected_for(&pypi("ruamel.yaml", "2.1")).is_none());
        let local = r#"{"id": "T", "affected": [{"package": {"ecosystem": "PyPI", "name": "torch"},
            "versions": ["2.0+cu118"]}]}"#;
        let adv = parse_advisory(local).unwrap();
        assert!(adv.affected_for(&pypi("torch", "2.0.0+cu118")).is_some());
        assert!(adv.affected_for(&pypi("torch", "2.0")).is_none());
        assert!(adv.affected_for(&pypi("torch", "2.0+cpu")).is_none());
    }

    #[test]
    fn semver_precedence_in_ranges() {
        for (ecosystem, kind) in [
            ("npm", "SEMVER"),
            ("npm", "ECOSYSTEM"),
            ("crates.io", "ECOSYSTEM"),
        ] {
            let a = one_range(
                ecosystem,
                kind,
                r#"[{"introduced": "1.0.0"}, {"fixed": "2.0.0"}]"#,
            );
            for (v, hit) in [
                ("0.9.9", false),
                ("1.0.0-alpha", false),
                ("1.0.0-rc.1", false),
                ("1.0.0", true),
                ("1.0.0+build.1", true),
                ("1.5.0+build.7", true),
                ("1.99.99", true),
                ("2.0.0-alpha", true),
                ("2.0.0-rc.1", true),
                ("2.0.0", false),
                ("2.0.0+build", false),
                ("v1.2.3", true),
                ("1.2", false),
            ] {
                assert_eq!(a.matches(v), hit, "{ecosystem} {kind} {v}");
            }
        }

        // Pre-release identifiers: numeric ones compare as numbers, and a longer list of equal
        // leading identifiers is greater:
        // 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta.2 < 1.0.0-beta.11.
        let a = one_range(
            "npm",
            "SEMVER",
            r#"[{"introduced": "1.0.0-alpha.1"}, {"fixed": "1.0.0-beta.11"}]"#,
        );
        assert!(!a.matches("1.0.0-alpha"));
        assert!(a.matches("1.0.0-alpha.1"));
        assert!(a.matches("1.0.0-alpha.beta"));
        assert!(a.matches("1.0.0-beta.2"));
        assert!(!a.matches("1.0.0-beta.11"));
        assert!(!a.matches("1.0.0"));

        // Build metadata on the event is ignored as well.
        let a = one_range(
            "npm",
            "SEMVER",
            r#"[{"introduced": "1.0.0+abc"}, {"fixed": "1.0.1+def"}]"#,
        );
        assert!(a.matches("1.0.0"));
        assert!(a.matches("1.0.0+zzz"));
        assert!(!a.matches("1.0.1"));
    }

    #[test]
    fn several_introduced_fixed_pairs() {
        // The schema's own example, with the events out of order: they are sorted first.
        let a = one_range(
            "npm",
            "SEMVER",
            r#"[{"introduced": "3.0.0"}, {"fixed": "1.0.2"}, {"fixed": "3.2.5"},
                {"introduced": "1.0.0"}]"#,
        );
        assert_eq!(a.match_kind(), MatchKind::Versions);
        for (v, hit) in [
            ("0.9.0", false),
            ("1.0.0", true),
            ("1.0.1", true),
            ("1.0.2", false),
            ("2.5.0", false),
            ("3.0.0", true),
            ("3.2.4", true),
            ("3.2.5", false),
            ("4.0.0", false),
        ] {
            assert_eq!(a.matches(v), hit, "{v}");
        }
    }

    #[test]
    fn last_affected_is_inclusive_and_fixed_exclusive() {
        let last = one_range(
            "npm",
            "ECOSYSTEM",
            r#"[{"introduced": "0"}, {"last_affected": "2.1.214"}]"#,
        );
        let fixed = one_range(
            "npm",
            "ECOSYSTEM",
            r#"[{"introduced": "0"}, {"fixed": "2.1.214"}]"#,
        );
        for a in [&last, &fixed] {
            assert!(!a.whole_package);
            assert_eq!(a.match_kind(), MatchKind::Versions);
            assert!(a.matches("0.0.0"));
            assert!(a.matches("2.1.213"));
            assert!(!a.matches("2.1.215"));
        }
        assert!(last.matches("2.1.214"));
        assert!(!fixed.matches("2.1.214"));
    }

    #[test]
    fn limits() {
        let a = one_range(
            "npm",
            "SEMVER",
            r#"[{"introduced": "1.0.0"}, {"limit": "2.0.0"}]"#,
        );
        assert!(!a.matches("0.5.0"));
        assert!(a.matches("1.5.0"));
        assert!(!a.matches("2.0.0"));
        assert!(!a.matches("3.0.0"));

        let a = one_range("npm", "SEMVER", r#"[{"introduced": "0"}, {"limit": "*"}]"#);
        assert!(a.whole_package);
        assert!(a.matches("99.0.0"));
    }

    #[test]
    fn whole_package_needs_an_open_range() {
        let a = one_range("npm", "SEMVER", r#"[{"introduced": "0"}]"#);
        assert!(a.whole_package);
        assert!(a.matches("1.2.3"));
        assert!(a.matches("anything"));

        // Ecosystems without an ordering here still match an `introduced: "0"` range.
        let a = one_range("Maven", "ECOSYSTEM", r#"[{"introduced": "0"}]"#);
        assert_eq!(
            (a.ecosystem, a.match_kind()),
            (Ecosystem::Maven, MatchKind::WholePackage)
        );
        // ... but not a bounded one.
        let a = one_range(
            "Maven",
            "ECOSYSTEM",
            r#"[{"introduced": "1.0"}, {"fixed": "2.0"}]"#,
        );
        assert!(!a.matches("1.5"));

        // GIT ranges name commits: never a package version, not even from "0".
        let a = one_range(
            "npm",
            "GIT",
            r#"[{"introduced": "0"}, {"fixed": "6a2b8f7c5d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a"}]"#,
        );
        assert!(!a.whole_package);
        assert!(!a.matches("1.0.0"));
        let a = one_range("npm", "GIT", r#"[{"introduced": "0"}]"#);
        assert!(!a.whole_package);
        assert!(!a.matches("1.0.0"));
    }

    #[test]
    fn other_ecosystems() {
        let text = r#"{"id": "T", "affected": [
            {"package": {"ecosystem": "RubyGems", "name": "rails"}, "versions": ["7.0.0"]},
            {"package": {"ecosystem": "Debian:12", "name": "openssl"}, "versions": ["3.0.0"]},
            {"package": {"ecosystem": "Maven:https://maven.google.com", "name": "com.google:x"},
             "versions": ["1.0"]},
            {"package": {"ecosystem": "Go", "name": "github.com/foo/bar"}, "versions": ["1.2.3"],
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"fixed": "2.1.0"}]}]},
            {"ranges": [{"type": "GIT", "repo": "https://example.com/x", "events": [{"introduced": "0"}]}]}
        ]}"#;
        let a = parse_advisory(text).unwrap();
        let ecosystems: Vec<_> = a.affected.iter().map(|e| e.ecosystem).collect();
        assert_eq!(
            ecosystems,
            [
                Ecosystem::Other,
                Ecosystem::Other,
                Ecosystem::Maven,
                Ecosystem::Go
            ]
        );
        // `Other` is too vague to match anything.
        assert!(
            a.affected_for(&Package::new(Ecosystem::Other, "rails", "7.0.0"))
                .is_none()
        );
        assert!(
            a.affected_for(&Package::new(Ecosystem::Maven, "com.google:x", "1.0"))
                .is_some()
        );
        // Go versions carry a `v` in go.mod and SBOMs, not in OSV.
        let go = |v: &str| Package::new(Ecosystem::Go, "github.com/foo/bar", v);
        assert!(a.affected_for(&go("v1.2.3")).is_some());
        assert!(a.affected_for(&go("v2.0.5")).is_some());
        assert!(a.affected_for(&go("v2.1.0")).is_none());
    }

    #[test]
    fn truncated_json_names_line_and_column() {
        let cut = &AXIOS[..600];
        let e = parse_advisory(cut).unwrap_err();
        let AdvisoryError::Json { line, column, .. } = &e else {
            panic!("expected a JSON error, got {e:?}");
        };
        let last_line = cut.lines().last().unwrap();
        assert_eq!(*line, cut.lines().count());
        assert_eq!(*column, last_line.len());
        assert_eq!(
            e.to_string(),
            format!("invalid JSON at line {line}, column {column}: EOF while parsing a string")
        );

        assert_eq!(
            err("{\n  \"id\": \"X\",\n  \"affected\": [}\n"),
            "invalid JSON at line 3, column 16: expected value"
        );
    }

    #[test]
    fn schema_errors_name_the_path() {
        assert_eq!(
            err(r#"{"id": "X", "affected": [{"package": {"name": "a"}}]}"#),
            "affected[0].package: missing `ecosystem`"
        );
        assert_eq!(
            err(r#"{"id": "X", "affected": [{"package": {"ecosystem": "npm"}}]}"#),
            "affected[0].package: missing `name`"
        );
        assert_eq!(err(r#"{"summary": "x"}"#), "advisory: missing `id`");
        assert_eq!(err("[]"), "advisory: expected an object, found an array");
        assert_eq!(
            err(r#"{"id": "X", "affected": {}}"#),
            "affected: expected an array, found an object"
        );
        assert_eq!(
            err(r#"{"id": "X", "aliases": ["A", 3]}"#),
            "aliases[1]: expected a string, found a number"
        );
        assert_eq!(
            err(
                r#"{"id": "X", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                "versions": [null]}]}"#
            ),
            "affected[0].versions[0]: expected a string, found null"
        );
    }

    #[test]
    fn unknown_ecosystem() {
        let text = |ecosystem: &str| {
            format!(
                r#"{{"id": "X", "affected": [{{"package": {{"ecosystem": "{ecosystem}", "name": "a"}}}}]}}"#
            )
        };
        assert_eq!(
            err(&text("npmjs")),
            "affected[0].package.ecosystem: unknown ecosystem `npmjs`"
        );
        assert_eq!(
            err(&text("pypi")),
            "affected[0].package.ecosystem: unknown ecosystem `pypi` (OSV spells it `PyPI`)"
        );
        assert_eq!(
            err(&text("rubygems:x")),
            "affected[0].package.ecosystem: unknown ecosystem `rubygems:x` (OSV spells it `RubyGems`)"
        );
        assert!(matches!(
            parse_advisory(&text("Cargo")),
            Err(AdvisoryError::UnknownEcosystem { .. })
        ));
    }

    #[test]
    fn bad_ranges_and_events() {
        let ranges = |ecosystem: &str, ranges: &str| err(&with_ranges(ecosystem, "a", ranges));
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.x"}]}]"#
            ),
            "affected[0].ranges[0].events[1].fixed: `1.x` is not a valid SemVer version \
             (unexpected character 'x' while parsing minor version number)"
        );
        let e = ranges(
            "PyPI",
            r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1.0-final!"}]}]"#,
        );
        assert!(
            e.starts_with(
                "affected[0].ranges[0].events[1].last_affected: `1.0-final!` is not a valid \
                 PEP 440 version ("
            ),
            "{e}"
        );
        // SEMVER is SemVer whatever the ecosystem; npm ECOSYSTEM ranges are too.
        assert!(
            ranges(
                "PyPI",
                r#"[{"type": "SEMVER", "events": [{"introduced": "1.0"}]}]"#
            )
            .starts_with("affected[0].ranges[0].events[0].introduced: `1.0` is not a valid SemVer")
        );
        assert!(
            ranges(
                "npm",
                r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "v1.0.0"}]}]"#
            )
            .starts_with(
                "affected[0].ranges[0].events[0].introduced: `v1.0.0` is not a valid SemVer"
            )
        );
        // Versions of ecosystems without an ordering here, and of GIT ranges, are not checked.
        let ok = with_ranges(
            "Maven",
            "g:a",
            r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "1.0-SNAPSHOT"}]}]"#,
        );
        assert!(parse_advisory(&ok).is_ok());

        assert_eq!(
            ranges("npm", r#"[{"type": "RANGE", "events": []}]"#),
            "affected[0].ranges[0].type: unknown range type `RANGE` (expected SEMVER, ECOSYSTEM or GIT)"
        );
        assert_eq!(
            ranges("npm", r#"[{"type": "SEMVER"}]"#),
            "affected[0].ranges[0]: missing `events`"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}]"#
            ),
            "affected[0].ranges[0].events: no `introduced` event (a range needs at least one)"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduced": "1.0.0", "fixed": "1.0.2"}]}]"#
            ),
            "affected[0].ranges[0].events[0]: has both `introduced` and `fixed`; an event holds exactly one"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduce": "0"}]}]"#
            ),
            "affected[0].ranges[0].events[0]: expected one of `introduced`, `fixed`, `last_affected` or `limit`"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduced": 0}]}]"#
            ),
            "affected[0].ranges[0].events[0].introduced: expected a string, found a number"
        );
    }

    #[test]
    fn package_specs() {
        assert_eq!(
            parse_package_spec("npm/axios@1.14.1").unwrap(),
            npm("axios", "1.14.1")
        );
        assert_eq!(
            parse_package_spec(" npm/@ctrl/tinycolor@4.1.1 ").unwrap(),
            npm("@ctrl/tinycolor", "4.1.1")
        );
        let p = parse_package_spec("PyPI/LiteLLM@1.82.7").unwrap();
        assert_eq!(
            (p.ecosystem, p.name.as_str(), p.version.as_str()),
            (Ecosystem::PyPI, "litellm", "1.82.7")
        );
        assert_eq!(
            parse_package_spec("crates.io/Serde@1.0.219").unwrap(),
            Package::new(Ecosystem::Cargo, "serde", "1.0.219")
        );
        assert_eq!(
            parse_package_spec("maven/org.apache.logging.log4j/log4j-core@2.14.1")
                .unwrap()
                .name,
            "org.apache.logging.log4j:log4j-core"
        );
        assert_eq!(
            parse_package_spec("go/github.com/foo/bar@v1.2.3").unwrap(),
            Package::new(Ecosystem::Go, "github.com/foo/bar", "v1.2.3")
        );
        assert_eq!(
            parse_package_spec("github/actions/checkout@v4").unwrap(),
            Package::new(Ecosystem::GitHubActions, "actions/checkout", "v4")
        );
        // A purl is read as a purl.
        assert_eq!(
            parse_package_spec("pkg:npm/axios@1.14.1").unwrap(),
            npm("axios", "1.14.1")
        );

        let e = |s: &str| parse_package_spec(s).unwrap_err().to_string();
        assert_eq!(
            e("axios@1.14.1"),
            "invalid package `axios@1.14.1`: expected `ECOSYSTEM/NAME@VERSION`, e.g. `npm/axios@1.14.1`"
        );
        assert_eq!(
            e("npm/axios"),
            "invalid package `npm/axios`: missing `@VERSION` after the name, e.g. `npm/NAME@1.2.3`"
        );
        assert_eq!(
            e("npm/@ctrl/tinycolor"),
            "invalid package `npm/@ctrl/tinycolor`: missing `@VERSION` after the name, e.g. `npm/NAME@1.2.3`"
        );
        assert_eq!(
            e("npm/axios@"),
            "invalid package `npm/axios@`: missing version after `@`"
        );
        assert_eq!(
            e("gem/rails@7.0.0"),
            "invalid package `gem/rails@7.0.0`: unknown ecosystem `gem` (expected npm, pypi, cargo, maven, go or github)"
        );
        assert_eq!(
            e("npm/axios@latest"),
            "invalid package `npm/axios@latest`: `latest` is not a valid SemVer version \
             (unexpected character 'l' while parsing major version number)"
        );
        assert!(e("pypi/litellm@1.82.x").starts_with(
            "invalid package `pypi/litellm@1.82.x`: `1.82.x` is not a valid PEP 440 version ("
        ));
        assert_eq!(
            e("npm/@ctrl@1.0.0"),
            "invalid package `npm/@ctrl@1.0.0`: `@ctrl` is not a scoped npm name (`@SCOPE/NAME`)"
        );
        assert_eq!(
            e("maven/log4j-core@2.14.1"),
            "invalid package `maven/log4j-core@2.14.1`: `log4j-core` is not a Maven `GROUP:ARTIFACT` name"
        );
        assert_eq!(
            e("pypi/a/b@1.0"),
            "invalid package `pypi/a/b@1.0`: `a/b` contains `/`, which PyPI names can't"
        );
    }

    #[test]
    fn purls() {
        assert_eq!(
            parse_purl("pkg:npm/axios@1.14.1").unwrap(),
            npm("axios", "1.14.1")
        );
        for purl in [
            "pkg:npm/%40ctrl/tinycolor@4.1.1",
            "pkg:npm/@ctrl/tinycolor@4.1.1",
            "pkg:npm/ctrl/tinycolor@4.1.1",
            "PKG:NPM/%40Ctrl/TinyColor@4.1.1?repository_url=https://registry.npmjs.org#lib",
        ] {
            assert_eq!(
                parse_purl(purl).unwrap(),
                npm("@ctrl/tinycolor", "4.1.1"),
                "{purl}"
            );
        }
        assert_eq!(
            parse_purl("pkg:pypi/litellm@1.82.7").unwrap(),
            pypi("litellm", "1.82.7")
        );
        assert_eq!(
            parse_purl("pkg:pypi/ruamel.yaml@0.18.6").unwrap().name,
            "ruamel-yaml"
        );
        assert_eq!(
            parse_purl("pkg:cargo/serde@1.0.219").unwrap(),
            Package::new(Ecosystem::Cargo, "serde", "1.0.219")
        );
        assert_eq!(
            parse_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar")
                .unwrap()
                .name,
            "org.apache.logging.log4j:log4j-core"
        );
        assert_eq!(
            parse_purl("pkg:golang/github.com/foo/bar@v1.2.3").unwrap(),
            Package::new(Ecosystem::Go, "github.com/foo/bar", "v1.2.3")
        );
        assert_eq!(
            parse_purl("pkg:github/actions/checkout@v4").unwrap(),
            Package::new(Ecosystem::GitHubActions, "actions/checkout", "v4")
        );
        assert_eq!(
            parse_purl("pkg:pypi/foo@1.0%2Blocal").unwrap().version,
            "1.0+local"
        );

        let e = |s: &str| parse_purl(s).unwrap_err().to_string();
        assert_eq!(
            e("npm/axios@1.14.1"),
            "invalid purl `npm/axios@1.14.1`: a purl starts with `pkg:`, e.g. `pkg:npm/axios@1.14.1`"
        );
        assert_eq!(
            e("pkg:npm/axios"),
            "invalid purl `pkg:npm/axios`: missing `@VERSION`: without a version the purl can't be matched against advisories"
        );
        assert_eq!(
            e("pkg:npm/%40ctrl/tinycolor"),
            "invalid purl `pkg:npm/%40ctrl/tinycolor`: missing `@VERSION`: without a version the purl can't be matched against advisories"
        );
        assert_eq!(
            e("pkg:gem/rails@7.0.0"),
            "invalid purl `pkg:gem/rails@7.0.0`: purl type `gem` is not supported (supported: npm, pypi, cargo, maven, golang, github)"
        );
        assert_eq!(
            e("pkg:npm/%4/x@1.0.0"),
            "invalid purl `pkg:npm/%4/x@1.0.0`: bad percent-escape `%4`"
        );
        assert_eq!(
            e("pkg:npm/%zzctrl/x@1.0.0"),
            "invalid purl `pkg:npm/%zzctrl/x@1.0.0`: bad percent-escape `%zz`"
        );
        assert_eq!(
            e("pkg:pypi/acme/litellm@1.82.7"),
            "invalid purl `pkg:pypi/acme/litellm@1.82.7`: a pypi purl has no namespace, but this one has `acme`"
        );
        assert_eq!(
            e("pkg:maven/log4j-core@2.14.1"),
            "invalid purl `pkg:maven/log4j-core@2.14.1`: a Maven purl is `pkg:maven/GROUP/ARTIFACT@VERSION`"
        );
        assert_eq!(
            e("pkg:npm/axios@1.14"),
            "invalid purl `pkg:npm/axios@1.14`: `1.14` is not a valid SemVer version \
             (unexpected end of input while parsing minor version number)"
        );
        assert_eq!(
            e("pkg:npm"),
            "invalid purl `pkg:npm`: expected `pkg:TYPE/NAME@VERSION`, e.g. `pkg:npm/axios@1.14.1`"
        );
    }

    #[test]
    fn purl_to_advisory_end_to_end() {
        let advisories: Vec<Advisory> = [
            AXIOS,
            LITELLM,
            LIGHTNING,
            TINYCOLOR,
            ESLINT_CONFIG_PRETTIER,
            TANSTACK_ROUTER,
        ]
        .into_iter()
        .map(|text| parse_advisory(text).unwrap())
        .collect();
        let hits = |spec: &str| -> Vec<(&str, MatchKind)> {
            let p = parse_package_spec(spec).unwrap();
            advisories
                .iter()
                .filter_map(|a| a.affected_for(&p).map(|(_, kind)| (a.id.as_str(), kind)))
                .collect()
        };
        assert_eq!(
            hits("npm/axios@1.14.1"),
            [("MAL-2026-2307", MatchKind::Versions)]
        );
        assert_eq!(hits("pkg:npm/axios@1.14.0"), []);
        assert_eq!(
            hits("pkg:pypi/litellm@1.82.7"),
            [("MAL-2026-2144", MatchKind::Versions)]
        );
        assert_eq!(
            hits("pkg:npm/%40ctrl/tinycolor@4.1.1"),
            [("MAL-2025-47141", MatchKind::WholePackage)]
        );
    }

    /// Found by hand (issue #9, item 15) and by the fuzz targets: no input may panic.
    #[test]
    fn non_ascii_and_odd_specs_are_errors_not_panics() {
        for spec in [
            "é€/x@1",
            "é€",
            "pkgé",
            "pké:npm/x@1",
            "€",
            "npm/é@1",
            "pkg:npm/%E2%82@1",
            "pkg:npm/%+1x@1",
            "pkg:npm/a%@1",
            "pkg:€/x@1",
            "@",
            "/@",
            "npm/@",
            "pkg:",
            "",
        ] {
            let p = parse_package_spec(spec);
            let q = parse_purl(spec);
            assert!(
                p.is_err() || spec == "npm/é@1",
                "{spec:?} parsed as a package spec: {p:?}"
            );
            assert!(q.is_err(), "{spec:?} parsed as a purl: {q:?}");
        }
        // `%+1` is not a hex escape, even though `u8::from_str_radix` takes a sign.
        assert!(
            parse_purl("pkg:npm/a%+1b@1.0.0")
                .unwrap_err()
                .to_string()
                .contains("bad percent-escape `%+1`")
        );
    }
}
