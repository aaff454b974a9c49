//! `rekey discover` through the binary over fixture homes (never the real machine's): no
//! secret value reaches any output, the state folder or the written file; the same key in two
//! homes is one credential on two hosts; the written file is an inventory file `validate`
//! accepts, `lint` flags drafts of and `incident` follows.

use std::path::Path;
use std::process::Command;

use crate::harness::{Ran, Workspace, repo_root};

/// A fixture home with a secret in every place discovery reads; returns the values.
fn home_full_of_secrets(home: &Path) -> Vec<&'static str> {
    let w = |rel: &str, text: &str| {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let aws_temp = "tEmPoRaRySeCrEt/K7MDENG/bPxRfiCYEXAMPLE";
    let npm = "npm_ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210";
    let npm_legacy = "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f";
    let gh_fine = "github_pat_11AAAAAAA0123456789abc_QrStUvWxYz0123456789QrStUvWxYz0123456789QrStUvWxYz012345678";
    let gho = "gho_16C7e42F292c6912E7710c838347Ae178B4a";
    let git_cred = "ghp_GitCredentialsStoreTokenValue0123456";
    let hf = "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";
    let gcp = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n";
    let docker = "dckr_pat_DockerHubTokenValue0123456789";
    let env_secret = "sk-proj-EnvFileSecretValue0123456789";
    let pg = "Pg-Sup3r-S3cret-Passw0rd";
    let mysql = "My-Sql-S3cret-Passw0rd";
    w(
        ".aws/credentials",
        &format!(
            "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {aws}\n[temp]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\naws_secret_access_key = {aws_temp}\n"
        ),
    );
    w(
        ".aws/config",
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\n",
    );
    w(
        ".npmrc",
        &format!(
            "//registry.npmjs.org/:_authToken={npm}\n//npm.acme.dev/:_authToken={npm_legacy}\n"
        ),
    );
    w(
        ".config/gh/hosts.yml",
        &format!(
            "github.com:\n    user: acme-automation\n    oauth_token: {gh_fine}\nghe.acme.dev:\n    user: alice\n    oauth_token: {gho}\n"
        ),
    );
    w(
        ".git-credentials",
        &format!("https://alice:{git_cred}@github.com\n"),
    );
    w(".cache/huggingface/token", hf);
    w(
        ".config/gcloud/application_default_credentials.json",
        &format!(
            r#"{{"type": "service_account", "project_id": "acme-ml-prod", "private_key_id": "3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f901", "private_key": "{gcp}", "client_email": "vertex-invoker@acme-ml-prod.iam.gserviceaccount.com"}}"#
        ),
    );
    let docker_auth = base64(&format!("alice:{docker}"));
    w(
        ".docker/config.json",
        &format!(
            "{{\"auths\": {{\"https://index.docker.io/v1/\": {{\"auth\": \"{docker_auth}\"}}}}}}"
        ),
    );
    w(
        "src/app/.env",
        &format!("OPENAI_API_KEY={env_secret}\nPORT=3000\n"),
    );
    w(".pgpass", &format!("db.internal:5432:*:postgres:{pg}\n"));
    w(
        ".my.cnf",
        &format!("[client]\nuser = app\npassword = {mysql}\n"),
    );
    vec![
        aws,
        aws_temp,
        npm,
        npm_legacy,
        gh_fine,
        gho,
        git_cred,
        hf,
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
        docker,
        &docker_auth.leak()[..],
        env_secret,
        pg,
        mysql,
    ]
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `rekey discover ARGS` with `home` as HOME and nothing else of this machine's environment.
fn discover(ws: &Workspace, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = Command::new(crate::harness::REKEY);
    cmd.current_dir(ws.path())
        .env_clear()
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("REKEY_TODAY", "2026-12-07")
        .arg("discover")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn all_bytes_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            all_bytes_under(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn no_secret_reaches_any_output_the_state_or_the_written_file() {
    let ws = Workspace::example();
    let home = tempfile::tempdir().unwrap();
    let secrets = home_full_of_secrets(home.path());
    let src = home.path().join("src");
    let src = src.to_str().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAI44QH8DHBEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        ),
        ("GH_TOKEN", "ghp_EnvironmentTokenValue0123456789abcd"),
        ("HF_TOKEN", "hf_EnvTokenValueAbCdEfGhIjKlMnOpQrStUv"),
    ];
    let mut secrets = secrets;
    secrets.extend(env.iter().skip(1).map(|(_, v)| *v));

    let text = discover(
        &ws,
        home.path(),
        &["--host", "laptop-alice", "--path", src],
        &env,
    );
    let json = discover(
        &ws,
        home.path(),
        &["--host", "laptop-alice", "--path", src, "--json"],
        &env,
    );
    let write = discover(
        &ws,
        home.path(),
        &[
            "--host",
            "laptop-alice",
            "--path",
            src,
            "--write",
            "inventory/discovered-laptop-alice.yaml",
        ],
        &env,
    );
    // Unknown secrets (the .env key, the docker token, …): exit 1 every time.
    for r in [&text, &json, &write] {
        assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    }
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let finds = v["finds"].as_array().unwrap();
    let by_source = |s: &str| {
        finds
            .iter()
            .find(|f| f["source"] == s)
            .unwrap_or_else(|| panic!("no find at {s}: {}", json.stdout))
    };
    // Known by public id: the GCP key by key_id, the fine-grained PAT by its login.
    let gcp = by_source("~/.config/gcloud/application_default_credentials.json");
    assert_eq!(gcp["credential"], "gcp-vertex-ml");
    assert_eq!(gcp["matched_by"], "key_id");
    let pat = by_source("~/.config/gh/hosts.yml:3");
    assert_eq!(pat["kind"], "github_fine_grained_pat");
    assert_eq!(pat["credential"], "gh-secrets-writer");
    assert_eq!(by_source("~/.aws/credentials:3")["status"], "unknown");
    assert_eq!(by_source("~/.aws/credentials:6")["status"], "short_lived");
    assert_eq!(by_source("~/.aws/config:1")["kind"], "aws_sso_profile");
    assert_eq!(
        by_source("~/.config/gh/hosts.yml:6")["kind"],
        "github_oauth_token"
    );
    assert_eq!(by_source("~/.npmrc:2")["kind"], "npm_classic_token");
    assert_eq!(by_source("~/.pgpass:1")["kind"], "postgres_password");
    assert_eq!(by_source("~/src/app/.env:1")["kind"], "unknown");
    assert!(
        by_source("~/.npmrc:1")["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert!(
        text.stdout.contains("unknown to the inventory:"),
        "{}",
        text.stdout
    );

    // Search everything: outputs, the state folder, the written file, the whole inventory.
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, r) in [("text", &text), ("json", &json), ("write", &write)] {
        places.push((format!("{name} stdout"), r.stdout.clone().into_bytes()));
        places.push((format!("{name} stderr"), r.stderr.clone().into_bytes()));
    }
    all_bytes_under(&ws.path().join(".rekey"), &mut places);
    all_bytes_under(&ws.path().join("inventory"), &mut places);
    assert!(
        places
            .iter()
            .any(|(p, _)| p.ends_with("discovered-laptop-alice.yaml"))
    );
    for s in &secrets {
        for (place, bytes) in &places {
            let hay = String::from_utf8_lossy(bytes);
            assert!(!hay.contains(s), "{s:?} found in {place}");
        }
    }

    // The written file is an inventory file: validate accepts it, lint flags its drafts.
    let r = ws.rekey(&["validate"], &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let r = ws.rekey(&["lint", "--json"], &[]);
    let lint: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let drafts: Vec<&serde_json::Value> = lint
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "discovered-draft")
        .collect();
    assert!(!drafts.is_empty(), "{}", r.stdout);
    assert!(drafts.iter().all(|f| {
        f["file"]
            .as_str()
            .unwrap()
            .ends_with("discovered-laptop-alice.yaml")
            && f["severity"] == "warning"
    }));
    // A second run reads the first file and rewrites it; the operator's files are refused.
    let again = discover(
        &ws,
        home.path(),
        &[
            "--host",
            "laptop-alice",
            "--write",
            "inventory/discovered-laptop-alice.yaml",
        ],
        &env,
    );
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    let refused = discover(
        &ws,
        home.path(),
        &["--host", "laptop-alice", "--write", "inventory/hosts.yaml"],
        &env,
    );
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("not written by `rekey discover`"));
}

