//! Tests of the `otlp` receiver: config files, and a real server on 127.0.0.1:0 fed by the
//! Rust `opentelemetry-otlp` exporters, tonic clients, hand-written JSON and raw HTTP/1.1
//! requests (bad input, size limits, a full pipeline).

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use prost::Message;
use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::{ComponentContext, Endpoints, ReceiverPlugin, ReceiverRunContext};
use sluice_pipeline::runtime::fanout::{Output, Outputs, PipelineInput};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{
    Batch, CancellationToken, ComponentId, Kind, Payload, ReceiverError, Signal, Validate,
};
use sluice_proto::collector::trace::v1::{
    trace_service_client::TraceServiceClient, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use sluice_proto::common::v1::{any_value, AnyValue, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs};
use sluice_proto::metrics::v1::{metric, number_data_point, Metric, ResourceMetrics};
use sluice_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{
    OtlpGrpcConfig, OtlpHttpConfig, OtlpProtocols, OtlpReceiverConfig, OtlpReceiverFactory,
    RpcStatus, BAD_REQUESTS_COUNTER,
};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/otlp/testdata");
const TRACE_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn config_file_decodes_whole() {
    let yaml = fs::read_to_string(Path::new(TESTDATA).join("config.yaml")).expect("config.yaml");
    let config: OtlpReceiverConfig = decode_str(&yaml).expect("a valid config");
    assert_eq!(
        config,
        OtlpReceiverConfig {
            protocols: OtlpProtocols {
                grpc: Some(OtlpGrpcConfig {
                    endpoint: "0.0.0.0:14317".into(),
                    max_recv_msg_size_mib: 16,
                }),
                http: Some(OtlpHttpConfig {
                    endpoint: "[::1]:14318".into(),
                    max_request_body_size: 1_048_576,
                }),
            },
        }
    );
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn omitted_protocols_mean_both_with_defaults() {
    let config: OtlpReceiverConfig = decode_str("").expect("an empty config");
    assert_eq!(config, OtlpReceiverConfig::default());
    let grpc = config.protocols.grpc.expect("grpc on");
    let http = config.protocols.http.expect("http on");
    assert_eq!(grpc.endpoint, "127.0.0.1:4317");
    assert_eq!(grpc.max_recv_msg_size_mib, 4);
    assert_eq!(http.endpoint, "127.0.0.1:4318");
    assert_eq!(http.max_request_body_size, 20_971_520);
    let example: OtlpReceiverConfig =
        decode_str(<OtlpReceiverFactory as ReceiverPlugin>::EXAMPLE).expect("the example");
    assert_eq!(example.validate(), Ok(()));
}

#[test]
fn only_listed_protocols_run_and_an_empty_one_gets_defaults() {
    let config: OtlpReceiverConfig = decode_str("protocols:\n  grpc:\n").expect("decodes");
    assert_eq!(config.protocols.grpc, Some(OtlpGrpcConfig::default()));
    assert_eq!(config.protocols.http, None);
    let config: OtlpReceiverConfig = decode_str("protocols:\n  http: {}\n").expect("decodes");
    assert_eq!(config.protocols.grpc, None);
    assert_eq!(config.protocols.http, Some(OtlpHttpConfig::default()));
}

#[test]
fn misspelt_key_is_named_with_its_line() {
    sluice_pipeline::testing::assert_misspelt_key::<OtlpReceiverConfig>(
        &fs::read_to_string(Path::new(TESTDATA).join("typo_config.yaml"))
            .expect("typo_config.yaml"),
        "protocols::grpc::endpiont",
        3,
    );
}

#[test]
fn validation_names_the_key() {
    let none: OtlpReceiverConfig = decode_str("protocols: {}\n").expect("decodes");
    assert_eq!(none.validate().expect_err("no protocol").key, "protocols");
    for bad in [
        "localhost",
        "127.0.0.1:http",
        ":4317",
        "::1:4317",
        "host:70000",
    ] {
        let config = OtlpReceiverConfig {
            protocols: OtlpProtocols {
                grpc: None,
                http: Some(OtlpHttpConfig {
                    endpoint: bad.into(),
                    ..Default::default()
                }),
            },
        };
        let err = config.validate().expect_err(bad);
        assert_eq!(err.key, "protocols::http::endpoint", "{bad}");
    }
    let zero: OtlpReceiverConfig =
        decode_str("protocols:\n  grpc:\n    max_recv_msg_size_mib: 0\n").expect("decodes");
    assert_eq!(
        zero.validate().expect_err("zero size").key,
        "protocols::grpc::max_recv_msg_size_mib"
    );
}

// ---------------------------------------------------------------------------------------------
// A running receiver.

struct Running {
    grpc: SocketAddr,
    http: SocketAddr,
    traces: mpsc::Receiver<Batch>,
    metrics: mpsc::Receiver<Batch>,
    logs: mpsc::Receiver<Batch>,
    telemetry: std::sync::Arc<Telemetry>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ReceiverError>>,
}

impl Running {
    fn bad_requests(&self) -> i64 {
        self.telemetry
            .value(BAD_REQUESTS_COUNTER, &[("receiver", "otlp")])
            .unwrap_or(0)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = self.task.await.expect("receiver task panicked");
        result.expect("receiver stopped cleanly");
    }
}

struct Options {
    signals: Vec<Signal>,
    capacity: usize,
    wait: Duration,
    max_body: u64,
    max_msg_mib: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            signals: Signal::ALL.to_vec(),
            capacity: 64,
            wait: Duration::from_secs(5),
            max_body: 20 * 1024 * 1024,
            max_msg_mib: 4,
        }
    }
}

