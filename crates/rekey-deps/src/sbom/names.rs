//! Names and versions as npm, pnpm and yarn lockfiles write them.

/// A version as registries publish them (`1.2.3`, not a git ref, URL or path).
pub(super) fn is_release(version: &str) -> bool {
    version.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether a `resolved` URL or a dependency range points outside the registry.
pub(super) fn is_off_registry(spec: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "git+",
        "git:",
        "git@",
        "github:",
        "gitlab:",
        "bitbucket:",
        "file:",
        "link:",
        "portal:",
        "workspace:",
    ];
    PREFIXES.iter().any(|p| spec.starts_with(p))
}

/// Splits `name@rest` at the `@` after the name, so an npm scope's `@` is not taken for it.
pub(super) fn split_npm(spec: &str) -> Option<(&str, &str)> {
    let at = 1 + spec.get(1..)?.find('@')?;
    Some((&spec[..at], &spec[at + 1..]))
}
