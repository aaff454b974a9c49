//! Reading an OSV record, with errors that name the JSON path of the problem.

use serde_json::Value;

use super::ecosystem::ecosystem_from_osv;
use super::json::{
    as_array, as_object, as_str, child, missing, optional, optional_array, optional_str,
    required_str, schema, string_list,
};
use super::version::Scheme;
use super::{Advisory, AdvisoryError, Affected, Event, Range, RangeType};
use crate::{Ecosystem, normalize_name};

/// Reads one OSV record (JSON). Fields matching does not use (`details`, `references`,
/// `database_specific`, ...) are not checked.
pub fn parse_advisory(text: &str) -> Result<Advisory, AdvisoryError> {
    let root: Value = serde_json::from_str(text).map_err(|source| {
        let (line, column) = (source.line(), source.column());
        let full = source.to_string();
        let message = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full)
            .to_owned();
        AdvisoryError::Json {
            line,
            column,
            message,
            source,
        }
    })?;
    let root = as_object(&root, "")?;

    let id = required_str(root, "", "id")?;
    if id.trim().is_empty() {
        return Err(schema("id", "empty id"));
    }
    let summary = optional_str(root, "", "summary")?.map(str::to_owned);
    let aliases = string_list(root, "", "aliases")?;

    let mut affected = Vec::new();
    for (i, entry) in optional_array(root, "", "affected")?.iter().enumerate() {
        if let Some(a) = parse_affected(entry, &format!("affected[{i}]"))? {
            affected.push(a);
        }
    }

    Ok(Advisory {
        id: id.to_owned(),
        summary,
        aliases,
        affected,
    })
}

fn parse_affected(value: &Value, path: &str) -> Result<Option<Affected>, AdvisoryError> {
    let entry = as_object(value, path)?;
    // The JSON schema lets an entry go without `package` (bare `GIT` ranges); such an entry
    // names no package, so no package can match it.
    let Some(package) = optional(entry, "package") else {
        return Ok(None);
    };
    let package_path = child(path, "package");
    let package = as_object(package, &package_path)?;
    let raw_ecosystem = required_str(package, &package_path, "ecosystem")?;
    let ecosystem = ecosystem_from_osv(raw_ecosystem).map_err(|suggestion| {
        AdvisoryError::UnknownEcosystem {
            path: child(&package_path, "ecosystem"),
            ecosystem: raw_ecosystem.to_owned(),
            suggestion,
        }
    })?;
    let name = required_str(package, &package_path, "name")?;
    if name.trim().is_empty() {
        return Err(schema(&child(&package_path, "name"), "empty package name"));
    }

    let versions = string_list(entry, path, "versions")?;
    let mut ranges = Vec::new();
    for (i, range) in optional_array(entry, path, "ranges")?.iter().enumerate() {
        ranges.push(parse_range(
            range,
            &format!("{path}.ranges[{i}]"),
            ecosystem,
        )?);
    }
    let whole_package = ranges.iter().any(Range::affects_every_version);

    Ok(Some(Affected {
        ecosystem,
        name: normalize_name(ecosystem, name.trim()),
        versions,
        ranges,
        whole_package,
    }))
}

fn parse_range(value: &Value, path: &str, ecosystem: Ecosystem) -> Result<Range, AdvisoryError> {
    let range = as_object(value, path)?;
    let raw_kind = required_str(range, path, "type")?;
    let kind = match raw_kind {
        "SEMVER" => RangeType::Semver,
        "ECOSYSTEM" => RangeType::Ecosystem,
        "GIT" => RangeType::Git,
        other => {
            return Err(AdvisoryError::UnknownRangeType {
                path: child(path, "type"),
                kind: other.to_owned(),
            });
        }
    };
    let scheme = Scheme::for_range(kind, ecosystem);

    let events_path = child(path, "events");
    let Some(raw_events) = optional(range, "events") else {
        return Err(missing(path, "events"));
    };
    let raw_events = as_array(raw_events, &events_path)?;
    let mut events = Vec::with_capacity(raw_events.len());
    for (i, raw) in raw_events.iter().enumerate() {
        events.push(parse_event(raw, &format!("{events_path}[{i}]"), scheme)?);
    }
    if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return Err(schema(
            &events_path,
            "no `introduced` event (a range needs at least one)",
        ));
    }
    Ok(Range { kind, events })
}

const EVENT_KEYS: [&str; 4] = ["introduced", "fixed", "last_affected", "limit"];

