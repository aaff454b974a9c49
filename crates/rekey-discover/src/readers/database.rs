//! `~/.pgpass` (or `PGPASSFILE`): `host:port:database:user:password`, `\:` and `\\` escaped;
//! `PGPASSWORD` (with `PGUSER`, `PGHOST`). `~/.my.cnf`: `password` in `[client]`, `[mysql]`
//! or `[mysqldump]` with its `user` and `host`; `MYSQL_PWD`.

use secrecy::{ExposeSecret, SecretString};

use super::{at, text};
use crate::{Environment, Origin, Raw, ini};

/// A `.pgpass` line's five fields, unescaped.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

pub fn read(env: &Environment, out: &mut Vec<Raw>) {
    let plain = |k: &str| {
        env.secret(k)
            .map(|v| v.expose_secret().to_owned())
            .unwrap_or_default()
    };
    let pgpass = env
        .path_var("PGPASSFILE")
        .unwrap_or_else(|| env.home.join(".pgpass"));
    if let Some(t) = text(&pgpass) {
        for (i, line) in t.lines().enumerate() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            let f = pgpass_fields(line);
            if f.len() != 5 || f[4].is_empty() {
                continue;
            }
            out.push(
                Raw::new(
                    Origin::Postgres,
                    at(env, &pgpass, i + 1),
                    Some(SecretString::from(f[4].clone())),
                )
                .id("host", format!("{}:{}", f[0], f[1]))
                .id("database", f[2].clone())
                .id("user", f[3].clone()),
            );
        }
    }
    if let Some(v) = env.secret("PGPASSWORD") {
        out.push(
            Raw::new(Origin::Postgres, "env:PGPASSWORD".into(), Some(v.clone()))
                .id("user", plain("PGUSER"))
                .id("host", plain("PGHOST")),
        );
    }
    let mycnf = env.home.join(".my.cnf");
    if let Some(t) = text(&mycnf) {
        let entries = ini::parse(&t);
        for section in ["client", "mysql", "mysqldump"] {
            let Some(pw) = ini::get(&entries, section, "password") else {
                continue;
            };
            let get = |k: &str| {
                ini::get(&entries, section, k)
                    .or_else(|| ini::get(&entries, "client", k))
                    .map(|e| e.value.expose_secret().to_owned())
                    .unwrap_or_default()
            };
            out.push(
                Raw::new(
                    Origin::Mysql,
                    at(env, &mycnf, pw.line),
                    Some(pw.value.clone()),
                )
                .id("user", get("user"))
                .id("host", get("host")),
            );
        }
    }
    if let Some(v) = env.secret("MYSQL_PWD") {
        out.push(
            Raw::new(Origin::Mysql, "env:MYSQL_PWD".into(), Some(v.clone()))
                .id("user", plain("USER")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::fixture::{env, show, write};

    #[test]
    fn pgpass_my_cnf_and_environment() {
        let home = tempfile::tempdir().unwrap();
        write(
            home.path(),
            ".pgpass",
            "# comment\ndb.internal:5432:app:app_rw:pa\\:ss\\\\word\n*:*:*:readonly:\n",
        );
        write(
            home.path(),
            ".my.cnf",
            "[client]\nuser = app\npassword = \"my-s3cret\"\nhost = mysql.internal\n",
        );
        let e = env(home.path(), &[("PGPASSWORD", "env-pg")]);
        let mut out = Vec::new();
        read(&e, &mut out);
        assert_eq!(
            show(&out),
            vec![
                (
                    "~/.pgpass:2".into(),
                    "database=app host=db.internal:5432 user=app_rw".into(),
                    Some("pa:ss\\word".into())
                ),
                (
                    "env:PGPASSWORD".into(),
                    String::new(),
                    Some("env-pg".into())
                ),
                (
                    "~/.my.cnf:3".into(),
                    "host=mysql.internal user=app".into(),
                    Some("my-s3cret".into())
                ),
            ]
        );
    }
}
