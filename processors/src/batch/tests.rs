use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sluice_pipeline::config::{decode_str, node::parse_yaml};
use sluice_pipeline::factory::ProcessorFactory;
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::Validate;
use sluice_pipeline::{Ack, AckOutcome, Batch, BatchMeta, ComponentId, Kind, Payload, Signal};
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    metric, summary_data_point, AggregationTemporality, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;

// ---------------------------------------------------------------------------------------------
// Builders and readers.

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![attr("service.name", service)],
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_string(),
        version: "1.0".to_string(),
        ..Default::default()
    })
}

/// A span named `name`, whose span id is `id` big-endian.
fn span(name: &str, id: u64) -> Span {
    Span {
        name: name.to_string(),
        trace_id: vec![7; 16],
        span_id: id.to_be_bytes().to_vec(),
        ..Default::default()
    }
}

/// A resource `service` with one scope per `(scope name, span count)`; spans are named
/// `<scope>.<i>` and numbered from `first_id` on.
fn resource_spans(service: &str, scopes: &[(&str, usize)], first_id: u64) -> ResourceSpans {
    let mut id = first_id;
    ResourceSpans {
        resource: resource(service),
        scope_spans: scopes
            .iter()
            .map(|(name, n)| ScopeSpans {
                scope: scope(name),
                spans: (0..*n)
                    .map(|i| {
                        id += 1;
                        span(&format!("{name}.{i}"), id - 1)
                    })
                    .collect(),
                schema_url: format!("https://schema/{name}"),
            })
            .collect(),
        schema_url: "https://schema/resource".to_string(),
    }
}

fn traces(resources: Vec<ResourceSpans>) -> Batch {
    Batch::new(Payload::Traces(resources))
}

/// A traces batch of one resource with `n` spans named `<prefix>.<i>`.
fn traces_of(prefix: &str, n: usize) -> Batch {
    traces(vec![resource_spans("svc", &[(prefix, n)], 0)])
}

fn span_names(batch: &Batch) -> Vec<String> {
    match &batch.payload {
        Payload::Traces(rs) => rs
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.name.clone())
            .collect(),
        other => panic!("expected traces, got {:?}", other.signal()),
    }
}

fn all_span_names(batches: &[Batch]) -> Vec<String> {
    batches.iter().flat_map(span_names).collect()
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}.{i}")).collect()
}

/// An acknowledgement that records its outcome under `name` in `log`.
fn recording_ack(log: &Arc<Mutex<Vec<(String, AckOutcome)>>>, name: &str) -> Ack {
    let log = log.clone();
    let name = name.to_string();
    Ack::new(move |outcome| log.lock().expect("ack log").push((name, outcome)))
}

fn acked(mut batch: Batch, ack: Ack) -> Batch {
    batch.meta.acks.push(ack);
    batch
}

fn done(log: &Arc<Mutex<Vec<(String, AckOutcome)>>>) -> Vec<String> {
    let mut names: Vec<String> = log
        .lock()
        .expect("ack log")
        .iter()
        .map(|(n, o)| {
            assert_eq!(*o, AckOutcome::Done, "{n}");
            n.clone()
        })
        .collect();
    names.sort();
    names
}

