//! The providers against real servers on 127.0.0.1, in one test binary: moto (IAM, STS, Secrets
//! Manager), a throwaway `PostgreSQL` cluster and a throwaway `MariaDB` server, all started by
//! `rekey_testkit`. Install them with `./scripts/peers.sh`; a test whose server is missing fails
//! with a message saying so.
//!
//! - `aws`, `postgres`, `mysql`: each provider's own behaviour, and its conformance subject;
//! - `github`: the GitHub provider and the shared HTTP layer against the in-process fake;
//! - `oauth`: Okta and Auth0 client secrets and the token-endpoint check, against their fakes;
//! - `huggingface`: the Hugging Face provider against the in-process Hub fake;
//! - `npm`: the npm provider against a real Verdaccio, and the OTP fake;
//! - `gcp`: the GCP provider against the in-process IAM fake;
//! - `conformance`: the suite every provider runs (mint, deliver, verify, revoke, repeated
//!   calls, reconcile after a lost outcome, secrets never shown);
//! - `harness`: what they share besides the servers.

mod aws;
mod conformance;
mod gcp;
mod github;
mod harness;
mod huggingface;
mod mysql;
mod npm;
mod oauth;
mod postgres;
