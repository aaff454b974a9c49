//! The `PostgreSQL` backend against a real, throwaway `PostgreSQL` cluster on 127.0.0.1
//! (`rekey_testkit::PgCluster`; `./scripts/peers.sh` installs it).

use rekey_testkit::PgCluster;

use crate::harness::Workspace;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend() {
    let pg = PgCluster::start().await;
    assert!(pg.path().exists());
    crate::engine::store_conformance(&pg.admin_url()).await;

    // The binary against PostgreSQL: a simulated run, a crash, a resume, the audit chain.
    let ws = Workspace::example();
    // Fresh database: the conformance test above left its own runs and tampered row 2.
    let admin = rekey_store::Store::open(&pg.admin_url()).await.unwrap();
    admin
        .execute_raw("CREATE DATABASE rekey_cli".into())
        .await
        .unwrap();
    admin.close().await;
    let url = pg.database_url("rekey_cli");
    let env = [("REKEY_DATABASE_URL", url.as_str())];
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web,gh-secrets-writer",
        ],
        &[env[0], ("REKEY_SIM_CRASH_AT", "17")],
    );
    assert_eq!(r.code, None, "{}", r.stderr);
    let ids = ws.run_ids(&env);
    assert_eq!(ids.len(), 1);
    let busy = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
        ],
        &env,
    );
    assert_eq!(
        busy.code,
        Some(2),
        "the lock holds across processes: {}",
        busy.stderr
    );
    let r = ws.rekey(&["resume", &ids[0]], &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v = ws.rekey(&["audit", "verify"], &env);
    assert_eq!(v.code, Some(0), "{}", v.stderr);
    let s = ws.rekey(&["status", &ids[0]], &env);
    assert!(
        s.stdout.contains(&format!("run {}: succeeded", ids[0])),
        "{}",
        s.stdout
    );
    // The dependency index on PostgreSQL: bulk builds, in-place refreshes, removals.
    crate::incident::large_reindex(&ws, &env);
    let scratch = tempfile::tempdir().unwrap();
    crate::incident::concurrent_index(&url, scratch.path()).await;
}
