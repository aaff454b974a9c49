//! JSON Schemas of the inventory and runbook files, for editors: VS Code and Neovim (through
//! yaml-language-server) complete and check a file that starts with
//! `# yaml-language-server: $schema=../schema/inventory.schema.json`.
//!
//! Nothing here is written by hand as a schema. The common structure comes from the raw serde
//! types the reader deserializes (`#[derive(JsonSchema)]` on `RawHost`, `RawCredential`,
//! `RawStep`, …: their doc comments are the descriptions, `deny_unknown_fields` becomes
//! `additionalProperties: false`); the rest is generated from the tables the checker uses:
//!
//! - a credential's kind-specific fields from each kind's field table ([`CredentialKind::fields`],
//!   with [`CredentialKind::conditional_fields`]): one `if kind = K then …` per kind, refusing
//!   any field that is neither common nor K's, as the checker does;
//! - a step's `action` from the action registry ([`ACTIONS`]), and per action its inputs
//!   (`with`), and what the checker requires of it (`manual`, `for_each`, `irreversible`, no
//!   `prepare` phase for an action that changes things);
//! - a runbook step's `when` fields from the runbook kind's field table.
//!
//! Draft 7, because yaml-language-server implements draft 7 (no `unevaluatedProperties`).
//! Committed under `schema/` and checked current by the tests.

use std::fmt::Write as _;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use crate::action::{ACTIONS, ActionSpec, Effect, Mode, Phase};
use crate::inventory::{COMMON_FIELDS, RawCredential, RawDiscovered, RawHost, RawService};
use crate::kind::{CredentialKind, FieldSpec, FieldType, Item};
use crate::runbook::RawRunbook;

/// The two kinds of file rekey reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Inventory,
    Runbook,
}

impl Document {
    pub const ALL: [Self; 2] = [Self::Inventory, Self::Runbook];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Runbook => "runbook",
        }
    }

    /// The committed file's name under `schema/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Inventory => "inventory.schema.json",
            Self::Runbook => "runbook.schema.json",
        }
    }

    /// The schema as a JSON value.
    pub fn schema(self) -> Value {
        let mut value = match self {
            Self::Inventory => generate::<InventoryFile>(),
            Self::Runbook => generate::<RawRunbook>(),
        };
        for_editors(&mut value);
        value
    }

    /// The schema as the committed file holds it: pretty-printed, keys sorted, a final newline.
    pub fn render(self) -> String {
        let mut text = serde_json::to_string_pretty(&sorted(self.schema()))
            .expect("a JSON value always serializes");
        text.push('\n');
        text
    }
}

fn generate<T: JsonSchema>() -> Value {
    SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

// Read by hand in `inventory::read_file`, which takes exactly these keys
// (`inventory::TOP_LEVEL_KEYS`; a test holds the two together).
/// A rekey inventory file: any of `hosts`, `services`, `credentials` and `discovered`. An inventory may be
/// split over several files in one folder; ids are unique across them.
#[derive(JsonSchema)]
#[schemars(rename = "Inventory", title = "rekey inventory", deny_unknown_fields)]
#[allow(dead_code)] // only its schema is used
struct InventoryFile {
    /// Machines and runner groups where code runs, and so where credential values are present.
    hosts: Option<Vec<RawHost>>,
    /// Services: what each is built from (SBOMs, lockfiles), where, and what it publishes.
    services: Option<Vec<RawService>>,
    /// Credentials: where each value lives and is delivered, never the value itself.
    credentials: Option<Vec<RawCredential>>,
    /// What `rekey discover --write` found on a host (its own file; confirm a draft by naming
    /// its `credential`).
    discovered: Option<Vec<RawDiscovered>>,
}

/// A scalar as the checker reads it: YAML's plain values are all text to rekey, so `30` and
/// `true` are as good as `"30"` and `"true"`.
pub(crate) struct Scalar;

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

// ---------------------------------------------------------------------------------------------
// Field schemas named by the raw types (`#[schemars(schema_with = …)]`).

/// Host, service and credential ids (`inventory::check_id`).
pub(crate) fn id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[A-Za-z0-9._-]+$" })
}

