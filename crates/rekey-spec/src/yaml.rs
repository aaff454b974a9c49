//! Reading YAML into marked nodes and serde types while keeping every error's position.

use std::sync::Arc;

use marked_yaml::{LoadError, LoaderOptions, Node};
use serde::de::DeserializeOwned;

use crate::diag::{Location, SourceFile, SpecError};

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
fn tidy_serde_message(msg: &str) -> String {
    msg.replace("Unknown field", "unknown field")
        .replace("invalid type: string", "expected")
        .replace("a sequence", "a list")
        .replace("struct Raw", "")
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
