//! The `detailed` verbosity: every field, in the layout of the Collector's debug exporter
//! (`otlptext`), so its output reads the same. Lines whose value is empty end at the colon
//! (no trailing space), and empty schema URLs are left out.

use std::fmt::Write as _;

use sluice_proto::common::v1::{InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::ResourceLogs;
use sluice_proto::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, SummaryDataPoint,
};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{span, ResourceSpans, Span};

use super::text::{
    fixed6, hex, severity, span_kind, status_code, temporality, timestamp, typed_value,
};

/// Appends `prefix`, then ` value` as `value` writes it unless that is empty, then a newline.
fn entry(out: &mut String, prefix: &str, value: impl FnOnce(&mut String)) {
    out.push_str(prefix);
    entry_value(out, value);
}

/// ` value` and a newline, or only the newline when `value` writes nothing.
fn entry_value(out: &mut String, value: impl FnOnce(&mut String)) {
    let before = out.len();
    out.push(' ');
    value(out);
    if out.len() == before + 1 {
        out.truncate(before);
    }
    out.push('\n');
}

fn entry_str(out: &mut String, prefix: &str, value: &str) {
    entry(out, prefix, |o| o.push_str(value));
}

/// A span field: `    Trace ID       : …` (labels padded to 15 as the Collector does).
fn field(out: &mut String, label: &str, value: impl FnOnce(&mut String)) {
    let _ = write!(out, "    {label:<15}:");
    entry_value(out, value);
}

/// `header:` then `<prefix> key: Type(value)` per attribute; nothing when there are none.
fn attributes(out: &mut String, header: &str, prefix: &str, attrs: &[KeyValue]) {
    if attrs.is_empty() {
        return;
    }
    out.push_str(header);
    out.push_str(":\n");
    for kv in attrs {
        let _ = write!(out, "{prefix} {}: ", kv.key);
        typed_value(out, kv.value.as_ref());
        out.push('\n');
    }
}

fn resource(out: &mut String, label: &str, i: usize, res: Option<&Resource>, schema_url: &str) {
    let _ = writeln!(out, "{label} #{i}");
    if !schema_url.is_empty() {
        entry_str(out, "Resource SchemaURL:", schema_url);
    }
    if let Some(r) = res {
        attributes(out, "Resource attributes", "     ->", &r.attributes);
    }
}

fn scope(
    out: &mut String,
    label: &str,
    j: usize,
    scope: Option<&InstrumentationScope>,
    schema_url: &str,
) {
    let _ = writeln!(out, "{label} #{j}");
    if !schema_url.is_empty() {
        entry_str(out, &format!("{label} SchemaURL:"), schema_url);
    }
    let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
    out.push_str("InstrumentationScope");
    for part in [name, version] {
        if !part.is_empty() {
            out.push(' ');
            out.push_str(part);
        }
    }
    out.push('\n');
    if let Some(s) = scope {
        attributes(
            out,
            "InstrumentationScope attributes",
            "     ->",
            &s.attributes,
        );
    }
}

fn nonzero(out: &mut String, label: &str, n: u32) {
    if n != 0 {
        let _ = writeln!(out, "    {label}: {n}");
    }
}

/// Every span of every resource and scope.
pub(crate) fn traces(resources: &[ResourceSpans], out: &mut String) {
    for (i, rs) in resources.iter().enumerate() {
        resource(
            out,
            "ResourceSpans",
            i,
            rs.resource.as_ref(),
            &rs.schema_url,
        );
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            scope(out, "ScopeSpans", j, ss.scope.as_ref(), &ss.schema_url);
            for (k, s) in ss.spans.iter().enumerate() {
                let _ = writeln!(out, "Span #{k}");
                span(out, s);
            }
        }
    }
}

fn span(out: &mut String, s: &Span) {
    field(out, "Trace ID", |o| hex(o, &s.trace_id));
    field(out, "Parent ID", |o| hex(o, &s.parent_span_id));
    field(out, "ID", |o| hex(o, &s.span_id));
    field(out, "Name", |o| o.push_str(&s.name));
    field(out, "Kind", |o| span_kind(o, s.kind));
    if !s.trace_state.is_empty() {
        field(out, "TraceState", |o| o.push_str(&s.trace_state));
    }
    field(out, "Start time", |o| timestamp(o, s.start_time_unix_nano));
    field(out, "End time", |o| timestamp(o, s.end_time_unix_nano));
    let (code, message) = s
        .status
        .as_ref()
        .map_or((0, ""), |st| (st.code, st.message.as_str()));
    field(out, "Status code", |o| status_code(o, code));
    field(out, "Status message", |o| o.push_str(message));
    nonzero(out, "DroppedAttributesCount", s.dropped_attributes_count);
    nonzero(out, "DroppedEventsCount", s.dropped_events_count);
    nonzero(out, "DroppedLinksCount", s.dropped_links_count);
    attributes(out, "Attributes", "     ->", &s.attributes);
    events(out, &s.events);
    links(out, &s.links);
}