/// Step ids (`runbook::check_runbook`).
pub(crate) fn step_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[A-Za-z0-9_-]+$" })
}

/// `last_rotated`: a calendar date written YYYY-MM-DD.
pub(crate) fn date(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["string", "null"],
        "format": "date",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    })
}

/// A `token_env`: the name of an environment variable (`inventory::check_token_env`).
pub(crate) fn token_env(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "pattern": "^[A-Za-z0-9_]+$" })
}

/// A repository as OWNER/NAME.
pub(crate) fn repo(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "pattern": "^[^/]+/[^/]+$" })
}

/// Who sees an organization secret (`inventory::check_consumer`).
pub(crate) fn visibility(_: &mut SchemaGenerator) -> Schema {
    string_enum(&[
        ("all", "every repository of the organization"),
        (
            "private",
            "the organization's private and internal repositories",
        ),
        ("selected", "the repositories in `selected_repositories`"),
    ])
}

/// `for_each`: only `consumer`.
pub(crate) fn for_each(_: &mut SchemaGenerator) -> Schema {
    string_enum(&[(
        "consumer",
        "once per consumer of the credential (`delivered_to`)",
    )])
}

/// `modes`: the names `Mode::parse` reads.
pub(crate) fn modes(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<(&str, &str)> = MODE_NAMES.iter().map(|(n, _, d)| (*n, *d)).collect();
    let items = string_enum(&names);
    json_schema!({ "type": "array", "items": items })
}

/// Every name `Mode::parse` reads, the mode it is and what it means (a test holds this to
/// `Mode::parse`).
const MODE_NAMES: &[(&str, Mode, &str)] = &[
    (
        "drill",
        Mode::Drill,
        "rotate first: nothing is revoked before the new value is verified",
    ),
    (
        "incident",
        Mode::Incident,
        "revoke first: the exposed value is disabled before anything else",
    ),
    ("scheduled", Mode::Drill, "the same as drill"),
];

/// A credential kind: every kind, each with what its provider allows.
pub(crate) fn credential_kind(_: &mut SchemaGenerator) -> Schema {
    let kinds: Vec<(&str, String)> = CredentialKind::ALL
        .iter()
        .map(|k| {
            let legacy = if k.is_legacy() { "legacy: " } else { "" };
            (k.as_str(), format!("{legacy}{}", k.capabilities().note))
        })
        .collect();
    let pairs: Vec<(&str, &str)> = kinds.iter().map(|(k, d)| (*k, d.as_str())).collect();
    string_enum(&pairs)
}

/// A step's `action`: every action of the registry, each with its call.
pub(crate) fn action_name(_: &mut SchemaGenerator) -> Schema {
    let described: Vec<(&str, String)> = ACTIONS.iter().map(|a| (a.name, describe(a))).collect();
    let pairs: Vec<(&str, &str)> = described.iter().map(|(n, d)| (*n, d.as_str())).collect();
    string_enum(&pairs)
}

/// What an operator reads when choosing an action: the provider call, its effect, its inputs
/// and outputs.
fn describe(a: &ActionSpec) -> String {
    let mut d = format!("{} ({}, {}).", a.call, a.provider, a.effect.as_str());
    if a.open_inputs {
        d.push_str(" Inputs: any (the fields of the delivered document).");
    } else if !a.inputs.is_empty() {
        let inputs: Vec<String> = a
            .inputs
            .iter()
            .map(|p| {
                let optional = if p.required { "" } else { " (optional)" };
                format!("{}{optional}", p.name)
            })
            .collect();
        let _ = write!(d, " Inputs: {}.", inputs.join(", "));
    }
    if !a.outputs.is_empty() {
        let outputs: Vec<String> = a
            .outputs
            .iter()
            .map(|o| {
                let secret = if o.secret { " (secret)" } else { "" };
                format!("{}{secret}", o.name)
            })
            .collect();
        let _ = write!(d, " Outputs: {}.", outputs.join(", "));
    }
    if a.per_consumer {
        d.push_str(" Once per consumer (`for_each: consumer`).");
    }
    if a.manual {
        d.push_str(" Waits for an operator (`manual:`).");
    }
    d
}

