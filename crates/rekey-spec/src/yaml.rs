//! Reading YAML into marked nodes and serde types while keeping every error's position.

use std::sync::Arc;

use marked_yaml::{LoadError, LoaderOptions, Node};
use serde::de::DeserializeOwned;

use crate::diag::{Location, SourceFile, SpecError, SpecErrors};
use crate::inventory::looks_like_secret;

/// Parses a whole file. Duplicate keys are errors: the last one silently winning is how a
/// typo'd override goes unnoticed.
pub(crate) fn parse(file: &Arc<SourceFile>) -> Result<Node, SpecError> {
    if file.text().trim().is_empty() {
        return Ok(Node::Mapping(
            marked_yaml::types::MarkedMappingNode::new_empty(marked_yaml::Span::new_blank()),
        ));
    }
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    marked_yaml::parse_yaml_with_options(0, file.text(), options).map_err(|e| load_error(file, &e))
}

fn load_error(file: &Arc<SourceFile>, e: &LoadError) -> SpecError {
    let at = |m: &marked_yaml::Marker| Location::new(file, m.line(), m.column());
    match e {
        LoadError::TopLevelMustBeMapping(m) => SpecError::at(at(m), "expected a mapping at the top level")
            .help("an inventory file has `hosts:`, `services:` and `credentials:`; a runbook has `kind:` and `steps:`"),
        LoadError::TopLevelMustBeSequence(m) => SpecError::at(at(m), "expected a sequence at the top level"),
        LoadError::UnexpectedAnchor(m) => SpecError::at(at(m), "YAML anchors and aliases are not supported")
            .help("write the value out; anchors hide what a credential really references"),
        LoadError::MappingKeyMustBeScalar(m) => SpecError::at(at(m), "mapping keys must be plain strings"),
        LoadError::UnexpectedTag(m) => SpecError::at(at(m), "YAML tags (`!foo`) are not supported"),
        LoadError::ScanError(m, err) => SpecError::at(at(m), format!("invalid YAML: {}", err.info())),
        LoadError::DuplicateKey(inner) => {
            let key = &inner.key;
            let first = Location::from_span(file, inner.prev_key.span());
            SpecError::at(
                Location::from_span(file, key.span()),
                format!("duplicate key `{}`", key.as_str()),
            )
            .related(first, "first defined")
        }
    }
}

/// Deserializes a node into a raw serde type, turning serde's error into a located one.
pub(crate) fn from_node<T: DeserializeOwned>(
    file: &Arc<SourceFile>,
    node: &Node,
    what: &str,
) -> Result<T, SpecError> {
    marked_yaml::from_node::<T>(node).map_err(|e| {
        let location = e.start_mark().map_or_else(
            || Location::from_span(file, node.span()),
            |m| Location::new(file, m.line(), m.column()),
        );
        let message = tidy_serde_message(&e.to_string());
        let mut err = SpecError::at(location, format!("in {what}: {message}"));
        if let marked_yaml::Error::UnknownFieldError(_, expected, _) = &*e {
            err = err.label("unknown field");
            if expected.is_empty() {
                err = err.help("this mapping takes no fields");
            }
        }
        err
    })
}

/// serde's messages are good but name Rust types; say what the YAML should hold instead.
/// "invalid type: string \"…\", expected a sequence" quotes the value, which may be a secret:
/// it becomes "expected a list, found a string".
fn tidy_serde_message(msg: &str) -> String {
    let msg = match ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| msg.split_once(p))
    {
        Some((path, rest)) => {
            let found = rest.split_whitespace().next().unwrap_or("value");
            let found = found.trim_end_matches(',');
            match rest.rsplit_once(", expected ") {
                Some((_, expected)) => format!("{path}expected {expected}, found a {found}"),
                None => format!("{path}unexpected {found}"),
            }
        }
        None => msg.to_owned(),
    };
    msg.replace("Unknown field", "unknown field")
        .replace("Value was not a boolean", "expected true or false")
        .replace("a sequence", "a list")
        .replace(
            "struct RawPublish",
            "a mapping `{ registry: npm|pypi, package: NAME, trusted_publishing: true|false }`",
        )
        .replace("struct Raw", "")
}

/// Refuses every scalar that looks like a secret value, wherever it is (values, list items,
/// keys; fields no check knows about, such as `owner` or a consumer's), naming the key it is
/// under. Reported once here, so the checks of each field need not repeat it.
pub(crate) fn refuse_secrets(file: &Arc<SourceFile>, node: &Node, errors: &mut SpecErrors) {
    fn walk(file: &Arc<SourceFile>, node: &Node, key: &str, errors: &mut SpecErrors) {
        match node {
            Node::Scalar(s) => {
                if let Some(what) = looks_like_secret(s.as_str()) {
                    errors.push(secret_error(Location::from_span(file, s.span()), key, what));
                }
            }
            Node::Sequence(items) => {
                for item in items.iter() {
                    walk(file, item, key, errors);
                }
            }
            Node::Mapping(map) => {
                for (k, v) in map.iter() {
                    if let Some(what) = looks_like_secret(k.as_str()) {
                        errors.push(secret_error(
                            Location::from_span(file, k.span()),
                            "a key",
                            what,
                        ));
                        continue;
                    }
                    walk(file, v, k.as_str(), errors);
                }
            }
        }
    }
    walk(file, node, "value", errors);
}

pub(crate) fn secret_error(at: Location, field: &str, what: &str) -> SpecError {
    // The offending line holds what looks like a secret: never echo it.
    let field = if field == "a key" {
        field.to_owned()
    } else {
        format!("`{field}`")
    };
    SpecError::at(at, format!("{field} looks like a secret value ({what})"))
        .help("inputs name where a secret lives and how to manage it, never the value itself; remove it and rotate that secret")
        .hide_source()
}

/// The string value of a scalar node, or an error saying a plain value was expected.
pub(crate) fn scalar<'a>(
    file: &Arc<SourceFile>,
    node: &'a Node,
    what: &str,
) -> Result<&'a marked_yaml::types::MarkedScalarNode, SpecError> {
    node.as_scalar().ok_or_else(|| {
        SpecError::at(
            Location::from_span(file, node.span()),
            format!("`{what}` must be a plain value, not a list or mapping"),
        )
    })
}