fn events(out: &mut String, events: &[span::Event]) {
    if events.is_empty() {
        return;
    }
    out.push_str("Events:\n");
    for (i, e) in events.iter().enumerate() {
        let _ = writeln!(out, "SpanEvent #{i}");
        entry_str(out, "     -> Name:", &e.name);
        entry(out, "     -> Timestamp:", |o| {
            timestamp(o, e.time_unix_nano)
        });
        let _ = writeln!(
            out,
            "     -> DroppedAttributesCount: {}",
            e.dropped_attributes_count
        );
        attributes(out, "     -> Attributes", "          ->", &e.attributes);
    }
}

fn links(out: &mut String, links: &[span::Link]) {
    if links.is_empty() {
        return;
    }
    out.push_str("Links:\n");
    for (i, l) in links.iter().enumerate() {
        let _ = writeln!(out, "SpanLink #{i}");
        entry(out, "     -> Trace ID:", |o| hex(o, &l.trace_id));
        entry(out, "     -> ID:", |o| hex(o, &l.span_id));
        entry_str(out, "     -> TraceState:", &l.trace_state);
        let _ = writeln!(
            out,
            "     -> DroppedAttributesCount: {}",
            l.dropped_attributes_count
        );
        attributes(out, "     -> Attributes", "          ->", &l.attributes);
    }
}

/// Every metric and data point of every resource and scope.
pub(crate) fn metrics(resources: &[ResourceMetrics], out: &mut String) {
    for (i, rm) in resources.iter().enumerate() {
        resource(
            out,
            "ResourceMetrics",
            i,
            rm.resource.as_ref(),
            &rm.schema_url,
        );
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            scope(out, "ScopeMetrics", j, sm.scope.as_ref(), &sm.schema_url);
            for (k, m) in sm.metrics.iter().enumerate() {
                let _ = writeln!(out, "Metric #{k}");
                metric(out, m);
            }
        }
    }
}

fn metric(out: &mut String, m: &Metric) {
    out.push_str("Descriptor:\n");
    entry_str(out, "     -> Name:", &m.name);
    entry_str(out, "     -> Description:", &m.description);
    entry_str(out, "     -> Unit:", &m.unit);
    let data_type = match &m.data {
        None => "Empty",
        Some(metric::Data::Gauge(_)) => "Gauge",
        Some(metric::Data::Sum(_)) => "Sum",
        Some(metric::Data::Histogram(_)) => "Histogram",
        Some(metric::Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(metric::Data::Summary(_)) => "Summary",
    };
    let _ = writeln!(out, "     -> DataType: {data_type}");
    match &m.data {
        Some(metric::Data::Sum(s)) => {
            let _ = writeln!(out, "     -> IsMonotonic: {}", s.is_monotonic);
            aggregation_temporality(out, s.aggregation_temporality);
        }
        Some(metric::Data::Histogram(h)) => aggregation_temporality(out, h.aggregation_temporality),
        Some(metric::Data::ExponentialHistogram(h)) => {
            aggregation_temporality(out, h.aggregation_temporality)
        }
        _ => {}
    }
    attributes(out, "Metadata", "     ->", &m.metadata);
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => number_points(out, &g.data_points),
        Some(metric::Data::Sum(s)) => number_points(out, &s.data_points),
        Some(metric::Data::Histogram(h)) => histogram_points(out, &h.data_points),
        Some(metric::Data::ExponentialHistogram(h)) => exponential_points(out, &h.data_points),
        Some(metric::Data::Summary(s)) => summary_points(out, &s.data_points),
    }
}

fn aggregation_temporality(out: &mut String, t: i32) {
    out.push_str("     -> AggregationTemporality: ");
    temporality(out, t);
    out.push('\n');
}

/// Attributes and both timestamps, common to every kind of data point.
fn point_header(out: &mut String, attrs: &[KeyValue], start: u64, time: u64) {
    attributes(out, "Data point attributes", "     ->", attrs);
    entry(out, "StartTimestamp:", |o| timestamp(o, start));
    entry(out, "Timestamp:", |o| timestamp(o, time));
}

fn labelled_f64(out: &mut String, label: &str, v: Option<f64>) {
    if let Some(v) = v {
        out.push_str(label);
        out.push_str(": ");
        fixed6(out, v);
        out.push('\n');
    }
}

fn number_points(out: &mut String, points: &[NumberDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        let _ = writeln!(out, "NumberDataPoints #{i}");
        point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
        match p.value {
            Some(number_data_point::Value::AsInt(v)) => {
                let _ = writeln!(out, "Value: {v}");
            }
            Some(number_data_point::Value::AsDouble(v)) => labelled_f64(out, "Value", Some(v)),
            None => {}
        }
        exemplars(out, &p.exemplars);
    }
}

