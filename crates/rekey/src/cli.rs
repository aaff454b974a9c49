//! The command line. Exit codes are part of the interface: 0 ok, 1 failure, 2 bad input
//! (inventory, runbook, flags, or a plan that cannot be carried out), 3 paused for an operator.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rekey_spec::{CredentialKind, Mode};

#[derive(Debug, Parser)]
#[command(name = "rekey", bin_name = "rekey", version, about = "Credential rotation runbooks: inventory, plan, revoke-then-rotate", long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Folder of inventory files (*.yaml).
    #[arg(
        long,
        global = true,
        env = "REKEY_INVENTORY",
        default_value = "inventory",
        value_name = "DIR"
    )]
    pub(crate) inventory: PathBuf,
    /// Folder of runbooks that add to or replace the bundled ones (one per kind).
    #[arg(long, global = true, env = "REKEY_RUNBOOKS", value_name = "DIR")]
    pub(crate) runbooks: Option<PathBuf>,
    /// State database: a SQLite path, or postgres://… for teams.
    #[arg(
        long,
        global = true,
        env = "REKEY_DATABASE_URL",
        default_value = ".rekey/state.db",
        value_name = "URL"
    )]
    pub(crate) database_url: String,
    /// Today's date for ages and due dates (YYYY-MM-DD); for reproducible reports.
    #[arg(long, global = true, env = "REKEY_TODAY", hide = true)]
    pub(crate) today: Option<jiff::civil::Date>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the inventory and runbooks: exit 0, or every problem, located by file, line and column.
    #[command(
        after_help = "Examples:\n  rekey validate\n  rekey validate --actions          # every action a runbook may use\n  rekey --inventory ops/inventory validate"
    )]
    Validate(ValidateArgs),
    /// What in the inventory will hurt during an incident: legacy tokens, overdue or undelivered
    /// credentials, values on developer machines, no room to rotate (exit 1 on an error).
    #[command(
        after_help = "Examples:\n  rekey lint\n  rekey lint --format sarif > rekey.sarif   # for GitHub code scanning"
    )]
    Lint(LintArgs),
    /// Inspect the credential inventory.
    #[command(
        after_help = "Examples:\n  rekey inventory list\n  rekey inventory list --json | jq '.[] | select(.due)'"
    )]
    Inventory(InventoryArgs),
    /// Show what a rotation would do, step by step, without touching anything.
    #[command(
        after_help = "Examples:\n  rekey plan --service web\n  rekey plan --mode incident --credential aws-deploy-web\n  rekey plan --format mermaid > plan.mmd"
    )]
    Plan(PlanArgs),
    /// Rotate: execute the plan, durably (exit 3 when paused for an operator).
    #[command(
        after_help = "Examples:\n  rekey run --credential aws-deploy-web --reason CHG-1234\n  rekey run --kind postgres_password --simulate --yes   # a rehearsal"
    )]
    Run(RunArgs),
    /// Continue a run after a crash, a pause or a fix, from its stored plan.
    #[command(
        after_help = "Examples:\n  rekey resume run-20261207-101500-3fa2c1\n  rekey resume run-20261207-101500-3fa2c1 --input gh-app-key/create=new-key.pem"
    )]
    Resume(ResumeArgs),
    /// Runs, or the per-step state of one run.
    #[command(
        after_help = "Examples:\n  rekey status\n  rekey status run-20261207-101500-3fa2c1 --json"
    )]
    Status(StatusArgs),
    /// Quarterly practice: rotate what is due (or a sample), rotate first, and write the
    /// evidence (exit 3 when paused for an operator).
    #[command(
        after_help = "Examples:\n  rekey drill --due --report drill.html\n  rekey drill --sample 5 --seed 42 --simulate --report drill.md"
    )]
    Drill(DrillArgs),
    /// The report of any past run (drill or incident): Markdown, HTML or JSON.
    #[command(
        after_help = "Examples:\n  rekey report run-20261207-101500-3fa2c1 --output drill.html"
    )]
    Report(ReportArgs),
    /// Drill coverage, rotation times per kind, and how long an incident over the whole
    /// inventory would take (time-to-safe).
    #[command(after_help = "Examples:\n  rekey scorecard\n  rekey scorecard --json")]
    Scorecard(ScorecardArgs),
    /// Give up on a run: release its credentials for another run (nothing is undone).
    #[command(
        after_help = "Examples:\n  rekey abandon run-20261207-101500-3fa2c1 --reason \"superseded by INC-7\""
    )]
    Abandon(AbandonArgs),
    /// The hash-chained audit log.
    #[command(
        after_help = "Examples:\n  rekey audit verify\n  rekey audit export | tail -1       # pin the head elsewhere\n  rekey audit verify --head HASH"
    )]
    Audit(AuditArgs),
    /// A package was compromised: which services, hosts and credentials, and the revoke-first plan.
    #[command(
        after_help = "Examples:\n  rekey incident --advisory MAL-2026-2307.json --explain\n  rekey incident --package npm/axios@1.14.1 --execute   # revoke first, then rotate"
    )]
    Incident(IncidentArgs),
    /// Build or refresh the dependency index from every service's SBOMs and lockfiles.
    #[command(after_help = "Examples:\n  rekey index")]
    Index(IndexArgs),
    /// Which services use a package (at a version): one index lookup.
    #[command(
        after_help = "Examples:\n  rekey who-uses npm/axios\n  rekey who-uses pkg:pypi/litellm@1.82.7 --json"
    )]
    WhoUses(WhoUsesArgs),
    /// Which credentials are present on this laptop or runner: looks where they live, keeps no
    /// value, matches them against the inventory (exit 1 when one is unknown to it).
    #[command(
        after_help = "Examples:\n  rekey discover --host laptop-alice --path ~/src\n  rekey discover --host ci-runner --path . --json   # in a CI step: fails on an unknown secret\n  rekey discover --host laptop-alice --write inventory/discovered-laptop-alice.yaml"
    )]
    Discover(DiscoverArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell).
    #[command(
        after_help = "Examples:\n  rekey completions bash > ~/.local/share/bash-completion/completions/rekey\n  rekey completions zsh > \"${fpath[1]}/_rekey\""
    )]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `rekey man > rekey.1`.
    #[command(after_help = "Examples:\n  rekey man > rekey.1 && man ./rekey.1")]
    Man,
    /// Print the JSON Schema of inventory or runbook files, for editors that complete and check
    /// YAML (VS Code, Neovim: yaml-language-server).
    #[command(
        after_help = "Examples:\n  rekey schema inventory > schema/inventory.schema.json\n  rekey schema runbook > schema/runbook.schema.json\n\nA YAML file whose first line is\n  # yaml-language-server: $schema=../schema/inventory.schema.json\nis then completed and checked as you type (the path is relative to the file)."
    )]
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Which file's schema.
    #[arg(value_enum)]
    pub(crate) document: SchemaDocument,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SchemaDocument {
    /// Inventory files (hosts, services, credentials).
    Inventory,
    /// Runbooks (one credential kind's steps).
    Runbook,
}

