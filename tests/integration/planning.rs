//! The plan: every kind, mode ordering, `rotate_with` ordering, capability refusals, snapshots.

use std::collections::BTreeMap;

use rekey_plan::{EdgeKind, Plan, PlanError, PlanRequest, Selection, Strategy, compile};
use rekey_spec::{CredentialKind, Effect, Inventory, Mode, Phase, Runbooks};

use crate::harness::{bundled_runbooks, example_inventory, inventory_from};

fn plan(inv: &Inventory, rb: &Runbooks, sel: &Selection, mode: Mode) -> Plan {
    compile(&PlanRequest {
        inventory: inv,
        runbooks: rb,
        selection: sel,
        mode,
        exposed: None,
    })
    .unwrap_or_else(|e| panic!("plan failed: {e}"))
}

fn only(ids: &[&str]) -> Selection {
    Selection {
        credentials: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..Selection::default()
    }
}

/// Step index by plan step id.
fn idx(plan: &Plan, id: &str) -> u32 {
    plan.step(id)
        .unwrap_or_else(|| {
            panic!(
                "no step {id}; steps: {:?}",
                plan.steps.iter().map(|s| &s.id).collect::<Vec<_>>()
            )
        })
        .0
}

/// The steps of one credential in one phase.
fn in_phase(plan: &Plan, cred: &str, phase: Phase) -> Vec<u32> {
    let ci = plan.credentials.iter().position(|c| c.id == cred).unwrap();
    plan.credentials[ci]
        .steps
        .iter()
        .copied()
        .filter(|&s| plan.steps[s as usize].phase == phase)
        .collect()
}

#[test]
fn every_kind_parses_and_plans_in_both_modes() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    for kind in CredentialKind::ALL {
        assert!(
            inv.credentials.iter().any(|c| c.kind == kind),
            "the example inventory lacks a {kind}"
        );
        assert!(rb.get(kind).is_some(), "no bundled runbook for {kind}");
        for mode in [Mode::Drill, Mode::Incident] {
            let sel = Selection {
                kinds: vec![kind],
                ..Selection::default()
            };
            let p = plan(&inv, &rb, &sel, mode);
            for c in &p.credentials {
                assert_eq!(c.kind, kind);
                let phases: Vec<Phase> =
                    c.steps.iter().map(|&s| p.steps[s as usize].phase).collect();
                assert!(
                    phases.contains(&Phase::Mint),
                    "{} has no mint step in {mode:?}",
                    c.id
                );
                assert!(
                    c.steps
                        .iter()
                        .any(|&s| p.steps[s as usize].effect == rekey_spec::Effect::Verify),
                    "{} has no verify step in {mode:?}",
                    c.id
                );
                assert!(
                    phases.contains(&Phase::Revoke)
                        || matches!(
                            kind,
                            CredentialKind::PostgresPassword
                                | CredentialKind::MysqlPassword
                                | CredentialKind::OauthClientSecret
                        ),
                    "{} never revokes the old value in {mode:?}",
                    c.id
                );
            }
        }
    }
}

#[test]
fn drill_never_revokes_before_verification() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(&inv, &rb, &Selection::default(), Mode::Drill);
    assert!(
        p.credentials
            .iter()
            .all(|c| c.strategy == Strategy::RotateFirst)
    );
    for c in &p.credentials {
        for revoke in in_phase(&p, &c.id, Phase::Revoke)
            .into_iter()
            .chain(in_phase(&p, &c.id, Phase::Cleanup))
        {
            for verify in in_phase(&p, &c.id, Phase::Verify) {
                assert!(
                    p.precedes(verify, revoke),
                    "{}: {} may run before {}",
                    c.id,
                    p.steps[revoke as usize].id,
                    p.steps[verify as usize].id
                );
            }
        }
    }
}

