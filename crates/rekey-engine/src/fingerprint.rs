//! The installation key: keyed fingerprints of secrets for the audit log, and the key of the
//! audit chain.
//!
//! A fingerprint is `hmac-sha256:KID:HEX`: `HMAC-SHA256(installation key, value)`, hex,
//! truncated to 32 characters, after the key id `KID` (8 hex characters of
//! `HMAC(key, "rekey key id")`, public). It lets an auditor check "is the value in Secrets
//! Manager the one rotated in run X" without the log ever holding something that can be turned
//! back into the value or tested offline; the key id keeps fingerprints made with different
//! installation keys from ever being taken for each other. The audit chain is keyed with
//! `HMAC(key, "rekey audit chain v1")`: one secret, two separate uses.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use rekey_store::ChainKey;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

pub struct Fingerprinter {
    key: SecretBox<[u8; 32]>,
    key_id: String,
    path: PathBuf,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("path", &self.path)
            .field("key_id", &self.key_id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// Why a key file cannot be used. `Refused` is the operator's to fix (permissions, size).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Why a recorded fingerprint is not the fingerprint of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Made with another installation key (its key id): not comparable.
    OtherKey(String),
    Different,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherKey(kid) => write!(
                f,
                "it was recorded with another installation key (key id {kid})"
            ),
            Self::Different => f.write_str("it is the fingerprint of another value"),
        }
    }
}

fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl Fingerprinter {
    fn from_key(key: [u8; 32], path: PathBuf) -> Self {
        let key_id = hex::encode(&hmac(&key, b"rekey key id")[..4]);
        Self {
            key: SecretBox::new(Box::new(key)),
            key_id,
            path,
        }
    }

    /// Loads the installation key from `path`; refuses a file group or others may access.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Refused(format!(
                    "the installation key {} has mode {mode:04o}: group or others may read it; run `chmod 600 {}` (and rotate what it fingerprinted if others did read it)",
                    path.display(),
                    path.display()
                )));
            }
        }
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            KeyError::Refused(format!(
                "the installation key {} is not 32 bytes; restore it from backup",
                path.display()
            ))
        })?;
        Ok(Self::from_key(key, path.to_owned()))
    }

    /// Loads the installation key from `path`, creating it (mode 0600) on first use. Creation
    /// is race-free: the key is written in full to a temporary file of its own (`O_EXCL`),
    /// then hard-linked to `path`, which fails if another process got there first; that
    /// process's key is then the one used. No process ever reads a partly written key, and two
    /// processes starting at once end up with one key.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match Self::load(path) {
            Err(KeyError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => return r,
        }
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| std::io::Error::other(e.to_string()))?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name = path
            .file_name()
            .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(
            ".{name}.{}.{}",
            std::process::id(),
            hex::encode(tag)
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let written = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(&k)?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                // The new name is durable too.
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(Self::from_key(k, path.to_owned()))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(e.into()),
        }
    }

    /// A key that lives only in memory (tests, benchmarks).
    pub fn ephemeral() -> Self {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).expect("the OS has randomness");
        Self::from_key(k, PathBuf::new())
    }

    /// The public id of this installation's key (8 hex characters).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key of the audit chain, derived from the installation key.
    pub fn chain_key(&self) -> ChainKey {
        ChainKey::new(hmac(self.key.expose_secret(), b"rekey audit chain v1"))
    }

    pub fn fingerprint(&self, value: &str) -> String {
        format!("hmac-sha256:{}:{}", self.key_id, self.digest(value))
    }

    fn digest(&self, value: &str) -> String {
        hex::encode(&hmac(self.key.expose_secret(), value.as_bytes())[..16])
    }

    /// Whether `recorded` is this installation's fingerprint of `value`. A fingerprint with
    /// another key id never matches; one without a key id (written before key ids) is compared
    /// as this key's, which only a value fingerprinted with this key can match.
    pub fn check(&self, value: &str, recorded: &str) -> Result<(), Mismatch> {
        let Some(rest) = recorded.strip_prefix("hmac-sha256:") else {
            return Err(Mismatch::Different);
        };
        let digest = match rest.split_once(':') {
            Some((kid, _)) if kid != self.key_id => {
                return Err(Mismatch::OtherKey(kid.to_owned()));
            }
            Some((_, d)) => d,
            None => rest,
        };
        if digest == self.digest(value) {
            Ok(())
        } else {
            Err(Mismatch::Different)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_of_two_installations_never_match() {
        let (a, b) = (Fingerprinter::ephemeral(), Fingerprinter::ephemeral());
        let fa = a.fingerprint("the same value");
        assert_ne!(fa, b.fingerprint("the same value"));
        assert_eq!(a.check("the same value", &fa), Ok(()));
        assert_eq!(
            b.check("the same value", &fa),
            Err(Mismatch::OtherKey(a.key_id().to_owned()))
        );
        assert_eq!(a.check("another value", &fa), Err(Mismatch::Different));
        // Even a key id that happened to collide: the digest differs.
        let forged = format!("hmac-sha256:{}:{}", b.key_id(), &fa[fa.len() - 32..]);
        assert_eq!(b.check("the same value", &forged), Err(Mismatch::Different));
        // A fingerprint from before key ids is compared as this key's.
        let old = format!("hmac-sha256:{}", &fa[fa.len() - 32..]);
        assert_eq!(a.check("the same value", &old), Ok(()));
        assert_eq!(b.check("the same value", &old), Err(Mismatch::Different));
        assert!(fa.starts_with(&format!("hmac-sha256:{}:", a.key_id())));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let f = Fingerprinter::load_or_create(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let shown = format!("{f:?} {:?}", f.chain_key());
        assert!(shown.contains("[REDACTED]"), "{shown}");
        for k in [
            hex::encode(&bytes),
            format!("{bytes:?}"),
            format!("{:?}", &bytes[..4]),
        ] {
            assert!(!shown.contains(&k[1..k.len() - 1]), "{shown}");
        }
    }

    #[test]
    fn threads_creating_the_key_at_once_agree() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("sub/fingerprint.key");
            let barrier = std::sync::Barrier::new(8);
            let ids: Vec<String> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            let f = Fingerprinter::load_or_create(&path).unwrap();
                            f.fingerprint("v")
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
            // Only the key is left in the folder.
            assert_eq!(
                std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
                1
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Fingerprinter::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Fingerprinter::load_or_create(&path).unwrap_err();
        assert!(
            matches!(&err, KeyError::Refused(m) if m.contains("chmod 600") && m.contains("0644")),
            "{err}"
        );
    }
}