const TWO_LAPTOPS: &str = "hosts:
  - { id: laptop-a, kind: developer_machine }
  - { id: laptop-b, kind: developer_machine }
credentials:
  - id: aws-k
    kind: aws_iam_access_key
    user_name: deploy
    access_key_id: AKIAIOSFODNN7EXAMPLE
";

fn two_laptops() -> Workspace {
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(ws.path().join("inventory/inventory.yaml"), TWO_LAPTOPS).unwrap();
    ws
}

fn aws_home(secret: &str, key_id: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    home
}

#[test]
fn the_same_key_in_two_homes_is_one_credential_on_two_hosts() {
    let ws = two_laptops();
    let (a, b) = (
        aws_home(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AKIAIOSFODNN7EXAMPLE",
        ),
        aws_home(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AKIAIOSFODNN7EXAMPLE",
        ),
    );
    for (home, host) in [(&a, "laptop-a"), (&b, "laptop-b")] {
        let file = format!("inventory/discovered-{host}.yaml");
        let r = discover(&ws, home.path(), &["--host", host, "--write", &file], &[]);
        assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("→ aws-k (by access_key_id)"),
            "{}",
            r.stdout
        );
    }
    let inv = rekey_spec::load_inventory(&ws.path().join("inventory")).unwrap();
    assert_eq!(inv.credentials.len(), 1);
    assert_eq!(
        inv.credential("aws-k").unwrap().present_on,
        ["laptop-a", "laptop-b"]
    );
}

