//! Runbooks: the declarative rotation procedure of one credential kind.
//!
//! ```yaml
//! kind: aws_iam_access_key
//! steps:
//!   - id: create
//!     phase: mint
//!     action: aws.iam.create_access_key
//!     with: { user_name: "{{ credential.user_name }}" }
//! ```
//!
//! Every kind has a bundled runbook (compiled into the binary from `runbooks/`); a team's
//! `--runbooks` folder adds or replaces them, one per kind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use marked_yaml::Spanned;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::action::{ActionSpec, Effect, Mode, Phase, action};
use crate::diag::{Location, SourceFile, SpecError, SpecErrors};
use crate::inventory::{closest, read_source, yaml_files};
use crate::kind::{CredentialKind, kind_names};
use crate::template::{Template, Var};
use crate::yaml;

type S = Spanned<String>;

// The raw types' `JsonSchema` derives are the runbook's JSON Schema (`rekey schema runbook`,
// `crate::schema`): a field added here is in the schema too, and its doc comment is the
// description editors show.
/// A rekey runbook: the rotation procedure of one credential kind, as steps.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "Runbook",
    title = "rekey runbook",
    transform = crate::schema::runbook_kinds
)]
pub(crate) struct RawRunbook {
    /// The credential kind this runbook rotates: one runbook per kind, and a team's replaces
    /// the bundled one.
    #[schemars(schema_with = "crate::schema::credential_kind")]
    kind: S,
    /// What the procedure does and why, for the people who read it.
    #[serde(default)]
    description: Option<String>,
    /// The steps; the plan orders them by phase, `needs` and the step outputs their inputs use.
    #[schemars(length(min = 1))]
    steps: Vec<RawStep>,
}

/// One step: an action from the registry, in a phase, with its inputs.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Step", transform = crate::schema::step_actions)]
pub(crate) struct RawStep {
    /// The step's id (letters, digits, `-`, `_`), unique in the runbook: `needs` and
    /// `{{ steps.ID.outputs.NAME }}` name it.
    #[schemars(schema_with = "crate::schema::step_id")]
    id: S,
    /// The action it runs, from the registry (`rekey validate --actions` lists every action).
    #[schemars(schema_with = "crate::schema::action_name")]
    action: S,
    /// Where the step sits in the rotation; `prepare` steps may only read.
    #[schemars(with = "Phase")]
    phase: S,
    /// What the step does, shown in the plan.
    #[serde(default)]
    description: Option<String>,
    /// The action's inputs: plain values or templates (`{{ credential.user_name }}`,
    /// `{{ consumer.secret_id }}`, `{{ steps.create.outputs.access_key_id }}`). A secret step
    /// output may only go into an input that keeps it in memory.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::schema::Scalar>")]
    with: HashMap<S, S>,
    /// Steps that must succeed first, besides those whose outputs `with` uses (added by
    /// themselves).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    needs: Vec<S>,
    /// The step cannot be undone (required for actions that delete): once it has started, a
    /// failure stops for an operator instead of undoing what was done.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    irreversible: Option<Spanned<bool>>,
    /// What an operator does: required by manual actions (`manual.provide_secret`,
    /// `manual.confirm`), refused on automatic ones.
    #[serde(default)]
    manual: Option<RawManual>,
    /// `consumer`: the step runs once per consumer of the credential (required by the actions
    /// that run per consumer: `consumer.deliver`, `consumer.promote`).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::for_each")]
    for_each: Option<S>,
    /// The modes the step runs in (absent: every mode).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::modes")]
    modes: Vec<S>,
    /// Only for credentials whose field (a field of the runbook's kind) has one of the listed
    /// values; `""` matches a field the credential leaves out. Every entry must match.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<crate::schema::Scalar>>")]
    when: HashMap<S, Vec<S>>,
    /// The step authenticates with the credential's `rotate_with` helper, so it waits until
    /// the helper's new value is verified.
    #[serde(default)]
    uses_helper: Option<bool>,
}

/// Instructions for the operator of a manual step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Manual")]
pub(crate) struct RawManual {
    /// What to do, step by step; templates such as `{{ credential.app_slug }}` are filled in.
    #[schemars(with = "String")]
    instructions: S,
    /// Where to do it (a URL; templates are filled in).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    link: Option<S>,
}

