//! `rekey incident`, `rekey index`, `rekey who-uses`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use rekey_deps::blast::{BlastRadius, RULES, ServiceHit};
use rekey_deps::index::IndexReport;
use rekey_deps::osv::{Advisory, MatchKind};
use rekey_deps::{Ecosystem, Package};
use rekey_plan::{PlanRequest, Selection};
use rekey_spec::{Inventory, Mode};
use rekey_store::Store;
use serde::Serialize;

use super::run::{check_sim, confirm, options_from, start_run};
use super::state;
use crate::cli::{Global, IncidentArgs, IndexArgs, WhoUsesArgs};
use crate::report::{Failure, stdout_color};

/// The ecosystem key stored in the index (the purl type).
fn eco_key(e: Ecosystem) -> &'static str {
    e.purl_type()
}

/// Every SBOM/lockfile path the inventory names, with the services that name it.
fn sbom_paths(inv: &Inventory) -> BTreeMap<String, Vec<String>> {
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

/// Refreshes the index for every file the inventory names, with a progress bar on a
/// terminal when many files changed.
async fn refresh_index(
    store: &Store,
    inv: &Inventory,
    progress: bool,
) -> anyhow::Result<IndexReport> {
    let paths: Vec<String> = sbom_paths(inv).into_keys().collect();
    let bar = (progress && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| indicatif::ProgressBar::new(0));
    let report = rekey_deps::index::refresh(store, &paths, &|done, total| {
        if let Some(b) = bar.as_ref().filter(|_| total > 50) {
            b.set_length(total);
            b.set_position(done);
        }
    })
    .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(report)
}

fn print_index_errors(report: &IndexReport) {
    for (path, e) in &report.errors {
        eprintln!("warning: {path}: {e} (its packages are not in the index)");
    }
}

/// An SBOM or lockfile a service names that could not be read: whatever it holds is missing
/// from the answer, so automation must see it.
#[derive(Serialize)]
struct Unreadable {
    file: String,
    services: Vec<String>,
    error: String,
}

fn unreadable(report: &IndexReport, inv: &Inventory) -> Vec<Unreadable> {
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

/// Exit 1 when the answer may be incomplete.
fn incomplete(unreadable: &[Unreadable]) -> Result<(), Failure> {
    if unreadable.is_empty() {
        return Ok(());
    }
    Err(Failure::Exit {
        code: 1,
        message: format!(
            "error: {} SBOM/lockfile(s) could not be read: services built from them may be affected without showing here",
            unreadable.len()
        ),
    })
}

pub(crate) fn index(global: &Global, args: &IndexArgs) -> Result<(), Failure> {
    let inventory = super::load_inventory(global)?;
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let report = refresh_index(&store, &inventory, true).await?;
        store.close().await;
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
            )
            .map_err(anyhow::Error::from)?;
        } else {
            print_index_errors(&report);
            writeln!(
                out,
                "indexed {} file(s) ({} re-read), {} package(s), {} unreadable",
                report.files,
                report.reread,
                report.packages,
                report.errors.len()
            )
            .map_err(anyhow::Error::from)?;
        }
        Ok(())
    })
}

/// `ECO/NAME[@VER]` or a purl; the version is optional.
fn parse_query(spec: &str) -> Result<(Ecosystem, String, Option<String>), Failure> {
    let bad = |e: rekey_deps::osv::AdvisoryError| Failure::Exit {
        code: 2,
        message: format!("error: {e}"),
    };
    if let Ok(p) = rekey_deps::osv::parse_package_spec(spec) {
        return Ok((p.ecosystem, p.name, Some(p.version)));
    }
    // No version: parse it with a placeholder and drop it.
    let probe = format!("{spec}@0.0.0");
    match rekey_deps::osv::parse_package_spec(&probe) {
        Ok(p) => Ok((p.ecosystem, p.name, None)),
        Err(_) => Err(bad(
            rekey_deps::osv::parse_package_spec(spec).expect_err("failed above")
        )),
    }
}

#[derive(Serialize)]
struct Use {
    service: String,
    version: String,
    file: String,
}

