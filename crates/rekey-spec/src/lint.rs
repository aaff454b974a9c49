//! `rekey lint`: what in an inventory will hurt during an incident, found before one. Each
//! finding has a stable rule id, a severity, the credential, service or host it is about, and
//! the `file:line:column` of its entry. Most rules read the inventory alone; `never-drilled`
//! and `last-drill-failed` also read the rotation history of the state database.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::Serialize;

use crate::diag::Location;
use crate::inventory::{Credential, Inventory, Registry, same_package};
use crate::kind::{CredentialKind, HostKind};

/// How bad a finding is: an error makes `rekey lint` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Note => "note",
        }
    }
}

/// A rule: its id, severity and what it is about (for `--format sarif`'s rule list).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "legacy-kind",
        severity: Severity::Warning,
        summary: "a legacy credential kind is still in use",
    },
    Rule {
        id: "overdue",
        severity: Severity::Warning,
        summary: "older than its rotation policy allows",
    },
    Rule {
        id: "no-policy",
        severity: Severity::Note,
        summary: "no rotation policy (policy.max_age_days)",
    },
    Rule {
        id: "no-consumers",
        severity: Severity::Warning,
        summary: "no consumers: a new value would go nowhere",
    },
    Rule {
        id: "no-exposure",
        severity: Severity::Note,
        summary: "present on no host: an incident can never find it",
    },
    Rule {
        id: "developer-machine",
        severity: Severity::Warning,
        summary: "present on a developer machine, where malicious packages run first",
    },
    Rule {
        id: "no-headroom",
        severity: Severity::Error,
        summary: "no room for a second value during a rotation",
    },
    Rule {
        id: "helper-more-exposed",
        severity: Severity::Warning,
        summary: "a rotate_with helper is present on hosts the credentials it rotates are not",
    },
    Rule {
        id: "service-without-sbom",
        severity: Severity::Warning,
        summary: "a service with no SBOM or lockfile: incidents cannot see it",
    },
    Rule {
        id: "npm-token-outranks-trusted-publishing",
        severity: Severity::Error,
        summary: "an npm token can publish a package that is published through trusted publishing (OIDC), so a leaked token publishes it without provenance",
    },
    Rule {
        id: "discovered-draft",
        severity: Severity::Warning,
        summary: "`rekey discover` found a credential the inventory does not know: a draft awaiting review",
    },
    Rule {
        id: "never-drilled",
        severity: Severity::Note,
        summary: "never rotated by rekey: its runbook has never been tried",
    },
    Rule {
        id: "last-drill-failed",
        severity: Severity::Warning,
        summary: "the most recent rotation did not end rotated",
    },
];

/// What the state database knows of a credential's rotations, by credential id: the input of
/// `never-drilled` and `last-drill-failed`. Simulated runs count (they tried the plan and the
/// runbook, not the provider); `simulated` says which the latest was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillRecord {
    /// When a run last rotated it.
    pub last_success: Option<jiff::Timestamp>,
    /// How its most recent run ended for it: `rotated`, `rolled_back`, `needs_operator` or
    /// `undo_failed`.
    pub last_outcome: String,
    /// That run's id.
    pub last_run: String,
    /// Whether that run was simulated.
    pub simulated: bool,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// The credential, service or host.
    pub id: String,
    pub location: Location,
    pub message: String,
}

fn rule(id: &str) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).expect("a known rule")
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, rule_id: &str, id: &str, location: &Location, message: String) {
        let r = rule(rule_id);
        self.0.push(Finding {
            rule: r.id,
            severity: r.severity,
            id: id.to_owned(),
            location: location.clone(),
            message,
        });
    }
}

