//! `env_file` consumers: a `KEY=value` line in a file on this machine (a systemd
//! `EnvironmentFile`, a `.env`).
//!
//! A write is a read-modify-rename, so two deliveries into one file (an access key id and its
//! secret, run concurrently) must not interleave: writers of a file are serialized by an
//! advisory lock on `.NAME.rekey-lock` beside it, which also holds across processes. The new
//! content goes to a temp file created exclusively under a fresh name (a planted symlink is never
//! followed), with the old file's owner, group and mode, is fsynced, renamed over the file, and
//! the directory is fsynced so the rename survives a power cut.
//!
//! An env file is live as soon as it is written (there is no staging label as in Secrets
//! Manager), and rekey keeps no copy of the value it replaced: the plan marks the delivery a
//! point of no return, and undoing it is refused.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rekey_engine::{Call, Provider, ProviderError, Reconciled, Value, Values};
use rekey_plan::PlannedStep;
use rekey_spec::Consumer;
use secrecy::SecretString;

#[derive(Debug, Default)]
pub struct EnvFileProvider;

/// One `env_file` consumer.
struct Target<'a> {
    path: &'a str,
    key: &'a str,
    field: Option<&'a str>,
    create: bool,
}

fn target(step: &PlannedStep) -> Result<Target<'_>, ProviderError> {
    match &step.target {
        Some(Consumer::EnvFile {
            path,
            key,
            field,
            create,
        }) => Ok(Target {
            path,
            key,
            field: field.as_deref(),
            create: *create,
        }),
        _ => Err(ProviderError::permanent(format!(
            "{} is not an env_file step",
            step.id
        ))),
    }
}

/// The value a line receives: the named field, or the only one (the plan refuses an env-file
/// consumer without `field` for a document of several values).
fn line_value(inputs: &Values, field: Option<&str>) -> Result<String, ProviderError> {
    if let Some(f) = field {
        return inputs.get(f).map(|v| v.expose().to_owned()).ok_or_else(|| {
            ProviderError::permanent(format!("the delivered document has no field `{f}`"))
        });
    }
    match inputs.len() {
        1 => Ok(inputs.values().next().expect("one").expose().to_owned()),
        n => Err(ProviderError::permanent(format!(
            "an env file line holds one value, and this step delivers {n}: set the consumer's `field:`"
        ))),
    }
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

fn io(path: &Path, what: &str, e: &std::io::Error) -> ProviderError {
    ProviderError::permanent(format!("cannot {what} {}: {e}", path.display()))
}

/// The value of `key` in the file's text (the last `export`-less or `export` assignment wins
/// for a shell, but rekey writes exactly one, so the first is the one it wrote).
fn find_key(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l
            .trim_start()
            .strip_prefix("export ")
            .unwrap_or(l.trim_start());
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(unquote)
    })
}

fn read_key(path: &Path, key: &str) -> Result<Option<String>, ProviderError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(find_key(&t, key)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, "read", &e)),
    }
}

/// The file's text with `key` set to `value`: replaced in place (the first assignment; later
/// duplicates dropped), or appended.
fn with_key(existing: &str, key: &str, value: &str) -> String {
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
    out
}

fn dir_and_name(path: &Path) -> Result<(&Path, &str), ProviderError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ProviderError::permanent(format!("{} names no file", path.display())))?;
    if !path.is_absolute() {
        return Err(ProviderError::permanent(format!(
            "{} is a relative path: env_file paths are resolved against the inventory file",
            path.display()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    Ok((dir, name))
}

/// The lock that serializes writers of `path`, held until dropped. The lock file is opened
/// without following a symlink and must be a private regular file of this user: a file planted
/// by someone else is refused rather than used.
fn lock_beside(path: &Path) -> Result<File, ProviderError> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;

    let (dir, name) = dir_and_name(path)?;
    let lock_path: PathBuf = dir.join(format!(".{name}.rekey-lock"));
    let fd = rustix::fs::open(
        &lock_path,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            ProviderError::permanent(format!(
                "refusing the lock file {}: it is a symbolic link (remove it)",
                lock_path.display()
            ))
        } else {
            io(&lock_path, "open the lock file", &e.into())
        }
    })?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| io(&lock_path, "inspect the lock file", &e))?;
    let euid = rustix::process::geteuid().as_raw();
    if !meta.file_type().is_file() || meta.uid() != euid || meta.mode() & 0o077 != 0 {
        return Err(ProviderError::permanent(format!(
            "refusing the lock file {}: expected a regular file of uid {euid} with mode 0600, found mode {:o} of uid {} (remove it)",
            lock_path.display(),
            meta.mode() & 0o7777,
            meta.uid()
        )));
    }
    file.lock()
        .map_err(|e| io(&lock_path, "lock", &e))?;
    Ok(file)
}

