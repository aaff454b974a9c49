//! The whole bundled example inventory (`inventory/`, all 15 credentials) through the real
//! binary, in a drill and in an incident, with every provider pointed at a real peer or a fake:
//! moto (IAM users, Secrets Manager), PostgreSQL, `MariaDB`, Verdaccio, and the in-process
//! GitHub, GCP, Hugging Face, Okta and Auth0 fakes. The run pauses for what a person does (new
//! GitHub PATs, the App's new key and the deletion of its old one, the Hugging Face token, the
//! GitHub OAuth app's new secret and the deletion of its old one, the old value of a
//! credential whose only consumer is write-only); the test does that in the fake and answers
//! with `resume --input STEP=PATH` until the run succeeds. Then every server is asked: each new
//! value works, each old one does not, and every consumer holds the new value.
//!
//! Where the example names things a test cannot reach (`/etc/acme/…`, `acme.okta.com`, npm's
//! public registry, a `MySQL` host pattern of `10.%`, made-up key and secret ids), the copied
//! inventory is rewritten to the peers'. The example's admin logins are stand-ins here:
//! `GITHUB_TOKEN` is a writer token of its own (not `gh-secrets-writer`'s value) and
//! `PG_ADMIN_URL` is the cluster's superuser (not `acme_admin`), because the run rotates those
//! helpers while the process keeps the environment it started with.

use std::collections::BTreeMap;

use rekey_testkit::github::{APP_KEY_1, APP_KEY_1_PUB, APP_KEY_2, APP_KEY_2_PUB};
use rekey_testkit::{
    ADMIN_PASSWORD, AccessKey, Auth0Fake, GcpFake, GithubFake, HuggingfaceFake, MariaDb, Moto,
    OktaFake, PgCluster, Verdaccio,
};

use crate::harness::{Workspace, env_file_value, position, summary, tail};

const WRITER: &str = "ghp_RekeyExampleWriterToken0000000000000";
const OLD_WRITER_PAT: &str = "github_pat_11OLDEXAMPLEWRITER_0000000000000000000";
const NEW_WRITER_PAT: &str = "github_pat_11NEWEXAMPLEWRITER_0000000000000000000";
const OLD_CLASSIC: &str = "ghp_ExampleOldClassicTokenAll00000000000";
const NEW_CLASSIC: &str = "ghp_ExampleNewClassicTokenAll00000000000";
const APP_ID: u64 = 912_345;
const OAUTH_CLIENT: &str = "Iv1.8a61f9b3a7aba766";
const OLD_OAUTH: &str = "0ldc11e9750c4e7f0ldc11e9750c4e7fa11e9ab1";
const NEW_OAUTH: &str = "9e3f7a1c5b2d4e6f8091a2b3c4d5e6f708192abc";
const OLD_HF: &str = "hf_ExampleOldGatewayTokenAll0000000000";
const NEW_HF: &str = "hf_ExampleNewGatewayTokenAll0000000000";
const GCP_SA: &str = "vertex-invoker@acme-ml-prod.iam.gserviceaccount.com";
const GCP_KEY: &str = "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f901";
const OKTA_TOKEN: &str = "00OktaExampleApiTokenNeverShown0000000000";
const AUTH0_TOKEN: &str = "eyJAuth0ExampleMgmtTokenNeverShown.0.0";
const OKTA_APP: &str = "0oa8f5j3ecb5w6yDf5d7";
const AUTH0_CLIENT: &str = "Xk3f9QpZr7LmN2vB8sT1";
const OLD_OKTA: &str = "0ld-0kta-Example-Secret-Never-Shown-000000";
const OLD_AUTH0: &str = "0ld-Auth0-Example-Secret-Never-Shown-00000";
const NPM_PASSWORD: &str = "Npm-Example-Acc0unt-Pa55word";
const OLD_PG_ADMIN: &str = "0ld-AcmeAdmin-Pa55word";
const OLD_PG_WEB: &str = "0ld-WebApp-Pa55word";
const OLD_BILLING: &str = "0ld-Billing-Example-Pa55word";

