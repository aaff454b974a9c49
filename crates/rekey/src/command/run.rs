//! `rekey run` and `rekey resume`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rekey_engine::{
    Engine, EngineConfig, EngineError, Observer, Providers, RunOutcome, SimOptions, SimProvider,
};
use rekey_plan::{Plan, PlanRequest, PlannedStep};
use rekey_store::{RunStatus, StepState, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::state;
use crate::cli::{ExecArgs, Global, ResumeArgs, RunArgs, SimArgs, parse_duration};
use crate::report::{Failure, stdout_color};

/// How a run was started; stored with it so `resume` carries on the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunOptions {
    pub(crate) simulate: bool,
    pub(crate) latency_ms: u64,
    pub(crate) fail_rate: f64,
    pub(crate) seed: u64,
    pub(crate) fail_steps: Vec<String>,
    pub(crate) sim_ledger: Option<String>,
    /// `--sim-outage` windows, as given.
    #[serde(default)]
    pub(crate) outages: Vec<String>,
    /// `--retry-budget`, in milliseconds (`None`: the engine's default).
    #[serde(default)]
    pub(crate) retry_budget_ms: Option<u64>,
    pub(crate) concurrency: usize,
    pub(crate) per_provider: usize,
    pub(crate) reason: Option<String>,
}

/// Progress: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new(total: usize) -> Self {
        let total = total as u64;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps {msg}",
                )
                .expect("valid template"),
            );
            b
        });
        Self {
            bar,
            total,
            done: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Observer for Progress {
    fn step_finished(&self, step: &PlannedStep, state: StepState) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            if state != StepState::Succeeded {
                bar.println(format!("{state}: {}", step.id));
            }
        } else {
            // Every step of small runs; for large ones, failures and each tenth.
            let every = (self.total / 10).max(1);
            if state != StepState::Succeeded || self.total <= 200 || done.is_multiple_of(every) {
                eprintln!("{state}: {} ({done}/{})", step.id, self.total);
            }
        }
    }

    fn message(&self, text: &str) {
        self.line(text);
    }
}

impl Progress {
    /// A line of its own (a step waiting out trouble), above the bar on a terminal.
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The engine over an open store (callers that already opened it for other reads pass it on).
/// A stored `--sim-outage` (checked when it was given).
fn outage(text: &str) -> anyhow::Result<rekey_engine::Outage> {
    let bad = || anyhow::anyhow!("--sim-outage `{text}`: expected PROVIDER:START+DURATION");
    let (provider, window) = text.split_once(':').ok_or_else(bad)?;
    let (start, duration) = window.split_once('+').ok_or_else(bad)?;
    Ok(rekey_engine::Outage {
        provider: provider.to_owned(),
        start: parse_duration(start).map_err(anyhow::Error::msg)?,
        duration: parse_duration(duration).map_err(anyhow::Error::msg)?,
    })
}

/// `REKEY_SIM_CRASH_AT=N`: abort at the N-th crash point. Only test builds have crash points
/// (the `crash-points` feature): a release binary that honoured a stray variable could stop a
/// real incident response half-way, so it refuses to start instead.
fn crash_at() -> anyhow::Result<Option<u64>> {
    let Some(value) = std::env::var_os("REKEY_SIM_CRASH_AT") else {
        return Ok(None);
    };
    if !cfg!(feature = "crash-points") {
        anyhow::bail!(
            "REKEY_SIM_CRASH_AT is set, but this build has no crash points (they are for tests: \
             build with `--features crash-points`, as ./scripts/test does); unset it to run"
        );
    }
    value
        .to_str()
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "REKEY_SIM_CRASH_AT must be a crash point number (1, 2, …), not `{}`",
                value.display()
            )
        })
}

