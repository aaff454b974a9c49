//! Bad input gets a precise error: file, line and column, and what was expected.

use std::sync::Arc;

use rekey_spec::{SourceFile, SpecErrors};

use crate::harness::inventory_from;

const HOSTS: &str =
    "hosts:\n  - id: runner\n    kind: ci_runner\nservices:\n  - id: web\n    built_on: [runner]\n";

fn inventory_errors(body: &str) -> SpecErrors {
    let text = format!("{HOSTS}{body}");
    inventory_from("inv.yaml", &text).expect_err("the input is invalid")
}

fn runbook_errors(text: &str) -> SpecErrors {
    rekey_spec::parse_runbooks(&[Arc::new(SourceFile::new("rb.yaml", text))], false)
        .expect_err("the runbook is invalid")
}

/// Asserts exactly one error, at `location`, whose message contains `needle`.
#[track_caller]
fn assert_one(errors: &SpecErrors, location: &str, needle: &str) {
    let all = errors.to_string();
    assert_eq!(errors.len(), 1, "expected one error, got:\n{all}");
    let e = &errors.0[0];
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{location}: ")),
        "expected location {location}, got: {text}"
    );
    assert!(all.contains(needle), "expected {needle:?} in: {all}");
}

#[test]
fn bad_inventory_inputs_name_file_line_and_column() {
    // (credential body after the 6-line header, expected location, expected text)
    let cases: &[(&str, &str, &str)] = &[
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    ownr: me\n",
            "inv.yaml:11:5",
            "unknown field `ownr` for kind aws_iam_access_key (did you mean `owner`?",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_acess_key\n    user_name: u\n",
            "inv.yaml:9:11",
            "unknown credential kind `aws_iam_acess_key` (did you mean `aws_iam_access_key`?",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    present_on: [runner, laptop-carol]\n",
            "inv.yaml:11:26",
            "unknown host `laptop-carol`",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    used_by: [wbe]\n",
            "inv.yaml:11:15",
            "unknown service `wbe` (did you mean `web`?",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    rotate_with: nobody\n",
            "inv.yaml:11:18",
            "unknown credential `nobody`",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n  - id: k\n    kind: huggingface_token\n    hf_user: x\n",
            "inv.yaml:11:9",
            "duplicate credential id `k`; first defined at inv.yaml:8:9",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    last_rotated: 2026-02-30\n",
            "inv.yaml:11:19",
            "invalid date `2026-02-30` (expected a date as YYYY-MM-DD",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n",
            "inv.yaml:8:9",
            "missing required field `user_name`",
        ),
        (
            "credentials:\n  - id: k\n    kind: npm_granular_token\n    npm_user: u\n    password_env: NPM_PW\n    expires_days: 120\n",
            "inv.yaml:12:19",
            "npm lets a write token live at most 90 days, not 120",
        ),
        (
            "credentials:\n  - id: k\n    kind: npm_classic_token\n    npm_user: u\n    password_env: NPM_PW\n    permission: read-only\n    expires_days: soon\n",
            "inv.yaml:13:19",
            "expected a whole number of days from 1 to 365, found `soon`",
        ),
        (
            "credentials:\n  - id: k\n    kind: postgres_password\n    role: app\n    admin_url_env: pg_url\n",
            "inv.yaml:11:20",
            "`pg_url` is not an environment variable name",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - aws_secret_manager: { secret_id: x }\n",
            "inv.yaml:12:9",
            "unknown field `aws_secret_manager`, expected one of `aws_secrets_manager`",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - github_actions_secret: { repo: web, name: X }\n",
            "inv.yaml:12:40",
            "invalid repository `web` (expected OWNER/NAME",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - github_actions_secret: { repo: acme/web, name: X, visibility: all }\n",
            "inv.yaml:12:71",
            "`visibility` applies to organization secrets only",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - github_actions_secret: { org: acme, name: X, visibility: some }\n",
            "inv.yaml:12:66",
            "unknown visibility `some`",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - github_actions_secret: { org: acme, name: X, selected_repositories: [web] }\n",
            "inv.yaml:12:78",
            "`selected_repositories` needs `visibility: selected`",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - github_actions_secret: { repo: acme/web, name: X, token_env: gh-token }\n",
            "inv.yaml:12:70",
            "is not an environment variable name",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    token_env: GH_W\n    delivered_to:\n      - env_file: { path: /tmp/x.env, key: K }\n",
            "inv.yaml:11:16",
            "`token_env` names the token that writes GitHub Actions secrets, and this credential has none",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    token_env: gh-w\n    delivered_to:\n      - github_actions_secret: { repo: acme/web, name: X }\n",
            "inv.yaml:11:16",
            "`gh-w` is not an environment variable name",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    policy: { max_age_days: ninety }\n",
            "inv.yaml:11:29",
            "invalid digit",
        ),
        (
            "credential:\n  - id: k\n",
            "inv.yaml:7:1",
            "unknown top-level key `credential` (expected one of `hosts`, `services`, `credentials`, `discovered`)",
        ),
        (
            "credentials:\n  - id: k\n    kind: [oops\n",
            "inv.yaml:10:1",
            "invalid YAML",
        ),
        (
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    user_name: v\n",
            "inv.yaml:11:5",
            "duplicate key `user_name`; first defined at inv.yaml:10:5",
        ),
        (
            "credentials:\n  - id: k\n    kind: oauth_client_secret\n    provider: okta\n    client_id: c\n    app_id: a\n    api_token_env: OKTA\n    secret_id: ocs1\n",
            "inv.yaml:8:9",
            "missing field `domain`, required with provider okta",
        ),
    ];
    for (body, location, needle) in cases {
        let errors = inventory_errors(body);
        assert_one(&errors, location, needle);
    }
}

