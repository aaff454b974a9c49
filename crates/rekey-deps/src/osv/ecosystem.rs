//! OSV's ecosystem names.

use crate::Ecosystem;

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
pub(super) fn ecosystem_from_osv(raw: &str) -> Result<Ecosystem, Option<&'static str>> {
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
