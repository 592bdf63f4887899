use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prost::Message;
use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::{ComponentContext, Endpoints, Exporter};
use sluice_pipeline::retry::{QueueConfig, RetryConfig};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::testing::{gauge_points, log_records, spans};
use sluice_pipeline::{Batch, ComponentId, ExportError, Kind, Payload, Signal, Validate};
use sluice_proto::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use sluice_proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use sluice_proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use sluice_proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use sluice_proto::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use sluice_proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::Code;

use super::status::{
    classify_grpc, classify_http, retry_info_delay, ProtoAny, ProtoDuration, RetryInfo, RpcStatus,
    RETRY_INFO_TYPE_URL,
};
use super::*;
use crate::http_client::parse_retry_after;

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn good_config_decodes_whole() {
    let c: OtlpExporterConfig =
        decode_str(include_str!("testdata/config.yaml")).expect("good config");
    let expected = OtlpExporterConfig {
        endpoint: "http://collector.example:4318".into(),
        protocol: OtlpProtocol::HttpProtobuf,
        logs_endpoint: Some("http://logs.example:8080/ingest/otlp".into()),
        compression: Compression::None,
        headers: BTreeMap::from([
            ("x-api-key".to_string(), "secret".to_string()),
            ("x-tenant".to_string(), "acme".to_string()),
        ]),
        timeout: Duration::from_secs(10),
        retry_on_failure: RetryConfig {
            initial_interval: Duration::from_secs(1),
            max_elapsed_time: Duration::from_secs(60),
            ..RetryConfig::default()
        },
        sending_queue: QueueConfig {
            num_consumers: 4,
            queue_size: 500,
            ..QueueConfig::default()
        },
        ..OtlpExporterConfig::default()
    };
    assert_eq!(c, expected);
    c.validate().expect("valid");
    assert_eq!(
        c.http_uri(Signal::Traces).expect("url").to_string(),
        "http://collector.example:4318/v1/traces"
    );
    assert_eq!(
        c.http_uri(Signal::Logs).expect("url").to_string(),
        "http://logs.example:8080/ingest/otlp"
    );
    let d = OtlpExporterFactory::delivery(&c);
    assert_eq!(d.timeout, Duration::from_secs(10));
    assert_eq!(d.retry_on_failure, c.retry_on_failure);
    assert_eq!(d.sending_queue, c.sending_queue);
}

#[test]
fn typo_config_names_key_and_line() {
    sluice_pipeline::testing::assert_misspelt_key::<OtlpExporterConfig>(
        include_str!("testdata/typo_config.yaml"),
        "compresion",
        3,
    );
}

