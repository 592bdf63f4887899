//! The data that flows through a pipeline: OTLP-native payloads, no internal event model.

use std::fmt;
use std::time::SystemTime;

use sluice_proto::logs::v1::ResourceLogs;
use sluice_proto::metrics::v1::{metric, ResourceMetrics};
use sluice_proto::trace::v1::ResourceSpans;

use crate::ack::Ack;
use crate::id::ComponentId;

/// The three OpenTelemetry signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// All signals, in a fixed order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The name used in pipeline ids (`traces`, `metrics`, `logs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The unit every counter of this signal counts (`spans`, `metric_points`, `log_records`).
    pub fn unit(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
            Signal::Logs => "log_records",
        }
    }

    /// Parses a pipeline signal name.
    pub fn parse(s: &str) -> Option<Signal> {
        match s {
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            "logs" => Some(Signal::Logs),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an OTLP export request carries, for one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Traces(Vec<ResourceSpans>),
    Metrics(Vec<ResourceMetrics>),
    Logs(Vec<ResourceLogs>),
}

impl Payload {
    /// An empty payload of the given signal.
    pub fn empty(signal: Signal) -> Payload {
        match signal {
            Signal::Traces => Payload::Traces(Vec::new()),
            Signal::Metrics => Payload::Metrics(Vec::new()),
            Signal::Logs => Payload::Logs(Vec::new()),
        }
    }

    /// The signal this payload carries.
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Logs(_) => Signal::Logs,
        }
    }

    /// The payload's size encoded as an OTLP export request, in bytes (without the request's
    /// own few bytes of framing).
    pub fn encoded_len(&self) -> usize {
        use sluice_proto::Message;
        match self {
            Payload::Traces(rs) => rs.iter().map(|r| r.encoded_len()).sum(),
            Payload::Metrics(rm) => rm.iter().map(|r| r.encoded_len()).sum(),
            Payload::Logs(rl) => rl.iter().map(|r| r.encoded_len()).sum(),
        }
    }

    /// Spans, metric data points or log records: the unit of every counter.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Traces(rs) => rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum(),
            Payload::Metrics(rm) => rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| metric_point_count(m.data.as_ref()))
                .sum(),
            Payload::Logs(rl) => rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum(),
        }
    }

    /// Whether the payload carries no items.
    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }

    /// Moves the resources of `other` (same signal) to the end of `self`.
    /// Returns `other` back unchanged when the signals differ.
    pub fn append(&mut self, other: Payload) -> Result<(), Payload> {
        match (self, other) {
            (Payload::Traces(a), Payload::Traces(b)) => a.extend(b),
            (Payload::Metrics(a), Payload::Metrics(b)) => a.extend(b),
            (Payload::Logs(a), Payload::Logs(b)) => a.extend(b),
            (_, other) => return Err(other),
        }
        Ok(())
    }
}

/// Number of data points in one metric.
pub fn metric_point_count(data: Option<&metric::Data>) -> usize {
    match data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// What travels with a payload through the pipeline.
#[derive(Debug, Clone)]
pub struct BatchMeta {
    /// The receiver that produced the data (for a merged batch, the first one).
    pub source: Option<ComponentId>,
    /// When the data entered sluice.
    pub received_at: SystemTime,
    /// Acknowledgement handles of every receiver batch this batch carries. A receiver that can
    /// replay learns through them when all exporters are done with its data.
    pub acks: Vec<Ack>,
}

impl Default for BatchMeta {
    fn default() -> Self {
        BatchMeta {
            source: None,
            received_at: SystemTime::now(),
            acks: Vec::new(),
        }
    }
}

/// A payload and its metadata: the unit that moves between stages.
#[derive(Debug, Clone)]
pub struct Batch {
    pub payload: Payload,
    pub meta: BatchMeta,
}

impl Batch {
    /// A batch with fresh metadata.
    pub fn new(payload: Payload) -> Batch {
        Batch {
            payload,
            meta: BatchMeta::default(),
        }
    }

    /// The batch's signal.
    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }

    /// The batch's item count.
    pub fn item_count(&self) -> usize {
        self.payload.item_count()
    }

    /// Marks every acknowledgement handle as failed: the data did not reach every exporter.
    pub fn fail_acks(&self) {
        for a in &self.meta.acks {
            a.fail();
        }
    }
}
