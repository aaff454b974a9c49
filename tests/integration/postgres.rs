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
    // A shared database: the installation key is named, never made per directory.
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web",
        ],
        &[("REKEY_DATABASE_URL", url.as_str())],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("REKEY_FINGERPRINT_KEY_FILE"),
        "{}",
        r.stderr
    );
    assert!(!ws.path().join(".rekey/fingerprint.key").exists());
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("fingerprint.key");
    let env = [
        ("REKEY_DATABASE_URL", url.as_str()),
        ("REKEY_FINGERPRINT_KEY_FILE", key.to_str().unwrap()),
    ];
    let r = ws.rekey(
        &[
            "run",
            "--simulate",
            "--yes",
            "--credential",
            "aws-deploy-web,gh-secrets-writer",
        ],
        &[env[0], env[1], ("REKEY_SIM_CRASH_AT", "17")],
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
    // The keyed chain on PostgreSQL: the store checks it with the key; a writer who edits a
    // row and recomputes the old plain hashes is caught.
    let store = rekey_store::Store::open(&url).await.unwrap();
    let f = rekey_engine::Fingerprinter::load(&key).unwrap();
    store.set_chain_key(f.chain_key()).unwrap();
    assert!(store.verify_audit().await.unwrap().is_empty());
    let minted = store
        .audit_events(None)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.draft.fingerprint.is_some())
        .unwrap();
    assert!(
        minted
            .draft
            .fingerprint
            .unwrap()
            .contains(&format!("=hmac-sha256:{}:", f.key_id()))
    );
    store.close().await;
    // The dependency index on PostgreSQL: bulk builds, in-place refreshes, removals.
    crate::incident::large_reindex(&ws, &env);
    let scratch = tempfile::tempdir().unwrap();
    crate::incident::concurrent_index(&url, scratch.path()).await;
    crate::runs::rewrite_chain_plainly(&url, 2, "nothing to see", true).await;
    let v = ws.rekey(&["audit", "verify"], &env);
    assert_eq!(v.code, Some(1), "{}\n{}", v.stdout, v.stderr);
}