pub(crate) async fn engine(
    global: &Global,
    store: Arc<rekey_store::Store>,
    options: &RunOptions,
    reason: Option<String>,
    total: usize,
    seed: &[String],
) -> anyhow::Result<Engine> {
    let fingerprints = state::fingerprinter(global)?;
    let crash_at = crash_at()?;
    let providers = if options.simulate {
        let ledger = options.sim_ledger.clone().map_or_else(
            || state::state_dir(global).join("sim-ledger.db"),
            Into::into,
        );
        let sim = SimProvider::open(
            &ledger,
            SimOptions {
                latency: Duration::from_millis(options.latency_ms),
                fail_rate: options.fail_rate,
                seed: options.seed,
                fail_steps: options.fail_steps.iter().cloned().collect(),
                crash_at,
                outages: options
                    .outages
                    .iter()
                    .map(|o| outage(o))
                    .collect::<anyhow::Result<_>>()?,
            },
        )
        .await
        .with_context(|| format!("cannot open the simulator ledger {}", ledger.display()))?;
        // Every credential starts with its current ("seed") value in the simulated provider.
        sim.seed(seed.iter().map(String::as_str))
            .await
            .context("cannot seed the simulator ledger")?;
        Providers::all(Arc::new(sim))
    } else {
        connectors().await?
    };
    Ok(Engine {
        store,
        providers,
        fingerprints,
        config: EngineConfig {
            concurrency: options.concurrency,
            per_provider: options.per_provider,
            actor: state::actor(),
            reason,
            crash_at,
            retry_budget: options
                .retry_budget_ms
                .map_or(EngineConfig::default().retry_budget, Duration::from_millis),
            backoff_base: if options.simulate {
                Duration::from_millis(5)
            } else {
                Duration::from_millis(200)
            },
            ..EngineConfig::default()
        },
        simulated: options.simulate,
        observer: Some(Arc::new(Progress::new(total))),
    })
}

pub(crate) fn outcome(o: &RunOutcome) -> Result<(), Failure> {
    let msg = o.message.clone().unwrap_or_default();
    if let Some(figures) = o.time_to_safe.summary() {
        eprintln!("time to safe: {figures}");
    }
    match o.status {
        RunStatus::Succeeded => {
            println!("run {} succeeded", o.run_id);
            Ok(())
        }
        RunStatus::Paused => Err(Failure::Exit {
            code: 3,
            message: format!(
                "run {} is paused for an operator: {msg}\nanswer with `rekey resume {} --input STEP=FILE`",
                o.run_id, o.run_id
            ),
        }),
        status => Err(Failure::Exit {
            code: 1,
            message: format!("run {} {status}: {msg}", o.run_id),
        }),
    }
}

/// The order a person is asked in: what closes exposure (a revoke only a person can do) first,
/// then as the steps were listed (plan order).
fn ask_order<T>(plan: &Plan, waiting: &mut [(String, T)]) {
    waiting.sort_by_key(|(id, _)| {
        !plan
            .steps
            .iter()
            .position(|s| &s.id == id)
            .is_some_and(|i| rekey_plan::closes_exposure(plan, i))
    });
}