#[test]
fn defaults_and_protocol_spellings() {
    let c: OtlpExporterConfig = decode_str("endpoint: 127.0.0.1:4317\n").expect("config");
    assert_eq!(c.protocol, OtlpProtocol::Grpc);
    assert_eq!(c.compression, Compression::Gzip);
    assert_eq!(c.timeout, Duration::from_secs(5));
    c.validate().expect("valid");
    assert_eq!(
        c.grpc_uri().expect("uri").to_string(),
        "http://127.0.0.1:4317/"
    );
    let c: OtlpExporterConfig =
        decode_str("protocol: http/protobuf\nendpoint: http://h:4318/base/\n").expect("config");
    assert_eq!(c.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(
        c.http_uri(Signal::Metrics).expect("url").to_string(),
        "http://h:4318/base/v1/metrics"
    );
}

fn invalid(yaml: &str) -> sluice_pipeline::config::ValidationError {
    let c: OtlpExporterConfig = decode_str(yaml).expect("decodes");
    c.validate().expect_err("must be invalid")
}

#[test]
fn validation_names_key_and_problem() {
    let e = invalid("timeout: 1s\n");
    assert_eq!(e.key, "endpoint");
    assert!(e.message.contains("is required"), "{e}");

    let e = invalid("endpoint: https://collector:4317\n");
    assert_eq!(e.key, "endpoint");
    assert!(e.message.contains("TLS is not supported yet"), "{e}");

    let e = invalid(
        "protocol: http_protobuf\nendpoint: http://c:4318\ntraces_endpoint: https://c/v1/traces\n",
    );
    assert_eq!(e.key, "traces_endpoint");
    assert!(e.message.contains("TLS is not supported yet"), "{e}");

    let e = invalid("protocol: http_protobuf\nendpoint: 127.0.0.1:4318\n");
    assert_eq!(e.key, "endpoint");
    assert!(e.message.contains("http://127.0.0.1:4318"), "{e}");

    let e = invalid("endpoint: 127.0.0.1:4317\nlogs_endpoint: http://c/v1/logs\n");
    assert_eq!(e.key, "logs_endpoint");

    let e = invalid("endpoint: http://c:4317/some/path\n");
    assert_eq!(e.key, "endpoint");

    let e = invalid("endpoint: c:4317\nheaders:\n  \"bad key\": v\n");
    assert_eq!(e.key, "headers::bad key");

    let e = invalid("endpoint: c:4317\nsending_queue:\n  num_consumers: 0\n");
    assert_eq!(e.key, "sending_queue::num_consumers");

    let e = invalid("endpoint: c:4317\nretry_on_failure:\n  multiplier: 0.5\n");
    assert_eq!(e.key, "retry_on_failure::multiplier");
}

#[test]
fn example_config_is_valid() {
    let c: OtlpExporterConfig = decode_str(OtlpExporterFactory::EXAMPLE).expect("example");
    c.validate().expect("valid");
}

// ---------------------------------------------------------------------------------------------
// Encoding.

fn payloads() -> Vec<Payload> {
    vec![spans(5), gauge_points("cpu", 4), log_records(3)]
}

/// What prost makes of an owned request: the reference our borrowed encoding must equal.
fn owned_request_bytes(payload: &Payload) -> Vec<u8> {
    match payload.clone() {
        Payload::Traces(resource_spans) => {
            ExportTraceServiceRequest { resource_spans }.encode_to_vec()
        }
        Payload::Metrics(resource_metrics) => {
            ExportMetricsServiceRequest { resource_metrics }.encode_to_vec()
        }
        Payload::Logs(resource_logs) => ExportLogsServiceRequest { resource_logs }.encode_to_vec(),
    }
}

#[test]
fn borrowed_encoding_equals_owned_request_encoding() {
    for p in payloads() {
        assert_eq!(
            encode_request(&p).as_ref(),
            owned_request_bytes(&p),
            "{p:?}"
        );
    }
    assert!(encode_request(&Payload::empty(Signal::Traces)).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Classification.

fn retry_info_details(delay: Option<Duration>) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: delay.map(|d| ProtoDuration {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }),
    };
    RpcStatus {
        code: Code::ResourceExhausted as i32,
        message: "slow down".into(),
        details: vec![
            ProtoAny {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                value: vec![],
            },
            ProtoAny {
                type_url: RETRY_INFO_TYPE_URL.into(),
                value: info.encode_to_vec(),
            },
        ],
    }
    .encode_to_vec()
}

fn retry_after_of(e: &ExportError) -> Option<Duration> {
    match e {
        ExportError::Retryable { retry_after, .. } => *retry_after,
        ExportError::Permanent { .. } => None,
    }
}

#[test]
fn grpc_codes_classify_as_the_spec_says() {
    let retryable = [
        Code::Cancelled,
        Code::DeadlineExceeded,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unavailable,
        Code::DataLoss,
    ];
    let permanent = [
        Code::Unknown,
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Unimplemented,
        Code::Internal,
        Code::Unauthenticated,
    ];
    for c in retryable {
        let e = classify_grpc(&tonic::Status::new(c, "x"));
        assert!(e.is_retryable(), "{c:?}");
        assert_eq!(retry_after_of(&e), None);
    }
    for c in permanent {
        assert!(
            !classify_grpc(&tonic::Status::new(c, "x")).is_retryable(),
            "{c:?}"
        );
    }
    let throttled = tonic::Status::with_details(
        Code::ResourceExhausted,
        "slow down",
        retry_info_details(Some(Duration::from_millis(1500))).into(),
    );
    let e = classify_grpc(&throttled);
    assert!(e.is_retryable());
    assert_eq!(retry_after_of(&e), Some(Duration::from_millis(1500)));
    // RetryInfo without a delay still makes RESOURCE_EXHAUSTED retryable, without a hint.
    let no_delay = tonic::Status::with_details(
        Code::ResourceExhausted,
        "slow down",
        retry_info_details(None).into(),
    );
    let e = classify_grpc(&no_delay);
    assert!(e.is_retryable());
    assert_eq!(retry_after_of(&e), None);
    assert_eq!(retry_info_delay(b"not a status"), None);
}

#[test]
fn http_statuses_classify_as_the_spec_says() {
    let mut headers = HeaderMap::new();
    for code in [429u16, 502, 503, 504] {
        let s = StatusCode::from_u16(code).expect("status");
        assert!(classify_http(s, &headers, b"").is_retryable(), "{code}");
    }
    for code in [400u16, 401, 403, 404, 413, 500, 501] {
        let s = StatusCode::from_u16(code).expect("status");
        assert!(!classify_http(s, &headers, b"").is_retryable(), "{code}");
    }
    headers.insert("retry-after", "7".parse().expect("value"));
    let e = classify_http(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
    assert_eq!(retry_after_of(&e), Some(Duration::from_secs(7)));

    let body = RpcStatus {
        code: 3,
        message: "bad span".into(),
        details: vec![],
    }
    .encode_to_vec();
    headers.insert("content-type", "application/x-protobuf".parse().expect("v"));
    let e = classify_http(StatusCode::BAD_REQUEST, &headers, &body);
    assert_eq!(e, ExportError::permanent("HTTP 400 Bad Request: bad span"));
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
    assert_eq!(
        parse_retry_after(" 120 ", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-1", now), None);
}

// ---------------------------------------------------------------------------------------------
// Helpers for the exporter against real servers.

fn context() -> ComponentContext {
    let id = ComponentId::new("otlp", None).expect("id");
    let telemetry = ComponentTelemetry::new(Telemetry::new(), Kind::Exporter, &id);
    ComponentContext::new(
        id,
        Kind::Exporter,
        Signal::ALL.to_vec(),
        telemetry,
        PathBuf::from("/nonexistent"),
        Endpoints::default(),
    )
}

async fn exporter(config: OtlpExporterConfig) -> (OtlpExporter, ComponentContext) {
    config.validate().expect("valid config");
    let ctx = context();
    let mut e = OtlpExporter::new(&config, &ctx).expect("build");
    e.start().await.expect("start");
    (e, ctx)
}

fn rejected(ctx: &ComponentContext, signal: Signal) -> i64 {
    ctx.telemetry
        .registry()
        .value(
            &format!("sluice_exporter_rejected_{}", signal.unit()),
            &[("exporter", "otlp")],
        )
        .unwrap_or(0)
}

fn grpc_config(addr: SocketAddr, compression: Compression) -> OtlpExporterConfig {
    OtlpExporterConfig {
        endpoint: addr.to_string(),
        compression,
        headers: BTreeMap::from([("x-api-key".to_string(), "k1".to_string())]),
        ..OtlpExporterConfig::default()
    }
}

fn http_config(addr: SocketAddr, compression: Compression) -> OtlpExporterConfig {
    OtlpExporterConfig {
        endpoint: format!("http://{addr}"),
        protocol: OtlpProtocol::HttpProtobuf,
        compression,
        headers: BTreeMap::from([("x-api-key".to_string(), "k1".to_string())]),
        ..OtlpExporterConfig::default()
    }
}

/// An address nothing listens on: bound, then released.
async fn closed_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Received {
    payload: Payload,
    headers: BTreeMap<String, String>,
    path: String,
}

// ---------------------------------------------------------------------------------------------
// gRPC server.

/// How the gRPC server answers.
#[derive(Debug, Clone, Default)]
enum GrpcReply {
    #[default]
    Ok,
    Partial(i64, &'static str),
    Fail(Code, Option<Vec<u8>>),
}

#[derive(Debug, Default)]
struct GrpcState {
    received: Mutex<Vec<Received>>,
    reply: Mutex<GrpcReply>,
}

#[derive(Debug, Clone, Default)]
struct GrpcServer(Arc<GrpcState>);

impl GrpcServer {
    fn set_reply(&self, r: GrpcReply) {
        *self.0.reply.lock().expect("lock") = r;
    }

    fn received(&self) -> Vec<Received> {
        self.0.received.lock().expect("lock").clone()
    }

    /// Records the request; returns the partial success to answer with, or the failure.
    fn handle(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        payload: Payload,
        path: &str,
    ) -> Result<Option<(i64, String)>, tonic::Status> {
        let headers = metadata
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
            .collect();
        self.0.received.lock().expect("lock").push(Received {
            payload,
            headers,
            path: path.to_string(),
        });
        match self.0.reply.lock().expect("lock").clone() {
            GrpcReply::Ok => Ok(None),
            GrpcReply::Partial(n, m) => Ok(Some((n, m.to_string()))),
            GrpcReply::Fail(code, None) => Err(tonic::Status::new(code, "told to fail")),
            GrpcReply::Fail(code, Some(details)) => Err(tonic::Status::with_details(
                code,
                "told to fail",
                details.into(),
            )),
        }
    }
}

#[tonic::async_trait]
impl TraceService for GrpcServer {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let (metadata, _, body) = req.into_parts();
        let partial = self.handle(&metadata, Payload::Traces(body.resource_spans), "traces")?;
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: partial.map(|(rejected_spans, error_message)| {
                ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcServer {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let (metadata, _, body) = req.into_parts();
        let partial = self.handle(
            &metadata,
            Payload::Metrics(body.resource_metrics),
            "metrics",
        )?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected_data_points, error_message)| {
                ExportMetricsPartialSuccess {
                    rejected_data_points,
                    error_message,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcServer {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let (metadata, _, body) = req.into_parts();
        let partial = self.handle(&metadata, Payload::Logs(body.resource_logs), "logs")?;
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected_log_records, error_message)| {
                ExportLogsPartialSuccess {
                    rejected_log_records,
                    error_message,
                }
            }),
        }))
    }
}

/// Serves the three OTLP services on 127.0.0.1:0 (gzip accepted); returns the bound address.
async fn start_grpc_server() -> (GrpcServer, SocketAddr) {
    let server = GrpcServer::default();
    let routes = tonic::service::Routes::new(
        TraceServiceServer::new(server.clone()).accept_compressed(CompressionEncoding::Gzip),
    )
    .add_service(
        MetricsServiceServer::new(server.clone()).accept_compressed(CompressionEncoding::Gzip),
    )
    .add_service(
        LogsServiceServer::new(server.clone()).accept_compressed(CompressionEncoding::Gzip),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes.into_axum_router()).await;
    });
    (server, addr)
}

#[tokio::test]
async fn grpc_delivers_all_signals_identically_with_and_without_gzip() {
    let (server, addr) = start_grpc_server().await;
    for compression in [Compression::Gzip, Compression::None] {
        let (exp, _ctx) = exporter(grpc_config(addr, compression)).await;
        let sent = payloads();
        for p in &sent {
            exp.export(&Batch::new(p.clone())).await.expect("export");
        }
        let got = server.received();
        assert_eq!(got.len(), 3);
        for (r, sent) in got.iter().zip(sent) {
            assert_eq!(r.payload, sent);
            assert_eq!(r.path, sent.signal().as_str());
            assert_eq!(r.headers.get("x-api-key").map(String::as_str), Some("k1"));
            let encoding = r.headers.get("grpc-encoding").map(String::as_str);
            match compression {
                Compression::Gzip => assert_eq!(encoding, Some("gzip")),
                Compression::None => assert_eq!(encoding, None),
            }
        }
        server.0.received.lock().expect("lock").clear();
    }
}

#[tokio::test]
async fn grpc_statuses_map_to_retryable_and_permanent() {
    let (server, addr) = start_grpc_server().await;
    let (exp, _ctx) = exporter(grpc_config(addr, Compression::Gzip)).await;
    let batch = Batch::new(spans(2));

    server.set_reply(GrpcReply::Fail(Code::Unavailable, None));
    let e = exp.export(&batch).await.expect_err("unavailable");
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(retry_after_of(&e), None);

    server.set_reply(GrpcReply::Fail(
        Code::ResourceExhausted,
        Some(retry_info_details(Some(Duration::from_secs(3)))),
    ));
    let e = exp.export(&batch).await.expect_err("throttled");
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(retry_after_of(&e), Some(Duration::from_secs(3)));

    server.set_reply(GrpcReply::Fail(Code::ResourceExhausted, None));
    let e = exp.export(&batch).await.expect_err("exhausted");
    assert!(!e.is_retryable(), "{e:?}");

    server.set_reply(GrpcReply::Fail(Code::InvalidArgument, None));
    let e = exp.export(&batch).await.expect_err("invalid");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("InvalidArgument"), "{e}");

    server.set_reply(GrpcReply::Ok);
    exp.export(&batch).await.expect("ok again");
}

#[tokio::test]
async fn grpc_partial_success_is_counted_not_failed() {
    let (server, addr) = start_grpc_server().await;
    let (exp, ctx) = exporter(grpc_config(addr, Compression::Gzip)).await;
    server.set_reply(GrpcReply::Partial(2, "2 spans too old"));
    exp.export(&Batch::new(spans(5))).await.expect("partial ok");
    server.set_reply(GrpcReply::Partial(1, "1 point bad"));
    exp.export(&Batch::new(gauge_points("m", 3)))
        .await
        .expect("partial ok");
    assert_eq!(rejected(&ctx, Signal::Traces), 2);
    assert_eq!(rejected(&ctx, Signal::Metrics), 1);
    assert_eq!(rejected(&ctx, Signal::Logs), 0);
}

#[tokio::test]
async fn grpc_down_target_starts_and_fails_retryably() {
    let addr = closed_addr().await;
    let (exp, _ctx) = exporter(grpc_config(addr, Compression::Gzip)).await;
    let e = exp
        .export(&Batch::new(spans(1)))
        .await
        .expect_err("nothing listens");
    assert!(e.is_retryable(), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// HTTP server.

/// How the HTTP server answers.
#[derive(Debug, Clone)]
struct HttpReply {
    status: u16,
    retry_after: Option<&'static str>,
    partial: Option<i64>,
}

impl Default for HttpReply {
    fn default() -> Self {
        HttpReply {
            status: 200,
            retry_after: None,
            partial: None,
        }
    }
}

#[derive(Debug, Default)]
struct HttpState {
    received: Mutex<Vec<Received>>,
    reply: Mutex<HttpReply>,
    /// Problems with what the client sent (wrong content type, undecodable body).
    errors: Mutex<Vec<String>>,
}

async fn http_handler(
    State(state): State<Arc<HttpState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut problems = Vec::new();
    if headers.get("content-type").map(|v| v.as_bytes()) != Some(b"application/x-protobuf") {
        problems.push(format!("content-type {:?}", headers.get("content-type")));
    }
    let raw = match headers.get("content-encoding").map(|v| v.as_bytes()) {
        Some(b"gzip") => {
            let mut out = Vec::new();
            if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
                problems.push(format!("gunzip: {e}"));
            }
            out
        }
        None => body.to_vec(),
        Some(other) => {
            problems.push(format!("content-encoding {other:?}"));
            Vec::new()
        }
    };
    let path = uri.path().to_string();
    let payload = if path.ends_with("/traces") {
        ExportTraceServiceRequest::decode(&raw[..]).map(|r| Payload::Traces(r.resource_spans))
    } else if path.ends_with("/metrics") {
        ExportMetricsServiceRequest::decode(&raw[..]).map(|r| Payload::Metrics(r.resource_metrics))
    } else {
        ExportLogsServiceRequest::decode(&raw[..]).map(|r| Payload::Logs(r.resource_logs))
    };
    let payload = payload.unwrap_or_else(|e| {
        problems.push(format!("decode: {e}"));
        Payload::empty(Signal::Logs)
    });
    let signal = payload.signal();
    state.errors.lock().expect("lock").extend(problems);
    state.received.lock().expect("lock").push(Received {
        payload,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        path,
    });
    let reply = state.reply.lock().expect("lock").clone();
    let status = StatusCode::from_u16(reply.status).expect("status");
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert("content-type", "application/x-protobuf".parse().expect("v"));
    if let Some(ra) = reply.retry_after {
        resp_headers.insert("retry-after", ra.parse().expect("v"));
    }
    let body = if !status.is_success() {
        RpcStatus {
            code: 14,
            message: "told to fail".into(),
            details: vec![],
        }
        .encode_to_vec()
    } else if let Some(n) = reply.partial {
        let ps = |m: &str| (n, m.to_string());
        let (n, m) = ps("some rejected");
        match signal {
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: n,
                    error_message: m,
                }),
            }
            .encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse {
                partial_success: Some(ExportMetricsPartialSuccess {
                    rejected_data_points: n,
                    error_message: m,
                }),
            }
            .encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: n,
                    error_message: m,
                }),
            }
            .encode_to_vec(),
        }
    } else {
        Vec::new()
    };
    (status, resp_headers, body).into_response()
}