async fn start(options: Options) -> Running {
    let config = OtlpReceiverConfig {
        protocols: OtlpProtocols {
            grpc: Some(OtlpGrpcConfig {
                endpoint: "127.0.0.1:0".into(),
                max_recv_msg_size_mib: options.max_msg_mib,
            }),
            http: Some(OtlpHttpConfig {
                endpoint: "127.0.0.1:0".into(),
                max_request_body_size: options.max_body,
            }),
        },
    };
    let id = ComponentId::new("otlp", None).expect("id");
    let telemetry = Telemetry::new();
    let tel = ComponentTelemetry::new(telemetry.clone(), Kind::Receiver, &id);
    let endpoints = Endpoints::default();
    let ctx = ComponentContext::new(
        id.clone(),
        Kind::Receiver,
        options.signals.clone(),
        tel.clone(),
        std::env::temp_dir(),
        endpoints.clone(),
    );
    let mut receiver = OtlpReceiverFactory.build(config, ctx).expect("builds");
    receiver.start().await.expect("starts");
    let mut outputs = Outputs::default();
    let mut channel = |signal: Signal| {
        let (tx, rx) = mpsc::channel(options.capacity);
        if options.signals.contains(&signal) {
            let pid = signal.as_str().parse().expect("pipeline id");
            outputs.insert(
                Output::new(signal, id.clone(), vec![PipelineInput::new(pid, tx)], &tel)
                    .with_wait(options.wait),
            );
        }
        rx
    };
    let (traces, metrics, logs) = (
        channel(Signal::Traces),
        channel(Signal::Metrics),
        channel(Signal::Logs),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(receiver.run(ReceiverRunContext {
        shutdown: shutdown.clone(),
        outputs,
    }));
    Running {
        grpc: endpoints.get(&id, "grpc").expect("grpc endpoint reported"),
        http: endpoints.get(&id, "http").expect("http endpoint reported"),
        traces,
        metrics,
        logs,
        telemetry,
        shutdown,
        task,
    }
}

async fn next(rx: &mut mpsc::Receiver<Batch>) -> Payload {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a batch arrives")
        .expect("channel open")
        .payload
}

/// A raw HTTP/1.1 exchange: status, lower-cased headers, body.
struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpReply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    // The server may answer (413) before reading everything; the answer is what counts.
    let _ = stream.write_all(&request).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn one_span_request(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: name.into(),
                    attributes: vec![string_kv("k", "v")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn spans_of(payload: Payload) -> Vec<ResourceSpans> {
    match payload {
        Payload::Traces(t) => t,
        other => panic!("expected traces, got {:?}", other.signal()),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

async fn grpc_channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("gRPC connect")
}

/// A message that is not a valid export request: field 1 (resource_spans) holding bytes that
/// are not a `ResourceSpans`.
#[derive(Clone, PartialEq, prost::Message)]
struct Garbage {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

async fn grpc_raw(addr: SocketAddr, message: Garbage) -> tonic::Status {
    let mut client = tonic::client::Grpc::new(grpc_channel(addr).await);
    client.ready().await.expect("ready");
    client
        .unary::<_, ExportTraceServiceResponse, _>(
            tonic::Request::new(message),
            http::uri::PathAndQuery::from_static(TRACE_PATH),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("the request is refused")
}

// ---------------------------------------------------------------------------------------------
// Good data.

#[tokio::test]
async fn grpc_and_http_protobuf_requests_arrive_intact() {
    let mut r = start(Options::default()).await;
    let mut client = TraceServiceClient::new(grpc_channel(r.grpc).await)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let request = one_span_request("over-grpc");
    let response = client.export(request.clone()).await.expect("exported");
    assert_eq!(response.into_inner(), ExportTraceServiceResponse::default());
    assert_eq!(spans_of(next(&mut r.traces).await), request.resource_spans);

    let request = one_span_request("over-http");
    let reply = post(
        r.http,
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        &request.encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(
        ExportTraceServiceResponse::decode(&reply.body[..]).expect("a response"),
        ExportTraceServiceResponse::default()
    );
    assert_eq!(spans_of(next(&mut r.traces).await), request.resource_spans);

    let request = one_span_request("over-http-gzip");
    let reply = post(
        r.http,
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&request.encode_to_vec()),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(spans_of(next(&mut r.traces).await), request.resource_spans);

    // An empty request is accepted and forwards nothing.
    let reply = post(
        r.http,
        "/v1/traces",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"{}");
    assert!(r.traces.try_recv().is_err());
    assert_eq!(r.bad_requests(), 0);
    r.stop().await;
}

#[tokio::test]
async fn hand_written_json_is_decoded_exactly() {
    let mut r = start(Options::default()).await;
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-svc"}}]},
      "scopeSpans":[{"scope":{"name":"json-scope","version":"1.0"},
        "spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "parentSpanId":"eee19b7ec3c1b173","name":"json-span","kind":2,
          "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
          "attributes":[{"key":"count","value":{"intValue":"42"}},
                        {"key":"ratio","value":{"doubleValue":0.5}},
                        {"key":"ok","value":{"boolValue":true}}],
          "status":{"code":2,"message":"boom"}}]}]}]}"#;
    let reply = post(
        r.http,
        "/v1/traces",
        &[("Content-Type", "application/json; charset=utf-8")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let spans = spans_of(next(&mut r.traces).await);
    let resource = spans[0].resource.as_ref().expect("resource");
    assert_eq!(
        resource.attributes,
        vec![string_kv("service.name", "json-svc")]
    );
    let scope = &spans[0].scope_spans[0];
    assert_eq!(
        scope.scope.as_ref().map(|s| s.name.as_str()),
        Some("json-scope")
    );
    let span = &scope.spans[0];
    assert_eq!(
        span.trace_id,
        [
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
    assert_eq!(
        span.span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
    assert_eq!(
        span.parent_span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73]
    );
    assert_eq!(span.name, "json-span");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    let values: Vec<_> = span
        .attributes
        .iter()
        .map(|kv| kv.value.as_ref().and_then(|v| v.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            Some(any_value::Value::IntValue(42)),
            Some(any_value::Value::DoubleValue(0.5)),
            Some(any_value::Value::BoolValue(true)),
        ]
    );
    let status = span.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "boom"));
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input, limits, routing and backpressure.

#[tokio::test]
async fn bad_http_input_gets_its_status_and_the_server_keeps_serving() {
    let mut r = start(Options {
        max_body: 1024,
        ..Default::default()
    })
    .await;
    let proto = [("Content-Type", "application/x-protobuf")];
    let json = [("Content-Type", "application/json")];

    let reply = post(r.http, "/v1/traces", &proto, &[0xff, 0xff, 0xff]).await;
    assert_eq!(reply.status, 400);
    let status = RpcStatus::decode(&reply.body[..]).expect("a google.rpc.Status");
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(status.message.contains("protobuf"), "{}", status.message);

    let reply = post(r.http, "/v1/traces", &json, b"{\"resourceSpans\": 7}").await;
    assert_eq!(reply.status, 400);
    let status: RpcStatus = serde_json::from_slice(&reply.body).expect("a JSON Status");
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);

    let reply = post(
        r.http,
        "/v1/traces",
        &[("Content-Type", "text/plain")],
        b"hi",
    )
    .await;
    assert_eq!(reply.status, 415);

    let big = one_span_request(&"x".repeat(2048)).encode_to_vec();
    let reply = post(r.http, "/v1/traces", &proto, &big).await;
    assert_eq!(reply.status, 413);

    // A decompression bomb: small on the wire, over the limit once inflated.
    let bomb = gzip(&vec![0u8; 64 * 1024]);
    assert!(bomb.len() < 1024);
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "gzip"),
    ];
    let reply = post(r.http, "/v1/traces", &headers, &bomb).await;
    assert_eq!(reply.status, 413);

    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "gzip"),
    ];
    let reply = post(r.http, "/v1/traces", &headers, b"not gzip").await;
    assert_eq!(reply.status, 400);

    assert_eq!(r.bad_requests(), 6);
    assert!(r.traces.try_recv().is_err());

    let good = one_span_request("after-bad-input");
    let reply = post(r.http, "/v1/traces", &proto, &good.encode_to_vec()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(spans_of(next(&mut r.traces).await), good.resource_spans);
    r.stop().await;
}

#[tokio::test]
async fn bad_grpc_input_gets_its_status_and_the_server_keeps_serving() {
    let mut r = start(Options {
        max_msg_mib: 1,
        ..Default::default()
    })
    .await;
    let status = grpc_raw(
        r.grpc,
        Garbage {
            data: vec![0xff, 0xff, 0xff],
        },
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    let status = grpc_raw(
        r.grpc,
        Garbage {
            data: vec![0; 2 * 1024 * 1024],
        },
    )
    .await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(r.bad_requests(), 2);

    let mut client = TraceServiceClient::new(grpc_channel(r.grpc).await);
    let good = one_span_request("after-bad-grpc");
    client.export(good.clone()).await.expect("exported");
    assert_eq!(spans_of(next(&mut r.traces).await), good.resource_spans);
    r.stop().await;
}

#[tokio::test]
async fn a_signal_without_pipeline_is_unimplemented_or_404() {
    let r = start(Options {
        signals: vec![Signal::Metrics],
        ..Default::default()
    })
    .await;
    let mut client = TraceServiceClient::new(grpc_channel(r.grpc).await);
    let status = client
        .export(one_span_request("nowhere"))
        .await
        .expect_err("no traces pipeline");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let reply = post(
        r.http,
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        &one_span_request("nowhere").encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, 404);
    r.stop().await;
}

#[tokio::test]
async fn a_full_pipeline_is_unavailable_with_retry_after() {
    let r = start(Options {
        capacity: 1,
        wait: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let proto = [("Content-Type", "application/x-protobuf")];
    let body = one_span_request("fills").encode_to_vec();
    // The first request fills the one slot nobody reads.
    assert_eq!(post(r.http, "/v1/traces", &proto, &body).await.status, 200);
    let reply = post(r.http, "/v1/traces", &proto, &body).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    let status = RpcStatus::decode(&reply.body[..]).expect("a google.rpc.Status");
    assert_eq!(status.code, tonic::Code::Unavailable as i32);

    let mut client = TraceServiceClient::new(grpc_channel(r.grpc).await);
    let status = client
        .export(one_span_request("refused"))
        .await
        .expect_err("pipeline full");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let refused = r
        .telemetry
        .value("sluice_receiver_refused_spans", &[("receiver", "otlp")]);
    assert_eq!(refused, Some(2));
    assert_eq!(r.bad_requests(), 0);
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------
// A real peer: the Rust `opentelemetry-otlp` exporter.

/// Sends one span with attributes of every type, an event, a link and a status, through the
/// SDK's simple processor (on a blocking thread: it blocks on the export).
async fn sdk_send_span(exporter: opentelemetry_otlp::SpanExporter) {
    use opentelemetry::trace::{
        Span as _, SpanContext, Status, TraceFlags, TraceState, Tracer as _, TracerProvider as _,
    };
    use opentelemetry::{Array, KeyValue as Kv, StringValue, Value};
    tokio::task::spawn_blocking(move || {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("sdk-svc")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("sdk-scope");
        let mut span = tracer.start("sdk-span");
        span.set_attributes([
            Kv::new("s", "text"),
            Kv::new("i", 7_i64),
            Kv::new("f", 1.5_f64),
            Kv::new("b", true),
            Kv::new(
                "a",
                Value::Array(Array::String(vec![StringValue::from("x")])),
            ),
        ]);
        span.add_event("sdk-event", vec![Kv::new("e", 1_i64)]);
        span.add_link(
            SpanContext::new(
                opentelemetry::trace::TraceId::from_bytes([3; 16]),
                opentelemetry::trace::SpanId::from_bytes([4; 8]),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            vec![],
        );
        span.set_status(Status::error("sdk-failure"));
        span.end();
        provider.shutdown().expect("the SDK shuts down");
    })
    .await
    .expect("the SDK thread");
}

fn check_sdk_span(spans: Vec<ResourceSpans>) {
    let resource = spans[0].resource.as_ref().expect("resource");
    assert!(resource
        .attributes
        .contains(&string_kv("service.name", "sdk-svc")));
    let scope = &spans[0].scope_spans[0];
    assert_eq!(
        scope.scope.as_ref().map(|s| s.name.as_str()),
        Some("sdk-scope")
    );
    let span = &scope.spans[0];
    assert_eq!(span.name, "sdk-span");
    assert_eq!((span.trace_id.len(), span.span_id.len()), (16, 8));
    let value = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(
        value("s"),
        Some(any_value::Value::StringValue("text".into()))
    );
    assert_eq!(value("i"), Some(any_value::Value::IntValue(7)));
    assert_eq!(value("f"), Some(any_value::Value::DoubleValue(1.5)));
    assert_eq!(value("b"), Some(any_value::Value::BoolValue(true)));
    assert!(matches!(value("a"), Some(any_value::Value::ArrayValue(_))));
    assert_eq!(span.events[0].name, "sdk-event");
    assert_eq!(span.links[0].trace_id, vec![3; 16]);
    assert_eq!(span.links[0].span_id, vec![4; 8]);
    let status = span.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "sdk-failure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_otlp_spans_arrive_over_grpc_and_http() {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let mut r = start(Options::default()).await;
    let grpc = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{}", r.grpc))
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .expect("gRPC exporter");
    sdk_send_span(grpc).await;
    check_sdk_span(spans_of(next(&mut r.traces).await));

    let http = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("http://{}/v1/traces", r.http))
        .build()
        .expect("HTTP exporter");
    sdk_send_span(http).await;
    check_sdk_span(spans_of(next(&mut r.traces).await));
    r.stop().await;
}

/// Wraps an SDK metric exporter so each export runs inside the test's tokio runtime: the
/// periodic reader exports on its own plain thread, where the HTTP (hyper) exporter would panic
/// with "no reactor running" and tonic would have no timer.
struct InRuntime<E> {
    inner: E,
    handle: tokio::runtime::Handle,
}

impl<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>
    opentelemetry_sdk::metrics::exporter::PushMetricExporter for InRuntime<E>
{
    fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        let mut export = Box::pin(self.inner.export(metrics));
        let handle = self.handle.clone();
        std::future::poll_fn(move |cx| {
            let _entered = handle.enter();
            std::future::Future::poll(export.as_mut(), cx)
        })
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
    }
}

/// Records a u64 counter (two series), an f64 histogram with explicit bounds and an f64
/// gauge, then shuts the provider down, which makes the periodic reader do its one export
/// (the interval is the default minute, so no timed export comes first).
async fn sdk_send_metrics(exporter: opentelemetry_otlp::MetricExporter) {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::KeyValue as Kv;
    let exporter = InRuntime {
        inner: exporter,
        handle: tokio::runtime::Handle::current(),
    };
    tokio::task::spawn_blocking(move || {
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).build())
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("sdk-svc")
                    .build(),
            )
            .build();
        let meter = provider.meter("sdk-meter");
        let counter = meter
            .u64_counter("sdk.requests")
            .with_description("requests served")
            .with_unit("{request}")
            .build();
        let a = [Kv::new("route", "/a"), Kv::new("ok", true)];
        counter.add(3, &a);
        counter.add(4, &a);
        counter.add(5, &[Kv::new("route", "/b"), Kv::new("ok", false)]);
        let histogram = meter
            .f64_histogram("sdk.latency")
            .with_unit("ms")
            .with_boundaries(vec![1.0, 5.0, 10.0])
            .build();
        for v in [0.5, 3.0, 3.5, 20.0] {
            histogram.record(v, &[Kv::new("route", "/a")]);
        }
        let gauge = meter.f64_gauge("sdk.temperature").build();
        gauge.record(19.0, &[Kv::new("room", "lab")]);
        gauge.record(21.5, &[Kv::new("room", "lab")]);
        provider.shutdown().expect("the SDK exports and shuts down");
    })
    .await
    .expect("the SDK thread");
}

fn metrics_of(payload: Payload) -> Vec<ResourceMetrics> {
    match payload {
        Payload::Metrics(m) => m,
        other => panic!("expected metrics, got {:?}", other.signal()),
    }
}

fn attrs(pairs: &[(&str, any_value::Value)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: (*k).into(),
            value: Some(AnyValue {
                value: Some(v.clone()),
            }),
            ..Default::default()
        })
        .collect()
}

