//! What the provider tests share besides the servers (those are `rekey_testkit`'s): plans
//! compiled from a test inventory, step inputs resolved the way the engine resolves them, and
//! looking for secrets in messages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use rekey_engine::{Call, Provider, ProviderError, Value, Values};
use rekey_plan::{Plan, PlanRequest, PlannedStep, Selection};
use rekey_spec::template::Part;
use rekey_spec::{Mode, SourceFile, Var};
use rekey_testkit::ADMIN_PASSWORD;

// ---------------------------------------------------------------------------------------------
// Env files and digests

/// The value of `key` in the env file `text` (unquoted).
pub(crate) fn env_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(
            v.strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .map_or_else(|| v.to_owned(), |x| x.replace("'\\''", "'")),
        )
    })
}

/// A short hash of `bytes`, to compare state derived from a secret without showing it.
pub(crate) fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)[..8]
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ---------------------------------------------------------------------------------------------
// Plans and calls

/// The plan of `inventory` with the bundled runbooks; only credential `only` when given.
pub(crate) fn compile(inventory: &str, mode: Mode, only: Option<&str>) -> Plan {
    let inv =
        rekey_spec::parse_inventory(&[Arc::new(SourceFile::new("inventory.yaml", inventory))])
            .expect("the test inventory is valid");
    let runbooks = rekey_spec::load_runbooks(None).expect("the bundled runbooks are valid");
    rekey_plan::compile(&PlanRequest {
        inventory: &inv,
        runbooks: &runbooks,
        selection: &Selection {
            credentials: only.map(|c| vec![c.to_owned()]).unwrap_or_default(),
            ..Selection::default()
        },
        mode,
        exposed: None,
    })
    .expect("the test plan compiles")
}

/// The step `id` of `plan`.
pub(crate) fn step<'p>(plan: &'p Plan, id: &str) -> &'p PlannedStep {
    let Some((_, s)) = plan.step(id) else {
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        panic!("no step {id} in the plan: {ids:?}")
    };
    s
}

/// A step's inputs as the engine resolves them: literal text as it is, `run.*` as the run id,
/// step outputs from `outputs` (by runbook step name; secret if any part is). `Err` names an
/// output that is not available.
pub(crate) fn resolve(
    step: &PlannedStep,
    run_id: &str,
    outputs: &BTreeMap<String, Values>,
) -> Result<Values, String> {
    let mut values = Values::new();
    for (name, t) in &step.inputs {
        let mut text = String::new();
        let mut secret = false;
        for part in &t.parts {
            match part {
                Part::Text(s) => text.push_str(s),
                Part::Var(Var::Run { .. }) => text.push_str(run_id),
                Part::Var(Var::StepOutput { step: from, output }) => {
                    let v = outputs
                        .get(from.as_str())
                        .and_then(|o| o.get(output.as_str()))
                        .ok_or_else(|| {
                            format!("input `{name}` needs output `{output}` of `{from}`")
                        })?;
                    secret |= v.is_secret();
                    text.push_str(v.expose());
                }
                Part::Var(v) => return Err(format!("input `{name}` has an unfilled {v}")),
            }
        }
        let v = if secret {
            Value::secret(text)
        } else {
            Value::Plain(text)
        };
        values.insert(name.clone(), v);
    }
    Ok(values)
}

/// The step's plan inputs (only the literal ones), plus `extra` (secrets from earlier steps).
pub(crate) fn literal_inputs(plan: &Plan, id: &str, extra: &[(&str, Value)]) -> Values {
    let mut v: Values = step(plan, id)
        .inputs
        .iter()
        .filter_map(|(k, t)| t.as_literal().map(|l| (k.clone(), Value::Plain(l))))
        .collect();
    for (k, x) in extra {
        v.insert((*k).to_owned(), x.clone());
    }
    v
}

/// A call of step `id` with a fixed idempotency key.
pub(crate) fn call<'a>(plan: &'a Plan, id: &str, inputs: &'a Values) -> Call<'a> {
    let s = step(plan, id);
    Call {
        run_id: "run-test",
        step: s,
        credential: &plan.credentials[s.credential as usize],
        inputs,
        idempotency_key: "test-key",
        attempt: 1,
        tried_before: false,
        reports: rekey_engine::Reports::default(),
    }
}

/// Runs step `id` with its literal inputs and `extra`; panics on an error.
pub(crate) async fn run(
    p: &dyn Provider,
    plan: &Plan,
    id: &str,
    extra: &[(&str, Value)],
) -> Values {
    let i = literal_inputs(plan, id, extra);
    p.execute(&call(plan, id, &i))
        .await
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// Runs step `id` like [`run`], expecting an error.
pub(crate) async fn run_err(
    p: &dyn Provider,
    plan: &Plan,
    id: &str,
    extra: &[(&str, Value)],
) -> ProviderError {
    let i = literal_inputs(plan, id, extra);
    match p.execute(&call(plan, id, &i)).await {
        Ok(v) => panic!("{id} should fail, gave {v:?}"),
        Err(e) => e,
    }
}

/// Fails if `message` holds any of `secrets` or the database admin password.
pub(crate) fn assert_clean(message: &str, secrets: &[&str]) {
    for s in secrets.iter().chain(&[ADMIN_PASSWORD]) {
        assert!(
            !message.contains(s),
            "a secret leaked into the message: {message}"
        );
    }
}
