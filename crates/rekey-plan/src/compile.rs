//! Compiling inventory × runbooks × mode into a [`Plan`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use petgraph::graph::DiGraph;
use rekey_spec::action::{Effect, Mode, Phase};
use rekey_spec::diag::Location;
use rekey_spec::inventory::{Consumer, Credential, Inventory, closest};
use rekey_spec::kind::CredentialKind;
use rekey_spec::runbook::{Manual, Runbook, Runbooks, Step};
use rekey_spec::template::{Fill, Template, Var};

use crate::{
    Edge, EdgeKind, HelperRef, Note, NoteLevel, OutputDecl, PLAN_FORMAT, Plan, PlannedCredential,
    PlannedStep, Strategy,
};

/// Which credentials to plan. Empty lists select nothing by that criterion; all empty selects
/// every credential. A credential is selected when any criterion names it.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub credentials: Vec<String>,
    pub services: Vec<String>,
    pub kinds: Vec<CredentialKind>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        self.credentials.is_empty() && self.services.is_empty() && self.kinds.is_empty()
    }
}

/// Everything the planner needs.
pub struct PlanRequest<'a> {
    pub inventory: &'a Inventory,
    pub runbooks: &'a Runbooks,
    pub selection: &'a Selection,
    pub mode: Mode,
    /// For incident mode: the credentials known to be exposed, with the reason path of each.
    /// `None` treats every selected credential as exposed (the operator chose them).
    pub exposed: Option<&'a BTreeMap<String, String>>,
}

/// A reason the plan cannot be carried out, found before anything runs.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub credential: String,
    pub message: String,
    pub help: Option<String>,
    pub location: Option<Location>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        write!(f, "{}: {}", self.credential, self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub enum PlanError {
    /// The selection names something that does not exist, or matches nothing.
    Selection(String),
    /// The plan cannot be carried out; every reason is listed.
    Refused(Vec<Refusal>),
    /// The steps depend on each other in a loop (names the steps).
    Cycle(Vec<String>),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Selection(m) => f.write_str(m),
            Self::Refused(rs) => {
                write!(
                    f,
                    "plan refused: {} problem(s) must be fixed before anything can run",
                    rs.len()
                )?;
                for r in rs {
                    write!(f, "\n  - {r}")?;
                }
                Ok(())
            }
            Self::Cycle(ids) => write!(
                f,
                "steps depend on each other in a cycle: {}",
                ids.join(" → ")
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Resolves the selection to credential indices, in inventory order.
fn select(inv: &Inventory, sel: &Selection) -> Result<Vec<usize>, PlanError> {
    let mut problems = Vec::new();
    for id in &sel.credentials {
        if inv.credential(id).is_none() {
            let hint = closest(id, inv.credentials.iter().map(|c| c.id.as_str()))
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            problems.push(format!("no credential `{id}` in the inventory{hint}"));
        }
    }
    for s in &sel.services {
        if inv.service(s).is_none() {
            let hint = closest(s, inv.services.iter().map(|x| x.id.as_str()))
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            problems.push(format!("no service `{s}` in the inventory{hint}"));
        }
    }
    if !problems.is_empty() {
        return Err(PlanError::Selection(problems.join("\n")));
    }
    let chosen: Vec<usize> = inv
        .credentials
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            sel.is_all()
                || sel.credentials.contains(&c.id)
                || sel.kinds.contains(&c.kind)
                || c.used_by.iter().any(|s| sel.services.contains(s))
        })
        .map(|(i, _)| i)
        .collect();
    if chosen.is_empty() {
        return Err(PlanError::Selection(
            "the selection matches no credentials".into(),
        ));
    }
    Ok(chosen)
}

/// The decision tree: which strategy for which credential, and why.
fn decide(
    c: &Credential,
    mode: Mode,
    exposed: Option<&BTreeMap<String, String>>,
) -> (Strategy, String) {
    match mode {
        Mode::Drill => (
            Strategy::RotateFirst,
            "drill: the old value stays valid until the new one is verified everywhere".into(),
        ),
        Mode::Incident => match exposed {
            None if c.present_on.is_empty() => (
                Strategy::RevokeFirst,
                "incident: selected for incident response, so treated as exposed".into(),
            ),
            None => (
                Strategy::RevokeFirst,
                format!(
                    "incident: exposed, its value is present on {}",
                    c.present_on.join(", ")
                ),
            ),
            Some(map) => match map.get(&c.id) {
                Some(path) => (
                    Strategy::RevokeFirst,
                    format!("incident: exposed via {path}"),
                ),
                None => (
                    Strategy::RotateFirst,
                    "incident: adjacent but not exposed, so rotated without downtime".into(),
                ),
            },
        },
    }
}

struct CredPlan<'a> {
    cred: &'a Credential,
    runbook: &'a Runbook,
    strategy: Strategy,
    /// Runbook step id → plan nodes (several for per-consumer steps), with consumer index.
    nodes: HashMap<&'a str, Vec<(u32, Option<u32>)>>,
    included: Vec<&'a Step>,
}

