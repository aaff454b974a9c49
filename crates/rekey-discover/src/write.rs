//! The file `rekey discover --write` makes: a `discovered:` section (and the host, when the
//! inventory does not declare it) that the inventory loader reads beside the operator's own
//! files. Only kinds of the inventory and unknown secrets go in; short-lived and kind-less
//! finds are reported, not recorded.

use std::fmt::Write as _;

use crate::Find;

/// The first line of every file `rekey discover` writes: a file without it is never
/// overwritten.
pub const WRITTEN_MARK: &str = "# Written by `rekey discover`";

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The file for `host` (declared with `declare_kind` when the inventory lacks it).
pub fn render(host: &str, declare_kind: Option<&str>, date: &str, finds: &[Find]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{WRITTEN_MARK} --host {host} on {date}. Each run rewrites it: to confirm a draft, add\n# the credential to your inventory and set the entry's `credential:` (kept on the next run\n# through its fingerprint). Values are never written: public ids and keyed fingerprints only."
    );
    if let Some(kind) = declare_kind {
        let _ = writeln!(
            t,
            "hosts:\n  - id: {}\n    kind: {kind}\n    description: {}",
            q(host),
            q("declared by rekey discover")
        );
    }
    let entries: Vec<&Find> = finds.iter().filter(|f| f.class.inventoried()).collect();
    if entries.is_empty() {
        t.push_str("discovered: []\n");
        return t;
    }
    t.push_str("discovered:\n");
    for f in entries {
        let _ = writeln!(t, "  - host: {}", q(host));
        let _ = writeln!(t, "    source: {}", q(&f.source));
        let _ = writeln!(t, "    kind: {}", f.kind);
        match &f.credential {
            Some(c) => {
                let _ = writeln!(t, "    credential: {}", q(c));
                if let Some(by) = &f.matched_by {
                    let _ = writeln!(t, "    matched_by: {}", q(by));
                }
            }
            None => t.push_str("    # draft: unknown to the inventory, awaiting review\n"),
        }
        if let Some(fp) = &f.fingerprint {
            let _ = writeln!(t, "    fingerprint: {}", q(fp));
        }
        if !f.ids.is_empty() {
            let ids: Vec<String> = f
                .ids
                .iter()
                .map(|(k, v)| format!("{k}: {}", q(v)))
                .collect();
            let _ = writeln!(t, "    ids: {{ {} }}", ids.join(", "));
        }
    }
    t
}
