use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use sluice_pipeline::config::{decode_str, node::parse_yaml};
use sluice_pipeline::factory::ExporterFactory;
use sluice_pipeline::{Batch, ExportError, Payload};
use sluice_proto::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

use super::text::{timestamp, typed_value, value_text};
use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures.

const T_START: u64 = 1_581_452_772_000_000_321; // 2020-02-11 20:26:12.000000321 UTC
const T_END: u64 = 1_581_452_773_000_000_789;
const T_EVENT: u64 = 1_581_452_773_000_000_123;
const TRACE_ID: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const SPAN_A: [u8; 8] = [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
const SPAN_B: [u8; 8] = [0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28];

fn value(v: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value(v),
        ..Default::default()
    }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

fn scope(name: &str, version: &str, attributes: Vec<KeyValue>) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_string(),
        version: version.to_string(),
        attributes,
        ..Default::default()
    })
}

fn traces() -> Payload {
    let cart = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_A.to_vec(),
        name: "GET /cart".to_string(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: T_START,
        end_time_unix_nano: T_END,
        attributes: vec![s("http.method", "GET"), i("http.status_code", 500)],
        events: vec![span::Event {
            time_unix_nano: T_EVENT,
            name: "exception".to_string(),
            attributes: vec![s("exception.message", "bad thing")],
            ..Default::default()
        }],
        links: vec![span::Link {
            trace_id: TRACE_ID.to_vec(),
            span_id: SPAN_B.to_vec(),
            trace_state: "ot=th:0".to_string(),
            attributes: vec![s("link.kind", "follows")],
            ..Default::default()
        }],
        status: Some(Status {
            message: "boom".to_string(),
            code: status::StatusCode::Error as i32,
        }),
        ..Default::default()
    };
    let query = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_B.to_vec(),
        parent_span_id: SPAN_A.to_vec(),
        name: "db query".to_string(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: 1_581_452_772_500_000_000,
        end_time_unix_nano: 1_581_452_772_750_000_000,
        dropped_attributes_count: 2,
        ..Default::default()
    };
    Payload::Traces(vec![ResourceSpans {
        resource: resource(vec![s("service.name", "checkout"), i("host.cpus", 4)]),
        scope_spans: vec![ScopeSpans {
            scope: scope(
                "io.sluice.test",
                "1.2.0",
                vec![kv("lib.flag", any_value::Value::BoolValue(true))],
            ),
            spans: vec![cart, query],
            schema_url: String::new(),
        }],
        schema_url: "https://opentelemetry.io/schemas/1.21.0".to_string(),
    }])
}

fn metric_of(name: &str, description: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

fn number(attributes: Vec<KeyValue>, v: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: T_START,
        time_unix_nano: T_END,
        value: Some(v),
        ..Default::default()
    }
}

