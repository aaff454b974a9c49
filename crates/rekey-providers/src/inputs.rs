//! A step's inputs as the REST connectors read them: an empty value counts as absent.

use rekey_engine::{Call, ProviderError, Value};

/// The input `name`, unless absent or empty.
pub fn input<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a Value> {
    call.inputs.get(name).filter(|v| !v.expose().is_empty())
}

/// The input `name`, or a permanent error naming the step and the input.
pub fn required<'a>(call: &'a Call<'_>, name: &str) -> Result<&'a Value, ProviderError> {
    input(call, name).ok_or_else(|| {
        ProviderError::permanent(format!("step {}: input `{name}` is missing", call.step.id))
    })
}
