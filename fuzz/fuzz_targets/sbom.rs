//! SBOMs and lockfiles: the format is detected from the content (CycloneDX, SPDX, npm, pnpm,
//! yarn, Poetry, uv, Cargo, requirements), so one target covers every reader. The bytes are
//! read as the index reads a file (lossy UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = rekey_deps::sbom::detect(&text);
    if let Err(e) = rekey_deps::sbom::parse(&text) {
        let _ = e.to_string();
    }
});