fn sorted(mut kvs: Vec<KeyValue>) -> Vec<KeyValue> {
    kvs.sort_by(|a, b| a.key.cmp(&b.key));
    kvs
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn check_sdk_metrics(metrics: Vec<ResourceMetrics>) {
    assert_eq!(metrics.len(), 1);
    let resource = metrics[0].resource.as_ref().expect("resource");
    assert!(resource
        .attributes
        .contains(&string_kv("service.name", "sdk-svc")));
    assert_eq!(metrics[0].scope_metrics.len(), 1);
    let scope = &metrics[0].scope_metrics[0];
    assert_eq!(
        scope.scope.as_ref().map(|s| s.name.as_str()),
        Some("sdk-meter")
    );
    let mut names: Vec<&str> = scope.metrics.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["sdk.latency", "sdk.requests", "sdk.temperature"]);
    let find = |name: &str| -> &Metric {
        scope
            .metrics
            .iter()
            .find(|m| m.name == name)
            .expect("the metric")
    };

    let requests = find("sdk.requests");
    assert_eq!(requests.description, "requests served");
    assert_eq!(requests.unit, "{request}");
    let Some(metric::Data::Sum(sum)) = &requests.data else {
        panic!("sdk.requests is not a sum: {:?}", requests.data);
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2, "cumulative");
    let mut points: Vec<(Vec<KeyValue>, Option<number_data_point::Value>)> = sum
        .data_points
        .iter()
        .map(|p| (sorted(p.attributes.clone()), p.value))
        .collect();
    points.sort_by_key(|(_, v)| match v {
        Some(number_data_point::Value::AsInt(i)) => *i,
        _ => i64::MAX,
    });
    assert_eq!(
        points,
        [
            (
                attrs(&[
                    ("ok", any_value::Value::BoolValue(false)),
                    ("route", s("/b"))
                ]),
                Some(number_data_point::Value::AsInt(5))
            ),
            (
                attrs(&[
                    ("ok", any_value::Value::BoolValue(true)),
                    ("route", s("/a"))
                ]),
                Some(number_data_point::Value::AsInt(7))
            ),
        ]
    );

    let latency = find("sdk.latency");
    assert_eq!(latency.unit, "ms");
    let Some(metric::Data::Histogram(histogram)) = &latency.data else {
        panic!("sdk.latency is not a histogram: {:?}", latency.data);
    };
    assert_eq!(histogram.aggregation_temporality, 2, "cumulative");
    assert_eq!(histogram.data_points.len(), 1);
    let point = &histogram.data_points[0];
    assert_eq!(point.attributes, attrs(&[("route", s("/a"))]));
    assert_eq!(point.count, 4);
    assert_eq!(point.sum, Some(27.0));
    assert_eq!(point.explicit_bounds, [1.0, 5.0, 10.0]);
    assert_eq!(point.bucket_counts, [1, 2, 0, 1]);
    assert_eq!((point.min, point.max), (Some(0.5), Some(20.0)));

    let temperature = find("sdk.temperature");
    let Some(metric::Data::Gauge(gauge)) = &temperature.data else {
        panic!("sdk.temperature is not a gauge: {:?}", temperature.data);
    };
    assert_eq!(gauge.data_points.len(), 1);
    let point = &gauge.data_points[0];
    assert_eq!(point.attributes, attrs(&[("room", s("lab"))]));
    assert_eq!(point.value, Some(number_data_point::Value::AsDouble(21.5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_otlp_metrics_arrive_over_grpc_and_http() {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let mut r = start(Options::default()).await;
    let grpc = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{}", r.grpc))
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .expect("gRPC exporter");
    sdk_send_metrics(grpc).await;
    check_sdk_metrics(metrics_of(next(&mut r.metrics).await));

    let http = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("http://{}/v1/metrics", r.http))
        .build()
        .expect("HTTP exporter");
    sdk_send_metrics(http).await;
    check_sdk_metrics(metrics_of(next(&mut r.metrics).await));
    assert!(r.metrics.try_recv().is_err(), "one export each");
    assert_eq!(r.bad_requests(), 0);
    r.stop().await;
}

/// Emits two log records through the SDK's simple processor (one export each, on the calling
/// blocking thread, which keeps the runtime context).
async fn sdk_send_logs(exporter: opentelemetry_otlp::LogExporter) {
    use opentelemetry::logs::Severity;
    use opentelemetry::logs::{AnyValue as Body, LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
    tokio::task::spawn_blocking(move || {
        let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("sdk-svc")
                    .build(),
            )
            .build();
        let logger = provider.logger("sdk-logger");
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.set_body(Body::String("disk almost full".into()));
        record.add_attribute("disk", "/dev/sda");
        record.add_attribute("used_pct", 93_i64);
        record.set_trace_context(
            TraceId::from_bytes([5; 16]),
            SpanId::from_bytes([6; 8]),
            Some(TraceFlags::SAMPLED),
        );
        logger.emit(record);
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Error);
        record.set_severity_text("ERROR");
        record.set_body(Body::String("write failed".into()));
        record.add_attribute("retry", true);
        record.add_attribute("backoff", 1.5_f64);
        logger.emit(record);
        provider.shutdown().expect("the SDK shuts down");
    })
    .await
    .expect("the SDK thread");
}

/// The records of `want` log records, from as many batches as they come in (the simple
/// processor exports each record on its own), each checked for resource and scope.
async fn sdk_logs(rx: &mut mpsc::Receiver<Batch>, want: usize) -> Vec<LogRecord> {
    let mut records = Vec::new();
    while records.len() < want {
        let logs: Vec<ResourceLogs> = match next(rx).await {
            Payload::Logs(l) => l,
            other => panic!("expected logs, got {:?}", other.signal()),
        };
        for resource_logs in logs {
            let resource = resource_logs.resource.as_ref().expect("resource");
            assert!(resource
                .attributes
                .contains(&string_kv("service.name", "sdk-svc")));
            for scope in resource_logs.scope_logs {
                assert_eq!(
                    scope.scope.as_ref().map(|s| s.name.as_str()),
                    Some("sdk-logger")
                );
                records.extend(scope.log_records);
            }
        }
    }
    assert_eq!(records.len(), want);
    records
}

fn check_sdk_logs(records: &[LogRecord]) {
    let warn = &records[0];
    assert_eq!(warn.severity_number, 13);
    assert_eq!(warn.severity_text, "WARN");
    assert_eq!(
        warn.body.as_ref().and_then(|b| b.value.clone()),
        Some(s("disk almost full"))
    );
    assert_eq!(
        sorted(warn.attributes.clone()),
        attrs(&[
            ("disk", s("/dev/sda")),
            ("used_pct", any_value::Value::IntValue(93))
        ])
    );
    assert_eq!(warn.trace_id, vec![5; 16]);
    assert_eq!(warn.span_id, vec![6; 8]);
    assert_eq!(warn.flags, 1);
    assert_ne!(warn.observed_time_unix_nano, 0);

    let error = &records[1];
    assert_eq!(error.severity_number, 17);
    assert_eq!(error.severity_text, "ERROR");
    assert_eq!(
        error.body.as_ref().and_then(|b| b.value.clone()),
        Some(s("write failed"))
    );
    assert_eq!(
        sorted(error.attributes.clone()),
        attrs(&[
            ("backoff", any_value::Value::DoubleValue(1.5)),
            ("retry", any_value::Value::BoolValue(true))
        ])
    );
    assert!(error.trace_id.is_empty() && error.span_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_otlp_logs_arrive_over_grpc_and_http() {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let mut r = start(Options::default()).await;
    let grpc = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{}", r.grpc))
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .expect("gRPC exporter");
    sdk_send_logs(grpc).await;
    check_sdk_logs(&sdk_logs(&mut r.logs, 2).await);

    let http = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_endpoint(format!("http://{}/v1/logs", r.http))
        .build()
        .expect("HTTP exporter");
    sdk_send_logs(http).await;
    check_sdk_logs(&sdk_logs(&mut r.logs, 2).await);
    assert!(r.logs.try_recv().is_err(), "nothing more");
    assert_eq!(r.bad_requests(), 0);
    r.stop().await;
}