fn parse_event(value: &Value, path: &str, scheme: Option<Scheme>) -> Result<Event, AdvisoryError> {
    let event = as_object(value, path)?;
    let present: Vec<&str> = EVENT_KEYS
        .into_iter()
        .filter(|key| event.contains_key(*key))
        .collect();
    let key = match present.as_slice() {
        [key] => *key,
        [] => {
            return Err(schema(
                path,
                "expected one of `introduced`, `fixed`, `last_affected` or `limit`",
            ));
        }
        [first, second, ..] => {
            return Err(schema(
                path,
                &format!("has both `{first}` and `{second}`; an event holds exactly one"),
            ));
        }
    };
    let key_path = child(path, key);
    let version = as_str(&event[key], &key_path)?;
    if version.trim().is_empty() {
        return Err(schema(&key_path, "empty version"));
    }
    let event = match key {
        "introduced" => Event::Introduced(version.to_owned()),
        "fixed" => Event::Fixed(version.to_owned()),
        "last_affected" => Event::LastAffected(version.to_owned()),
        _ => Event::Limit(version.to_owned()),
    };
    if let Some(scheme) = scheme
        && !event.is_introduced_zero()
        && !event.is_infinite_limit()
    {
        scheme
            .check(version)
            .map_err(|reason| AdvisoryError::InvalidVersion {
                path: key_path,
                version: version.to_owned(),
                scheme: scheme.name(),
                reason,
            })?;
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::fixtures::{AXIOS, err, with_ranges};

    #[test]
    fn truncated_json_names_line_and_column() {
        let cut = &AXIOS[..600];
        let e = parse_advisory(cut).unwrap_err();
        let AdvisoryError::Json { line, column, .. } = &e else {
            panic!("expected a JSON error, got {e:?}");
        };
        let last_line = cut.lines().last().unwrap();
        assert_eq!(*line, cut.lines().count());
        assert_eq!(*column, last_line.len());
        assert_eq!(
            e.to_string(),
            format!("invalid JSON at line {line}, column {column}: EOF while parsing a string")
        );

        assert_eq!(
            err("{\n  \"id\": \"X\",\n  \"affected\": [}\n"),
            "invalid JSON at line 3, column 16: expected value"
        );
    }

    #[test]
    fn schema_errors_name_the_path() {
        assert_eq!(
            err(r#"{"id": "X", "affected": [{"package": {"name": "a"}}]}"#),
            "affected[0].package: missing `ecosystem`"
        );
        assert_eq!(
            err(r#"{"id": "X", "affected": [{"package": {"ecosystem": "npm"}}]}"#),
            "affected[0].package: missing `name`"
        );
        assert_eq!(err(r#"{"summary": "x"}"#), "advisory: missing `id`");
        assert_eq!(err("[]"), "advisory: expected an object, found an array");
        assert_eq!(
            err(r#"{"id": "X", "affected": {}}"#),
            "affected: expected an array, found an object"
        );
        assert_eq!(
            err(r#"{"id": "X", "aliases": ["A", 3]}"#),
            "aliases[1]: expected a string, found a number"
        );
        assert_eq!(
            err(
                r#"{"id": "X", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                "versions": [null]}]}"#
            ),
            "affected[0].versions[0]: expected a string, found null"
        );
    }

    #[test]
    fn unknown_ecosystem() {
        let text = |ecosystem: &str| {
            format!(
                r#"{{"id": "X", "affected": [{{"package": {{"ecosystem": "{ecosystem}", "name": "a"}}}}]}}"#
            )
        };
        assert_eq!(
            err(&text("npmjs")),
            "affected[0].package.ecosystem: unknown ecosystem `npmjs`"
        );
        assert_eq!(
            err(&text("pypi")),
            "affected[0].package.ecosystem: unknown ecosystem `pypi` (OSV spells it `PyPI`)"
        );
        assert_eq!(
            err(&text("rubygems:x")),
            "affected[0].package.ecosystem: unknown ecosystem `rubygems:x` (OSV spells it `RubyGems`)"
        );
        assert!(matches!(
            parse_advisory(&text("Cargo")),
            Err(AdvisoryError::UnknownEcosystem { .. })
        ));
    }

    #[test]
    fn bad_ranges_and_events() {
        let ranges = |ecosystem: &str, ranges: &str| err(&with_ranges(ecosystem, "a", ranges));
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.x"}]}]"#
            ),
            "affected[0].ranges[0].events[1].fixed: `1.x` is not a valid SemVer version \
             (unexpected character 'x' while parsing minor version number)"
        );
        let e = ranges(
            "PyPI",
            r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1.0-final!"}]}]"#,
        );
        assert!(
            e.starts_with(
                "affected[0].ranges[0].events[1].last_affected: `1.0-final!` is not a valid \
                 PEP 440 version ("
            ),
            "{e}"
        );
        // SEMVER is SemVer whatever the ecosystem; npm ECOSYSTEM ranges are too.
        assert!(
            ranges(
                "PyPI",
                r#"[{"type": "SEMVER", "events": [{"introduced": "1.0"}]}]"#
            )
            .starts_with("affected[0].ranges[0].events[0].introduced: `1.0` is not a valid SemVer")
        );
        assert!(
            ranges(
                "npm",
                r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "v1.0.0"}]}]"#
            )
            .starts_with(
                "affected[0].ranges[0].events[0].introduced: `v1.0.0` is not a valid SemVer"
            )
        );
        // Versions of ecosystems without an ordering here, and of GIT ranges, are not checked.
        let ok = with_ranges(
            "Maven",
            "g:a",
            r#"[{"type": "ECOSYSTEM", "events": [{"introduced": "1.0-SNAPSHOT"}]}]"#,
        );
        assert!(parse_advisory(&ok).is_ok());

        assert_eq!(
            ranges("npm", r#"[{"type": "RANGE", "events": []}]"#),
            "affected[0].ranges[0].type: unknown range type `RANGE` (expected SEMVER, ECOSYSTEM or GIT)"
        );
        assert_eq!(
            ranges("npm", r#"[{"type": "SEMVER"}]"#),
            "affected[0].ranges[0]: missing `events`"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}]"#
            ),
            "affected[0].ranges[0].events: no `introduced` event (a range needs at least one)"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduced": "1.0.0", "fixed": "1.0.2"}]}]"#
            ),
            "affected[0].ranges[0].events[0]: has both `introduced` and `fixed`; an event holds exactly one"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduce": "0"}]}]"#
            ),
            "affected[0].ranges[0].events[0]: expected one of `introduced`, `fixed`, `last_affected` or `limit`"
        );
        assert_eq!(
            ranges(
                "npm",
                r#"[{"type": "SEMVER", "events": [{"introduced": 0}]}]"#
            ),
            "affected[0].ranges[0].events[0].introduced: expected a string, found a number"
        );
    }
}
