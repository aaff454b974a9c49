//! The blast radius: from the services that contain a bad package to the credentials that were
//! present where those services were built or installed, and on to what those credentials can
//! reach — a breadth-first walk over a petgraph graph, keeping the path that explains each one.

use std::collections::{BTreeMap, HashMap, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use rekey_spec::{Consumer, HostKind, Inventory};
use serde::Serialize;

use crate::osv::MatchKind;

/// A service whose SBOM or lockfile holds an affected package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceHit {
    pub service: String,
    /// `axios@1.14.1`.
    pub package: String,
    pub file: String,
    pub whole_package: bool,
}

/// A credential in the report, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub credential: String,
    pub kind: String,
    /// The chain that explains it, e.g. `axios@1.14.1 → service web → runner gha-org-runners →
    /// credential aws-deploy-web`.
    pub path: String,
    pub recommendation: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlastRadius {
    pub services: Vec<ServiceHit>,
    /// Hosts where an affected service was built or installed.
    pub hosts: Vec<String>,
    /// Revoke first: the value was (or could be read) where the bad code ran.
    pub exposed: Vec<Finding>,
    /// Not exposed, but close: rotate soon, check.
    pub adjacent: Vec<Finding>,
}

impl BlastRadius {
    /// Exposed credential id → reason path (the planner's `exposed` map).
    pub fn exposed_map(&self) -> BTreeMap<String, String> {
        self.exposed
            .iter()
            .map(|f| (f.credential.clone(), f.path.clone()))
            .collect()
    }
}

/// The rules, in order, as `rekey incident --explain` prints them.
pub const RULES: &[&str] = &[
    "1. A service is affected when one of its SBOMs or lockfiles holds a version the advisory lists (or any version, when the advisory marks the whole package malicious).",
    "2. Every host an affected service was built or installed on (`built_on`) ran the bad code.",
    "3. A credential present on such a host (`present_on`) is EXPOSED: revoke first (incident mode), then rotate.",
    "4. A credential whose GitHub Actions secrets an exposed GitHub token writes (`rotate_with` that token) is EXPOSED too: the token can read them through a workflow.",
    "5. A credential used by an affected service but not present on an affected host is ADJACENT: rotate soon without downtime (drill mode).",
    "6. The `rotate_with` helper of an exposed credential is ADJACENT unless exposed itself: it must be valid to rotate what depends on it; check it first.",
];

#[derive(Debug, Clone)]
enum Node {
    Package(String),
    Service(String),
    Host(String, HostKind),
    Credential(String),
}

