//! The `batch` processor: merges small batches into larger ones and splits large ones, as the
//! OpenTelemetry Collector's batchprocessor does, so exporters see fewer, bounded requests.
//!
//! - **Signals**: traces, metrics and logs. Each signal has its own buffer, so a pipeline that
//!   also carries another signal (emitted by an earlier processor) batches both.
//! - **When it sends**: as soon as a buffer holds `send_batch_size` items (spans, metric data
//!   points or log records); when its oldest item has waited `timeout`; and at shutdown, when
//!   everything buffered is sent. `timeout: 0s` sends every batch on arrival.
//! - **Splitting**: no batch sent exceeds `send_batch_max_size` items (when non-zero). Splits
//!   are at item granularity: a resource, scope or metric cut in two keeps its resource, scope,
//!   and (for a metric) its name, description, unit, type and temporality in both halves.
//! - **Delivery guarantee**: nothing is dropped or duplicated; data waits in memory at most
//!   about `timeout` (up to two tick intervals) and is lost if the process dies. A merged batch
//!   carries the acknowledgements of every input it holds items of, a split part those of the
//!   inputs its items came from, so replaying receivers advance only after delivery.
//! - **Self-telemetry**: `sluice_processor_batch_sent_batches{trigger="size|timeout|shutdown"}`.
//!
//! ```yaml
//! processors:
//!   batch:
//!     send_batch_size: 8192
//!     send_batch_max_size: 10000
//!     timeout: 200ms
//! ```

mod batcher;
mod config;
mod split;
#[cfg(test)]
mod tests;

pub use batcher::{BatchProcessor, SENT_BATCHES_METRIC};
pub use config::BatchProcessorConfig;

use sluice_pipeline::factory::{ComponentContext, Processor, ProcessorPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `batch` processor.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchProcessorFactory;

impl ProcessorPlugin for BatchProcessorFactory {
    type Config = BatchProcessorConfig;
    const TYPE: &'static str = "batch";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Beta;
    const EXAMPLE: &'static str = "send_batch_size: 8192\ntimeout: 200ms\n";

    fn build(
        &self,
        config: BatchProcessorConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Processor>, BuildError> {
        Ok(Box::new(BatchProcessor::new(&config, &ctx.telemetry)))
    }
}

sluice_pipeline::register_processor!(BatchProcessorFactory);
