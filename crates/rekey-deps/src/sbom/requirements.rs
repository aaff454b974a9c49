//! pip requirements files: only `name==version` pins are packages.

use std::collections::BTreeSet;

use crate::{Ecosystem, Package};

/// pip's options that may stand on a line of their own.
const PIP_OPTIONS: [&str; 24] = [
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--hash",
    "--require-hashes",
    "--pre",
    "--trusted-host",
    "--use-feature",
    "--no-binary",
    "--only-binary",
    "--prefer-binary",
    "--config-settings",
    "-C",
    "-Z",
    "--always-unzip",
];

/// One logical line of a requirements file, read.
#[derive(Debug, PartialEq, Eq)]
enum ReqLine<'a> {
    /// A pip option such as `-r other.txt` or `--index-url ...`.
    Option,
    /// A requirement by URL or path (`./pkg`, `name @ https://...`): not a release pin.
    Direct,
    /// `name[extras] SPECIFIERS`; `pin` is the version of an `==`/`===` specifier.
    Requirement {
        name: &'a str,
        pin: Option<&'a str>,
        constrained: bool,
    },
    /// Not requirements syntax.
    Other,
}

/// The logical lines: `\` continuations joined, comments and blank lines dropped.
fn requirement_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        if let Some(continued) = raw.trim_end().strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
            continue;
        }
        current.push_str(raw);
        let line = strip_comment(&current).trim();
        if !line.is_empty() {
            lines.push(line.to_owned());
        }
        current.clear();
    }
    let line = strip_comment(&current).trim();
    if !line.is_empty() {
        lines.push(line.to_owned());
    }
    lines
}

/// pip's comments: `#` at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    line.find(" #")
        .or_else(|| line.find("\t#"))
        .map_or(line, |i| &line[..i])
}

fn read_requirement_line(line: &str) -> ReqLine<'_> {
    if line.starts_with('-') {
        let known = PIP_OPTIONS.iter().any(|option| {
            line.strip_prefix(option).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with([' ', '\t', '='])
                    || (!option.starts_with("--") && !rest.starts_with('-'))
            })
        });
        return if known {
            ReqLine::Option
        } else {
            ReqLine::Other
        };
    }
    if line.starts_with(['.', '/', '~']) || line.contains("://") || line.starts_with("file:") {
        return ReqLine::Direct;
    }
    // Options after the requirement (`--hash=...`) and the environment marker do not matter.
    let line = line.find(" --").map_or(line, |i| &line[..i]);
    let line = line
        .split_once(';')
        .map_or(line, |(before, _)| before)
        .trim();

    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return ReqLine::Other;
    }
    let mut rest = line[name_end..].trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let Some(close) = extras.find(']') else {
            return ReqLine::Other;
        };
        rest = extras[close + 1..].trim_start();
    }
    if rest.starts_with('@') {
        return ReqLine::Direct;
    }
    let rest = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(rest)
        .trim();
    if rest.is_empty() {
        return ReqLine::Requirement {
            name,
            pin: None,
            constrained: false,
        };
    }
    let mut pin = None;
    for clause in rest.split(',') {
        let clause = clause.trim();
        let Some(op_len) = ["===", "==", "!=", "~=", "<=", ">=", "<", ">"]
            .iter()
            .find(|op| clause.starts_with(*op))
            .map(|op| op.len())
        else {
            return ReqLine::Other;
        };
        let version = clause[op_len..].trim();
        if version.is_empty()
            || !version.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '_' | '-')
            })
        {
            return ReqLine::Other;
        }
        if op_len >= 2 && clause.starts_with("==") && !version.contains('*') && pin.is_none() {
            pin = Some(version);
        }
    }
    ReqLine::Requirement {
        name,
        pin,
        constrained: true,
    }
}

/// Requirements when every line reads as one and at least one pins, constrains or is a pip
/// option: a bare word is too weak a sign on its own.
pub(super) fn looks_like_requirements(text: &str) -> bool {
    let mut evidence = false;
    for line in requirement_lines(text) {
        match read_requirement_line(&line) {
            ReqLine::Other => return false,
            ReqLine::Option
            | ReqLine::Requirement {
                constrained: true, ..
            } => evidence = true,
            ReqLine::Direct | ReqLine::Requirement { .. } => {}
        }
    }
    evidence
}

pub(super) fn read_requirements(text: &str, out: &mut BTreeSet<Package>) {
    for line in requirement_lines(text) {
        if let ReqLine::Requirement {
            name,
            pin: Some(version),
            ..
        } = read_requirement_line(&line)
        {
            out.insert(Package::new(Ecosystem::PyPI, name, version));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sbom::Format;
    use crate::sbom::fixtures::read;

    #[test]
    fn requirements_pins() {
        let text = r#"# comment
-r base.txt
--index-url https://pypi.org/simple
ruamel.yaml==0.18.10  # pinned
Flask[async]==2.3.2 ; python_version >= "3.8"
requests>=2.0
urllib3 == 2.3.0 \
    --hash=sha256:abc \
    --hash=sha256:def
six===1.17.0
Django==4.*
attrs (==23.2.0)
./local-package
pkg @ https://example.com/pkg-1.0.tar.gz
-e git+https://github.com/o/r.git#egg=r
numpy
"#;
        assert_eq!(
            read(text, Format::Requirements),
            [
                "pypi/attrs@23.2.0",
                "pypi/flask@2.3.2",
                "pypi/ruamel-yaml@0.18.10",
                "pypi/six@1.17.0",
                "pypi/urllib3@2.3.0"
            ]
        );
        // Unpinned requirements are recognized but name no version.
        assert_eq!(
            read("flask>=2\nrequests\n", Format::Requirements),
            Vec::<String>::new()
        );
    }
}