/// Every peer and fake, the workspace (a copy of the example, rewritten to point at them),
/// and the old values.
struct World {
    moto: Moto,
    admin: AccessKey,
    sm: aws_sdk_secretsmanager::Client,
    iam: aws_sdk_iam::Client,
    pg: PgCluster,
    db: MariaDb,
    npm: Verdaccio,
    gh: GithubFake,
    gcp: GcpFake,
    hub: HuggingfaceFake,
    okta: OktaFake,
    auth0: Auth0Fake,
    ws: Workspace,
    /// IAM user → its old key.
    aws_old: BTreeMap<&'static str, AccessKey>,
    gcp_old: String,
    npm_old_publish: String,
    npm_old_legacy: String,
}

const AWS_USERS: [&str; 2] = ["deploy-web", "ml-bedrock-invoke"];

async fn setup() -> World {
    let moto = Moto::start();
    let accounts = moto.setup(&AWS_USERS).await;
    let admin = accounts.admin;
    let config = moto.sdk_config(&admin.0, &admin.1);
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let aws_old: BTreeMap<&'static str, AccessKey> = AWS_USERS
        .iter()
        .map(|&u| (u, accounts.keys[u].clone()))
        .collect();

    // GitHub: the repositories, environments and organization the Actions-secret consumers
    // name; the writer token; the PATs, the App and the OAuth app as they are before the run.
    let gh = GithubFake::start().await;
    gh.add_repo("acme/web");
    gh.add_repo("acme/ml-gateway");
    gh.add_environment("acme/ml-gateway", "production");
    gh.add_environment("acme/packages", "release");
    gh.add_org("acme");
    gh.add_writer(WRITER, "rekey-ci");
    gh.add_token(OLD_WRITER_PAT, "acme-automation");
    gh.add_token(OLD_CLASSIC, "acme-bot");
    gh.add_app(APP_ID, "acme-deployer", &[APP_KEY_1_PUB], 1);
    gh.add_oauth_secret(OAUTH_CLIENT, OLD_OAUTH);

    let gcp = GcpFake::start().await;
    gcp.add_account("acme-ml-prod", GCP_SA);
    let gcp_old = gcp.add_key_with_id(GCP_SA, GCP_KEY);

    let hub = HuggingfaceFake::start().await;
    hub.add_user("ml-bot", &["acme-ml"]);
    hub.add_token(OLD_HF, "ml-bot", "read");

    let okta = OktaFake::start(OKTA_TOKEN).await;
    let okta_secret_id = okta.add_app(OKTA_APP, OKTA_APP, OLD_OKTA);
    let auth0 = Auth0Fake::start(AUTH0_TOKEN, "https://api.acme.test/").await;
    auth0.add_client(AUTH0_CLIENT, OLD_AUTH0);

    let npm = Verdaccio::start();
    npm.add_user("acme-publisher", NPM_PASSWORD);
    let (k1, npm_old_publish) = npm.create_token("acme-publisher", NPM_PASSWORD);
    let (k2, npm_old_legacy) = npm.create_token("acme-publisher", NPM_PASSWORD);

    let pg = PgCluster::start().await;
    {
        let mut su = pg.admin().await;
        for sql in [
            format!("CREATE ROLE acme_admin LOGIN CREATEROLE PASSWORD '{OLD_PG_ADMIN}'"),
            format!("CREATE ROLE web_app LOGIN PASSWORD '{OLD_PG_WEB}'"),
            "CREATE DATABASE web OWNER web_app".to_owned(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut su)
                .await
                .unwrap();
        }
    }
    let db = MariaDb::start().await;
    db.create_user("billing", OLD_BILLING).await;

    // Secrets Manager: every secret the example delivers to, holding the old value (a JSON
    // document of the value's fields where the consumer names no `field:`).
    let json = |v: serde_json::Value| v.to_string();
    let aws_json =
        |k: &AccessKey| json(serde_json::json!({ "AccessKeyId": k.0, "SecretAccessKey": k.1 }));
    let secrets: Vec<(&str, String)> = vec![
        (
            "platform/github/secrets-writer",
            json(serde_json::json!({ "token": OLD_WRITER_PAT })),
        ),
        ("prod/web/aws-deploy", aws_json(&aws_old["deploy-web"])),
        (
            "prod/ml-gateway/aws",
            aws_json(&aws_old["ml-bedrock-invoke"]),
        ),
        ("prod/ml-gateway/gcp-key", gcp_old.clone()),
        (
            "platform/github/deployer-app-key",
            json(serde_json::json!({ "private_key": APP_KEY_1 })),
        ),
        ("prod/ml-gateway/hf-token", OLD_HF.to_owned()),
        (
            "prod/web/okta-client",
            json(serde_json::json!({ "client_id": OKTA_APP, "client_secret": OLD_OKTA })),
        ),
        (
            "prod/ml-gateway/auth0-client",
            json(serde_json::json!({ "client_id": AUTH0_CLIENT, "client_secret": OLD_AUTH0 })),
        ),
        (
            "platform/postgres/admin",
            json(serde_json::json!({ "username": "acme_admin", "password": OLD_PG_ADMIN })),
        ),
        (
            "prod/web/postgres",
            json(serde_json::json!({ "username": "web_app", "password": OLD_PG_WEB })),
        ),
        (
            "prod/billing/mysql",
            json(serde_json::json!({ "username": "billing", "password": OLD_BILLING })),
        ),
    ];
    for (id, value) in secrets {
        sm.create_secret()
            .name(id)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }

    // The workspace: the example, pointed at the peers.
    let ws = Workspace::example();
    let etc = ws.path().join("etc/acme");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("docs.env"),
        format!("DOCS_URL=https://docs.acme.test\nGITHUB_CLIENT_SECRET={OLD_OAUTH}\n"),
    )
    .unwrap();
    std::fs::write(
        etc.join("billing.env"),
        format!("DB_HOST=127.0.0.1\nDB_PASSWORD={OLD_BILLING}\n"),
    )
    .unwrap();
    let npmrc = ws.path().join("npmrc.env");
    std::fs::write(&npmrc, format!("NPM_TOKEN={npm_old_legacy}\n")).unwrap();
    std::fs::write(ws.path().join("admin.json"), gcp.admin_key_file()).unwrap();
    let path = ws.path().join("inventory/credentials.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let registry = npm.url();
    for (from, to) in [
        ("/etc/acme/", format!("{}/", etc.display())),
        ("/home/alice/.npmrc.env", npmrc.display().to_string()),
        (
            "token_key: a1b2c3d4e5f6",
            format!("token_key: {k1}\n    registry: {registry}"),
        ),
        (
            "token_key: 9f8e7d6c5b4a",
            format!("token_key: {k2}\n    registry: {registry}"),
        ),
        (
            "domain: acme.okta.com",
            format!("domain: {}", okta.domain()),
        ),
        (
            "secret_id: ocsabc123def456",
            format!("secret_id: {okta_secret_id}"),
        ),
        (
            "domain: acme-ml.eu.auth0.com",
            format!("domain: {}", auth0.domain()),
        ),
        ("host_pattern: \"10.%\"", "host_pattern: \"%\"".to_owned()),
    ] {
        assert!(text.contains(from), "the example inventory has {from}");
        text = text.replace(from, &to);
    }
    std::fs::write(&path, text).unwrap();

    World {
        moto,
        admin,
        sm,
        iam,
        pg,
        db,
        npm,
        gh,
        gcp,
        hub,
        okta,
        auth0,
        ws,
        aws_old,
        gcp_old,
        npm_old_publish,
        npm_old_legacy,
    }
}

