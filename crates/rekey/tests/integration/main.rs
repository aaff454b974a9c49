//! rekey's integration tests: one binary (see `autotests = false`), one module per area.

mod cli;
mod diagnostics;
mod harness;
mod planning;