/// On a terminal, a run paused for an operator asks right there: the new value of a manual
/// mint at a hidden prompt, a confirmation in plain text. Each answer resumes the run; an empty
/// one leaves it paused (for `rekey resume --input`). Elsewhere the outcome is returned as is.
pub(crate) async fn ask_operator(
    engine: &Engine,
    plan: &Plan,
    mut outcome: RunOutcome,
) -> Result<RunOutcome, Failure> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive && outcome.status == RunStatus::Paused {
        // What a provider asked mid-step (npm's one-time password), for `resume --input`.
        for s in engine
            .store
            .steps(&outcome.run_id)
            .await
            .map_err(|e| engine_error(e.into()))?
        {
            if s.state == StepState::WaitingForOperator
                && let Some(q) = &s.error
            {
                eprintln!("{} waits for an answer: {q}", s.step_id);
            }
        }
    }
    while interactive && outcome.status == RunStatus::Paused {
        let mut waiting: Vec<(String, Option<String>)> = engine
            .store
            .steps(&outcome.run_id)
            .await
            .map_err(|e| engine_error(e.into()))?
            .into_iter()
            .filter(|s| s.state == StepState::WaitingForOperator)
            .map(|s| (s.step_id, s.error))
            .collect();
        if waiting.is_empty() {
            break;
        }
        ask_order(plan, &mut waiting);
        let mut answers = BTreeMap::new();
        for (id, question) in waiting {
            let Some((_, step)) = plan.step(&id) else {
                continue;
            };
            if step.effect != rekey_spec::Effect::Human {
                // A provider asked for an answer mid-step (npm's one-time password): hidden,
                // used for one call, never stored.
                eprintln!(
                    "\n{id} waits for you: {}",
                    question
                        .as_deref()
                        .unwrap_or("the provider asks for an answer")
                );
                let answer = rpassword::prompt_password(format!(
                    "{id}: answer (hidden; empty to stop here): "
                ))
                .map_err(anyhow::Error::from)?;
                let answer = answer.trim();
                if answer.is_empty() {
                    return Ok(outcome);
                }
                answers.insert(id, SecretString::from(answer.to_owned()));
                continue;
            }
            eprintln!("\n{id} waits for you:");
            if let Some(m) = &step.manual {
                eprintln!("  {}", m.instructions);
                if let Some(link) = &m.link {
                    eprintln!("  {link}");
                }
            }
            if step.outputs.iter().any(|o| o.secret) {
                let answer = rpassword::prompt_password(format!(
                    "{id}: paste the new value (hidden; empty to stop here): "
                ))
                .map_err(anyhow::Error::from)?;
                let answer = answer.trim_end_matches(['\n', '\r']);
                if answer.is_empty() {
                    return Ok(outcome);
                }
                answers.insert(id, SecretString::from(answer.to_owned()));
                continue;
            }
            // A confirmation is `done`, nothing else: "y" or a stray paste is asked again.
            loop {
                eprint!("{id}: type `done` once it is done (empty to stop here): ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(anyhow::Error::from)?;
                match confirmation(&line) {
                    Some(true) => break,
                    Some(false) => return Ok(outcome),
                    None => eprintln!("  (not `done`: the step stays open)"),
                }
            }
            answers.insert(id, SecretString::from("done".to_owned()));
        }
        if answers.is_empty() {
            break; // nothing this plan knows how to ask
        }
        outcome = engine
            .resume(&outcome.run_id, &answers)
            .await
            .map_err(engine_error)?;
    }
    Ok(outcome)
}

/// An operator's answer to a confirmation: `Some(true)` for `done`, `Some(false)` for nothing
/// (stop here, the run stays paused), `None` for anything else (ask again).
fn confirmation(line: &str) -> Option<bool> {
    match line.trim() {
        "" => Some(false),
        a if a.eq_ignore_ascii_case("done") => Some(true),
        _ => None,
    }
}

pub(crate) fn engine_error(e: EngineError) -> Failure {
    match e {
        EngineError::Store(
            StoreError::Locked { .. } | StoreError::NoRun(_) | StoreError::Leased { .. },
        )
        | EngineError::NoProvider(_)
        | EngineError::Unsupported(..)
        | EngineError::Preflight(..)
        | EngineError::Finished(..) => Failure::Exit {
            code: 2,
            message: format!("error: {e}"),
        },
        e => Failure::Other(e.into()),
    }
}

pub(crate) fn confirm(plan: &Plan, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    print!("{}", rekey_plan::render_text(plan, stdout_color()));
    if !interactive {
        return Err(Failure::Exit {
            code: 2,
            message: "error: not on a terminal: pass --yes to run this plan".into(),
        });
    }
    print!("\nRun this plan? Type `yes` to proceed: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(anyhow::Error::from)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::Exit {
            code: 1,
            message: "cancelled; nothing was done".into(),
        })
    }
}