fn strs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A line of a PEM's body: must not show anywhere either.
fn pem_line(pem: &str) -> String {
    pem.lines().nth(5).unwrap().to_owned()
}

impl World {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self
            .moto
            .client_env(&self.admin, &self.ws.path().join("no-aws-config"));
        env.extend([
            ("GITHUB_API_URL", self.gh.api_url()),
            ("GITHUB_TOKEN", WRITER.to_owned()),
            ("GITHUB_SERVER_URL", self.gh.server_url()),
            ("HF_ENDPOINT", self.hub.endpoint()),
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                self.ws.path().join("admin.json").display().to_string(),
            ),
            ("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", self.gcp.iam_url()),
            ("PG_SUPERUSER_URL", self.pg.admin_url()),
            ("PG_ADMIN_URL", self.pg.admin_url()),
            ("MYSQL_ADMIN_URL", self.db.admin_url()),
            ("NPM_PUBLISHER_PASSWORD", NPM_PASSWORD.to_owned()),
            ("OKTA_API_TOKEN", OKTA_TOKEN.to_owned()),
            ("AUTH0_MGMT_TOKEN", AUTH0_TOKEN.to_owned()),
        ]);
        env
    }

    /// What a person does for a step that waits, and the answer to give: the value for a
    /// manual mint or an old value, `done` for a confirmation.
    fn act(&self, step: &str) -> &'static str {
        match step {
            "gh-secrets-writer/create" => {
                self.gh.add_token(NEW_WRITER_PAT, "acme-automation");
                NEW_WRITER_PAT
            }
            "gh-ci-classic/capture-old" => OLD_CLASSIC,
            "gh-ci-classic/create" => {
                self.gh.add_token(NEW_CLASSIC, "acme-bot");
                NEW_CLASSIC
            }
            "gh-app-deployer/create" => {
                self.gh.add_app_key(APP_ID, APP_KEY_2_PUB);
                APP_KEY_2
            }
            "gh-app-deployer/delete-old" => {
                assert!(self.gh.delete_app_key(APP_ID, APP_KEY_1_PUB));
                "done"
            }
            "hf-ml-read/create" => {
                self.hub.add_token(NEW_HF, "ml-bot", "read");
                NEW_HF
            }
            "gh-oauth-docs/manual-create" => {
                self.gh.add_oauth_secret(OAUTH_CLIENT, NEW_OAUTH);
                NEW_OAUTH
            }
            "gh-oauth-docs/manual-revoke" => {
                assert!(self.gh.delete_oauth_secret(OAUTH_CLIENT, OLD_OAUTH));
                "done"
            }
            other => panic!("unexpected step waiting for an operator: {other}"),
        }
    }

    /// The steps of `run` that wait for an operator.
    fn waiting(&self, run: &str, env: &[(&str, &str)], seen: &mut String) -> Vec<String> {
        let r = self.ws.rekey_seen(&["status", run, "--json"], env, seen);
        r.ok("status");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "waiting_for_operator")
            .map(|s| s["step_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs the whole example in `mode`, answering every pause, until it succeeds. Returns
    /// the run id and the steps answered, in order.
    fn run(&self, mode: &str, seen: &mut String) -> (String, Vec<String>) {
        let env_owned = self.env();
        let env = strs(&env_owned);
        let reason = format!("EXAMPLE-{mode}");
        let mut r = self.ws.rekey_seen(
            &["run", "--yes", "--mode", mode, "--reason", &reason],
            &env,
            seen,
        );
        let id = self.ws.run_ids(&env)[0].clone();
        let mut answered = Vec::new();
        for round in 0.. {
            assert!(
                !r.stderr.contains("no provider") && !r.stdout.contains("no provider"),
                "{mode}: a \"no provider\" refusal\n{}",
                r.stderr
            );
            if r.code == Some(0) {
                break;
            }
            let waiting = self.waiting(&id, &env, seen);
            // CI shows a failure's first and last lines: the gist goes last too.
            assert!(
                r.code == Some(3) && !waiting.is_empty() && round < 12,
                "{mode}, round {round}: expected a pause for an operator\n--- stdout\n{}\n--- stderr\n{}\n--- audit\n{}\n--- in short: exit {:?}, waiting {waiting:?}, stderr ends:\n{}",
                r.stdout,
                r.stderr,
                summary(&self.ws.audit_events(Some(&id), seen)),
                r.code,
                tail(&r.stderr, 8)
            );
            let mut args: Vec<String> = vec!["resume".into(), id.clone()];
            for step in &waiting {
                let file = self.ws.path().join(format!(
                    "answer-{}.txt",
                    step.replace(['/', '[', ']', ':'], "_")
                ));
                std::fs::write(&file, format!("{}\n", self.act(step))).unwrap();
                args.push("--input".into());
                args.push(format!("{step}={}", file.display()));
                answered.push(step.clone());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            r = self.ws.rekey_seen(&args, &env, seen);
        }
        let r = self.ws.rekey_seen(&["status", &id, "--json"], &env, seen);
        r.ok("status");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["status"], "succeeded", "{mode}: {}", r.stdout);
        (id, answered)
    }

    /// A Secrets Manager secret's AWSCURRENT value; with `field`, that field of its JSON (or
    /// the whole value when it is not a JSON object).
    async fn current(&self, secret_id: &str, field: Option<&str>) -> String {
        let text = self
            .sm
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{secret_id}: {e:?}"))
            .secret_string()
            .unwrap()
            .to_owned();
        match (field, serde_json::from_str::<serde_json::Value>(&text).ok()) {
            (Some(f), Some(serde_json::Value::Object(o))) if o.contains_key(f) => {
                o[f].as_str().unwrap().to_owned()
            }
            _ => text,
        }
    }

    /// STS `GetCallerIdentity` with a key: the caller's ARN, or the error.
    async fn whoami(&self, id: &str, secret: &str) -> Result<String, String> {
        let sts = aws_sdk_sts::Client::new(&self.moto.sdk_config(id, secret));
        sts.get_caller_identity()
            .send()
            .await
            .map(|o| o.arn().unwrap_or_default().to_owned())
            .map_err(|e| format!("{}", aws_sdk_sts::error::DisplayErrorContext(e)))
    }

    fn actions(&self, scope: &str, name: &str) -> String {
        self.gh
            .secret(scope, name)
            .unwrap_or_else(|| panic!("the Actions secret {scope} {name} was not written"))
    }

    /// Every credential was rotated: the new value works at its server, the old one does not,
    /// and every consumer holds the new value. Returns every new secret value.
    #[allow(clippy::too_many_lines)]
    async fn assert_rotated(&self) -> Vec<String> {
        let mut new = Vec::new();
        let etc = self.ws.path().join("etc/acme");

        // The Actions secrets the example names, and no other.
        let mut written = self.gh.secrets();
        written.sort();
        assert_eq!(
            written,
            [
                ("env:acme/ml-gateway/production", "AWS_SECRET_ACCESS_KEY"),
                ("env:acme/packages/release", "NPM_TOKEN"),
                ("org:acme", "RELEASE_GH_TOKEN"),
                ("repo:acme/ml-gateway", "HF_TOKEN"),
                ("repo:acme/web", "AWS_ACCESS_KEY_ID"),
                ("repo:acme/web", "AWS_SECRET_ACCESS_KEY"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );

        // gh-secrets-writer, gh-ci-classic: GitHub PATs.
        assert!(self.gh.is_revoked(OLD_WRITER_PAT), "gh-secrets-writer: old");
        assert!(
            !self.gh.is_revoked(NEW_WRITER_PAT),
            "gh-secrets-writer: new"
        );
        assert_eq!(
            self.current("platform/github/secrets-writer", Some("token"))
                .await,
            NEW_WRITER_PAT
        );
        assert!(self.gh.is_revoked(OLD_CLASSIC), "gh-ci-classic: old");
        assert!(!self.gh.is_revoked(NEW_CLASSIC), "gh-ci-classic: new");
        assert_eq!(self.actions("org:acme", "RELEASE_GH_TOKEN"), NEW_CLASSIC);

        // aws-deploy-web, aws-ml-bedrock: one key each, new, working; the old one refused.
        for (user, secret_id) in [
            ("deploy-web", "prod/web/aws-deploy"),
            ("ml-bedrock-invoke", "prod/ml-gateway/aws"),
        ] {
            let keys = rekey_testkit::access_keys(&self.iam, user).await;
            assert_eq!(keys.len(), 1, "{user} has exactly one key: {keys:?}");
            let (key_id, status) = keys.iter().next().unwrap();
            assert_eq!(status, "Active");
            let (old_id, old_secret) = &self.aws_old[user];
            assert_ne!(key_id, old_id, "{user}: the key was replaced");
            assert_eq!(&self.current(secret_id, Some("AccessKeyId")).await, key_id);
            let secret = self.current(secret_id, Some("SecretAccessKey")).await;
            let arn = self
                .whoami(key_id, &secret)
                .await
                .unwrap_or_else(|e| panic!("{user}: the new key is refused: {e}"));
            assert!(arn.ends_with(&format!(":user/{user}")), "{arn}");
            assert!(
                self.whoami(old_id, old_secret).await.is_err(),
                "{user}: the old key still works"
            );
            if user == "deploy-web" {
                assert_eq!(
                    self.actions("repo:acme/web", "AWS_SECRET_ACCESS_KEY"),
                    secret
                );
                assert_eq!(&self.actions("repo:acme/web", "AWS_ACCESS_KEY_ID"), key_id);
            } else {
                assert_eq!(
                    self.actions("env:acme/ml-gateway/production", "AWS_SECRET_ACCESS_KEY"),
                    secret
                );
            }
            new.push(secret);
        }

        // gcp-vertex-ml: one key, the delivered key file, which authenticates; the old not.
        let keys = self.gcp.keys(GCP_SA);
        assert_eq!(keys.len(), 1, "gcp: exactly one key: {keys:?}");
        assert!(!keys[0].disabled);
        assert_ne!(keys[0].id, GCP_KEY);
        let file = self.current("prod/ml-gateway/gcp-key", None).await;
        let v: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(v["private_key_id"], keys[0].id.as_str());
        assert!(self.gcp.accepts(&file), "gcp: the new key file works");
        assert!(
            !self.gcp.accepts(&self.gcp_old),
            "gcp: the old key file works"
        );
        new.push(pem_line(v["private_key"].as_str().unwrap()));
        new.push(file);

        // gh-app-deployer: the App takes the new key only; Secrets Manager holds it.
        assert!(self.gh.app_accepts(APP_ID, APP_KEY_2), "app: the new key");
        assert!(!self.gh.app_accepts(APP_ID, APP_KEY_1), "app: the old key");
        assert_eq!(
            self.current("platform/github/deployer-app-key", Some("private_key"))
                .await
                .trim(),
            APP_KEY_2.trim()
        );

        // npm-publish, npm-legacy-laptop: Verdaccio takes the new tokens only.
        let published = self.actions("env:acme/packages/release", "NPM_TOKEN");
        let legacy = env_file_value(&self.ws.path().join("npmrc.env"), "NPM_TOKEN");
        for (what, token, old) in [
            ("npm-publish", &published, &self.npm_old_publish),
            ("npm-legacy-laptop", &legacy, &self.npm_old_legacy),
        ] {
            assert_ne!(token, old, "{what}: a new token");
            assert_eq!(
                self.npm.whoami(token).as_deref(),
                Some("acme-publisher"),
                "{what}: the new token works"
            );
            assert_eq!(self.npm.whoami(old), None, "{what}: the old token works");
        }
        assert_eq!(
            self.npm.token_keys("acme-publisher", NPM_PASSWORD).len(),
            2,
            "npm: the two new tokens only"
        );
        new.extend([published, legacy]);

        // hf-ml-read.
        assert!(self.hub.is_live(NEW_HF), "hf: the new token works");
        assert!(!self.hub.is_live(OLD_HF), "hf: the old token works");
        assert_eq!(self.hub.live_tokens_of("ml-bot"), vec![NEW_HF.to_owned()]);
        assert_eq!(
            self.current("prod/ml-gateway/hf-token", Some("token"))
                .await,
            NEW_HF
        );
        assert_eq!(self.actions("repo:acme/ml-gateway", "HF_TOKEN"), NEW_HF);

        // okta-web-client, auth0-ml-admin.
        let okta = self
            .current("prod/web/okta-client", Some("client_secret"))
            .await;
        assert_ne!(okta, OLD_OKTA);
        assert!(self.okta.accepts(OKTA_APP, &okta), "okta: the new secret");
        assert!(
            !self.okta.accepts(OKTA_APP, OLD_OKTA),
            "okta: the old secret"
        );
        assert_eq!(
            self.okta.secrets(OKTA_APP).len(),
            1,
            "okta: one secret left"
        );
        let auth0 = self
            .current("prod/ml-gateway/auth0-client", Some("client_secret"))
            .await;
        assert_ne!(auth0, OLD_AUTH0);
        assert!(
            self.auth0.accepts(AUTH0_CLIENT, &auth0),
            "auth0: the new secret"
        );
        assert!(
            !self.auth0.accepts(AUTH0_CLIENT, OLD_AUTH0),
            "auth0: the old secret"
        );
        new.extend([okta, auth0]);

        // gh-oauth-docs: the env file holds the new secret, GitHub takes it and not the old.
        assert_eq!(
            env_file_value(&etc.join("docs.env"), "GITHUB_CLIENT_SECRET"),
            NEW_OAUTH
        );
        assert_eq!(
            env_file_value(&etc.join("docs.env"), "DOCS_URL"),
            "https://docs.acme.test"
        );
        assert!(self.gh.oauth_secret_live(OAUTH_CLIENT, NEW_OAUTH));
        assert!(!self.gh.oauth_secret_live(OAUTH_CLIENT, OLD_OAUTH));

        // pg-admin, pg-web-app: the server takes the new passwords only.
        for (role, secret_id, old) in [
            ("acme_admin", "platform/postgres/admin", OLD_PG_ADMIN),
            ("web_app", "prod/web/postgres", OLD_PG_WEB),
        ] {
            let password = self.current(secret_id, Some("password")).await;
            assert_ne!(password, old, "{role}: a new password");
            if let Err(e) = self.pg.login(role, &password).await {
                panic!("{role}: the new password is refused: {e}");
            }
            assert_eq!(
                self.pg.login(role, old).await.err().as_deref(),
                Some("28P01"),
                "{role}: the old password still logs in"
            );
            new.push(password);
        }

        // mysql-legacy-billing: both consumers hold the new password, which logs in.
        let password = self.current("prod/billing/mysql", Some("password")).await;
        assert_eq!(
            env_file_value(&etc.join("billing.env"), "DB_PASSWORD"),
            password
        );
        assert_eq!(
            env_file_value(&etc.join("billing.env"), "DB_HOST"),
            "127.0.0.1"
        );
        assert_ne!(password, OLD_BILLING);
        if let Err(e) = self.db.login("billing", &password).await {
            panic!("billing: the new password is refused: {e}");
        }
        assert_eq!(
            self.db.login("billing", OLD_BILLING).await.err().as_deref(),
            Some("1045"),
            "billing: the old password still logs in"
        );
        new.push(password);
        new
    }

    /// Every old value, admin secret and manual answer: none may show anywhere.
    fn known_secrets(&self) -> Vec<String> {
        let mut s: Vec<String> = [
            WRITER,
            OLD_WRITER_PAT,
            NEW_WRITER_PAT,
            OLD_CLASSIC,
            NEW_CLASSIC,
            OLD_OAUTH,
            NEW_OAUTH,
            OLD_HF,
            NEW_HF,
            OKTA_TOKEN,
            AUTH0_TOKEN,
            OLD_OKTA,
            OLD_AUTH0,
            NPM_PASSWORD,
            OLD_PG_ADMIN,
            OLD_PG_WEB,
            OLD_BILLING,
            ADMIN_PASSWORD,
        ]
        .map(str::to_owned)
        .into();
        s.extend([
            pem_line(APP_KEY_1),
            pem_line(APP_KEY_2),
            pem_line(GcpFake::admin_private_key()),
            self.admin.1.clone(),
            self.npm_old_publish.clone(),
            self.npm_old_legacy.clone(),
            self.gcp_old.clone(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&self.gcp_old).unwrap();
        s.push(pem_line(v["private_key"].as_str().unwrap()));
        s.extend(self.aws_old.values().map(|k| k.1.clone()));
        s
    }
}

/// The steps that wait for a person, in both modes.
const ANSWERED: [&str; 8] = [
    "gh-app-deployer/create",
    "gh-app-deployer/delete-old",
    "gh-ci-classic/capture-old",
    "gh-ci-classic/create",
    "gh-oauth-docs/manual-create",
    "gh-oauth-docs/manual-revoke",
    "gh-secrets-writer/create",
    "hf-ml-read/create",
];

fn distinct(answered: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = answered.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A drill of the whole example: every credential rotated first, the pauses answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_example_drill_runs_for_real() {
    let w = setup().await;
    let mut seen = String::new();
    let (id, answered) = w.run("drill", &mut seen);
    // gh-ci-classic's old value is given again after the pause for its new token: rekey never
    // stores a secret, and the process that revokes it is not the one it was given to.
    assert_eq!(
        distinct(&answered),
        ANSWERED,
        "the steps a person did: {answered:?}"
    );
    let mut secrets = w.assert_rotated().await;
    // Rotate first: every old value is revoked after its new one is checked.
    let events = w.ws.audit_events(Some(&id), &mut seen);
    for (checked, revoked) in [
        ("gh-secrets-writer/verify", "gh-secrets-writer/revoke-old"),
        ("gh-ci-classic/verify", "gh-ci-classic/revoke-old"),
        ("aws-deploy-web/verify", "aws-deploy-web/disable-old"),
        ("aws-ml-bedrock/verify", "aws-ml-bedrock/disable-old"),
        ("gcp-vertex-ml/verify", "gcp-vertex-ml/disable-old"),
        ("gh-app-deployer/verify", "gh-app-deployer/delete-old"),
        ("npm-publish/verify", "npm-publish/delete-old"),
        ("npm-legacy-laptop/verify", "npm-legacy-laptop/delete-old"),
        ("hf-ml-read/verify", "hf-ml-read/revoke-old"),
        (
            "okta-web-client/okta-verify",
            "okta-web-client/okta-deactivate-old",
        ),
        ("gh-oauth-docs/github-verify", "gh-oauth-docs/manual-revoke"),
    ] {
        assert!(
            position(&events, "step_succeeded", checked)
                < position(&events, "step_started", revoked),
            "drill: {checked} before {revoked}"
        );
    }
    w.ws.rekey_seen(&["audit", "verify"], &[], &mut seen)
        .ok("audit verify");
    secrets.extend(w.known_secrets());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    w.ws.assert_no_secrets(&seen, &secrets);
}

/// An incident of the whole example (every credential exposed): each old value is revoked
/// before its new one is made, the pauses answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_example_incident_runs_for_real() {
    let w = setup().await;
    let mut seen = String::new();
    let (id, answered) = w.run("incident", &mut seen);
    assert_eq!(
        distinct(&answered),
        ANSWERED,
        "the steps a person did: {answered:?}"
    );
    // The revokes a person does come before the new values they make.
    let at = |s: &str| answered.iter().position(|a| a == s).unwrap();
    assert!(at("gh-ci-classic/capture-old") < at("gh-ci-classic/create"));
    assert!(at("gh-app-deployer/delete-old") < at("gh-app-deployer/create"));
    assert!(at("gh-oauth-docs/manual-revoke") < at("gh-oauth-docs/manual-create"));
    let mut secrets = w.assert_rotated().await;
    let events = w.ws.audit_events(Some(&id), &mut seen);
    for (revoked, minted) in [
        ("gh-secrets-writer/revoke-old", "gh-secrets-writer/create"),
        ("gh-ci-classic/revoke-old", "gh-ci-classic/create"),
        ("aws-deploy-web/disable-exposed", "aws-deploy-web/create"),
        ("aws-ml-bedrock/disable-exposed", "aws-ml-bedrock/create"),
        ("gcp-vertex-ml/disable-exposed", "gcp-vertex-ml/create"),
        ("gh-app-deployer/delete-old", "gh-app-deployer/create"),
        ("npm-publish/delete-exposed", "npm-publish/create"),
        (
            "npm-legacy-laptop/delete-exposed",
            "npm-legacy-laptop/create",
        ),
        ("hf-ml-read/revoke-old", "hf-ml-read/create"),
        (
            "okta-web-client/okta-deactivate-exposed",
            "okta-web-client/okta-create",
        ),
        ("gh-oauth-docs/manual-revoke", "gh-oauth-docs/manual-create"),
        ("pg-admin/disable-login", "pg-admin/set-password"),
        ("pg-web-app/disable-login", "pg-web-app/set-password"),
        (
            "mysql-legacy-billing/lock-account",
            "mysql-legacy-billing/set-password",
        ),
    ] {
        assert!(
            position(&events, "step_succeeded", revoked)
                < position(&events, "step_started", minted),
            "incident: {revoked} before {minted}\n{}",
            summary(&events)
        );
    }
    w.ws.rekey_seen(&["audit", "verify"], &[], &mut seen)
        .ok("audit verify");
    secrets.extend(w.known_secrets());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    w.ws.assert_no_secrets(&seen, &secrets);
}
