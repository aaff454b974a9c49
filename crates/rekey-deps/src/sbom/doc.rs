//! Errors that name the format and the place, and typed access to the JSON, YAML and TOML
//! values the readers walk.

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{LoadError, Node};
use serde_json::{Map, Value};

use super::{Format, SbomError};

pub(super) fn invalid(
    format: Format,
    path: impl Into<String>,
    problem: impl Into<String>,
) -> SbomError {
    SbomError::Invalid {
        format,
        path: path.into(),
        problem: problem.into(),
    }
}

pub(super) fn not_json(format: Format, text: &str) -> SbomError {
    let start = text.trim_start();
    if start.starts_with('<') {
        return SbomError::Unsupported {
            format,
            problem: "XML documents are not read; export the SBOM as JSON".to_owned(),
        };
    }
    if !start.starts_with('{') {
        return SbomError::Unsupported {
            format,
            problem: "tag-value documents are not read; export the SBOM as SPDX JSON".to_owned(),
        };
    }
    match serde_json::from_str::<Value>(text) {
        Err(e) => {
            let position = format!(" at line {} column {}", e.line(), e.column());
            let message = e.to_string();
            SbomError::Syntax {
                format,
                syntax: "JSON",
                line: e.line(),
                column: e.column(),
                message: message
                    .strip_suffix(&position)
                    .unwrap_or(&message)
                    .to_owned(),
            }
        }
        Ok(v) => invalid(
            format,
            "(document)",
            format!("expected an object, found {}", json_kind(&v)),
        ),
    }
}

pub(super) fn toml_error(format: Format, text: &str, e: &toml::de::Error) -> SbomError {
    let (line, column) = e
        .span()
        .map_or((0, 0), |span| line_column(text, span.start));
    SbomError::Syntax {
        format,
        syntax: "TOML",
        line,
        column,
        message: e.message().trim_end().to_owned(),
    }
}

pub(super) fn yaml_error(format: Format, e: &LoadError) -> SbomError {
    let (marker, message) = match e {
        LoadError::TopLevelMustBeMapping(m) => (Some(m), "the top level must be a mapping"),
        LoadError::TopLevelMustBeSequence(m) => (Some(m), "the top level must be a sequence"),
        LoadError::UnexpectedAnchor(m) => (Some(m), "anchors and aliases are not supported"),
        LoadError::MappingKeyMustBeScalar(m) => (Some(m), "mapping keys must be scalars"),
        LoadError::UnexpectedTag(m) => (Some(m), "tags are not supported"),
        LoadError::ScanError(m, scan) => (Some(m), scan.info()),
        LoadError::DuplicateKey(inner) => (inner.key.span().start(), "duplicate key"),
    };
    SbomError::Syntax {
        format,
        syntax: "YAML",
        line: marker.map_or(0, marked_yaml::Marker::line),
        column: marker.map_or(0, marked_yaml::Marker::column),
        message: message.to_owned(),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // A parser's offset may fall inside a character: round down rather than panic.
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn json_object(
    format: Format,
    path: impl std::fmt::Display,
    v: &Value,
) -> Result<&Map<String, Value>, SbomError> {
    v.as_object().ok_or_else(|| {
        invalid(
            format,
            path.to_string(),
            format!("expected an object, found {}", json_kind(v)),
        )
    })
}

pub(super) fn json_array(
    format: Format,
    path: impl std::fmt::Display,
    v: &Value,
) -> Result<&[Value], SbomError> {
    v.as_array().map(Vec::as_slice).ok_or_else(|| {
        invalid(
            format,
            path.to_string(),
            format!("expected an array, found {}", json_kind(v)),
        )
    })
}

/// An optional string field: absent and `null` are `None`, another type is an error.
pub(super) fn json_str<'a>(
    format: Format,
    path: impl std::fmt::Display,
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, SbomError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(
            format,
            path.to_string(),
            format!("`{field}`: expected a string, found {}", json_kind(other)),
        )),
    }
}

pub(super) fn read_yaml_mapping(
    format: Format,
    text: &str,
) -> Result<MarkedMappingNode, SbomError> {
    match marked_yaml::parse_yaml(0, text).map_err(|e| yaml_error(format, &e))? {
        Node::Mapping(map) => Ok(map),
        _ => Err(invalid(format, "(document)", "expected a mapping")),
    }
}

pub(super) fn yaml_path(key: &marked_yaml::types::MarkedScalarNode, parent: &str) -> String {
    match key.span().start() {
        Some(m) => format!("{parent}[\"{}\"] (line {})", key.as_str(), m.line()),
        None => format!("{parent}[\"{}\"]", key.as_str()),
    }
}

/// The `[[package]]` tables, with their index.
pub(super) fn toml_packages(
    format: Format,
    doc: &toml::Table,
) -> Result<Vec<(String, &toml::Table)>, SbomError> {
    let Some(packages) = doc.get("package") else {
        return Ok(Vec::new());
    };
    let packages = packages
        .as_array()
        .ok_or_else(|| invalid(format, "package", "expected an array of tables"))?;
    packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let here = format!("package[{i}]");
            p.as_table()
                .map(|t| (here.clone(), t))
                .ok_or_else(|| invalid(format, here, "expected a table"))
        })
        .collect()
}

pub(super) fn toml_str<'a>(
    format: Format,
    path: &str,
    table: &'a toml::Table,
    field: &str,
) -> Result<&'a str, SbomError> {
    match table.get(field) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(
            format,
            path,
            format!("`{field}`: expected a string, found {}", other.type_str()),
        )),
        None => Err(invalid(format, path, format!("missing `{field}`"))),
    }
}
