//! The text the debug exporter writes for one batch. Pure: a payload in, text appended to a
//! `String`, so tests compare exact output.
//!
//! - `basic`: one summary line per batch (`Traces: resource spans: 1, spans: 5`).
//! - `normal`: the summary line, then one line per resource and scope and one per item: a span's
//!   name, trace id and span id; a data point's metric name, attributes and value; a log
//!   record's severity and body; each followed by its attributes as `key=value`.
//! - `detailed`: the summary line, then everything, in the Collector's debug exporter layout
//!   (see [`super::detailed`]).

use std::fmt::Write as _;

use sluice_pipeline::Payload;
use sluice_proto::common::v1::{InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::ResourceLogs;
use sluice_proto::metrics::v1::{exponential_histogram_data_point, metric, number_data_point};
use sluice_proto::metrics::v1::{Metric, ResourceMetrics};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::ResourceSpans;

use super::config::Verbosity;
use super::detailed;
use super::text::{attributes_inline, double, hex, one_line, severity, value_text};

/// Appends the text for `payload` at `verbosity` to `out`; every line ends with `\n`.
pub fn format_batch(payload: &Payload, verbosity: Verbosity, out: &mut String) {
    summary_line(payload, out);
    match (verbosity, payload) {
        (Verbosity::Basic, _) => {}
        (Verbosity::Normal, Payload::Traces(rs)) => normal_traces(rs, out),
        (Verbosity::Normal, Payload::Metrics(rm)) => normal_metrics(rm, out),
        (Verbosity::Normal, Payload::Logs(rl)) => normal_logs(rl, out),
        (Verbosity::Detailed, Payload::Traces(rs)) => detailed::traces(rs, out),
        (Verbosity::Detailed, Payload::Metrics(rm)) => detailed::metrics(rm, out),
        (Verbosity::Detailed, Payload::Logs(rl)) => detailed::logs(rl, out),
    }
}

fn summary_line(payload: &Payload, out: &mut String) {
    let items = payload.item_count();
    let _ = match payload {
        Payload::Traces(rs) => {
            writeln!(out, "Traces: resource spans: {}, spans: {items}", rs.len())
        }
        Payload::Metrics(rm) => {
            let metrics: usize = rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .map(|s| s.metrics.len())
                .sum();
            writeln!(
                out,
                "Metrics: resource metrics: {}, metrics: {metrics}, data points: {items}",
                rm.len()
            )
        }
        Payload::Logs(rl) => {
            writeln!(
                out,
                "Logs: resource logs: {}, log records: {items}",
                rl.len()
            )
        }
    };
}

/// `<label> #<i>` and the resource attributes as `key=value`.
fn resource_line(out: &mut String, label: &str, i: usize, resource: Option<&Resource>) {
    let start = out.len();
    let _ = write!(out, "{label} #{i}");
    attributes_inline(out, resource.map_or(&[], |r| &r.attributes));
    one_line(out, start);
    out.push('\n');
}

/// `<label> #<j> name@version` and the scope attributes as `key=value`.
fn scope_line(out: &mut String, label: &str, j: usize, scope: Option<&InstrumentationScope>) {
    let start = out.len();
    let _ = write!(out, "{label} #{j}");
    if let Some(s) = scope {
        if !s.name.is_empty() {
            out.push(' ');
            out.push_str(&s.name);
            if !s.version.is_empty() {
                out.push('@');
                out.push_str(&s.version);
            }
        }
        attributes_inline(out, &s.attributes);
    }
    one_line(out, start);
    out.push('\n');
}

fn normal_traces(resources: &[ResourceSpans], out: &mut String) {
    for (i, rs) in resources.iter().enumerate() {
        resource_line(out, "ResourceSpans", i, rs.resource.as_ref());
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            scope_line(out, "ScopeSpans", j, ss.scope.as_ref());
            for span in &ss.spans {
                let start = out.len();
                out.push_str(&span.name);
                out.push(' ');
                hex(out, &span.trace_id);
                out.push(' ');
                hex(out, &span.span_id);
                attributes_inline(out, &span.attributes);
                one_line(out, start);
                out.push('\n');
            }
        }
    }
}

fn normal_metrics(resources: &[ResourceMetrics], out: &mut String) {
    for (i, rm) in resources.iter().enumerate() {
        resource_line(out, "ResourceMetrics", i, rm.resource.as_ref());
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            scope_line(out, "ScopeMetrics", j, sm.scope.as_ref());
            for m in &sm.metrics {
                normal_metric(m, out);
            }
        }
    }
}