fn histogram_points(out: &mut String, points: &[HistogramDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        let _ = writeln!(out, "HistogramDataPoints #{i}");
        point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
        let _ = writeln!(out, "Count: {}", p.count);
        labelled_f64(out, "Sum", p.sum);
        labelled_f64(out, "Min", p.min);
        labelled_f64(out, "Max", p.max);
        for (k, b) in p.explicit_bounds.iter().enumerate() {
            let _ = write!(out, "ExplicitBounds #{k}: ");
            fixed6(out, *b);
            out.push('\n');
        }
        for (k, c) in p.bucket_counts.iter().enumerate() {
            let _ = writeln!(out, "Buckets #{k}, Count: {c}");
        }
        exemplars(out, &p.exemplars);
    }
}

fn exponential_points(out: &mut String, points: &[ExponentialHistogramDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        let _ = writeln!(out, "ExponentialHistogramDataPoints #{i}");
        point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
        let _ = writeln!(out, "Count: {}", p.count);
        labelled_f64(out, "Sum", p.sum);
        labelled_f64(out, "Min", p.min);
        labelled_f64(out, "Max", p.max);
        // Bucket `index` covers (base^index, base^(index+1)] with base = 2^(2^-scale).
        let factor = std::f64::consts::LN_2 * 2f64.powi(-p.scale);
        let bound = |index: i64| (index as f64 * factor).exp();
        let bucket = |out: &mut String, open: char, lo: f64, hi: f64, close: char, c: u64| {
            out.push_str("Bucket ");
            out.push(open);
            fixed6(out, lo);
            out.push_str(", ");
            fixed6(out, hi);
            out.push(close);
            let _ = writeln!(out, ", Count: {c}");
        };
        if let Some(neg) = &p.negative {
            for (pos, c) in neg.bucket_counts.iter().enumerate().rev() {
                let index = i64::from(neg.offset) + pos as i64;
                bucket(out, '[', -bound(index + 1), -bound(index), ')', *c);
            }
        }
        if p.zero_count != 0 {
            let _ = writeln!(out, "Bucket [0, 0], Count: {}", p.zero_count);
        }
        if let Some(positive) = &p.positive {
            for (pos, c) in positive.bucket_counts.iter().enumerate() {
                let index = i64::from(positive.offset) + pos as i64;
                bucket(out, '(', bound(index), bound(index + 1), ']', *c);
            }
        }
        exemplars(out, &p.exemplars);
    }
}

fn summary_points(out: &mut String, points: &[SummaryDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        let _ = writeln!(out, "SummaryDataPoints #{i}");
        point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
        let _ = writeln!(out, "Count: {}", p.count);
        labelled_f64(out, "Sum", Some(p.sum));
        for (k, q) in p.quantile_values.iter().enumerate() {
            let _ = write!(out, "QuantileValue #{k}: Quantile ");
            fixed6(out, q.quantile);
            out.push_str(", Value ");
            fixed6(out, q.value);
            out.push('\n');
        }
    }
}

fn exemplars(out: &mut String, exemplars: &[Exemplar]) {
    if exemplars.is_empty() {
        return;
    }
    out.push_str("Exemplars:\n");
    for (i, e) in exemplars.iter().enumerate() {
        let _ = writeln!(out, "Exemplar #{i}");
        entry(out, "     -> Trace ID:", |o| hex(o, &e.trace_id));
        entry(out, "     -> Span ID:", |o| hex(o, &e.span_id));
        entry(out, "     -> Timestamp:", |o| {
            timestamp(o, e.time_unix_nano)
        });
        match e.value {
            Some(exemplar::Value::AsInt(v)) => {
                let _ = writeln!(out, "     -> Value: {v}");
            }
            Some(exemplar::Value::AsDouble(v)) => labelled_f64(out, "     -> Value", Some(v)),
            None => {}
        }
        attributes(
            out,
            "     -> FilteredAttributes",
            "          ->",
            &e.filtered_attributes,
        );
    }
}

/// Every log record of every resource and scope.
pub(crate) fn logs(resources: &[ResourceLogs], out: &mut String) {
    for (i, rl) in resources.iter().enumerate() {
        resource(out, "ResourceLog", i, rl.resource.as_ref(), &rl.schema_url);
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            scope(out, "ScopeLogs", j, sl.scope.as_ref(), &sl.schema_url);
            for (k, r) in sl.log_records.iter().enumerate() {
                let _ = writeln!(out, "LogRecord #{k}");
                entry(out, "ObservedTimestamp:", |o| {
                    timestamp(o, r.observed_time_unix_nano)
                });
                entry(out, "Timestamp:", |o| timestamp(o, r.time_unix_nano));
                entry_str(out, "SeverityText:", &r.severity_text);
                out.push_str("SeverityNumber: ");
                severity(out, r.severity_number);
                let _ = writeln!(out, "({})", r.severity_number);
                if !r.event_name.is_empty() {
                    entry_str(out, "EventName:", &r.event_name);
                }
                out.push_str("Body: ");
                typed_value(out, r.body.as_ref());
                out.push('\n');
                attributes(out, "Attributes", "     ->", &r.attributes);
                entry(out, "Trace ID:", |o| hex(o, &r.trace_id));
                entry(out, "Span ID:", |o| hex(o, &r.span_id));
                let _ = writeln!(out, "Flags: {}", r.flags);
            }
        }
    }
}