pub fn compile(req: &PlanRequest<'_>) -> Result<Plan, PlanError> {
    let inv = req.inventory;
    let chosen = select(inv, req.selection)?;
    let in_plan: HashSet<&str> = chosen
        .iter()
        .map(|&i| inv.credentials[i].id.as_str())
        .collect();

    let mut refusals = Vec::new();
    check_headroom(inv, &chosen, &mut refusals);

    let mut credentials = Vec::with_capacity(chosen.len());
    let mut steps: Vec<PlannedStep> = Vec::with_capacity(chosen.len() * 8);
    let mut edges: Vec<Edge> = Vec::with_capacity(chosen.len() * 16);
    let mut cred_plans: Vec<CredPlan<'_>> = Vec::with_capacity(chosen.len());

    for (ci, &idx) in chosen.iter().enumerate() {
        let cred = &inv.credentials[idx];
        let ci = u32::try_from(ci).expect("fewer than 2^32 credentials");
        let Some(runbook) = req.runbooks.get(cred.kind) else {
            refusals.push(Refusal {
                credential: cred.id.clone(),
                message: format!("no runbook for kind {}", cred.kind),
                help: Some("add one to the runbooks folder".into()),
                location: Some(cred.location.clone()),
            });
            continue;
        };
        let (strategy, reason) = decide(cred, req.mode, req.exposed);
        let mut notes = capability_notes(cred, strategy);
        let helper = cred.rotate_with.as_ref().map(|h| HelperRef {
            id: h.clone(),
            in_plan: in_plan.contains(h.as_str()),
        });
        if let Some(h) = &helper {
            notes.push(Note {
                level: NoteLevel::Info,
                text: if h.in_plan {
                    format!("waits for {} to be rotated and verified first (rotate_with)", h.id)
                } else {
                    format!("uses {} (rotate_with), which is not in this plan: it must be valid when this runs", h.id)
                },
            });
        }
        if cred.delivered_to.is_empty() {
            notes.push(Note {
                level: NoteLevel::Warning,
                text: "no consumers (delivered_to): the new value is not delivered anywhere".into(),
            });
        }

        let field = |name: &str| cred.field(name).map(str::to_owned);
        let included: Vec<&Step> = runbook
            .steps
            .iter()
            .filter(|s| s.applies(strategy.mode(), field))
            .collect();
        let included_ids: HashSet<&str> = included.iter().map(|s| s.id.as_str()).collect();
        let mut nodes: HashMap<&str, Vec<(u32, Option<u32>)>> = HashMap::new();

        for step in &included {
            let targets: Vec<Option<u32>> = if step.for_each_consumer {
                cred.delivered_to
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| step.action.consumer_call(c).is_some())
                    .map(|(i, _)| Some(u32::try_from(i).expect("few consumers")))
                    .collect()
            } else {
                vec![None]
            };
            for consumer in targets {
                let target = consumer.map(|i| &cred.delivered_to[i as usize]);
                match plan_step(cred, step, target, strategy, &included_ids) {
                    Ok(mut ps) => {
                        ps.credential = ci;
                        let n = u32::try_from(steps.len()).expect("fewer than 2^32 steps");
                        nodes
                            .entry(step.id.as_str())
                            .or_default()
                            .push((n, consumer));
                        steps.push(ps);
                    }
                    Err(r) => refusals.push(r),
                }
            }
        }
        credentials.push(PlannedCredential {
            id: cred.id.clone(),
            kind: cred.kind,
            owner: cred.owner.clone(),
            strategy,
            reason,
            helper,
            runbook: runbook.location.file.path().display().to_string(),
            notes,
            steps: Vec::new(),
            first_irreversible: None,
        });
        cred_plans.push(CredPlan {
            cred,
            runbook,
            strategy,
            nodes,
            included,
        });
    }
    if !refusals.is_empty() {
        return Err(PlanError::Refused(refusals));
    }

    for cp in &cred_plans {
        internal_edges(cp, &mut edges);
    }
    helper_edges(&cred_plans, &steps, &mut edges);
    readback_edges(&cred_plans, &steps, &mut edges);

    let plan = order(req.mode, credentials, steps, edges)?;
    Ok(plan)
}