/// The stored options of a run from its command line.
pub(crate) fn options_from(exec: &ExecArgs, reason: Option<String>) -> RunOptions {
    let ExecArgs {
        concurrency,
        per_provider,
        retry,
        sim,
    } = exec;
    RunOptions {
        outages: sim.outages.clone(),
        retry_budget_ms: retry
            .retry_budget
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        simulate: sim.simulate,
        latency_ms: sim.latency,
        fail_rate: sim.fail_rate,
        seed: sim.seed.unwrap_or(0),
        fail_steps: sim.fail_steps.clone(),
        sim_ledger: sim.sim_ledger.as_ref().map(|p| p.display().to_string()),
        concurrency: *concurrency,
        per_provider: *per_provider,
        reason,
    }
}

/// Flags of a rehearsal that make no sense alone. `--seed` also seeds `drill --sample`, so
/// the drill allows it without `--simulate`.
pub(crate) fn check_sim(sim: &SimArgs, seed_alone: bool) -> Result<(), Failure> {
    let bad = |message: &str| {
        Err(Failure::Exit {
            code: 2,
            message: format!("error: {message}"),
        })
    };
    if !(0.0..=1.0).contains(&sim.fail_rate) {
        return bad("--fail-rate is a probability between 0 and 1");
    }
    if sim.seed.is_some() && !sim.simulate && !seed_alone {
        return bad("--seed seeds simulated failures: it needs --simulate");
    }
    Ok(())
}

/// Runs `plan` as a new run to its end (or a pause nobody answered): the engine, its
/// pre-flight check, the run's first line (`banner` of the run id), the operator's answers on
/// a terminal, and the exit status.
pub(crate) async fn start_run(
    global: &Global,
    store: Arc<rekey_store::Store>,
    plan: &Plan,
    options: &RunOptions,
    banner: impl FnOnce(&str) -> String,
) -> Result<(), Failure> {
    let run_id = rekey_engine::new_run_id();
    let result = start_run_as(global, Arc::clone(&store), plan, options, &run_id, banner).await;
    store.close().await;
    outcome(&result?)
}

/// [`start_run`] as run `run_id`, returning how it ended (or why it could not start); the
/// store stays open for what the caller reads next (a drill's report).
pub(crate) async fn start_run_as(
    global: &Global,
    store: Arc<rekey_store::Store>,
    plan: &Plan,
    options: &RunOptions,
    run_id: &str,
    banner: impl FnOnce(&str) -> String,
) -> Result<RunOutcome, Failure> {
    let ids: Vec<String> = plan.credentials.iter().map(|c| c.id.clone()).collect();
    let engine = engine(
        global,
        store,
        options,
        options.reason.clone(),
        plan.steps.len(),
        &ids,
    )
    .await?;
    engine.check(plan).map_err(engine_error)?;
    eprintln!("{}", banner(run_id));
    let options_json = serde_json::to_string(options).expect("options serialize");
    match engine.start(plan, run_id, &options_json).await {
        Ok(o) => ask_operator(&engine, plan, o).await,
        Err(e) => Err(engine_error(e)),
    }
}

pub(crate) fn run(global: &Global, args: &RunArgs) -> Result<(), Failure> {
    check_sim(&args.exec.sim, false)?;
    let (inventory, runbooks) = super::load(global)?;
    let selection = args.selection.to_selection();
    let plan = rekey_plan::compile(&PlanRequest {
        inventory: &inventory,
        runbooks: &runbooks,
        selection: &selection,
        mode: args.mode.into(),
        exposed: None,
    })
    .map_err(Failure::Plan)?;
    confirm(&plan, args.yes)?;
    let options = options_from(&args.exec, args.reason.clone());
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        start_run(global, store, &plan, &options, |run_id| {
            format!(
                "run {run_id}: {} credential(s), {} step(s){}",
                plan.credentials.len(),
                plan.steps.len(),
                if options.simulate { " (simulated)" } else { "" }
            )
        })
        .await
    })
}