/// Instructions for an operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manual {
    pub instructions: Template,
    pub link: Option<Template>,
}

/// A checked runbook step.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub action: &'static ActionSpec,
    pub phase: Phase,
    pub description: Option<String>,
    /// Inputs sorted by name.
    pub inputs: BTreeMap<String, Template>,
    /// Explicit `needs` plus every step whose outputs the inputs use.
    pub needs: Vec<String>,
    pub irreversible: bool,
    pub manual: Option<Manual>,
    pub for_each_consumer: bool,
    /// Empty: every mode.
    pub modes: Vec<Mode>,
    /// Credential field → accepted values; all must match for the step to be included. An
    /// empty string matches a field the credential leaves out (`when: { token_key: [""] }`).
    pub when: Vec<(String, Vec<String>)>,
    /// This step authenticates with the credential's `rotate_with` helper.
    pub uses_helper: bool,
    pub location: Location,
}

impl Step {
    pub fn applies(&self, mode: Mode, field: impl Fn(&str) -> Option<String>) -> bool {
        (self.modes.is_empty() || self.modes.contains(&mode))
            && self.when.iter().all(|(f, values)| {
                field(f).map_or_else(
                    || values.iter().any(String::is_empty),
                    |v| values.contains(&v),
                )
            })
    }
}

/// A checked runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub kind: CredentialKind,
    pub description: Option<String>,
    pub steps: Vec<Step>,
    pub location: Location,
    pub bundled: bool,
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// One runbook per credential kind.
#[derive(Debug, Clone, Default)]
pub struct Runbooks {
    by_kind: BTreeMap<CredentialKind, Runbook>,
}

impl Runbooks {
    pub fn get(&self, kind: CredentialKind) -> Option<&Runbook> {
        self.by_kind.get(&kind)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.by_kind.values()
    }
}

macro_rules! bundled {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../../runbooks/", $file)))),*]
    };
}

/// The runbooks shipped with rekey, one per kind.
pub static BUNDLED: &[(&str, &str)] = bundled![
    "aws_iam_access_key.yaml",
    "gcp_service_account_key.yaml",
    "github_fine_grained_pat.yaml",
    "github_classic_pat.yaml",
    "github_app_private_key.yaml",
    "npm_granular_token.yaml",
    "npm_classic_token.yaml",
    "huggingface_token.yaml",
    "oauth_client_secret.yaml",
    "postgres_password.yaml",
    "mysql_password.yaml",
];

/// The bundled runbooks, then those in `dir` (if given and present) replacing them per kind.
pub fn load_runbooks(dir: Option<&Path>) -> Result<Runbooks, SpecErrors> {
    let bundled: Vec<Arc<SourceFile>> = BUNDLED
        .iter()
        .map(|(name, text)| Arc::new(SourceFile::new(format!("<bundled>/runbooks/{name}"), *text)))
        .collect();
    let mut runbooks = parse_runbooks(&bundled, true)?;
    if let Some(dir) = dir {
        let files = yaml_files(dir)?;
        let mut errors = SpecErrors::default();
        let mut sources = Vec::new();
        for path in &files {
            match read_source(path) {
                // A copy of a bundled runbook (as in rekey's own checkout) is not an override.
                Ok(s) if BUNDLED.iter().any(|(_, text)| *text == s.text()) => {}
                Ok(s) => sources.push(s),
                Err(e) => errors.push(e),
            }
        }
        match parse_runbooks(&sources, false) {
            Ok(own) => {
                for (kind, rb) in own.by_kind {
                    runbooks.by_kind.insert(kind, rb);
                }
            }
            Err(e) => errors.0.extend(e.0),
        }
        errors.into_result(())?;
    }
    Ok(runbooks)
}

