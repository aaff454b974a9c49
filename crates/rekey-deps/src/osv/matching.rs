//! Whether a package version is affected: OSV's evaluation over `versions[]` and `ranges[]`.

use std::str::FromStr;

use super::{Advisory, Affected, MatchKind};
use crate::{Ecosystem, Package, normalize_name};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::fixtures::{
        AXIOS, ESLINT_CONFIG_PRETTIER, LIGHTNING, LITELLM, TANSTACK_ROUTER, TINYCOLOR, kind_for,
        npm, pypi,
    };
    use crate::osv::{Event, parse_advisory, parse_purl};

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
}
