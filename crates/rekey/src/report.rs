//! Turning failures into messages and exit codes.

use std::borrow::Cow;
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
            // `rekey … | head`: the reader had what it wanted.
            Self::Other(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
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

/// Whether `e` comes from writing to a closed pipe (stdout of `rekey … | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            // serde_json keeps the io::Error to itself.
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// `print!` panics when stdout is a closed pipe; that too is a quiet exit 0, for every
/// subcommand (the alternative, `SIGPIPE`'s default action, needs `unsafe`).
pub(crate) fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Text from the database (provider errors, reasons, ids) as it may reach a terminal: without
/// control characters (C0 but newline and tab, DEL, C1), so that nothing stored can move the
/// cursor, clear the screen, overwrite a line with `\r` or start an escape sequence.
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if s.chars().any(control) {
        Cow::Owned(s.chars().filter(|&c| !control(c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_strips_terminal_controls() {
        assert_eq!(printable("plain\ttext\nnext"), "plain\ttext\nnext");
        assert_eq!(printable("a\u{1b}[2J\u{1b}]0;title\u{7}b"), "a[2J]0;titleb");
        assert_eq!(printable("AccessDenied\rall good"), "AccessDeniedall good");
        assert_eq!(printable("x\u{9b}31my\u{7f}\u{0}z"), "x31myz");
        assert!(matches!(printable("é€ ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn broken_pipes_are_recognized_through_the_chain() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::from(pipe())));
        assert!(is_broken_pipe(
            &anyhow::Error::from(pipe()).context("writing")
        ));
        assert!(is_broken_pipe(&anyhow::Error::from(serde_json::Error::io(
            pipe()
        ))));
        assert!(!is_broken_pipe(&anyhow::anyhow!("Broken pipe")));
        assert!(!is_broken_pipe(&anyhow::Error::from(std::io::Error::from(
            std::io::ErrorKind::NotFound
        ))));
    }
}
