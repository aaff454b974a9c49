//! Diagnostics that point at the exact place in an input file.
//!
//! Every inventory and runbook error carries a [`Location`]: the file, the 1-based line and
//! column, and a byte range for miette to draw a caret under. The plain `Display` form is
//! `file:line:column: message`, so logs and tests read the same as the rendered report.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use marked_yaml::Span;
use miette::{LabeledSpan, SourceCode};

/// One input file, kept in memory so that diagnostics can show the offending line.
///
/// Diagnostics never show the text as it is: lines that hold a secret-looking value, or a
/// value under a secret-looking key (`password`, `token`, …), are masked first (see
/// [`mask_secrets`]), and the values found are scrubbed from every message built for this file.
pub struct SourceFile {
    path: PathBuf,
    text: Arc<str>,
    line_starts: Vec<usize>,
    /// Computed on the first diagnostic: files without errors never pay for it.
    masked: OnceLock<Masked>,
}

/// A file's text with its secret-looking parts replaced by `*`, byte for byte (so every span
/// still points at the same place), and the strings that were replaced.
struct Masked {
    text: String,
    secrets: Vec<String>,
}

// The text may hold a secret: `Debug` names the file only.
impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
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
            masked: OnceLock::new(),
        }
    }

    fn masked(&self) -> &Masked {
        self.masked.get_or_init(|| {
            let (text, secrets) = mask_secrets(&self.text);
            Masked { text, secrets }
        })
    }

    /// The text as diagnostics may show it: secret-looking lines masked.
    pub fn shown_text(&self) -> &str {
        &self.masked().text
    }

    /// `message` without any of the secret-looking values found in this file.
    pub fn scrub(&self, message: &str) -> String {
        scrub_with(&self.masked().secrets, message)
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
    /// Messages may quote the input (serde does, and so do "unknown service `x`" and the
    /// like): anything the file holds that looks like a secret is scrubbed here, once, so no
    /// rendering of the error can show it.
    pub fn new(location: Option<Location>, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = match &location {
            Some(l) => l.file.scrub(&message),
            None => message,
        };
        Self {
            location,
            message,
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
        self.help = Some(self.scrub(help.into()));
        self
    }

    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(self.scrub(label.into()));
        self
    }

    #[must_use]
    pub fn related(mut self, location: Location, note: impl Into<String>) -> Self {
        let note = location.file.scrub(&self.scrub(note.into()));
        self.related.push((location, note));
        self
    }

    fn scrub(&self, text: String) -> String {
        match &self.location {
            Some(l) => l.file.scrub(&text),
            None => text,
        }
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
        // Only the masked text is ever shown, context lines included.
        let inner = self
            .shown_text()
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

// ---------------------------------------------------------------------------------------------
// Masking secret-looking input.

const MASKED: &str = "‹hidden›";

fn scrub_with(secrets: &[String], message: &str) -> String {
    let mut out = message.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASKED);
        }
        // serde quotes a value with Rust escapes (`"a\"b"`).
        let escaped = format!("{s:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        if escaped != s && out.contains(escaped) {
            out = out.replace(escaped, MASKED);
        }
    }
    out
}

