//! The runbook reader: any bytes, read as one (non-bundled) runbook, diagnostics rendered.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rekey_spec::SourceFile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Arc::new(SourceFile::new("runbooks/fuzz.yaml", text.as_ref()));
    if let Err(errors) = rekey_spec::parse_runbooks(&[file], false) {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_context_lines(2);
        let mut out = String::new();
        for e in errors.iter() {
            let _ = handler.render_report(&mut out, e);
        }
        let _ = errors.to_string();
    }
});
