//! `rekey lint`: what in an inventory will hurt during an incident, found before one. Each
//! finding has a stable rule id, a severity, the credential, service or host it is about, and
//! the `file:line:column` of its entry.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::Serialize;

use crate::diag::Location;
use crate::inventory::{Credential, Inventory};
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
];

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

/// Every finding for `inv` as of `today`, in inventory order.
pub fn lint(inv: &Inventory, today: Date) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    for c in &inv.credentials {
        credential(inv, c, today, &mut f);
    }
    headroom(inv, &mut f);
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

    fn findings(yaml: &str) -> Vec<(String, &'static str, String)> {
        let inv = crate::parse_inventory(&[Arc::new(SourceFile::new("inv.yaml", yaml))])
            .unwrap_or_else(|e| panic!("{e:?}"));
        lint(&inv, Date::constant(2026, 12, 7))
            .into_iter()
            .map(|f| (f.location.to_string(), f.rule, f.id))
            .collect()
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
        for (yaml, want) in cases {
            let got = findings(&format!("{HOSTS}{yaml}"));
            let want: Vec<(String, &str, String)> = want
                .into_iter()
                .map(|(l, r, i)| (l.to_owned(), r, i.to_owned()))
                .collect();
            assert_eq!(got, want, "{yaml}");
        }
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
}
