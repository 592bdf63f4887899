//! Item-granular splitting of OTLP payloads: a resource, scope or metric that straddles a batch
//! boundary is cut in two, both halves keeping its header (resource, scope, schema URL; for a
//! metric its name, description, unit, metadata, type, temporality and monotonicity).
//!
//! Splitting works from the back (`Vec::split_off`, `Vec::drain(i..)`): the front half keeps its
//! allocation and each item moves once, so cutting one payload into many parts stays linear.

use sluice_proto::logs::v1::{ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    metric, ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum,
    Summary,
};
use sluice_proto::trace::v1::{ResourceSpans, ScopeSpans};

use sluice_pipeline::data::metric_point_count;

/// A node of an OTLP payload tree that holds items (spans, data points or log records).
pub(crate) trait SplitTail: Sized {
    /// The items under this node.
    fn items(&self) -> usize;

    /// Removes the last `n` items (`0 < n < self.items()`) and returns them under a copy of this
    /// node's header.
    fn split_tail(&mut self, n: usize) -> Self;
}

/// Removes the last `n` items of `nodes` and returns them, in order. Whole nodes move; at most
/// one node is cut. Nodes without items at the very end go with the tail.
pub(crate) fn split_tail_vec<T: SplitTail>(nodes: &mut Vec<T>, n: usize) -> Vec<T> {
    let mut need = n;
    let mut first_whole = nodes.len();
    while need > 0 && first_whole > 0 {
        let k = nodes[first_whole - 1].items();
        if k > need {
            break;
        }
        need -= k;
        first_whole -= 1;
    }
    let cut = need > 0 && first_whole > 0;
    let mut tail = Vec::with_capacity(nodes.len() - first_whole + usize::from(cut));
    if cut {
        tail.push(nodes[first_whole - 1].split_tail(need));
    }
    tail.extend(nodes.drain(first_whole..));
    tail
}

/// The last `n` elements of `v`, removed.
fn tail_of<T>(v: &mut Vec<T>, n: usize) -> Vec<T> {
    v.split_off(v.len().saturating_sub(n))
}

impl SplitTail for ResourceSpans {
    fn items(&self) -> usize {
        self.scope_spans.iter().map(|s| s.spans.len()).sum()
    }

    fn split_tail(&mut self, n: usize) -> Self {
        ResourceSpans {
            resource: self.resource.clone(),
            scope_spans: split_tail_vec(&mut self.scope_spans, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl SplitTail for ScopeSpans {
    fn items(&self) -> usize {
        self.spans.len()
    }

    fn split_tail(&mut self, n: usize) -> Self {
        ScopeSpans {
            scope: self.scope.clone(),
            spans: tail_of(&mut self.spans, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl SplitTail for ResourceLogs {
    fn items(&self) -> usize {
        self.scope_logs.iter().map(|s| s.log_records.len()).sum()
    }

    fn split_tail(&mut self, n: usize) -> Self {
        ResourceLogs {
            resource: self.resource.clone(),
            scope_logs: split_tail_vec(&mut self.scope_logs, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl SplitTail for ScopeLogs {
    fn items(&self) -> usize {
        self.log_records.len()
    }

    fn split_tail(&mut self, n: usize) -> Self {
        ScopeLogs {
            scope: self.scope.clone(),
            log_records: tail_of(&mut self.log_records, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl SplitTail for ResourceMetrics {
    fn items(&self) -> usize {
        self.scope_metrics.iter().map(SplitTail::items).sum()
    }

    fn split_tail(&mut self, n: usize) -> Self {
        ResourceMetrics {
            resource: self.resource.clone(),
            scope_metrics: split_tail_vec(&mut self.scope_metrics, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl SplitTail for ScopeMetrics {
    fn items(&self) -> usize {
        self.metrics.iter().map(SplitTail::items).sum()
    }

    fn split_tail(&mut self, n: usize) -> Self {
        ScopeMetrics {
            scope: self.scope.clone(),
            metrics: split_tail_vec(&mut self.metrics, n),
            schema_url: self.schema_url.clone(),
        }
    }
}

impl SplitTail for Metric {
    fn items(&self) -> usize {
        metric_point_count(self.data.as_ref())
    }

    fn split_tail(&mut self, n: usize) -> Self {
        let data = self.data.as_mut().map(|data| match data {
            metric::Data::Gauge(g) => metric::Data::Gauge(Gauge {
                data_points: tail_of(&mut g.data_points, n),
            }),
            metric::Data::Sum(s) => metric::Data::Sum(Sum {
                data_points: tail_of(&mut s.data_points, n),
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            }),
            metric::Data::Histogram(h) => metric::Data::Histogram(Histogram {
                data_points: tail_of(&mut h.data_points, n),
                aggregation_temporality: h.aggregation_temporality,
            }),
            metric::Data::ExponentialHistogram(h) => {
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: tail_of(&mut h.data_points, n),
                    aggregation_temporality: h.aggregation_temporality,
                })
            }
            metric::Data::Summary(s) => metric::Data::Summary(Summary {
                data_points: tail_of(&mut s.data_points, n),
            }),
        });
        Metric {
            name: self.name.clone(),
            description: self.description.clone(),
            unit: self.unit.clone(),
            metadata: self.metadata.clone(),
            data,
        }
    }
}