/// Builds one planned step: fills inputs from the credential and consumer, keeps references to
/// other steps' outputs for the engine.
fn plan_step(
    cred: &Credential,
    step: &Step,
    consumer: Option<&Consumer>,
    strategy: Strategy,
    included: &HashSet<&str>,
) -> Result<PlannedStep, Refusal> {
    let mut inputs = BTreeMap::new();
    for (name, template) in &step.inputs {
        let filled = template.fill(|v| lookup(cred, consumer, included, v));
        match filled {
            Ok(t) => {
                inputs.insert(name.clone(), t);
            }
            Err(missing) => {
                let required = step.action.input(name).is_some_and(|p| p.required);
                if required {
                    return Err(Refusal {
                        credential: cred.id.clone(),
                        message: format!(
                            "step `{}` needs `{missing}` for its input `{name}`, and it is not set",
                            step.id
                        ),
                        help: Some(match &missing {
                            Var::Credential { field } => {
                                format!("add `{field}:` to the credential")
                            }
                            _ => format!(
                                "the runbook's {} mode leaves it out",
                                strategy.mode().as_str()
                            ),
                        }),
                        location: Some(cred.location.clone()),
                    });
                }
                // An optional input whose value is unknown is left out: the action discovers it.
            }
        }
    }
    if let (Some(c), true) = (consumer, step.action.open_inputs)
        && let Some(field) = c.field("field")
        && !step.inputs.contains_key(&field)
    {
        let fields: Vec<&str> = step.inputs.keys().map(String::as_str).collect();
        return Err(Refusal {
            credential: cred.id.clone(),
            message: format!(
                "consumer {} takes field `{field}`, but step `{}` delivers only: {}",
                c.label(),
                step.id,
                fields.join(", ")
            ),
            help: Some("fix the consumer's `field:`".into()),
            location: Some(cred.location.clone()),
        });
    }
    // An env-file line and an Actions secret hold one value: a credential with several (a key
    // id and its secret) names the one each takes.
    if let (
        Some(
            c @ (Consumer::EnvFile { field: None, .. }
            | Consumer::GithubActionsSecret { field: None, .. }),
        ),
        true,
    ) = (consumer, step.action.open_inputs)
        && step.inputs.len() > 1
    {
        let fields: Vec<&str> = step.inputs.keys().map(String::as_str).collect();
        return Err(Refusal {
            credential: cred.id.clone(),
            message: format!(
                "consumer {} is one line, but step `{}` delivers several values: {}",
                c.label(),
                step.id,
                fields.join(", ")
            ),
            help: Some(format!(
                "add `field:` naming one of: {} (one {} consumer per value)",
                fields.join(", "),
                c.type_name()
            )),
            location: Some(cred.location.clone()),
        });
    }
    let mut call = consumer
        .and_then(|c| step.action.consumer_call(c))
        .unwrap_or(step.action.call)
        .to_owned();
    let mut manual = step
        .manual
        .as_ref()
        .map(|m| fill_manual(cred, consumer, included, m));
    let mut effect = step.action.effect;
    // Reading the old value back needs a consumer that can be read; otherwise a person types it.
    // The consumer a `read_current` step reads from (it is not a per-consumer step).
    let mut read_from: Option<&Consumer> = None;
    if step.action.name == "consumer.read_current" {
        if let Some(c) = cred.delivered_to.iter().find(|c| c.readable()) {
            read_from = Some(c);
            call = format!(
                "{} from {}",
                step.action.consumer_call(c).unwrap_or(step.action.call),
                c.label()
            );
        } else {
            call = "an operator enters the current (old) value".into();
            effect = Effect::Human;
            manual = Some(Manual {
                instructions: Template::literal(format!(
                    "No consumer of {} can be read back. Enter the current (old) value so that it can be revoked.",
                    cred.id
                )),
                link: None,
            });
        }
    }
    let suffix = consumer
        .map(|c| format!("[{}]", c.label()))
        .unwrap_or_default();
    Ok(PlannedStep {
        id: format!("{}/{}{}", cred.id, step.id, suffix),
        credential: 0,
        step: step.id.clone(),
        phase: step.phase,
        action: step.action.name.to_owned(),
        provider: step.action.provider.to_owned(),
        call,
        effect,
        consumer: consumer.and_then(|c| {
            cred.delivered_to
                .iter()
                .position(|x| std::ptr::eq(x, c))
                .map(|i| u32::try_from(i).expect("few consumers"))
        }),
        consumer_label: consumer.or(read_from).map(Consumer::label),
        target: consumer.or(read_from).cloned(),
        inputs,
        outputs: step
            .action
            .outputs
            .iter()
            .map(|o| OutputDecl {
                name: o.name.to_owned(),
                secret: o.secret,
            })
            .collect(),
        // A delivery to a consumer that cannot be taken back is a point of no return.
        irreversible: step.irreversible
            || (step.action.name == "consumer.deliver"
                && consumer.is_some_and(|c| !c.reversible())),
        manual,
    })
}

