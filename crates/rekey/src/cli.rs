//! The command line. Exit codes are part of the interface: 0 ok, 1 failure, 2 bad input
//! (inventory, runbook, flags, or a plan that cannot be carried out), 3 paused for an operator.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rekey_spec::{CredentialKind, Mode};

#[derive(Debug, Parser)]
#[command(name = "rekey", version, about = "Credential rotation runbooks: inventory, plan, revoke-then-rotate", long_about = None)]
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
    /// Today's date for ages and due dates (YYYY-MM-DD); for reproducible reports.
    #[arg(long, global = true, env = "REKEY_TODAY", hide = true)]
    pub(crate) today: Option<jiff::civil::Date>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the inventory and runbooks: exit 0, or every problem with file:line:column.
    Validate(ValidateArgs),
    /// Inspect the credential inventory.
    Inventory(InventoryArgs),
    /// Show what a rotation would do, step by step, without touching anything.
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Also list every action runbooks may use, with its inputs and outputs.
    #[arg(long)]
    pub(crate) actions: bool,
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
    /// Credential kind, e.g. aws_iam_access_key (repeatable, or comma-separated).
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',', value_parser = parse_kind)]
    pub(crate) kinds: Vec<CredentialKind>,
}

fn parse_kind(s: &str) -> Result<CredentialKind, String> {
    s.parse::<CredentialKind>()
        .map_err(|_| format!("expected one of {}", rekey_spec::kind::kind_names()))
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