#[test]
fn rotate_with_cycle_prints_the_cycle_with_locations() {
    let errors = inventory_errors(
        "credentials:\n  - id: b\n    kind: github_fine_grained_pat\n    github_user: x\n    rotate_with: a\n  - id: a\n    kind: postgres_password\n    role: r\n    admin_url_env: PG\n    rotate_with: b\n",
    );
    assert_one(&errors, "inv.yaml:16:18", "rotate_with cycle: a → b → a");
    assert!(
        errors
            .to_string()
            .contains("b rotate_with a at inv.yaml:11:18"),
        "{errors}"
    );
}

#[test]
fn secret_values_are_refused_and_never_echoed() {
    let token = "ghp_R8nUq2ZsXk3yVb7LmT4wPe9HcJd1Ag5FoQiS";
    let errors = inventory_errors(&format!(
        "credentials:\n  - id: k\n    kind: github_classic_pat\n    github_user: x\n    token_name: \"{token}\"\n"
    ));
    assert_one(
        &errors,
        "inv.yaml:11:17",
        "`token_name` looks like a secret value (a GitHub classic token)",
    );
    let rendered = rekey_spec_render(&errors);
    assert!(
        !rendered.contains(token) && !errors.to_string().contains(token),
        "the secret leaked:\n{rendered}"
    );
    assert!(!format!("{errors:?}").contains(token));
}

fn rekey_spec_render(errors: &SpecErrors) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let mut out = String::new();
    for e in errors.iter() {
        handler.render_report(&mut out, e).unwrap();
    }
    out
}

#[test]
fn rendered_diagnostic_shows_the_line_and_a_caret() {
    let errors = inventory_errors(
        "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    ownr: me\n",
    );
    let out = rekey_spec_render(&errors);
    assert!(out.contains("[inv.yaml:11:5]"), "{out}");
    assert!(out.contains("11 │     ownr: me"), "{out}");
    assert!(
        out.contains("────┬") && out.contains("╰── unknown field"),
        "{out}"
    );
}

const RUNBOOK_HEAD: &str = "kind: huggingface_token\nsteps:\n";
const MINT: &str = "  - id: create\n    phase: mint\n    action: manual.provide_secret\n    manual: { instructions: paste it }\n";

