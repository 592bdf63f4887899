//! The `debug` exporter: writes every batch it gets as text to stderr, like the OpenTelemetry
//! Collector's debug exporter, to see what a pipeline carries.
//!
//! - **Signals**: traces, metrics and logs.
//! - **Output** (`verbosity`): `basic` writes one line per batch
//!   (`Traces: resource spans: 1, spans: 5`); `normal` adds one line per resource, scope and
//!   item (span name and ids, a data point's metric name, attributes and value, a log record's
//!   severity and body); `detailed` adds every field of every item in the Collector's layout.
//!   Ids are hex, timestamps UTC. The text of one batch is written at once, never interleaved
//!   with another's.
//! - **Delivery guarantee**: none beyond the write: a batch is written once; a failed write
//!   (stderr closed) is a permanent error, counted as dropped and never retried. A small queue
//!   (100 batches, one consumer, so output keeps its order) sits in front; a full queue drops,
//!   counted, rather than slowing the pipeline down for a debugging aid.
//!
//! ```yaml
//! exporters:
//!   debug:
//!     verbosity: detailed
//! ```

mod config;
mod detailed;
mod exporter;
mod format;
#[cfg(test)]
mod tests;
mod text;

pub use config::{DebugExporterConfig, Verbosity};
pub use exporter::DebugExporter;
pub use format::format_batch;

use sluice_pipeline::factory::{ComponentContext, Exporter, ExporterPlugin, Stability};
use sluice_pipeline::retry::{DeliveryConfig, QueueConfig, RetryConfig};
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `debug` exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct DebugExporterFactory;

impl ExporterPlugin for DebugExporterFactory {
    type Config = DebugExporterConfig;
    const TYPE: &'static str = "debug";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Development;
    const EXAMPLE: &'static str = "verbosity: basic\n";

    fn delivery(_config: &DebugExporterConfig) -> DeliveryConfig {
        DeliveryConfig {
            retry_on_failure: RetryConfig {
                enabled: false,
                ..RetryConfig::default()
            },
            sending_queue: QueueConfig {
                num_consumers: 1,
                queue_size: 100,
                ..QueueConfig::default()
            },
            ..DeliveryConfig::default()
        }
    }

    fn build(
        &self,
        config: DebugExporterConfig,
        _ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError> {
        Ok(Box::new(DebugExporter::new(&config)))
    }
}

sluice_pipeline::register_exporter!(DebugExporterFactory);