#[test]
fn an_unknown_value_on_two_hosts_is_recognised_and_a_confirmation_is_kept() {
    let ws = two_laptops();
    let secret = "AnotherSecretAccessKeyValue0123456789abc";
    let (a, b) = (
        aws_home(secret, "AKIAJJJJJJJJJJEXAMPLE"),
        aws_home(secret, "AKIAJJJJJJJJJJEXAMPLE"),
    );
    let ra = discover(
        &ws,
        a.path(),
        &[
            "--host",
            "laptop-a",
            "--write",
            "inventory/discovered-laptop-a.yaml",
        ],
        &[],
    );
    assert_eq!(ra.code, Some(1), "{}", ra.stderr);
    assert!(
        ra.stdout.contains("UNKNOWN to the inventory"),
        "{}",
        ra.stdout
    );
    // laptop-b sees the same value (same installation key): known to be on laptop-a too.
    let rb = discover(&ws, b.path(), &["--host", "laptop-b", "--json"], &[]);
    assert_eq!(rb.code, Some(1), "{}", rb.stderr);
    let v: serde_json::Value = serde_json::from_str(&rb.stdout).unwrap();
    assert_eq!(v["finds"][0]["also_on"], serde_json::json!(["laptop-a"]));
    // Someone confirms the draft: a credential for it, named in the entry.
    let mut inv = std::fs::read_to_string(ws.path().join("inventory/inventory.yaml")).unwrap();
    inv.push_str(
        "  - id: aws-forgotten\n    kind: aws_iam_access_key\n    user_name: old-deploy\n",
    );
    std::fs::write(ws.path().join("inventory/inventory.yaml"), inv).unwrap();
    let path = ws.path().join("inventory/discovered-laptop-a.yaml");
    let found = std::fs::read_to_string(&path).unwrap().replace(
        "    # draft: unknown to the inventory, awaiting review\n",
        "    credential: aws-forgotten\n",
    );
    std::fs::write(&path, found).unwrap();
    let lint = ws.rekey(&["lint"], &[]);
    assert!(!lint.stdout.contains("discovered-draft"), "{}", lint.stdout);
    // laptop-b now matches it by fingerprint; rewriting laptop-a's file keeps the confirmation.
    let rb = discover(&ws, b.path(), &["--host", "laptop-b"], &[]);
    assert_eq!(rb.code, Some(0), "{}\n{}", rb.stdout, rb.stderr);
    assert!(
        rb.stdout.contains("→ aws-forgotten (by fingerprint)"),
        "{}",
        rb.stdout
    );
    let ra = discover(
        &ws,
        a.path(),
        &[
            "--host",
            "laptop-a",
            "--write",
            "inventory/discovered-laptop-a.yaml",
        ],
        &[],
    );
    assert_eq!(ra.code, Some(0), "{}\n{}", ra.stdout, ra.stderr);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("credential: \"aws-forgotten\"")
    );
}

