//! `MySQL` / `MariaDB` user passwords: the `mysql.*` actions.
//!
//! | action | what it does |
//! |---|---|
//! | `mysql.set_password` | a new random password: `ALTER USER 'user'@'host' IDENTIFIED BY '<new>' ACCOUNT UNLOCK` |
//! | `mysql.lock_account` | `ALTER USER 'user'@'host' ACCOUNT LOCK` (undo: `ACCOUNT UNLOCK`) |
//! | `mysql.kill_sessions` | `KILL CONNECTION` for every session of the user; output `killed` |
//! | `mysql.verify_login` | logs in as the user with the new password |
//!
//! The host part of the account is the input `host_pattern`, `%` when it is missing or empty.
//!
//! **Authentication.** The input `admin_url_env` names an environment variable holding the admin
//! connection string (`mysql://admin:…@host:port[/db]`). It is read at call time, kept in a
//! [`SecretString`], and never appears in a message: errors name the variable and the server's
//! `host:port` only. `verify_login` connects to the same server with the same settings (TLS,
//! database), as the user instead of the admin.
//!
//! **Secrets.** The new password is 32 random bytes (base64url, 43 characters) and leaves this
//! module only as [`Value::Secret`]. `MySQL` has no way to send a verifier for every
//! authentication plugin, so the server receives the cleartext inside `ALTER USER` (`MySQL` and
//! `MariaDB` mask it in their own logs); statement logging of the client (sqlx) is turned off on
//! every connection. Error messages are scrubbed of the new password and the admin password
//! before they are returned.
//!
//! **Idempotency.** `lock_account`, `kill_sessions` and `verify_login` are idempotent by nature.
//! `set_password` sets another password when run again, which is acceptable for the same reason
//! as for `PostgreSQL` (see [`crate::postgres`]): the step is irreversible and the engine runs it
//! again only when the earlier password is unknown to everyone.
//!
//! **Errors.** Connection failures, timeouts and the server's transient conditions (SQLSTATE
//! class 08, too many connections, shutdowns, deadlocks, lock wait timeouts) are
//! [`ErrorKind::Transient`](rekey_engine::ErrorKind::Transient); anything else (authentication,
//! permissions, unknown user, bad input) is permanent.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{AdminEnv, Scrub, input, new_password, required};
use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

/// `ER_NO_SUCH_THREAD`: the session went away before `KILL` reached it.
const ER_NO_SUCH_THREAD: u16 = 1094;
/// `ER_CANNOT_USER` (e.g. `SHOW CREATE USER` of an unknown account).
const ER_CANNOT_USER: u16 = 1396;
/// `ER_NONEXISTING_GRANT`: `SHOW CREATE USER` of an unknown account on some versions.
const ER_NONEXISTING_GRANT: u16 = 1141;
/// `ER_PASSWORD_NO_MATCH`: "Can't find any matching row in the user table" (`MariaDB`'s
/// `SHOW CREATE USER` of an unknown account).
const ER_PASSWORD_NO_MATCH: u16 = 1133;
/// Login refused: access denied, account locked (`MySQL` 3118, `MariaDB` 4151).
const LOGIN_REFUSED: [u16; 3] = [1045, 3118, 4151];

/// The provider behind the `mysql.*` actions.
#[derive(Clone)]
pub struct MysqlProvider {
    admin_env: AdminEnv,
}

impl fmt::Debug for MysqlProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlProvider")
            .field("admin_env", &self.admin_env)
            .finish()
    }
}

