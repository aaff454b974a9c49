//! `rekey plan`: the dry run. Never calls a provider.

use std::io::Write;

use rekey_plan::{PlanRequest, Selection};

use crate::cli::{Format, Global, PlanArgs, SelectionArgs};
use crate::report::{Failure, stdout_color};

impl SelectionArgs {
    pub(crate) fn to_selection(&self) -> Selection {
        Selection {
            credentials: self.credentials.clone(),
            services: self.services.clone(),
            kinds: self.kinds.clone(),
        }
    }
}

pub(crate) fn run(global: &Global, args: &PlanArgs) -> Result<(), Failure> {
    let (inventory, runbooks) = super::load(global)?;
    let selection = args.selection.to_selection();
    let req = PlanRequest {
        inventory: &inventory,
        runbooks: &runbooks,
        selection: &selection,
        mode: args.mode.into(),
        exposed: None,
    };
    let plan = rekey_plan::compile(&req).map_err(Failure::Plan)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match args.format {
        Format::Json => rekey_plan::write_json(&plan, &mut out),
        Format::Text => out.write_all(rekey_plan::render_text(&plan, stdout_color()).as_bytes()),
        Format::Dot => out.write_all(rekey_plan::render_dot(&plan).as_bytes()),
        Format::Mermaid => out.write_all(rekey_plan::render_mermaid(&plan).as_bytes()),
    };
    written
        .and_then(|()| out.flush())
        .map_err(anyhow::Error::from)?;
    // The process ends right after: freeing a 10,000-credential plan and inventory piece by
    // piece costs ~15% of the command's time for nothing.
    std::mem::forget(plan);
    std::mem::forget(inventory);
    std::mem::forget(runbooks);
    Ok(())
}
