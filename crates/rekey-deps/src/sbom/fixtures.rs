//! Samples and helpers the format modules' tests share.

use super::{Format, detect, parse};

pub(super) const CDX_NPM: &str =
    include_str!("../../tests/data/sbom/cyclonedx/npm_bundled-dependencies_flat.cdx-1.5.json");
pub(super) const CDX_PYPI: &str =
    include_str!("../../tests/data/sbom/cyclonedx/pypi_poetry-normalize-packagename.cdx-1.6.json");
pub(super) const SPDX_CARGO: &str =
    include_str!("../../tests/data/sbom/spdx/cargo_kong-atc-router_syft.spdx-2.3.json");
pub(super) const CARGO_LOCK: &str =
    include_str!("../../tests/data/lockfiles/cargo_kong-atc-router_Cargo.lock");
pub(super) const PACKAGE_LOCK: &str = include_str!(
    "../../tests/data/lockfiles/npm_cyclonedx-demo-package-integrity_package-lock.json"
);

macro_rules! scalibr {
    ($name:literal) => {
        include_str!(concat!(
            "../../tests/data/lockfiles/osv-scalibr-fixtures/",
            $name
        ))
    };
}

/// Parses, checking that `detect` agrees, and lists the packages as `TYPE/NAME@VERSION`.
pub(super) fn read(text: &str, format: Format) -> Vec<String> {
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

pub(super) fn error(text: &str) -> String {
    match parse(text) {
        Ok(parsed) => panic!("expected an error, read {parsed:?}"),
        Err(e) => e.to_string(),
    }
}
