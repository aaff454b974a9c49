//! `PostgreSQL` role passwords: the `postgres.*` actions.
//!
//! | action | what it does |
//! |---|---|
//! | `postgres.set_password` | a new random password, sent as a SCRAM-SHA-256 verifier: `ALTER ROLE … WITH LOGIN PASSWORD '<verifier>'` |
//! | `postgres.disable_login` | `ALTER ROLE … NOLOGIN` (undo: `LOGIN`) |
//! | `postgres.terminate_sessions` | `pg_terminate_backend` for every session of the role; output `terminated` |
//! | `postgres.verify_login` | logs in as the role with the new password |
//!
//! **Authentication.** The input `admin_url_env` names an environment variable holding the admin
//! connection string (`postgres://admin:…@host:port/db`). It is read at call time, kept in a
//! [`SecretString`], and never appears in a message: errors name the variable and the server's
//! `host:port` only.
//!
//! **Secrets.** The new password is 32 random bytes (base64url, 43 characters) and leaves this
//! module only as [`Value::Secret`]. The server receives a SCRAM-SHA-256 verifier (RFC 5802 /
//! RFC 7677, 4096 iterations, 16-byte salt), never the cleartext, so it cannot end up in the
//! server's statement log; statement logging of the client (sqlx) is turned off on every
//! connection as well. Error messages are scrubbed of the new password, the verifier and the
//! admin password before they are returned.
//!
//! **Idempotency.** `disable_login`, `terminate_sessions` and `verify_login` are idempotent by
//! nature. `set_password` is not: running it again with the same idempotency key sets another
//! new password (a role has exactly one, so nothing is orphaned: the earlier one simply stops
//! working). That is acceptable because the runbook marks the step irreversible and the engine
//! runs it again only after its outcome was lost (`reconcile` answers `NotDone`), when the
//! earlier password is unknown to everyone anyway.
//!
//! **Errors.** Connection failures, timeouts and the server's transient conditions (SQLSTATE
//! classes 08 and 53, shutdowns, serialization failures, lock timeouts) are
//! [`ErrorKind::Transient`](rekey_engine::ErrorKind::Transient); anything else (authentication,
//! permissions, unknown role, bad input) is permanent.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{AdminEnv, Scrub, input, new_password, required};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

/// PBKDF2 iterations of the SCRAM verifier: `PostgreSQL`'s default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;
const SCRAM_SALT_LEN: usize = 16;

/// The provider behind the `postgres.*` actions.
#[derive(Clone)]
pub struct PostgresProvider {
    admin_env: AdminEnv,
}

impl fmt::Debug for PostgresProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresProvider")
            .field("admin_env", &self.admin_env)
            .finish()
    }
}

impl Default for PostgresProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresProvider {
    /// Reads admin connection strings from the process environment.
    pub fn new() -> Self {
        Self {
            admin_env: AdminEnv::new(),
        }
    }