async fn start_http_server() -> (Arc<HttpState>, SocketAddr) {
    let state = Arc::new(HttpState::default());
    let app = axum::Router::new()
        .fallback(axum::routing::post(http_handler))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, addr)
}

fn set_http_reply(state: &HttpState, r: HttpReply) {
    *state.reply.lock().expect("lock") = r;
}

#[tokio::test]
async fn http_delivers_all_signals_identically_with_and_without_gzip() {
    let (state, addr) = start_http_server().await;
    for compression in [Compression::Gzip, Compression::None] {
        let (exp, _ctx) = exporter(http_config(addr, compression)).await;
        let sent = payloads();
        for p in &sent {
            exp.export(&Batch::new(p.clone())).await.expect("export");
        }
        let got: Vec<Received> = std::mem::take(&mut *state.received.lock().expect("lock"));
        assert_eq!(got.len(), 3);
        for (r, sent) in got.iter().zip(sent) {
            assert_eq!(r.payload, sent);
            assert_eq!(r.path, format!("/v1/{}", sent.signal()));
            assert_eq!(r.headers.get("x-api-key").map(String::as_str), Some("k1"));
            let encoding = r.headers.get("content-encoding").map(String::as_str);
            match compression {
                Compression::Gzip => assert_eq!(encoding, Some("gzip")),
                Compression::None => assert_eq!(encoding, None),
            }
        }
    }
    assert_eq!(*state.errors.lock().expect("lock"), Vec::<String>::new());
}

