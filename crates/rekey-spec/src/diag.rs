//! Diagnostics that point at the exact place in an input file.
//!
//! Every inventory and runbook error carries a [`Location`]: the file, the 1-based line and
//! column, and a byte range for miette to draw a caret under. The plain `Display` form is
//! `file:line:column: message`, so logs and tests read the same as the rendered report.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marked_yaml::Span;
use miette::{LabeledSpan, SourceCode};

/// One input file, kept in memory so that diagnostics can show the offending line.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Byte offset of a 1-based line and (character) column.
    fn offset(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let line_text = rest.split('\n').next().unwrap_or_default();
        start
            + line_text
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(line_text.len(), |(i, _)| i)
    }

    /// Length of the token that starts at `offset`: a quoted scalar, a plain word, or one char.
    fn token_len(&self, offset: usize) -> usize {
        let rest = &self.text[offset.min(self.text.len())..];
        let line = rest.split('\n').next().unwrap_or_default();
        if let Some(quote @ ('"' | '\'')) = line.chars().next() {
            return line[1..].find(quote).map_or(line.len(), |i| i + 2);
        }
        let end = line.find([',', ']', '}', '#']).unwrap_or(line.len());
        let word = line[..end].trim_end();
        let word = word.strip_suffix(':').map_or(word, |w| w);
        word.len().max(1)
    }
}

/// A position in a source file.
#[derive(Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    offset: usize,
    len: usize,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file.path.display(),
            self.line,
            self.column
        )
    }
}

impl Location {
    pub fn new(file: &Arc<SourceFile>, line: usize, column: usize) -> Self {
        let line = line.max(1);
        let column = column.max(1);
        let offset = file.offset(line, column);
        Self {
            file: Arc::clone(file),
            line,
            column,
            offset,
            len: file.token_len(offset),
        }
    }

    /// The start of a marked-yaml span; the start of the file when the span is blank.
    pub fn from_span(file: &Arc<SourceFile>, span: &Span) -> Self {
        span.start().map_or_else(
            || Self::new(file, 1, 1),
            |m| Self::new(file, m.line(), m.column()),
        )
    }

    /// A location `chars` characters to the right on the same line (e.g. inside a scalar).
    #[must_use]
    pub fn shifted(&self, chars: usize, len: usize) -> Self {
        let mut loc = Self::new(&self.file, self.line, self.column + chars);
        loc.len = len.max(1);
        loc
    }
}

/// An error in inventory or runbook input.
#[derive(Debug, Clone)]
pub struct SpecError {
    pub location: Option<Location>,
    pub message: String,
    /// What was expected instead, shown as help.
    pub help: Option<String>,
    /// Short text under the caret.
    pub label: Option<String>,
    /// Other places involved (e.g. the first definition of a duplicate id).
    pub related: Vec<(Location, String)>,
    /// Set when the offending line may hold a secret: then no source line is echoed.
    pub hide_source: bool,
}

impl SpecError {
    pub fn new(location: Option<Location>, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
            help: None,
            label: None,
            related: Vec::new(),
            hide_source: false,
        }
    }

    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Self::new(Some(location), message)
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    #[must_use]
    pub fn related(mut self, location: Location, note: impl Into<String>) -> Self {
        self.related.push((location, note.into()));
        self
    }

    #[must_use]
    pub fn hide_source(mut self) -> Self {
        self.hide_source = true;
        self
    }
}

impl SpecError {
    /// One line with everything: location, message, help and related places (for logs and
    /// non-graphical output; `Display` leaves help and related places to miette).
    pub fn one_line(&self) -> String {
        use std::fmt::Write as _;
        let mut s = self.to_string();
        if let Some(help) = &self.help {
            let _ = write!(s, " ({help})");
        }
        for (loc, note) in &self.related {
            let _ = write!(s, "; {note} at {loc}");
        }
        s
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

impl miette::Diagnostic for SpecError {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.hide_source {
            return None;
        }
        self.location.as_ref().map(|l| &*l.file as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.hide_source {
            return None;
        }
        let loc = self.location.as_ref()?;
        let main = LabeledSpan::new_primary_with_span(self.label.clone(), (loc.offset, loc.len));
        let same_file = self
            .related
            .iter()
            .filter(|(l, _)| Arc::ptr_eq(&l.file, &loc.file))
            .map(|(l, note)| LabeledSpan::new_with_span(Some(note.clone()), (l.offset, l.len)));
        Some(Box::new(std::iter::once(main).chain(same_file)))
    }
}

// miette reads the snippet through `SourceCode`; delegate to a named source so the report
// header shows the file path.
impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.path.display().to_string(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// Every problem found in one pass over the input; reported together so a user fixes them all
/// in one go.
#[derive(Debug, Clone, Default)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    pub fn push(&mut self, e: SpecError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &SpecError> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was pushed.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&e.one_line())?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        Self(vec![e])
    }
}
