//! `--package ECOSYSTEM/NAME@VERSION` and `--purl`, as the CLI reads them (also without a
//! version, as `who-uses` does).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    let _ = rekey_deps::osv::parse_package_spec(spec);
    let _ = rekey_deps::osv::parse_purl(spec);
    let _ = rekey_deps::osv::parse_package_spec(&format!("{spec}@0.0.0"));
});
