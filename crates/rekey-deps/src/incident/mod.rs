//! The incident flow: from an advisory (or one package version) to the services whose SBOMs or
//! lockfiles hold an affected version, the hosts those ran on and the credentials exposed there.
//!
//! [`investigate`] refreshes the index for every file the inventory names, looks up each
//! affected package, keeps the versions the advisory's rules match, maps files back to services
//! and walks the blast radius. Its [`Incident`] is what `rekey incident` prints ([`render`]) and
//! hands to the planner ([`Incident::exposed`]). [`who_uses`] and [`refresh`] are `rekey
//! who-uses` and `rekey index` on the same index.

pub mod render;

use std::collections::BTreeMap;

use rekey_spec::Inventory;
use rekey_store::Store;
use serde::Serialize;

use crate::blast::{BlastRadius, ServiceHit};
use crate::index::IndexReport;
use crate::osv::{Advisory, AdvisoryError, MatchKind};
use crate::{Ecosystem, Package};

/// What the incident is about.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The advisory id, or `ECO/NAME@VERSION` for one package version.
    pub id: String,
    pub summary: Option<String>,
    pub advisory: Advisory,
}

impl Subject {
    /// An OSV record (`--advisory`).
    pub fn from_advisory(advisory: Advisory) -> Self {
        Self {
            id: advisory.id.clone(),
            summary: advisory.summary.clone(),
            advisory,
        }
    }

    /// One package version (`--package`, `--purl`), as a one-version advisory.
    pub fn from_package(p: &Package) -> Result<Self, AdvisoryError> {
        let label = format!("{}/{}@{}", p.ecosystem, p.name, p.version);
        let json = serde_json::json!({
            "id": label,
            "affected": [{ "package": { "ecosystem": p.ecosystem.osv_name(), "name": p.name }, "versions": [p.version] }],
        });
        let advisory = crate::osv::parse_advisory(&json.to_string())?;
        Ok(Self {
            id: label,
            summary: None,
            advisory,
        })
    }
}

/// An SBOM or lockfile a service names that could not be read: whatever it holds is missing
/// from the answer, so automation must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub file: String,
    pub services: Vec<String>,
    pub error: String,
}

/// What [`investigate`] found.
#[derive(Debug)]
pub struct Incident {
    pub subject: Subject,
    /// The index refresh (its `errors` are the files in `unreadable`).
    pub index: IndexReport,
    pub blast: BlastRadius,
    /// SBOMs and lockfiles that could not be read: empty when the answer is complete.
    pub unreadable: Vec<Unreadable>,
}

impl Incident {
    /// Exposed credential id → reason path: the planner's `exposed` map (revoke first).
    pub fn exposed(&self) -> BTreeMap<String, String> {
        self.blast.exposed_map()
    }
}

/// Refreshes the index, matches the subject's affected packages against it and walks the
/// blast radius. `progress(done, total)` follows the files the refresh re-reads.
pub async fn investigate(
    store: &Store,
    inventory: &Inventory,
    subject: Subject,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> rekey_store::Result<Incident> {
    let index = refresh(store, inventory, progress).await?;
    let hits = service_hits(store, inventory, &subject.advisory).await?;
    let unreadable = unreadable(&index, inventory);
    let blast = crate::blast::blast_radius(inventory, &hits);
    Ok(Incident {
        subject,
        index,
        blast,
        unreadable,
    })
}

/// Every service built from an affected version, from the index.
async fn service_hits(
    store: &Store,
    inventory: &Inventory,
    advisory: &Advisory,
) -> rekey_store::Result<Vec<ServiceHit>> {
    let paths = sbom_paths(inventory);
    let mut hits: Vec<ServiceHit> = Vec::new();
    for affected in &advisory.affected {
        let rows = store
            .index_lookup(eco_key(affected.ecosystem), &affected.name, None)
            .await?;
        let whole = affected.match_kind() == MatchKind::WholePackage;
        for (file, version) in rows {
            if !affected.matches(&version) {
                continue;
            }
            for s in paths.get(&file).into_iter().flatten() {
                hits.push(ServiceHit {
                    service: s.clone(),
                    package: format!("{}@{version}", affected.name),
                    file: file.clone(),
                    whole_package: whole,
                });
            }
        }
    }
    Ok(hits)
}

/// The ecosystem key stored in the index (the purl type).
fn eco_key(e: Ecosystem) -> &'static str {
    e.purl_type()
}

/// Every SBOM/lockfile path the inventory names, with the services that name it.
pub fn sbom_paths(inv: &Inventory) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &inv.services {
        for p in &s.sboms {
            out.entry(p.display().to_string())
                .or_default()
                .push(s.id.clone());
        }
    }
    out
}