#[tokio::test]
async fn http_signal_endpoint_overrides_the_base_url() {
    let (state, addr) = start_http_server().await;
    let config = OtlpExporterConfig {
        traces_endpoint: Some(format!("http://{addr}/custom/traces")),
        ..http_config(addr, Compression::Gzip)
    };
    let (exp, _ctx) = exporter(config).await;
    exp.export(&Batch::new(spans(1))).await.expect("traces");
    exp.export(&Batch::new(log_records(1))).await.expect("logs");
    let paths: Vec<String> = state
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, vec!["/custom/traces", "/v1/logs"]);
}

#[tokio::test]
async fn http_statuses_map_to_retryable_and_permanent() {
    let (state, addr) = start_http_server().await;
    let (exp, _ctx) = exporter(http_config(addr, Compression::Gzip)).await;
    let batch = Batch::new(log_records(2));

    set_http_reply(
        &state,
        HttpReply {
            status: 429,
            retry_after: Some("9"),
            ..HttpReply::default()
        },
    );
    let e = exp.export(&batch).await.expect_err("429");
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(retry_after_of(&e), Some(Duration::from_secs(9)));

    let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(65));
    let leaked: &'static str = Box::leak(in_a_minute.into_boxed_str());
    set_http_reply(
        &state,
        HttpReply {
            status: 503,
            retry_after: Some(leaked),
            ..HttpReply::default()
        },
    );
    let e = exp.export(&batch).await.expect_err("503");
    assert!(e.is_retryable(), "{e:?}");
    let ra = retry_after_of(&e).expect("retry-after date honoured");
    assert!(
        ra > Duration::from_secs(5) && ra <= Duration::from_secs(65),
        "{ra:?}"
    );

    set_http_reply(
        &state,
        HttpReply {
            status: 400,
            ..HttpReply::default()
        },
    );
    let e = exp.export(&batch).await.expect_err("400");
    assert_eq!(
        e,
        ExportError::permanent("HTTP 400 Bad Request: told to fail")
    );

    set_http_reply(&state, HttpReply::default());
    exp.export(&batch).await.expect("ok again");
}