pub(crate) fn who_uses(global: &Global, args: &WhoUsesArgs) -> Result<(), Failure> {
    let (eco, name, version) = parse_query(&args.package)?;
    let inventory = super::load_inventory(global)?;
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let report = refresh_index(&store, &inventory, true).await?;
        print_index_errors(&report);
        let unreadable = unreadable(&report, &inventory);
        let rows = store
            .index_lookup(eco_key(eco), &name, version.as_deref())
            .await
            .map_err(anyhow::Error::from)?;
        store.close().await;
        let paths = sbom_paths(&inventory);
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
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&uses).map_err(anyhow::Error::from)?
            )
            .map_err(anyhow::Error::from)?;
        } else if uses.is_empty() {
            writeln!(
                out,
                "no service uses {eco}/{name}{}",
                version.map(|v| format!("@{v}")).unwrap_or_default()
            )
            .map_err(anyhow::Error::from)?;
        } else {
            for u in &uses {
                writeln!(out, "{}  {name}@{}  {}", u.service, u.version, u.file)
                    .map_err(anyhow::Error::from)?;
            }
        }
        // The JSON stays a list of uses; the unreadable files are on stderr, and the exit
        // code says the answer may be incomplete.
        incomplete(&unreadable)
    })
}

/// What the incident is about.
struct Subject {
    id: String,
    summary: Option<String>,
    advisory: Advisory,
}

fn subject(args: &IncidentArgs) -> Result<Subject, Failure> {
    let bad = |m: String| Failure::Exit {
        code: 2,
        message: format!("error: {m}"),
    };
    if let Some(path) = &args.advisory {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let advisory = rekey_deps::osv::parse_advisory(&text)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        return Ok(Subject {
            id: advisory.id.clone(),
            summary: advisory.summary.clone(),
            advisory,
        });
    }
    let spec = args
        .package
        .as_deref()
        .or(args.purl.as_deref())
        .expect("clap requires one");
    let p: Package = if args.purl.is_some() {
        rekey_deps::osv::parse_purl(spec)
    } else {
        rekey_deps::osv::parse_package_spec(spec)
    }
    .map_err(|e| bad(e.to_string()))?;
    // A one-version advisory built from the flag.
    let label = format!("{}/{}@{}", p.ecosystem, p.name, p.version);
    let json = serde_json::json!({
        "id": label,
        "affected": [{ "package": { "ecosystem": p.ecosystem.osv_name(), "name": p.name }, "versions": [p.version] }],
    });
    let advisory =
        rekey_deps::osv::parse_advisory(&json.to_string()).map_err(|e| bad(e.to_string()))?;
    Ok(Subject {
        id: label,
        summary: None,
        advisory,
    })
}

#[derive(Serialize)]
struct Report<'a> {
    advisory: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(flatten)]
    blast: &'a BlastRadius,
    /// SBOMs and lockfiles that could not be read (always present; empty when complete).
    unreadable: &'a [Unreadable],
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a rekey_plan::Plan>,
}