/// Every finding for `inv` as of `today`, given each credential's rotation `history` (by
/// credential id; empty: nothing was ever rotated), sorted by location.
pub fn lint(inv: &Inventory, today: Date, history: &BTreeMap<String, DrillRecord>) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    for c in &inv.credentials {
        credential(inv, c, today, &mut f);
        drills(c, history.get(&c.id), &mut f);
    }
    headroom(inv, &mut f);
    trusted_publishing(inv, &mut f);
    for d in inv.discovered.iter().filter(|d| d.is_draft()) {
        let ids: Vec<String> = d.ids.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let ids = if ids.is_empty() {
            String::new()
        } else {
            format!(" ({})", ids.join(", "))
        };
        f.push(
            "discovered-draft",
            &d.host,
            &d.location,
            format!(
                "`rekey discover` found a {} on {} at {}{ids} that the inventory does not know: add a credential for it and name it in this entry's `credential:` (or remove the value from the host and the entry)",
                d.kind, d.host, d.source
            ),
        );
    }
    for s in &inv.services {
        if s.sboms.is_empty() {
            f.push(
                "service-without-sbom",
                &s.id,
                &s.location,
                format!(
                    "service {} lists no SBOM or lockfile: `rekey incident` cannot tell whether a compromised package reached it; add its `sboms:`",
                    s.id
                ),
            );
        }
    }
    // By place; at one place, the worst first.
    f.0.sort_by(|a, b| {
        (
            a.location.file.path(),
            a.location.line,
            a.location.column,
            a.severity,
        )
            .cmp(&(
                b.location.file.path(),
                b.location.line,
                b.location.column,
                b.severity,
            ))
    });
    f.0
}

fn credential(inv: &Inventory, c: &Credential, today: Date, f: &mut Findings) {
    let at = &c.location;
    match c.kind {
        CredentialKind::NpmClassicToken => f.push(
            "legacy-kind",
            &c.id,
            at,
            format!(
                "{} is an npm classic token: npm revoked them on the public registry on 2025-12-09, so one still listed is dead or lives on a private registry; move to a granular token limited to its packages, or to trusted publishing (OIDC)",
                c.id
            ),
        ),
        CredentialKind::GithubClassicPat => f.push(
            "legacy-kind",
            &c.id,
            at,
            format!(
                "{} is a GitHub classic PAT (every repository its user can reach); move to a fine-grained PAT or a GitHub App installation",
                c.id
            ),
        ),
        _ => {}
    }
    match c.policy {
        None => f.push(
            "no-policy",
            &c.id,
            at,
            format!(
                "{} has no rotation policy: add `policy: {{ max_age_days: N }}` so drills find it when due",
                c.id
            ),
        ),
        Some(p) if c.is_due(today) => {
            let age = c.age_days(today).map_or_else(
                || "has no recorded rotation".to_owned(),
                |d| format!("was last rotated {d} days ago"),
            );
            f.push(
                "overdue",
                &c.id,
                at,
                format!(
                    "{} {age}; its policy allows {} days",
                    c.id, p.max_age_days
                ),
            );
        }
        Some(_) => {}
    }
    if c.delivered_to.is_empty() {
        f.push(
            "no-consumers",
            &c.id,
            at,
            format!(
                "{} is delivered nowhere (`delivered_to` is empty): a rotation would mint a value no one receives",
                c.id
            ),
        );
    }
    if c.present_on.is_empty() {
        f.push(
            "no-exposure",
            &c.id,
            at,
            format!(
                "{} is present on no host (`present_on` is empty): an incident on a compromised host can never find it",
                c.id
            ),
        );
    }
    for (h, hat) in c.present_on.iter().zip(&c.reference_locations.present_on) {
        if inv
            .host(h)
            .is_some_and(|h| h.kind == HostKind::DeveloperMachine)
        {
            f.push(
                "developer-machine",
                &c.id,
                hat,
                format!(
                    "{} is present on {h}, a developer machine, where a malicious package runs first: keep it in CI or a secret store",
                    c.id
                ),
            );
        }
    }
    if let Some(helper) = c.rotate_with.as_deref().and_then(|h| inv.credential(h)) {
        let mine: BTreeSet<&str> = c.present_on.iter().map(String::as_str).collect();
        let extra: Vec<&str> = helper
            .present_on
            .iter()
            .map(String::as_str)
            .filter(|h| !mine.contains(h))
            .collect();
        if !extra.is_empty() {
            f.push(
                "helper-more-exposed",
                &c.id,
                c.rotate_with_location.as_ref().unwrap_or(at),
                format!(
                    "{}'s helper {} is also present on {}: a compromise there exposes the credential that rotates {}",
                    c.id,
                    helper.id,
                    extra.join(", "),
                    c.id
                ),
            );
        }
    }
}

