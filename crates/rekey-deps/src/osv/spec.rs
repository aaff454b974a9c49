//! Package specs (`npm/axios@1.14.1`) and package URLs (`pkg:npm/axios@1.14.1`), as the
//! command line takes them.

use super::AdvisoryError;
use super::version::Scheme;
use crate::{Ecosystem, Package};

/// Reads `ECOSYSTEM/NAME@VERSION`, as `--package` takes it: `npm/axios@1.14.1`,
/// `npm/@ctrl/tinycolor@4.1.1`, `pypi/litellm@1.82.7`, `cargo/serde@1.0.219`,
/// `maven/org.apache.logging.log4j:log4j-core@2.14.1`, `go/github.com/foo/bar@v1.2.3`,
/// `github/actions/checkout@v4`. Ecosystems are named as purl types or as OSV does, in any case.
/// A string starting with `pkg:` is read as a purl.
pub fn parse_package_spec(s: &str) -> Result<Package, AdvisoryError> {
    let spec = s.trim();
    // `get`, not `[..4]`: the fourth byte may be inside a character (`é€/x@1`).
    if spec
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("pkg:"))
    {
        return parse_purl(spec);
    }
    let fail = |problem: String| AdvisoryError::InvalidPackageSpec {
        spec: s.to_owned(),
        problem,
    };
    let Some((raw_ecosystem, rest)) = spec.split_once('/') else {
        return Err(fail(
            "expected `ECOSYSTEM/NAME@VERSION`, e.g. `npm/axios@1.14.1`".to_owned(),
        ));
    };
    let ecosystem = match raw_ecosystem.to_ascii_lowercase().as_str() {
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "cargo" | "crates.io" => Ecosystem::Cargo,
        "maven" => Ecosystem::Maven,
        "go" | "golang" => Ecosystem::Go,
        "github" | "github actions" | "github-actions" => Ecosystem::GitHubActions,
        "" => return Err(fail("missing ecosystem before `/`".to_owned())),
        _ => {
            return Err(fail(format!(
                "unknown ecosystem `{raw_ecosystem}` (expected npm, pypi, cargo, maven, go \
                 or github)"
            )));
        }
    };
    let Some((name, version)) = split_version(rest) else {
        return Err(fail(format!(
            "missing `@VERSION` after the name, e.g. `{raw_ecosystem}/NAME@1.2.3`"
        )));
    };
    let name = if ecosystem == Ecosystem::Maven && !name.contains(':') {
        // `maven/group/artifact` as well as `maven/group:artifact`.
        name.replacen('/', ":", 1)
    } else {
        name.to_owned()
    };
    check_name(ecosystem, &name).map_err(&fail)?;
    check_version(ecosystem, version).map_err(&fail)?;
    Ok(Package::new(ecosystem, &name, version))
}

