//! OSV records and helpers the tests share.

use super::{Advisory, Affected, MatchKind, parse_advisory};
use crate::{Ecosystem, Package};

pub(super) const AXIOS: &str = include_str!("../../tests/data/osv/MAL-2026-2307_npm_axios.json");
pub(super) const LITELLM: &str =
    include_str!("../../tests/data/osv/MAL-2026-2144_pypi_litellm.json");
pub(super) const LIGHTNING: &str =
    include_str!("../../tests/data/osv/MAL-2026-3201_pypi_lightning.json");
pub(super) const TINYCOLOR: &str =
    include_str!("../../tests/data/osv/MAL-2025-47141_npm_ctrl-tinycolor.json");
pub(super) const ESLINT_CONFIG_PRETTIER: &str =
    include_str!("../../tests/data/osv/MAL-2025-6022_npm_eslint-config-prettier.json");
pub(super) const TANSTACK_ROUTER: &str =
    include_str!("../../tests/data/osv/MAL-2026-3465_npm_tanstack-react-router.json");

pub(super) fn npm(name: &str, version: &str) -> Package {
    Package::new(Ecosystem::Npm, name, version)
}

pub(super) fn pypi(name: &str, version: &str) -> Package {
    Package::new(Ecosystem::PyPI, name, version)
}

pub(super) fn kind_for(advisory: &Advisory, p: &Package) -> Option<MatchKind> {
    advisory.affected_for(p).map(|(_, kind)| kind)
}

/// One `affected[]` entry with the given `ranges` JSON.
pub(super) fn with_ranges(ecosystem: &str, name: &str, ranges: &str) -> String {
    format!(
        r#"{{"id": "TEST-1", "affected": [{{"package": {{"ecosystem": "{ecosystem}",
        "name": "{name}"}}, "ranges": {ranges}}}]}}"#
    )
}

pub(super) fn one_range(ecosystem: &str, kind: &str, events: &str) -> Affected {
    let text = with_ranges(
        ecosystem,
        "pkg",
        &format!(r#"[{{"type": "{kind}", "events": {events}}}]"#),
    );
    let mut advisory = parse_advisory(&text).unwrap();
    advisory.affected.remove(0)
}

pub(super) fn err(text: &str) -> String {
    parse_advisory(text).unwrap_err().to_string()
}
