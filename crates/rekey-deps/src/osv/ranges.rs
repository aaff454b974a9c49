//! Ranges: where a version falls on a range's timeline of events.

use std::cmp::Ordering;
use std::str::FromStr;

use super::version::{Scheme, parse_installed_semver, semver_precedence};
use super::{Event, Range, RangeType};
use crate::Ecosystem;

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
    pub(super) fn includes(&self, ecosystem: Ecosystem, version: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::fixtures::{one_range, pypi};
    use crate::osv::{MatchKind, parse_advisory};

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
}