/// `STEP=PATH` → the value in PATH (`-`: standard input), kept in a redacting type.
fn operator_inputs(specs: &[String]) -> Result<BTreeMap<String, SecretString>, Failure> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let Some((step, path)) = spec.split_once('=') else {
            return Err(Failure::Exit {
                code: 2,
                message: format!("error: --input {spec}: expected STEP=PATH"),
            });
        };
        let mut value = String::new();
        if path == "-" {
            std::io::stdin()
                .read_to_string(&mut value)
                .map_err(anyhow::Error::from)?;
        } else {
            value = std::fs::read_to_string(path).map_err(|e| Failure::Exit {
                code: 2,
                message: format!("error: --input {step}: cannot read {path}: {e}"),
            })?;
        }
        out.insert(
            step.to_owned(),
            SecretString::from(value.trim_end_matches(['\n', '\r']).to_owned()),
        );
    }
    Ok(out)
}

pub(crate) fn resume(global: &Global, args: &ResumeArgs) -> Result<(), Failure> {
    let inputs = operator_inputs(&args.inputs)?;
    let rt = state::runtime()?;
    rt.block_on(async {
        let store = state::open_store(global).await?;
        let record = store
            .run(&args.run_id)
            .await
            .map_err(|e| engine_error(e.into()))?;
        let mut options: RunOptions = serde_json::from_str(&record.options_json)
            .context("the run's stored options cannot be read")?;
        if let Some(d) = args.retry.retry_budget {
            options.retry_budget_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        }
        let plan = serde_json::from_str::<Plan>(&record.plan_json).ok();
        // A confirmation (a manual step with no value to give) is answered with `done`.
        if let Some(plan) = &plan {
            for (id, answer) in &inputs {
                if let Some((_, step)) = plan.step(id)
                    && step.manual.is_some()
                    && !step.outputs.iter().any(|o| o.secret)
                    && confirmation(answer.expose_secret()) != Some(true)
                {
                    return Err(Failure::Exit {
                        code: 2,
                        message: format!(
                            "error: --input {id}: this step is a confirmation; its file must say `done` once it is done"
                        ),
                    });
                }
            }
        }
        let total = plan.as_ref().map_or(0, |p| p.steps.len());
        let mut engine = engine(global, store, &options, record.reason.clone(), total, &[]).await?;
        if args.force {
            if let Ok(Some(lease)) = engine.store.lease(&args.run_id).await
                && !lease.expired()
            {
                eprintln!(
                    "warning: --force: taking run {} over from {lease}; if that process is still working, it stops starting steps once it notices",
                    args.run_id
                );
            }
            engine.config.take_over = rekey_store::TakeOver::Force;
        }
        if !args.mint_again.is_empty() {
            engine.config.mint_again =
                rekey_engine::MintAgain::Only(args.mint_again.iter().cloned().collect());
        }
        let result = match (engine.resume(&args.run_id, &inputs).await, &plan) {
            (Ok(o), Some(plan)) => ask_operator(&engine, plan, o).await,
            (r, _) => r.map_err(engine_error),
        };
        engine.store.close().await;
        outcome(&result?)
    })
}