impl Default for MysqlProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl MysqlProvider {
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
        self.admin_env
            .admin(call, "mysql://USER:PASSWORD@HOST:PORT", "MySQL")
    }

    async fn admin_connection(
        &self,
        admin: &Admin,
        scrub: &Scrub<'_>,
    ) -> Result<MySqlConnection, ProviderError> {
        let what = format!(
            "to {} as the admin from {}",
            server(&admin.options),
            admin.var
        );
        self.admin_env
            .connect(&admin.options, &what, scrub, classify)
            .await
    }

    /// Runs one statement (text protocol: account statements are not all preparable) on a
    /// fresh admin connection.
    async fn admin_execute(
        &self,
        admin: &Admin,
        sql: String,
        what: &str,
        scrub: &Scrub<'_>,
    ) -> Result<(), ProviderError> {
        let mut conn = self.admin_connection(admin, scrub).await?;
        let r = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
        let _ = conn.close().await;
        r.map(drop).map_err(|e| classify(&e, what, scrub))
    }

    async fn set_password(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let account = account(call)?;
        let admin = self.admin(call)?;
        let password = new_password()?;
        let scrub = admin.scrub(&[password.expose_secret()]);
        // Revoking first, this run locked the account: the new password opens it again. A
        // drill leaves the lock as it is — an account an operator locked stays locked (and
        // the verify step says it cannot log in).
        let unlock = if call.credential.strategy == rekey_plan::Strategy::RevokeFirst {
            " ACCOUNT UNLOCK"
        } else {
            ""
        };
        let sql = format!(
            "ALTER USER {account} IDENTIFIED BY {}{unlock}",
            quote_literal(password.expose_secret())
        );
        self.admin_execute(
            &admin,
            sql,
            &format!("setting the password of user {account}"),
            &scrub,
        )
        .await?;
        tracing::debug!(account = %account, "mysql: new password set");
        Ok(Values::from([(
            "password".to_owned(),
            Value::Secret(password),
        )]))
    }

    async fn set_lock(&self, call: &Call<'_>, lock: bool) -> Result<(), ProviderError> {
        let account = account(call)?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let (option, what) = if lock {
            ("ACCOUNT LOCK", "locking")
        } else {
            ("ACCOUNT UNLOCK", "unlocking")
        };
        self.admin_execute(
            &admin,
            format!("ALTER USER {account} {option}"),
            &format!("{what} user {account}"),
            &scrub,
        )
        .await?;
        tracing::debug!(account = %account, lock, "mysql: account lock changed");
        Ok(())
    }

    /// The ids of the user's sessions, other than the admin connection's own.
    async fn session_ids(
        conn: &mut MySqlConnection,
        user: &str,
        scrub: &Scrub<'_>,
    ) -> Result<Vec<u64>, ProviderError> {
        sqlx::query_scalar::<_, u64>(
            "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST \
             WHERE USER = ? AND ID <> CONNECTION_ID()",
        )
        .bind(user)
        .fetch_all(conn)
        .await
        .map_err(|e| {
            classify(
                &e,
                &format!("listing the sessions of user {}", quote_literal(user)),
                scrub,
            )
        })
    }

    async fn kill_sessions(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user")?;
        check_name(&user, "user")?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        let r = async {
            let mut killed = 0u64;
            for id in Self::session_ids(&mut conn, &user, &scrub).await? {
                match sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
                    .execute(&mut conn)
                    .await
                {
                    Ok(_) => killed += 1,
                    // Gone meanwhile: nothing to kill.
                    Err(sqlx::Error::Database(db))
                        if mysql_number(db.as_ref()) == Some(ER_NO_SUCH_THREAD) => {}
                    Err(e) => {
                        return Err(classify(
                            &e,
                            &format!("killing session {id} of user {}", quote_literal(&user)),
                            &scrub,
                        ));
                    }
                }
            }
            Ok(killed)
        }
        .await;
        let _ = conn.close().await;
        let killed = r?;
        tracing::debug!(user = %user, killed, "mysql: sessions killed");
        Ok(Values::from([(
            "killed".to_owned(),
            Value::Plain(killed.to_string()),
        )]))
    }

    async fn verify_login(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let user = required(call, "user")?;
        check_name(&user, "user")?;
        let shown = quote_literal(&user);
        let admin = self.admin(call)?;
        let Some(password) = call.inputs.get("password") else {
            return Err(ProviderError::permanent(format!(
                "no new password to verify for user {shown} (input `password` is missing)"
            )));
        };
        let options = admin
            .options
            .clone()
            .username(&user)
            .password(password.expose());
        let scrub = admin.scrub(&[password.expose()]);
        let what = format!("to {} as user {shown}", server(&options));
        let conn =
            match tokio::time::timeout(self.admin_env.connect_timeout, options.connect()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(sqlx::Error::Database(db)))
                    if mysql_number(db.as_ref()).is_some_and(|n| LOGIN_REFUSED.contains(&n)) =>
                {
                    return Err(ProviderError::permanent(scrub.apply(&format!(
                        "the new password is not accepted: connecting {what}: {}",
                        describe(db.as_ref())
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
        tracing::debug!(user = %user, "mysql: the new password logs in");
        Ok(Values::new())
    }

    /// Whether the account is locked (`None`: no such account), from `SHOW CREATE USER`, which
    /// both `MySQL` (always `ACCOUNT LOCK` or `ACCOUNT UNLOCK`) and `MariaDB` (`ACCOUNT LOCK` when
    /// locked) answer the same way.
    async fn is_locked(&self, call: &Call<'_>) -> Result<Option<bool>, ProviderError> {
        let account = account(call)?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        let r = sqlx::raw_sql(AssertSqlSafe(format!("SHOW CREATE USER {account}")))
            .fetch_optional(&mut conn)
            .await;
        let _ = conn.close().await;
        let row = match r {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(None),
            Err(sqlx::Error::Database(db))
                if mysql_number(db.as_ref()).is_some_and(|n| {
                    matches!(
                        n,
                        ER_CANNOT_USER | ER_NONEXISTING_GRANT | ER_PASSWORD_NO_MATCH
                    )
                }) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(classify(&e, &format!("reading user {account}"), &scrub));
            }
        };
        // The statement may hold the password hash: it is only searched, never shown.
        let statement = SecretString::from(
            row.try_get_unchecked::<String, _>(0)
                .map_err(|e| classify(&e, &format!("reading user {account}"), &scrub))?,
        );
        Ok(Some(
            statement
                .expose_secret()
                .to_ascii_uppercase()
                .contains(" ACCOUNT LOCK"),
        ))
    }

    /// How many sessions of the user are open (other than the admin connection's own).
    async fn sessions(&self, call: &Call<'_>) -> Result<usize, ProviderError> {
        let user = required(call, "user")?;
        check_name(&user, "user")?;
        let admin = self.admin(call)?;
        let scrub = admin.scrub(&[]);
        let mut conn = self.admin_connection(&admin, &scrub).await?;
        let r = Self::session_ids(&mut conn, &user, &scrub).await;
        let _ = conn.close().await;
        r.map(|ids| ids.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    SetPassword,
    LockAccount,
    KillSessions,
    VerifyLogin,
}

fn action(call: &Call<'_>) -> Result<Action, ProviderError> {
    match call.step.action.as_str() {
        "mysql.set_password" => Ok(Action::SetPassword),
        "mysql.lock_account" => Ok(Action::LockAccount),
        "mysql.kill_sessions" => Ok(Action::KillSessions),
        "mysql.verify_login" => Ok(Action::VerifyLogin),
        other => Err(ProviderError::permanent(format!(
            "the mysql provider does not implement `{other}` (step {})",
            call.step.id
        ))),
    }
}

#[async_trait]
impl Provider for MysqlProvider {
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        match action(call)? {
            Action::SetPassword => self.set_password(call).await,
            Action::LockAccount => self.set_lock(call, true).await.map(|()| Values::new()),
            Action::KillSessions => self.kill_sessions(call).await,
            Action::VerifyLogin => self.verify_login(call).await,
        }
    }

    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        match action(call)? {
            Action::LockAccount => self.set_lock(call, false).await,
            // The old password is gone for good (the step is irreversible); killed sessions
            // cannot be brought back; a login check changed nothing.
            Action::SetPassword | Action::KillSessions | Action::VerifyLogin => Ok(()),
        }
    }

    async fn reconcile(&self, call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        match action(call)? {
            Action::LockAccount => match self.is_locked(call).await? {
                Some(true) => Ok(Reconciled::Done(Values::new())),
                Some(false) | None => Ok(Reconciled::NotDone),
            },
            Action::KillSessions => {
                if self.sessions(call).await? == 0 {
                    Ok(Reconciled::Done(Values::from([(
                        "killed".to_owned(),
                        Value::Plain("0".to_owned()),
                    )])))
                } else {
                    Ok(Reconciled::NotDone)
                }
            }
            // A password set by the lost call is unknown to everyone: the engine sets a new
            // one. A login check is simply done again.
            Action::SetPassword | Action::VerifyLogin => Ok(Reconciled::NotDone),
        }
    }
}

/// The admin connection named by a step.
type Admin = crate::admin::Admin<MySqlConnectOptions>;

fn check_name(name: &str, what: &str) -> Result<(), ProviderError> {
    if name.contains('\0') {
        return Err(ProviderError::permanent(format!(
            "the {what} name must be free of NUL characters"
        )));
    }
    // How a backslash in a literal reads depends on the server's `NO_BACKSLASH_ESCAPES`:
    // escaped, it would name another account on a server with that mode set.
    if name.contains('\\') {
        return Err(ProviderError::permanent(format!(
            "the {what} name must be free of backslashes (they read differently under NO_BACKSLASH_ESCAPES)"
        )));
    }
    Ok(())
}

/// The account of the step, quoted: `'user'@'host_pattern'` (host `%` by default).
fn account(call: &Call<'_>) -> Result<String, ProviderError> {
    let user = required(call, "user")?;
    check_name(&user, "user")?;
    // Given but empty is a lost value, not "the default host": it would pick another account.
    let host = input(call, "host_pattern");
    if host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        return Err(ProviderError::permanent(format!(
            "step {}: input `host_pattern` is empty; refusing to guess the account",
            call.step.id
        )));
    }
    let host = host.as_deref().unwrap_or("%");
    check_name(host, "host")?;
    Ok(format!("{}@{}", quote_literal(&user), quote_literal(host)))
}

/// `text` as a `MySQL` string literal: backslashes and single quotes escaped. Quotes are doubled
/// (`''`), which is safe whether or not `NO_BACKSLASH_ESCAPES` is set; escaped backslashes are
/// not, so names with one are refused ([`check_name`]) and generated passwords have none.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The server a connection goes to, for messages (never the connection string).
fn server(options: &MySqlConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => format!("MySQL at {}", socket.display()),
        None => format!("MySQL at {}:{}", options.get_host(), options.get_port()),
    }
}

/// The server's error number, when the error came from `MySQL`.
fn mysql_number(db: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    db.try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// `message (error N, SQLSTATE S)`.
fn describe(db: &dyn sqlx::error::DatabaseError) -> String {
    let code = db.code().map(Cow::into_owned).unwrap_or_default();
    match mysql_number(db) {
        Some(n) => format!("{} (error {n}, SQLSTATE {code})", db.message()),
        None => format!("{} (SQLSTATE {code})", db.message()),
    }
}

/// Turns a sqlx error into a provider error, saying what was being done; the message holds
/// no connection string and is scrubbed of every known secret.
fn classify(e: &sqlx::Error, what: &str, scrub: &Scrub<'_>) -> ProviderError {
    let (transient, detail) = match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(Cow::into_owned).unwrap_or_default();
            (
                is_transient(&code, mysql_number(db.as_ref())),
                describe(db.as_ref()),
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

/// Server conditions worth another try: connection exceptions (SQLSTATE 08), too many
/// connections (1040, 1203), shutdowns (1053), lock wait timeouts (1205), deadlocks (1213,
/// SQLSTATE 40001) and killed connections (1927).
fn is_transient(code: &str, number: Option<u16>) -> bool {
    code.starts_with("08")
        || code == "40001"
        || number.is_some_and(|n| matches!(n, 1040 | 1053 | 1203 | 1205 | 1213 | 1927))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("app"), "'app'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(
            quote_literal("a\\'; DROP USER x; --"),
            "'a\\\\''; DROP USER x; --'"
        );
    }

    #[test]
    fn names_with_backslashes_are_refused() {
        assert!(check_name("app", "user").is_ok());
        let e = check_name("a\\b", "user").unwrap_err();
        assert!(e.message.contains("backslash"), "{}", e.message);
        assert!(
            crate::admin::new_password()
                .unwrap()
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn transient_conditions() {
        assert!(is_transient("08S01", Some(1053)));
        assert!(is_transient("HY000", Some(1205)));
        assert!(!is_transient("28000", Some(1045)));
        assert!(!is_transient("42000", Some(1064)));
    }

    #[test]
    fn passwords_are_long_and_fresh() {
        let a = new_password().unwrap();
        let b = new_password().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
