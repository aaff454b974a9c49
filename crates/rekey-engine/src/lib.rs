//! The run engine: executes a stored plan with durable, write-ahead step state; bounded
//! concurrency; retries; a failure policy (roll back before the irreversible step, stop for an
//! operator after it); reconciliation after a crash; and a simulated provider for rehearsals,
//! tests and benchmarks.

mod batch;
pub mod fingerprint;
mod history;
pub mod provider;
pub mod run;
pub mod sim;

pub use fingerprint::{Fingerprinter, KeyError, Mismatch};
pub use provider::{
    Call, ErrorKind, OPERATOR_INPUT, Provider, ProviderError, Reconciled, Report, Reports, Value,
    Values,
};
pub use run::{
    Engine, EngineConfig, EngineError, MintAgain, Observer, Providers, RunOutcome, idempotency_key,
    new_run_id,
};
pub use sim::{Outage, SimOptions, SimProvider};