    /// Reads admin connection strings through `lookup` instead of the process environment
    /// (embedding, tests: the environment cannot be changed safely in a running process).
    #[must_use]
    pub fn with_env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Result<String, std::env::VarError> + Send + Sync + 'static,
    ) -> Self {
        self.admin_env.env = Arc::new(lookup);
        self
    }

    /// How long to wait for a connection (and its authentication) before a transient error.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.admin_env.connect_timeout = timeout;
        self
    }

    /// The admin connection named by the step's `admin_url_env`.
    fn admin(&self, call: &Call<'_>) -> Result<Admin, ProviderError> {
        self.admin_env.admin(
            call,
            "postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            "PostgreSQL",
        )
    }

    async fn admin_connection(
        &self,
        admin: &Admin,
        scrub: &Scrub<'_>,
    ) -> Result<PgConnection, ProviderError> {
        let what = format!(
            "to {} as the admin from {}",
            server(&admin.options),
            admin.var
        );
        self.admin_env
            .connect(&admin.options, &what, scrub, classify)
            .await
    }

    /// Runs one statement on a fresh admin connection.
    async fn admin_execute(
        &self,
        admin: &Admin,
        sql: String,
        what: &str,
        scrub: &Scrub<'_>,
    ) -> Result<(), ProviderError> {
        let mut conn = self.admin_connection(admin, scrub).await?;
        let r = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
        let _ = conn.close().await;
        r.map(drop).map_err(|e| classify(&e, what, scrub))
    }

    /// `(comment, is active)` of each of the two roles, `[primary, alternate]`; a missing role is
    /// an error naming it.
    async fn pair(
        conn: &mut PgConnection,
        scrub: &Scrub<'_>,
        primary: &str,
        alternate: &str,
    ) -> Result<[(Option<String>, bool); 2], ProviderError> {
        let rows = sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT rolname::text, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname IN ($1, $2)",
        )
        .bind(primary)
        .bind(alternate)
        .fetch_all(conn)
        .await
        .map_err(|e| classify(&e, "reading the alternating roles", scrub))?;
        let get = |name: &str| -> Result<(Option<String>, bool), ProviderError> {
            let (_, comment) = rows.iter().find(|(r, _)| r == name).ok_or_else(|| {
                ProviderError::permanent(format!(
                    "role {} does not exist (strategy: alternating needs both roles)",
                    quote_ident_lossy(name)
                ))
            })?;
            let active = comment.as_deref().is_some_and(|c| c.contains(ACTIVE_TAG));
            Ok((comment.clone(), active))
        };
        Ok([get(primary)?, get(alternate)?])
    }

    /// Single strategy: the role itself (checked to exist). Alternating: the standby role — the one not tagged
    /// active; with neither tagged (a first rotation), consumers use the primary, so the
    /// alternate.
    async fn pick_role(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let role = required(call, "role")?;
        // `alternate_role` alone does not make a pair: only `strategy: alternating` does (a
        // leftover alternate would otherwise take every rotation while `role` kept its
        // password).
        let alternating = input(call, "strategy").as_deref() == Some("alternating");
        let alternate = if alternating {
            Some(required(call, "alternate_role")?)
        } else {
            None
        };
        let picked = match alternate {
            // Still asks the server: a missing role or a bad admin setting stops the rotation
            // here, before an incident revokes anything.
            None => {
                if self.can_login(call).await?.is_none() {
                    return Err(ProviderError::permanent(format!(
                        "role {} does not exist",
                        quote_ident_lossy(&role)
                    )));
                }
                role.into_owned()
            }
            Some(alternate) => {
                if alternate == role {
                    return Err(ProviderError::permanent(format!(
                        "alternate_role must differ from role ({})",
                        quote_ident_lossy(&role)
                    )));
                }
                let admin = self.admin(call)?;
                let scrub = admin.scrub(&[]);
                let mut conn = self.admin_connection(&admin, &scrub).await?;
                let pair = Self::pair(&mut conn, &scrub, &role, &alternate).await;
                let _ = conn.close().await;
                match pair? {
                    [(_, true), (_, true)] => {
                        return Err(ProviderError::permanent(format!(
                            "both {} and {} are tagged {ACTIVE_TAG} in their comments; remove the tag from the role consumers do not use, then run again",
                            quote_ident_lossy(&role),
                            quote_ident_lossy(&alternate)
                        )));
                    }
                    [(_, true), _] | [(_, false), (_, false)] => alternate.into_owned(),
                    [_, (_, true)] => role.into_owned(),
                }
            }
        };
        // The standby of a pair is rekey's to enable (an incident left it off); a single role's
        // login attribute is the operator's.
        let login = if alternating { "on" } else { "keep" };
        Ok(Values::from([
            ("role".to_owned(), Value::Plain(picked)),
            ("login".to_owned(), Value::Plain(login.to_owned())),
        ]))
    }

    /// Moves the active tag to `role` from the other role of the pair, in one transaction.
    /// The rest of each comment is kept.
    async fn mark_active(&self, call: &Call<'_>, undo: bool) -> Result<(), ProviderError> {
        let role = required(call, "role")?;
        let primary = required(call, "primary_role")?;
        let alternate = required(call, "alternate_role")?;
        let other = if role == primary {
            alternate.clone()
        } else if role == alternate {
            primary.clone()
        } else {
            return Err(ProviderError::permanent(format!(
                "role {} is neither {} nor {}",
                quote_ident_lossy(&role),
                quote_ident_lossy(&primary),
                quote_ident_lossy(&alternate)
            )));
        };
        // Undo gives the tag back to the role consumers used before.
        let (to, from) = if undo { (other, role) } else { (role, other) };
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        let [p, a] = Self::pair(&mut conn, &scrub, &primary, &alternate).await?;
        let comment = |name: &str| {
            if name == primary.as_ref() {
                p.0.clone()
            } else {
                a.0.clone()
            }
        };
        let tagged = |c: Option<String>| {
            let c = c.unwrap_or_default();
            if c.contains(ACTIVE_TAG) {
                c
            } else {
                format!("{} {ACTIVE_TAG}", c.trim()).trim().to_owned()
            }
        };
        let untagged = |c: Option<String>| {
            c.unwrap_or_default()
                .replace(ACTIVE_TAG, "")
                .trim()
                .to_owned()
        };
        let mut sql = String::from("BEGIN; ");
        for (name, text) in [
            (&from, untagged(comment(&from))),
            (&to, tagged(comment(&to))),
        ] {
            let value = if text.is_empty() {
                "NULL".to_owned()
            } else {
                quote_escaped_literal(&text)
            };
            let _ = write!(sql, "COMMENT ON ROLE {} IS {value}; ", quote_ident(name)?);
        }
        sql.push_str("COMMIT");
        let r = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
        let _ = conn.close().await;
        r.map_err(|e| {
            classify(
                &e,
                &format!("marking role {} active", quote_ident_lossy(&to)),
                &scrub,
            )
        })?;
        tracing::debug!(role = %to, "postgres: role marked active");
        Ok(())
    }

    async fn set_password(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let role = required(call, "role")?;
        let ident = quote_ident(&role)?;
        let admin = self.admin(call)?;
        let password = new_password()?;
        let verifier = scram_verifier(password.expose_secret())?;
        let scrub = admin.scrub(&[password.expose_secret(), verifier.expose_secret()]);
        // Revoking first, this run turned the login off; alternating, rekey owns the standby
        // role (an incident left it off). A drill of a single role leaves the attribute as it
        // is: a role an operator disabled stays disabled (and the verify step says so).
        let login = call.credential.strategy == rekey_plan::Strategy::RevokeFirst
            || input(call, "login").as_deref() == Some("on");
        let sql = format!(
            "ALTER ROLE {ident} WITH{} PASSWORD {}",
            if login { " LOGIN" } else { "" },
            quote_literal(verifier.expose_secret())
        );
        self.admin_execute(
            &admin,
            sql,
            &format!("setting the password of role {ident}"),
            &scrub,
        )
        .await?;
        tracing::debug!(role = %role, "postgres: new password set (SCRAM-SHA-256 verifier)");
        Ok(Values::from([(
            "password".to_owned(),
            Value::Secret(password),
        )]))
    }

    async fn set_login(&self, call: &Call<'_>, login: bool) -> Result<(), ProviderError> {
        let role = required(call, "role")?;
        let ident = quote_ident(&role)?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let (option, what) = if login {
            ("LOGIN", "enabling")
        } else {
            ("NOLOGIN", "disabling")
        };
        self.admin_execute(
            &admin,
            format!("ALTER ROLE {ident} {option}"),
            &format!("{what} login of role {ident}"),
            &scrub,
        )
        .await?;
        tracing::debug!(role = %role, login, "postgres: login changed");
        Ok(())
    }

    async fn terminate_sessions(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let role = required(call, "role")?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        // Counts the sessions actually signalled (pg_terminate_backend returns false for a
        // backend that went away meanwhile).
        let r = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity \
             WHERE usename = $1 AND pid <> pg_backend_pid()) s WHERE t",
        )
        .bind(role.as_ref())
        .fetch_one(&mut conn)
        .await;
        let _ = conn.close().await;
        let n = r.map_err(|e| {
            classify(
                &e,
                &format!(
                    "terminating the sessions of role {}",
                    quote_ident_lossy(&role)
                ),
                &scrub,
            )
        })?;
        tracing::debug!(role = %role, terminated = n, "postgres: sessions terminated");
        Ok(Values::from([(
            "terminated".to_owned(),
            Value::Plain(n.to_string()),
        )]))
    }

    async fn verify_login(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let role = required(call, "role")?;
        let ident = quote_ident(&role)?;
        let admin = self.admin(call)?;
        let Some(password) = call.inputs.get("password") else {
            return Err(ProviderError::permanent(format!(
                "no new password to verify for role {ident} (input `password` is missing)"
            )));
        };
        let mut options = admin
            .options
            .clone()
            .username(&role)
            .password(password.expose());
        if let Some(db) = input(call, "database").filter(|d| !d.is_empty()) {
            options = options.database(&db);
        }
        let scrub = admin.scrub(&[password.expose()]);
        let what = format!("to {} as role {ident}", server(&options));
        let conn =
            match tokio::time::timeout(self.admin_env.connect_timeout, options.connect()).await {
                Ok(Ok(conn)) => conn,
                // Class 28: invalid authorization (wrong password, role cannot log in).
                Ok(Err(sqlx::Error::Database(db)))
                    if db.code().is_some_and(|c| c.starts_with("28")) =>
                {
                    let code = db.code().map(Cow::into_owned).unwrap_or_default();
                    return Err(ProviderError::permanent(scrub.apply(&format!(
                        "the new password is not accepted: connecting {what}: {} (SQLSTATE {code})",
                        db.message()
                    ))));
                }
                Ok(Err(e)) => return Err(classify(&e, &format!("connecting {what}"), &scrub)),
                Err(_) => {
                    return Err(ProviderError::transient(format!(
                        "connecting {what}: timed out after {:?}",
                        self.admin_env.connect_timeout
                    )));
                }
            };
        let _ = conn.close().await;
        tracing::debug!(role = %role, "postgres: the new password logs in");
        Ok(Values::new())
    }

    /// Whether the role can log in (`None`: no such role).
    async fn can_login(&self, call: &Call<'_>) -> Result<Option<bool>, ProviderError> {
        let role = required(call, "role")?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        let r =
            sqlx::query_scalar::<_, bool>("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
                .bind(role.as_ref())
                .fetch_optional(&mut conn)
                .await;
        let _ = conn.close().await;
        r.map_err(|e| {
            classify(
                &e,
                &format!("reading role {}", quote_ident_lossy(&role)),
                &scrub,
            )
        })
    }

    /// How many sessions of the role are open (other than this one).
    async fn sessions(&self, call: &Call<'_>) -> Result<i64, ProviderError> {
        let role = required(call, "role")?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        let r = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        )
        .bind(role.as_ref())
        .fetch_one(&mut conn)
        .await;
        let _ = conn.close().await;
        r.map_err(|e| {
            classify(
                &e,
                &format!("listing the sessions of role {}", quote_ident_lossy(&role)),
                &scrub,
            )
        })
    }
}

