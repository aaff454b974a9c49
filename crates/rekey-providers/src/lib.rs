//! Real providers: the API calls behind runbook actions, implementing the engine's
//! [`rekey_engine::Provider`] trait.

mod admin;
pub mod aws;
pub mod confirm;
pub mod envfile;
pub mod gcp;
pub mod github;
pub mod http;
pub mod huggingface;
pub mod inputs;
pub mod mysql;
pub mod npm;
pub mod oauth;
pub mod postgres;
pub mod router;
