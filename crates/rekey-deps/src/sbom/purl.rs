//! Package URLs as SBOMs write them.

use crate::{Ecosystem, Package};

/// A purl read leniently, as SBOMs write them: the version is optional (the SBOM may give it
/// elsewhere) and is not checked against its ecosystem's scheme.
#[derive(Debug, PartialEq, Eq)]
struct Purl {
    ecosystem: Ecosystem,
    name: String,
    version: Option<String>,
}

/// Reads `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS#SUBPATH`. `Ok(None)` for a type that does
/// not map to an ecosystem advisories are matched in (`deb`, `generic`, ...).
fn read_purl(purl: &str) -> Result<Option<Purl>, String> {
    let s = purl.trim();
    let rest = match s.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => &s[4..],
        _ => {
            return Err(format!(
                "invalid purl `{purl}`: it does not start with `pkg:`"
            ));
        }
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let Some((purl_type, rest)) = rest.split_once('/') else {
        return Err(format!("invalid purl `{purl}`: expected `pkg:TYPE/NAME`"));
    };
    let ecosystem = match purl_type.to_ascii_lowercase().as_str() {
        "npm" => Ecosystem::Npm,
        "pypi" => Ecosystem::PyPI,
        "cargo" => Ecosystem::Cargo,
        "maven" => Ecosystem::Maven,
        "golang" => Ecosystem::Go,
        "github" => Ecosystem::GitHubActions,
        "" => return Err(format!("invalid purl `{purl}`: missing type after `pkg:`")),
        _ => return Ok(None),
    };
    // The version follows the last `@` of the last segment: an npm scope may be written with a
    // bare `@` (`pkg:npm/@babel/core@7.0.0`).
    let segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, version) = match rest[segment_start..].rfind('@') {
        Some(at) if segment_start + at > 0 => {
            let at = segment_start + at;
            (&rest[..at], Some(&rest[at + 1..]))
        }
        _ => (rest, None),
    };
    let fail = |problem: &str| format!("invalid purl `{purl}`: {problem}");
    let version = version
        .map(crate::percent_decode)
        .transpose()
        .map_err(|e| fail(&e))?
        .filter(|v| !v.trim().is_empty());
    let mut segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(crate::percent_decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&e))?;
    let Some(last) = segments.pop() else {
        return Err(fail("missing package name"));
    };
    let name = match (ecosystem, segments.as_slice()) {
        // The whole module path (`github.com/foo/bar`) for Go, or `stdlib` as syft writes Go.
        (Ecosystem::Npm | Ecosystem::PyPI | Ecosystem::Cargo | Ecosystem::Go, []) => last,
        (Ecosystem::Npm, [scope]) => {
            format!("@{}/{last}", scope.strip_prefix('@').unwrap_or(scope))
        }
        (Ecosystem::Maven, [group]) => format!("{group}:{last}"),
        (Ecosystem::GitHubActions, [owner]) => format!("{owner}/{last}"),
        (Ecosystem::Go, module) => format!("{}/{last}", module.join("/")),
        (Ecosystem::Maven, _) => return Err(fail("expected `pkg:maven/GROUP/ARTIFACT`")),
        (Ecosystem::GitHubActions, _) => return Err(fail("expected `pkg:github/OWNER/REPO`")),
        (_, namespace) => {
            return Err(fail(&format!(
                "unexpected namespace `{}` for a {purl_type} package",
                namespace.join("/")
            )));
        }
    };
    Ok(Some(Purl {
        ecosystem,
        name,
        version,
    }))
}

/// The package a purl names, with `fallback_version` when the purl has none. `Ok(None)` for a
/// purl type that is not read.
pub(super) fn purl_package(
    purl: &str,
    fallback_version: Option<&str>,
) -> Result<Option<Package>, String> {
    let Some(p) = read_purl(purl)? else {
        return Ok(None);
    };
    let version = p
        .version
        .as_deref()
        .or(fallback_version.filter(|v| !v.trim().is_empty()))
        .ok_or_else(|| format!("missing `version` (the purl `{purl}` has none either)"))?;
    Ok(Some(Package::new(p.ecosystem, &p.name, version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        let read_ok = |s: &str| read_purl(s).expect("valid").expect("supported");
        assert_eq!(
            read_ok("pkg:npm/%40ctrl/tinycolor@4.1.1?foo=bar#sub"),
            Purl {
                ecosystem: Ecosystem::Npm,
                name: "@ctrl/tinycolor".to_owned(),
                version: Some("4.1.1".to_owned())
            }
        );
        assert_eq!(
            read_ok("pkg:golang/golang.org/x/net@v0.17.0").name,
            "golang.org/x/net"
        );
        assert_eq!(read_ok("pkg:golang/stdlib@go1.22.1").name, "stdlib");
        assert_eq!(read_ok("pkg:pypi/ruamel.yaml").version, None);
        assert_eq!(
            read_ok("pkg:maven/org.apache.commons/commons-text@1.9%2Bx").version,
            Some("1.9+x".to_owned())
        );
        assert_eq!(read_purl("pkg:deb/debian/curl@7.88.1"), Ok(None));
        assert_eq!(read_purl("pkg:generic/openssl@3.0.0"), Ok(None));
        assert_eq!(
            read_purl("pkg:npm/a/b/c@1.0.0"),
            Err(
                "invalid purl `pkg:npm/a/b/c@1.0.0`: unexpected namespace `a/b` for a npm package"
                    .to_owned()
            )
        );
        assert_eq!(
            read_purl("pkg:npm/x%zz@1.0.0"),
            Err("invalid purl `pkg:npm/x%zz@1.0.0`: bad percent-escape `%zz`".to_owned())
        );
        assert_eq!(
            read_purl("pkg:maven/commons-text@1.9"),
            Err("invalid purl `pkg:maven/commons-text@1.9`: expected \
                 `pkg:maven/GROUP/ARTIFACT`"
                .to_owned())
        );
    }
}