fn string_enum(values: &[(&str, &str)]) -> Schema {
    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    let docs: Vec<&str> = values.iter().map(|(_, d)| *d).collect();
    json_schema!({ "type": "string", "enum": names, "enumDescriptions": docs })
}

// ---------------------------------------------------------------------------------------------
// Transforms: what the checker does beyond serde (`#[schemars(transform = …)]`).

/// A credential: the common fields (from `RawCredential`), and per kind its own fields from
/// the kind's field table, each with its description; a field that is neither is refused, as
/// `inventory::check_credential` refuses it.
pub(crate) fn credential_kinds(schema: &mut Schema) {
    // The common struct refuses unknown fields, but kind fields are not unknown: refused per
    // kind below instead.
    schema.remove("additionalProperties");
    let per_kind: Vec<Value> = CredentialKind::ALL
        .iter()
        .map(|&kind| {
            let specs = kind.fields();
            let mut properties = Map::new();
            for spec in specs {
                properties.insert(spec.name.to_owned(), field_schema(kind, spec));
            }
            let required: Vec<&str> = specs
                .iter()
                .filter(|s| s.required)
                .map(|s| s.name)
                .collect();
            let names: Vec<&str> = COMMON_FIELDS
                .iter()
                .copied()
                .chain(specs.iter().map(|s| s.name))
                .collect();
            let mut then = json!({
                "properties": properties,
                "required": required,
                "propertyNames": { "enum": names },
            });
            let conditional = conditional_requirements(kind);
            if !conditional.is_empty() {
                then["allOf"] = Value::Array(conditional);
            }
            when_const("kind", kind.as_str(), then)
        })
        .collect();
    schema.insert("allOf".to_owned(), Value::Array(per_kind));
}

/// `if {KEY: VALUE} then THEN`.
fn when_const(key: &str, value: &str, then: Value) -> Value {
    let mut branch = Map::new();
    branch.insert(
        "if".to_owned(),
        json!({ "properties": { key: { "const": value } }, "required": [key] }),
    );
    branch.insert("then".to_owned(), then);
    Value::Object(branch)
}

/// The fields a kind requires only with some value of another field (`provider: okta` needs
/// `domain`, …), from [`CredentialKind::conditional_fields`].
fn conditional_requirements(kind: CredentialKind) -> Vec<Value> {
    selectors(kind)
        .into_iter()
        .filter_map(|(field, value)| {
            let needed = needed_with(kind, field, value);
            (!needed.is_empty()).then(|| when_const(field, value, json!({ "required": needed })))
        })
        .collect()
}

/// The (field, value) pairs that [`CredentialKind::conditional_fields`] looks at: every value
/// of the kind's `provider` and `strategy` fields.
fn selectors(kind: CredentialKind) -> Vec<(&'static str, &'static str)> {
    kind.fields()
        .iter()
        .filter(|s| matches!(s.name, "provider" | "strategy"))
        .filter_map(|s| match s.ty {
            FieldType::OneOf(values) => Some(values.iter().map(move |v| (s.name, *v))),
            _ => None,
        })
        .flatten()
        .collect()
}

fn needed_with(kind: CredentialKind, field: &str, value: &str) -> Vec<&'static str> {
    match field {
        "provider" => kind.conditional_fields(Some(value), None),
        _ => kind.conditional_fields(None, Some(value)),
    }
}