#[test]
fn incident_revokes_before_anything_else_changes() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(&inv, &rb, &Selection::default(), Mode::Incident);
    assert!(
        p.credentials
            .iter()
            .all(|c| c.strategy == Strategy::RevokeFirst)
    );
    for c in &p.credentials {
        let revokes = in_phase(&p, &c.id, Phase::Revoke);
        for &s in &c.steps {
            let step = &p.steps[s as usize];
            // Only look-ups (reading the old value, by API or from an operator) precede it.
            if step.phase == Phase::Prepare {
                assert!(
                    matches!(step.effect, Effect::Read | Effect::Human),
                    "{}: prepare steps only read",
                    step.id
                );
                continue;
            }
            if step.phase == Phase::Revoke {
                continue;
            }
            for &r in &revokes {
                assert!(
                    p.precedes(r, s),
                    "{}: {} may run before the revoke {}",
                    c.id,
                    step.id,
                    p.steps[r as usize].id
                );
            }
        }
    }
}

/// Revoking first, forensics the revoke does not use (when the old key was last used) do not
/// hold the exposed key open: they run beside the revoke, and still before the mint and the
/// cleanup that deletes the old key; a look-up the revoke uses (the old value read from a
/// consumer) still comes first.
#[test]
fn incident_forensics_do_not_delay_the_revoke() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(&inv, &rb, &only(&["aws-deploy-web"]), Mode::Incident);
    let capture = idx(&p, "aws-deploy-web/capture-last-used");
    let disable = idx(&p, "aws-deploy-web/disable-exposed");
    assert!(!p.precedes(capture, disable), "forensics before the revoke");
    assert!(p.precedes(capture, idx(&p, "aws-deploy-web/free-slot")));
    assert!(p.precedes(capture, idx(&p, "aws-deploy-web/delete-old")));
    assert!(p.precedes(disable, idx(&p, "aws-deploy-web/free-slot")));

    let p = plan(&inv, &rb, &only(&["gh-secrets-writer"]), Mode::Incident);
    let needed: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Prepare)
        .map(|s| s.id.as_str())
        .collect();
    let revokes = in_phase(&p, "gh-secrets-writer", Phase::Revoke);
    assert!(!needed.is_empty() && !revokes.is_empty());
    for id in needed {
        // The runbook's revoke reads the old token its capture found.
        for &r in &revokes {
            assert!(
                p.precedes(idx(&p, id), r),
                "{id} must precede the revoke it feeds"
            );
        }
    }
}

#[test]
fn same_credential_orders_differently_per_mode() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let sel = only(&["aws-deploy-web"]);

    let drill = plan(&inv, &rb, &sel, Mode::Drill);
    let (create, verify) = (
        idx(&drill, "aws-deploy-web/create"),
        idx(&drill, "aws-deploy-web/verify"),
    );
    let disable = idx(&drill, "aws-deploy-web/disable-old");
    let delete = idx(&drill, "aws-deploy-web/delete-old");
    assert!(drill.precedes(create, verify));
    assert!(
        drill.precedes(verify, disable),
        "drill: verify before disabling the old key"
    );
    assert!(drill.precedes(disable, delete));
    assert!(
        !drill.precedes(disable, create),
        "drill: the old key is not disabled before the new one exists"
    );
    assert!(drill.step("aws-deploy-web/disable-exposed").is_none());
    // Each consumer gets the value before verification promotes it.
    let promote = idx(
        &drill,
        "aws-deploy-web/promote[secretsmanager:prod/web/aws-deploy]",
    );
    let deliver = idx(
        &drill,
        "aws-deploy-web/deliver[secretsmanager:prod/web/aws-deploy]",
    );
    assert!(drill.precedes(deliver, promote) && drill.precedes(verify, promote));
    // The direct edge between consecutive phases, not only a path.
    assert!(
        drill
            .edges
            .iter()
            .any(|e| e.from == verify && e.to == disable && e.kind == EdgeKind::Phase)
    );

    let incident = plan(&inv, &rb, &sel, Mode::Incident);
    let disable = idx(&incident, "aws-deploy-web/disable-exposed");
    let create = idx(&incident, "aws-deploy-web/create");
    let free = idx(&incident, "aws-deploy-web/free-slot");
    assert!(
        incident.precedes(disable, free) && incident.precedes(disable, create),
        "incident: disable before anything else"
    );
    assert!(!incident.precedes(create, disable));
    assert!(incident.step("aws-deploy-web/disable-old").is_none());
    // The first delivery to a write-only GitHub Actions secret is the point of no return.
    let first = incident.credentials[0].first_irreversible.unwrap();
    assert!(
        incident.steps[first as usize]
            .id
            .starts_with("aws-deploy-web/deliver[actions:"),
        "{}",
        incident.steps[first as usize].id
    );
    assert!(incident.precedes(first, idx(&incident, "aws-deploy-web/delete-old")));
    // Steps are stored in a topological order.
    for e in &incident.edges {
        assert!(
            e.from < e.to,
            "edge {e:?} goes backwards in the stored order"
        );
    }
}