#[tokio::test]
async fn http_partial_success_is_counted_not_failed() {
    let (state, addr) = start_http_server().await;
    let (exp, ctx) = exporter(http_config(addr, Compression::None)).await;
    set_http_reply(
        &state,
        HttpReply {
            partial: Some(2),
            ..HttpReply::default()
        },
    );
    exp.export(&Batch::new(log_records(3))).await.expect("ok");
    exp.export(&Batch::new(spans(3))).await.expect("ok");
    assert_eq!(rejected(&ctx, Signal::Logs), 2);
    assert_eq!(rejected(&ctx, Signal::Traces), 2);
    assert_eq!(rejected(&ctx, Signal::Metrics), 0);
}

#[tokio::test]
async fn http_down_target_fails_retryably() {
    let addr = closed_addr().await;
    let (exp, _ctx) = exporter(http_config(addr, Compression::Gzip)).await;
    let e = exp
        .export(&Batch::new(spans(1)))
        .await
        .expect_err("nothing listens");
    assert!(e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("POST http://"), "{e}");
}

#[test]
fn compression_params_level_defaults_to_fastest_and_is_validated() {
    let c: OtlpExporterConfig = decode_str("endpoint: 127.0.0.1:4317\n").expect("config");
    assert_eq!(c.compression_params.level, 1);
    let c: OtlpExporterConfig =
        decode_str("endpoint: 127.0.0.1:4317\ncompression_params:\n  level: 9\n").expect("config");
    assert_eq!(c.compression_params.level, 9);
    c.validate().expect("valid");
    let c: OtlpExporterConfig =
        decode_str("endpoint: 127.0.0.1:4317\ncompression_params:\n  level: -1\n").expect("config");
    c.validate().expect("-1 is zlib's default");
    let e = invalid("endpoint: 127.0.0.1:4317\ncompression_params:\n  level: 10\n");
    assert_eq!(e.key, "compression_params::level");
    assert!(e.message.contains("1 (fastest) to 9"), "{e}");
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[test]
fn gzip_level_is_honoured_and_round_trips() {
    let body = super::encode_request(&spans(500));
    let level = |n| {
        CompressionParams { level: n }
            .gzip_level()
            .expect("a gzip level")
    };
    let fast = super::encode::gzip(&body, level(1)).expect("gzip");
    let best = super::encode::gzip(&body, level(9)).expect("gzip");
    let stored = super::encode::gzip(&body, level(0)).expect("gzip");
    assert_ne!(fast, best, "levels 1 and 9 must compress differently");
    assert!(best.len() <= fast.len(), "{} > {}", best.len(), fast.len());
    assert!(stored.len() > body.len(), "level 0 stores");
    for out in [&fast, &best, &stored] {
        assert_eq!(gunzip(out), body);
    }
    // The gRPC frame: compressed flag, big-endian length, the same gzip bytes.
    let frame = super::encode::grpc_gzip_frame(&body, level(1)).expect("frame");
    assert_eq!(frame[0], 1);
    let len = u32::from_be_bytes(frame[1..5].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, frame.len() - 5);
    assert_eq!(&frame[5..], &fast[..]);
}
