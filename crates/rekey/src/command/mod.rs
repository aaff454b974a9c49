//! One file per subcommand.

pub(crate) mod audit;
pub(crate) mod discover;
pub(crate) mod drill;
pub(crate) mod incident;
pub(crate) mod inventory;
pub(crate) mod lint;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod validate;

use std::path::Path;

use rekey_spec::{Inventory, Runbooks};

use crate::cli::Global;
use crate::report::Failure;

/// Loads the bundled runbooks plus the team's: `--runbooks DIR` must exist; the default
/// `./runbooks` is used when present.
pub(crate) fn load_runbooks(global: &Global) -> Result<Runbooks, Failure> {
    let dir = match &global.runbooks {
        Some(dir) => Some(dir.as_path()),
        None => Some(Path::new("runbooks")).filter(|p| p.is_dir()),
    };
    rekey_spec::load_runbooks(dir).map_err(|errors| Failure::Spec {
        what: "runbooks",
        errors,
    })
}

pub(crate) fn load_inventory(global: &Global) -> Result<Inventory, Failure> {
    rekey_spec::load_inventory(&global.inventory).map_err(|errors| Failure::Spec {
        what: "inventory",
        errors,
    })
}

/// Both, reporting the problems of both at once.
pub(crate) fn load(global: &Global) -> Result<(Inventory, Runbooks), Failure> {
    let inventory = rekey_spec::load_inventory(&global.inventory);
    let runbooks = load_runbooks(global);
    match (inventory, runbooks) {
        (Ok(i), Ok(r)) => Ok((i, r)),
        (Err(mut a), Err(Failure::Spec { errors: b, .. })) => {
            a.0.extend(b.0);
            Err(Failure::Spec {
                what: "inventory and runbooks",
                errors: a,
            })
        }
        (Err(errors), _) => Err(Failure::Spec {
            what: "inventory",
            errors,
        }),
        (_, Err(e)) => Err(e),
    }
}

pub(crate) fn today(global: &Global) -> jiff::civil::Date {
    global.today.unwrap_or_else(|| jiff::Zoned::now().date())
}