/// Reads a package URL (<https://github.com/package-url/purl-spec>) with a version:
/// `pkg:npm/axios@1.14.1`, `pkg:npm/%40ctrl/tinycolor@4.1.1`, `pkg:pypi/litellm@1.82.7`,
/// `pkg:cargo/serde@1.0.219`, `pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1`,
/// `pkg:golang/github.com/foo/bar@v1.2.3`, `pkg:github/actions/checkout@v4`. Qualifiers
/// (`?...`) and a subpath (`#...`) are ignored.
pub fn parse_purl(s: &str) -> Result<Package, AdvisoryError> {
    let fail = |problem: String| AdvisoryError::InvalidPurl {
        purl: s.to_owned(),
        problem,
    };
    let purl = s.trim();
    let rest = match purl.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => &purl[4..],
        _ => {
            return Err(fail(
                "a purl starts with `pkg:`, e.g. `pkg:npm/axios@1.14.1`".to_owned(),
            ));
        }
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let Some((raw_type, rest)) = rest.split_once('/') else {
        return Err(fail(
            "expected `pkg:TYPE/NAME@VERSION`, e.g. `pkg:npm/axios@1.14.1`".to_owned(),
        ));
    };
    let ecosystem = match raw_type.to_ascii_lowercase().as_str() {
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "cargo" => Ecosystem::Cargo,
        "maven" => Ecosystem::Maven,
        "golang" => Ecosystem::Go,
        "github" => Ecosystem::GitHubActions,
        "" => return Err(fail("missing type after `pkg:`".to_owned())),
        _ => {
            return Err(fail(format!(
                "purl type `{raw_type}` is not supported (supported: npm, pypi, cargo, maven, \
                 golang, github)"
            )));
        }
    };
    let Some((path, version)) = split_version(rest) else {
        return Err(fail(
            "missing `@VERSION`: without a version the purl can't be matched against advisories"
                .to_owned(),
        ));
    };
    let version = crate::percent_decode(version).map_err(&fail)?;
    let mut segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(crate::percent_decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    let Some(last) = segments.pop() else {
        return Err(fail("missing package name".to_owned()));
    };
    let namespace = segments;

    let name = match (ecosystem, namespace.as_slice()) {
        (Ecosystem::Npm | Ecosystem::PyPI | Ecosystem::Cargo, []) => last,
        (Ecosystem::Npm, [scope]) => {
            // The purl spec writes the scope with its `@` (`%40ctrl`); accept it without too.
            let scope = scope.strip_prefix('@').unwrap_or(scope);
            format!("@{scope}/{last}")
        }
        (Ecosystem::Maven, [group]) => format!("{group}:{last}"),
        (Ecosystem::Maven, _) => {
            return Err(fail(
                "a Maven purl is `pkg:maven/GROUP/ARTIFACT@VERSION`".to_owned(),
            ));
        }
        (Ecosystem::GitHubActions, [owner]) => format!("{owner}/{last}"),
        (Ecosystem::GitHubActions, _) => {
            return Err(fail(
                "a GitHub purl is `pkg:github/OWNER/REPO@VERSION`".to_owned(),
            ));
        }
        (Ecosystem::Go, namespace) => {
            let mut module = namespace.join("/");
            if !module.is_empty() {
                module.push('/');
            }
            module.push_str(&last);
            module
        }
        (_, namespace) => {
            return Err(fail(format!(
                "a {raw_type} purl has no namespace, but this one has `{}`",
                namespace.join("/")
            )));
        }
    };
    check_name(ecosystem, &name).map_err(&fail)?;
    check_version(ecosystem, &version).map_err(&fail)?;
    Ok(Package::new(ecosystem, &name, &version))
}

/// Splits `NAME@VERSION` at the `@` in the last `/`-separated segment, so a leading npm scope
/// (`@ctrl/tinycolor@4.1.1`) is not taken for the version.
fn split_version(rest: &str) -> Option<(&str, &str)> {
    let segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    let at = segment_start + rest[segment_start..].rfind('@')?;
    (at > 0).then(|| (&rest[..at], &rest[at + 1..]))
}

fn check_name(ecosystem: Ecosystem, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing package name".to_owned());
    }
    if name.chars().any(char::is_whitespace) {
        return Err(format!("package name `{name}` contains whitespace"));
    }
    match ecosystem {
        Ecosystem::Npm if name.starts_with('@') => match name.split_once('/') {
            Some((scope, bare)) if scope.len() > 1 && !bare.is_empty() && !bare.contains('/') => {
                Ok(())
            }
            _ => Err(format!("`{name}` is not a scoped npm name (`@SCOPE/NAME`)")),
        },
        Ecosystem::Npm | Ecosystem::PyPI | Ecosystem::Cargo if name.contains('/') => Err(format!(
            "`{name}` contains `/`, which {} names can't",
            ecosystem.osv_name()
        )),
        Ecosystem::Maven => match name.split_once(':') {
            Some((group, artifact)) if !group.is_empty() && !artifact.is_empty() => Ok(()),
            _ => Err(format!("`{name}` is not a Maven `GROUP:ARTIFACT` name")),
        },
        _ => Ok(()),
    }
}