/// Whether a mapping key names a secret: a word of it is `password`, `secret`, `token`, `key`
/// and the like (`db_password`, `apiKey`, `private-key`), unless its last word says the value
/// only points at the secret (`token_name`, `secret_id`, `admin_url_env`, `key_id`). Being
/// wrong towards "secret" only hides a harmless line.
pub fn is_secret_key(key: &str) -> bool {
    const SECRET: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "pass",
        "pwd",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "keys",
        "apikey",
        "privatekey",
        "accesskey",
        "secretkey",
        "auth",
        "authorization",
        "cookie",
        "signature",
        "pin",
        "otp",
        "seed",
        "salt",
        "cert",
        "pem",
        "p12",
        "pfx",
        "jwt",
        "bearer",
    ];
    const POINTER: &[&str] = &[
        "id", "ids", "name", "names", "env", "var", "file", "path", "url", "uri", "arn", "ref",
        "type", "kind", "field", "version", "ttl", "expiry", "expires", "scope", "scopes",
        "endpoint", "rotation", "length", "len", "format",
    ];
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.trim_matches(['"', '\'']).chars() {
        if !c.is_alphanumeric() {
            words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
            prev_lower = false;
            continue;
        }
        // camelCase: a new word at each lower → upper step.
        if c.is_uppercase() && prev_lower {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    words.extend((!word.is_empty()).then_some(word));
    let secret = words.iter().any(|w| {
        SECRET.contains(&w.as_str())
            || ["password", "passwd", "secret", "token"]
                .iter()
                .any(|s| w.contains(s))
    });
    secret && !words.last().is_some_and(|w| POINTER.contains(&w.as_str()))
}

/// Whether a single token (no spaces) looks like a secret value: a known format
/// ([`crate::inventory::looks_like_secret`]) or a long random-looking string. Broader than the
/// refusal rule: a harmless token that is masked costs nothing.
fn looks_secret_token(token: &str) -> bool {
    let t = token.trim_matches(['"', '\'', ',', ';']);
    if crate::inventory::looks_like_secret(t).is_some() {
        return true;
    }
    let base64ish = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-');
    let digits = t.chars().filter(char::is_ascii_digit).count();
    let upper = t.chars().any(|c| c.is_ascii_uppercase());
    let lower = t.chars().any(|c| c.is_ascii_lowercase());
    (t.len() >= 24 && t.chars().all(base64ish) && digits >= 2 && upper && lower)
        || (t.len() >= 32 && t.chars().all(|c| c.is_ascii_hexdigit()) && digits >= 4)
}

/// The YAML keys on a line: `key:` at the start (after `- `), or after `{` / `,` in a flow
/// mapping; each with the byte offset where its value starts.
fn keys_on_line(line: &str) -> Vec<(&str, usize)> {
    let mut keys = Vec::new();
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut in_quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (in_quote, b) {
            (Some(q), _) if b == q => in_quote = None,
            (None, b'"' | b'\'') if line[start..i].trim().is_empty() => in_quote = Some(b),
            (None, b'{' | b',' | b'[') => start = i + 1,
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' => break,
            (None, b':') if bytes.get(i + 1).is_none_or(|n| *n == b' ' || *n == b'\t') => {
                let key = line[start..i].trim().trim_start_matches("- ").trim();
                let key = key.trim_start_matches(['-', ' ']);
                if !key.is_empty() {
                    keys.push((key, i + 1));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    keys
}

/// `text` with every secret-looking part replaced by `*` (byte for byte, so offsets and
/// lines do not move), and the replaced strings. What is masked:
/// - the rest of a line after a secret-looking key ([`is_secret_key`]), and the lines of a
///   block value under it (`password: |`, or a nested mapping);
/// - the rest of a line from a token that looks like a secret value;
/// - a PEM block, from its `-----BEGIN` line to its `-----END` line.
pub fn mask_secrets(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut secrets: Vec<String> = Vec::new();
    // The indentation a masked block value must exceed.
    let mut block: Option<usize> = None;
    let mut pem = false;
    let record = |s: &str, secrets: &mut Vec<String>| {
        let s = s.trim();
        for candidate in [
            s,
            s.trim_matches(['"', '\'']),
            s.trim_start_matches(['|', '>', '-', '+']).trim(),
        ] {
            if candidate.len() >= 4 && !secrets.iter().any(|k| k == candidate) {
                secrets.push(candidate.to_owned());
            }
        }
        for token in s.split([' ', '\t', ',', '[', ']', '{', '}', '"', '\'']) {
            if token.len() >= 6 && !secrets.iter().any(|k| k == token) {
                secrets.push(token.to_owned());
            }
        }
    };
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let content = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - content.len();
        let mut mask_from: Option<usize> = None;
        if pem {
            mask_from = Some(indent);
            if content.contains("-----END") {
                pem = false;
            }
        } else if let Some(at) = block {
            if content.trim().is_empty() || indent > at {
                mask_from = Some(indent);
            } else {
                block = None;
            }
        }
        if mask_from.is_none() {
            for (key, value_at) in keys_on_line(line) {
                if is_secret_key(key) {
                    mask_from = Some(value_at);
                    let value = line[value_at..]
                        .split(" #")
                        .next()
                        .unwrap_or_default()
                        .trim();
                    if value.is_empty() || value.starts_with(['|', '>']) {
                        // The value is on the lines below, more indented than the key.
                        block = Some(line.find(key).unwrap_or(indent));
                    }
                    break;
                }
            }
        }
        if mask_from.is_none() {
            let mut offset = 0;
            for token in line.split_inclusive([' ', '\t', ',', '[', ']', '{', '}']) {
                let bare = token.trim_end_matches([' ', '\t', ',', '[', ']', '{', '}']);
                if bare.trim_matches(['"', '\'']).starts_with("-----BEGIN") {
                    mask_from = Some(offset);
                    pem = !line[offset..].contains("-----END");
                    break;
                }
                if looks_secret_token(bare) {
                    mask_from = Some(offset);
                    break;
                }
                offset += token.len();
            }
            // A quoted value with spaces (`"postgres://u:p w@h"`): check it whole too.
            if mask_from.is_none()
                && let Some((_, value_at)) = keys_on_line(line).first()
                && crate::inventory::looks_like_secret(
                    line[*value_at..].trim().trim_matches(['"', '\'']),
                )
                .is_some()
            {
                mask_from = Some(*value_at);
            }
        }
        match mask_from {
            Some(from) if from < line.len() => {
                let (keep, hide) = line.split_at(from);
                record(hide, &mut secrets);
                out.push_str(keep);
                // Keep the leading blanks (alignment), mask the rest byte for byte.
                let blank = hide.len() - hide.trim_start().len();
                out.push_str(&hide[..blank]);
                out.extend(std::iter::repeat_n('*', hide.len() - blank));
            }
            _ => out.push_str(line),
        }
    }
    // Longest first, so a value is not half-replaced by one of its own tokens.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    (out, secrets)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for key in [
            "password",
            "db_password",
            "DB_PASSWORD",
            "apiKey",
            "api-key",
            "private_key",
            "secret",
            "client_secret",
            "token",
            "authToken",
            "key",
            "\"password\"",
            "passwd",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "user_name",
            "token_name",
            "secret_id",
            "admin_url_env",
            "access_key_id",
            "key_id",
            "password_env",
            "token_url",
            "kind",
            "owner",
            "monkey",
            "credentials",
            "description",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn masking_keeps_offsets_and_hides_values() {
        let text = "a:\n  password: hunter2 # x\n  b: [ok, ghp_R8nUq2ZsXk3yVb7LmT4wPe9HcJd1Ag5FoQiS]\n  token: |\n    line one\n    line two\n  c: é\n  d: \"-----BEGIN KEY-----\n    MIIE\n    -----END KEY-----\"\n  e: fine\n";
        let (masked, secrets) = mask_secrets(text);
        assert_eq!(masked.len(), text.len());
        assert_eq!(
            masked.lines().map(str::len).collect::<Vec<_>>(),
            text.lines().map(str::len).collect::<Vec<_>>()
        );
        for hidden in ["hunter2", "ghp_", "line one", "line two", "MIIE", "BEGIN"] {
            assert!(!masked.contains(hidden), "{hidden}: {masked}");
        }
        for shown in [
            "a:",
            "  password: ",
            "  b: [ok, ",
            "  token: ",
            "  c: é",
            "  e: fine",
        ] {
            assert!(masked.contains(shown), "{shown}: {masked}");
        }
        assert!(secrets.iter().any(|s| s == "hunter2 # x" || s == "hunter2"));
        let file = SourceFile::new("f", text);
        assert_eq!(
            file.scrub("unknown service `ghp_R8nUq2ZsXk3yVb7LmT4wPe9HcJd1Ag5FoQiS`"),
            "unknown service `‹hidden›`"
        );
        assert!(!format!("{file:?}").contains("hunter2"));
    }
}
