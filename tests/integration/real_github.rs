//! The real `rekey` binary against the in-process GitHub fake (`rekey_testkit::GithubFake`,
//! which decrypts every Actions secret it receives) and moto: an AWS key delivered to
//! repository, environment and organization secrets; a fine-grained PAT rotated in drill mode
//! (the new value through `resume --input`) and in incident mode (revoked before anything
//! else); 20 % injected faults; a crash at every step boundary, then resume; a GitHub OAuth
//! app's client secret, created and deleted by a person and checked by rekey.

use rekey_testkit::{AccessKey, GithubFake, Moto};

use crate::harness::{Workspace, position};

const WRITER: &str = "ghp_RekeyWriterTokenE2E00000000000000000";

/// The fake's world: acme/web with a production environment, the org acme, the writer token.
fn world(fake: &GithubFake) {
    fake.add_repo("acme/web");
    fake.add_environment("acme/web", "production");
    fake.add_org("acme");
    fake.add_writer(WRITER, "acme-automation");
}

struct AwsGh {
    moto: Moto,
    admin: AccessKey,
    sm: aws_sdk_secretsmanager::Client,
    fake: GithubFake,
    ws: Workspace,
}

const USER: &str = "deploy-gh";

async fn setup_aws_gh() -> AwsGh {
    let moto = Moto::start();
    let accounts = moto.setup(&[USER]).await;
    let admin = accounts.admin;
    let (id, secret) = accounts.keys[USER].clone();
    let config = moto.sdk_config(&admin.0, &admin.1);
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name("prod/deploy-gh/aws")
        .secret_string(
            serde_json::json!({ "AccessKeyId": id, "SecretAccessKey": secret }).to_string(),
        )
        .send()
        .await
        .unwrap();
    let fake = GithubFake::start().await;
    world(&fake);
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    let t = AwsGh {
        moto,
        admin,
        sm,
        fake,
        ws,
    };
    t.write_inventory(&id);
    t
}

impl AwsGh {
    fn write_inventory(&self, key_id: &str) {
        std::fs::write(
            self.ws.path().join("inventory/acme.yaml"),
            format!(
                "credentials:
  - id: aws-gh
    kind: aws_iam_access_key
    owner: team-platform
    user_name: {USER}
    access_key_id: {key_id}
    delivered_to:
      - aws_secrets_manager: {{ secret_id: prod/deploy-gh/aws }}
      - github_actions_secret: {{ repo: acme/web, name: AWS_SECRET_ACCESS_KEY, field: SecretAccessKey }}
      - github_actions_secret: {{ repo: acme/web, environment: production, name: AWS_ACCESS_KEY_ID, field: AccessKeyId }}
      - github_actions_secret: {{ org: acme, name: DEPLOY_AWS_SECRET, field: SecretAccessKey, visibility: private }}
"
            ),
        )
        .unwrap();
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self
            .moto
            .client_env(&self.admin, &self.ws.path().join("no-aws-config"));
        env.push(("GITHUB_API_URL", self.fake.api_url()));
        env.push(("GITHUB_TOKEN", WRITER.to_owned()));
        env
    }

    async fn current(&self) -> (String, String) {
        let text = self
            .sm
            .get_secret_value()
            .secret_id("prod/deploy-gh/aws")
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        (
            v["AccessKeyId"].as_str().unwrap().to_owned(),
            v["SecretAccessKey"].as_str().unwrap().to_owned(),
        )
    }

    /// Every Actions secret holds exactly what AWS minted (decrypted by the fake).
    async fn assert_delivered(&self) -> (String, String) {
        let (id, secret) = self.current().await;
        let f = &self.fake;
        assert_eq!(
            f.secret("repo:acme/web", "AWS_SECRET_ACCESS_KEY")
                .as_deref(),
            Some(secret.as_str()),
            "repository secret"
        );
        assert_eq!(
            f.secret("env:acme/web/production", "AWS_ACCESS_KEY_ID")
                .as_deref(),
            Some(id.as_str()),
            "environment secret"
        );
        assert_eq!(
            f.secret("org:acme", "DEPLOY_AWS_SECRET").as_deref(),
            Some(secret.as_str()),
            "organization secret"
        );
        assert_eq!(f.secrets().len(), 3, "nothing else was written");
        (id, secret)
    }
}

