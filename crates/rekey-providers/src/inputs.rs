//! A step's inputs as the REST connectors read them: an empty value counts as absent.

use rekey_engine::{Call, ProviderError, Value};

/// The input `name`, unless absent or empty.
pub fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a Value> {
    call.inputs.get(name).filter(|v| !v.expose().is_empty())
}

/// A selector (which key to touch, which to spare): absent means "not narrowed"; present, it
/// must be a plain, non-empty key id. Anything else is an error, never "no selector": a lost
/// exception must not turn "every key but the new one" into every key.
pub fn selector<'a>(call: &'a Call<'_>, name: &str) -> Result<Option<&'a str>, ProviderError> {
    match call.inputs.get(name) {
        None => Ok(None),
        Some(Value::Plain(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(Value::Plain(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is empty; refusing to widen the call to every key",
            call.step.id
        ))),
        Some(Value::Secret(_)) => Err(ProviderError::permanent(format!(
            "step {}: input `{name}` is a secret value, not a key id; refusing to widen the call",
            call.step.id
        ))),
    }
}

/// The input `name`, or a permanent error naming the step and the input.
pub fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a Value, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}