fn config(size: usize, max: usize, timeout_ms: u64) -> BatchProcessorConfig {
    BatchProcessorConfig {
        send_batch_size: size,
        send_batch_max_size: max,
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn processor(size: usize, max: usize, timeout_ms: u64) -> (BatchProcessor, Arc<Telemetry>) {
    let registry = Telemetry::new();
    let id: ComponentId = "batch".parse().expect("valid id");
    let telemetry = ComponentTelemetry::new(registry.clone(), Kind::Processor, &id);
    (
        BatchProcessor::new(&config(size, max, timeout_ms), &telemetry),
        registry,
    )
}

fn sent(registry: &Telemetry, trigger: &str) -> Option<i64> {
    registry.value(
        SENT_BATCHES_METRIC,
        &[("processor", "batch"), ("trigger", trigger)],
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn default_config_is_the_collectors() {
    let d = BatchProcessorConfig::default();
    assert_eq!(d, config(8192, 0, 200));
    assert_eq!(
        decode_str::<BatchProcessorConfig>("").expect("empty config"),
        d
    );
    assert_eq!(d.validate(), Ok(()));
}

#[test]
fn good_config_decodes_whole() {
    let c: BatchProcessorConfig =
        decode_str(include_str!("testdata/config.yaml")).expect("good config");
    assert_eq!(c, config(1000, 1500, 2000));
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn typo_config_names_key_and_line() {
    sluice_pipeline::testing::assert_misspelt_key::<BatchProcessorConfig>(
        include_str!("testdata/typo_config.yaml"),
        "send_batch_max_sise",
        2,
    );
}

#[test]
fn max_size_below_size_is_rejected_at_its_key() {
    let node = parse_yaml(
        include_str!("testdata/invalid_max_size.yaml"),
        "invalid.yaml",
    )
    .expect("yaml");
    let e = match BatchProcessorFactory.parse_config(&node) {
        Ok(_) => panic!("send_batch_max_size < send_batch_size must fail"),
        Err(e) => e,
    };
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key_path(), "send_batch_max_size");
    assert_eq!(e[0].mark.as_ref().map(|m| m.line), Some(2));
    assert_eq!(
        e[0].message,
        "must be 0 (no limit) or at least send_batch_size (1000), found 500"
    );
    assert_eq!(config(10, 10, 1).validate(), Ok(()));
    assert_eq!(config(10, 0, 1).validate(), Ok(()));
    assert_eq!(config(0, 5, 1).validate(), Ok(()));
}

#[test]
fn example_parses() {
    let node = parse_yaml(BatchProcessorFactory::EXAMPLE, "example").expect("yaml");
    assert!(BatchProcessorFactory.parse_config(&node).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Triggers.

#[test]
fn merges_until_send_batch_size() {
    let (mut p, registry) = processor(10, 0, 1000);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(traces_of("a", 4), t0, &mut out);
    p.process_at(traces_of("b", 4), t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.buffered_items(Signal::Traces), 8);
    p.process_at(traces_of("c", 4), t0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].item_count(), 12);
    let Payload::Traces(rs) = &out[0].payload else {
        panic!("traces expected")
    };
    assert_eq!(rs.len(), 3, "resources are appended, not merged");
    let want: Vec<String> = [names("a", 0..4), names("b", 0..4), names("c", 0..4)].concat();
    assert_eq!(span_names(&out[0]), want);
    assert_eq!(p.buffered_items(Signal::Traces), 0);
    assert_eq!(sent(&registry, "size"), Some(1));
}

#[test]
fn size_trigger_with_max_keeps_the_remainder_and_its_acks_only() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut p, _) = processor(10, 10, 1000);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(
        acked(traces_of("a", 4), recording_ack(&log, "a")),
        t0,
        &mut out,
    );
    p.process_at(
        acked(traces_of("b", 4), recording_ack(&log, "b")),
        t0,
        &mut out,
    );
    p.process_at(
        acked(traces_of("c", 4), recording_ack(&log, "c")),
        t0,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let want: Vec<String> = [names("a", 0..4), names("b", 0..4), names("c", 0..2)].concat();
    assert_eq!(span_names(&out[0]), want);
    assert_eq!(out[0].meta.acks.len(), 3);
    assert_eq!(p.buffered_items(Signal::Traces), 2);

    drop(out);
    assert_eq!(done(&log), ["a", "b"], "c still has spans buffered");

    let mut rest = Vec::new();
    p.flush_all(&mut rest);
    assert_eq!(rest.len(), 1);
    assert_eq!(span_names(&rest[0]), names("c", 2..4));
    assert_eq!(rest[0].meta.acks.len(), 1);
    drop(rest);
    assert_eq!(done(&log), ["a", "b", "c"]);
}

#[test]
fn timeout_emits_only_buffers_old_enough() {
    let (mut p, registry) = processor(100, 0, 1000);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(traces_of("a", 3), t0, &mut out);
    p.process_at(traces_of("b", 2), t0 + ms(600), &mut out);
    p.on_tick_at(t0 + ms(999), &mut out);
    assert!(out.is_empty());
    p.on_tick_at(t0 + ms(1000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        span_names(&out[0]),
        [names("a", 0..3), names("b", 0..2)].concat()
    );

    // A buffer started just before a tick waits for its own timeout.
    out.clear();
    p.process_at(traces_of("c", 1), t0 + ms(1500), &mut out);
    p.on_tick_at(t0 + ms(2000), &mut out);
    assert!(out.is_empty());
    p.on_tick_at(t0 + ms(3000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(span_names(&out[0]), names("c", 0..1));
    assert_eq!(sent(&registry, "timeout"), Some(2));
    assert_eq!(sent(&registry, "size"), Some(0));
}

#[test]
fn remainder_after_a_size_trigger_ages_from_its_own_arrival() {
    let (mut p, _) = processor(10, 10, 1000);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(traces_of("a", 4), t0, &mut out);
    p.process_at(traces_of("b", 8), t0 + ms(800), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(p.buffered_items(Signal::Traces), 2);
    out.clear();
    p.on_tick_at(t0 + ms(1000), &mut out);
    assert!(out.is_empty(), "the remainder arrived 200ms ago");
    p.on_tick_at(t0 + ms(1800), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(span_names(&out[0]), names("b", 6..8));
}

#[test]
fn zero_timeout_passes_batches_through_untouched() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut p, registry) = processor(8192, 0, 0);
    assert_eq!(p.tick_interval(), None);
    let input = traces(vec![
        resource_spans("x", &[("a", 3)], 0),
        resource_spans("y", &[("b", 2)], 10),
    ]);
    let expected = input.payload.clone();
    let mut out = Vec::new();
    p.process_at(
        acked(input, recording_ack(&log, "in")),
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, expected);
    assert_eq!(out[0].meta.acks.len(), 1);
    assert_eq!(p.buffered_items(Signal::Traces), 0);
    assert_eq!(sent(&registry, "size"), Some(1));
    drop(out);
    assert_eq!(done(&log), ["in"]);
}

#[test]
fn zero_timeout_still_splits_to_max_size() {
    let (mut p, _) = processor(0, 4, 0);
    let mut out = Vec::new();
    p.process_at(traces_of("a", 10), Instant::now(), &mut out);
    let sizes: Vec<usize> = out.iter().map(Batch::item_count).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(all_span_names(&out), names("a", 0..10));
    assert_eq!(p.buffered_items(Signal::Traces), 0);
}

#[test]
fn zero_send_batch_size_waits_for_the_timeout() {
    let (mut p, _) = processor(0, 0, 200);
    assert_eq!(p.tick_interval(), Some(ms(200)));
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(traces_of("a", 100_000), t0, &mut out);
    assert!(out.is_empty());
    p.on_tick_at(t0 + ms(200), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].item_count(), 100_000);
}

#[test]
fn signals_are_buffered_separately() {
    let (mut p, registry) = processor(100, 0, 1000);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(traces_of("a", 3), t0, &mut out);
    p.process_at(logs(vec![resource_logs("svc", &[("l", 2)])]), t0, &mut out);
    p.process_at(traces_of("b", 1), t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.buffered_items(Signal::Traces), 4);
    assert_eq!(p.buffered_items(Signal::Logs), 2);
    assert_eq!(p.buffered_items(Signal::Metrics), 0);
    p.flush(&mut out);
    let shape: Vec<(Signal, usize)> = out.iter().map(|b| (b.signal(), b.item_count())).collect();
    assert_eq!(shape, [(Signal::Traces, 4), (Signal::Logs, 2)]);
    assert_eq!(sent(&registry, "shutdown"), Some(2));
    out.clear();
    p.flush(&mut out);
    assert!(out.is_empty(), "a second flush has nothing left");
}

#[test]
fn empty_batches_are_dropped_and_acknowledged() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut p, _) = processor(10, 0, 1000);
    let mut out = Vec::new();
    let empty = traces(vec![resource_spans("svc", &[("a", 0)], 0)]);
    p.process_at(
        acked(empty, recording_ack(&log, "empty")),
        Instant::now(),
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(done(&log), ["empty"]);
    p.flush(&mut out);
    assert!(out.is_empty());
}

#[test]
fn merged_metadata_has_first_source_and_earliest_receive_time() {
    let (mut p, _) = processor(5, 0, 1000);
    let early = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
    let late = SystemTime::UNIX_EPOCH + Duration::from_secs(200);
    let mut a = traces_of("a", 2);
    a.meta = BatchMeta {
        source: Some("otlp".parse().expect("id")),
        received_at: late,
        acks: Vec::new(),
    };
    let mut b = traces_of("b", 3);
    b.meta = BatchMeta {
        source: Some("filelog".parse().expect("id")),
        received_at: early,
        acks: Vec::new(),
    };
    let mut out = Vec::new();
    let t0 = Instant::now();
    p.process_at(a, t0, &mut out);
    p.process_at(b, t0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].meta.source.as_ref().map(|s| s.to_string()),
        Some("otlp".into())
    );
    assert_eq!(out[0].meta.received_at, early);
}

// ---------------------------------------------------------------------------------------------
// Splitting.

#[test]
fn splits_inside_resources_and_scopes_keeping_their_headers() {
    let (mut p, _) = processor(5, 5, 1000);
    let input = resource_spans("svc", &[("a", 7), ("b", 5)], 0);
    let mut out = Vec::new();
    p.process_at(traces(vec![input.clone()]), Instant::now(), &mut out);
    p.flush(&mut out);

    let sizes: Vec<usize> = out.iter().map(Batch::item_count).collect();
    assert_eq!(sizes, [5, 5, 2]);
    assert_eq!(
        all_span_names(&out),
        [names("a", 0..7), names("b", 0..5)].concat()
    );
    let ids: Vec<Vec<u8>> = out
        .iter()
        .flat_map(|b| match &b.payload {
            Payload::Traces(rs) => rs.clone(),
            _ => Vec::new(),
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|s| s.span_id)
        .collect();
    let want_ids: Vec<Vec<u8>> = (0..12u64).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(ids, want_ids);

    // Every part keeps the resource, and each scope fragment its scope and schema URL.
    let scopes_per_part: Vec<Vec<(String, usize)>> = out
        .iter()
        .map(|b| {
            let Payload::Traces(rs) = &b.payload else {
                panic!("traces expected")
            };
            assert_eq!(rs.len(), 1);
            assert_eq!(rs[0].resource, input.resource);
            assert_eq!(rs[0].schema_url, input.schema_url);
            rs[0]
                .scope_spans
                .iter()
                .map(|s| {
                    let name = s.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                    assert_eq!(s.scope, scope(&name));
                    assert_eq!(s.schema_url, format!("https://schema/{name}"));
                    (name, s.spans.len())
                })
                .collect()
        })
        .collect();
    assert_eq!(
        scopes_per_part,
        [
            vec![("a".to_string(), 5)],
            vec![("a".to_string(), 2), ("b".to_string(), 3)],
            vec![("b".to_string(), 2)],
        ]
    );
}

#[test]
fn ten_thousand_spans_split_into_exact_parts() {
    let (mut p, _) = processor(1000, 1000, 0);
    let mut out = Vec::new();
    p.process_at(traces_of("s", 10_000), Instant::now(), &mut out);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|b| b.item_count() == 1000));
    assert_eq!(all_span_names(&out), names("s", 0..10_000));
}

fn number_point(t: u64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: t,
        value: Some(sluice_proto::metrics::v1::number_data_point::Value::AsInt(
            t as i64,
        )),
        ..Default::default()
    }
}

fn metric_of(name: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_string(),
        description: format!("{name} description"),
        unit: "By".to_string(),
        metadata: vec![attr("origin", name)],
        data: Some(data),
    }
}

/// Five metrics of every type; the points' `time_unix_nano` numbers them 0..16 in order.
fn every_metric_type() -> ResourceMetrics {
    let mut t = 0u64;
    let mut next = || {
        t += 1;
        t - 1
    };
    let sum = metric::Data::Sum(Sum {
        data_points: (0..5).map(|_| number_point(next())).collect(),
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: true,
    });
    let histogram = metric::Data::Histogram(Histogram {
        data_points: (0..3)
            .map(|_| HistogramDataPoint {
                time_unix_nano: next(),
                count: 2,
                bucket_counts: vec![1, 1],
                explicit_bounds: vec![10.0],
                ..Default::default()
            })
            .collect(),
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let exponential = metric::Data::ExponentialHistogram(ExponentialHistogram {
        data_points: (0..2)
            .map(|_| ExponentialHistogramDataPoint {
                time_unix_nano: next(),
                scale: 2,
                ..Default::default()
            })
            .collect(),
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let summary = metric::Data::Summary(Summary {
        data_points: (0..3)
            .map(|_| SummaryDataPoint {
                time_unix_nano: next(),
                quantile_values: vec![summary_data_point::ValueAtQuantile {
                    quantile: 0.5,
                    value: 1.0,
                }],
                ..Default::default()
            })
            .collect(),
    });
    let gauge = metric::Data::Gauge(Gauge {
        data_points: (0..3).map(|_| number_point(next())).collect(),
    });
    ResourceMetrics {
        resource: resource("host"),
        scope_metrics: vec![ScopeMetrics {
            scope: scope("hostmetrics"),
            metrics: vec![
                metric_of("sum", sum),
                metric_of("histogram", histogram),
                metric_of("exponential", exponential),
                metric_of("summary", summary),
                metric_of("gauge", gauge),
            ],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// `(metric name, point time)` of every point, in order.
fn metric_points(batch: &Batch) -> Vec<(String, u64)> {
    let Payload::Metrics(rm) = &batch.payload else {
        panic!("metrics expected")
    };
    let mut points = Vec::new();
    for m in rm
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
    {
        let times: Vec<u64> = match &m.data {
            Some(metric::Data::Gauge(g)) => {
                g.data_points.iter().map(|p| p.time_unix_nano).collect()
            }
            Some(metric::Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
            Some(metric::Data::Histogram(h)) => {
                h.data_points.iter().map(|p| p.time_unix_nano).collect()
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                h.data_points.iter().map(|p| p.time_unix_nano).collect()
            }
            Some(metric::Data::Summary(s)) => {
                s.data_points.iter().map(|p| p.time_unix_nano).collect()
            }
            None => Vec::new(),
        };
        points.extend(times.into_iter().map(|t| (m.name.clone(), t)));
    }
    points
}

/// A metric with its points removed: what every fragment of it must keep.
fn metric_header(m: &Metric) -> Metric {
    let mut h = m.clone();
    match h.data.as_mut() {
        Some(metric::Data::Gauge(g)) => g.data_points.clear(),
        Some(metric::Data::Sum(s)) => s.data_points.clear(),
        Some(metric::Data::Histogram(x)) => x.data_points.clear(),
        Some(metric::Data::ExponentialHistogram(x)) => x.data_points.clear(),
        Some(metric::Data::Summary(s)) => s.data_points.clear(),
        None => {}
    }
    h
}

#[test]
fn metrics_split_at_data_points_keeping_every_metric_header() {
    let input = every_metric_type();
    let headers: Vec<Metric> = input.scope_metrics[0]
        .metrics
        .iter()
        .map(metric_header)
        .collect();
    let (mut p, _) = processor(3, 3, 0);
    let mut out = Vec::new();
    p.process_at(
        Batch::new(Payload::Metrics(vec![input.clone()])),
        Instant::now(),
        &mut out,
    );

    let per_part: Vec<Vec<(String, u64)>> = out.iter().map(metric_points).collect();
    let pt = |name: &str, t: u64| (name.to_string(), t);
    assert_eq!(
        per_part,
        [
            vec![pt("sum", 0), pt("sum", 1), pt("sum", 2)],
            vec![pt("sum", 3), pt("sum", 4), pt("histogram", 5)],
            vec![pt("histogram", 6), pt("histogram", 7), pt("exponential", 8)],
            vec![pt("exponential", 9), pt("summary", 10), pt("summary", 11)],
            vec![pt("summary", 12), pt("gauge", 13), pt("gauge", 14)],
            vec![pt("gauge", 15)],
        ]
    );
    for part in &out {
        let Payload::Metrics(rm) = &part.payload else {
            panic!("metrics expected")
        };
        assert_eq!(rm.len(), 1);
        assert_eq!(rm[0].resource, input.resource);
        assert_eq!(rm[0].scope_metrics.len(), 1);
        assert_eq!(rm[0].scope_metrics[0].scope, input.scope_metrics[0].scope);
        for m in &rm[0].scope_metrics[0].metrics {
            let want = headers
                .iter()
                .find(|h| h.name == m.name)
                .expect("known metric");
            assert_eq!(
                &metric_header(m),
                want,
                "header of a fragment of {}",
                m.name
            );
        }
    }
    let total: Vec<(String, u64)> = per_part.concat();
    assert_eq!(
        total,
        metric_points(&Batch::new(Payload::Metrics(vec![input])))
    );
}

fn resource_logs(service: &str, scopes: &[(&str, usize)]) -> ResourceLogs {
    ResourceLogs {
        resource: resource(service),
        scope_logs: scopes
            .iter()
            .map(|(name, n)| ScopeLogs {
                scope: scope(name),
                log_records: (0..*n)
                    .map(|i| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("{name}.{i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
        schema_url: String::new(),
    }
}

fn logs(resources: Vec<ResourceLogs>) -> Batch {
    Batch::new(Payload::Logs(resources))
}

/// `(service, body)` of every log record, in order.
fn log_bodies(batch: &Batch) -> Vec<(String, String)> {
    let Payload::Logs(rl) = &batch.payload else {
        panic!("logs expected")
    };
    let mut v = Vec::new();
    for r in rl {
        let service = match r.resource.as_ref().map(|r| &r.attributes[0].value) {
            Some(Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            })) => s.clone(),
            _ => String::new(),
        };
        for s in &r.scope_logs {
            for l in &s.log_records {
                let body = match &l.body {
                    Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) => s.clone(),
                    _ => String::new(),
                };
                v.push((service.clone(), body));
            }
        }
    }
    v
}

#[test]
fn logs_split_across_resources_keep_their_resource() {
    let (mut p, _) = processor(0, 3, 1000);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process_at(
        logs(vec![
            resource_logs("x", &[("a", 2), ("b", 2)]),
            resource_logs("y", &[("c", 3)]),
        ]),
        t0,
        &mut out,
    );
    assert!(out.is_empty());
    p.on_tick_at(t0 + ms(1000), &mut out);
    let l = |s: &str, b: &str| (s.to_string(), b.to_string());
    let parts: Vec<Vec<(String, String)>> = out.iter().map(log_bodies).collect();
    assert_eq!(
        parts,
        [
            vec![l("x", "a.0"), l("x", "a.1"), l("x", "b.0")],
            vec![l("x", "b.1"), l("y", "c.0"), l("y", "c.1")],
            vec![l("y", "c.2")],
        ]
    );
}

/// A deterministic pseudo-random sequence (no dependency needed for a test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn nothing_lost_duplicated_or_acknowledged_early() {
    for (size, max, seed) in [(10, 0, 1), (10, 10, 2), (7, 25, 3), (0, 6, 4), (30, 31, 5)] {
        let fired = Arc::new(Mutex::new(Vec::new()));
        let (mut p, _) = processor(size, max, 1000);
        let mut rng = Lcg(seed);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut want = Vec::new();
        let inputs = 60;
        for k in 0..inputs {
            let resources: Vec<ResourceSpans> = (0..1 + rng.below(3))
                .map(|r| {
                    let scopes: Vec<(String, usize)> = (0..1 + rng.below(3))
                        .map(|s| (format!("in{k}-r{r}-s{s}"), rng.below(9) as usize))
                        .collect();
                    let scopes: Vec<(&str, usize)> =
                        scopes.iter().map(|(n, c)| (n.as_str(), *c)).collect();
                    resource_spans("svc", &scopes, 0)
                })
                .collect();
            let batch = traces(resources);
            want.extend(span_names(&batch));
            let batch = acked(batch, recording_ack(&fired, &k.to_string()));
            p.process_at(batch, t0 + ms(k * 100), &mut out);
            if k % 10 == 9 {
                p.on_tick_at(t0 + ms(k * 100), &mut out);
            }
        }
        p.flush(&mut out);

        let case = format!("size {size}, max {max}");
        assert_eq!(all_span_names(&out), want, "{case}");
        for b in &out {
            assert!(b.item_count() > 0, "{case}: no empty batch");
            if max > 0 {
                assert!(b.item_count() <= max, "{case}: {} > max", b.item_count());
            }
        }
        // Which inputs each output holds items of; its acks are exactly theirs.
        let input_of = |name: &str| -> usize {
            name.trim_start_matches("in")
                .split('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("span name carries its input")
        };
        let holds: Vec<Vec<usize>> = out
            .iter()
            .map(|b| {
                let mut ks: Vec<usize> = span_names(b).iter().map(|n| input_of(n)).collect();
                ks.dedup();
                ks
            })
            .collect();
        for (b, ks) in out.iter().zip(&holds) {
            assert_eq!(b.meta.acks.len(), ks.len(), "{case}");
        }
        // An input is acknowledged when, and only when, the last output holding it is gone.
        let last_holder = |k: usize| holds.iter().rposition(|ks| ks.contains(&k));
        let mut out = out.into_iter();
        let mut dropped = 0;
        loop {
            let mut acked: Vec<usize> = fired
                .lock()
                .expect("ack log")
                .iter()
                .map(|(n, _)| n.parse().expect("index"))
                .collect();
            acked.sort();
            let expect: Vec<usize> = (0..inputs as usize)
                .filter(|k| last_holder(*k).is_none_or(|i| i < dropped))
                .collect();
            assert_eq!(acked, expect, "{case}, after dropping {dropped} outputs");
            match out.next() {
                Some(b) => drop(b),
                None => break,
            }
            dropped += 1;
        }
    }
}