#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// The inventory host this machine is (default: its host name).
    #[arg(long, value_name = "ID")]
    pub(crate) host: Option<String>,
    /// A project folder to search for `.env` and `.npmrc` files (repeatable).
    #[arg(long = "path", value_name = "DIR")]
    pub(crate) paths: Vec<PathBuf>,
    /// Ask the provider who each GitHub and Hugging Face token belongs to (`GET /user`,
    /// `whoami-v2`: read-only identity calls, never a change). Off by default.
    #[arg(long)]
    pub(crate) online: bool,
    /// Print JSON: {host, summary, finds: [{source, kind, ids, fingerprint, status, credential, …}]}.
    #[arg(long, conflicts_with = "write")]
    pub(crate) json: bool,
    /// Write the finds as an inventory file (conventionally `discovered-<host>.yaml` in the
    /// inventory folder): `present_on` additions and drafts for review. Never overwrites a file
    /// rekey did not write.
    #[arg(long, value_name = "FILE")]
    pub(crate) write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

// Flags are flags: a CLI arguments struct is where many bools belong.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["advisory", "package", "purl"]))]
pub(crate) struct IncidentArgs {
    /// An OSV advisory (JSON), e.g. a `MAL-` record from ossf/malicious-packages.
    #[arg(long, value_name = "OSV.json")]
    pub(crate) advisory: Option<PathBuf>,
    /// ECOSYSTEM/NAME@VERSION, e.g. npm/axios@1.14.1.
    #[arg(long, value_name = "ECO/NAME@VER")]
    pub(crate) package: Option<String>,
    /// A package URL, e.g. pkg:npm/axios@1.14.1.
    #[arg(long, value_name = "PURL")]
    pub(crate) purl: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print the decision rules.
    #[arg(long)]
    pub(crate) explain: bool,
    /// Run the revoke-first plan now (with the advisory id as the audit reason).
    #[arg(long)]
    pub(crate) execute: bool,
    /// Do not ask for confirmation (required off a terminal).
    #[arg(long, requires = "execute")]
    pub(crate) yes: bool,
    /// The audit reason (default: the advisory id or package).
    #[arg(long)]
    pub(crate) reason: Option<String>,
    #[command(flatten)]
    pub(crate) exec: ExecArgs,
}