fn drills(c: &Credential, record: Option<&DrillRecord>, f: &mut Findings) {
    let Some(r) = record else {
        f.push(
            "never-drilled",
            &c.id,
            &c.location,
            format!(
                "{} has never been rotated by rekey: try its runbook before an incident does (`rekey drill --credential {}`, with --simulate first)",
                c.id, c.id
            ),
        );
        return;
    };
    if r.last_outcome == "rotated" {
        return;
    }
    let run = if r.simulated {
        format!("simulated run {}", r.last_run)
    } else {
        format!("run {}", r.last_run)
    };
    let what = match r.last_outcome.as_str() {
        "rolled_back" => format!(
            "was rolled back: see why with `rekey status {}`",
            r.last_run
        ),
        "needs_operator" => format!(
            "stopped for an operator and may be half-rotated: `rekey status {}`, then `rekey resume {}`",
            r.last_run, r.last_run
        ),
        "undo_failed" => format!(
            "failed and so did its undo: it may be half-rotated, check it now (`rekey status {}`)",
            r.last_run
        ),
        other => format!("ended `{other}`: see `rekey status {}`", r.last_run),
    };
    let since = r.last_success.map_or_else(
        || "it has never been rotated successfully".to_owned(),
        |t| format!("its last successful rotation was at {t}"),
    );
    f.push(
        "last-drill-failed",
        &c.id,
        &c.location,
        format!("{}'s last rotation ({run}) {what}; {since}", c.id),
    );
}

/// npm tokens that can publish a package some service publishes through trusted publishing.
/// npm accepts a publish token for such a package (unless the package's settings disallow
/// tokens), so a leaked token publishes without provenance: the axios lesson.
///
/// Who can publish what, from the inventory alone:
/// - a classic token: every package of its account (`packages`/`scopes` only limit the
///   granular token that replaces it);
/// - a granular token with `permission: read-only`: nothing;
/// - a granular token with `packages` or `scopes`: what they list, by name or by scope;
/// - a granular token with neither: every package of its account. Which packages an account
///   can publish is not in the inventory, so it is assumed to be all of them: a finding to
///   silence by listing the token's packages, never one missed.
/// - a token whose `registry` is not npm's public one: nothing there (trusted publishing exists
///   only on the public registry).
///
/// PyPI is not modelled: trusted publishing there is recorded in `publishes:`, but no kind is a
/// PyPI token, so nothing can be found to outrank it.
fn trusted_publishing(inv: &Inventory, f: &mut Findings) {
    // Each npm package with trusted publishing, and the services that say so, first seen first.
    let mut trusted: Vec<(&str, Vec<&str>)> = Vec::new();
    for s in &inv.services {
        for p in &s.publishes {
            if p.registry != Registry::Npm || !p.trusted_publishing {
                continue;
            }
            match trusted
                .iter_mut()
                .find(|(name, _)| same_package(Registry::Npm, name, &p.package))
            {
                Some((_, services)) => services.push(&s.id),
                None => trusted.push((&p.package, vec![&s.id])),
            }
        }
    }
    if trusted.is_empty() {
        return;
    }
    for c in &inv.credentials {
        let classic = match c.kind {
            CredentialKind::NpmClassicToken => true,
            CredentialKind::NpmGranularToken => false,
            _ => continue,
        };
        if c.field("registry").is_some_and(|r| !is_public_npm(r))
            || (!classic && c.field("permission") == Some("read-only"))
        {
            continue;
        }
        let account = c.field("npm_user").unwrap_or("its account");
        let packages = c.list("packages");
        let scopes = c.list("scopes");
        for (package, services) in &trusted {
            let (at, why) = if classic {
                (
                    &c.location,
                    format!(
                        "as a classic token it can publish every package of npm account {account}"
                    ),
                )
            } else if let Some((_, at)) = packages
                .iter()
                .find(|(p, _)| same_package(Registry::Npm, p, package))
            {
                (*at, format!("its `packages:` lists {package}"))
            } else if let Some((scope, at)) = scopes.iter().find(|(s, _)| {
                package
                    .split_once('/')
                    .is_some_and(|(ps, _)| ps.eq_ignore_ascii_case(s))
            }) {
                (*at, format!("its `scopes:` holds {scope}"))
            } else if packages.is_empty() && scopes.is_empty() {
                (
                    &c.location,
                    format!(
                        "it lists no `packages:` or `scopes:`, so it can publish every package of npm account {account}"
                    ),
                )
            } else {
                continue;
            };
            let fix = if classic {
                format!(
                    "revoke it and publish {package} through trusted publishing only (or replace it with a granular token whose `packages:` leaves {package} out)"
                )
            } else {
                format!(
                    "take {package} out of the token's publish rights on npm and in `packages:`/`scopes:`, or delete the token and publish through trusted publishing only"
                )
            };
            f.push(
                "npm-token-outranks-trusted-publishing",
                &c.id,
                at,
                format!(
                    "{} can publish {package}, which {} publishes with trusted publishing: {why}, and a token outranks OIDC, so whoever steals it publishes {package} without provenance; {fix}",
                    c.id,
                    services.join(" and "),
                ),
            );
        }
    }
}