fn lookup(
    cred: &Credential,
    consumer: Option<&Consumer>,
    included: &HashSet<&str>,
    v: &Var,
) -> Fill {
    let known = |s: Option<String>| s.map_or(Fill::Absent, Fill::Value);
    match v {
        Var::Credential { field } => match field.as_str() {
            "id" => Fill::Value(cred.id.clone()),
            "kind" => Fill::Value(cred.kind.to_string()),
            "owner" => known(cred.owner.clone()),
            // Documented defaults of optional fields.
            "registry" => Fill::Value(
                cred.field("registry")
                    .unwrap_or("https://registry.npmjs.org/")
                    .to_owned(),
            ),
            "host_pattern" => Fill::Value(cred.field("host_pattern").unwrap_or("%").to_owned()),
            "token_url" => known(oauth_token_url(cred)),
            "token_auth" => Fill::Value(
                cred.field("token_auth")
                    .unwrap_or(if cred.field("provider") == Some("auth0") {
                        "post"
                    } else {
                        "basic"
                    })
                    .to_owned(),
            ),
            f => known(cred.field(f).map(str::to_owned)),
        },
        Var::Consumer { field } => known(consumer.and_then(|c| c.field(field))),
        Var::Helper { field } if field == "id" => known(cred.rotate_with.clone()),
        Var::StepOutput { step, .. } if !included.contains(step.as_str()) => Fill::Absent,
        _ => Fill::Keep,
    }
}

/// An OAuth client's token endpoint: the credential's `token_url`, else the provider's own under
/// its `domain` (a bare host means `https://`; a URL with a scheme is kept, for tests and
/// private deployments): Okta's default custom authorization server (the org server refuses
/// `client_credentials` with a secret), Auth0's `/oauth/token`.
fn oauth_token_url(cred: &Credential) -> Option<String> {
    if let Some(u) = cred.field("token_url") {
        return Some(u.to_owned());
    }
    let domain = cred.field("domain")?;
    let base = if domain.contains("://") {
        domain.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", domain.trim_end_matches('/'))
    };
    match cred.field("provider")? {
        "okta" => Some(format!("{base}/oauth2/default/v1/token")),
        "auth0" => Some(format!("{base}/oauth/token")),
        _ => None,
    }
}

