//! `rekey schema` (issue 14): prints exactly the committed `schema/*.schema.json`, which the
//! bundled example's files name on their first line. The schemas themselves are tested in
//! `rekey-spec/tests/schema.rs`.

use std::process::Command;

use crate::harness::repo_root;

#[test]
fn rekey_schema_prints_the_committed_schemas() {
    for (document, file) in [
        ("inventory", "inventory.schema.json"),
        ("runbook", "runbook.schema.json"),
    ] {
        let out = Command::new(crate::harness::REKEY)
            .args(["schema", document])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let committed = std::fs::read_to_string(repo_root().join("schema").join(file)).unwrap();
        assert!(
            String::from_utf8(out.stdout).unwrap() == committed,
            "schema/{file} is not `rekey schema {document}`: cargo run -q -- schema {document} > schema/{file}"
        );
        let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "yaml-language-server implements draft 7"
        );
    }
    let out = Command::new(crate::harness::REKEY)
        .args(["schema", "policy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[possible values: inventory, runbook]"));
}
