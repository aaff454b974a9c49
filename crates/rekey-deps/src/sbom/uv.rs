//! `uv.lock`.

use std::collections::BTreeSet;

use super::doc::{invalid, toml_packages, toml_str};
use super::{Format, SbomError};
use crate::{Ecosystem, Package};

pub(super) fn read_uv(doc: &toml::Table, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::UvLock;
    for (here, package) in toml_packages(F, doc)? {
        // `source = { registry = ... }` or `{ url = ... }` are releases; `editable` and
        // `virtual` are the project itself, `path`, `directory` and `git` not releases.
        // Early uv wrote the source as a string (`registry+https://...`).
        let release = match package.get("source") {
            None => true,
            Some(toml::Value::Table(source)) => {
                source.contains_key("registry") || source.contains_key("url")
            }
            Some(toml::Value::String(source)) => {
                source.starts_with("registry+") || source.starts_with("direct+")
            }
            Some(_) => return Err(invalid(F, here, "`source`: expected a table")),
        };
        if !release {
            continue;
        }
        let name = toml_str(F, &here, package, "name")?;
        let version = toml_str(F, &here, package, "version")?;
        out.insert(Package::new(Ecosystem::PyPI, name, version));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::sbom::Format;
    use crate::sbom::fixtures::read;

    const UV_LOCK: &str = include_str!("../../tests/data/lockfiles/pypi_cyclonedx-via-uv_uv.lock");

    #[test]
    fn uv_samples() {
        // `via-uv` itself is `source = { virtual = "." }`.
        assert_eq!(
            read(UV_LOCK, Format::UvLock),
            ["pypi/ddt@1.7.2", "pypi/toml@0.10.2"]
        );
        let grouped = read(
            scalibr!("python_uvlock__grouped-packages.lock"),
            Format::UvLock,
        );
        assert_eq!(grouped.len(), 14);
        assert!(grouped.contains(&"pypi/black@24.10.0".to_owned()));
        assert!(!grouped.iter().any(|p| p.contains("uv-lockfiles")));
    }

    #[test]
    fn uv_skips_the_project_and_checkouts() {
        let lock = r#"version = 1
requires-python = ">=3.12"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "dynamic"
source = { virtual = "packages/dynamic" }

[[package]]
name = "lib"
version = "0.2.0"
source = { git = "https://github.com/o/lib?rev=main#0123abc" }

[[package]]
name = "Typing_Extensions"
version = "4.12.2"
source = { registry = "https://pypi.org/simple" }
"#;
        assert_eq!(
            read(lock, Format::UvLock),
            ["pypi/typing-extensions@4.12.2"]
        );
    }
}