fn fill_manual(
    cred: &Credential,
    consumer: Option<&Consumer>,
    included: &HashSet<&str>,
    m: &Manual,
) -> Manual {
    // Instructions read better with "(not recorded)" than with a raw variable.
    let fill = |t: &Template| {
        t.fill(|v| match lookup(cred, consumer, included, v) {
            Fill::Absent => Fill::Value("(not recorded)".into()),
            other => other,
        })
        .unwrap_or_else(|_| t.clone())
    };
    Manual {
        instructions: fill(&m.instructions),
        link: m.link.as_ref().map(fill),
    }
}

/// Edges inside one credential: runbook `needs` and the mode's phase order.
fn internal_edges(cp: &CredPlan<'_>, edges: &mut Vec<Edge>) {
    let included: HashMap<&str, &Step> = cp.included.iter().map(|s| (s.id.as_str(), *s)).collect();
    for step in &cp.included {
        let Some(to_nodes) = cp.nodes.get(step.id.as_str()) else {
            continue;
        };
        for dep in effective_needs(step, &included, cp.runbook) {
            let Some(from_nodes) = cp.nodes.get(dep) else {
                continue;
            };
            let dep_per_consumer = included.get(dep).is_some_and(|d| d.for_each_consumer);
            for &(to, to_c) in to_nodes {
                for &(from, from_c) in from_nodes {
                    // Per-consumer steps pair up consumer by consumer.
                    if step.for_each_consumer && dep_per_consumer && to_c != from_c {
                        continue;
                    }
                    edges.push(Edge {
                        from,
                        to,
                        kind: EdgeKind::Needs,
                    });
                }
            }
        }
    }
    // Phase order: every step of a phase waits for every step of the previous non-empty one.
    // Revoking first, the revoke waits only for the prepare steps it needs: a read-only look
    // it does not use (forensics: when the old key was last used) must not keep an exposed
    // value alive; it runs beside the revoke and before the next phase (a cleanup that deletes
    // the old value must not come before it).
    let nodes_of = |phase: Phase, keep: &dyn Fn(&Step) -> bool| -> Vec<u32> {
        cp.included
            .iter()
            .filter(|s| s.phase == phase && keep(s))
            .filter_map(|s| cp.nodes.get(s.id.as_str()))
            .flatten()
            .map(|&(n, _)| n)
            .collect()
    };
    let needed = if cp.strategy == Strategy::RevokeFirst {
        needs_closure(
            cp.included.iter().filter(|s| s.phase == Phase::Revoke),
            &included,
            cp.runbook,
        )
    } else {
        HashSet::new()
    };
    let mut previous: Vec<u32> = Vec::new();
    // Prepare steps the revoke does not need: they wait for the phase after it.
    let mut deferred: Vec<u32> = Vec::new();
    for phase in cp.strategy.phases() {
        let current = nodes_of(phase, &|_| true);
        if current.is_empty() {
            continue;
        }
        let mut from = std::mem::take(&mut deferred);
        if phase == Phase::Revoke && cp.strategy == Strategy::RevokeFirst {
            deferred = nodes_of(Phase::Prepare, &|s| !needed.contains(s.id.as_str()));
            from.extend(previous.iter().filter(|n| !deferred.contains(n)));
        } else {
            from.extend(&previous);
        }
        for &f in &from {
            for &to in &current {
                edges.push(Edge {
                    from: f,
                    to,
                    kind: EdgeKind::Phase,
                });
            }
        }
        previous = current;
    }
}

/// Every step `steps` need, directly or through others (looking through left-out steps).
fn needs_closure<'a>(
    steps: impl Iterator<Item = &'a &'a Step>,
    included: &HashMap<&str, &'a Step>,
    runbook: &'a Runbook,
) -> HashSet<&'a str> {
    let mut out = HashSet::new();
    let mut stack: Vec<&Step> = steps.copied().collect();
    while let Some(step) = stack.pop() {
        for dep in effective_needs(step, included, runbook) {
            if out.insert(dep)
                && let Some(s) = included.get(dep)
            {
                stack.push(s);
            }
        }
    }
    out
}

/// `needs` of a step, looking through steps this mode leaves out (their own needs stand in).
fn effective_needs<'a>(
    step: &'a Step,
    included: &HashMap<&str, &'a Step>,
    runbook: &'a Runbook,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut stack: Vec<&str> = step.needs.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        if included.contains_key(n) {
            out.push(n);
        } else if let Some(s) = runbook.step(n) {
            stack.extend(s.needs.iter().map(String::as_str));
        }
    }
    out
}

