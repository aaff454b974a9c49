//! The audit log: append-only rows, each carrying the hash of the one before it.
//!
//! Chain 2 (keyed): `hash = HMAC-SHA256(chain key, prev_hash ‖ canonical JSON of the row)`, the
//! chain key derived from the installation key. Someone who can write the database but not
//! read the key cannot recompute it. Chain 1 is what rekey wrote before: plain
//! `sha256(prev_hash ‖ row)`, which any writer can recompute; such rows are trusted only when a
//! keyed row follows them (its HMAC covers their last hash) or an exported head pins them.
//! Editing a row breaks its own hash; deleting, inserting or reordering rows breaks the link of
//! the row after. Fingerprints of new secrets are keyed HMACs computed by the engine; no value
//! ever reaches this table.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Rows hashed with plain SHA-256 (before the chain was keyed).
pub const CHAIN_PLAIN: i64 = 1;
/// Rows hashed with HMAC-SHA256 under the chain key.
pub const CHAIN_KEYED: i64 = 2;

/// The key of the audit chain, derived from the installation key; never printed.
pub struct ChainKey(SecretBox<[u8; 32]>);

impl ChainKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes any key length")
    }

    /// Same key: compared through a MAC so no key byte is compared directly.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        let tag = |k: &Self| {
            let mut m = k.mac();
            m.update(b"rekey chain key compare");
            m.finalize().into_bytes()
        };
        tag(self) == tag(other)
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey([REDACTED])")
    }
}

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event before it is appended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub run_id: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    pub credential: Option<String>,
    pub step: Option<String>,
    pub action: Option<String>,
    /// What happened: `run_created`, `step_started`, `step_succeeded`, …
    pub event: String,
    /// `ok`, `error`, `skipped`, …
    pub outcome: String,
    /// Free text: an error message, the old key's last use, … Never a secret.
    pub detail: Option<String>,
    /// Keyed fingerprint (HMAC-SHA256, hex) of a new secret.
    pub fingerprint: Option<String>,
    pub simulated: bool,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    #[serde(flatten)]
    pub draft: AuditDraft,
    pub prev_hash: String,
    pub hash: String,
    /// [`CHAIN_PLAIN`] or [`CHAIN_KEYED`]: how `hash` was computed.
    pub chain: i64,
}

/// The hashed content of a row: every field but `hash`, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: &'a str,
    run_id: Option<&'a str>,
    actor: &'a str,
    reason: Option<&'a str>,
    credential: Option<&'a str>,
    step: Option<&'a str>,
    action: Option<&'a str>,
    event: &'a str,
    outcome: &'a str,
    detail: Option<&'a str>,
    fingerprint: Option<&'a str>,
    simulated: bool,
}

/// The hash of a row: keyed when `key` is given ([`CHAIN_KEYED`]), else plain ([`CHAIN_PLAIN`]).
pub(crate) fn row_hash(
    key: Option<&ChainKey>,
    seq: i64,
    at: &str,
    d: &AuditDraft,
    prev_hash: &str,
) -> String {
    let canonical = Canonical {
        seq,
        at,
        run_id: d.run_id.as_deref(),
        actor: &d.actor,
        reason: d.reason.as_deref(),
        credential: d.credential.as_deref(),
        step: d.step.as_deref(),
        action: d.action.as_deref(),
        event: &d.event,
        outcome: &d.outcome,
        detail: d.detail.as_deref(),
        fingerprint: d.fingerprint.as_deref(),
        simulated: d.simulated,
    };
    let row = serde_json::to_vec(&canonical).expect("audit rows serialize");
    if let Some(key) = key {
        let mut m = key.mac();
        m.update(prev_hash.as_bytes());
        m.update(&row);
        hex::encode(m.finalize().into_bytes())
    } else {
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(&row);
        hex::encode(h.finalize())
    }
}

/// Whether `e`'s own hash is right: a keyed row needs `key`; a plain row is always
/// recomputable, so this says nothing about who wrote it.
pub fn row_matches(key: Option<&ChainKey>, e: &AuditEvent) -> bool {
    match e.chain {
        CHAIN_PLAIN => row_hash(None, e.seq, &e.at, &e.draft, &e.prev_hash) == e.hash,
        CHAIN_KEYED => {
            key.is_some_and(|k| row_hash(Some(k), e.seq, &e.at, &e.draft, &e.prev_hash) == e.hash)
        }
        _ => false,
    }
}

/// Whether `e` is a keyed row written with `key`: only the key holder can have written it.
pub fn authentic(key: &ChainKey, e: &AuditEvent) -> bool {
    e.chain == CHAIN_KEYED && row_matches(Some(key), e)
}

