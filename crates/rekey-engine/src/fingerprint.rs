//! Keyed fingerprints of secrets for the audit log.
//!
//! A fingerprint is `HMAC-SHA256(installation key, value)`, hex, truncated to 32 characters: it
//! lets an auditor check "is the value in Secrets Manager the one rotated in run X" without the
//! log ever holding something that can be turned back into the value or tested offline.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

pub struct Fingerprinter {
    key: SecretBox<[u8; 32]>,
    path: PathBuf,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("path", &self.path)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Fingerprinter {
    /// Loads the installation key from `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let key = match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                k
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "fingerprint key {} is not 32 bytes; restore it from backup",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                getrandom::fill(&mut k).map_err(|e| std::io::Error::other(e.to_string()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path)?;
                f.write_all(&k)?;
                f.sync_all()?;
                k
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            key: SecretBox::new(Box::new(key)),
            path: path.to_owned(),
        })
    }

    /// A key that lives only in memory (tests, benchmarks).
    pub fn ephemeral() -> Self {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).expect("the OS has randomness");
        Self {
            key: SecretBox::new(Box::new(k)),
            path: PathBuf::new(),
        }
    }

    pub fn fingerprint(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("hmac-sha256:{}", &hex::encode(digest)[..32])
    }
}