/// Refreshes the index for every file the inventory names (`rekey index`).
pub async fn refresh(
    store: &Store,
    inv: &Inventory,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> rekey_store::Result<IndexReport> {
    let paths: Vec<String> = sbom_paths(inv).into_keys().collect();
    crate::index::refresh(store, &paths, progress).await
}

/// The files a refresh could not read, with the services built from them.
pub fn unreadable(report: &IndexReport, inv: &Inventory) -> Vec<Unreadable> {
    let paths = sbom_paths(inv);
    report
        .errors
        .iter()
        .map(|(file, error)| Unreadable {
            file: file.clone(),
            services: paths.get(file).cloned().unwrap_or_default(),
            error: error.clone(),
        })
        .collect()
}

/// What `rekey who-uses` asks for: `ECO/NAME[@VER]` or a purl; the version is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: Option<String>,
}

impl Query {
    /// Reads `ECO/NAME[@VER]` or a purl, with or without a version.
    pub fn parse(spec: &str) -> Result<Self, AdvisoryError> {
        let parse = crate::osv::parse_package_spec;
        match parse(spec) {
            Ok(p) => Ok(Self {
                ecosystem: p.ecosystem,
                name: p.name,
                version: Some(p.version),
            }),
            // No version: parse it with a placeholder and drop it.
            Err(e) => parse(&format!("{spec}@0.0.0"))
                .map(|p| Self {
                    ecosystem: p.ecosystem,
                    name: p.name,
                    version: None,
                })
                .map_err(|_| e),
        }
    }
}

/// One service built from the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Use {
    pub service: String,
    pub version: String,
    pub file: String,
}

/// What [`who_uses`] found.
#[derive(Debug)]
pub struct Uses {
    pub index: IndexReport,
    /// By service, then version.
    pub uses: Vec<Use>,
    pub unreadable: Vec<Unreadable>,
}