fn metrics() -> Payload {
    let cpu = metric_of(
        "system.cpu.time",
        "CPU time",
        "s",
        metric::Data::Sum(Sum {
            data_points: vec![
                number(
                    vec![s("cpu", "0"), s("state", "user")],
                    number_data_point::Value::AsDouble(12.5),
                ),
                number(
                    vec![s("cpu", "0"), s("state", "system")],
                    number_data_point::Value::AsInt(3),
                ),
            ],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
    );
    let duration = metric_of(
        "http.duration",
        "",
        "ms",
        metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: vec![s("route", "/cart")],
                start_time_unix_nano: T_START,
                time_unix_nano: T_END,
                count: 3,
                sum: Some(15.0),
                bucket_counts: vec![1, 1, 1],
                explicit_bounds: vec![5.0, 10.0],
                exemplars: vec![Exemplar {
                    filtered_attributes: vec![s("user", "alice")],
                    time_unix_nano: T_EVENT,
                    span_id: SPAN_A.to_vec(),
                    trace_id: TRACE_ID.to_vec(),
                    value: Some(exemplar::Value::AsDouble(10.0)),
                }],
                min: Some(1.0),
                max: Some(10.0),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    );
    let exponential = metric_of(
        "latency.exp",
        "",
        "ms",
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                start_time_unix_nano: T_START,
                time_unix_nano: T_END,
                count: 5,
                sum: Some(0.15),
                scale: 1,
                zero_count: 1,
                positive: Some(exponential_histogram_data_point::Buckets {
                    offset: 1,
                    bucket_counts: vec![1, 1],
                }),
                negative: Some(exponential_histogram_data_point::Buckets {
                    offset: -1,
                    bucket_counts: vec![1, 1],
                }),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    );
    let summary = metric_of(
        "rpc.summary",
        "",
        "ms",
        metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                start_time_unix_nano: T_START,
                time_unix_nano: T_END,
                count: 1,
                sum: 15.0,
                quantile_values: vec![summary_data_point::ValueAtQuantile {
                    quantile: 0.01,
                    value: 15.0,
                }],
                ..Default::default()
            }],
        }),
    );
    let mut queue = metric_of(
        "queue.size",
        "",
        "{items}",
        metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                value: Some(number_data_point::Value::AsInt(7)),
                ..Default::default()
            }],
        }),
    );
    queue.metadata = vec![s("origin", "test")];
    Payload::Metrics(vec![ResourceMetrics {
        resource: resource(vec![s("host.name", "box")]),
        scope_metrics: vec![ScopeMetrics {
            scope: scope("hostmetrics", "", Vec::new()),
            metrics: vec![cpu, duration, exponential, summary, queue],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }])
}

fn logs() -> Payload {
    let first = LogRecord {
        time_unix_nano: T_END,
        severity_number: 9,
        severity_text: "Info".to_string(),
        body: value(any_value::Value::StringValue(
            "This is a log message".to_string(),
        )),
        attributes: vec![s("app", "server"), i("instance_num", 1)],
        trace_id: vec![8, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        span_id: vec![1, 2, 4, 8, 0, 0, 0, 0],
        ..Default::default()
    };
    let second = LogRecord {
        severity_number: 17,
        body: value(any_value::Value::StringValue(
            "line one\nline two".to_string(),
        )),
        event_name: "crash".to_string(),
        attributes: vec![
            kv(
                "tags",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::StringValue("a".to_string())),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(any_value::Value::BoolValue(true)),
                        },
                    ],
                }),
            ),
            kv(
                "ctx",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![
                        s("k", "v \"q\""),
                        kv("n", any_value::Value::DoubleValue(1.5)),
                    ],
                }),
            ),
            kv("raw", any_value::Value::BytesValue(vec![0xde, 0xad])),
        ],
        ..Default::default()
    };
    Payload::Logs(vec![ResourceLogs {
        resource: resource(vec![s("service.name", "api")]),
        scope_logs: vec![ScopeLogs {
            scope: scope("app", "", Vec::new()),
            log_records: vec![first, second, LogRecord::default()],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }])
}

fn format(payload: &Payload, verbosity: Verbosity) -> String {
    let mut out = String::new();
    format_batch(payload, verbosity, &mut out);
    out
}

/// The lines, each ended by a newline.
fn lines(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn default_config_is_basic() {
    assert_eq!(DebugExporterConfig::default().verbosity, Verbosity::Basic);
    assert_eq!(
        decode_str::<DebugExporterConfig>("").expect("empty config"),
        DebugExporterConfig::default()
    );
}

#[test]
fn good_config_decodes_whole() {
    let c: DebugExporterConfig =
        decode_str(include_str!("testdata/config.yaml")).expect("good config");
    assert_eq!(
        c,
        DebugExporterConfig {
            verbosity: Verbosity::Detailed
        }
    );
}

#[test]
fn typo_config_names_key_and_line() {
    sluice_pipeline::testing::assert_misspelt_key::<DebugExporterConfig>(
        include_str!("testdata/typo_config.yaml"),
        "verbosty",
        2,
    );
}

#[test]
fn unknown_verbosity_lists_the_valid_ones() {
    let e = decode_str::<DebugExporterConfig>(include_str!("testdata/bad_verbosity.yaml"))
        .expect_err("bad verbosity must fail");
    assert_eq!(e[0].key_path(), "verbosity");
    assert_eq!(e[0].mark.as_ref().map(|m| m.line), Some(1));
    assert!(
        e[0].message
            .contains("unknown variant `loud`, expected one of `basic`, `normal`, `detailed`"),
        "{}",
        e[0]
    );
}

#[test]
fn never_retries_and_keeps_order() {
    let d = DebugExporterFactory::delivery(&DebugExporterConfig::default());
    assert!(!d.retry_on_failure.enabled);
    assert_eq!(d.sending_queue.num_consumers, 1);
    assert_eq!(d.sending_queue.queue_size, 100);
    assert!(!d.sending_queue.block_on_overflow);
    assert_eq!(d.validate(), Ok(()));

    let node = parse_yaml(DebugExporterFactory::EXAMPLE, "example").expect("yaml");
    assert!(DebugExporterFactory.parse_config(&node).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Text pieces.

#[test]
fn timestamps_print_as_go_prints_utc_times() {
    let ts = |n: u64| {
        let mut s = String::new();
        timestamp(&mut s, n);
        s
    };
    assert_eq!(ts(T_START), "2020-02-11 20:26:12.000000321 +0000 UTC");
    assert_eq!(ts(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(ts(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
    assert_eq!(ts(951_782_400_000_000_000), "2000-02-29 00:00:00 +0000 UTC");
    assert_eq!(
        ts(951_868_799_999_999_999),
        "2000-02-29 23:59:59.999999999 +0000 UTC"
    );
    assert_eq!(
        ts(4_107_542_400_000_000_000),
        "2100-03-01 00:00:00 +0000 UTC"
    );
    assert_eq!(ts(u64::MAX), "2554-07-21 23:34:33.709551615 +0000 UTC");
}

#[test]
fn any_values_render_readably() {
    let typed = |v: Option<AnyValue>| {
        let mut s = String::new();
        typed_value(&mut s, v.as_ref());
        s
    };
    let text = |v: Option<AnyValue>| {
        let mut s = String::new();
        value_text(&mut s, v.as_ref());
        s
    };
    use any_value::Value as V;
    assert_eq!(typed(value(V::StringValue("a b".into()))), "Str(a b)");
    assert_eq!(typed(value(V::IntValue(-3))), "Int(-3)");
    assert_eq!(typed(value(V::DoubleValue(3.0))), "Double(3)");
    assert_eq!(typed(value(V::DoubleValue(0.1))), "Double(0.1)");
    assert_eq!(typed(value(V::DoubleValue(f64::INFINITY))), "Double(+Inf)");
    assert_eq!(typed(value(V::BoolValue(false))), "Bool(false)");
    assert_eq!(
        typed(value(V::BytesValue(vec![0, 0xff, 0x10]))),
        "Bytes(00ff10)"
    );
    assert_eq!(typed(None), "Empty()");
    assert_eq!(typed(Some(AnyValue { value: None })), "Empty()");
    let nested = V::KvlistValue(KeyValueList {
        values: vec![
            kv(
                "list",
                V::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue { value: None },
                        AnyValue {
                            value: Some(V::BytesValue(vec![0xab])),
                        },
                        AnyValue {
                            value: Some(V::StringValue("tab\there".into())),
                        },
                    ],
                }),
            ),
            KeyValue {
                key: "quote\"d".into(),
                value: None,
                ..Default::default()
            },
        ],
    });
    assert_eq!(
        typed(value(nested.clone())),
        r#"Map({"list":[null,"ab","tab\there"],"quote\"d":null})"#
    );
    assert_eq!(
        text(value(nested)),
        r#"{"list":[null,"ab","tab\there"],"quote\"d":null}"#
    );
    assert_eq!(text(value(V::StringValue("raw \"s\"".into()))), "raw \"s\"");
    assert_eq!(text(value(V::BytesValue(vec![0xca, 0xfe]))), "cafe");
}

// ---------------------------------------------------------------------------------------------
// Verbosity levels.

#[test]
fn basic_is_one_line_per_batch() {
    assert_eq!(
        format(&traces(), Verbosity::Basic),
        "Traces: resource spans: 1, spans: 2\n"
    );
    assert_eq!(
        format(&metrics(), Verbosity::Basic),
        "Metrics: resource metrics: 1, metrics: 5, data points: 6\n"
    );
    assert_eq!(
        format(&logs(), Verbosity::Basic),
        "Logs: resource logs: 1, log records: 3\n"
    );
    assert_eq!(
        format(&Payload::Traces(Vec::new()), Verbosity::Detailed),
        "Traces: resource spans: 0, spans: 0\n"
    );
}

#[test]
fn normal_traces_one_line_per_span() {
    assert_eq!(
        format(&traces(), Verbosity::Normal),
        lines(&[
            "Traces: resource spans: 1, spans: 2",
            "ResourceSpans #0 service.name=checkout host.cpus=4",
            "ScopeSpans #0 io.sluice.test@1.2.0 lib.flag=true",
            "GET /cart 0102030405060708090a0b0c0d0e0f10 1112131415161718 http.method=GET http.status_code=500",
            "db query 0102030405060708090a0b0c0d0e0f10 2122232425262728",
        ])
    );
}

#[test]
fn normal_metrics_one_line_per_data_point() {
    assert_eq!(
        format(&metrics(), Verbosity::Normal),
        lines(&[
            "Metrics: resource metrics: 1, metrics: 5, data points: 6",
            "ResourceMetrics #0 host.name=box",
            "ScopeMetrics #0 hostmetrics",
            "system.cpu.time{cpu=0,state=user} 12.5",
            "system.cpu.time{cpu=0,state=system} 3",
            "http.duration{route=/cart} count=3 sum=15 min=1 max=10 le5=1 le10=1 le+Inf=1",
            "latency.exp{} count=5 sum=0.15 scale=1 zero_count=1 positive_offset=1 positive=[1,1] negative_offset=-1 negative=[1,1]",
            "rpc.summary{} count=1 sum=15 q0.01=15",
            "queue.size{} 7",
        ])
    );
}

#[test]
fn normal_logs_one_line_per_record() {
    assert_eq!(
        format(&logs(), Verbosity::Normal),
        lines(&[
            "Logs: resource logs: 1, log records: 3",
            "ResourceLog #0 service.name=api",
            "ScopeLogs #0 app",
            "Info This is a log message app=server instance_num=1",
            r#"Error line one\nline two tags=["a",1,true] ctx={"k":"v \"q\"","n":1.5} raw=dead"#,
            "Unspecified",
        ])
    );
}

#[test]
fn detailed_traces_as_the_collector() {
    assert_eq!(
        format(&traces(), Verbosity::Detailed),
        lines(&[
            "Traces: resource spans: 1, spans: 2",
            "ResourceSpans #0",
            "Resource SchemaURL: https://opentelemetry.io/schemas/1.21.0",
            "Resource attributes:",
            "     -> service.name: Str(checkout)",
            "     -> host.cpus: Int(4)",
            "ScopeSpans #0",
            "InstrumentationScope io.sluice.test 1.2.0",
            "InstrumentationScope attributes:",
            "     -> lib.flag: Bool(true)",
            "Span #0",
            "    Trace ID       : 0102030405060708090a0b0c0d0e0f10",
            "    Parent ID      :",
            "    ID             : 1112131415161718",
            "    Name           : GET /cart",
            "    Kind           : Server",
            "    Start time     : 2020-02-11 20:26:12.000000321 +0000 UTC",
            "    End time       : 2020-02-11 20:26:13.000000789 +0000 UTC",
            "    Status code    : Error",
            "    Status message : boom",
            "Attributes:",
            "     -> http.method: Str(GET)",
            "     -> http.status_code: Int(500)",
            "Events:",
            "SpanEvent #0",
            "     -> Name: exception",
            "     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC",
            "     -> DroppedAttributesCount: 0",
            "     -> Attributes:",
            "          -> exception.message: Str(bad thing)",
            "Links:",
            "SpanLink #0",
            "     -> Trace ID: 0102030405060708090a0b0c0d0e0f10",
            "     -> ID: 2122232425262728",
            "     -> TraceState: ot=th:0",
            "     -> DroppedAttributesCount: 0",
            "     -> Attributes:",
            "          -> link.kind: Str(follows)",
            "Span #1",
            "    Trace ID       : 0102030405060708090a0b0c0d0e0f10",
            "    Parent ID      : 1112131415161718",
            "    ID             : 2122232425262728",
            "    Name           : db query",
            "    Kind           : Client",
            "    Start time     : 2020-02-11 20:26:12.5 +0000 UTC",
            "    End time       : 2020-02-11 20:26:12.75 +0000 UTC",
            "    Status code    : Unset",
            "    Status message :",
            "    DroppedAttributesCount: 2",
        ])
    );
}

#[test]
fn detailed_metrics_as_the_collector() {
    assert_eq!(
        format(&metrics(), Verbosity::Detailed),
        lines(&[
            "Metrics: resource metrics: 1, metrics: 5, data points: 6",
            "ResourceMetrics #0",
            "Resource attributes:",
            "     -> host.name: Str(box)",
            "ScopeMetrics #0",
            "InstrumentationScope hostmetrics",
            "Metric #0",
            "Descriptor:",
            "     -> Name: system.cpu.time",
            "     -> Description: CPU time",
            "     -> Unit: s",
            "     -> DataType: Sum",
            "     -> IsMonotonic: true",
            "     -> AggregationTemporality: Cumulative",
            "NumberDataPoints #0",
            "Data point attributes:",
            "     -> cpu: Str(0)",
            "     -> state: Str(user)",
            "StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC",
            "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
            "Value: 12.500000",
            "NumberDataPoints #1",
            "Data point attributes:",
            "     -> cpu: Str(0)",
            "     -> state: Str(system)",
            "StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC",
            "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
            "Value: 3",
            "Metric #1",
            "Descriptor:",
            "     -> Name: http.duration",
            "     -> Description:",
            "     -> Unit: ms",
            "     -> DataType: Histogram",
            "     -> AggregationTemporality: Delta",
            "HistogramDataPoints #0",
            "Data point attributes:",
            "     -> route: Str(/cart)",
            "StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC",
            "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
            "Count: 3",
            "Sum: 15.000000",
            "Min: 1.000000",
            "Max: 10.000000",
            "ExplicitBounds #0: 5.000000",
            "ExplicitBounds #1: 10.000000",
            "Buckets #0, Count: 1",
            "Buckets #1, Count: 1",
            "Buckets #2, Count: 1",
            "Exemplars:",
            "Exemplar #0",
            "     -> Trace ID: 0102030405060708090a0b0c0d0e0f10",
            "     -> Span ID: 1112131415161718",
            "     -> Timestamp: 2020-02-11 20:26:13.000000123 +0000 UTC",
            "     -> Value: 10.000000",
            "     -> FilteredAttributes:",
            "          -> user: Str(alice)",
            "Metric #2",
            "Descriptor:",
            "     -> Name: latency.exp",
            "     -> Description:",
            "     -> Unit: ms",
            "     -> DataType: ExponentialHistogram",
            "     -> AggregationTemporality: Delta",
            "ExponentialHistogramDataPoints #0",
            "StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC",
            "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
            "Count: 5",
            "Sum: 0.150000",
            "Bucket [-1.414214, -1.000000), Count: 1",
            "Bucket [-1.000000, -0.707107), Count: 1",
            "Bucket [0, 0], Count: 1",
            "Bucket (1.414214, 2.000000], Count: 1",
            "Bucket (2.000000, 2.828427], Count: 1",
            "Metric #3",
            "Descriptor:",
            "     -> Name: rpc.summary",
            "     -> Description:",
            "     -> Unit: ms",
            "     -> DataType: Summary",
            "SummaryDataPoints #0",
            "StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC",
            "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
            "Count: 1",
            "Sum: 15.000000",
            "QuantileValue #0: Quantile 0.010000, Value 15.000000",
            "Metric #4",
            "Descriptor:",
            "     -> Name: queue.size",
            "     -> Description:",
            "     -> Unit: {items}",
            "     -> DataType: Gauge",
            "Metadata:",
            "     -> origin: Str(test)",
            "NumberDataPoints #0",
            "StartTimestamp: 1970-01-01 00:00:00 +0000 UTC",
            "Timestamp: 1970-01-01 00:00:00 +0000 UTC",
            "Value: 7",
        ])
    );
}

#[test]
fn detailed_logs_as_the_collector() {
    assert_eq!(
        format(&logs(), Verbosity::Detailed),
        lines(&[
            "Logs: resource logs: 1, log records: 3",
            "ResourceLog #0",
            "Resource attributes:",
            "     -> service.name: Str(api)",
            "ScopeLogs #0",
            "InstrumentationScope app",
            "LogRecord #0",
            "ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC",
            "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
            "SeverityText: Info",
            "SeverityNumber: Info(9)",
            "Body: Str(This is a log message)",
            "Attributes:",
            "     -> app: Str(server)",
            "     -> instance_num: Int(1)",
            "Trace ID: 08040201000000000000000000000000",
            "Span ID: 0102040800000000",
            "Flags: 0",
            "LogRecord #1",
            "ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC",
            "Timestamp: 1970-01-01 00:00:00 +0000 UTC",
            "SeverityText:",
            "SeverityNumber: Error(17)",
            "EventName: crash",
            "Body: Str(line one\nline two)",
            "Attributes:",
            r#"     -> tags: Slice(["a",1,true])"#,
            r#"     -> ctx: Map({"k":"v \"q\"","n":1.5})"#,
            "     -> raw: Bytes(dead)",
            "Trace ID:",
            "Span ID:",
            "Flags: 0",
            "LogRecord #2",
            "ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC",
            "Timestamp: 1970-01-01 00:00:00 +0000 UTC",
            "SeverityText:",
            "SeverityNumber: Unspecified(0)",
            "Body: Empty()",
            "Trace ID:",
            "Span ID:",
            "Flags: 0",
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// The exporter.

/// Records every `write` call separately, so a test sees how the output was cut.
#[derive(Clone, Default)]
struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for Writes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            self.0.lock().expect("writes").push(buf.to_vec());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Writes {
    fn texts(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("writes")
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }
}

fn exporter(verbosity: Verbosity, writer: Box<dyn Write + Send>) -> Arc<DebugExporter> {
    Arc::new(DebugExporter::with_writer(
        &DebugExporterConfig { verbosity },
        writer,
    ))
}

#[tokio::test]
async fn export_writes_the_formatted_batch() {
    use sluice_pipeline::factory::Exporter;
    let writes = Writes::default();
    let e = exporter(Verbosity::Normal, Box::new(writes.clone()));
    e.export(&Batch::new(logs())).await.expect("export");
    e.shutdown().await.expect("shutdown");
    assert_eq!(writes.texts(), [format(&logs(), Verbosity::Normal)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_exports_write_each_batch_at_once() {
    use sluice_pipeline::factory::Exporter;
    let writes = Writes::default();
    let e = exporter(Verbosity::Detailed, Box::new(writes.clone()));
    let payloads = [traces(), metrics(), logs()];
    let tasks: Vec<_> = (0..12)
        .map(|k| {
            let e = e.clone();
            let batch = Batch::new(payloads[k % 3].clone());
            tokio::spawn(async move { e.export(&batch).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("export");
    }
    let mut got = writes.texts();
    got.sort();
    let mut want: Vec<String> = (0..12)
        .map(|k| format(&payloads[k % 3], Verbosity::Detailed))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_write_is_permanent() {
    use sluice_pipeline::factory::Exporter;
    let e = exporter(Verbosity::Basic, Box::new(Broken));
    let err = e
        .export(&Batch::new(traces()))
        .await
        .expect_err("must fail");
    assert_eq!(
        err,
        ExportError::permanent("cannot write to the debug exporter's output: pipe closed")
    );
}