/// A credential whose helper is in the plan waits, for every step that uses the helper, until
/// the helper's new value is verified; a helper rotated first keeps its old value until those
/// steps are done.
fn helper_edges(cps: &[CredPlan<'_>], steps: &[PlannedStep], edges: &mut Vec<Edge>) {
    let by_id: HashMap<&str, &CredPlan<'_>> =
        cps.iter().map(|cp| (cp.cred.id.as_str(), cp)).collect();
    for cp in cps {
        let Some(helper) = cp.cred.rotate_with.as_deref().and_then(|h| by_id.get(h)) else {
            continue;
        };
        let verified: Vec<u32> = helper
            .nodes
            .values()
            .flatten()
            .map(|&(n, _)| n)
            // Its checks: the verify phase, and checks that run before delivery (a value a
            // person typed is checked before any consumer gets it).
            .filter(|&n| {
                steps[n as usize].phase == Phase::Verify
                    || steps[n as usize].effect == Effect::Verify
            })
            .collect();
        // Rotating first, the helper's old value is what this build authenticates with (a
        // variable such as GITHUB_TOKEN keeps it): its revoke waits until the steps that use it
        // are done, or they would meet a dead token. Revoking first (exposed), it goes at once;
        // the operator gives the new value to what uses it.
        let retired: Vec<u32> = if helper.strategy == Strategy::RotateFirst {
            helper
                .nodes
                .values()
                .flatten()
                .map(|&(n, _)| n)
                .filter(|&n| matches!(steps[n as usize].phase, Phase::Revoke | Phase::Cleanup))
                .collect()
        } else {
            Vec::new()
        };
        for step in &cp.included {
            if !(step.uses_helper || step.phase == Phase::Deliver) {
                continue;
            }
            for &(node, _) in cp.nodes.get(step.id.as_str()).into_iter().flatten() {
                for &from in &verified {
                    edges.push(Edge {
                        from,
                        to: node,
                        kind: EdgeKind::Helper,
                    });
                }
                for &to in &retired {
                    edges.push(Edge {
                        from: node,
                        to,
                        kind: EdgeKind::Helper,
                    });
                }
            }
        }
    }
}

/// A delivery to a consumer that cannot be read back (a write-only GitHub Actions secret)
/// waits until every readable consumer of the same credential holds the value. A crash that
/// loses the value in memory then never leaves it only where it cannot be recovered: once a
/// write-only consumer may hold it, a readable one does, and resume reads it from there instead
/// of stopping (it never deletes a value that may be live).
fn readback_edges(cps: &[CredPlan<'_>], steps: &[PlannedStep], edges: &mut Vec<Edge>) {
    for cp in cps {
        let deliveries: Vec<u32> = cp
            .nodes
            .values()
            .flatten()
            .map(|&(n, _)| n)
            .filter(|&n| steps[n as usize].action == "consumer.deliver")
            .collect();
        let readable = |n: u32| {
            steps[n as usize]
                .target
                .as_ref()
                .is_some_and(Consumer::readable)
        };
        for &to in deliveries.iter().filter(|&&n| !readable(n)) {
            for &from in deliveries.iter().filter(|&&n| readable(n)) {
                edges.push(Edge {
                    from,
                    to,
                    kind: EdgeKind::Readback,
                });
            }
        }
    }
}

/// Sorts steps topologically (petgraph), renumbers them and the edges, and fills each
/// credential's ordered step list.
fn order(
    mode: Mode,
    credentials: Vec<PlannedCredential>,
    steps: Vec<PlannedStep>,
    mut edges: Vec<Edge>,
) -> Result<Plan, PlanError> {
    edges.sort_by_key(|e| (e.from, e.to, e.kind));
    edges.dedup_by_key(|e| (e.from, e.to));

    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(steps.len(), edges.len());
    for _ in 0..steps.len() {
        g.add_node(());
    }
    for e in &edges {
        g.add_edge(e.from.into(), e.to.into(), ());
    }
    let topo = stable_toposort(&g).ok_or_else(|| {
        // Report the loop: the strongly connected component with more than one step.
        let sccs = petgraph::algo::tarjan_scc(&g);
        let scc = sccs.into_iter().find(|c| c.len() > 1).unwrap_or_default();
        PlanError::Cycle(
            scc.iter()
                .rev()
                .map(|n| steps[n.index()].id.clone())
                .collect(),
        )
    })?;
    // Stable order: topological, then by credential so a credential's steps stay together.
    let mut new_index = vec![0u32; steps.len()];
    for (pos, n) in topo.iter().enumerate() {
        new_index[n.index()] = u32::try_from(pos).expect("fewer than 2^32 steps");
    }
    let mut slots: Vec<Option<PlannedStep>> = steps.into_iter().map(Some).collect();
    let ordered: Vec<PlannedStep> = topo
        .iter()
        .map(|n| slots[n.index()].take().expect("each node once"))
        .collect();
    for e in &mut edges {
        e.from = new_index[e.from as usize];
        e.to = new_index[e.to as usize];
    }
    edges.sort_by_key(|e| (e.to, e.from));
    // List credentials in the order they start (helpers before the credentials that wait for
    // them), so the printed plan reads top to bottom.
    let mut first_step = vec![u32::MAX; credentials.len()];
    for (i, s) in ordered.iter().enumerate() {
        let f = &mut first_step[s.credential as usize];
        *f = (*f).min(u32::try_from(i).expect("fewer than 2^32 steps"));
    }
    let mut by_start: Vec<usize> = (0..credentials.len()).collect();
    by_start.sort_by_key(|&c| (first_step[c], c));
    let mut new_cred = vec![0u32; credentials.len()];
    for (pos, &c) in by_start.iter().enumerate() {
        new_cred[c] = u32::try_from(pos).expect("fewer than 2^32 credentials");
    }
    let mut cred_slots: Vec<Option<PlannedCredential>> =
        credentials.into_iter().map(Some).collect();
    let mut credentials: Vec<PlannedCredential> = by_start
        .iter()
        .map(|&c| cred_slots[c].take().expect("each credential once"))
        .collect();
    let mut ordered = ordered;
    for s in &mut ordered {
        s.credential = new_cred[s.credential as usize];
    }
    for (i, s) in ordered.iter().enumerate() {
        let c = &mut credentials[s.credential as usize];
        let i = u32::try_from(i).expect("fewer than 2^32 steps");
        c.steps.push(i);
        if s.irreversible && c.first_irreversible.is_none() {
            c.first_irreversible = Some(i);
        }
    }
    Ok(Plan {
        format: PLAN_FORMAT,
        mode,
        credentials,
        steps: ordered,
        edges,
    })
}

/// Kahn's algorithm, always taking the ready step that was created first: unconstrained steps
/// keep inventory and runbook order, so plans read (and diff) predictably. `None` on a cycle.
fn stable_toposort(g: &DiGraph<(), ()>) -> Option<Vec<petgraph::graph::NodeIndex>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut indegree: Vec<usize> = g
        .node_indices()
        .map(|n| {
            g.neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut out = Vec::with_capacity(indegree.len());
    while let Some(Reverse(i)) = ready.pop() {
        let n = petgraph::graph::NodeIndex::new(i);
        out.push(n);
        for m in g.neighbors_directed(n, petgraph::Direction::Outgoing) {
            indegree[m.index()] -= 1;
            if indegree[m.index()] == 0 {
                ready.push(Reverse(m.index()));
            }
        }
    }
    (out.len() == indegree.len()).then_some(out)
}

/// What the capability map says about this credential under this strategy.
fn capability_notes(c: &Credential, strategy: Strategy) -> Vec<Note> {
    let mut notes = Vec::new();
    let warn = |text: String| Note {
        level: NoteLevel::Warning,
        text,
    };
    let caps = c.kind.capabilities();
    if c.kind.is_legacy() {
        notes.push(warn(format!(
            "legacy credential kind {}: {}",
            c.kind, caps.note
        )));
    }
    let downtime = match (c.kind, c.field("provider"), c.field("strategy")) {
        (CredentialKind::OauthClientSecret, Some("auth0"), _) => Some(
            "Auth0 keeps one secret per client: rotate-secret ends the old at once, so consumers fail until delivery",
        ),
        (CredentialKind::PostgresPassword, _, None | Some("single")) => Some(
            "one password per role: new logins with the old password fail from set-password until consumers have the new one (use strategy: alternating for none)",
        ),
        (CredentialKind::MysqlPassword, _, _) => Some(
            "one password per user: new logins with the old password fail from set-password until consumers have the new one",
        ),
        _ => None,
    };
    // Auth0's rotation is its revoke too, so it means downtime in an incident as well.
    let auth0 = c.kind == CredentialKind::OauthClientSecret && c.field("provider") == Some("auth0");
    if let Some(d) = downtime
        && (strategy == Strategy::RotateFirst || auth0)
    {
        notes.push(warn(format!("downtime: {d}")));
    }
    if matches!(c.kind, CredentialKind::GcpServiceAccountKey) && strategy == Strategy::RevokeFirst {
        notes.push(warn(
            "access tokens already minted with the old key stay valid until they expire (up to 1 hour)".into(),
        ));
    }
    if matches!(c.kind, CredentialKind::GcpServiceAccountKey) && strategy == Strategy::RotateFirst {
        notes.push(Note {
            level: NoteLevel::Info,
            text: "disabling or deleting the old key does not end access tokens already minted with it: they stay valid until they expire (up to 1 hour)".into(),
        });
    }
    if matches!(
        c.kind,
        CredentialKind::PostgresPassword | CredentialKind::MysqlPassword
    ) && strategy == Strategy::RevokeFirst
    {
        notes.push(Note {
            level: NoteLevel::Info,
            text: "open sessions survive a password change: they are terminated after login is disabled".into(),
        });
    }
    notes
}

/// Overlap limits that a plan would break: IAM allows 2 keys per user (a rotation needs one
/// free), GCP 10 per service account.
fn check_headroom(inv: &Inventory, chosen: &[usize], refusals: &mut Vec<Refusal>) {
    let mut groups: BTreeMap<(CredentialKind, String), Vec<&Credential>> = BTreeMap::new();
    for c in &inv.credentials {
        let owner_key = match c.kind {
            CredentialKind::AwsIamAccessKey => format!(
                "{}/{}",
                c.field("account_id").unwrap_or("-"),
                c.field("user_name").unwrap_or_default()
            ),
            CredentialKind::GcpServiceAccountKey => {
                c.field("service_account").unwrap_or_default().to_owned()
            }
            _ => continue,
        };
        groups.entry((c.kind, owner_key)).or_default().push(c);
    }
    let selected: HashSet<&str> = chosen
        .iter()
        .map(|&i| inv.credentials[i].id.as_str())
        .collect();
    for ((kind, _), members) in groups {
        let limit = kind.capabilities().max_overlap.unwrap_or(u32::MAX) as usize;
        // A rotation holds old and new at once: each tracked key on the owner needs one more slot.
        if members.len() < limit || !members.iter().any(|c| selected.contains(c.id.as_str())) {
            continue;
        }
        let ids: Vec<&str> = members.iter().map(|c| c.id.as_str()).collect();
        let (owner, help) = match kind {
            CredentialKind::AwsIamAccessKey => (
                format!(
                    "IAM user `{}`",
                    members[0].field("user_name").unwrap_or_default()
                ),
                "IAM allows 2 access keys per user and a rotation needs a free one: give each key its own IAM user, or delete one key and its inventory entry first",
            ),
            _ => (
                format!(
                    "service account `{}`",
                    members[0].field("service_account").unwrap_or_default()
                ),
                "GCP allows 10 keys per service account and a rotation needs a free one: delete an unused key first",
            ),
        };
        for c in members.iter().filter(|c| selected.contains(c.id.as_str())) {
            refusals.push(Refusal {
                credential: c.id.clone(),
                message: format!(
                    "{owner} holds {} tracked keys ({}); rotating needs one more, beyond the limit of {limit}",
                    members.len(),
                    ids.join(", ")
                ),
                help: Some(help.into()),
                location: Some(c.location.clone()),
            });
        }
    }
}
