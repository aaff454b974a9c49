//! TEMPORARY (this session): replaced by the estimator and the renderers when their branches merge.
use crate::TimeToSafeEstimate;
use rekey_spec::{Inventory, Runbooks};
use rekey_store::Rotation;

pub mod estimate {
    use super::{Inventory, Rotation, Runbooks, TimeToSafeEstimate};
    pub fn time_to_safe(
        _inv: &Inventory,
        _runbooks: &Runbooks,
        _rows: &[Rotation],
        _concurrency: usize,
        _per_provider: usize,
    ) -> Result<TimeToSafeEstimate, String> {
        Err("pending".into())
    }
}