#[test]
fn rotate_with_helper_is_verified_before_dependents_deliver() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    for mode in [Mode::Drill, Mode::Incident] {
        let p = plan(
            &inv,
            &rb,
            &only(&[
                "aws-deploy-web",
                "gh-secrets-writer",
                "pg-web-app",
                "pg-admin",
            ]),
            mode,
        );
        let gh_verify = idx(&p, "gh-secrets-writer/verify");
        // Rotating first, the writer's old token (what GITHUB_TOKEN holds) is revoked only
        // after the deliveries that use it; revoking first (exposed), at once.
        let gh_revoke = idx(&p, "gh-secrets-writer/revoke-old");
        for s in in_phase(&p, "aws-deploy-web", Phase::Deliver) {
            assert_eq!(
                p.precedes(s, gh_revoke),
                mode == Mode::Drill,
                "{mode:?}: {} and the writer's revoke",
                p.steps[s as usize].id
            );
        }
        for s in in_phase(&p, "aws-deploy-web", Phase::Deliver) {
            assert!(
                p.precedes(gh_verify, s),
                "{mode:?}: {} before the helper is verified",
                p.steps[s as usize].id
            );
            assert!(
                p.edges
                    .iter()
                    .any(|e| e.from == gh_verify && e.to == s && e.kind == EdgeKind::Helper)
            );
        }
        // The database admin login is rotated before it is used to set the app role's password.
        let admin_verify = idx(&p, "pg-admin/verify");
        assert!(p.precedes(admin_verify, idx(&p, "pg-web-app/set-password")));
        let aws = p
            .credentials
            .iter()
            .find(|c| c.id == "aws-deploy-web")
            .unwrap();
        assert!(
            aws.helper
                .as_ref()
                .is_some_and(|h| h.in_plan && h.id == "gh-secrets-writer")
        );
    }
    // Without the helper in the plan, no cross edge, and a note says it must be valid.
    let p = plan(&inv, &rb, &only(&["aws-deploy-web"]), Mode::Drill);
    assert!(p.edges.iter().all(|e| e.kind != EdgeKind::Helper));
    assert!(
        p.credentials[0]
            .notes
            .iter()
            .any(|n| n.text.contains("not in this plan"))
    );
}

#[test]
fn selection_by_service_and_kind() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let sel = Selection {
        services: vec!["ml-gateway".into()],
        ..Selection::default()
    };
    let p = plan(&inv, &rb, &sel, Mode::Drill);
    let ids: Vec<&str> = p.credentials.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gh-secrets-writer",
            "aws-ml-bedrock",
            "gcp-vertex-ml",
            "hf-ml-read",
            "auth0-ml-admin",
            "pg-admin"
        ]
    );
    let err = compile(&PlanRequest {
        inventory: &inv,
        runbooks: &rb,
        selection: &only(&["aws-deploy-wbe"]),
        mode: Mode::Drill,
        exposed: None,
    })
    .unwrap_err();
    assert!(
        matches!(&err, PlanError::Selection(m) if m.contains("no credential `aws-deploy-wbe`") && m.contains("did you mean `aws-deploy-web`")),
        "{err}"
    );
}

#[test]
fn exposure_map_splits_revoke_first_from_adjacent() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let exposed: BTreeMap<String, String> = [(
        "aws-deploy-web".to_owned(),
        "axios@1.14.1 → service web → runner gha-org-runners → credential aws-deploy-web"
            .to_owned(),
    )]
    .into();
    let sel = only(&["aws-deploy-web", "okta-web-client"]);
    let p = compile(&PlanRequest {
        inventory: &inv,
        runbooks: &rb,
        selection: &sel,
        mode: Mode::Incident,
        exposed: Some(&exposed),
    })
    .unwrap();
    let by_id = |id: &str| p.credentials.iter().find(|c| c.id == id).unwrap();
    assert_eq!(by_id("aws-deploy-web").strategy, Strategy::RevokeFirst);
    assert!(
        by_id("aws-deploy-web")
            .reason
            .contains("axios@1.14.1 → service web")
    );
    assert_eq!(by_id("okta-web-client").strategy, Strategy::RotateFirst);
    assert!(by_id("okta-web-client").reason.contains("not exposed"));
}