/// What is at `path`: `None` if nothing; a symlink or anything but a regular file is refused,
/// because a rename would replace the link and leave the file it points to unchanged.
fn existing_file(path: &Path) -> Result<Option<std::fs::Metadata>, ProviderError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(ProviderError::permanent(format!(
            "{} is a symbolic link: name the file it points to in the inventory",
            path.display()
        ))),
        Ok(m) if !m.file_type().is_file() => Err(ProviderError::permanent(format!(
            "{} is not a regular file",
            path.display()
        ))),
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, "inspect", &e)),
    }
}

fn missing(path: &Path) -> ProviderError {
    ProviderError::permanent(format!(
        "{} does not exist: check the path, or set `create: true` on the consumer to create it",
        path.display()
    ))
}

/// Sets `key` in the file, under the file's writer lock.
fn write_key(path: &Path, key: &str, value: &str, create: bool) -> Result<(), ProviderError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let (dir, name) = dir_and_name(path)?;
    let _lock = lock_beside(path)?;
    let meta = existing_file(path)?;
    let existing = match &meta {
        Some(_) => std::fs::read_to_string(path).map_err(|e| io(path, "read", &e))?,
        None if create => String::new(),
        None => return Err(missing(path)),
    };
    let out = with_key(&existing, key, value);

    // O_CREAT|O_EXCL under a random name, mode 0600: nothing planted there is followed.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".rekey-tmp")
        .tempfile_in(dir)
        .map_err(|e| io(dir, "create a temp file in", &e))?;
    if let Some(m) = &meta {
        // Keep the owner, group and mode the consumer reads it with.
        if m.uid() != rustix::process::geteuid().as_raw()
            || m.gid() != rustix::process::getegid().as_raw()
        {
            std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid())).map_err(
                |e| {
                    ProviderError::permanent(format!(
                        "cannot keep the owner {}:{} of {}: {e} (run rekey as that user, or as root)",
                        m.uid(),
                        m.gid(),
                        path.display()
                    ))
                },
            )?;
        }
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(|e| io(path, "keep the mode of", &e))?;
    }
    tmp.write_all(out.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io(path, "write", &e))?;
    tmp.persist(path)
        .map_err(|e| io(path, "replace", &e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "sync the directory", &e))?;
    Ok(())
}

/// Runs blocking file work off the async workers (a writer may wait on another's lock).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProviderError::permanent(format!("env file worker stopped: {e}")))?
}

#[async_trait]
impl Provider for EnvFileProvider {
    async fn preflight(&self, step: &PlannedStep) -> Result<(), ProviderError> {
        let t = target(step)?;
        let path = PathBuf::from(t.path);
        let (dir, _) = dir_and_name(&path)?;
        let exists = existing_file(&path)?.is_some();
        if !exists && !(t.create && step.action == "consumer.deliver") {
            return Err(missing(&path));
        }
        if !dir.is_dir() {
            return Err(ProviderError::permanent(format!(
                "the folder {} does not exist",
                dir.display()
            )));
        }
        rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(|e| {
            ProviderError::permanent(format!(
                "cannot write in {} (a new file is renamed into it): {e}",
                dir.display()
            ))
        })?;
        Ok(())
    }

    async fn execute(&self, call: &Call<'_>) -> Result<Values, ProviderError> {
        let t = target(call.step)?;
        let path = PathBuf::from(t.path);
        let key = t.key.to_owned();
        match call.step.action.as_str() {
            "consumer.deliver" => {
                let value = line_value(call.inputs, t.field)?;
                let create = t.create;
                let p = path.clone();
                let k = key.clone();
                blocking(move || write_key(&p, &k, &value, create)).await?;
                Ok([(
                    "version".to_owned(),
                    Value::Plain(format!("{}#{key}", path.display())),
                )]
                .into())
            }
            "consumer.read_current" => {
                let p = path.clone();
                let k = key.clone();
                let v = blocking(move || read_key(&p, &k)).await?.ok_or_else(|| {
                    ProviderError::permanent(format!("{} has no {key}", path.display()))
                })?;
                Ok([("value".to_owned(), Value::secret(v))].into())
            }
            other => Err(ProviderError::permanent(format!(
                "env_file consumers do not support {other}"
            ))),
        }
    }

