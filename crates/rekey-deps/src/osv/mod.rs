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

// Samples and helpers the tests share.
#[cfg(test)]
mod fixtures;

mod ecosystem;
mod json;
mod matching;
mod parse;
mod ranges;
mod spec;
mod version;

pub use parse::parse_advisory;
pub use spec::{parse_package_spec, parse_purl};

use crate::Ecosystem;

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
    /// The package name, normalized like [`Package::new`](crate::Package::new) does.
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
