//! `rekey schema`: the JSON Schema of inventory or runbook files, generated from the types
//! rekey reads them with (`rekey_spec::schema`); the committed copies under `schema/` are
//! checked to be this output.

use std::io::Write;

use rekey_spec::schema::Document;

use crate::cli::{SchemaArgs, SchemaDocument};
use crate::report::Failure;

pub(crate) fn run(args: &SchemaArgs) -> Result<(), Failure> {
    let document = match args.document {
        SchemaDocument::Inventory => Document::Inventory,
        SchemaDocument::Runbook => Document::Runbook,
    };
    match std::io::stdout()
        .lock()
        .write_all(document.render().as_bytes())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Other(
            anyhow::Error::new(e).context("cannot write the schema to standard output"),
        )),
        _ => Ok(()),
    }
}