/// `text` as an escape string literal (`E'…'`, backslashes and quotes doubled): unlike a plain
/// literal it reads the same whatever `standard_conforming_strings` says, and a role comment
/// is text anyone with CREATEROLE may have written.
fn quote_escaped_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Marks, in a role's comment, the role of an alternating pair that consumers use.
const ACTIVE_TAG: &str = "[rekey:active]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    PickRole,
    MarkActive,
    SetPassword,
    DisableLogin,
    TerminateSessions,
    VerifyLogin,
}

fn action(call: &Call<'_>) -> Result<Action, ProviderError> {
    match call.step.action.as_str() {
        "postgres.pick_role" => Ok(Action::PickRole),
        "postgres.mark_active" => Ok(Action::MarkActive),
        "postgres.set_password" => Ok(Action::SetPassword),
        "postgres.disable_login" => Ok(Action::DisableLogin),
        "postgres.terminate_sessions" => Ok(Action::TerminateSessions),
        "postgres.verify_login" => Ok(Action::VerifyLogin),
        other => Err(ProviderError::permanent(format!(
            "the postgres provider does not implement `{other}` (step {})",
            call.step.id
        ))),
    }
}

#[async_trait]
impl Provider for PostgresProvider {
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match action(call)? {
            Action::PickRole => self.pick_role(call).await,
            Action::MarkActive => self.mark_active(call, false).await.map(|()| Values::new()),
            Action::SetPassword => self.set_password(call).await,
            Action::DisableLogin => self.set_login(call, false).await.map(|()| Values::new()),
            Action::TerminateSessions => self.terminate_sessions(call).await,
            Action::VerifyLogin => self.verify_login(call).await,
        }
    }

    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        match action(call)? {
            Action::DisableLogin => self.set_login(call, true).await,
            Action::MarkActive => self.mark_active(call, true).await,
            // The old password is gone for good (the step is irreversible); terminated sessions
            // cannot be brought back; a login check changed nothing.
            Action::PickRole
            | Action::SetPassword
            | Action::TerminateSessions
            | Action::VerifyLogin => Ok(()),
        }
    }

    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        match action(call)? {
            Action::DisableLogin => match self.can_login(call).await? {
                Some(false) => Ok(Reconciled::Done(Values::new())),
                Some(true) | None => Ok(Reconciled::NotDone),
            },
            Action::TerminateSessions => {
                if self.sessions(call).await? == 0 {
                    Ok(Reconciled::Done(Values::from([(
                        "terminated".to_owned(),
                        Value::Plain("0".to_owned()),
                    )])))
                } else {
                    Ok(Reconciled::NotDone)
                }
            }
            // Moving the tag again is harmless.
            // A password set by the lost call is unknown to everyone: nothing to remove, the
            // engine sets a new one. A pick or a login check is simply done again.
            Action::MarkActive | Action::PickRole | Action::SetPassword | Action::VerifyLogin => {
                Ok(Reconciled::NotDone)
            }
        }
    }
}