#[derive(Debug, Args)]
pub(crate) struct IndexArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WhoUsesArgs {
    /// PURL or ECOSYSTEM/NAME[@VERSION], e.g. npm/axios or pkg:pypi/litellm@1.82.7.
    pub(crate) package: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// drill: rotate first; incident: revoke first.
    #[arg(long, value_enum, default_value = "drill")]
    pub(crate) mode: ModeArg,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
    /// Why: an incident or drill id, recorded with every audit event.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    #[command(flatten)]
    pub(crate) exec: ExecArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DrillArgs {
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// Every credential past its `policy.max_age_days` (with --within, also those due soon).
    #[arg(long, conflicts_with_all = ["sample", "credentials", "services", "kinds"])]
    pub(crate) due: bool,
    /// With --due: also the credentials that fall due within this many days.
    #[arg(long, value_name = "DAYS", requires = "due")]
    pub(crate) within: Option<u32>,
    /// N credentials chosen at random, at least one of each kind when N allows (--seed S
    /// repeats a choice).
    #[arg(long, value_name = "N", conflicts_with_all = ["credentials", "services", "kinds"])]
    pub(crate) sample: Option<usize>,
    /// Write the report when the run ends, paused or not: PATH.md, PATH.html or PATH.json.
    #[arg(long, value_name = "PATH")]
    pub(crate) report: Option<PathBuf>,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
    /// The audit reason (default: drill-DATE-ID).
    #[arg(long)]
    pub(crate) reason: Option<String>,
    #[command(flatten)]
    pub(crate) exec: ExecArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    pub(crate) run_id: String,
    /// Write to PATH instead of standard output; the format follows its extension (.md,
    /// .html, .json) unless --format says otherwise.
    #[arg(long, short, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub(crate) format: Option<ReportFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Markdown,
    Html,
    Json,
}

impl ReportFormat {
    /// The format a report path asks for, by its extension.
    pub(crate) fn of_path(path: &std::path::Path) -> Result<Self, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("md" | "markdown") => Ok(Self::Markdown),
            Some("html" | "htm") => Ok(Self::Html),
            Some("json") => Ok(Self::Json),
            _ => Err(format!(
                "{}: expected a report path ending in .md, .html or .json",
                path.display()
            )),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ScorecardArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Steps in flight at once, as the incident would run (for time-to-safe).
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Steps in flight at once per provider, as the incident would run.
    #[arg(long, default_value_t = 8)]
    pub(crate) per_provider: usize,
}

/// How a run executes: how much at once, how long trouble is waited out, and whether the
/// providers are simulated (`run`, `drill`, `incident --execute`).
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Steps in flight at once.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Steps in flight at once per provider.
    #[arg(long, default_value_t = 8)]
    pub(crate) per_provider: usize,
    #[command(flatten)]
    pub(crate) retry: RetryArgs,
    #[command(flatten)]
    pub(crate) sim: SimArgs,
}

/// Rehearsal: every provider call replaced by a deterministic simulated one.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SimArgs {
    /// Run the real engine against simulated providers (no network).
    #[arg(long)]
    pub(crate) simulate: bool,
    /// Simulated latency of every call, in milliseconds.
    #[arg(long, default_value_t = 0, requires = "simulate")]
    pub(crate) latency: u64,
    /// Probability that a simulated call fails transiently (retried).
    #[arg(long, default_value_t = 0.0, requires = "simulate")]
    pub(crate) fail_rate: f64,
    /// Seed of the simulated failures (and of `drill --sample`'s choice).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Make this plan step fail permanently (failure injection; repeatable).
    #[arg(
        long = "sim-fail",
        value_name = "STEP",
        requires = "simulate",
        hide = true
    )]
    pub(crate) fail_steps: Vec<String>,
    /// Every simulated call to PROVIDER fails transiently from START after the run began, for
    /// DURATION (e.g. `aws:5s+30s`; repeatable): an outage to wait out.
    #[arg(
        long = "sim-outage",
        value_name = "PROVIDER:START+DURATION",
        requires = "simulate",
        value_parser = parse_outage
    )]
    pub(crate) outages: Vec<String>,
    /// The simulated provider's ledger (default: beside the state database).
    #[arg(long, value_name = "PATH", requires = "simulate", hide = true)]
    pub(crate) sim_ledger: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    pub(crate) run_id: String,
    /// Answer a manual step: STEP=PATH reads the value from a file (`-` for standard input).
    #[arg(long = "input", value_name = "STEP=PATH")]
    pub(crate) inputs: Vec<String>,
    /// Instead of the budget the run was started with.
    #[command(flatten)]
    pub(crate) retry: RetryArgs,
    /// Take the run over even if another live process holds it (it stops starting steps once
    /// it notices). A holder that is gone, or whose lease expired, is taken over without it.
    #[arg(long)]
    pub(crate) force: bool,
    /// A credential whose new value was lost in a crash while it may be live in a consumer
    /// that cannot be read back (a GitHub Actions secret): revoke that value and deliver a
    /// new one (those consumers' users fail until it arrives). Repeatable.
    #[arg(long = "mint-again", value_name = "CREDENTIAL")]
    pub(crate) mint_again: Vec<String>,
}