/// One kind-specific field: its type as `inventory::check_field_value` checks it, and its
/// description from the field table with when it is required.
fn field_schema(kind: CredentialKind, spec: &FieldSpec) -> Value {
    let mut schema = match spec.ty {
        // Every plain YAML value is text to rekey: `app_id: 912345` is the name "912345".
        FieldType::Name => json!({ "type": ["string", "integer"], "pattern": "^\\S+$" }),
        FieldType::EnvVar => json!({ "type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$" }),
        FieldType::Url => json!({ "type": "string", "pattern": "^https?://" }),
        FieldType::OneOf(values) => json!({ "type": "string", "enum": values }),
        FieldType::List(item) => {
            let one = item_pattern(item);
            json!({
                "anyOf": [
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": { "type": "string", "pattern": format!("^{one}$") },
                    },
                    {
                        "type": "string",
                        "pattern": format!("^\\s*{one}\\s*(,\\s*{one}\\s*)*$"),
                    },
                ],
            })
        }
    };
    let mut when: Vec<(&str, Vec<&str>)> = Vec::new();
    for (field, value) in selectors(kind) {
        if needed_with(kind, field, value).contains(&spec.name) {
            match when.iter_mut().find(|(f, _)| *f == field) {
                Some((_, values)) => values.push(value),
                None => when.push((field, vec![value])),
            }
        }
    }
    let required = if spec.required {
        " Required.".to_owned()
    } else if when.is_empty() {
        String::new()
    } else {
        let when: Vec<String> = when
            .iter()
            .map(|(field, values)| format!("{field} {}", values.join(" or ")))
            .collect();
        format!(" Required with {}.", when.join(", "))
    };
    schema["description"] = json!(format!("{}.{required}", capitalized(spec.doc)));
    schema
}

/// An item of a list field, as `inventory::check_item` reads it (unanchored).
fn item_pattern(item: Item) -> &'static str {
    // One part of an npm name: URL-safe characters, not starting with `.` or `_`.
    match item {
        Item::NpmPackage => "(@[A-Za-z0-9~-][A-Za-z0-9._~-]*/)?[A-Za-z0-9~-][A-Za-z0-9._~-]*",
        Item::NpmScope => "@[A-Za-z0-9~-][A-Za-z0-9._~-]*",
    }
}

