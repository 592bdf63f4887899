//! The `batch` processor's configuration, named as in the Collector's batchprocessor.

use std::time::Duration;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

/// Configuration of the `batch` processor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchProcessorConfig {
    /// Items (spans, metric data points or log records) after which a batch is sent regardless
    /// of `timeout`. A trigger, not a limit: the batch sent may be larger (see
    /// `send_batch_max_size`). `0` disables the size trigger. Default `8192`.
    pub send_batch_size: usize,
    /// Upper bound, in items, of a batch sent; larger batches are split, at item granularity.
    /// `0` means no upper bound; otherwise it must be at least `send_batch_size`. Default `0`.
    pub send_batch_max_size: usize,
    /// How long the oldest buffered item may wait before the batch is sent regardless of its
    /// size. `0s` sends every batch on arrival (then only `send_batch_max_size` splitting
    /// applies). Default `200ms`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub timeout: Duration,
}

impl Default for BatchProcessorConfig {
    fn default() -> Self {
        BatchProcessorConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: Duration::from_millis(200),
        }
    }
}

impl Validate for BatchProcessorConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            return Err(ValidationError::new(
                "send_batch_max_size",
                format!(
                    "must be 0 (no limit) or at least send_batch_size ({}), found {}",
                    self.send_batch_size, self.send_batch_max_size
                ),
            ));
        }
        Ok(())
    }
}