/// Refreshes the index and lists the services built from the package (at the version, if the
/// query names one).
pub async fn who_uses(
    store: &Store,
    inventory: &Inventory,
    query: &Query,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> rekey_store::Result<Uses> {
    let index = refresh(store, inventory, progress).await?;
    let unreadable = unreadable(&index, inventory);
    let rows = store
        .index_lookup(
            eco_key(query.ecosystem),
            &query.name,
            query.version.as_deref(),
        )
        .await?;
    let paths = sbom_paths(inventory);
    let mut uses: Vec<Use> = Vec::new();
    for (file, v) in rows {
        for s in paths.get(&file).into_iter().flatten() {
            uses.push(Use {
                service: s.clone(),
                version: v.clone(),
                file: file.clone(),
            });
        }
    }
    uses.sort_by(|a, b| (&a.service, &a.version).cmp(&(&b.service, &b.version)));
    Ok(Uses {
        index,
        uses,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::*;

    const AXIOS: &str = include_str!("../../tests/data/osv/MAL-2026-2307_npm_axios.json");

    const INVENTORY: &str = r#"hosts:
  - id: runners
    kind: ci_runner
  - id: laptop
    kind: developer_machine
services:
  - id: web
    sboms: [web.package-lock.json]
    built_on: [runners]
  - id: api
    sboms: [api.package-lock.json]
    built_on: [laptop]
credentials:
  - id: deploy-web
    kind: aws_iam_access_key
    used_by: [web]
    present_on: [runners]
    user_name: deploy-web
    account_id: "111122223333"
    delivered_to:
      - aws_secrets_manager: { secret_id: prod/web/aws-deploy }
  - id: db-web
    kind: aws_iam_access_key
    used_by: [web]
    present_on: [laptop]
    user_name: db-web
    account_id: "111122223333"
    delivered_to:
      - aws_secrets_manager: { secret_id: prod/web/db }
"#;

    fn lock(version: &str) -> String {
        format!(
            r#"{{"name": "app", "lockfileVersion": 3, "packages": {{"": {{"name": "app"}},
            "node_modules/axios": {{"version": "{version}",
            "resolved": "https://registry.npmjs.org/axios/-/axios-{version}.tgz"}}}}}}"#
        )
    }

    /// A directory of its own with the inventory, `web` on axios 1.14.1 and `api` as given.
    fn workspace(name: &str, api_lock: &str) -> (PathBuf, Inventory) {
        let dir =
            std::env::temp_dir().join(format!("rekey-deps-incident-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("web.package-lock.json"), lock("1.14.1")).unwrap();
        std::fs::write(dir.join("api.package-lock.json"), api_lock).unwrap();
        let source = rekey_spec::SourceFile::new(dir.join("inventory.yaml"), INVENTORY);
        let inventory =
            rekey_spec::parse_inventory(&[Arc::new(source)]).unwrap_or_else(|e| panic!("{e:?}"));
        (dir, inventory)
    }

    fn with_store<T>(dir: &Path, f: impl AsyncFnOnce(&Store) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = Store::open(&dir.join("state.db").display().to_string())
                .await
                .unwrap();
            let out = f(&store).await;
            store.close().await;
            out
        })
    }

    #[test]
    fn an_advisory_exposes_what_was_present_where_it_was_built() {
        let (dir, inventory) = workspace("exposed", &lock("1.14.0"));
        let subject = Subject::from_advisory(crate::osv::parse_advisory(AXIOS).unwrap());
        let found = with_store(&dir, async |store| {
            investigate(store, &inventory, subject, &|_, _| {})
                .await
                .unwrap()
        });
        assert_eq!(found.index.files, 2);
        assert!(found.unreadable.is_empty());
        let web = dir.join("web.package-lock.json").display().to_string();
        assert_eq!(
            found.blast.services,
            [ServiceHit {
                service: "web".into(),
                package: "axios@1.14.1".into(),
                file: web,
                whole_package: false,
            }]
        );
        assert_eq!(found.blast.hosts, ["runners"]);
        assert_eq!(
            found.exposed(),
            BTreeMap::from([(
                "deploy-web".to_owned(),
                "axios@1.14.1 → service web → runner runners → credential deploy-web".to_owned()
            )])
        );
        let adjacent: Vec<&str> = found
            .blast
            .adjacent
            .iter()
            .map(|f| f.credential.as_str())
            .collect();
        assert_eq!(adjacent, ["db-web"]);

        let text = render::text(&found, true);
        assert!(
            text.starts_with(
                "rekey incident: MAL-2026-2307 (Malicious code in axios (npm)) — 1 service(s) \
                 affected, 1 host(s), 1 credential(s) exposed, 1 adjacent\n\nRules:\n  1. "
            ),
            "{text}"
        );
        assert!(
            text.contains("\nExposed, revoke first:\n  deploy-web "),
            "{text}"
        );
        // Without a plan the JSON has none; with one, it is the last key.
        let json = render::json::<()>(&found, None).unwrap();
        let keys: Vec<&str> = json
            .lines()
            .filter_map(|l| l.strip_prefix("  \"")?.split_once('"'))
            .map(|(key, _)| key)
            .collect();
        assert_eq!(
            keys,
            [
                "advisory",
                "summary",
                "services",
                "hosts",
                "exposed",
                "adjacent",
                "unreadable"
            ]
        );
        let with_plan =
            render::json(&found, Some(&serde_json::json!({"mode": "incident"}))).unwrap();
        assert!(with_plan.ends_with("\"plan\": {\n    \"mode\": \"incident\"\n  }\n}"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreadable_lockfile_is_named_with_its_services() {
        let (dir, inventory) = workspace("unreadable", "{\"lockfileVersion\": 3, \"packages\": {");
        let subject =
            Subject::from_package(&crate::osv::parse_package_spec("npm/axios@1.14.1").unwrap())
                .unwrap();
        assert_eq!(subject.id, "npm/axios@1.14.1");
        let found = with_store(&dir, async |store| {
            investigate(store, &inventory, subject, &|_, _| {})
                .await
                .unwrap()
        });
        let api = dir.join("api.package-lock.json").display().to_string();
        assert_eq!(found.unreadable.len(), 1);
        assert_eq!(found.unreadable[0].file, api);
        assert_eq!(found.unreadable[0].services, ["api"]);
        assert_eq!(found.exposed().len(), 1);
        let text = render::text(&found, false);
        assert!(
            text.starts_with(
                "INCOMPLETE: 1 SBOM/lockfile(s) could not be read; api may be affected without \
                 showing here:\n"
            ),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn who_uses_with_and_without_a_version() {
        let (dir, inventory) = workspace("who-uses", &lock("1.14.0"));
        let any = Query::parse("npm/axios").unwrap();
        assert_eq!(any.version, None);
        let exact = Query::parse("pkg:npm/axios@1.14.0").unwrap();
        assert_eq!(exact.version.as_deref(), Some("1.14.0"));
        let none = Query::parse("npm/left-pad").unwrap();
        let (all, one, nothing) = with_store(&dir, async |store| {
            let mut found = Vec::new();
            for q in [&any, &exact, &none] {
                found.push(who_uses(store, &inventory, q, &|_, _| {}).await.unwrap());
            }
            let mut found = found.into_iter();
            (
                found.next().unwrap(),
                found.next().unwrap(),
                found.next().unwrap(),
            )
        });
        let services = |u: &Uses| -> Vec<(String, String)> {
            u.uses
                .iter()
                .map(|u| (u.service.clone(), u.version.clone()))
                .collect()
        };
        assert_eq!(
            services(&all),
            [
                ("api".to_owned(), "1.14.0".to_owned()),
                ("web".to_owned(), "1.14.1".to_owned())
            ]
        );
        assert_eq!(services(&one), [("api".to_owned(), "1.14.0".to_owned())]);
        assert_eq!(
            render::who_uses_text(&nothing, &none),
            "no service uses npm/left-pad\n"
        );
        assert_eq!(
            Query::parse("axios").unwrap_err().to_string(),
            "invalid package `axios`: expected `ECOSYSTEM/NAME@VERSION`, e.g. `npm/axios@1.14.1`"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