#[test]
fn capability_map_refuses_a_third_iam_key() {
    let text = r"
credentials:
  - id: key-a
    kind: aws_iam_access_key
    user_name: deploy
  - id: key-b
    kind: aws_iam_access_key
    user_name: deploy
  - id: key-c
    kind: aws_iam_access_key
    user_name: other
";
    let inv = inventory_from("two-keys.yaml", text).unwrap();
    let rb = bundled_runbooks();
    let err = compile(&PlanRequest {
        inventory: &inv,
        runbooks: &rb,
        selection: &only(&["key-a"]),
        mode: Mode::Drill,
        exposed: None,
    })
    .unwrap_err();
    let PlanError::Refused(rs) = &err else {
        panic!("expected a refusal, got {err}")
    };
    assert_eq!(rs.len(), 1);
    assert!(
        rs[0]
            .message
            .contains("IAM user `deploy` holds 2 tracked keys (key-a, key-b)"),
        "{}",
        rs[0]
    );
    assert!(
        rs[0].to_string().starts_with("two-keys.yaml:3:9: key-a:"),
        "{}",
        rs[0]
    );
    // A user with one tracked key plans fine.
    plan(&inv, &rb, &only(&["key-c"]), Mode::Drill);
}

#[test]
fn capability_map_warns_about_downtime_and_legacy() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(
        &inv,
        &rb,
        &only(&[
            "auth0-ml-admin",
            "pg-web-app",
            "npm-legacy-laptop",
            "okta-web-client",
            "gh-ci-classic",
        ]),
        Mode::Drill,
    );
    let notes = |id: &str| {
        p.credentials
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .notes
            .iter()
            .map(|n| n.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(notes("auth0-ml-admin").contains("downtime: Auth0"));
    assert!(notes("pg-web-app").contains("downtime: one password per role"));
    assert!(notes("npm-legacy-laptop").contains("legacy credential kind npm_classic_token"));
    assert!(
        notes("npm-legacy-laptop").contains("2025-12-09"),
        "the plan says why a classic npm token is still listed"
    );
    assert!(
        !notes("okta-web-client").contains("downtime"),
        "Okta keeps two secrets"
    );
    // A classic npm token is replaced by a granular one, minted through the registry's API.
    let create = &p.steps[idx(&p, "npm-legacy-laptop/create") as usize];
    assert_eq!(create.effect, Effect::Create);
    assert_eq!(create.action, "npm.tokens.create");
    // Manual steps of kinds with no API are marked and carry instructions and a link.
    let create = &p.steps[idx(&p, "gh-ci-classic/create") as usize];
    assert_eq!(create.effect, Effect::Human);
    let manual = create.manual.as_ref().unwrap();
    assert!(manual.instructions.to_string().contains("acme-bot"));
    assert!(
        manual
            .link
            .as_ref()
            .unwrap()
            .to_string()
            .starts_with("https://github.com/settings/tokens")
    );
}

#[test]
fn alternating_postgres_roles_plan_without_downtime() {
    let inv = inventory_from(
        "alt.yaml",
        "credentials:
  - id: pg-alt
    kind: postgres_password
    owner: team-web
    role: web_app
    strategy: alternating
    alternate_role: web_app_b
    admin_url_env: PG_ADMIN_URL
    delivered_to:
      - env_file: { path: /etc/web/db.env, key: PGPASSWORD, field: password }
      - aws_secrets_manager: { secret_id: prod/web/db }
",
    )
    .unwrap();
    let rb = bundled_runbooks();
    let drill = plan(&inv, &rb, &only(&["pg-alt"]), Mode::Drill);
    let notes: Vec<&str> = drill.credentials[0]
        .notes
        .iter()
        .map(|n| n.text.as_str())
        .collect();
    assert!(!notes.iter().any(|n| n.contains("downtime")), "{notes:?}");
    // The active tag moves only once consumers were switched over.
    let promote = drill
        .steps
        .iter()
        .position(|s| s.id.starts_with("pg-alt/promote"))
        .unwrap();
    let promote = u32::try_from(promote).unwrap();
    let mark = idx(&drill, "pg-alt/mark-active");
    assert!(drill.precedes(promote, mark));
    assert!(drill.precedes(idx(&drill, "pg-alt/verify"), mark));
    assert!(drill.step("pg-alt/disable-login-alternate").is_none());
    // An incident revokes both roles before the standby gets its new password.
    let incident = plan(&inv, &rb, &only(&["pg-alt"]), Mode::Incident);
    let set = idx(&incident, "pg-alt/set-password");
    for revoke in [
        "pg-alt/disable-login",
        "pg-alt/disable-login-alternate",
        "pg-alt/terminate-sessions",
        "pg-alt/terminate-sessions-alternate",
    ] {
        assert!(incident.precedes(idx(&incident, revoke), set), "{revoke}");
    }
    // Without the strategy none of it is planned.
    let example = plan(
        &example_inventory(),
        &rb,
        &only(&["pg-web-app"]),
        Mode::Incident,
    );
    assert!(example.step("pg-web-app/mark-active").is_none());
    assert!(example.step("pg-web-app/disable-login-alternate").is_none());
}

#[test]
fn secret_outputs_stay_references_in_the_plan() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(&inv, &rb, &Selection::default(), Mode::Drill);
    for s in &p.steps {
        for (name, t) in &s.inputs {
            for v in t.vars() {
                assert!(
                    matches!(
                        v,
                        rekey_spec::Var::StepOutput { .. } | rekey_spec::Var::Run { .. }
                    ),
                    "{}: input {name} still has {v}",
                    s.id
                );
            }
        }
    }
    let verify = &p.steps[idx(&p, "aws-deploy-web/verify") as usize];
    assert_eq!(
        verify.inputs["secret_access_key"].to_string(),
        "{{ steps.create.outputs.secret_access_key }}"
    );
    let json = rekey_plan::render_json(&p);
    let back: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rekey_plan::render_json(&back),
        json,
        "the stored plan round-trips"
    );
}

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn plan_text_snapshot() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(
        &inv,
        &rb,
        &only(&["gh-secrets-writer", "aws-deploy-web"]),
        Mode::Incident,
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!("plan_incident_text", rekey_plan::render_text(&p, false)));
    let p = plan(&inv, &rb, &only(&["pg-web-app", "hf-ml-read"]), Mode::Drill);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!("plan_drill_text", rekey_plan::render_text(&p, false)));
}

