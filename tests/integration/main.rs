//! rekey's integration tests: one binary (see `autotests = false`), one module per area.

mod batching;
mod cli;
mod diagnostics;
mod discover;
mod drills;
mod ecosystem;
mod engine;
mod harness;
mod incident;
mod lint;
mod planning;
mod postgres;
mod real;
mod real_example;
mod real_gcp;
mod real_github;
mod real_huggingface;
mod real_mysql;
mod real_npm;
mod real_oauth;
mod real_postgres;
mod retries;
mod runs;
mod schema;
mod time_to_safe;
mod workflows;
