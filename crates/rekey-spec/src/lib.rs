//! rekey's input language: the credential inventory, runbooks, the action registry and the
//! capability map, each read from YAML and checked into types the planner can trust.
//!
//! Errors are [`SpecError`]s that name file, line and column; a whole pass reports every
//! problem it finds at once ([`SpecErrors`]).

pub mod action;
pub mod diag;
pub mod inventory;
pub mod kind;
pub mod lint;
pub mod runbook;
pub mod schema;
pub mod template;
mod yaml;

pub use action::{ActionSpec, Effect, Mode, Phase};
pub use diag::{Location, SourceFile, SpecError, SpecErrors};
pub use inventory::{
    Consumer, Credential, Host, Inventory, Service, load_inventory, parse_inventory,
};
pub use kind::{CredentialKind, HostKind};
pub use runbook::{Runbook, Runbooks, Step, load_runbooks, parse_runbooks};
pub use template::{Template, Var};
