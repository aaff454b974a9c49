//! `CycloneDX` JSON.

use std::collections::BTreeSet;

use serde_json::Value;

use super::doc::{invalid, json_array, json_object, json_str};
use super::purl::purl_package;
use super::{Format, SbomError};
use crate::Package;

pub(super) fn read_cyclonedx(doc: &Value, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
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

#[cfg(test)]
mod tests {
    use crate::sbom::fixtures::{CDX_NPM, CDX_PYPI, error, read};
    use crate::sbom::{Format, detect};

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
}
