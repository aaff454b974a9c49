//! `rekey`: credential rotation runbooks, planned as one DAG and run revoke-then-rotate.
//!
//! The command line. A library only so that the end-to-end tests (the workspace's `tests/`
//! member) can build the same program as a binary of their own package; [`main`] is all it
//! offers.

mod cli;
mod command;
mod hardening;
mod report;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

// Reading SBOMs allocates per component on every core; glibc's allocator is a third of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `rekey` program: parses the command line, runs the command, and says how it ended.
pub fn main() -> ExitCode {
    report::quiet_on_broken_pipe();
    let cli = Cli::parse();
    // Logs go to stderr; `REKEY_LOG=debug` for more. No value is ever logged.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REKEY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_ansi(report::stderr_color())
        .init();
    hardening::protect_memory();
    let result = match &cli.command {
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "rekey", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| report::Failure::Other(e.into()))
        }
        Command::Schema(args) => command::schema::run(args),
        Command::Validate(args) => command::validate::run(&cli.global, args),
        Command::Lint(args) => command::lint::run(&cli.global, args),
        Command::Inventory(args) => command::inventory::run(&cli.global, args),
        Command::Plan(args) => command::plan::run(&cli.global, args),
        Command::Run(args) => command::run::run(&cli.global, args),
        Command::Resume(args) => command::run::resume(&cli.global, args),
        Command::Status(args) => command::status::status(&cli.global, args),
        Command::Drill(args) => command::drill::run(&cli.global, args),
        Command::Report(args) => command::drill::report(&cli.global, args),
        Command::Scorecard(args) => command::drill::scorecard_command(&cli.global, args),
        Command::Abandon(args) => command::status::abandon(&cli.global, args),
        Command::Audit(args) => command::audit::run(&cli.global, args),
        Command::Incident(args) => command::incident::incident(&cli.global, args),
        Command::Index(args) => command::incident::index(&cli.global, args),
        Command::WhoUses(args) => command::incident::who_uses(&cli.global, args),
        Command::Discover(args) => command::discover::run(&cli.global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
