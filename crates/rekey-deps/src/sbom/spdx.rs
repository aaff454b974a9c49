//! SPDX 2.x JSON.

use std::collections::BTreeSet;

use serde_json::Value;

use super::doc::{invalid, json_array, json_object, json_str};
use super::purl::purl_package;
use super::{Format, SbomError};
use crate::Package;

pub(super) fn read_spdx(doc: &Value, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
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

#[cfg(test)]
mod tests {
    use crate::sbom::fixtures::{SPDX_CARGO, error, read};
    use crate::sbom::{Format, detect};

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
}