impl Node {
    fn label(&self) -> String {
        match self {
            Self::Package(p) => p.clone(),
            Self::Service(s) => format!("service {s}"),
            Self::Host(h, HostKind::CiRunner) => format!("runner {h}"),
            Self::Host(h, HostKind::DeveloperMachine) => format!("laptop {h}"),
            Self::Host(h, HostKind::Server) => format!("server {h}"),
            Self::Credential(c) => format!("credential {c}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Contains,
    BuiltOn,
    PresentOn,
    /// A GitHub token that writes the other credential's Actions secrets.
    WritesActionsSecrets,
}

fn is_github_token(kind: rekey_spec::CredentialKind) -> bool {
    use rekey_spec::CredentialKind as K;
    matches!(
        kind,
        K::GithubFineGrainedPat | K::GithubClassicPat | K::GithubAppPrivateKey
    )
}

/// Walks from the affected services to the credentials they expose.
pub fn blast_radius(inv: &Inventory, hits: &[ServiceHit]) -> BlastRadius {
    let mut g: DiGraph<Node, Edge> = DiGraph::new();
    let mut ids: HashMap<String, NodeIndex> = HashMap::new();
    let mut node = |g: &mut DiGraph<Node, Edge>, key: String, n: Node| {
        *ids.entry(key).or_insert_with(|| g.add_node(n))
    };

    let mut roots = Vec::new();
    for hit in hits {
        let p = node(
            &mut g,
            format!("p:{}", hit.package),
            Node::Package(hit.package.clone()),
        );
        let s = node(
            &mut g,
            format!("s:{}", hit.service),
            Node::Service(hit.service.clone()),
        );
        g.update_edge(p, s, Edge::Contains);
        roots.push(p);
    }
    for svc in &inv.services {
        let s = node(
            &mut g,
            format!("s:{}", svc.id),
            Node::Service(svc.id.clone()),
        );
        for h in &svc.built_on {
            let kind = inv.host(h).map_or(HostKind::Server, |h| h.kind);
            let hn = node(&mut g, format!("h:{h}"), Node::Host(h.clone(), kind));
            g.update_edge(s, hn, Edge::BuiltOn);
        }
    }
    for c in &inv.credentials {
        let cn = node(
            &mut g,
            format!("c:{}", c.id),
            Node::Credential(c.id.clone()),
        );
        for h in &c.present_on {
            let kind = inv.host(h).map_or(HostKind::Server, |h| h.kind);
            let hn = node(&mut g, format!("h:{h}"), Node::Host(h.clone(), kind));
            g.update_edge(hn, cn, Edge::PresentOn);
        }
        if let Some(helper) = c.rotate_with.as_deref().and_then(|h| inv.credential(h)) {
            let writes_actions = c
                .delivered_to
                .iter()
                .any(|d| matches!(d, Consumer::GithubActionsSecret { .. }));
            if is_github_token(helper.kind) && writes_actions {
                let hn = node(
                    &mut g,
                    format!("c:{}", helper.id),
                    Node::Credential(helper.id.clone()),
                );
                g.update_edge(hn, cn, Edge::WritesActionsSecrets);
            }
        }
    }

    // Breadth first from the packages: the first path found to a node is a shortest one.
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut seen: std::collections::HashSet<NodeIndex> = roots.iter().copied().collect();
    let mut queue: VecDeque<NodeIndex> = roots.iter().copied().collect();
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = g.neighbors(n).collect();
        next.sort_by_key(|x| x.index());
        for m in next {
            if seen.insert(m) {
                parent.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    let path_to = |n: NodeIndex| {
        let mut chain = vec![n];
        let mut cur = n;
        while let Some(&p) = parent.get(&cur) {
            chain.push(p);
            cur = p;
        }
        chain.reverse();
        let mut out = String::new();
        for (i, x) in chain.iter().enumerate() {
            if i > 0 {
                let e = g.find_edge(chain[i - 1], *x).map(|e| g[e]);
                out.push_str(if e == Some(Edge::WritesActionsSecrets) {
                    " → writes the Actions secrets of "
                } else {
                    " → "
                });
            }
            out.push_str(&g[*x].label());
        }
        out
    };

    let mut report = BlastRadius {
        services: hits.to_vec(),
        ..BlastRadius::default()
    };
    report
        .services
        .sort_by(|a, b| (&a.service, &a.package).cmp(&(&b.service, &b.package)));
    report.services.dedup();
    for n in g.node_indices() {
        match &g[n] {
            Node::Host(h, _) if seen.contains(&n) => report.hosts.push(h.clone()),
            _ => {}
        }
    }
    report.hosts.sort();
    let affected_services: std::collections::HashSet<&str> =
        hits.iter().map(|h| h.service.as_str()).collect();
    for c in &inv.credentials {
        let n = ids[&format!("c:{}", c.id)];
        if seen.contains(&n) {
            report.exposed.push(Finding {
                credential: c.id.clone(),
                kind: c.kind.to_string(),
                path: path_to(n),
                recommendation: "revoke first, then rotate (incident mode)".into(),
            });
        }
    }
    let exposed: std::collections::HashSet<&str> = report
        .exposed
        .iter()
        .map(|f| f.credential.as_str())
        .collect();
    let mut adjacent: BTreeMap<String, Finding> = BTreeMap::new();
    for c in &inv.credentials {
        if exposed.contains(c.id.as_str()) {
            continue;
        }
        if let Some(s) = c
            .used_by
            .iter()
            .find(|s| affected_services.contains(s.as_str()))
        {
            adjacent.entry(c.id.clone()).or_insert_with(|| Finding {
                credential: c.id.clone(),
                kind: c.kind.to_string(),
                path: format!("used by affected service {s}, not present where it was built"),
                recommendation: "rotate soon without downtime (drill mode)".into(),
            });
        }
    }
    for c in &inv.credentials {
        if !exposed.contains(c.id.as_str()) {
            continue;
        }
        if let Some(h) = c.rotate_with.as_deref().filter(|h| !exposed.contains(h)) {
            adjacent.entry(h.to_owned()).or_insert_with(|| Finding {
                credential: h.to_owned(),
                kind: inv
                    .credential(h)
                    .map(|x| x.kind.to_string())
                    .unwrap_or_default(),
                path: format!("rotate_with helper of exposed credential {}", c.id),
                recommendation: "check it is valid before the rotation; it is not exposed".into(),
            });
        }
    }
    report.adjacent = adjacent.into_values().collect();
    report
}

/// `MatchKind` as the report says it.
pub fn describe(kind: MatchKind) -> &'static str {
    match kind {
        MatchKind::WholePackage => "every version is malicious",
        MatchKind::Versions => "this version is affected",
    }
}
