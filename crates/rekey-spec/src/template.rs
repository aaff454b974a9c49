//! `{{ … }}` templates in runbook inputs.
//!
//! Variables: `credential.FIELD` (a kind field, or `id`, `owner`, `kind`), `consumer.FIELD`
//! (in `for_each: consumer` steps), `steps.STEP.outputs.NAME`, `helper.id`, `run.id`.
//! Credential and consumer variables are filled in when the plan is built; step outputs and run
//! variables stay references until the engine runs, because outputs may be secrets that must
//! never be written into the plan.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A variable in a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "var")]
pub enum Var {
    Credential { field: String },
    Consumer { field: String },
    StepOutput { step: String, output: String },
    Helper { field: String },
    Run { field: String },
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credential { field } => write!(f, "credential.{field}"),
            Self::Consumer { field } => write!(f, "consumer.{field}"),
            Self::StepOutput { step, output } => write!(f, "steps.{step}.outputs.{output}"),
            Self::Helper { field } => write!(f, "helper.{field}"),
            Self::Run { field } => write!(f, "run.{field}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// A template error: what is wrong, and where in the string (character offset, length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Template {
    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Text(text.into())],
        }
    }

    pub fn parse(input: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = input;
        let mut consumed = 0; // characters before `rest`
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let at = consumed + rest[..open].chars().count();
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError {
                    offset: at,
                    len: 2,
                    message: "unterminated `{{`".into(),
                    help: Some("close the variable with `}}`".into()),
                });
            };
            let expr = &after[..close];
            let var = parse_var(expr.trim()).map_err(|(message, help)| TemplateError {
                offset: at,
                len: close + 4,
                message,
                help,
            })?;
            parts.push(Part::Var(var));
            consumed = at + 2 + after[..close + 2].chars().count();
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
    }

    /// Whether nothing is left to fill in at run time.
    pub fn is_literal(&self) -> bool {
        self.vars().next().is_none()
    }

    /// The text when the template is literal.
    pub fn as_literal(&self) -> Option<String> {
        self.is_literal().then(|| {
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.as_str(),
                    Part::Var(_) => "",
                })
                .collect()
        })
    }

    /// Substitutes what `lookup` knows; other variables stay. `Err(var)` when `lookup` says a
    /// variable is known to be absent.
    pub fn fill(&self, mut lookup: impl FnMut(&Var) -> Fill) -> Result<Self, Var> {
        let mut parts: Vec<Part> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let filled = match part {
                Part::Text(t) => Part::Text(t.clone()),
                Part::Var(v) => match lookup(v) {
                    Fill::Value(s) => Part::Text(s),
                    Fill::Keep => Part::Var(v.clone()),
                    Fill::Absent => return Err(v.clone()),
                },
            };
            // Merge adjacent text so a filled template prints as one literal.
            match (parts.last_mut(), filled) {
                (Some(Part::Text(prev)), Part::Text(t)) => prev.push_str(&t),
                (_, p) => parts.push(p),
            }
        }
        Ok(Self { parts })
    }
}

/// What [`Template::fill`] does with a variable.
pub enum Fill {
    Value(String),
    Keep,
    Absent,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(t)?,
                Part::Var(v) => write!(f, "{{{{ {v} }}}}")?,
            }
        }
        Ok(())
    }
}

fn parse_var(expr: &str) -> Result<Var, (String, Option<String>)> {
    let segments: Vec<&str> = expr.split('.').collect();
    let bad = |msg: String| {
        Err((
            msg,
            Some(
                "expected credential.FIELD, consumer.FIELD, steps.STEP.outputs.NAME, helper.id or run.id"
                    .into(),
            ),
        ))
    };
    if segments.iter().any(|s| {
        s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) {
        return bad(format!("invalid variable `{expr}`"));
    }
    match segments.as_slice() {
        ["credential", field] => Ok(Var::Credential {
            field: (*field).to_owned(),
        }),
        ["consumer", field] => Ok(Var::Consumer {
            field: (*field).to_owned(),
        }),
        ["steps", step, "outputs", output] => Ok(Var::StepOutput {
            step: (*step).to_owned(),
            output: (*output).to_owned(),
        }),
        ["helper", field] => Ok(Var::Helper {
            field: (*field).to_owned(),
        }),
        ["run", field] => Ok(Var::Run {
            field: (*field).to_owned(),
        }),
        _ => bad(format!("unknown variable `{expr}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_vars() {
        let t = Template::parse(
            "user {{ credential.user_name }} key {{steps.create.outputs.access_key_id}}",
        )
        .unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Text("user ".into()),
                Part::Var(Var::Credential {
                    field: "user_name".into()
                }),
                Part::Text(" key ".into()),
                Part::Var(Var::StepOutput {
                    step: "create".into(),
                    output: "access_key_id".into()
                }),
            ]
        );
        assert_eq!(
            t.to_string(),
            "user {{ credential.user_name }} key {{ steps.create.outputs.access_key_id }}"
        );
    }

    #[test]
    fn reports_offsets() {
        let e = Template::parse("ab {{ nope.x }}").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (3, "unknown variable `nope.x`")
        );
        let e = Template::parse("é {{ credential.id").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (2, "unterminated `{{`"));
    }

    #[test]
    fn fill_merges_text() {
        let t = Template::parse("a-{{ credential.id }}-{{ run.id }}").unwrap();
        let f = t
            .fill(|v| match v {
                Var::Credential { .. } => Fill::Value("x".into()),
                _ => Fill::Keep,
            })
            .unwrap();
        assert_eq!(f.parts.len(), 2);
        assert_eq!(f.to_string(), "a-x-{{ run.id }}");
    }
}
