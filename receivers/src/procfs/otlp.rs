//! The OTLP metric messages this receiver emits: a builder per metric, one resource per host or
//! process, and the rate of a counter between two scrapes.

use sluice_pipeline::otlp::{resource, scope};
use sluice_proto::common::v1::KeyValue;
use sluice_proto::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};

/// One resource's metrics, under this receiver's scope.
pub(crate) fn resource_metrics(attributes: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(resource(attributes)),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope("procfs")),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// The clock readings of one scrape, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamps {
    /// When the scrape ran: every point's `time_unix_nano`.
    pub now: u64,
    /// When the host booted: the `start_time_unix_nano` of host-wide sums.
    pub boot: u64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Sum { monotonic: bool },
}

/// Collects the points of one metric; adds the metric to a list only if it got any point.
#[derive(Debug)]
pub(crate) struct MetricBuilder {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    kind: Kind,
    start: u64,
    time: u64,
    points: Vec<NumberDataPoint>,
}

impl MetricBuilder {
    fn new(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        kind: Kind,
        start: u64,
        time: u64,
    ) -> MetricBuilder {
        MetricBuilder {
            name,
            unit,
            description,
            kind,
            start,
            time,
            points: Vec::new(),
        }
    }

    /// A cumulative monotonic sum (a counter) that started at boot.
    pub(crate) fn counter(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        ts: &Timestamps,
    ) -> MetricBuilder {
        Self::new(
            name,
            unit,
            description,
            Kind::Sum { monotonic: true },
            ts.boot,
            ts.now,
        )
    }

    /// A cumulative non-monotonic sum (an up-down counter, a current amount).
    pub(crate) fn up_down(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        ts: &Timestamps,
    ) -> MetricBuilder {
        Self::new(
            name,
            unit,
            description,
            Kind::Sum { monotonic: false },
            ts.boot,
            ts.now,
        )
    }

    /// A gauge (a sampled value, a ratio or a rate).
    pub(crate) fn gauge(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        ts: &Timestamps,
    ) -> MetricBuilder {
        Self::new(name, unit, description, Kind::Gauge, 0, ts.now)
    }

    /// The same builder with another start time (a process's start instead of boot).
    pub(crate) fn with_start(mut self, start_unix_nano: u64) -> MetricBuilder {
        self.start = start_unix_nano;
        self
    }

    fn point(&mut self, value: number_data_point::Value, attributes: Vec<KeyValue>) {
        self.points.push(NumberDataPoint {
            attributes,
            start_time_unix_nano: self.start,
            time_unix_nano: self.time,
            value: Some(value),
            ..Default::default()
        });
    }

    /// Adds an integer point (saturating at `i64::MAX`).
    pub(crate) fn int(&mut self, value: u64, attributes: Vec<KeyValue>) {
        let v = i64::try_from(value).unwrap_or(i64::MAX);
        self.point(number_data_point::Value::AsInt(v), attributes);
    }

    /// Adds a floating-point point.
    pub(crate) fn double(&mut self, value: f64, attributes: Vec<KeyValue>) {
        self.point(number_data_point::Value::AsDouble(value), attributes);
    }

    /// Appends the metric to `out`, unless it has no point.
    pub(crate) fn finish(self, out: &mut Vec<Metric>) {
        if self.points.is_empty() {
            return;
        }
        let data = match self.kind {
            Kind::Gauge => metric::Data::Gauge(Gauge {
                data_points: self.points,
            }),
            Kind::Sum { monotonic } => metric::Data::Sum(Sum {
                data_points: self.points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: monotonic,
            }),
        };
        out.push(Metric {
            name: self.name.to_string(),
            description: self.description.to_string(),
            unit: self.unit.to_string(),
            data: Some(data),
            ..Default::default()
        });
    }
}

/// The per-second rate of a counter that went from `prev` to `cur` in `elapsed`, unrounded.
/// `None` when no time passed or the counter went back (a reset, a wrap, a replaced device).
pub(crate) fn rate(prev: u64, cur: u64, elapsed: std::time::Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    cur.checked_sub(prev).map(|d| d as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_is_not_floored_and_skips_resets() {
        assert_eq!(rate(10, 13, Duration::from_secs(2)), Some(1.5));
        assert_eq!(rate(0, 1, Duration::from_millis(250)), Some(4.0));
        assert_eq!(rate(13, 10, Duration::from_secs(2)), None);
        assert_eq!(rate(1, 2, Duration::ZERO), None);
    }
}