/// How long a step waits out trouble.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RetryArgs {
    /// How long a step keeps retrying transient errors and rate limits (e.g. 90s, 5m; default
    /// 2m); a permanent error fails at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) retry_budget: Option<std::time::Duration>,
}

/// A duration such as `90s`, `2m`, `1m 30s` or `500ms`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("expected a duration such as 90s, 2m or 500ms, found `{text}`"))?;
    std::time::Duration::try_from(d).map_err(|_| format!("a duration cannot be negative: `{text}`"))
}

/// `PROVIDER:START+DURATION` of `--sim-outage`, e.g. `aws:5s+30s`.
pub(crate) fn parse_outage(text: &str) -> Result<String, String> {
    let expected =
        || format!("expected PROVIDER:START+DURATION such as aws:5s+30s, found `{text}`");
    let (provider, window) = text.split_once(':').ok_or_else(expected)?;
    let (start, duration) = window.split_once('+').ok_or_else(expected)?;
    if provider.is_empty() {
        return Err(expected());
    }
    parse_duration(start)?;
    parse_duration(duration)?;
    Ok(text.to_owned())
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    pub(crate) run_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AbandonArgs {
    pub(crate) run_id: String,
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Abandon the run even if another live process is driving it.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    pub(crate) command: AuditCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AuditFormat {
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print events (all, or one run's).
    Show {
        #[arg(long = "run", value_name = "RUN_ID")]
        run: Option<String>,
        /// Print one JSON array of events (the rows `export` prints one per line).
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain: exit 1 and name every edited, deleted, inserted or reordered row.
    Verify {
        /// A row hash exported earlier (`rekey audit export | tail -1`): the log must still
        /// hold it, and every row after it must verify.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
    },
    /// Export events, one JSON object per line.
    Export {
        #[arg(long = "run", value_name = "RUN_ID")]
        run: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: AuditFormat,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Also list every action runbooks may use, with its inputs and outputs.
    #[arg(long)]
    pub(crate) actions: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// Print JSON: a list of {rule, severity, id, file, line, column, message}.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
    /// Output format; `sarif` (2.1.0) is what GitHub code scanning reads.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub(crate) format: LintFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LintFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub(crate) struct InventoryArgs {
    #[command(subcommand)]
    pub(crate) command: InventoryCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum InventoryCommand {
    /// List credentials with their age, due state and exposure.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Which credentials: by id, by the services that use them, or by kind. Without any, all.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SelectionArgs {
    /// Credential id (repeatable, or comma-separated).
    #[arg(long = "credential", value_name = "ID", value_delimiter = ',')]
    pub(crate) credentials: Vec<String>,
    /// Service id: every credential it uses (repeatable, or comma-separated).
    #[arg(long = "service", value_name = "NAME", value_delimiter = ',')]
    pub(crate) services: Vec<String>,
    /// Credential kind, e.g. `aws_iam_access_key` (repeatable, or comma-separated).
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',', value_parser = parse_kind())]
    pub(crate) kinds: Vec<CredentialKind>,
}

/// Credential kinds, with their names as the possible values (so completions offer them).
fn parse_kind() -> impl clap::builder::TypedValueParser<Value = CredentialKind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(CredentialKind::ALL.map(CredentialKind::as_str))
        .map(|s| s.parse::<CredentialKind>().expect("a listed kind"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    /// Rotate first: nothing is revoked before the new value is verified.
    Drill,
    /// Same as drill.
    Scheduled,
    /// Revoke first: exposed values are disabled before anything else.
    Incident,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Drill | ModeArg::Scheduled => Mode::Drill,
            ModeArg::Incident => Mode::Incident,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) selection: SelectionArgs,
    /// drill: rotate first; incident: revoke first.
    #[arg(long, value_enum, default_value = "drill")]
    pub(crate) mode: ModeArg,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}