#[test]
fn exit_codes_and_bad_input() {
    let ws = two_laptops();
    let empty = tempfile::tempdir().unwrap();
    let r = discover(&ws, empty.path(), &["--host", "laptop-a"], &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("laptop-a: 0 find(s)"), "{}", r.stdout);
    let r = discover(
        &ws,
        empty.path(),
        &["--host", "laptop-a", "--path", "no/such/dir"],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let r = discover(&ws, empty.path(), &["--host", "bad host"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let r = discover(
        &ws,
        empty.path(),
        &["--host", "laptop-a", "--json", "--write", "x.yaml"],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    std::fs::write(ws.path().join("inventory/broken.yaml"), "hosts: 3\n").unwrap();
    let r = discover(&ws, empty.path(), &["--host", "laptop-a"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

/// The incident's question, answered by looking: laptop-alice had the GCP key only discovery
/// knew about, so the axios incident now revokes it, with the path through laptop-alice.
#[test]
fn an_incident_after_discover_names_what_only_discovery_knew() {
    let ws = Workspace::example();
    let lock = ws.path().join("inventory/sboms/web.package-lock.json");
    let mut l: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock).unwrap()).unwrap();
    l["packages"]["node_modules/axios"] = serde_json::json!({"version": "1.14.1"});
    std::fs::write(&lock, serde_json::to_string(&l).unwrap()).unwrap();
    let advisory = repo_root()
        .join("crates/rekey-deps/tests/data/osv/MAL-2026-2307_npm_axios.json")
        .display()
        .to_string();
    let exposed = |ws: &Workspace| -> Vec<String> {
        let r = ws.rekey(&["incident", "--advisory", &advisory, "--json"], &[]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["exposed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} via {}",
                    f["credential"].as_str().unwrap(),
                    f["path"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert!(!exposed(&ws).iter().any(|e| e.starts_with("gcp-vertex-ml ")));
    let home = tempfile::tempdir().unwrap();
    home_full_of_secrets(home.path());
    let r = discover(
        &ws,
        home.path(),
        &[
            "--host",
            "laptop-alice",
            "--write",
            "inventory/discovered-laptop-alice.yaml",
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let after = exposed(&ws);
    assert!(
        after.contains(&"gcp-vertex-ml via axios@1.14.1 → service web → laptop laptop-alice → credential gcp-vertex-ml".to_owned()),
        "{after:#?}"
    );
}

/// `--online`: `GET /user` and `whoami-v2` name each token's owner, which matches the
/// inventory's `github_user`/`hf_user`; a token of a GitHub Enterprise Server is asked at that
/// server's `/api/v3`; a refused token is noted; nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_identity_calls_name_the_owner() {
    use rekey_testkit::{GithubFake, HuggingfaceFake, NpmFake};
    let gh = GithubFake::start().await;
    let ghes = GithubFake::start_enterprise().await;
    let hub = HuggingfaceFake::start().await;
    let npm = NpmFake::start().await;
    npm.add_user("pkg-bot", "pw", false);
    let (_, npm_token) = npm.add_token("pkg-bot");
    let registry = npm.url();
    let nerf = registry
        .split_once(':')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_owned();
    let (pat, dead, hf) = (
        "ghp_OnlineCheckedTokenValue0123456789ab",
        "ghp_RevokedTokenValue0123456789abcdefgh",
        "hf_OnlineCheckedTokenValueAbCdEfGhIjKl",
    );
    gh.add_token(pat, "octo-bot");
    let corp = "ghp_EnterpriseServerToken0123456789abcd";
    ghes.add_token(corp, "corp-bot");
    let ghes_host = ghes
        .api_url()
        .trim_start_matches("http://")
        .trim_end_matches("/api/v3")
        .to_owned();
    hub.add_user("ml-bot", &[]);
    hub.add_token(hf, "ml-bot", "read");
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(
        ws.path().join("inventory/inventory.yaml"),
        format!("hosts:\n  - {{ id: laptop-a, kind: developer_machine }}\ncredentials:\n  - {{ id: gh-x, kind: github_classic_pat, github_user: octo-bot }}\n  - {{ id: gh-corp, kind: github_classic_pat, github_user: corp-bot }}\n  - {{ id: hf-x, kind: huggingface_token, hf_user: ml-bot }}\n  - {{ id: npm-x, kind: npm_granular_token, npm_user: pkg-bot, password_env: NPM_PW, registry: \"{registry}\" }}\n"),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".cache/huggingface")).unwrap();
    std::fs::write(home.path().join(".cache/huggingface/token"), hf).unwrap();
    std::fs::write(
        home.path().join(".git-credentials"),
        format!(
            "https://x:{pat}@github.com\nhttps://y:{dead}@github.com\nhttp://w:{corp}@{ghes_host}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join(".npmrc"),
        format!("registry={registry}\n{nerf}/:_authToken={npm_token}\n"),
    )
    .unwrap();
    let (api, endpoint) = (gh.api_url(), hub.endpoint());
    let env = [
        ("GITHUB_API_URL", api.as_str()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    // Offline: the logins in the file (`x`, `y`) are not the owners; nothing is known.
    let off = discover(&ws, home.path(), &["--host", "laptop-a", "--json"], &env);
    assert_eq!(off.code, Some(1), "{}", off.stderr);
    assert_eq!(hub.whoami_calls(), 0);
    let on = discover(
        &ws,
        home.path(),
        &["--host", "laptop-a", "--online", "--json"],
        &env,
    );
    let v: serde_json::Value = serde_json::from_str(&on.stdout).unwrap();
    let finds = v["finds"].as_array().unwrap();
    let at = |s: &str| finds.iter().find(|f| f["source"] == s).unwrap();
    assert_eq!(at("~/.cache/huggingface/token:1")["credential"], "hf-x");
    let n = at("~/.npmrc:2");
    assert_eq!(n["ids"]["owner"], "pkg-bot", "{}", on.stdout);
    assert_eq!(n["credential"], "npm-x");
    assert_eq!(at("~/.cache/huggingface/token:1")["ids"]["owner"], "ml-bot");
    // The file's login (`x`) is kept beside the owner GitHub names, which matches.
    let git = at("~/.git-credentials:1");
    assert_eq!(git["ids"]["login"], "x");
    assert_eq!(git["ids"]["owner"], "octo-bot");
    assert_eq!(git["credential"], "gh-x");
    assert_eq!(git["matched_by"], "github_user");
    let enterprise = at("~/.git-credentials:3");
    assert_eq!(enterprise["ids"]["owner"], "corp-bot", "{}", on.stdout);
    assert_eq!(enterprise["credential"], "gh-corp");
    assert!(
        at("~/.git-credentials:2")["note"]
            .as_str()
            .unwrap()
            .contains("refuses it"),
        "{}",
        on.stdout
    );
    assert_eq!(on.code, Some(1), "{}\n{}", on.stdout, on.stderr);
    // Read-only: no revoke of any kind reached either provider.
    assert!(gh.revoke_calls().is_empty());
    assert!(hub.revoke_calls().is_empty());
    assert!(hub.whoami_calls() >= 1);
    assert!(ghes.revoke_calls().is_empty());
    for s in [pat, dead, corp, hf, npm_token.as_str()] {
        assert!(!on.stdout.contains(s) && !on.stderr.contains(s));
    }
}

/// `--online` for AWS: STS `GetCallerIdentity`, signed with each key found, names its IAM
/// user, which matches an entry that names the user but no key id; a deleted key is refused
/// and noted; a second key of a user whose entry names another key stays unknown; nothing
/// is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_sts_names_the_iam_user_of_a_key() {
    use rekey_testkit::{Moto, access_keys, create_key};
    let moto = Moto::start();
    let accounts = moto.setup(&["deploy-web", "ml-bot", "old-bot"]).await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config(&accounts.admin.0, &accounts.admin.1));
    let web = accounts.keys["deploy-web"].clone();
    let managed = accounts.keys["ml-bot"].clone();
    let second = create_key(&iam, "ml-bot").await;
    let dead = accounts.keys["old-bot"].clone();
    iam.delete_access_key()
        .user_name("old-bot")
        .access_key_id(&dead.0)
        .send()
        .await
        .unwrap();
    let ws = Workspace::empty();
    std::fs::create_dir_all(ws.path().join("inventory")).unwrap();
    std::fs::write(
        ws.path().join("inventory/inventory.yaml"),
        format!("hosts:\n  - {{ id: laptop-a, kind: developer_machine }}\ncredentials:\n  - {{ id: aws-web, kind: aws_iam_access_key, user_name: deploy-web }}\n  - {{ id: aws-ml, kind: aws_iam_access_key, user_name: ml-bot, access_key_id: {} }}\n", managed.0),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[ml]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[old]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            web.0, web.1, second.0, second.1, dead.0, dead.1
        ),
    )
    .unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let keys_before = (
        access_keys(&iam, "deploy-web").await,
        access_keys(&iam, "ml-bot").await,
    );
    // Offline, no entry names the key id of `default`: unknown.
    let off = discover(&ws, home.path(), &["--host", "laptop-a", "--json"], &env);
    let v: serde_json::Value = serde_json::from_str(&off.stdout).unwrap();
    assert!(v["finds"][0]["credential"].is_null(), "{}", off.stdout);
    assert_eq!(off.code, Some(1));

    let on = discover(
        &ws,
        home.path(),
        &["--host", "laptop-a", "--online", "--json"],
        &env,
    );
    let v: serde_json::Value = serde_json::from_str(&on.stdout).unwrap();
    let finds = v["finds"].as_array().unwrap();
    let at = |profile: &str| {
        finds
            .iter()
            .find(|f| f["ids"]["profile"] == profile)
            .unwrap_or_else(|| panic!("no find of profile {profile}: {}", on.stdout))
    };
    let d = at("default");
    assert_eq!(
        d["ids"]["owner"], "arn:aws:iam::123456789012:user/deploy-web",
        "{}",
        on.stdout
    );
    assert_eq!(d["credential"], "aws-web");
    assert_eq!(d["matched_by"], "user_name");
    // ml-bot's entry names its managed key: this second key is not that credential.
    let ml = at("ml");
    assert_eq!(ml["ids"]["owner"], "arn:aws:iam::123456789012:user/ml-bot");
    assert!(ml["credential"].is_null(), "{}", on.stdout);
    assert_eq!(ml["status"], "unknown");
    let old = at("old");
    assert!(old["ids"]["owner"].is_null());
    assert!(
        old["note"].as_str().unwrap().contains("refuses it"),
        "{}",
        on.stdout
    );
    assert_eq!(on.code, Some(1), "{}", on.stderr);
    // Read-only: every key is where it was.
    assert_eq!(
        (
            access_keys(&iam, "deploy-web").await,
            access_keys(&iam, "ml-bot").await
        ),
        keys_before
    );
    for s in [&web.1, &second.1, &dead.1] {
        assert!(!on.stdout.contains(s.as_str()) && !on.stderr.contains(s.as_str()));
        assert!(!off.stdout.contains(s.as_str()) && !off.stderr.contains(s.as_str()));
    }
}
