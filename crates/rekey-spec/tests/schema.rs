//! The JSON Schemas under `schema/`: current, and every bundled inventory and runbook file
//! checks against them as an editor checks it (YAML read with its scalar types by yaml-rust2,
//! validated by boon as draft 7), and they refuse what the checker refuses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rekey_spec::schema::Document;
use rekey_spec::{SourceFile, parse_inventory, parse_runbooks};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn regenerate_hint() -> String {
    Document::ALL
        .map(|d| {
            format!(
                "cargo run -q -- schema {} > schema/{}",
                d.as_str(),
                d.file_name()
            )
        })
        .join("\n  ")
}

#[test]
fn committed_schemas_are_current() {
    let update = std::env::var_os("REKEY_UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for doc in Document::ALL {
        let path = repo_root().join("schema").join(doc.file_name());
        let fresh = doc.render();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != fresh {
            if update {
                std::fs::write(&path, &fresh).unwrap();
            } else {
                stale.push(format!("schema/{}", doc.file_name()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} {} not the schema the Rust types give: regenerate with\n  {}\n\
         (or REKEY_UPDATE_SCHEMAS=1 cargo test -p rekey-spec --test schema) and commit",
        stale.join(" and "),
        if stale.len() == 1 { "is" } else { "are" },
        regenerate_hint(),
    );
}

// ---------------------------------------------------------------------------------------------
// Validation as an editor does it.

/// YAML as yaml-language-server sees it (YAML 1.2 core types: `90` is a number, `true` a
/// boolean, `2026-09-01` a string), as JSON.
fn yaml_to_json(text: &str) -> Value {
    let docs = YamlLoader::load_from_str(text).expect("valid YAML");
    docs.into_iter().next().map_or(Value::Null, convert)
}

fn convert(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s), Value::Number),
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(convert).collect()),
        Yaml::Hash(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s,
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("unexpected YAML key {other:?}"),
                    };
                    (key, convert(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new(doc: Document) -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        let url = format!("file:///schema/{}", doc.file_name());
        compiler.add_resource(&url, doc.schema()).unwrap();
        let index = compiler
            .compile(&url, &mut schemas)
            .unwrap_or_else(|e| panic!("the {} schema compiles: {e:#}", doc.as_str()));
        Self { schemas, index }
    }

    fn check(&self, text: &str) -> Result<(), String> {
        let value = yaml_to_json(text);
        self.schemas
            .validate(&value, self.index)
            .map_err(|e| format!("{e}"))
    }
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {dir}/");
    files
}

/// Each bundled file validates, and its first line points editors at the schema by a path
/// that resolves from the file.
fn bundled_files_validate(dir: &str, doc: Document) {
    let validator = Validator::new(doc);
    let mut failures = Vec::new();
    for path in yaml_files(dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(repo_root()).unwrap_or(&path).display();
        let expected = format!(
            "# yaml-language-server: $schema=../schema/{}",
            doc.file_name()
        );
        if text.lines().next() != Some(expected.as_str()) {
            failures.push(format!("{name}: the first line is not `{expected}`"));
        }
        if let Err(e) = validator.check(&text) {
            failures.push(format!("{name}: {e}"));
        }
    }
    let pointed = repo_root()
        .join(dir)
        .join("../schema")
        .join(doc.file_name());
    assert!(pointed.is_file(), "{} is missing", pointed.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_bundled_inventory_file_validates() {
    bundled_files_validate("inventory", Document::Inventory);
}

#[test]
fn every_bundled_runbook_validates() {
    bundled_files_validate("runbooks", Document::Runbook);
}

#[test]
fn the_loader_reads_the_schema_comment() {
    // The bundled example (with its comment line) loads, and so do the runbooks.
    rekey_spec::load_inventory(&repo_root().join("inventory")).unwrap();
    rekey_spec::load_runbooks(Some(&repo_root().join("runbooks"))).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The schema refuses what the checker refuses, and accepts what it accepts.

fn checker_accepts_inventory(text: &str) -> Result<(), String> {
    let hosts = "hosts:\n  - { id: laptop, kind: developer_machine }\nservices:\n  - { id: web }\n";
    let sources = [
        Arc::new(SourceFile::new("base.yaml", hosts)),
        Arc::new(SourceFile::new("test.yaml", text)),
    ];
    parse_inventory(&sources).map(drop).map_err(|e| {
        e.0.iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn checker_accepts_runbook(text: &str) -> Result<(), String> {
    let sources = [Arc::new(SourceFile::new("test.yaml", text))];
    parse_runbooks(&sources, false).map(drop).map_err(|e| {
        e.0.iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Each case: YAML, and whether both the checker and the schema accept it.
fn agree(doc: Document, checker: fn(&str) -> Result<(), String>, cases: &[(&str, bool, &str)]) {
    let validator = Validator::new(doc);
    let mut disagreements = Vec::new();
    for (yaml, ok, why) in cases {
        let checked = checker(yaml);
        let validated = validator.check(yaml);
        if checked.is_ok() != *ok || validated.is_ok() != *ok {
            disagreements.push(format!(
                "{why}: expected {}, checker: {checked:?}, schema: {validated:?}\n{yaml}",
                if *ok { "accepted" } else { "refused" }
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n\n"));
}

#[test]
fn the_inventory_schema_refuses_what_the_checker_refuses() {
    let cred = |body: &str| format!("credentials:\n  - id: c1\n{body}");
    let cases: Vec<(String, bool, &str)> = vec![
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n"),
            true,
            "a minimal credential",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    account_id: 111122223333\n    policy: { max_age_days: 30 }\n    last_rotated: 2026-01-31\n"),
            true,
            "a number where a name is expected, as YAML types it",
        ),
        (
            cred("    kind: aws_iam_access_key\n"),
            false,
            "a required kind field missing",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    role: admin\n"),
            false,
            "another kind's field",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    colour: blue\n"),
            false,
            "an unknown field",
        ),
        (
            cred("    kind: aws_iam_key\n    user_name: deploy\n"),
            false,
            "an unknown kind",
        ),
        (
            cred("    kind: oauth_client_secret\n    provider: okta\n    client_id: abc\n"),
            false,
            "fields required with provider okta missing",
        ),
        (
            cred("    kind: oauth_client_secret\n    provider: okta\n    client_id: abc\n    domain: acme.okta.com\n    app_id: a1\n    secret_id: s1\n    api_token_env: OKTA_API_TOKEN\n"),
            true,
            "okta with its fields",
        ),
        (
            cred("    kind: postgres_password\n    role: web\n    admin_url_env: PG_ADMIN_URL\n    strategy: alternating\n"),
            false,
            "alternating without alternate_role",
        ),
        (
            cred("    kind: postgres_password\n    role: web\n    admin_url_env: pg-admin\n"),
            false,
            "not an environment variable name",
        ),
        (
            cred("    kind: npm_granular_token\n    npm_user: acme\n    password_env: NPM_PASSWORD\n    packages: [\"@acme/ui\", left-pad]\n    scopes: \"@acme, @tools\"\n"),
            true,
            "list fields as a list and as a comma-separated string",
        ),
        (
            cred("    kind: npm_granular_token\n    npm_user: acme\n    password_env: NPM_PASSWORD\n    scopes: [acme]\n"),
            false,
            "a scope without its @",
        ),
        (
            cred("    kind: huggingface_token\n    hf_user: acme\n    role: admin\n"),
            false,
            "a value outside the field's words",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    policy: { max_age_days: 0 }\n"),
            false,
            "max_age_days 0",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    policy: { max_days: 30 }\n"),
            false,
            "an unknown policy field",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    last_rotated: 01/02/2026\n"),
            false,
            "a date not written YYYY-MM-DD",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - aws_secrets_manager: { secret_id: a }\n        env_file: { path: x.env, key: K }\n"),
            false,
            "a consumer with two destinations",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - github_actions_secret: { repo: acme/web, org: acme, name: K }\n"),
            false,
            "an Actions secret with repo and org",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - github_actions_secret: { repo: acme/web, visibility: all, name: K }\n"),
            false,
            "visibility on a repository secret",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - github_actions_secret: { org: acme, visibility: selected, selected_repositories: [web], name: K }\n      - github_actions_secret: { repo: acme/web, environment: prod, name: K }\n      - env_file: { path: x.env, key: K, create: true }\n"),
            true,
            "organization, environment and env-file consumers",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - github_actions_secret: { repo: web, name: K }\n"),
            false,
            "a repository without its owner",
        ),
        (
            cred("    kind: aws_iam_access_key\n    user_name: deploy\n    delivered_to:\n      - aws_secrets_manager: { secret_id: a, stage: x }\n"),
            false,
            "an unknown consumer field",
        ),
        (
            "hosts:\n  - { id: ci, kind: ci_runner, region: eu }\n".to_owned(),
            false,
            "an unknown host field",
        ),
        (
            "hosts:\n  - { id: ci, kind: mainframe }\n".to_owned(),
            false,
            "an unknown host kind",
        ),
        (
            "services:\n  - id: api\n    publishes:\n      - { registry: npm, package: \"@acme/api\", trusted_publishing: true }\n".to_owned(),
            true,
            "a service that publishes",
        ),
        (
            "services:\n  - id: api\n    publishes:\n      - { registry: cargo, package: api }\n".to_owned(),
            false,
            "an unknown registry",
        ),
        (
            "secrets:\n  - id: a\n".to_owned(),
            false,
            "an unknown top-level key",
        ),
        ("credentials:\n".to_owned(), true, "an empty list"),
    ];
    let cases: Vec<(&str, bool, &str)> =
        cases.iter().map(|(y, o, w)| (y.as_str(), *o, *w)).collect();
    agree(Document::Inventory, checker_accepts_inventory, &cases);
}

#[test]
fn the_runbook_schema_refuses_what_the_checker_refuses() {
    let runbook = |steps: &str| {
        format!(
            "kind: postgres_password\nsteps:\n  - id: set\n    phase: mint\n    action: postgres.set_password\n    with: {{ admin_url_env: \"{{{{ credential.admin_url_env }}}}\", role: \"{{{{ credential.role }}}}\" }}\n  - id: check\n    phase: verify\n    action: postgres.verify_login\n    with: {{ admin_url_env: \"{{{{ credential.admin_url_env }}}}\", role: \"{{{{ credential.role }}}}\", password: \"{{{{ steps.set.outputs.password }}}}\" }}\n{steps}"
        )
    };
    let cases: Vec<(String, bool, &str)> = vec![
        (runbook(""), true, "a minimal runbook"),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: postgres.drop_everything\n"),
            false,
            "an unknown action",
        ),
        (
            runbook("  - id: x\n    phase: later\n    action: manual.confirm\n    manual: { instructions: do it }\n"),
            false,
            "an unknown phase",
        ),
        (
            runbook("  - id: x\n    phase: verify\n    action: postgres.verify_login\n    with: { admin_url_env: A, role: r, password: p, colour: blue }\n"),
            false,
            "an input the action does not take",
        ),
        (
            runbook("  - id: x\n    phase: verify\n    action: postgres.verify_login\n    with: { admin_url_env: A }\n"),
            false,
            "a required input missing",
        ),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: manual.confirm\n"),
            false,
            "a manual action without instructions",
        ),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: manual.confirm\n    manual: { instructions: \"check {{ credential.role }}\", link: \"https://example.com\" }\n    modes: [incident]\n    when: { strategy: [alternating, \"\"] }\n    needs: [check]\n"),
            true,
            "a manual step with modes, when and needs",
        ),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: manual.confirm\n    manual: { instructions: do it }\n    modes: [sometimes]\n"),
            false,
            "an unknown mode",
        ),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: manual.confirm\n    manual: { instructions: do it }\n    when: { user_name: [a] }\n"),
            false,
            "`when` naming another kind's field",
        ),
        (
            runbook("  - id: x\n    phase: verify\n    action: postgres.verify_login\n    with: { admin_url_env: A, role: r, password: p }\n    manual: { instructions: do it }\n"),
            false,
            "`manual` on an automatic action",
        ),
        (
            runbook("  - id: x\n    phase: deliver\n    action: consumer.deliver\n    with: { password: \"{{ steps.set.outputs.password }}\" }\n"),
            false,
            "a per-consumer action without for_each",
        ),
        (
            runbook("  - id: x\n    phase: deliver\n    action: consumer.deliver\n    for_each: consumer\n    with: { password: \"{{ steps.set.outputs.password }}\", anything: 1 }\n"),
            true,
            "a per-consumer action with any inputs",
        ),
        (
            runbook("  - id: x\n    phase: prepare\n    action: postgres.verify_login\n    with: { admin_url_env: A, role: r, password: p }\n"),
            false,
            "a prepare step that does more than read",
        ),
        (
            runbook("  - id: x\n    phase: verify\n    action: postgres.verify_login\n    with: { admin_url_env: A, role: r, password: p }\n    colour: blue\n"),
            false,
            "an unknown step field",
        ),
        (
            runbook("  - id: x y\n    phase: verify\n    action: postgres.verify_login\n    with: { admin_url_env: A, role: r, password: p }\n"),
            false,
            "an invalid step id",
        ),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: aws.iam.delete_access_key\n    with: { user_name: u }\n"),
            false,
            "a deleting action not marked irreversible",
        ),
        (
            runbook("  - id: x\n    phase: cleanup\n    action: aws.iam.delete_access_key\n    with: { user_name: u }\n    irreversible: true\n"),
            true,
            "a deleting action marked irreversible",
        ),
        (
            "kind: postgres_password\nsteps: []\n".to_owned(),
            false,
            "no steps",
        ),
        (
            "kind: vault_token\nsteps:\n  - { id: a, phase: mint, action: manual.provide_secret, manual: { instructions: x } }\n".to_owned(),
            false,
            "an unknown kind",
        ),
    ];
    let cases: Vec<(&str, bool, &str)> =
        cases.iter().map(|(y, o, w)| (y.as_str(), *o, *w)).collect();
    agree(Document::Runbook, checker_accepts_runbook, &cases);
}
