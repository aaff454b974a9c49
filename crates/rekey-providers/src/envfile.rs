//! `env_file` consumers: a `KEY=value` line in a file on this machine (a systemd
//! `EnvironmentFile`, a `.env`). Written atomically (temp file in the same folder, mode 0600,
//! fsync, rename), so a reader never sees half a file.
//!
//! An env file is live as soon as it is written (there is no staging label as in Secrets
//! Manager), and rekey keeps no copy of the value it replaced: undoing a delivery is not
//! possible and is reported as such.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_spec::Consumer;
use secrecy::SecretString;

#[derive(Debug, Default)]
pub struct EnvFileProvider;

fn target(call: &Call<'_>) -> Result<(String, String, Option<String>), ProviderError> {
    match &call.step.target {
        Some(Consumer::EnvFile { path, key, field }) => {
            Ok((path.clone(), key.clone(), field.clone()))
        }
        _ => Err(ProviderError::permanent(format!(
            "{} is not an env_file step",
            call.step.id
        ))),
    }
}

/// The value a consumer receives: the named field, the only field, or the JSON document.
pub(crate) fn document_value(
    inputs: &Values,
    field: Option<&str>,
) -> Result<String, ProviderError> {
    if let Some(f) = field {
        return inputs.get(f).map(|v| v.expose().to_owned()).ok_or_else(|| {
            ProviderError::permanent(format!("the delivered document has no field `{f}`"))
        });
    }
    if inputs.len() == 1 {
        return Ok(inputs.values().next().expect("one").expose().to_owned());
    }
    let doc: BTreeMap<&str, &str> = inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    Ok(serde_json::to_string(&doc).expect("strings serialize"))
}

/// `KEY=value`, single-quoted when the value has characters a shell or systemd would split.
fn line(key: &str, value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./+=:@%".contains(c))
    {
        format!("{key}={value}")
    } else {
        format!("{key}='{}'", value.replace('\'', "'\\''"))
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return inner.replace("'\\''", "'");
    }
    if let Some(inner) = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        return inner.to_owned();
    }
    v.to_owned()
}

fn io(path: &str, what: &str, e: &std::io::Error) -> ProviderError {
    ProviderError::permanent(format!("cannot {what} {path}: {e}"))
}

fn read_key(path: &str, key: &str) -> Result<Option<String>, ProviderError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, "read", &e)),
    };
    Ok(text.lines().find_map(|l| {
        let l = l
            .trim_start()
            .strip_prefix("export ")
            .unwrap_or(l.trim_start());
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(unquote)
    }))
}

fn write_key(path: &str, key: &str, value: &str) -> Result<(), ProviderError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(path, "read", &e)),
    };
    let mut replaced = false;
    let mut out = String::with_capacity(existing.len() + value.len() + key.len() + 4);
    for l in existing.lines() {
        let bare = l
            .trim_start()
            .strip_prefix("export ")
            .unwrap_or(l.trim_start());
        if bare.strip_prefix(key).is_some_and(|r| r.starts_with('=')) {
            if !replaced {
                out.push_str(&line(key, value));
                out.push('\n');
                replaced = true;
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str(&line(key, value));
        out.push('\n');
    }
    let p = Path::new(path);
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.rekey-tmp",
        p.file_name().and_then(|n| n.to_str()).unwrap_or("env")
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| io(path, "write next to", &e))?;
    f.write_all(out.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io(path, "write", &e))?;
    std::fs::rename(&tmp, p).map_err(|e| io(path, "replace", &e))?;
    Ok(())
}

#[async_trait]
impl Provider for EnvFileProvider {
    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let (path, key, field) = target(call)?;
        match call.step.action.as_str() {
            "consumer.deliver" => {
                let value = document_value(call.inputs, field.as_deref())?;
                write_key(&path, &key, &value)?;
                Ok([("version".to_owned(), Value::Plain(format!("{path}#{key}")))].into())
            }
            "consumer.read_current" => {
                let v = read_key(&path, &key)?
                    .ok_or_else(|| ProviderError::permanent(format!("{path} has no {key}")))?;
                Ok([("value".to_owned(), Value::secret(v))].into())
            }
            other => Err(ProviderError::permanent(format!(
                "env_file consumers do not support {other}"
            ))),
        }
    }

    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        if call.step.action == "consumer.deliver" {
            let (path, key, _) = target(call)?;
            return Err(ProviderError::permanent(format!(
                "{path}#{key} was overwritten and rekey keeps no copy of the old value: restore it from the credential's other consumers"
            )));
        }
        Ok(())
    }

    async fn reconcile(&self, _call: &Call<'_>) -> Result<Reconciled, ProviderError> {
        // Writing the file again is idempotent.
        Ok(Reconciled::NotDone)
    }

    async fn read_back(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<BTreeMap<String, SecretString>>, ProviderError> {
        let (path, key, field) = target(call)?;
        let Some(v) = read_key(&path, &key)? else {
            return Ok(None);
        };
        let names: Vec<String> = match field {
            Some(f) => vec![f],
            None if call.step.inputs.len() == 1 => call.step.inputs.keys().cloned().collect(),
            None => {
                // A JSON document: give back each field.
                let doc: BTreeMap<String, String> = serde_json::from_str(&v)
                    .map_err(|_| ProviderError::permanent("the env file holds no JSON document"))?;
                return Ok(Some(
                    doc.into_iter()
                        .map(|(k, v)| (k, SecretString::from(v)))
                        .collect(),
                ));
            }
        };
        Ok(Some(
            names
                .into_iter()
                .map(|n| (n, SecretString::from(v.clone())))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_replace_in_place() {
        let dir = std::env::temp_dir().join(format!("rekey-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.env").display().to_string();
        std::fs::write(&path, "# app\nOTHER=1\nexport TOKEN=old\n").unwrap();
        write_key(&path, "TOKEN", "it's {\"a\": 1}").unwrap();
        assert_eq!(
            read_key(&path, "TOKEN").unwrap().as_deref(),
            Some("it's {\"a\": 1}")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains("TOKEN")).count(), 1);
        assert!(text.starts_with("# app\nOTHER=1\n"));
        write_key(&path, "NEW", "abc").unwrap();
        assert_eq!(read_key(&path, "NEW").unwrap().as_deref(), Some("abc"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