/// A break in the chain, naming the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    pub seq: i64,
    pub problem: String,
}

/// The result of walking the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub rows: usize,
    /// Rows on the plain chain (written before the chain was keyed).
    pub plain_rows: usize,
    /// Rows after the head given to [`verify_from`] (all rows without one).
    pub after_head: usize,
    pub problems: Vec<AuditProblem>,
}

/// Walks the whole log in `seq` order without the key: plain rows are checked, keyed rows
/// cannot be (each is named).
pub fn verify(events: &[AuditEvent]) -> Vec<AuditProblem> {
    verify_from(events, None, None).problems
}

/// Walks the whole log in `seq` order. With `key`, keyed rows are checked and plain rows must
/// come first and be followed by a keyed row (or by `head`): plain rows at the end, or after a
/// keyed row, are what a writer without the key would leave. With `head` (a row hash exported
/// earlier), the log must still hold that row, and the rows after it must verify.
pub fn verify_from(
    events: &[AuditEvent],
    key: Option<&ChainKey>,
    head: Option<&str>,
) -> Verification {
    let mut problems = Vec::new();
    let mut expected_seq = 1;
    let mut expected_prev = GENESIS.to_owned();
    let mut seen_keyed = false;
    // Plain rows since the last keyed row (or the head): unprotected until one follows.
    let mut unsealed: Vec<i64> = Vec::new();
    let mut head_at: Option<usize> = None;
    for (i, e) in events.iter().enumerate() {
        if e.seq > expected_seq {
            let missing = if e.seq - expected_seq == 1 {
                format!("row {expected_seq} is missing (deleted)")
            } else {
                format!("rows {expected_seq}..{} are missing (deleted)", e.seq - 1)
            };
            problems.push(AuditProblem {
                seq: expected_seq,
                problem: missing,
            });
        }
        let own = match (e.chain, key) {
            (CHAIN_KEYED, None) => Some(format!(
                "row {}: keyed; it cannot be checked without the installation key",
                e.seq
            )),
            (CHAIN_KEYED | CHAIN_PLAIN, _) if !row_matches(key, e) => Some(format!(
                "row {}: its content does not match its hash (edited)",
                e.seq
            )),
            (CHAIN_PLAIN, Some(_)) if seen_keyed => Some(format!(
                "row {}: on the unkeyed chain after keyed rows (rewritten without the key)",
                e.seq
            )),
            (CHAIN_KEYED | CHAIN_PLAIN, _) => None,
            (other, _) => Some(format!("row {}: unknown chain version {other}", e.seq)),
        };
        problems.extend(own.map(|problem| AuditProblem {
            seq: e.seq,
            problem,
        }));
        if e.prev_hash != expected_prev {
            problems.push(AuditProblem {
                seq: e.seq,
                problem: format!(
                    "row {}: does not follow the row before it (a row was inserted, deleted or reordered here)",
                    e.seq
                ),
            });
        }
        if e.chain == CHAIN_KEYED {
            seen_keyed = true;
            unsealed.clear();
        } else {
            unsealed.push(e.seq);
        }
        if head.is_some_and(|h| h == e.hash) && head_at.is_none() {
            head_at = Some(i);
            // The exported head pins every row up to it, plain or not.
            unsealed.clear();
        }
        expected_prev.clone_from(&e.hash);
        expected_seq = e.seq + 1;
    }
    if let Some(h) = head
        && head_at.is_none()
    {
        problems.push(AuditProblem {
            seq: expected_seq,
            problem: format!(
                "no row has the hash {h}: the log was cut back (truncated) or rewritten since that head was exported"
            ),
        });
    }
    if key.is_some()
        && let (Some(first), Some(last)) = (unsealed.first(), unsealed.last())
    {
        problems.push(AuditProblem {
            seq: *first,
            problem: format!(
                "rows {first}..{last}: on the unkeyed chain of an earlier rekey with no keyed row after them, so anyone who can write the database could have rewritten them; the next run seals them (check them first with --head and a head exported earlier)"
            ),
        });
    }
    problems.sort_by_key(|p| p.seq);
    Verification {
        rows: events.len(),
        plain_rows: events.iter().filter(|e| e.chain == CHAIN_PLAIN).count(),
        after_head: head_at.map_or(events.len(), |i| events.len() - i - 1),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `n` rows: the first `plain` on the plain chain, the rest keyed with `key`.
    fn chain(key: &ChainKey, n: i64, plain: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let draft = AuditDraft {
                    actor: "t".into(),
                    event: format!("e{seq}"),
                    outcome: "ok".into(),
                    ..AuditDraft::default()
                };
                let k = (seq > plain).then_some(key);
                let hash = row_hash(k, seq, "at", &draft, &prev);
                AuditEvent {
                    seq,
                    at: "at".into(),
                    draft,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                    chain: if k.is_some() {
                        CHAIN_KEYED
                    } else {
                        CHAIN_PLAIN
                    },
                }
            })
            .collect()
    }

    /// What a writer without the key can do: edit a row and recompute plain hashes onwards.
    fn rewrite_plainly(events: &mut [AuditEvent], from: usize) {
        events[from].draft.detail = Some("forged".into());
        for i in from..events.len() {
            let prev = if i == 0 {
                GENESIS.to_owned()
            } else {
                events[i - 1].hash.clone()
            };
            let e = &mut events[i];
            e.prev_hash = prev;
            e.hash = row_hash(None, e.seq, &e.at, &e.draft, &e.prev_hash);
            e.chain = CHAIN_PLAIN;
        }
    }

    #[test]
    fn a_recomputed_chain_does_not_verify_with_the_key() {
        let key = ChainKey::new([7; 32]);
        let events = chain(&key, 6, 0);
        assert!(verify_from(&events, Some(&key), None).problems.is_empty());
        // Another installation's key: every row looks edited.
        let other = ChainKey::new([8; 32]);
        assert_eq!(verify_from(&events, Some(&other), None).problems.len(), 6);
        // Recomputed from row 3 on (relabelled plain or not): caught.
        let mut forged = events.clone();
        rewrite_plainly(&mut forged, 2);
        let v = verify_from(&forged, Some(&key), None);
        assert!(!v.problems.is_empty(), "{v:?}");
        let mut keep_label = events.clone();
        rewrite_plainly(&mut keep_label, 2);
        for e in &mut keep_label[2..] {
            e.chain = CHAIN_KEYED;
        }
        assert!(
            !verify_from(&keep_label, Some(&key), None)
                .problems
                .is_empty()
        );
        // The whole log recomputed as plain rows: nothing keyed seals it.
        let mut all = events.clone();
        rewrite_plainly(&mut all, 0);
        let v = verify_from(&all, Some(&key), None);
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert!(
            v.problems[0]
                .problem
                .contains("rows 1..6: on the unkeyed chain")
        );
        // Without the key (the old check), the same forgery passes: what keying fixes.
        assert!(verify(&all).is_empty());
    }

    #[test]
    fn plain_rows_before_keyed_ones_are_sealed_by_them() {
        let key = ChainKey::new([7; 32]);
        let events = chain(&key, 6, 3);
        let v = verify_from(&events, Some(&key), None);
        assert!(v.problems.is_empty(), "{v:?}");
        assert_eq!(v.plain_rows, 3);
        // Editing a sealed plain row and recomputing the plain rows breaks the first keyed one.
        let mut forged = events.clone();
        forged[0].draft.detail = Some("forged".into());
        for i in 0..3 {
            let prev = if i == 0 {
                GENESIS.to_owned()
            } else {
                forged[i - 1].hash.clone()
            };
            let e = &mut forged[i];
            e.prev_hash = prev;
            e.hash = row_hash(None, e.seq, &e.at, &e.draft, &e.prev_hash);
        }
        let v = verify_from(&forged, Some(&key), None);
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert!(v.problems[0].problem.starts_with("row 4: does not follow"));
        // An old log nothing sealed yet: reported with the key, consistent without it.
        let old = chain(&key, 3, 3);
        assert_eq!(verify_from(&old, Some(&key), None).problems.len(), 1);
        assert!(verify(&old).is_empty());
        // ... unless an exported head pins it.
        let v = verify_from(&old, Some(&key), Some(&old[2].hash));
        assert!(v.problems.is_empty(), "{v:?}");
        assert_eq!(v.after_head, 0);
    }

    #[test]
    fn a_head_must_be_in_the_log() {
        let key = ChainKey::new([7; 32]);
        let events = chain(&key, 6, 0);
        let v = verify_from(&events, Some(&key), Some(&events[3].hash));
        assert!(v.problems.is_empty(), "{v:?}");
        assert_eq!(v.after_head, 2);
        let v = verify_from(&events[..3], Some(&key), Some(&events[3].hash));
        assert_eq!(v.problems.len(), 1, "{v:?}");
        assert!(v.problems[0].problem.contains(&events[3].hash));
        // Without the key, keyed rows are named as unchecked, not passed.
        assert_eq!(verify(&events).len(), 6);
        assert_eq!(format!("{key:?}"), "ChainKey([REDACTED])");
    }
}