/// Whether a registry URL is npm's public registry (the only one with trusted publishing).
fn is_public_npm(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host.eq_ignore_ascii_case("registry.npmjs.org")
}

/// Values that share one slot-limited account: two tracked IAM keys of one user leave a
/// rotation no room; GCP allows 10 keys per account; an Okta app holds two secrets.
fn headroom(inv: &Inventory, f: &mut Findings) {
    let mut groups: BTreeMap<(CredentialKind, String), Vec<&Credential>> = BTreeMap::new();
    for c in &inv.credentials {
        let account = match c.kind {
            CredentialKind::AwsIamAccessKey => c.field("user_name").map(str::to_owned),
            CredentialKind::GcpServiceAccountKey => c
                .field("service_account")
                .map(|sa| format!("{}/{sa}", c.field("project").unwrap_or_default())),
            CredentialKind::OauthClientSecret if c.field("provider") == Some("okta") => {
                c.field("app_id").map(str::to_owned)
            }
            _ => None,
        };
        if let Some(a) = account {
            groups.entry((c.kind, a)).or_default().push(c);
        }
    }
    for ((kind, account), creds) in groups {
        let (limit, what) = match kind {
            CredentialKind::AwsIamAccessKey => (2, "IAM user"),
            CredentialKind::GcpServiceAccountKey => (10, "service account"),
            _ => (2, "Okta app"),
        };
        if creds.len() < limit {
            continue;
        }
        let ids: Vec<&str> = creds.iter().map(|c| c.id.as_str()).collect();
        for c in &creds {
            f.push(
                "no-headroom",
                &c.id,
                &c.location,
                format!(
                    "{what} {account} holds {} tracked values ({}) and allows {limit}: a rotation needs room for one more; retire one or split them",
                    creds.len(),
                    ids.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::diag::SourceFile;

    fn inventory(yaml: &str) -> Inventory {
        crate::parse_inventory(&[Arc::new(SourceFile::new("inv.yaml", yaml))])
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn record(outcome: &str, run: &str) -> DrillRecord {
        DrillRecord {
            last_success: None,
            last_outcome: outcome.to_owned(),
            last_run: run.to_owned(),
            simulated: false,
        }
    }

    /// The findings of an inventory whose every credential was last rotated fine, so the
    /// history rules stay quiet: (location, rule, id).
    fn findings(yaml: &str) -> Vec<(String, &'static str, String)> {
        let inv = inventory(yaml);
        let history = inv
            .credentials
            .iter()
            .map(|c| (c.id.clone(), record("rotated", "r0")))
            .collect();
        lint(&inv, Date::constant(2026, 12, 7), &history)
            .into_iter()
            .map(|f| (f.location.to_string(), f.rule, f.id))
            .collect()
    }

    #[track_caller]
    fn assert_cases(prefix: &str, cases: Vec<Case>) {
        for (yaml, want) in cases {
            let got = findings(&format!("{prefix}{yaml}"));
            let want: Vec<(String, &str, String)> = want
                .into_iter()
                .map(|(l, r, i)| (l.to_owned(), r, i.to_owned()))
                .collect();
            assert_eq!(got, want, "{yaml}");
        }
    }

    /// An inventory and the findings it gives: (location, rule, id).
    type Case = (String, Vec<(&'static str, &'static str, &'static str)>);

    const HOSTS: &str = "hosts:
  - id: laptop
    kind: developer_machine
  - id: ci
    kind: ci_runner
services:
  - id: web
    sboms: [web.cdx.json]
";

    /// One table row a rule: the inventory after the fixed hosts and services, and the
    /// findings it gives, with their exact locations.
    #[test]
    fn every_rule_at_its_location() {
        let ok = "    policy: { max_age_days: 90 }\n    last_rotated: 2026-12-01\n    present_on: [ci]\n    delivered_to:\n      - env_file: { path: /tmp/x.env, key: K }\n";
        let cases: Vec<Case> = vec![
            (
                format!("credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n{ok}"),
                vec![],
            ),
            (
                format!("credentials:\n  - id: old\n    kind: npm_classic_token\n    npm_user: u\n    password_env: NPM_PW\n{ok}"),
                vec![("inv.yaml:10:9", "legacy-kind", "old")],
            ),
            (
                format!("credentials:\n  - id: gh\n    kind: github_classic_pat\n    github_user: u\n{ok}"),
                vec![("inv.yaml:10:9", "legacy-kind", "gh")],
            ),
            (
                "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    policy: { max_age_days: 30 }\n    last_rotated: 2026-01-01\n    present_on: [ci]\n    delivered_to:\n      - env_file: { path: /tmp/x.env, key: K }\n".into(),
                vec![("inv.yaml:10:9", "overdue", "k")],
            ),
            (
                "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    present_on: [ci]\n    delivered_to:\n      - env_file: { path: /tmp/x.env, key: K }\n".into(),
                vec![("inv.yaml:10:9", "no-policy", "k")],
            ),
            (
                "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    policy: { max_age_days: 90 }\n    last_rotated: 2026-12-01\n    present_on: [ci, laptop]\n".into(),
                vec![
                    ("inv.yaml:10:9", "no-consumers", "k"),
                    ("inv.yaml:15:22", "developer-machine", "k"),
                ],
            ),
            (
                "credentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    policy: { max_age_days: 90 }\n    last_rotated: 2026-12-01\n    delivered_to:\n      - env_file: { path: /tmp/x.env, key: K }\n".into(),
                vec![("inv.yaml:10:9", "no-exposure", "k")],
            ),
            (
                format!("credentials:\n  - id: a\n    kind: aws_iam_access_key\n    user_name: u\n{ok}  - id: b\n    kind: aws_iam_access_key\n    user_name: u\n{ok}"),
                vec![
                    ("inv.yaml:10:9", "no-headroom", "a"),
                    ("inv.yaml:18:9", "no-headroom", "b"),
                ],
            ),
            (
                format!("credentials:\n  - id: w\n    kind: github_fine_grained_pat\n    github_user: bot\n    policy: {{ max_age_days: 90 }}\n    last_rotated: 2026-12-01\n    present_on: [ci, laptop]\n    delivered_to:\n      - env_file: {{ path: /tmp/w.env, key: W }}\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    rotate_with: w\n{ok}"),
                vec![
                    ("inv.yaml:15:22", "developer-machine", "w"),
                    ("inv.yaml:21:18", "helper-more-exposed", "k"),
                ],
            ),
        ];
        assert_cases(HOSTS, cases);
        // A draft of `rekey discover`, and a confirmed find (no finding: it adds its host).
        let got = findings(
            "hosts:\n  - id: ci\n    kind: ci_runner\ncredentials:\n  - id: k\n    kind: aws_iam_access_key\n    user_name: u\n    policy: { max_age_days: 90 }\n    last_rotated: 2026-12-01\n    delivered_to:\n      - env_file: { path: /tmp/x.env, key: K }\ndiscovered:\n  - host: ci\n    source: \"~/.npmrc:1\"\n    kind: npm_granular_token\n    ids: { registry: \"https://registry.npmjs.org/\" }\n  - { host: ci, source: env:AWS_ACCESS_KEY_ID, kind: aws_iam_access_key, credential: k }\n",
        );
        assert_eq!(
            got,
            vec![(
                "inv.yaml:13:11".to_owned(),
                "discovered-draft",
                "ci".to_owned()
            )]
        );
        // A service without an SBOM.
        let got = findings("services:\n  - id: api\n");
        assert_eq!(
            got,
            vec![(
                "inv.yaml:2:9".to_owned(),
                "service-without-sbom",
                "api".to_owned()
            )]
        );
    }

    /// `npm-token-outranks-trusted-publishing`: which tokens can publish `@acme/ui` (trusted
    /// publishing) and where each finding points: the list item that grants the right, else
    /// the token's id.
    #[test]
    fn npm_tokens_beside_trusted_publishing() {
        // Lines 1-16; credentials start at line 17 (`- id:` of the first at 18:9).
        let services = "hosts:
  - id: ci
    kind: ci_runner
services:
  - id: web
    sboms: [web.cdx.json]
    publishes:
      - { registry: npm, package: \"@acme/ui\", trusted_publishing: true }
      - { registry: npm, package: \"@acme/cli\" }
      - { registry: pypi, package: acme-client, trusted_publishing: true }
  - id: docs
    sboms: [docs.cdx.json]
    publishes:
      - registry: npm
        package: \"@ACME/UI\"
        trusted_publishing: true
";
        let ok = "    npm_user: acme-publisher\n    password_env: NPM_PW\n    policy: { max_age_days: 60 }\n    last_rotated: 2026-12-01\n    present_on: [ci]\n    delivered_to:\n      - env_file: { path: /tmp/n.env, key: NPM_TOKEN }\n";
        let granular = |extra: &str| {
            format!("credentials:\n  - id: t\n    kind: npm_granular_token\n{extra}{ok}")
        };
        let cases: Vec<Case> = vec![
            // Neither `packages` nor `scopes`: every package of the account.
            (
                granular(""),
                vec![(
                    "inv.yaml:18:9",
                    "npm-token-outranks-trusted-publishing",
                    "t",
                )],
            ),
            // Listed by name (case aside), in a block list.
            (
                granular("    packages:\n      - \"@acme/cli\"\n      - \"@acme/UI\"\n"),
                vec![(
                    "inv.yaml:22:9",
                    "npm-token-outranks-trusted-publishing",
                    "t",
                )],
            ),
            // By scope.
            (
                granular("    scopes: [\"@other\", \"@acme\"]\n"),
                vec![(
                    "inv.yaml:20:24",
                    "npm-token-outranks-trusted-publishing",
                    "t",
                )],
            ),
            // The comma-separated form: located at the string.
            (
                granular("    packages: \"@acme/cli,@acme/ui\"\n"),
                vec![(
                    "inv.yaml:20:15",
                    "npm-token-outranks-trusted-publishing",
                    "t",
                )],
            ),
            // Limited to packages without trusted publishing: nothing.
            (
                granular("    packages: [\"@acme/cli\"]\n    scopes: [\"@other\"]\n"),
                vec![],
            ),
            // Read-only: cannot publish.
            (granular("    permission: read-only\n"), vec![]),
            // Another registry: trusted publishing exists on npm's public one only.
            (
                granular("    registry: https://npm.acme.internal/\n"),
                vec![],
            ),
            // npm's registry named explicitly still counts.
            (
                granular("    registry: https://registry.npmjs.org/\n    scopes: [\"@acme\"]\n"),
                vec![(
                    "inv.yaml:21:14",
                    "npm-token-outranks-trusted-publishing",
                    "t",
                )],
            ),
            // A classic token publishes everything of its account, whatever `packages` says
            // (that limits its granular replacement).
            (
                format!(
                    "credentials:\n  - id: c\n    kind: npm_classic_token\n    packages: [\"@acme/cli\"]\n{ok}"
                ),
                vec![
                    (
                        "inv.yaml:18:9",
                        "npm-token-outranks-trusted-publishing",
                        "c",
                    ),
                    ("inv.yaml:18:9", "legacy-kind", "c"),
                ],
            ),
        ];
        assert_cases(services, cases);

        // The message names the package, both services and what to do.
        let inv = inventory(&format!("{services}{}", granular("")));
        let history = BTreeMap::from([("t".to_owned(), record("rotated", "r0"))]);
        let all = lint(&inv, Date::constant(2026, 12, 7), &history);
        let [f] = all.as_slice() else {
            panic!("{all:?}")
        };
        assert_eq!(f.severity, Severity::Error);
        for needle in [
            "t can publish @acme/ui, which web and docs publish",
            "every package of npm account acme-publisher",
            "without provenance",
            "delete the token and publish through trusted publishing only",
        ] {
            assert!(f.message.contains(needle), "{needle}: {}", f.message);
        }

        // Without trusted publishing anywhere, no npm token is a finding.
        let plain = services.replace("trusted_publishing: true", "trusted_publishing: false");
        assert_cases(&plain, vec![(granular(""), vec![])]);
    }

    /// `never-drilled` and `last-drill-failed`, from the rotation history.
    #[test]
    fn drill_history_rules() {
        let inv = inventory(&format!(
            "{HOSTS}credentials:
  - id: a
    kind: aws_iam_access_key
    user_name: a
    policy: {{ max_age_days: 90 }}
    last_rotated: 2026-12-01
    present_on: [ci]
    delivered_to:
      - env_file: {{ path: /tmp/a.env, key: A }}
  - id: b
    kind: aws_iam_access_key
    user_name: b
    policy: {{ max_age_days: 90 }}
    last_rotated: 2026-12-01
    present_on: [ci]
    delivered_to:
      - env_file: {{ path: /tmp/b.env, key: B }}
"
        ));
        let at =
            |history: &BTreeMap<String, DrillRecord>| -> Vec<(String, &str, String, Severity)> {
                lint(&inv, Date::constant(2026, 12, 7), history)
                    .into_iter()
                    .map(|f| (f.location.to_string(), f.rule, f.id, f.severity))
                    .collect()
            };
        let row = |l: &str, r: &'static str, i: &str, s| (l.to_owned(), r, i.to_owned(), s);
        // No history at all: every credential, a note each.
        assert_eq!(
            at(&BTreeMap::new()),
            [
                row("inv.yaml:10:9", "never-drilled", "a", Severity::Note),
                row("inv.yaml:18:9", "never-drilled", "b", Severity::Note),
            ]
        );
        // `a` rotated, `b`'s last run rolled back.
        let mut history = BTreeMap::from([
            ("a".to_owned(), record("rotated", "r1")),
            ("b".to_owned(), record("rolled_back", "r2")),
        ]);
        assert_eq!(
            at(&history),
            [row(
                "inv.yaml:18:9",
                "last-drill-failed",
                "b",
                Severity::Warning
            )]
        );
        // Each outcome other than `rotated` fails, naming the run (and a simulated one).
        for (outcome, needle) in [
            ("rolled_back", "(run r2) was rolled back"),
            ("needs_operator", "`rekey resume r2`"),
            ("undo_failed", "so did its undo"),
            ("cancelled", "ended `cancelled`"),
        ] {
            history.insert("b".to_owned(), record(outcome, "r2"));
            let all = lint(&inv, Date::constant(2026, 12, 7), &history);
            let [f] = all.as_slice() else {
                panic!("{outcome}: {all:?}")
            };
            assert!(f.message.contains(needle), "{outcome}: {}", f.message);
            assert!(
                f.message.contains("never been rotated successfully"),
                "{}",
                f.message
            );
        }
        let success: jiff::Timestamp = "2026-09-01T10:00:00Z".parse().unwrap();
        history.insert(
            "b".to_owned(),
            DrillRecord {
                last_success: Some(success),
                simulated: true,
                ..record("rolled_back", "r3")
            },
        );
        let all = lint(&inv, Date::constant(2026, 12, 7), &history);
        assert!(
            all[0].message.contains("(simulated run r3)"),
            "{}",
            all[0].message
        );
        assert!(
            all[0].message.contains("2026-09-01T10:00:00Z"),
            "{}",
            all[0].message
        );
    }
}