#[test]
fn plan_json_snapshot() {
    let inv = example_inventory();
    let rb = bundled_runbooks();
    let p = plan(&inv, &rb, &only(&["okta-web-client"]), Mode::Drill);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!("plan_drill_json", rekey_plan::render_json(&p)));
}

#[test]
fn consumer_field_must_be_delivered() {
    let text = "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - github_actions_secret: { repo: acme/web, name: KEY, field: SecretKey }\n";
    let inv = inventory_from("f.yaml", text).unwrap();
    let err = compile(&PlanRequest {
        inventory: &inv,
        runbooks: &bundled_runbooks(),
        selection: &Selection::default(),
        mode: Mode::Drill,
        exposed: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("takes field `SecretKey`, but step `deliver` delivers only: AccessKeyId, SecretAccessKey"), "{err}");
}

/// An env-file line holds one value: a consumer of a document with several values must name
/// the one it takes, and the refusal lists them; a single value needs no `field`.
#[test]
fn an_env_file_line_names_the_value_it_takes() {
    let plan_of = |consumer: &str| {
        let text = format!(
            "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    delivered_to:\n      - env_file: {consumer}\n"
        );
        let inv = inventory_from("f.yaml", &text).unwrap();
        compile(&PlanRequest {
            inventory: &inv,
            runbooks: &bundled_runbooks(),
            selection: &Selection::default(),
            mode: Mode::Drill,
            exposed: None,
        })
    };
    let err = plan_of("{ path: /etc/app.env, key: AWS_KEY }").unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("delivers several values: AccessKeyId, SecretAccessKey")
            && text.contains("add `field:` naming one of"),
        "{text}"
    );
    plan_of("{ path: /etc/app.env, key: AWS_KEY, field: SecretAccessKey }").unwrap();
}
