//! End-to-end rotation throughput against real servers on 127.0.0.1: 200 IAM access keys, each
//! delivered to its Secrets Manager secret, against moto (signature checks on); then 100
//! `PostgreSQL` roles, each delivered to an env file. The `rekey` binary at its default
//! concurrency, from `rekey run` to exit. Prints credentials per minute (the product's target:
//! 1,000 credentials end to end in ≤ 5 minutes, i.e. ≥ 200 per minute).
//!
//! ```text
//! ./scripts/peers.sh                      # moto, PostgreSQL
//! cargo bench -p rekey --bench providers
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rekey_testkit::{Moto, PgCluster};

/// `REKEY_BENCH_SMOKE=1` (what `scripts/test` sets, with `cargo test --benches`): one short
/// pass over small inputs, so a bench that no longer runs fails the test run.
fn scale(full: usize, smoke: usize) -> usize {
    if std::env::var_os("REKEY_BENCH_SMOKE").is_some() {
        smoke
    } else {
        full
    }
}

/// Runs `rekey` in `dir` with only `env` from the test's side; returns the seconds it took.
fn rekey(dir: &Path, args: &[&str], env: &[(&str, String)]) -> f64 {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rekey"))
        .current_dir(dir)
        .args(args)
        .env_remove("REKEY_INVENTORY")
        .env_remove("REKEY_RUNBOOKS")
        .env_remove("REKEY_DATABASE_URL")
        .env_remove("REKEY_SIM_CRASH_AT")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "rekey {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn inventory(dir: &Path, credentials: &str) {
    std::fs::create_dir_all(dir.join("inventory")).unwrap();
    std::fs::write(
        dir.join("inventory/bench.yaml"),
        format!(
            "hosts:\n  - id: ci\n    kind: ci_runner\nservices:\n  - id: app\n    owner: team\n    built_on: [ci]\ncredentials:\n{credentials}"
        ),
    )
    .unwrap();
}

#[allow(clippy::cast_precision_loss)]
fn report(what: &str, n: usize, secs: f64) {
    println!(
        "providers/{what}: {n} credentials in {secs:.1} s = {:.0} credentials/min",
        n as f64 * 60.0 / secs
    );
}

async fn aws() {
    let iam_keys = scale(200, 4);
    let moto = Moto::start();
    let users: Vec<String> = (0..iam_keys).map(|i| format!("svc{i:03}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let accounts = moto.setup(&names).await;
    let config = moto.sdk_config(&accounts.admin.0, &accounts.admin.1);
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let mut creds = String::new();
    for user in &users {
        let (id, secret) = &accounts.keys[user];
        sm.create_secret()
            .name(format!("prod/{user}"))
            .secret_string(
                serde_json::json!({ "AccessKeyId": id, "SecretAccessKey": secret }).to_string(),
            )
            .send()
            .await
            .unwrap();
        let _ = write!(
            creds,
            "  - id: aws-{user}\n    kind: aws_iam_access_key\n    owner: team\n    used_by: [app]\n    present_on: [ci]\n    user_name: {user}\n    access_key_id: {id}\n    delivered_to:\n      - aws_secrets_manager: {{ secret_id: prod/{user} }}\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path(), &creds);
    let env = moto.client_env(&accounts.admin, &dir.path().join("no-aws-config"));
    let secs = rekey(dir.path(), &["run", "--yes", "--reason", "BENCH-AWS"], &env);
    // Spot checks: the rotation really happened.
    for user in [&users[0], &users[iam_keys - 1]] {
        let keys = iam.list_access_keys().user_name(user).send().await.unwrap();
        let keys = keys.access_key_metadata();
        assert_eq!(keys.len(), 1, "{user}: {keys:?}");
        assert_ne!(
            keys[0].access_key_id(),
            Some(accounts.keys[user].0.as_str())
        );
    }
    report("aws-iam+secretsmanager (moto)", iam_keys, secs);
}

async fn postgres() {
    let pg_roles = scale(100, 4);
    let pg = PgCluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut admin = pg.admin().await;
    let mut creds = String::new();
    for i in 0..pg_roles {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE app{i:03} LOGIN PASSWORD 'old-password-{i}'"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        let env_file = dir.path().join(format!("etc/app{i:03}.env"));
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(&env_file, "").unwrap();
        let _ = write!(
            creds,
            "  - id: pg-app{i:03}\n    kind: postgres_password\n    owner: team\n    used_by: [app]\n    present_on: [ci]\n    role: app{i:03}\n    database: postgres\n    admin_url_env: PG_ADMIN_URL\n    delivered_to:\n      - env_file: {{ path: {}, key: PGPASSWORD, field: password }}\n",
            env_file.display()
        );
    }
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    inventory(dir.path(), &creds);
    let env = [("PG_ADMIN_URL", pg.admin_url())];
    let secs = rekey(dir.path(), &["run", "--yes", "--reason", "BENCH-PG"], &env);
    assert!(pg.login("app000", "old-password-0").await.is_err());
    report("postgres (PostgreSQL 15)", pg_roles, secs);
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one of the two.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if only.as_deref().is_none_or(|f| "aws".contains(f)) {
            aws().await;
        }
        if only.as_deref().is_none_or(|f| "postgres".contains(f)) {
            postgres().await;
        }
    });
}
