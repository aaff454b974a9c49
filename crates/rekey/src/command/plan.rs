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
    let text = match args.format {
        Format::Text => rekey_plan::render_text(&plan, stdout_color()),
        Format::Json => rekey_plan::render_json(&plan),
        Format::Dot => rekey_plan::render_dot(&plan),
        Format::Mermaid => rekey_plan::render_mermaid(&plan),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .map_err(anyhow::Error::from)?;
    Ok(())
}