/// A version to look up must be readable in its ecosystem's scheme (strictly: npm and crates.io
/// versions are semantic versions, without a leading `v`), so that an advisory's ranges can place
/// it.
fn check_version(ecosystem: Ecosystem, version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("missing version after `@`".to_owned());
    }
    if version.chars().any(char::is_whitespace) {
        return Err(format!("version `{version}` contains whitespace"));
    }
    match Scheme::for_ecosystem(ecosystem) {
        Some(scheme) => scheme.check(version).map_err(|reason| {
            format!(
                "`{version}` is not a valid {} version ({reason})",
                scheme.name()
            )
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::fixtures::{
        AXIOS, ESLINT_CONFIG_PRETTIER, LIGHTNING, LITELLM, TANSTACK_ROUTER, TINYCOLOR, npm, pypi,
    };
    use crate::osv::{Advisory, MatchKind, parse_advisory};

    #[test]
    fn package_specs() {
        assert_eq!(
            parse_package_spec("npm/axios@1.14.1").unwrap(),
            npm("axios", "1.14.1")
        );
        assert_eq!(
            parse_package_spec(" npm/@ctrl/tinycolor@4.1.1 ").unwrap(),
            npm("@ctrl/tinycolor", "4.1.1")
        );
        let p = parse_package_spec("PyPI/LiteLLM@1.82.7").unwrap();
        assert_eq!(
            (p.ecosystem, p.name.as_str(), p.version.as_str()),
            (Ecosystem::PyPI, "litellm", "1.82.7")
        );
        assert_eq!(
            parse_package_spec("crates.io/Serde@1.0.219").unwrap(),
            Package::new(Ecosystem::Cargo, "serde", "1.0.219")
        );
        assert_eq!(
            parse_package_spec("maven/org.apache.logging.log4j/log4j-core@2.14.1")
                .unwrap()
                .name,
            "org.apache.logging.log4j:log4j-core"
        );
        assert_eq!(
            parse_package_spec("go/github.com/foo/bar@v1.2.3").unwrap(),
            Package::new(Ecosystem::Go, "github.com/foo/bar", "v1.2.3")
        );
        assert_eq!(
            parse_package_spec("github/actions/checkout@v4").unwrap(),
            Package::new(Ecosystem::GitHubActions, "actions/checkout", "v4")
        );
        // A purl is read as a purl.
        assert_eq!(
            parse_package_spec("pkg:npm/axios@1.14.1").unwrap(),
            npm("axios", "1.14.1")
        );

        let e = |s: &str| parse_package_spec(s).unwrap_err().to_string();
        assert_eq!(
            e("axios@1.14.1"),
            "invalid package `axios@1.14.1`: expected `ECOSYSTEM/NAME@VERSION`, e.g. `npm/axios@1.14.1`"
        );
        assert_eq!(
            e("npm/axios"),
            "invalid package `npm/axios`: missing `@VERSION` after the name, e.g. `npm/NAME@1.2.3`"
        );
        assert_eq!(
            e("npm/@ctrl/tinycolor"),
            "invalid package `npm/@ctrl/tinycolor`: missing `@VERSION` after the name, e.g. `npm/NAME@1.2.3`"
        );
        assert_eq!(
            e("npm/axios@"),
            "invalid package `npm/axios@`: missing version after `@`"
        );
        assert_eq!(
            e("gem/rails@7.0.0"),
            "invalid package `gem/rails@7.0.0`: unknown ecosystem `gem` (expected npm, pypi, cargo, maven, go or github)"
        );
        assert_eq!(
            e("npm/axios@latest"),
            "invalid package `npm/axios@latest`: `latest` is not a valid SemVer version \
             (unexpected character 'l' while parsing major version number)"
        );
        assert!(e("pypi/litellm@1.82.x").starts_with(
            "invalid package `pypi/litellm@1.82.x`: `1.82.x` is not a valid PEP 440 version ("
        ));
        assert_eq!(
            e("npm/@ctrl@1.0.0"),
            "invalid package `npm/@ctrl@1.0.0`: `@ctrl` is not a scoped npm name (`@SCOPE/NAME`)"
        );
        assert_eq!(
            e("maven/log4j-core@2.14.1"),
            "invalid package `maven/log4j-core@2.14.1`: `log4j-core` is not a Maven `GROUP:ARTIFACT` name"
        );
        assert_eq!(
            e("pypi/a/b@1.0"),
            "invalid package `pypi/a/b@1.0`: `a/b` contains `/`, which PyPI names can't"
        );
    }

    #[test]
    fn purls() {
        assert_eq!(
            parse_purl("pkg:npm/axios@1.14.1").unwrap(),
            npm("axios", "1.14.1")
        );
        for purl in [
            "pkg:npm/%40ctrl/tinycolor@4.1.1",
            "pkg:npm/@ctrl/tinycolor@4.1.1",
            "pkg:npm/ctrl/tinycolor@4.1.1",
            "PKG:NPM/%40Ctrl/TinyColor@4.1.1?repository_url=https://registry.npmjs.org#lib",
        ] {
            assert_eq!(
                parse_purl(purl).unwrap(),
                npm("@ctrl/tinycolor", "4.1.1"),
                "{purl}"
            );
        }
        assert_eq!(
            parse_purl("pkg:pypi/litellm@1.82.7").unwrap(),
            pypi("litellm", "1.82.7")
        );
        assert_eq!(
            parse_purl("pkg:pypi/ruamel.yaml@0.18.6").unwrap().name,
            "ruamel-yaml"
        );
        assert_eq!(
            parse_purl("pkg:cargo/serde@1.0.219").unwrap(),
            Package::new(Ecosystem::Cargo, "serde", "1.0.219")
        );
        assert_eq!(
            parse_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar")
                .unwrap()
                .name,
            "org.apache.logging.log4j:log4j-core"
        );
        assert_eq!(
            parse_purl("pkg:golang/github.com/foo/bar@v1.2.3").unwrap(),
            Package::new(Ecosystem::Go, "github.com/foo/bar", "v1.2.3")
        );
        assert_eq!(
            parse_purl("pkg:github/actions/checkout@v4").unwrap(),
            Package::new(Ecosystem::GitHubActions, "actions/checkout", "v4")
        );
        assert_eq!(
            parse_purl("pkg:pypi/foo@1.0%2Blocal").unwrap().version,
            "1.0+local"
        );

        let e = |s: &str| parse_purl(s).unwrap_err().to_string();
        assert_eq!(
            e("npm/axios@1.14.1"),
            "invalid purl `npm/axios@1.14.1`: a purl starts with `pkg:`, e.g. `pkg:npm/axios@1.14.1`"
        );
        assert_eq!(
            e("pkg:npm/axios"),
            "invalid purl `pkg:npm/axios`: missing `@VERSION`: without a version the purl can't be matched against advisories"
        );
        assert_eq!(
            e("pkg:npm/%40ctrl/tinycolor"),
            "invalid purl `pkg:npm/%40ctrl/tinycolor`: missing `@VERSION`: without a version the purl can't be matched against advisories"
        );
        assert_eq!(
            e("pkg:gem/rails@7.0.0"),
            "invalid purl `pkg:gem/rails@7.0.0`: purl type `gem` is not supported (supported: npm, pypi, cargo, maven, golang, github)"
        );
        assert_eq!(
            e("pkg:npm/%4/x@1.0.0"),
            "invalid purl `pkg:npm/%4/x@1.0.0`: bad percent-escape `%4`"
        );
        assert_eq!(
            e("pkg:npm/%zzctrl/x@1.0.0"),
            "invalid purl `pkg:npm/%zzctrl/x@1.0.0`: bad percent-escape `%zz`"
        );
        assert_eq!(
            e("pkg:pypi/acme/litellm@1.82.7"),
            "invalid purl `pkg:pypi/acme/litellm@1.82.7`: a pypi purl has no namespace, but this one has `acme`"
        );
        assert_eq!(
            e("pkg:maven/log4j-core@2.14.1"),
            "invalid purl `pkg:maven/log4j-core@2.14.1`: a Maven purl is `pkg:maven/GROUP/ARTIFACT@VERSION`"
        );
        assert_eq!(
            e("pkg:npm/axios@1.14"),
            "invalid purl `pkg:npm/axios@1.14`: `1.14` is not a valid SemVer version \
             (unexpected end of input while parsing minor version number)"
        );
        assert_eq!(
            e("pkg:npm"),
            "invalid purl `pkg:npm`: expected `pkg:TYPE/NAME@VERSION`, e.g. `pkg:npm/axios@1.14.1`"
        );
    }

    #[test]
    fn purl_to_advisory_end_to_end() {
        let advisories: Vec<Advisory> = [
            AXIOS,
            LITELLM,
            LIGHTNING,
            TINYCOLOR,
            ESLINT_CONFIG_PRETTIER,
            TANSTACK_ROUTER,
        ]
        .into_iter()
        .map(|text| parse_advisory(text).unwrap())
        .collect();
        let hits = |spec: &str| -> Vec<(&str, MatchKind)> {
            let p = parse_package_spec(spec).unwrap();
            advisories
                .iter()
                .filter_map(|a| a.affected_for(&p).map(|(_, kind)| (a.id.as_str(), kind)))
                .collect()
        };
        assert_eq!(
            hits("npm/axios@1.14.1"),
            [("MAL-2026-2307", MatchKind::Versions)]
        );
        assert_eq!(hits("pkg:npm/axios@1.14.0"), []);
        assert_eq!(
            hits("pkg:pypi/litellm@1.82.7"),
            [("MAL-2026-2144", MatchKind::Versions)]
        );
        assert_eq!(
            hits("pkg:npm/%40ctrl/tinycolor@4.1.1"),
            [("MAL-2025-47141", MatchKind::WholePackage)]
        );
    }

    /// Found by hand (issue #9, item 15) and by the fuzz targets: no input may panic.
    #[test]
    fn non_ascii_and_odd_specs_are_errors_not_panics() {
        for spec in [
            "é€/x@1",
            "é€",
            "pkgé",
            "pké:npm/x@1",
            "€",
            "npm/é@1",
            "pkg:npm/%E2%82@1",
            "pkg:npm/%+1x@1",
            "pkg:npm/a%@1",
            "pkg:€/x@1",
            "@",
            "/@",
            "npm/@",
            "pkg:",
            "",
        ] {
            let p = parse_package_spec(spec);
            let q = parse_purl(spec);
            assert!(
                p.is_err() || spec == "npm/é@1",
                "{spec:?} parsed as a package spec: {p:?}"
            );
            assert!(q.is_err(), "{spec:?} parsed as a purl: {q:?}");
        }
        // `%+1` is not a hex escape, even though `u8::from_str_radix` takes a sign.
        assert!(
            parse_purl("pkg:npm/a%+1b@1.0.0")
                .unwrap_err()
                .to_string()
                .contains("bad percent-escape `%+1`")
        );
    }
}
