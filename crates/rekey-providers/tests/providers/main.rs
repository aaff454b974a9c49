//! The providers against real servers on 127.0.0.1, in one test binary: moto (IAM, STS, Secrets
//! Manager), a throwaway `PostgreSQL` cluster and a throwaway `MariaDB` server. Install them with
//! `./scripts/peers.sh`; a test whose server is missing fails with a message saying so.

mod aws;
mod mysql;
mod postgres;