fn capitalized(doc: &str) -> String {
    let mut chars = doc.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A GitHub Actions secret's scope, as `inventory::check_consumer` requires it: `repo` or
/// `org` (not both), `environment` only with `repo`, `visibility` only with `org`, and
/// `selected_repositories` only with `visibility: selected`.
pub(crate) fn actions_secret_scope(schema: &mut Schema) {
    schema.insert(
        "oneOf".to_owned(),
        json!([{ "required": ["repo"] }, { "required": ["org"] }]),
    );
    schema.insert(
        "dependencies".to_owned(),
        json!({ "environment": ["repo"], "visibility": ["org"] }),
    );
    schema.insert(
        "if".to_owned(),
        json!({
            "properties": { "selected_repositories": { "type": "array", "minItems": 1 } },
            "required": ["selected_repositories"],
        }),
    );
    schema.insert(
        "then".to_owned(),
        json!({
            "properties": { "visibility": { "const": "selected" } },
            "required": ["visibility"],
        }),
    );
}

/// A step: per action, its inputs under `with` (refusing others, unless the action takes any)
/// and what `runbook::check_runbook` requires of it.
pub(crate) fn step_actions(schema: &mut Schema) {
    let per_action: Vec<Value> = ACTIONS
        .iter()
        .map(|a| {
            let mut inputs = Map::new();
            for p in a.inputs {
                let need = if p.required { "Required" } else { "Optional" };
                let mut d = format!("{need} input of {}.", a.name);
                if p.narrows {
                    d.push_str(" Narrows which values the call touches: left out, nothing is narrowed; given, it must resolve to a plain value at run time or the step stops.");
                }
                if p.secret {
                    d.push_str(" May take a secret step output (kept in memory only).");
                }
                inputs.insert(
                    p.name.to_owned(),
                    json!({ "type": ["string", "number", "boolean"], "description": d }),
                );
            }
            let required_inputs: Vec<&str> = a
                .inputs
                .iter()
                .filter(|p| p.required)
                .map(|p| p.name)
                .collect();
            let mut with = json!({ "properties": inputs });
            if !required_inputs.is_empty() {
                with["required"] = json!(required_inputs);
            }
            if !a.open_inputs {
                with["additionalProperties"] = json!(false);
            }
            let mut properties = Map::new();
            properties.insert("with".to_owned(), with);
            let mut required: Vec<&str> = Vec::new();
            if !required_inputs.is_empty() {
                required.push("with");
            }
            if a.manual {
                required.push("manual");
            }
            if a.per_consumer {
                required.push("for_each");
            }
            if a.effect == Effect::Delete {
                required.push("irreversible");
                properties.insert("irreversible".to_owned(), json!({ "const": true }));
            }
            if a.effect != Effect::Read {
                let phases: Vec<&str> = Phase::ALL
                    .iter()
                    .filter(|p| **p != Phase::Prepare)
                    .map(|p| p.as_str())
                    .collect();
                properties.insert("phase".to_owned(), json!({ "enum": phases }));
            }
            let mut then = json!({ "properties": properties });
            if !required.is_empty() {
                then["required"] = json!(required);
            }
            if !a.manual {
                then["not"] = json!({ "required": ["manual"] });
            }
            when_const("action", a.name, then)
        })
        .collect();
    schema.insert("allOf".to_owned(), Value::Array(per_action));
}

/// A runbook: per kind, the fields a step's `when` may name (`runbook::check_runbook`).
pub(crate) fn runbook_kinds(schema: &mut Schema) {
    let per_kind: Vec<Value> = CredentialKind::ALL
        .iter()
        .map(|&kind| {
            let fields: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
            let then = json!({
                "properties": {
                    "steps": {
                        "items": {
                            "properties": {
                                "when": { "propertyNames": { "enum": fields } },
                            },
                        },
                    },
                },
            });
            when_const("kind", kind.as_str(), then)
        })
        .collect();
    schema.insert("allOf".to_owned(), Value::Array(per_kind));
}

// ---------------------------------------------------------------------------------------------
// Shape for editors.

/// What editors show best: schemars writes a documented enum as `oneOf` of `const`s, but an
/// `enum` with `enumDescriptions` (a VS Code keyword yaml-language-server reads) completes with
/// each value's description and says "expected one of …" for a wrong value, rather than one
/// mismatch per variant; doc comments' line breaks are not the reader's; `"default": null`
/// says nothing.
fn for_editors(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let consts = map
                .get("oneOf")
                .and_then(Value::as_array)
                .and_then(|variants| {
                    variants
                        .iter()
                        .map(|v| {
                            let name = v.get("const")?.as_str()?;
                            let doc = v.get("description").and_then(Value::as_str).unwrap_or("");
                            Some((name.to_owned(), doc.to_owned()))
                        })
                        .collect::<Option<Vec<_>>>()
                });
            if let Some(consts) = consts {
                map.remove("oneOf");
                let (names, docs): (Vec<String>, Vec<String>) = consts.into_iter().unzip();
                map.insert("type".to_owned(), json!("string"));
                map.insert("enum".to_owned(), json!(names));
                map.insert("enumDescriptions".to_owned(), json!(docs));
            }
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = unwrapped(d);
            }
            map.values_mut().for_each(for_editors);
        }
        Value::Array(items) => items.iter_mut().for_each(for_editors),
        _ => {}
    }
}