#[test]
fn bad_runbooks_name_file_line_and_column() {
    let verify_ok = "  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with: { token: \"{{ steps.create.outputs.value }}\" }\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoareyou\n"),
            "rb.yaml:9:13",
            "unknown action `huggingface.whoareyou` (did you mean `huggingface.whoami`?",
        ),
        (
            format!(
                "{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with: {{ token: \"{{{{ steps.create.outputs.tokn }}}}\" }}\n"
            ),
            "rb.yaml:10:21",
            "step `create` (manual.provide_secret) has no output `tokn` (its outputs: value)",
        ),
        (
            format!(
                "{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with: {{ token: \"{{{{ steps.mint.outputs.value }}}}\" }}\n"
            ),
            "rb.yaml:10:21",
            "template references step `mint`, which does not exist",
        ),
        (
            format!(
                "{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with: {{ token: \"{{{{ steps.create.outputs.value }}}}\", expected_user: \"{{{{ steps.create.outputs.value }}}}\" }}\n"
            ),
            "rb.yaml:10:72",
            "secret output `create.value` cannot go into this input",
        ),
        (
            format!("{MINT}{verify_ok}    needs: [verfy]\n"),
            "rb.yaml:11:13",
            "`needs` names unknown step `verfy`",
        ),
        (
            format!(
                "{MINT}{verify_ok}  - id: verify\n    phase: cleanup\n    action: manual.confirm\n    manual: {{ instructions: x }}\n"
            ),
            "rb.yaml:11:9",
            "duplicate step id `verify`",
        ),
        (
            format!("{MINT}{verify_ok}    phase: verifyy\n"),
            "rb.yaml:1:1",
            "duplicate key `phase`",
        ),
        (
            format!(
                "{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with: {{ tokn: x, token: \"{{{{ steps.create.outputs.value }}}}\" }}\n"
            ),
            "rb.yaml:10:13",
            "`huggingface.whoami` takes no input `tokn` (it takes: token, expected_user, expected_role)",
        ),
        (
            format!(
                "{MINT}{verify_ok}  - id: revoke\n    phase: revoke\n    action: manual.confirm\n    manual: {{ instructions: \"{{{{ credential.hf_usr }}}}\" }}\n"
            ),
            "rb.yaml:14:30",
            "huggingface_token has no field `hf_usr`",
        ),
        (
            format!(
                "{MINT}{verify_ok}  - id: bad\n    phase: prepare\n    action: aws.iam.delete_access_key\n    irreversible: true\n    with: {{ user_name: x }}\n"
            ),
            "rb.yaml:12:12",
            "`aws.iam.delete_access_key` changes things; prepare steps may only read",
        ),
        (
            format!(
                "{MINT}{verify_ok}  - id: gone\n    phase: cleanup\n    action: github.credentials.revoke\n    with: {{ token: \"{{{{ steps.create.outputs.value }}}}\" }}\n"
            ),
            "rb.yaml:13:13",
            "deletes and cannot be undone: mark the step `irreversible: true`",
        ),
        (
            format!("{MINT}{verify_ok}    unknown_flag: true\n"),
            "rb.yaml:11:5",
            "unknown field `unknown_flag`",
        ),
    ];
    for (steps, location, needle) in &cases {
        let errors = runbook_errors(&format!("{RUNBOOK_HEAD}{steps}"));
        // Duplicate YAML keys are reported by the parser with the key's own position.
        if needle.starts_with("duplicate key") {
            assert!(errors.to_string().contains(needle), "{errors}");
            continue;
        }
        assert_one(&errors, location, needle);
    }
}

#[test]
fn runbook_step_cycle_is_reported() {
    let text = format!(
        "{RUNBOOK_HEAD}{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    needs: [promote]\n    with: {{ token: \"{{{{ steps.create.outputs.value }}}}\" }}\n  - id: promote\n    phase: verify\n    action: consumer.promote\n    for_each: consumer\n    needs: [verify]\n"
    );
    let errors = runbook_errors(&text);
    assert!(
        errors
            .to_string()
            .contains("steps depend on each other in a cycle: verify → promote → verify")
            || errors
                .to_string()
                .contains("cycle: promote → verify → promote"),
        "{errors}"
    );
    assert!(errors.to_string().contains("rb.yaml:"), "{errors}");
}

#[test]
fn every_bundled_runbook_checks() {
    let rb = rekey_spec::load_runbooks(None).unwrap();
    assert_eq!(rb.iter().count(), rekey_spec::CredentialKind::ALL.len());
    assert!(rb.iter().all(|r| r.bundled));
}

