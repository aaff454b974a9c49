//! `rekey`: credential rotation runbooks, planned as one DAG and run revoke-then-rotate.

mod cli;
mod command;
mod report;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Validate(args) => command::validate::run(&cli.global, args),
        Command::Inventory(args) => command::inventory::run(&cli.global, args),
        Command::Plan(args) => command::plan::run(&cli.global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