/// A doc comment's paragraphs, each on one line.
fn unwrapped(doc: &str) -> String {
    doc.split("\n\n")
        .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Keys in order whatever `serde_json`'s `preserve_order` feature says, so the committed file
/// and `rekey schema` agree in every build.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::inventory::TOP_LEVEL_KEYS;
    use crate::{SourceFile, parse_inventory};

    fn property_names(schema: &Value) -> Vec<String> {
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn sorted_names(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
        names.sort();
        names
    }

    /// The credential fields split off as common before serde reads `RawCredential` are
    /// exactly its fields: a field added to the struct but not to `COMMON_FIELDS` would be
    /// checked as a kind field (and refused), one added to the list only would never be read.
    #[test]
    fn common_credential_fields_are_the_raw_structs() {
        let schema = Document::Inventory.schema();
        assert_eq!(
            property_names(&schema["definitions"]["Credential"]),
            sorted_names(COMMON_FIELDS)
        );
    }

    /// The top-level keys the reader takes (by hand, not through serde) are the schema's.
    #[test]
    fn inventory_top_level_keys_are_the_readers() {
        let schema = Document::Inventory.schema();
        assert_eq!(property_names(&schema), sorted_names(&TOP_LEVEL_KEYS));
        for key in TOP_LEVEL_KEYS {
            let file = Arc::new(SourceFile::new("inv.yaml", format!("{key}: []\n")));
            assert!(parse_inventory(&[file]).is_ok(), "{key}");
        }
        let file = Arc::new(SourceFile::new("inv.yaml", "secrets: []\n"));
        assert!(parse_inventory(&[file]).is_err());
    }

    /// The mode names the schema offers are those `Mode::parse` reads, and every mode is one.
    #[test]
    fn mode_names_are_the_parsers() {
        for (name, mode, _) in MODE_NAMES {
            assert_eq!(Mode::parse(name), Some(*mode), "{name}");
        }
        for mode in [Mode::Drill, Mode::Incident] {
            // A new mode fails to compile here until it is listed.
            match mode {
                Mode::Drill | Mode::Incident => {}
            }
            assert!(
                MODE_NAMES
                    .iter()
                    .any(|(n, m, _)| *m == mode && *n == mode.as_str())
            );
        }
    }

    /// Each kind's branch names exactly the kind's fields, and each action's its inputs.
    #[test]
    fn every_kind_and_action_has_its_branch() {
        let inventory = Document::Inventory.schema();
        let branches = inventory["definitions"]["Credential"]["allOf"]
            .as_array()
            .unwrap();
        assert_eq!(branches.len(), CredentialKind::ALL.len());
        for (kind, branch) in CredentialKind::ALL.iter().zip(branches) {
            assert_eq!(branch["if"]["properties"]["kind"]["const"], kind.as_str());
            let fields: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
            assert_eq!(property_names(&branch["then"]), sorted_names(&fields));
            for field in kind.fields() {
                let d = branch["then"]["properties"][field.name]["description"]
                    .as_str()
                    .unwrap();
                assert!(!field.doc.is_empty() && d.len() > field.doc.len(), "{d}");
            }
        }
        let runbook = Document::Runbook.schema();
        let branches = runbook["definitions"]["Step"]["allOf"].as_array().unwrap();
        assert_eq!(branches.len(), ACTIONS.len());
        for (action, branch) in ACTIONS.iter().zip(branches) {
            assert_eq!(branch["if"]["properties"]["action"]["const"], action.name);
            let inputs: Vec<&str> = action.inputs.iter().map(|p| p.name).collect();
            assert_eq!(
                property_names(&branch["then"]["properties"]["with"]),
                sorted_names(&inputs)
            );
        }
    }

    #[test]
    fn descriptions_read_as_one_line_per_paragraph() {
        assert_eq!(unwrapped("a\nb\n\nc\n d"), "a b\n\nc d");
        let text = Document::Runbook.render();
        assert!(!text.contains("\"default\": null"));
        assert!(!text.contains("\"oneOf\""), "enums are `enum`s");
    }
}
