//! Version orderings: Semantic Versioning 2.0 precedence and PEP 440.

use std::cmp::Ordering;
use std::str::FromStr;

use super::RangeType;
use crate::Ecosystem;

/// Semantic Versioning 2.0 precedence (spec item 11): build metadata does not count, unlike in
/// `semver::Version`'s `Ord`.
pub(super) fn semver_precedence(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// An installed version, read leniently: some tools print a leading `v` or `=`.
pub(super) fn parse_installed_semver(version: &str) -> Option<semver::Version> {
    let version = version.strip_prefix(['v', 'V', '=']).unwrap_or(version);
    semver::Version::parse(version).ok()
}

/// How a range's versions are ordered, when this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    SemVer,
    Pep440,
}

impl Scheme {
    pub(super) fn for_range(kind: RangeType, ecosystem: Ecosystem) -> Option<Self> {
        match kind {
            RangeType::Semver => Some(Self::SemVer),
            RangeType::Ecosystem => Self::for_ecosystem(ecosystem),
            RangeType::Git => None,
        }
    }

    pub(super) fn for_ecosystem(ecosystem: Ecosystem) -> Option<Self> {
        match ecosystem {
            Ecosystem::Npm | Ecosystem::Cargo => Some(Self::SemVer),
            Ecosystem::PyPI => Some(Self::Pep440),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::SemVer => "SemVer",
            Self::Pep440 => "PEP 440",
        }
    }

    /// Checks a version strictly, returning the parser's reason when it is not valid.
    pub(super) fn check(self, version: &str) -> Result<(), String> {
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