/// `name{k=v,k2=v2} ` for one data point.
fn point_prefix(out: &mut String, name: &str, attributes: &[KeyValue]) -> usize {
    let start = out.len();
    out.push_str(name);
    out.push('{');
    for (i, kv) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&kv.key);
        out.push('=');
        value_text(out, kv.value.as_ref());
    }
    out.push_str("} ");
    start
}

fn end_line(out: &mut String, start: usize) {
    one_line(out, start);
    out.push('\n');
}

fn optional(out: &mut String, label: &str, v: Option<f64>) {
    if let Some(v) = v {
        out.push(' ');
        out.push_str(label);
        out.push('=');
        double(out, v);
    }
}

fn normal_metric(m: &Metric, out: &mut String) {
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => {
            for p in &g.data_points {
                let start = point_prefix(out, &m.name, &p.attributes);
                number(out, p.value.as_ref());
                end_line(out, start);
            }
        }
        Some(metric::Data::Sum(s)) => {
            for p in &s.data_points {
                let start = point_prefix(out, &m.name, &p.attributes);
                number(out, p.value.as_ref());
                end_line(out, start);
            }
        }
        Some(metric::Data::Histogram(h)) => {
            for p in &h.data_points {
                let start = point_prefix(out, &m.name, &p.attributes);
                let _ = write!(out, "count={}", p.count);
                optional(out, "sum", p.sum);
                optional(out, "min", p.min);
                optional(out, "max", p.max);
                for (k, count) in p.bucket_counts.iter().enumerate() {
                    out.push_str(" le");
                    match p.explicit_bounds.get(k) {
                        Some(bound) => double(out, *bound),
                        None => out.push_str("+Inf"),
                    }
                    let _ = write!(out, "={count}");
                }
                end_line(out, start);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                let start = point_prefix(out, &m.name, &p.attributes);
                let _ = write!(out, "count={}", p.count);
                optional(out, "sum", p.sum);
                optional(out, "min", p.min);
                optional(out, "max", p.max);
                let _ = write!(out, " scale={} zero_count={}", p.scale, p.zero_count);
                buckets(out, "positive", p.positive.as_ref());
                buckets(out, "negative", p.negative.as_ref());
                end_line(out, start);
            }
        }
        Some(metric::Data::Summary(s)) => {
            for p in &s.data_points {
                let start = point_prefix(out, &m.name, &p.attributes);
                let _ = write!(out, "count={} sum=", p.count);
                double(out, p.sum);
                for q in &p.quantile_values {
                    out.push_str(" q");
                    double(out, q.quantile);
                    out.push('=');
                    double(out, q.value);
                }
                end_line(out, start);
            }
        }
    }
}

fn number(out: &mut String, value: Option<&number_data_point::Value>) {
    match value {
        Some(number_data_point::Value::AsInt(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(number_data_point::Value::AsDouble(d)) => double(out, *d),
        None => out.push_str("(no value)"),
    }
}

/// ` positive_offset=1 positive=[1,2]`, nothing for absent or empty buckets.
fn buckets(out: &mut String, label: &str, b: Option<&exponential_histogram_data_point::Buckets>) {
    let Some(b) = b.filter(|b| !b.bucket_counts.is_empty()) else {
        return;
    };
    let _ = write!(out, " {label}_offset={} {label}=[", b.offset);
    for (i, c) in b.bucket_counts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{c}");
    }
    out.push(']');
}

fn normal_logs(resources: &[ResourceLogs], out: &mut String) {
    for (i, rl) in resources.iter().enumerate() {
        resource_line(out, "ResourceLog", i, rl.resource.as_ref());
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            scope_line(out, "ScopeLogs", j, sl.scope.as_ref());
            for r in &sl.log_records {
                let start = out.len();
                if r.severity_text.is_empty() {
                    severity(out, r.severity_number);
                } else {
                    out.push_str(&r.severity_text);
                }
                let body_start = out.len();
                out.push(' ');
                value_text(out, r.body.as_ref());
                if out.len() == body_start + 1 {
                    out.truncate(body_start);
                }
                attributes_inline(out, &r.attributes);
                end_line(out, start);
            }
        }
    }
}