/// The connectors this build has; a plan needing another is refused before it starts.
async fn connectors() -> anyhow::Result<Providers> {
    let aws: Arc<dyn rekey_engine::Provider> =
        Arc::new(rekey_providers::aws::AwsProvider::from_env().await);
    let github: Arc<dyn rekey_engine::Provider> = Arc::new(
        rekey_providers::github::GithubProvider::from_env().map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let gcp: Arc<dyn rekey_engine::Provider> = Arc::new(
        rekey_providers::gcp::GcpProvider::from_env().map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let consumers = rekey_providers::router::ConsumerRouter {
        aws: Some(Arc::clone(&aws)),
        github: Some(Arc::clone(&github)),
        env_file: Arc::new(rekey_providers::envfile::EnvFileProvider),
    };
    Ok(Providers::default()
        .with("aws", aws)
        .with("github", github)
        .with("gcp", gcp)
        .with(
            "huggingface",
            Arc::new(
                rekey_providers::huggingface::HuggingfaceProvider::from_env()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        )
        .with(
            "npm",
            Arc::new(rekey_providers::npm::NpmProvider::from_env()),
        )
        .with(
            "postgres",
            Arc::new(rekey_providers::postgres::PostgresProvider::new()),
        )
        .with(
            "mysql",
            Arc::new(rekey_providers::mysql::MysqlProvider::new()),
        )
        .with(
            "okta",
            Arc::new(
                rekey_providers::oauth::OktaProvider::from_env()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        )
        .with(
            "auth0",
            Arc::new(
                rekey_providers::oauth::Auth0Provider::from_env()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        )
        .with(
            "oauth",
            Arc::new(
                rekey_providers::oauth::OauthVerifyProvider::new(Duration::from_secs(30))
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        )
        .with("consumer", Arc::new(consumers)))
}

#[cfg(test)]
mod tests {
    use super::confirmation;

    /// No bundled action is refused with "no provider in this build": every action but a
    /// person's has a connector.
    #[tokio::test]
    async fn every_action_has_a_connector() {
        let providers = super::connectors().await.unwrap();
        for a in rekey_spec::action::ACTIONS {
            if a.effect == rekey_spec::Effect::Human {
                continue;
            }
            assert!(
                providers.get(a.provider).is_some(),
                "no connector for {} (provider {})",
                a.name,
                a.provider
            );
        }
    }

    #[test]
    fn a_confirmation_is_done_and_nothing_else() {
        assert_eq!(confirmation("done\n"), Some(true));
        assert_eq!(confirmation("  DONE \r\n"), Some(true));
        assert_eq!(confirmation("\n"), Some(false));
        for other in ["y\n", "yes", "ok", "done it", "ghp_pasted"] {
            assert_eq!(confirmation(other), None, "{other}");
        }
    }

    /// The bundled example's incident: a person is asked to revoke the GitHub OAuth app's
    /// exposed secret before being asked for new values, whatever the plan order.
    #[test]
    fn a_person_is_asked_to_revoke_before_to_mint() {
        use std::sync::Arc;

        use rekey_plan::{PlanRequest, Selection};
        use rekey_spec::{Mode, SourceFile};

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut sources = Vec::new();
        for e in std::fs::read_dir(root.join("inventory")).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                sources.push(Arc::new(SourceFile::new(
                    path.display().to_string(),
                    text.as_str(),
                )));
            }
        }
        let inventory = rekey_spec::parse_inventory(&sources).unwrap();
        let runbooks = rekey_spec::load_runbooks(None).unwrap();
        let plan = rekey_plan::compile(&PlanRequest {
            inventory: &inventory,
            runbooks: &runbooks,
            selection: &Selection::default(),
            mode: Mode::Incident,
            exposed: None,
        })
        .unwrap();
        let ids = [
            "hf-ml-read/create",
            "gh-oauth-docs/manual-create",
            "gh-secrets-writer/create",
            "gh-oauth-docs/manual-revoke",
        ];
        for id in ids {
            assert!(plan.step(id).is_some(), "{id} is in the plan");
        }
        let mut waiting: Vec<(String, ())> = ids.iter().map(|s| ((*s).to_owned(), ())).collect();
        super::ask_order(&plan, &mut waiting);
        let order: Vec<&str> = waiting.iter().map(|(s, ())| s.as_str()).collect();
        assert_eq!(
            order,
            [
                "gh-oauth-docs/manual-revoke",
                "hf-ml-read/create",
                "gh-oauth-docs/manual-create",
                "gh-secrets-writer/create",
            ]
        );
    }
}