/// The admin connection named by a step.
type Admin = crate::admin::Admin<PgConnectOptions>;

/// `name` as a `PostgreSQL` identifier: in double quotes, inner double quotes doubled.
fn quote_ident(name: &str) -> Result<String, ProviderError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ProviderError::permanent(
            "a role name must be non-empty and free of NUL characters",
        ));
    }
    Ok(quote_ident_lossy(name))
}

fn quote_ident_lossy(name: &str) -> String {
    format!("\"{}\"", name.replace('\0', "").replace('"', "\"\""))
}

/// `text` as a standard SQL string literal (single quotes doubled). Only used for verifiers,
/// which hold no backslashes or quotes anyway.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The server a connection goes to, for messages (never the connection string).
fn server(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => format!("PostgreSQL at {}", socket.display()),
        None => format!(
            "PostgreSQL at {}:{}",
            options.get_host(),
            options.get_port()
        ),
    }
}

/// Turns a sqlx error into a provider error, saying what was being done; the message holds
/// no connection string and is scrubbed of every known secret.
fn classify(e: &sqlx::Error, what: &str, scrub: &Scrub<'_>) -> ProviderError {
    let (transient, detail) = match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(Cow::into_owned).unwrap_or_default();
            (
                is_transient_sqlstate(&code),
                format!("{} (SQLSTATE {code})", db.message()),
            )
        }
        sqlx::Error::Io(io) => (true, io.to_string()),
        sqlx::Error::PoolTimedOut => (true, "timed out".to_owned()),
        // Its message may quote the connection string.
        sqlx::Error::Configuration(_) => (false, "invalid connection settings".to_owned()),
        sqlx::Error::Tls(_) => (false, "TLS negotiation failed".to_owned()),
        sqlx::Error::Protocol(p) => (false, format!("protocol error: {p}")),
        other => (false, other.to_string()),
    };
    let message = scrub.apply(&format!("{what}: {detail}"));
    if transient {
        ProviderError::transient(message)
    } else {
        ProviderError::permanent(message)
    }
}

