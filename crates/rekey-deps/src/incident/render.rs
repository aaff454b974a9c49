//! What `rekey incident` and `rekey who-uses` print: text for a person, JSON for automation.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Incident, Query, Unreadable, Uses};
use crate::blast::{BlastRadius, RULES};

/// The incident for a person: what could not be read first, then the affected services, the
/// hosts, the exposed and the adjacent credentials with their reasons; with `explain`, the
/// rules before them.
pub fn text(incident: &Incident, explain: bool) -> String {
    let (subject, blast, unreadable) = (&incident.subject, &incident.blast, &incident.unreadable);
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
        out.push_str(&rules());
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

/// The decision rules, as `--explain` prints them.
pub fn rules() -> String {
    let mut out = String::from("Rules:\n");
    for r in RULES {
        let _ = writeln!(out, "  {r}");
    }
    out.push('\n');
    out
}

#[derive(Serialize)]
struct Report<'a, P> {
    advisory: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(flatten)]
    blast: &'a BlastRadius,
    /// SBOMs and lockfiles that could not be read (always present; empty when complete).
    unreadable: &'a [Unreadable],
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a P>,
}

/// The incident as one JSON object (pretty-printed, no trailing newline): `advisory`,
/// `summary`, the blast radius's `services`, `hosts`, `exposed` and `adjacent`, `unreadable`,
/// and the revoke-first `plan` when there is one (the planner's, serialized as it is).
pub fn json<P: Serialize>(incident: &Incident, plan: Option<&P>) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Report {
        advisory: &incident.subject.id,
        summary: incident.subject.summary.as_deref(),
        blast: &incident.blast,
        unreadable: &incident.unreadable,
        plan,
    })
}

/// `rekey who-uses` for a person: one line per use, or why there is none.
pub fn who_uses_text(uses: &Uses, query: &Query) -> String {
    let name = &query.name;
    if uses.uses.is_empty() {
        return format!(
            "no service uses {}/{name}{}\n",
            query.ecosystem,
            query
                .version
                .as_ref()
                .map(|v| format!("@{v}"))
                .unwrap_or_default()
        );
    }
    let mut out = String::new();
    for u in &uses.uses {
        let _ = writeln!(out, "{}  {name}@{}  {}", u.service, u.version, u.file);
    }
    out
}

/// `rekey who-uses --json`: the list of uses (pretty-printed, no trailing newline); unreadable
/// files are not in it.
pub fn who_uses_json(uses: &Uses) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&uses.uses)
}