/// Every way a secret in the input could reach a diagnostic: the offending line, the context
/// lines miette draws around another error, serde's own messages, and fields nothing checked
/// (`owner`, consumers). Each case is rendered the way the CLI renders it (with more context
/// lines), and as one line, and with `Debug`.
#[test]
fn no_diagnostic_echoes_a_secret() {
    const GHP: &str = "ghp_R8nUq2ZsXk3yVb7LmT4wPe9HcJd1Ag5FoQiS";
    const AWS: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const PLAIN: &str = "hunter2-correct-horse";
    let pg = "credentials:\n  - id: k\n    kind: postgres_password\n    role: app\n    admin_url_env: PG\n";
    let aws = "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n";
    // (what, inventory body, the secret it holds)
    let inventories: Vec<(&str, String, &str)> = vec![
        (
            "unknown `password` field",
            format!("{pg}    password: {PLAIN}\n"),
            PLAIN,
        ),
        (
            "unknown `password` field, quoted",
            format!("{pg}    password: \"{PLAIN}\"\n"),
            PLAIN,
        ),
        (
            "unknown `api_key` field",
            format!("{pg}    api_key: {PLAIN}\n"),
            PLAIN,
        ),
        (
            "block scalar under a secret key",
            format!("{pg}    password: |\n      {PLAIN}\n"),
            PLAIN,
        ),
        (
            "secret-looking value in an unknown field",
            format!("{pg}    note: {GHP}\n"),
            GHP,
        ),
        (
            "context line before another error",
            format!("{aws}    owner: \"{GHP}\"\n    ownr: me\n"),
            GHP,
        ),
        (
            "context line after another error",
            format!("{aws}    ownr: me\n    description: {AWS}\n"),
            AWS,
        ),
        (
            "secret key as context",
            format!("{pg}    ownr: me\n    secret: {PLAIN}\n"),
            PLAIN,
        ),
        (
            "serde's invalid type",
            format!("{aws}    used_by: \"{GHP}\"\n"),
            GHP,
        ),
        (
            "serde's invalid type, number expected",
            format!("{aws}    policy: {{ max_age_days: \"{GHP}\" }}\n"),
            GHP,
        ),
        ("owner is checked", format!("{aws}    owner: {GHP}\n"), GHP),
        (
            "service owner is checked",
            format!("  - id: api\n    owner: {GHP}\n"),
            GHP,
        ),
        (
            "env_file consumer field is checked",
            format!(
                "{aws}    delivered_to:\n      - env_file: {{ path: a.env, key: K, field: \"{AWS}\" }}\n"
            ),
            AWS,
        ),
        (
            "Secrets Manager consumer is checked",
            format!(
                "{aws}    delivered_to:\n      - aws_secrets_manager: {{ secret_id: \"postgres://u:{PLAIN}@db/x\" }}\n"
            ),
            PLAIN,
        ),
        (
            "unknown consumer field with a secret key",
            format!(
                "{aws}    delivered_to:\n      - env_file: {{ path: a.env, key: K, password: {PLAIN} }}\n"
            ),
            PLAIN,
        ),
        (
            "unknown consumer field on its own line",
            format!(
                "{aws}    delivered_to:\n      - env_file:\n          path: a.env\n          key: K\n          token: {PLAIN}\n"
            ),
            PLAIN,
        ),
        (
            "a secret in an id",
            format!("{aws}    used_by: [\"{GHP}\"]\n"),
            GHP,
        ),
        (
            "a PEM key in a description",
            format!(
                "{aws}    description: |\n      -----BEGIN RSA PRIVATE KEY-----\n      {AWS}\n      -----END RSA PRIVATE KEY-----\n    ownr: me\n"
            ),
            AWS,
        ),
    ];
    let mut leaks = Vec::new();
    for (what, body, secret) in &inventories {
        // The header ends inside `services:`, so a body starting `  - ` is a service.
        let text = format!("{HOSTS}{body}");
        let Err(errors) = inventory_from("inv.yaml", &text) else {
            leaks.push(format!("inventory, {what}: accepted"));
            continue;
        };
        if let Some(leak) = leak(&errors, secret) {
            leaks.push(format!("inventory, {what}: {leak}"));
        }
    }
    // Runbooks go through the same diagnostics.
    let runbooks: Vec<(&str, String, &str)> = vec![
        (
            "unknown `password` field in a step",
            format!("{MINT}    password: {PLAIN}\n"),
            PLAIN,
        ),
        (
            "a token as an input",
            format!(
                "{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with: {{ token: \"{GHP}\" }}\n"
            ),
            GHP,
        ),
        (
            "context around an error",
            format!("{MINT}    description: {GHP}\n    unknown_flag: true\n"),
            GHP,
        ),
        (
            "secret key in `with`",
            format!(
                "{MINT}  - id: verify\n    phase: verify\n    action: huggingface.whoami\n    with:\n      token: \"{{{{ steps.create.outputs.value }}}}\"\n      secret: {PLAIN}\n"
            ),
            PLAIN,
        ),
    ];
    for (what, steps, secret) in &runbooks {
        let text = format!("{RUNBOOK_HEAD}{steps}");
        let Err(errors) =
            rekey_spec::parse_runbooks(&[Arc::new(SourceFile::new("rb.yaml", text))], false)
        else {
            leaks.push(format!("runbook, {what}: accepted"));
            continue;
        };
        if let Some(leak) = leak(&errors, secret) {
            leaks.push(format!("runbook, {what}: {leak}"));
        }
    }
    assert!(leaks.is_empty(), "secrets echoed:\n{}", leaks.join("\n\n"));
}

/// Where `secret` shows in the errors, if anywhere.
fn leak(errors: &SpecErrors, secret: &str) -> Option<String> {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_context_lines(3);
    let mut rendered = String::new();
    for e in errors.iter() {
        handler.render_report(&mut rendered, e).unwrap();
    }
    let one_line = errors.to_string();
    let debug = format!("{errors:?}");
    [
        ("rendered", rendered),
        ("one line", one_line),
        ("debug", debug),
    ]
    .into_iter()
    .find(|(_, text)| text.contains(secret))
    .map(|(how, text)| format!("{how}:\n{text}"))
}

#[test]
fn masked_lines_keep_harmless_context() {
    // A line that holds nothing secret is still shown; env var names are not secrets.
    let errors = inventory_errors(
        "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - env_file: { path: a.env, key: AWS_SECRET_ACCESS_KEY }\n    ownr: me\n",
    );
    let out = rekey_spec_render(&errors);
    assert!(out.contains("13 │     ownr: me"), "{out}");
}
