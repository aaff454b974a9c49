//! npm's `package-lock.json` and `npm-shrinkwrap.json`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::doc::{invalid, json_object, json_str};
use super::names::{is_off_registry, is_release, split_npm};
use super::{Format, SbomError};
use crate::{Ecosystem, Package};

pub(super) fn read_package_lock(doc: &Value, out: &mut BTreeSet<Package>) -> Result<(), SbomError> {
    const F: Format = Format::PackageLock;
    let doc = json_object(F, "(document)", doc)?;
    if let Some(packages) = doc.get("packages") {
        // Lockfile v2 and v3: keys are install paths.
        let packages = json_object(F, "packages", packages)?;
        for (key, entry) in packages {
            let Some(folder) = key.rfind("node_modules/") else {
                continue; // the root "" and workspace folders: the project's own code
            };
            let here = format!("packages[\"{key}\"]");
            let entry = json_object(F, &here, entry)?;
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue; // a symlink to a workspace folder
            }
            let resolved = json_str(F, &here, entry, "resolved")?;
            let Some(version) = json_str(F, &here, entry, "version")? else {
                if resolved.is_some() {
                    return Err(invalid(F, here, "missing `version`"));
                }
                continue; // nothing installed there
            };
            // An alias (`"string-width-cjs": "npm:string-width@^4"`) installs the real
            // package, named by `name`, under the alias's folder.
            let name = json_str(F, &here, entry, "name")?
                .unwrap_or(&key[folder + "node_modules/".len()..]);
            if is_release(version) && !resolved.is_some_and(is_off_registry) {
                out.insert(Package::new(Ecosystem::Npm, name, version));
            }
        }
        Ok(())
    } else if let Some(dependencies) = doc.get("dependencies") {
        read_package_lock_v1(dependencies, "dependencies", out)
    } else {
        Ok(())
    }
}

fn read_package_lock_v1(
    dependencies: &Value,
    path: &str,
    out: &mut BTreeSet<Package>,
) -> Result<(), SbomError> {
    const F: Format = Format::PackageLock;
    for (name, entry) in json_object(F, path, dependencies)? {
        let here = format!("{path}[\"{name}\"]");
        let entry = json_object(F, &here, entry)?;
        let Some(version) = json_str(F, &here, entry, "version")? else {
            return Err(invalid(F, here, "missing `version`"));
        };
        // An alias: `"string-width-cjs": {"version": "npm:string-width@4.2.0"}`.
        let (name, version) = match version.strip_prefix("npm:") {
            Some(aliased) => split_npm(aliased)
                .ok_or_else(|| invalid(F, &here, format!("cannot read the alias `{version}`")))?,
            None => (name.as_str(), version),
        };
        let resolved = json_str(F, &here, entry, "resolved")?;
        if is_release(version) && !resolved.is_some_and(is_off_registry) {
            out.insert(Package::new(Ecosystem::Npm, name, version));
        }
        if let Some(nested) = entry.get("dependencies") {
            read_package_lock_v1(nested, &format!("{here}.dependencies"), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::sbom::Format;
    use crate::sbom::fixtures::{PACKAGE_LOCK, error, read};

    #[test]
    fn package_lock_sample() {
        assert_eq!(
            read(PACKAGE_LOCK, Format::PackageLock),
            [
                "npm/base64-js@1.0.1",
                "npm/base64-js@1.3.1",
                "npm/buffer@5.4.3",
                "npm/ieee754@1.1.13",
                "npm/ignore@5.1.4"
            ]
        );
    }

    #[test]
    fn package_lock_aliases_are_the_real_package() {
        // `node_modules/babel-code-frame` is `@babel/code-frame`; `string-width-cjs` is
        // `string-width@4.2.0` next to `string-width@5.1.2`.
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__alias.v2.json"),
                Format::PackageLock
            ),
            [
                "npm/@babel/code-frame@7.0.0",
                "npm/string-width@4.2.0",
                "npm/string-width@5.1.2"
            ]
        );
    }

    #[test]
    fn package_lock_scoped_nested_and_bundled() {
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__scoped-packages.v2.json"),
                Format::PackageLock
            ),
            ["npm/@babel/code-frame@7.0.0", "npm/wrappy@1.0.2"]
        );
        // `node_modules/@vue/component-compiler-utils/node_modules/supports-color` and the like.
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__nested-dependencies-dup.v2.json"),
                Format::PackageLock
            ),
            ["npm/supports-color@2.0.0", "npm/supports-color@6.1.0"]
        );
        assert_eq!(
            read(
                scalibr!("javascript_packagelockjson__bundled-dependencies.v3.json"),
                Format::PackageLock
            ),
            [
                "npm/ansi-regex@6.2.2",
                "npm/semver@7.7.2",
                "npm/strip-ansi@7.1.2"
            ]
        );
    }

    #[test]
    fn package_lock_skips_links_workspaces_and_git() {
        let lock = r#"{"name": "mono", "lockfileVersion": 3, "requires": true, "packages": {
            "": {"name": "mono", "workspaces": ["packages/*"]},
            "packages/a": {"name": "a", "version": "1.0.0"},
            "node_modules/a": {"resolved": "packages/a", "link": true},
            "node_modules/left-pad": {"version": "1.3.0",
                "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"},
            "node_modules/from-git": {"version": "2.0.0",
                "resolved": "git+ssh://git@github.com/o/from-git.git#0123abc"},
            "node_modules/x/node_modules/@Scope/y": {"version": "3.1.0"},
            "node_modules/not-installed": {"optional": true}
        }}"#;
        assert_eq!(
            read(lock, Format::PackageLock),
            ["npm/@scope/y@3.1.0", "npm/left-pad@1.3.0"]
        );
    }

    #[test]
    fn package_lock_v1_is_read_recursively() {
        let lock = r#"{"name": "old", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
          "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}},
            "cjs": {"version": "npm:string-width@4.2.0"},
            "g": {"version": "github:o/g#abc123", "from": "github:o/g"},
            "@s/c": {"version": "3.0.0", "bundled": true}
          }}"#;
        assert_eq!(
            read(lock, Format::PackageLock),
            [
                "npm/@s/c@3.0.0",
                "npm/a@1.0.0",
                "npm/b@2.0.0",
                "npm/string-width@4.2.0"
            ]
        );
    }

    #[test]
    fn package_lock_errors_name_the_entry() {
        let lock = r#"{"lockfileVersion": 2, "packages": {
            "node_modules/a": {"resolved": "https://registry.npmjs.org/a/-/a-1.0.0.tgz"}}}"#;
        assert_eq!(
            error(lock),
            "package-lock.json: packages[\"node_modules/a\"]: missing `version`"
        );
        let lock = r#"{"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0",
            "dependencies": {"b": {"requires": {}}}}}}"#;
        assert_eq!(
            error(lock),
            "package-lock.json: dependencies[\"a\"].dependencies[\"b\"]: missing `version`"
        );
    }
}