pub(crate) fn incident(global: &Global, args: &IncidentArgs) -> Result<(), Failure> {
    let subject = subject(args)?;
    let (inventory, runbooks) = super::load(global)?;
    let rt = state::runtime()?;
    let (hits, index_report, store) = rt.block_on(async {
        let store = state::open_store(global).await?;
        let report = refresh_index(&store, &inventory, true).await?;
        let paths = sbom_paths(&inventory);
        let mut hits: Vec<ServiceHit> = Vec::new();
        for affected in &subject.advisory.affected {
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
        anyhow::Ok((hits, report, store))
    })?;
    print_index_errors(&index_report);
    let unreadable = unreadable(&index_report, &inventory);
    let blast = rekey_deps::blast::blast_radius(&inventory, &hits);
    let exposed = blast.exposed_map();
    let plan = if exposed.is_empty() {
        None
    } else {
        let selection = Selection {
            credentials: exposed.keys().cloned().collect(),
            ..Selection::default()
        };
        Some(
            rekey_plan::compile(&PlanRequest {
                inventory: &inventory,
                runbooks: &runbooks,
                selection: &selection,
                mode: Mode::Incident,
                exposed: Some(&exposed),
            })
            .map_err(Failure::Plan)?,
        )
    };

    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            advisory: &subject.id,
            summary: subject.summary.as_deref(),
            blast: &blast,
            unreadable: &unreadable,
            plan: plan.as_ref(),
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        )
        .map_err(anyhow::Error::from)?;
    } else {
        write!(
            out,
            "{}",
            render(&subject, &blast, &unreadable, args.explain)
        )
        .map_err(anyhow::Error::from)?;
        if let Some(plan) = &plan {
            write!(out, "\n{}", rekey_plan::render_text(plan, stdout_color()))
                .map_err(anyhow::Error::from)?;
        }
    }
    out.flush().map_err(anyhow::Error::from)?;
    drop(out);
    if !args.execute {
        rt.block_on(store.close());
        return incomplete(&unreadable);
    }
    let Some(plan) = plan else {
        rt.block_on(store.close());
        eprintln!("nothing to execute: no credential is exposed");
        return incomplete(&unreadable);
    };
    check_sim(&args.sim, false)?;
    confirm(&plan, args.yes)?;
    let reason = args.reason.clone().unwrap_or_else(|| subject.id.clone());
    let options = options_from(
        &args.sim,
        &args.retry,
        args.concurrency,
        args.per_provider,
        Some(reason),
    );
    // What is known to be exposed is revoked at once; an incomplete index still fails after.
    rt.block_on(start_run(global, store, &plan, &options, |run_id| {
        format!(
            "run {run_id}: revoke first for {} exposed credential(s)",
            plan.credentials.len()
        )
    }))?;
    incomplete(&unreadable)
}

fn render(
    subject: &Subject,
    blast: &BlastRadius,
    unreadable: &[Unreadable],
    explain: bool,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if !unreadable.is_empty() {
        // First, so that nobody reads "no credential is exposed" without it.
        let services: BTreeSet<&str> = unreadable
            .iter()
            .flat_map(|u| u.services.iter().map(String::as_str))
            .collect();
        let _ = writeln!(
            out,
            "INCOMPLETE: {} SBOM/lockfile(s) could not be read; {} may be affected without showing here:",
            unreadable.len(),
            services.into_iter().collect::<Vec<_>>().join(", ")
        );
        for u in unreadable {
            let _ = writeln!(out, "  {}: {}", u.file, u.error);
        }
        out.push('\n');
    }
    let services: BTreeSet<&str> = blast.services.iter().map(|h| h.service.as_str()).collect();
    let _ = writeln!(
        out,
        "rekey incident: {}{} — {} service(s) affected, {} host(s), {} credential(s) exposed, {} adjacent\n",
        subject.id,
        subject
            .summary
            .as_deref()
            .map(|s| format!(" ({})", s.lines().next().unwrap_or_default()))
            .unwrap_or_default(),
        services.len(),
        blast.hosts.len(),
        blast.exposed.len(),
        blast.adjacent.len()
    );
    if explain {
        out.push_str("Rules:\n");
        for r in RULES {
            let _ = writeln!(out, "  {r}");
        }
        out.push('\n');
    }
    if blast.services.is_empty() {
        out.push_str(
            "No indexed SBOM or lockfile holds an affected version: no credential is exposed.\n",
        );
        return out;
    }
    out.push_str("Affected services:\n");
    for h in &blast.services {
        let why = if h.whole_package {
            "every version is malicious"
        } else {
            "affected version"
        };
        let _ = writeln!(
            out,
            "  {:<16} {} in {} ({why})",
            h.service, h.package, h.file
        );
    }
    let _ = writeln!(
        out,
        "Hosts that ran it: {}",
        if blast.hosts.is_empty() {
            "none recorded (no built_on)".to_owned()
        } else {
            blast.hosts.join(", ")
        }
    );
    out.push_str("\nExposed, revoke first:\n");
    if blast.exposed.is_empty() {
        out.push_str("  none\n");
    }
    for f in &blast.exposed {
        let _ = writeln!(out, "  {:<22} {}", f.credential, f.path);
    }
    out.push_str("\nAdjacent, not exposed:\n");
    if blast.adjacent.is_empty() {
        out.push_str("  none\n");
    }
    for f in &blast.adjacent {
        let _ = writeln!(
            out,
            "  {:<22} {}: {}",
            f.credential, f.path, f.recommendation
        );
    }
    out
}
