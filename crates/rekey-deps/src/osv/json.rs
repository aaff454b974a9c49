//! Small JSON helpers; `path` is the JSON path of the object, "" for the root.

use serde_json::{Map, Value};

use super::AdvisoryError;

pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "advisory".to_owned()
    } else {
        path.to_owned()
    }
}

pub(super) fn schema(path: &str, problem: &str) -> AdvisoryError {
    AdvisoryError::Schema {
        path: shown(path),
        problem: problem.to_owned(),
    }
}

pub(super) fn missing(path: &str, field: &'static str) -> AdvisoryError {
    AdvisoryError::MissingField {
        path: shown(path),
        field,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(value: &Value, path: &str, expected: &'static str) -> AdvisoryError {
    AdvisoryError::WrongType {
        path: shown(path),
        expected,
        found: json_type(value),
    }
}

pub(super) fn as_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, AdvisoryError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(value, path, "an object"))
}

pub(super) fn as_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], AdvisoryError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong_type(value, path, "an array"))
}

pub(super) fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, AdvisoryError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(value, path, "a string"))
}

/// A field that is present and not `null`.
pub(super) fn optional<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

pub(super) fn required_str<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &'static str,
) -> Result<&'a str, AdvisoryError> {
    match object.get(key) {
        None => Err(missing(path, key)),
        Some(value) => as_str(value, &child(path, key)),
    }
}

pub(super) fn optional_str<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a str>, AdvisoryError> {
    optional(object, key)
        .map(|value| as_str(value, &child(path, key)))
        .transpose()
}

pub(super) fn optional_array<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a [Value], AdvisoryError> {
    optional(object, key).map_or(Ok(&[]), |value| as_array(value, &child(path, key)))
}

pub(super) fn string_list(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Vec<String>, AdvisoryError> {
    let list_path = child(path, key);
    optional_array(object, path, key)?
        .iter()
        .enumerate()
        .map(|(i, v)| as_str(v, &format!("{list_path}[{i}]")).map(str::to_owned))
        .collect()
}