fn strs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_aws_key_delivered_to_repo_environment_and_org_secrets() {
    let t = setup_aws_gh().await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let r = t.ws.rekey_seen(&["validate"], &env, &mut seen);
    r.ok("validate");
    assert!(
        r.stdout.contains("github auth: the token in $GITHUB_TOKEN"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(WRITER));
    let r = t.ws.rekey_seen(&["plan"], &env, &mut seen);
    r.ok("plan");
    assert!(
        r.stdout
            .contains("PUT …/actions/secrets/{name} (sealed box)"),
        "{}",
        r.stdout
    );
    t.ws.rekey_seen(&["run", "--yes", "--reason", "GH-1"], &env, &mut seen)
        .ok("run");
    let (_, secret) = t.assert_delivered().await;
    t.ws.rekey_seen(&["audit", "verify"], &env, &mut seen)
        .ok("audit verify");
    t.ws.assert_no_secrets(&seen, &[&secret, WRITER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_faults_still_deliver_exactly_what_was_minted() {
    let t = setup_aws_gh().await;
    t.fake.set_faults(0.2, 25);
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    t.ws.rekey_seen(&["run", "--yes", "--reason", "GH-FAULTS"], &env, &mut seen)
        .ok("run with 20% faults");
    let (_, secret) = t.assert_delivered().await;
    assert!(t.fake.faults_injected() > 0, "faults were injected");
    t.ws.assert_no_secrets(&seen, &[&secret, WRITER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_crash_at_every_point_then_resume_converges() {
    let t = setup_aws_gh().await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let mut secrets = Vec::new();
    let mut point = 0u32;
    loop {
        point += 1;
        let at = point.to_string();
        let reason = format!("CRASH-{point}");
        let mut crashing = env.clone();
        crashing.push(("REKEY_SIM_CRASH_AT", &at));
        let r = t.ws.rekey_seen(
            &["run", "--yes", "--concurrency", "1", "--reason", &reason],
            &crashing,
            &mut seen,
        );
        if r.code == Some(0) {
            secrets.push(t.assert_delivered().await.1);
            break;
        }
        assert_eq!(
            r.code, None,
            "crash point {point}: expected an abort\n{}",
            r.stderr
        );
        let id = t.ws.run_ids(&env)[0].clone();
        t.ws.rekey_seen(&["resume", &id], &env, &mut seen)
            .ok(&format!("resume after crash point {point}"));
        let (key_id, secret) = t.assert_delivered().await;
        secrets.push(secret);
        t.write_inventory(&key_id);
    }
    assert!(point > 20, "only {point} crash points were reached");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).chain([WRITER]).collect();
    t.ws.assert_no_secrets(&seen, &secrets);
}

// ---------------------------------------------------------------------------------------------
// A fine-grained PAT: manual mint, verify, deliver, revoke

const OLD_PAT: &str = "github_pat_11OLDPATVALUE_E2E0000000000000000000";
const NEW_PAT: &str = "github_pat_11NEWPATVALUE_E2E0000000000000000000";

/// The PAT's readable consumer is a Secrets Manager secret (on moto): the capture of the old
/// token pins its version, so a resume after the pause for the new token reads it again.
struct Pat {
    moto: Moto,
    admin: AccessKey,
    sm: aws_sdk_secretsmanager::Client,
    fake: GithubFake,
    ws: Workspace,
}

async fn setup_pat() -> Pat {
    let moto = Moto::start();
    let admin = moto.setup(&[]).await.admin;
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&admin.0, &admin.1));
    sm.create_secret()
        .name("ci/pat")
        .secret_string(OLD_PAT)
        .send()
        .await
        .unwrap();
    let fake = GithubFake::start().await;
    world(&fake);
    fake.add_token(OLD_PAT, "acme-bot");
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(
        ws.path().join("inventory/acme.yaml"),
        "credentials:
  - id: ci-pat
    kind: github_fine_grained_pat
    owner: team-platform
    github_user: acme-bot
    token_name: ci
    delivered_to:
      - aws_secrets_manager: { secret_id: ci/pat, field: token }
      - github_actions_secret: { repo: acme/web, name: CI_TOKEN }
      - github_actions_secret: { org: acme, name: CI_TOKEN }
",
    )
    .unwrap();
    Pat {
        moto,
        admin,
        sm,
        fake,
        ws,
    }
}

impl Pat {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self
            .moto
            .client_env(&self.admin, &self.ws.path().join("no-aws-config"));
        env.push(("GITHUB_API_URL", self.fake.api_url()));
        env.push(("GITHUB_TOKEN", WRITER.to_owned()));
        env
    }

    fn answer(&self) -> String {
        let answer = self.ws.path().join("new-token.txt");
        std::fs::write(&answer, format!("{NEW_PAT}\n")).unwrap();
        format!("ci-pat/create={}", answer.display())
    }

    async fn assert_rotated(&self) {
        assert!(self.fake.is_revoked(OLD_PAT), "the old token is revoked");
        assert!(!self.fake.is_revoked(NEW_PAT));
        let current = self
            .sm
            .get_secret_value()
            .secret_id("ci/pat")
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap();
        assert_eq!(current.secret_string(), Some(NEW_PAT));
        assert_eq!(
            self.fake.secret("repo:acme/web", "CI_TOKEN").as_deref(),
            Some(NEW_PAT)
        );
        assert_eq!(
            self.fake.secret("org:acme", "CI_TOKEN").as_deref(),
            Some(NEW_PAT)
        );
        assert_eq!(self.fake.revoke_calls(), vec![1], "one revoke request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_pat_drill_takes_the_new_token_through_resume_input() {
    let t = setup_pat().await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let r =
        t.ws.rekey_seen(&["run", "--yes", "--reason", "PAT-DRILL"], &env, &mut seen);
    assert_eq!(r.code, Some(3), "pauses for the new token\n{}", r.stderr);
    assert!(!t.fake.is_revoked(OLD_PAT), "a drill revokes last");
    // The person creates the token in GitHub's UI.
    t.fake.add_token(NEW_PAT, "acme-bot");
    let id = t.ws.run_ids(&env)[0].clone();
    let input = t.answer();
    t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume --input");
    t.assert_rotated().await;
    let events = t.ws.audit_events(None, &mut seen);
    let verified = position(&events, "step_succeeded", "ci-pat/verify");
    let revoked = position(&events, "step_started", "ci-pat/revoke-old");
    assert!(verified < revoked, "verify before revoke");
    t.ws.assert_no_secrets(&seen, &[OLD_PAT, NEW_PAT, WRITER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_pat_incident_revokes_before_anything_else() {
    let t = setup_pat().await;
    let env_owned = t.env();
    let env = strs(&env_owned);
    let mut seen = String::new();
    let r = t.ws.rekey_seen(
        &["run", "--yes", "--mode", "incident", "--reason", "PAT-INC"],
        &env,
        &mut seen,
    );
    assert_eq!(r.code, Some(3), "pauses for the new token\n{}", r.stderr);
    assert!(
        t.fake.is_revoked(OLD_PAT),
        "revoked before the new token exists"
    );
    assert!(t.fake.secrets().is_empty(), "nothing delivered yet");
    t.fake.add_token(NEW_PAT, "acme-bot");
    let id = t.ws.run_ids(&env)[0].clone();
    let input = t.answer();
    t.ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume --input");
    t.assert_rotated().await;
    t.ws.assert_no_secrets(&seen, &[OLD_PAT, NEW_PAT, WRITER]);
}

/// The bundled example's legacy GitHub token in an incident, for real against the fake: its
/// only consumer is an Actions secret (write-only), so the operator gives the old value, which
/// is revoked before anything else; then the new one is given, delivered and verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_example_incident_runs_for_real() {
    const OLD: &str = "ghp_ExampleOldClassicToken0000000000000";
    const NEW: &str = "ghp_ExampleNewClassicToken0000000000000";
    let fake = GithubFake::start().await;
    world(&fake);
    fake.add_token(OLD, "acme-bot");
    let ws = Workspace::example();
    let api = fake.api_url();
    let env = [("GITHUB_API_URL", api.as_str()), ("GITHUB_TOKEN", WRITER)];
    let mut seen = String::new();
    let args = [
        "run",
        "--yes",
        "--mode",
        "incident",
        "--credential",
        "gh-ci-classic",
        "--reason",
        "INC-EXAMPLE",
    ];
    let r = ws.rekey_seen(&args, &env, &mut seen);
    assert_eq!(r.code, Some(3), "asks for the old value\n{}", r.stderr);
    assert!(!r.stderr.contains("no provider"), "{}", r.stderr);
    let id = ws.run_ids(&env)[0].clone();
    let file = ws.path().join("value.txt");
    std::fs::write(&file, format!("{OLD}\n")).unwrap();
    let input = format!("gh-ci-classic/capture-old={}", file.display());
    let r = ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen);
    assert_eq!(r.code, Some(3), "asks for the new token\n{}", r.stderr);
    assert!(fake.is_revoked(OLD), "revoked before the new token exists");
    assert!(fake.secrets().is_empty());
    fake.add_token(NEW, "acme-bot");
    std::fs::write(&file, format!("{NEW}\n")).unwrap();
    let input = format!("gh-ci-classic/create={}", file.display());
    ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume with the new token");
    assert_eq!(
        fake.secret("org:acme", "RELEASE_GH_TOKEN").as_deref(),
        Some(NEW)
    );
    assert_eq!(fake.revoke_calls(), vec![1]);
    ws.assert_no_secrets(&seen, &[OLD, NEW, WRITER]);
}

/// A GitHub OAuth app's client secret in a drill: the person creates the new secret (given
/// through `resume --input`), rekey delivers it and checks GitHub accepts it before the person
/// deletes the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_oauth_app_secret_drill_checks_the_new_secret() {
    const CLIENT: &str = "Iv1.8a61f9b3a7aba766";
    const OLD: &str = "0ldc11e9750c4e7f0ldc11e9750c4e7f0ldc11e9";
    const NEW: &str = "9e3f7a1c5b2d4e6f8091a2b3c4d5e6f708192a3b";
    let fake = GithubFake::start().await;
    world(&fake);
    fake.add_oauth_secret(CLIENT, OLD);
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    let env_file = ws.path().join("docs.env");
    std::fs::write(&env_file, format!("OTHER=kept\nDOCS_SECRET={OLD}\n")).unwrap();
    std::fs::write(
        ws.path().join("inventory/acme.yaml"),
        format!(
            "credentials:
  - id: docs-oauth
    kind: oauth_client_secret
    owner: team-web
    provider: github_oauth_app
    client_id: {CLIENT}
    delivered_to:
      - env_file: {{ path: {}, key: DOCS_SECRET, field: client_secret }}
      - github_actions_secret: {{ repo: acme/web, name: DOCS_CLIENT_SECRET, field: client_secret }}
",
            env_file.display()
        ),
    )
    .unwrap();
    let api = fake.api_url();
    let env = [("GITHUB_API_URL", api.as_str()), ("GITHUB_TOKEN", WRITER)];
    let mut seen = String::new();
    let r = ws.rekey_seen(
        &["run", "--yes", "--reason", "OAUTH-DRILL"],
        &env,
        &mut seen,
    );
    assert_eq!(r.code, Some(3), "pauses for the new secret\n{}", r.stderr);
    assert!(!r.stderr.contains("no provider"), "{}", r.stderr);
    let id = ws.run_ids(&env)[0].clone();
    let file = ws.path().join("answer.txt");
    // The person generates the secret in the app's settings and gives it.
    fake.add_oauth_secret(CLIENT, NEW);
    std::fs::write(&file, format!("{NEW}\n")).unwrap();
    let input = format!("docs-oauth/manual-create={}", file.display());
    let r = ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen);
    assert_eq!(r.code, Some(3), "pauses for the deletion\n{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("OTHER=kept\nDOCS_SECRET={NEW}\n")
    );
    assert_eq!(
        fake.secret("repo:acme/web", "DOCS_CLIENT_SECRET")
            .as_deref(),
        Some(NEW)
    );
    assert_eq!(fake.oauth_checks(), 1, "the new secret was checked");
    fake.delete_oauth_secret(CLIENT, OLD);
    std::fs::write(&file, "done\n").unwrap();
    let input = format!("docs-oauth/manual-revoke={}", file.display());
    ws.rekey_seen(&["resume", &id, "--input", &input], &env, &mut seen)
        .ok("resume after the deletion");
    let events = ws.audit_events(None, &mut seen);
    let checked = position(&events, "step_succeeded", "docs-oauth/github-verify");
    let asked = position(&events, "step_succeeded", "docs-oauth/manual-revoke");
    assert!(checked < asked, "checked before the old one is deleted");
    ws.assert_no_secrets(&seen, &[OLD, NEW, WRITER]);
}
