//! `rekey incident`, `rekey index`, `rekey who-uses` on the example inventory with lockfiles
//! crafted from the real ones, and the real OSV advisories.

use std::collections::BTreeMap;

use crate::harness::{Workspace, repo_root};

fn advisory(name: &str) -> String {
    repo_root()
        .join("crates/rekey-deps/tests/data/osv")
        .join(name)
        .display()
        .to_string()
}

/// The real package-lock of the example `web` service, with `axios` added at `version`.
fn web_lock_with_axios(ws: &Workspace, version: &str) {
    let path = ws.path().join("inventory/sboms/web.package-lock.json");
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    lock["packages"]["node_modules/axios"] = serde_json::json!({
        "version": version,
        "resolved": format!("https://registry.npmjs.org/axios/-/axios-{version}.tgz"),
        "license": "MIT"
    });
    std::fs::write(&path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    // A fresh mtime is what makes the index re-read it.
}

fn json(ws: &Workspace, args: &[&str]) -> serde_json::Value {
    json_with(ws, args, &[])
}

fn json_with(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let r = ws.rekey(args, env);
    assert_eq!(
        r.code,
        Some(0),
        "rekey {}\n{}\n{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn axios_advisory_exposes_exactly_these_credentials() {
    let ws = Workspace::example();
    web_lock_with_axios(&ws, "1.14.1");
    let report = json(
        &ws,
        &[
            "incident",
            "--advisory",
            &advisory("MAL-2026-2307_npm_axios.json"),
            "--json",
        ],
    );
    assert_eq!(report["advisory"], "MAL-2026-2307");
    assert_eq!(report["services"][0]["service"], "web");
    assert_eq!(report["services"][0]["package"], "axios@1.14.1");
    assert_eq!(
        report["hosts"],
        serde_json::json!(["gha-org-runners", "laptop-alice"])
    );
    let exposed: BTreeMap<String, String> = report["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["credential"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("aws-deploy-web", "axios@1.14.1 → service web → runner gha-org-runners → credential aws-deploy-web"),
        ("aws-ml-bedrock", "axios@1.14.1 → service web → runner gha-org-runners → credential aws-ml-bedrock"),
        ("gh-app-deployer", "axios@1.14.1 → service web → runner gha-org-runners → credential gh-app-deployer"),
        ("hf-ml-read", "axios@1.14.1 → service web → runner gha-org-runners → credential hf-ml-read"),
        ("pg-web-app", "axios@1.14.1 → service web → runner gha-org-runners → credential pg-web-app"),
        ("gh-secrets-writer", "axios@1.14.1 → service web → laptop laptop-alice → credential gh-secrets-writer"),
        ("npm-legacy-laptop", "axios@1.14.1 → service web → laptop laptop-alice → credential npm-legacy-laptop"),
        ("pg-admin", "axios@1.14.1 → service web → laptop laptop-alice → credential pg-admin"),
        (
            "npm-publish",
            "axios@1.14.1 → service web → laptop laptop-alice → credential gh-secrets-writer → writes the Actions secrets of credential npm-publish",
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    assert_eq!(exposed, expected);
    let adjacent: Vec<&str> = report["adjacent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["credential"].as_str().unwrap())
        .collect();
    assert_eq!(adjacent, ["gh-oauth-docs", "okta-web-client"]);
    // The plan: incident mode, exposed credentials only, each revoke first with its path.
    let plan = &report["plan"];
    assert_eq!(plan["mode"], "incident");
    let planned: Vec<&str> = plan["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(planned.len(), expected.len());
    for c in plan["credentials"].as_array().unwrap() {
        assert_eq!(c["strategy"], "revoke_first");
        let id = c["id"].as_str().unwrap();
        assert_eq!(
            c["reason"],
            format!("incident: exposed via {}", expected[id])
        );
    }
}

#[test]
fn an_unaffected_version_is_not_a_hit() {
    let ws = Workspace::example();
    web_lock_with_axios(&ws, "1.14.0");
    let report = json(
        &ws,
        &[
            "incident",
            "--advisory",
            &advisory("MAL-2026-2307_npm_axios.json"),
            "--json",
        ],
    );
    assert_eq!(report["services"], serde_json::json!([]));
    assert_eq!(report["exposed"], serde_json::json!([]));
    assert!(report.get("plan").is_none());
    let r = ws.rekey(&["incident", "--package", "npm/axios@1.14.1"], &[]);
    assert_eq!(r.code, Some(0));
    assert!(
        r.stdout.contains("no credential is exposed"),
        "{}",
        r.stdout
    );
    // The same lockfile, now with the bad version: the index notices the change.
    web_lock_with_axios(&ws, "1.14.1");
    let r = ws.rekey(
        &["incident", "--purl", "pkg:npm/axios@1.14.1", "--explain"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("9 credential(s) exposed"), "{}", r.stdout);
    assert!(
        r.stdout.contains("3. A credential present on such a host"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("rekey plan: mode incident"),
        "{}",
        r.stdout
    );
}

#[test]
fn who_uses_and_index_report_bad_files_without_stopping() {
    let ws = Workspace::example();
    web_lock_with_axios(&ws, "1.14.1");
    std::fs::write(
        ws.path().join("inventory/sboms/edge-router.Cargo.lock"),
        "this is not a lockfile\n",
    )
    .unwrap();
    let r = ws.rekey(&["index"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("inventory/sboms/edge-router.Cargo.lock:")
            && r.stderr.contains("not a recognized"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("indexed 3 file(s) (3 re-read)") && r.stdout.contains("1 unreadable"),
        "{}",
        r.stdout
    );
    // Nothing changed: nothing is re-read.
    let r = ws.rekey(&["index"], &[]);
    assert!(
        r.stdout.contains("(0 re-read)") || r.stdout.contains("(1 re-read)"),
        "{}",
        r.stdout
    );
    // The answer is given, but it may be incomplete: exit 1, the unreadable file on stderr.
    let r = ws.rekey(&["who-uses", "npm/axios", "--json"], &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 SBOM/lockfile(s) could not be read"),
        "{}",
        r.stderr
    );
    let uses: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        uses,
        serde_json::json!([{ "service": "web", "version": "1.14.1", "file": "inventory/sboms/web.package-lock.json" }])
    );
    let r = ws.rekey(&["who-uses", "pkg:npm/axios@1.14.0", "--json"], &[]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(),
        serde_json::json!([])
    );
    let r = ws.rekey(&["who-uses", "npm"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[test]
fn bad_advisory_is_bad_input() {
    let ws = Workspace::example();
    std::fs::write(
        ws.path().join("bad.json"),
        "{\"id\": \"MAL-1\", \"affected\": [\n  {\"package\": {\"name\": \"x\"}}]}",
    )
    .unwrap();
    let r = ws.rekey(&["incident", "--advisory", "bad.json"], &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.json") && r.stderr.contains("missing `ecosystem`"),
        "{}",
        r.stderr
    );
    let r = ws.rekey(&["incident"], &[]);
    assert_eq!(r.code, Some(2));
}

#[test]
fn incident_execute_runs_revoke_first_with_the_advisory_as_reason() {
    let ws = Workspace::example();
    web_lock_with_axios(&ws, "1.14.1");
    let r = ws.rekey(
        &[
            "incident",
            "--advisory",
            &advisory("MAL-2026-2307_npm_axios.json"),
            "--execute",
            "--yes",
            "--simulate",
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let r = ws.rekey(&["audit", "export"], &[]);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().all(|e| e["reason"] == "MAL-2026-2307"));
    // Revoke first: the exposed AWS key is disabled before the new one is created.
    let pos = |step: &str, event: &str| {
        events
            .iter()
            .position(|e| e["step"] == step && e["event"] == event)
            .unwrap()
    };
    assert!(
        pos("aws-deploy-web/disable-exposed", "step_succeeded")
            < pos("aws-deploy-web/create", "step_started")
    );
}

#[test]
fn a_large_reindex_takes_the_bulk_path_and_stays_exact() {
    large_reindex(&Workspace::example(), &[]);
}

/// 1,000 files indexed in bulk, then all changed and indexed in bulk again over the old rows;
/// then one file changed (the incremental path), one removed. Every lookup stays exact.
/// `env` selects the state database.
pub(crate) fn large_reindex(ws: &Workspace, env: &[(&str, &str)]) {
    let dir = ws.path().join("many");
    std::fs::create_dir_all(ws.path().join("many/sboms")).unwrap();
    let files: Vec<String> = (0..1000).map(|i| format!("sboms/r{i}.txt")).collect();
    let inv = format!(
        "hosts:\n  - id: ci\n    kind: ci_runner\nservices:\n  - id: api\n    built_on: [ci]\n    sboms: [{}]\n",
        files.join(", ")
    );
    std::fs::write(dir.join("inv.yaml"), inv).unwrap();
    let write_all = |shift: usize| {
        for (i, f) in files.iter().enumerate() {
            std::fs::write(
                dir.join(f),
                format!(
                    "# pinned\nlitellm==1.82.{}\nrequests==2.32.3\n",
                    (i + shift) % 10
                ),
            )
            .unwrap();
        }
    };
    write_all(0);
    let r = ws.rekey(&["--inventory", "many", "index"], env);
    assert!(
        r.stdout
            .contains("indexed 1000 file(s) (1000 re-read), 2000 package(s), 0 unreadable"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let uses = json_with(
        ws,
        &[
            "--inventory",
            "many",
            "who-uses",
            "pypi/LiteLLM@1.82.7",
            "--json",
        ],
        env,
    );
    assert_eq!(uses.as_array().unwrap().len(), 100);
    assert!(
        uses.as_array()
            .unwrap()
            .iter()
            .all(|u| u["version"] == "1.82.7")
    );
    // Every file changes: bulk again, on top of an index that already holds rows.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_all(3);
    let r = ws.rekey(&["--inventory", "many", "index"], env);
    assert!(
        r.stdout.contains("(1000 re-read), 2000 package(s)"),
        "{}",
        r.stdout
    );
    let uses = json_with(
        ws,
        &[
            "--inventory",
            "many",
            "who-uses",
            "pypi/litellm@1.82.7",
            "--json",
        ],
        env,
    );
    let files_hit: std::collections::BTreeSet<&str> = uses
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["file"].as_str().unwrap())
        .collect();
    assert_eq!(files_hit.len(), 100, "no stale or duplicate rows");
    assert!(files_hit.contains("many/sboms/r4.txt"), "{files_hit:?}");
    // One file changes (a small refresh replaces its rows in place), one leaves the inventory.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.join("sboms/r4.txt"), "litellm==1.82.8\n").unwrap();
    let inv = std::fs::read_to_string(dir.join("inv.yaml")).unwrap();
    std::fs::write(dir.join("inv.yaml"), inv.replace("sboms/r5.txt, ", "")).unwrap();
    let r = ws.rekey(&["--inventory", "many", "index"], env);
    assert!(
        r.stdout
            .contains("indexed 999 file(s) (1 re-read), 1997 package(s)"),
        "{}",
        r.stdout
    );
    let uses = json_with(
        ws,
        &["--inventory", "many", "who-uses", "pypi/litellm", "--json"],
        env,
    );
    let versions: BTreeMap<&str, &str> = uses
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["file"].as_str().unwrap(), u["version"].as_str().unwrap()))
        .collect();
    assert_eq!(versions.len(), 999, "one row per file, none for r5");
    assert_eq!(versions["many/sboms/r4.txt"], "1.82.8");
    assert!(!versions.contains_key("many/sboms/r5.txt"));
    assert_eq!(versions["many/sboms/r6.txt"], "1.82.9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_indexers_at_once_both_finish_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("state.db").display().to_string();
    concurrent_index(&url, dir.path()).await;
}

/// Two processes (two stores on one database) build the same large index at once — say two
/// responders run `rekey incident` on a fresh database: both finish, and every file holds
/// exactly its own packages.
pub(crate) async fn concurrent_index(url: &str, dir: &std::path::Path) {
    let paths: Vec<String> = (0..1200)
        .map(|i| {
            let p = dir.join(format!("req{i}.txt"));
            std::fs::write(
                &p,
                format!("litellm==1.82.{}\nrequests==2.32.{}\n", i % 10, i % 3),
            )
            .unwrap();
            p.display().to_string()
        })
        .collect();
    let a = rekey_store::Store::open(url).await.unwrap();
    let b = rekey_store::Store::open(url).await.unwrap();
    let (ra, rb) = tokio::join!(
        rekey_deps::index::refresh(&a, &paths, &|_, _| {}),
        rekey_deps::index::refresh(&b, &paths, &|_, _| {}),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.errors.is_empty() && rb.errors.is_empty());
    let hits = a
        .index_lookup("pypi", "litellm", Some("1.82.7"))
        .await
        .unwrap();
    assert_eq!(hits.len(), 120, "one row per file, no duplicates");
    let all = a.index_lookup("pypi", "requests", None).await.unwrap();
    assert_eq!(all.len(), 1200);
    a.close().await;
    b.close().await;
}

/// A pipeline must not read "nothing exposed" when a lockfile was skipped (issue #9, item 16):
/// the JSON lists the unreadable files with their errors and services, the human output says
/// so first, and `incident` exits 1.
#[test]
fn an_unreadable_sbom_is_in_the_json_and_fails_the_incident() {
    let ws = Workspace::example();
    web_lock_with_axios(&ws, "1.14.1");
    std::fs::write(
        ws.path().join("inventory/sboms/edge-router.Cargo.lock"),
        "this is not a lockfile\n",
    )
    .unwrap();
    let args = [
        "incident",
        "--advisory",
        &advisory("MAL-2026-2307_npm_axios.json"),
        "--json",
    ];
    let r = ws.rekey(&args, &[]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let unreadable = report["unreadable"]
        .as_array()
        .expect("an `unreadable` list");
    assert_eq!(unreadable.len(), 1, "{report:#}");
    assert_eq!(
        unreadable[0]["file"],
        "inventory/sboms/edge-router.Cargo.lock"
    );
    assert_eq!(
        unreadable[0]["services"],
        serde_json::json!(["edge-router"])
    );
    assert!(
        unreadable[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a recognized"),
        "{report:#}"
    );
    // What could be read is still reported.
    assert_eq!(report["services"][0]["service"], "web");
    // The human output says so in its first line.
    let r = ws.rekey(&args[..3], &[]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("1 SBOM/lockfile(s) could not be read"),
        "{}",
        r.stdout
    );
    // Once readable again: exit 0 and an empty list.
    std::fs::copy(
        repo_root().join("inventory/sboms/edge-router.Cargo.lock"),
        ws.path().join("inventory/sboms/edge-router.Cargo.lock"),
    )
    .unwrap();
    let report = json(&ws, &args);
    assert_eq!(report["unreadable"], serde_json::json!([]));
}

#[test]
fn rows_the_database_refuses_make_one_file_unreadable_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("state.db").display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(refused_rows(&url, dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_database_refuses_make_one_file_unreadable_on_postgres() {
    let pg = rekey_testkit::PgCluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    refused_rows(&pg.admin_url(), dir.path()).await;
}

/// A NUL in a package name or a version, an over-long name, a NUL in the path itself: each
/// such file is recorded as unreadable with a reason, and the refresh goes on with the others.
async fn refused_rows(url: &str, dir: &std::path::Path) {
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let lock = |name: &str, version: &str| {
        serde_json::json!({
            "name": "x", "lockfileVersion": 3,
            "packages": { "": { "name": "x" }, format!("node_modules/{name}"): { "version": version } }
        })
        .to_string()
    };
    let good = write("good.txt", "requests==2.32.3\n");
    let nul_name = write("nul-name.json", &lock("a\u{0}b", "1.0.0"));
    let nul_version = write("nul-version.json", &lock("ab", "1.0.0-a\u{0}b"));
    let long_name = write("long-name.json", &lock(&"a".repeat(20_000), "1.0.0"));
    let long_version = write(
        "long-version.json",
        &lock("ab", &format!("1.0.0-{}", "a".repeat(20_000))),
    );
    let also_good = write("zz-good.txt", "litellm==1.82.7\n");
    let nul_path = dir.join("no\u{0}such.txt").display().to_string();
    let paths = vec![
        good.clone(),
        nul_name.clone(),
        nul_version.clone(),
        long_name.clone(),
        long_version.clone(),
        nul_path.clone(),
        also_good.clone(),
    ];
    let store = rekey_store::Store::open(url).await.unwrap();
    for round in 0..2 {
        let report = rekey_deps::index::refresh(&store, &paths, &|_, _| {})
            .await
            .unwrap_or_else(|e| panic!("round {round}: the refresh stopped: {e}"));
        let bad: BTreeMap<&str, &str> = report
            .errors
            .iter()
            .map(|(p, e)| (p.as_str(), e.as_str()))
            .collect();
        for p in [
            &nul_name,
            &nul_version,
            &long_name,
            &long_version,
            &nul_path,
        ] {
            assert!(
                bad.contains_key(p.as_str()),
                "round {round}: {p:?} not reported: {bad:#?}"
            );
        }
        assert_eq!(bad.len(), 5, "round {round}: {bad:#?}");
        assert!(bad[nul_name.as_str()].contains("NUL"), "{bad:#?}");
        assert!(bad[long_name.as_str()].contains("long"), "{bad:#?}");
        assert_eq!(report.packages, 2, "round {round}");
        assert_eq!(
            store.index_lookup("pypi", "requests", None).await.unwrap(),
            [(good.clone(), "2.32.3".to_owned())]
        );
        assert_eq!(
            store.index_lookup("pypi", "litellm", None).await.unwrap(),
            [(also_good.clone(), "1.82.7".to_owned())]
        );
    }
    store.close().await;
}

/// The bundled example as it is, with the advisories README points at: a copy of the example
/// inventory and of `examples/advisories/`, laid out as at the repository's root.
fn example_with_advisories() -> Workspace {
    let ws = Workspace::example();
    let dst = ws.path().join("examples/advisories");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(repo_root().join("examples/advisories")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    ws
}

/// Issue #14, item 1: README's main command ("Two commands"), exactly as written, on the bundled
/// example answers with a non-empty incident — the affected service, the hosts, exposed
/// credentials with their reason paths, the revoke-first plan — and executes nothing.
#[test]
fn readme_main_command_shows_an_incident_on_the_bundled_example() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Two commands"))
        .expect("README.md has a `## Two commands` section");
    let command = section
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("a `cargo run --release -- …` command in README's `Two commands`");
    assert_eq!(
        command,
        "cargo run --release -- incident --advisory examples/advisories/MAL-2026-2307.json",
        "README's main command changed: this test runs it"
    );
    let args: Vec<&str> = command["cargo run --release -- ".len()..]
        .split_whitespace()
        .collect();

    let ws = example_with_advisories();
    let r = ws.rekey(&args, &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let out = &r.stdout;
    let has = |s: &str| assert!(out.contains(s), "no {s:?} in:\n{out}");
    has(
        "rekey incident: MAL-2026-2307 (Malicious code in axios (npm)) — 1 service(s) affected, 2 host(s), 9 credential(s) exposed, 2 adjacent",
    );
    has(
        "  web              axios@1.14.1 in inventory/sboms/web.package-lock.json (affected version)",
    );
    has("Hosts that ran it: gha-org-runners, laptop-alice");
    has("Exposed, revoke first:\n");
    has(
        "  aws-deploy-web         axios@1.14.1 → service web → runner gha-org-runners → credential aws-deploy-web\n",
    );
    has(
        "  gh-secrets-writer      axios@1.14.1 → service web → laptop laptop-alice → credential gh-secrets-writer\n",
    );
    has("Adjacent, not exposed:\n  gh-oauth-docs ");
    // The revoke-first plan: the exposed key is disabled before its replacement is created.
    has("rekey plan: mode incident, 9 credential(s)");
    let plan = &out[out
        .find("\n# aws-deploy-web ")
        .expect("aws-deploy-web in the plan")..];
    assert!(
        plan.contains(
            "revoke first: incident: exposed via axios@1.14.1 → service web → runner gha-org-runners → credential aws-deploy-web"
        ),
        "{plan}"
    );
    let disable = plan.find("disable-exposed").unwrap();
    let create = plan.find(" create ").unwrap();
    assert!(disable < create, "{plan}");
    has("Plan: 9 credential(s): 9 revoke first, 0 rotate first;");

    // README's excerpt of the answer is what the command prints (`…` stands for lines left out).
    let excerpt = section
        .split("```text\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("README's `Two commands` shows the answer in a ```text block");
    let printed: Vec<&str> = out.lines().collect();
    for line in excerpt.lines() {
        if line.trim() == "…" {
            continue;
        }
        assert!(
            printed.contains(&line),
            "README's excerpt has a line the command does not print:\n{line}\n--- printed\n{out}"
        );
    }

    // Nothing was executed: no run, no audit event, no simulated provider.
    assert_eq!(ws.run_ids(&[]), Vec::<String>::new());
    let r = ws.rekey(&["audit", "export"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "", "audit events after a dry run");
    assert!(!ws.path().join(".rekey/sim-ledger.db").exists());
}

/// The example's other compromised lockfile: litellm 1.82.7 in `ml-gateway`'s uv.lock, built on
/// the org runners and Bob's laptop.
#[test]
fn litellm_advisory_exposes_the_ml_gateway_credentials() {
    let ws = example_with_advisories();
    let report = json(
        &ws,
        &[
            "incident",
            "--advisory",
            "examples/advisories/MAL-2026-2144.json",
            "--json",
        ],
    );
    assert_eq!(report["advisory"], "MAL-2026-2144");
    assert_eq!(
        report["services"],
        serde_json::json!([{
            "service": "ml-gateway",
            "package": "litellm@1.82.7",
            "file": "inventory/sboms/ml-gateway.uv.lock",
            "whole_package": false
        }])
    );
    assert_eq!(
        report["hosts"],
        serde_json::json!(["gha-org-runners", "laptop-bob"])
    );
    let ids = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["credential"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ids("exposed"),
        [
            "aws-deploy-web",
            "aws-ml-bedrock",
            "gcp-vertex-ml",
            "gh-app-deployer",
            "hf-ml-read",
            "pg-web-app"
        ]
    );
    assert_eq!(
        ids("adjacent"),
        ["auth0-ml-admin", "gh-secrets-writer", "pg-admin"]
    );
    let gcp = report["exposed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["credential"] == "gcp-vertex-ml")
        .unwrap();
    assert_eq!(
        gcp["path"],
        "litellm@1.82.7 → service ml-gateway → laptop laptop-bob → credential gcp-vertex-ml"
    );
    assert_eq!(report["plan"]["credentials"].as_array().unwrap().len(), 6);
}
