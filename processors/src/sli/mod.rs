//! The `sli` processor: evaluates service level indicators over the metrics that flow through a
//! pipeline and raises Yellow/Orange/Red alerts (REQUIREMENTS R4).
//!
//! - **Signals**: metrics in; metrics pass through unchanged. It adds, into the same pipeline,
//!   alert **log records** and the **`sluice.sli.status`** gauge, which go to the pipeline's
//!   exporters that accept each signal (give a metrics pipeline with this processor an exporter
//!   that takes logs, or the alerts are counted as dropped by the pipeline).
//! - **Values**: each SLI reads the points of one `metric` (optionally filtered on point or
//!   resource `attributes`) in a window `(t − evaluation_window, t]` of the points' own
//!   timestamps, and computes:
//!   - `p95`, `p99`, any `p<number>`: from explicit-bucket histograms, the merged bucket
//!     increases of the window interpolated exactly as Prometheus' `histogram_quantile`; from
//!     gauge or sum points, the exact value at nearest rank `ceil(q × n)` of the sorted values;
//!   - `avg` (histograms: sum/count of the window's observations), `max`, `min`;
//!   - `rate`: the per-second increase of a counter, reset-aware (a cumulative series' increase
//!     from its last point before the window to its last point inside, over the time between
//!     them; delta points summed over the window);
//!   - `ratio`: `numerator` amount / `denominator` amount (counter increases, histogram counts or
//!     summed gauge values), each side a `{metric, attributes}` selector defaulting to the SLI's.
//!
//!   Exponential histograms and summaries are not read (counted as ignored).
//! - **When it evaluates**: on data time, not wall time, so results do not depend on batching or
//!   delays. Evaluations fall on multiples of `evaluation_interval` since the epoch; the one at
//!   `t` runs as soon as a point of the SLI at or after `t` has arrived (points that arrive later
//!   than that only count in later windows). A window with no points is not evaluated: the SLI
//!   keeps its state while its metric is silent.
//! - **Alerts** (see [`alert`]): Red fires on one breaching evaluation; Yellow and Orange after
//!   `consecutive_breaches` consecutive breaching evaluations within `evaluation_window`; an alert
//!   escalates but does not step down; it resolves when the value is back past the least severe
//!   threshold by `hysteresis` (for `above`: at or below `t − |t| × hysteresis`).
//! - **Each firing and resolution** is one log record with `event_name` `sluice.sli.alert`, a
//!   JSON body (R4's AlertEvent: `alert_id`, `severity`, `state`, `sli_name`, `current_value`,
//!   `threshold`, `threshold_type`, `timestamp`, `trace_id` when an exemplar carries one,
//!   `labels`), the same fields and the labels as attributes, severity WARN (yellow, orange),
//!   ERROR (red) or INFO (resolved). Each evaluation adds a point to the gauges
//!   `sluice.sli.status` (0 ok, 1 yellow, 2 orange, 3 red) and `sluice.sli.value`, with the
//!   attribute `sli_name` and the labels.
//! - **Delivery guarantee**: holds no pipeline data (it only reads it); SLI windows live in
//!   memory and start empty after a restart.
//! - **Self-telemetry**: `sluice_processor_alerts_triggered{severity,sli_name}`,
//!   `sluice_processor_sli_status{sli_name}`, `sluice_processor_sli_evaluations{sli_name}`,
//!   `sluice_processor_sli_points_ignored{sli_name,reason}` (points of an SLI's metric it could
//!   not use: `unsupported_type`, `too_old`, `too_new` (over 10 minutes ahead of the wall
//!   clock: such a point would move the SLI's data time ahead and freeze it), `max_series`,
//!   `no_value`, `no_timestamp`, `malformed_buckets`, `mismatched_bounds`,
//!   `unspecified_temporality`; logged too).
//!
//! ```yaml
//! processors:
//!   sli:
//!     labels: { module: vpn, environment: prod }
//!     slis:
//!       - sli_name: session_establishment_latency_p95
//!         metric: session.establishment.duration
//!         aggregation: p95
//!         yellow: 400
//!         orange: 500
//!         red: 800
//!         evaluation_window: 5m
//!         consecutive_breaches: 3
//!       - sli_name: packet_loss_rate
//!         aggregation: ratio
//!         numerator: { metric: packets.lost }
//!         denominator: { metric: packets.sent }
//!         yellow: 0.05
//!         orange: 0.10
//!         red: 0.20
//! ```

pub mod alert;
mod config;
mod emit;
mod error;
mod processor;
#[cfg(test)]
mod tests;
mod window;

pub use alert::Severity;
pub use config::{
    Aggregation, Direction, SliProcessorConfig, SliRule, SliSelector, RESERVED_ATTRIBUTES,
};
pub use emit::{AlertEvent, ALERT_EVENT_NAME, STATUS_METRIC, VALUE_METRIC};
pub use error::SliError;
pub use processor::{
    SliProcessor, ALERTS_TRIGGERED_METRIC, EVALUATIONS_METRIC, IGNORED_METRIC, STATUS_SELF_METRIC,
};
pub use window::{histogram_quantile, nearest_rank, Buckets};

use sluice_pipeline::factory::{ComponentContext, Processor, ProcessorPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `sli` processor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SliProcessorFactory;

impl ProcessorPlugin for SliProcessorFactory {
    type Config = SliProcessorConfig;
    const TYPE: &'static str = "sli";
    const SIGNALS: &'static [Signal] = &[Signal::Metrics];
    const EMITS: &'static [Signal] = &[Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "slis:\n  - { sli_name: example_latency_p95, metric: example.duration, aggregation: p95, yellow: 400, orange: 500, red: 800 }\n";

    fn build(
        &self,
        config: SliProcessorConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Processor>, BuildError> {
        Ok(Box::new(SliProcessor::new(&config, &ctx.telemetry)))
    }
}

sluice_pipeline::register_processor!(SliProcessorFactory);
