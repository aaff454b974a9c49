//! OSV advisories, and matching what they describe against a few versions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match rekey_deps::osv::parse_advisory(text) {
        Ok(advisory) => {
            for affected in &advisory.affected {
                let _ = affected.match_kind();
                for version in ["0", "1.0.0", "1.0.0-rc.1", "v2", "1!2.0.post1", "", "é"] {
                    let _ = affected.matches(version);
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