/// Parses and checks runbook sources; at most one runbook per kind among them.
pub fn parse_runbooks(sources: &[Arc<SourceFile>], bundled: bool) -> Result<Runbooks, SpecErrors> {
    let mut errors = SpecErrors::default();
    let mut out = Runbooks::default();
    for file in sources {
        let rb = yaml::parse(file).and_then(|node| {
            yaml::refuse_secrets(file, &node, &mut errors);
            yaml::from_node::<RawRunbook>(file, &node, "runbook")
        });
        let raw = match rb {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(rb) = check_runbook(file, raw, bundled, &mut errors) {
            if let Some(prev) = out.by_kind.get(&rb.kind) {
                errors.push(
                    SpecError::at(
                        rb.location.clone(),
                        format!("a second runbook for kind {}", rb.kind),
                    )
                    .related(prev.location.clone(), "first runbook"),
                );
                continue;
            }
            out.by_kind.insert(rb.kind, rb);
        }
    }
    errors.into_result(out)
}

fn at(file: &Arc<SourceFile>, s: &S) -> Location {
    Location::from_span(file, s.span())
}

/// A location inside a scalar: skip the opening quote of a quoted scalar.
fn inside(file: &Arc<SourceFile>, s: &S, chars: usize, len: usize) -> Location {
    let base = at(file, s);
    let quoted = file.text()[..]
        .lines()
        .nth(base.line - 1)
        .and_then(|l| l.chars().nth(base.column - 1))
        .is_some_and(|c| c == '"' || c == '\'');
    base.shifted(chars + usize::from(quoted), len)
}

const CREDENTIAL_COMMON_VARS: &[&str] = &["id", "kind", "owner"];
const CONSUMER_VARS: &[&str] = &[
    "type",
    "label",
    "secret_id",
    "region",
    "name",
    "path",
    "key",
    "field",
];

fn check_runbook(
    file: &Arc<SourceFile>,
    raw: RawRunbook,
    bundled: bool,
    errors: &mut SpecErrors,
) -> Option<Runbook> {
    let before = errors.len();
    let Ok(kind) = raw.kind.parse::<CredentialKind>() else {
        errors.push(
            SpecError::at(
                at(file, &raw.kind),
                format!("unknown credential kind `{}`", raw.kind.as_str()),
            )
            .label("unknown kind")
            .help(format!("expected one of {}", kind_names())),
        );
        return None;
    };
    if raw.steps.is_empty() {
        errors.push(SpecError::at(
            at(file, &raw.kind),
            format!("runbook for {kind} has no steps"),
        ));
        return None;
    }

    // First pass: ids and actions, so templates can be checked against every step.
    let mut ids: HashMap<&str, (&RawStep, Option<&'static ActionSpec>)> = HashMap::new();
    for step in &raw.steps {
        let id_ok = !step.id.is_empty()
            && step
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            errors.push(
                SpecError::at(
                    at(file, &step.id),
                    format!("invalid step id `{}`", step.id.as_str()),
                )
                .help("step ids use letters, digits, `-` and `_`"),
            );
        }
        let spec = action(&step.action);
        if spec.is_none() {
            let names = crate::action::ACTIONS.iter().map(|a| a.name);
            let mut e = SpecError::at(
                at(file, &step.action),
                format!("unknown action `{}`", step.action.as_str()),
            )
            .label("not in the action registry");
            e = match closest(&step.action, names) {
                Some(best) => e.help(format!(
                    "did you mean `{best}`? `rekey validate --actions` lists every action"
                )),
                None => e.help("`rekey validate --actions` lists every action"),
            };
            errors.push(e);
        }
        if let Some((first, _)) = ids.get(step.id.as_str()) {
            errors.push(
                SpecError::at(
                    at(file, &step.id),
                    format!("duplicate step id `{}`", step.id.as_str()),
                )
                .related(at(file, &first.id), "first defined"),
            );
            continue;
        }
        ids.insert(step.id.as_str(), (step, spec));
    }

    let mut steps = Vec::new();
    for step in &raw.steps {
        let Some(spec) = action(&step.action) else {
            continue;
        };
        let Some(phase) = Phase::parse(&step.phase) else {
            errors.push(
                SpecError::at(
                    at(file, &step.phase),
                    format!("unknown phase `{}`", step.phase.as_str()),
                )
                .help("expected one of prepare, revoke, mint, deliver, verify, cleanup"),
            );
            continue;
        };
        if phase == Phase::Prepare && spec.effect != Effect::Read {
            errors.push(
                SpecError::at(
                    at(file, &step.phase),
                    format!(
                        "`{}` changes things; prepare steps may only read",
                        spec.name
                    ),
                )
                .help(
                    "prepare runs before the revoke of an incident; put this step in another phase",
                ),
            );
        }
        let for_each = match &step.for_each {
            None => false,
            Some(f) if f.as_str() == "consumer" => true,
            Some(f) => {
                errors.push(
                    SpecError::at(at(file, f), format!("unknown for_each `{}`", f.as_str()))
                        .help("expected `consumer`"),
                );
                false
            }
        };
        if spec.per_consumer && !for_each {
            errors.push(
                SpecError::at(
                    at(file, &step.action),
                    format!("`{}` runs once per consumer", spec.name),
                )
                .help("add `for_each: consumer` to the step"),
            );
        }
        let manual = match (&step.manual, spec.manual) {
            (Some(m), true) => Some(Manual {
                instructions: check_template(
                    file,
                    &m.instructions,
                    kind,
                    for_each,
                    step,
                    &ids,
                    None,
                    errors,
                )
                .unwrap_or_else(|| Template::literal("")),
                link: m.link.as_ref().and_then(|l| {
                    check_template(file, l, kind, for_each, step, &ids, None, errors)
                }),
            }),
            (None, true) => {
                errors.push(SpecError::at(
                    at(file, &step.action),
                    format!(
                        "`{}` needs a human: add `manual:` with `instructions` (and a `link`)",
                        spec.name
                    ),
                ));
                None
            }
            (Some(_), false) => {
                errors.push(
                    SpecError::at(
                        at(file, &step.id),
                        format!(
                            "`manual:` is only for manual actions; `{}` is automatic",
                            spec.name
                        ),
                    )
                    .help(
                        "use `action: manual.provide_secret` or `manual.confirm` for a human step",
                    ),
                );
                None
            }
            (None, false) => None,
        };

        let mut inputs = BTreeMap::new();
        let mut needs: Vec<String> = Vec::new();
        let mut with: Vec<(&S, &S)> = step.with.iter().collect();
        with.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (name, value) in with {
            let param = spec.input(name);
            if param.is_none() && !spec.open_inputs {
                let names: Vec<&str> = spec.inputs.iter().map(|p| p.name).collect();
                errors.push(
                    SpecError::at(
                        at(file, name),
                        format!("`{}` takes no input `{}`", spec.name, name.as_str()),
                    )
                    .label("unknown input")
                    .help(if names.is_empty() {
                        "it takes no inputs".to_owned()
                    } else {
                        format!("it takes: {}", names.join(", "))
                    }),
                );
                continue;
            }
            let accepts_secret = spec.open_inputs || param.is_some_and(|p| p.secret);
            if let Some(t) = check_template(
                file,
                value,
                kind,
                for_each,
                step,
                &ids,
                Some(accepts_secret),
                errors,
            ) {
                for v in t.vars() {
                    if let Var::StepOutput { step: dep, .. } = v
                        && !needs.contains(dep)
                    {
                        needs.push(dep.clone());
                    }
                }
                inputs.insert(name.to_string(), t);
            }
        }
        for param in spec.inputs.iter().filter(|p| p.required) {
            if !step.with.keys().any(|k| k.as_str() == param.name) {
                errors.push(
                    SpecError::at(
                        at(file, &step.action),
                        format!("`{}` needs input `{}`", spec.name, param.name),
                    )
                    .help(format!("add `{}: …` under `with:`", param.name)),
                );
            }
        }
        for n in &step.needs {
            if n.as_str() == step.id.as_str() {
                errors.push(SpecError::at(
                    at(file, n),
                    format!("step `{}` needs itself", step.id.as_str()),
                ));
            } else if !ids.contains_key(n.as_str()) {
                let mut e = SpecError::at(
                    at(file, n),
                    format!("`needs` names unknown step `{}`", n.as_str()),
                );
                if let Some(best) = closest(n, ids.keys().copied()) {
                    e = e.help(format!("did you mean `{best}`?"));
                }
                errors.push(e);
            } else if !needs.iter().any(|x| x == n.as_str()) {
                needs.push(n.to_string());
            }
        }
        let mut modes = Vec::new();
        for m in &step.modes {
            match Mode::parse(m) {
                Some(mode) => modes.push(mode),
                None => errors.push(
                    SpecError::at(at(file, m), format!("unknown mode `{}`", m.as_str()))
                        .help("expected drill or incident"),
                ),
            }
        }
        let mut when = Vec::new();
        let mut when_keys: Vec<(&S, &Vec<S>)> = step.when.iter().collect();
        when_keys.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (field, values) in when_keys {
            if !kind.fields().iter().any(|f| f.name == field.as_str()) {
                errors.push(SpecError::at(
                    at(file, field),
                    format!(
                        "`when` names `{}`, which is not a field of {kind}",
                        field.as_str()
                    ),
                ));
                continue;
            }
            when.push((
                field.to_string(),
                values.iter().map(|v| v.to_string()).collect(),
            ));
        }
        let irreversible = step.irreversible.as_ref().is_some_and(|b| **b);
        if spec.effect == Effect::Delete && !irreversible {
            errors.push(SpecError::at(
                at(file, &step.action),
                format!(
                    "`{}` deletes and cannot be undone: mark the step `irreversible: true`",
                    spec.name
                ),
            ));
        }
        steps.push(Step {
            id: step.id.to_string(),
            action: spec,
            phase,
            description: step.description.clone(),
            inputs,
            needs,
            irreversible,
            manual,
            for_each_consumer: for_each,
            modes,
            when,
            uses_helper: step.uses_helper.unwrap_or(false),
            location: at(file, &step.id),
        });
    }

    // Only when every step was understood: a step dropped for a typo is not a missing phase.
    if errors.len() > before {
        return None;
    }
    if !steps.iter().any(|s| s.phase == Phase::Mint) {
        errors.push(
            SpecError::at(
                at(file, &raw.kind),
                format!("runbook for {kind} has no `mint` step"),
            )
            .help("a rotation creates a new value"),
        );
    }
    if !steps.iter().any(|s| s.phase == Phase::Verify) {
        errors.push(
            SpecError::at(
                at(file, &raw.kind),
                format!("runbook for {kind} has no `verify` step"),
            )
            .help("nothing may be revoked before the new value is proven"),
        );
    }
    check_step_cycles(&steps, errors);

    if errors.len() > before {
        return None;
    }
    Some(Runbook {
        kind,
        description: raw.description,
        steps,
        location: at(file, &raw.kind),
        bundled,
    })
}

/// Checks one template: syntax, variable roots, fields and outputs that exist, and that no
/// secret output flows into an input that would print or store it.
#[allow(clippy::too_many_arguments)]
fn check_template(
    file: &Arc<SourceFile>,
    value: &S,
    kind: CredentialKind,
    for_each: bool,
    step: &RawStep,
    ids: &HashMap<&str, (&RawStep, Option<&'static ActionSpec>)>,
    accepts_secret: Option<bool>,
    errors: &mut SpecErrors,
) -> Option<Template> {
    let template = match Template::parse(value) {
        Ok(t) => t,
        Err(e) => {
            let mut err =
                SpecError::at(inside(file, value, e.offset, e.len), e.message).label("here");
            if let Some(h) = e.help {
                err = err.help(h);
            }
            errors.push(err);
            return None;
        }
    };
    let mut ok = true;
    // Locate each variable for errors: the n-th `{{` in the string.
    let offsets: Vec<usize> = value
        .match_indices("{{")
        .map(|(i, _)| value[..i].chars().count())
        .collect();
    for (n, var) in template.vars().enumerate() {
        let offset = offsets.get(n).copied().unwrap_or(0);
        let here = || inside(file, value, offset, var.to_string().len() + 6);
        let problem: Option<(String, String)> = match var {
            Var::Credential { field } => {
                let known = CREDENTIAL_COMMON_VARS.contains(&field.as_str()) || kind.fields().iter().any(|f| f.name == field);
                (!known).then(|| {
                    let names: Vec<&str> = CREDENTIAL_COMMON_VARS.iter().copied().chain(kind.fields().iter().map(|f| f.name)).collect();
                    (format!("{kind} has no field `{field}`"), format!("available: {}", names.join(", ")))
                })
            }
            Var::Consumer { field } => {
                if for_each {
                    (!CONSUMER_VARS.contains(&field.as_str()))
                        .then(|| (format!("consumers have no field `{field}`"), format!("available: {}", CONSUMER_VARS.join(", "))))
                } else {
                    Some(("`consumer.…` is only available in a `for_each: consumer` step".into(), "add `for_each: consumer`".into()))
                }
            }
            Var::Helper { field } => (field != "id").then(|| (format!("unknown helper variable `helper.{field}`"), "only `helper.id` is available".into())),
            Var::Run { field } => (field != "id").then(|| (format!("unknown run variable `run.{field}`"), "only `run.id` is available".into())),
            Var::StepOutput { step: dep, output } => match ids.get(dep.as_str()) {
                None => Some((
                    format!("template references step `{dep}`, which does not exist"),
                    closest(dep, ids.keys().copied()).map_or_else(|| "name a step of this runbook".into(), |b| format!("did you mean `{b}`?")),
                )),
                Some(_) if dep.as_str() == step.id.as_str() => Some((format!("step `{dep}` cannot use its own outputs"), "use an earlier step's output".into())),
                Some((_, None)) => None, // its unknown action is reported already
                Some((_, Some(dep_spec))) => match dep_spec.output(output) {
                    None => {
                        let outs: Vec<&str> = dep_spec.outputs.iter().map(|o| o.name).collect();
                        Some((
                            format!("step `{dep}` ({}) has no output `{output}`", dep_spec.name),
                            if outs.is_empty() { "it has no outputs".into() } else { format!("its outputs: {}", outs.join(", ")) },
                        ))
                    }
                    Some(o) if o.secret && accepts_secret == Some(false) => Some((
                        format!("secret output `{dep}.{output}` cannot go into this input"),
                        "secrets may only flow into inputs that keep them in memory (and never into instructions or links)".into(),
                    )),
                    Some(o) if o.secret && accepts_secret.is_none() => Some((
                        format!("secret output `{dep}.{output}` cannot appear in operator instructions"),
                        "instructions are printed; secrets never are".into(),
                    )),
                    Some(_) => None,
                },
            },
        };
        if let Some((message, help)) = problem {
            errors.push(SpecError::at(here(), message).label("here").help(help));
            ok = false;
        }
    }
    ok.then_some(template)
}

/// Needs (explicit and implied by templates) must not loop inside a runbook.
fn check_step_cycles(steps: &[Step], errors: &mut SpecErrors) {
    fn visit(
        i: usize,
        steps: &[Step],
        index: &HashMap<&str, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
        found: &mut Vec<Vec<usize>>,
    ) {
        state[i] = 1;
        stack.push(i);
        for n in &steps[i].needs {
            let Some(&j) = index.get(n.as_str()) else {
                continue;
            };
            match state[j] {
                0 => visit(j, steps, index, state, stack, found),
                1 => {
                    let pos = stack.iter().position(|&x| x == j).unwrap_or(0);
                    found.push(stack[pos..].to_vec());
                }
                _ => {}
            }
        }
        stack.pop();
        state[i] = 2;
    }
    // 0 = unvisited, 1 = on the stack, 2 = done
    let mut state = vec![0u8; steps.len()];
    let mut reported: HashSet<usize> = HashSet::new();
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut found = Vec::new();
    for i in 0..steps.len() {
        if state[i] == 0 {
            visit(i, steps, &index, &mut state, &mut Vec::new(), &mut found);
        }
    }
    for cycle in found {
        if cycle.iter().any(|i| reported.contains(i)) {
            continue;
        }
        // `needs` points backwards: print the cycle in execution order.
        let names: Vec<&str> = cycle.iter().rev().map(|&i| steps[i].id.as_str()).collect();
        let text = format!("{} → {}", names.join(" → "), names[0]);
        let first = &steps[*cycle.last().expect("a cycle has steps")];
        let mut e = SpecError::at(
            first.location.clone(),
            format!("steps depend on each other in a cycle: {text}"),
        )
        .help("remove one of the `needs` (or template references) that close the loop");
        for &i in cycle.iter().rev().skip(1) {
            e = e.related(steps[i].location.clone(), format!("step `{}`", steps[i].id));
        }
        errors.push(e);
        reported.extend(cycle);
    }
}