/// Server conditions worth another try: connection exceptions (08), insufficient resources
/// (53, e.g. too many connections), shutdowns, serialization failures and lock timeouts.
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03"
        )
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for `password` with a fresh salt,
/// the format `PostgreSQL` stores in `pg_authid.rolpassword` and accepts in `PASSWORD '…'`.
fn scram_verifier(password: &str) -> Result<SecretString, ProviderError> {
    let mut salt = [0u8; SCRAM_SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| ProviderError::permanent(format!("no randomness from the OS: {e}")))?;
    Ok(scram_verifier_with(password, &salt, SCRAM_ITERATIONS))
}

fn scram_verifier_with(password: &str, salt: &[u8], iterations: u32) -> SecretString {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    salted.fill(0);
    SecretString::from(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    ))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_postgres() {
        // Known answer for RFC 7677's example (password "pencil", its salt), computed
        // independently with Python's hashlib.pbkdf2_hmac and hmac.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = scram_verifier_with("pencil", &salt, 4096);
        let v = v.expose_secret();
        assert!(v.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("app").unwrap(), "\"app\"");
        assert_eq!(
            quote_ident("a\"; DROP ROLE x; --").unwrap(),
            "\"a\"\"; DROP ROLE x; --\""
        );
        assert!(quote_ident("").is_err());
        assert!(quote_ident("a\0b").is_err());
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(
            quote_escaped_literal("a\\'; DROP ROLE x; --"),
            "E'a\\\\''; DROP ROLE x; --'"
        );
    }

    #[test]
    fn scrub_hides_secrets() {
        let s = Scrub(vec!["hunter22", "abc"]);
        assert_eq!(s.apply("pw hunter22 abc"), "pw *** abc");
    }

    #[test]
    fn passwords_are_long_and_fresh() {
        let a = new_password().unwrap();
        let b = new_password().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
