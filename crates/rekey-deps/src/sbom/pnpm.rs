//! `pnpm-lock.yaml`.

use std::collections::BTreeSet;

use marked_yaml::Node;

use super::doc::{invalid, read_yaml_mapping, yaml_path};
use super::names::{is_release, split_npm};
use super::{Format, SbomError};
use crate::{Ecosystem, Package};

pub(super) fn read_pnpm(text: &str, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::PnpmLock;
    let doc = read_yaml_mapping(F, text)?;
    let lockfile_version = doc
        .get_scalar("lockfileVersion")
        .map(|s| s.as_str().to_owned());
    let major = lockfile_version
        .as_deref()
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| invalid(F, "lockfileVersion", "expected a version such as '9.0'"))?;
    let packages = match doc.get_node("packages") {
        None => return Ok(()),
        Some(Node::Scalar(s)) if s.as_str().trim().is_empty() => return Ok(()),
        Some(Node::Mapping(m)) => m,
        Some(_) => return Err(invalid(F, "packages", "expected a mapping")),
    };
    for key in packages.keys() {
        match pnpm_key(key.as_str(), major) {
            Ok(Some((name, version))) => {
                out.insert(Package::new(Ecosystem::Npm, name, version));
            }
            Ok(None) => {}
            Err(problem) => return Err(invalid(F, yaml_path(key, "packages"), problem)),
        }
    }
    Ok(())
}

/// Reads a `packages:` key: `name@1.0.0` (v9), `/name@1.0.0(peer@2.0.0)` (v6),
/// `/name/1.0.0_peer@2.0.0` (v5). `Ok(None)` for a package not from the registry: a git commit,
/// a tarball, a local directory.
fn pnpm_key(key: &str, major: u32) -> Result<Option<(&str, &str)>, String> {
    let key = match key.strip_prefix('/') {
        Some(k) => k,
        // Before v9, registry packages are `/...`; others start with a host or `file:`.
        None if major < 9 => return Ok(None),
        None => key,
    };
    let (name, version) = if major < 6 {
        let slash = key
            .rfind('/')
            .ok_or_else(|| "expected `/NAME/VERSION`".to_owned())?;
        let version = &key[slash + 1..];
        let version = version.split_once('_').map_or(version, |(v, _)| v);
        (&key[..slash], version)
    } else {
        let key = key.split_once('(').map_or(key, |(k, _)| k);
        split_npm(key).ok_or_else(|| "expected `NAME@VERSION`".to_owned())?
    };
    if name.is_empty() || name == "@" {
        return Err("missing package name".to_owned());
    }
    Ok(is_release(version).then_some((name, version)))
}

#[cfg(test)]
mod tests {
    use crate::sbom::Format;
    use crate::sbom::fixtures::{error, read};

    const PNPM_LOCK: &str = include_str!(
        "../../tests/data/lockfiles/npm_tanstack-dexie-db-collection_pnpm-lock-v9.yaml"
    );

    #[test]
    fn pnpm_real_sample() {
        let packages = read(PNPM_LOCK, Format::PnpmLock);
        assert_eq!(packages.len(), 526);
        assert!(packages.contains(&"npm/@tanstack/db@0.3.2".to_owned()));
        assert!(packages.contains(&"npm/jsonstream@1.3.5".to_owned()));
        assert!(!packages.iter().any(|p| p.contains('(')));
    }

    #[test]
    fn pnpm_scalibr_fixtures() {
        assert_eq!(
            read(
                scalibr!("javascript_pnpmlock__scoped-packages.v9.yaml"),
                Format::PnpmLock
            ),
            ["npm/@typescript-eslint/types@5.62.0"]
        );
        let peers = read(
            scalibr!("javascript_pnpmlock__peer-dependencies-advanced.v9.yaml"),
            Format::PnpmLock,
        );
        assert_eq!(peers.len(), 13);
        assert!(peers.contains(&"npm/@typescript-eslint/eslint-plugin@5.62.0".to_owned()));
        assert!(peers.contains(&"npm/typescript@4.9.5".to_owned()));
        // Git tarballs are not registry releases.
        assert_eq!(
            read(
                scalibr!("javascript_pnpmlock__commits.v9.yaml"),
                Format::PnpmLock
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn pnpm_peer_suffixes_and_older_lockfile_versions() {
        let v9 = "lockfileVersion: '9.0'\n\npackages:\n\n  \
                  '@scope/a@1.0.0(react@18.2.0)':\n    resolution: {integrity: sha512-x}\n\n  \
                  b@2.0.0:\n    resolution: {integrity: sha512-x}\n\n  \
                  c@file:../c:\n    resolution: {directory: ../c, type: directory}\n";
        assert_eq!(
            read(v9, Format::PnpmLock),
            ["npm/@scope/a@1.0.0", "npm/b@2.0.0"]
        );
        let v6 = "lockfileVersion: '6.0'\n\npackages:\n\n  \
                  /@babel/core@7.24.0:\n    resolution: {integrity: sha512-x}\n\n  \
                  /eslint-plugin-x@1.0.0(eslint@8.57.0):\n    resolution: {integrity: sha512-x}\n\n  \
                  github.com/o/repo/0123456789abcdef:\n    resolution: {tarball: https://codeload.github.com/o/repo/tar.gz/0123456789abcdef}\n    name: repo\n    version: 1.0.0\n";
        assert_eq!(
            read(v6, Format::PnpmLock),
            ["npm/@babel/core@7.24.0", "npm/eslint-plugin-x@1.0.0"]
        );
        let v5 = "lockfileVersion: 5.4\n\npackages:\n\n  \
                  /@babel/core/7.12.0:\n    resolution: {integrity: sha512-x}\n\n  \
                  /react-dom/17.0.2_react@17.0.2:\n    resolution: {integrity: sha512-x}\n";
        assert_eq!(
            read(v5, Format::PnpmLock),
            ["npm/@babel/core@7.12.0", "npm/react-dom@17.0.2"]
        );
        let empty = "lockfileVersion: '9.0'\n\nimporters:\n\n  .: {}\n";
        assert_eq!(read(empty, Format::PnpmLock), Vec::<String>::new());
    }

    #[test]
    fn pnpm_errors_name_the_key() {
        let bad = "lockfileVersion: '9.0'\n\npackages:\n\n  nameonly:\n    resolution: {}\n";
        assert_eq!(
            error(bad),
            "pnpm-lock.yaml: packages[\"nameonly\"] (line 5): expected `NAME@VERSION`"
        );
    }
}