    async fn undo(&self, call: &Call<'_>, _outputs: &Values) -> Result<(), ProviderError> {
        if call.step.action == "consumer.deliver" {
            let t = target(call.step)?;
            return Err(ProviderError::permanent(format!(
                "{}#{} was overwritten and rekey keeps no copy of the old value: restore it from the credential's other consumers",
                t.path, t.key
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
        let t = target(call.step)?;
        let path = PathBuf::from(t.path);
        let key = t.key.to_owned();
        let Some(v) = blocking(move || read_key(&path, &key)).await? else {
            return Ok(None);
        };
        let name = match t.field {
            Some(f) => f.to_owned(),
            None => match call.step.inputs.keys().next() {
                Some(only) if call.step.inputs.len() == 1 => only.clone(),
                _ => return Ok(None),
            },
        };
        Ok(Some([(name, SecretString::from(v))].into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn lines_round_trip_and_replace_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        std::fs::write(&path, "# app\nOTHER=1\nexport TOKEN=old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_key(&path, "TOKEN", "it's {\"a\": 1}", false).unwrap();
        assert_eq!(
            read_key(&path, "TOKEN").unwrap().as_deref(),
            Some("it's {\"a\": 1}")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains("TOKEN")).count(), 1);
        assert!(text.starts_with("# app\nOTHER=1\n"));
        // The existing file's mode is kept.
        assert_eq!(mode(&path), 0o640);
        write_key(&path, "NEW", "abc", false).unwrap();
        assert_eq!(read_key(&path, "NEW").unwrap().as_deref(), Some("abc"));
        // A new file is private; a missing one is created only when asked.
        let fresh = dir.path().join("new.env");
        let e = write_key(&fresh, "A", "1", false).unwrap_err();
        assert!(e.message.contains("create: true"), "{e}");
        write_key(&fresh, "A", "1", true).unwrap();
        assert_eq!(mode(&fresh), 0o600);
        // No temp file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".rekey-tmp")), "{names:?}");
    }

    #[test]
    fn concurrent_writers_of_one_file_keep_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        std::fs::write(&path, "KEEP=me\n").unwrap();
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        write_key(&path, &format!("K{t}"), &format!("v{round}"), false).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(find_key(&text, "KEEP").as_deref(), Some("me"));
        for t in 0..16 {
            assert_eq!(
                find_key(&text, &format!("K{t}")).as_deref(),
                Some("v19"),
                "K{t} lost in:\n{text}"
            );
        }
        assert_eq!(text.lines().count(), 17, "{text}");
    }

    #[test]
    fn a_planted_lock_or_temp_path_is_refused_or_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        std::fs::write(&path, "A=1\n").unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched\n").unwrap();

        // The temp name of earlier versions, planted as a symlink: never written through.
        std::os::unix::fs::symlink(&victim, dir.path().join(".app.env.rekey-tmp")).unwrap();
        write_key(&path, "A", "2", false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
        assert_eq!(read_key(&path, "A").unwrap().as_deref(), Some("2"));

        // A symlink at the lock path is refused, and so is a lock file others may write.
        let lock = dir.path().join(".app.env.rekey-lock");
        std::fs::remove_file(&lock).unwrap();
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let e = write_key(&path, "A", "3", false).unwrap_err();
        assert!(e.message.contains("symbolic link"), "{e}");
        std::fs::remove_file(&lock).unwrap();
        std::fs::write(&lock, "").unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = write_key(&path, "A", "3", false).unwrap_err();
        assert!(e.message.contains("refusing the lock file"), "{e}");
        assert_eq!(read_key(&path, "A").unwrap().as_deref(), Some("2"));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");

        // The env file itself as a symlink: the link would be replaced, not the file.
        std::fs::remove_file(&lock).unwrap();
        let linked = dir.path().join("linked.env");
        std::os::unix::fs::symlink(&path, &linked).unwrap();
        let e = write_key(&linked, "A", "4", false).unwrap_err();
        assert!(e.message.contains("symbolic link"), "{e}");
    }
}
