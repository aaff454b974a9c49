//! Turning failures into messages and exit codes.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use miette::{GraphicalReportHandler, GraphicalTheme};
use rekey_plan::PlanError;
use rekey_spec::SpecErrors;

/// Why a command did not succeed, and so which exit code it gets.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Problems in the inventory or runbooks: exit 2.
    Spec {
        what: &'static str,
        errors: SpecErrors,
    },
    /// A plan that cannot be built or carried out: exit 2.
    Plan(PlanError),
    /// Anything else: exit 1.
    Other(anyhow::Error),
    /// A finished command with a status to report (`code`: 1 failed, 2 refused, 3 paused).
    Exit { code: u8, message: String },
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

pub(crate) fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

pub(crate) fn stdout_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Renders spec errors with miette: the message, the offending line and a caret.
pub(crate) fn render_spec_errors(errors: &SpecErrors) -> String {
    let theme = if stderr_color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    for e in errors.iter() {
        let _ = handler.render_report(&mut out, e);
    }
    out
}

/// Refusals that reach here as errors: a database changed behind rekey's back, an
/// installation key that cannot be used as it is. Nothing was done: exit 2.
fn is_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    use rekey_engine::EngineError;
    use rekey_store::StoreError;
    e.is::<crate::command::state::Refused>()
        || matches!(e.downcast_ref::<StoreError>(), Some(StoreError::Key(_)))
        || matches!(
            e.downcast_ref::<EngineError>(),
            Some(
                EngineError::Tampered(..)
                    | EngineError::Unchecked(..)
                    | EngineError::Store(StoreError::Key(_))
            )
        )
}

impl Failure {
    pub(crate) fn report(self) -> ExitCode {
        let mut stderr = std::io::stderr().lock();
        match self {
            Self::Spec { what, errors } => {
                let _ = write!(stderr, "{}", render_spec_errors(&errors));
                let _ = writeln!(
                    stderr,
                    "error: {} problem(s) in the {what}; nothing was done",
                    errors.len()
                );
                ExitCode::from(2)
            }
            Self::Plan(e) => {
                let _ = writeln!(stderr, "error: {e}");
                ExitCode::from(2)
            }
            Self::Other(e) if e.chain().any(is_refusal) => {
                let _ = writeln!(stderr, "error: {e:#}");
                ExitCode::from(2)
            }
            Self::Other(e) => {
                let _ = writeln!(stderr, "error: {e:#}");
                ExitCode::from(1)
            }
            Self::Exit { code, message } => {
                if !message.is_empty() {
                    let _ = writeln!(stderr, "{message}");
                }
                ExitCode::from(code)
            }
        }
    }
}
