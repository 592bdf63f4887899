use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::{Endpoints, Exporter};
use sluice_pipeline::retry::{QueueConfig, RetryConfig};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, ExportError, Kind, Payload, Validate};
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::loki::{EntryAdapter, PushRequest, StreamAdapter};
use sluice_proto::resource::v1::Resource;

use super::*;

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn good_config_decodes_whole() {
    let c: LokiExporterConfig =
        decode_str(include_str!("testdata/config.yaml")).expect("good config");
    let expected = LokiExporterConfig {
        endpoint: "http://loki.example:3100".into(),
        format: LokiFormat::Json,
        compression: LokiCompression::Gzip,
        tenant_id: Some("team-a".into()),
        headers: BTreeMap::from([("x-source".to_string(), "sluice".to_string())]),
        auth: LokiAuthConfig {
            basic: Some(LokiBasicAuth {
                username: "123456".into(),
                password: "secret".into(),
            }),
            bearer_token: None,
        },
        labels: LokiLabelsConfig {
            resource: vec!["service.name".into(), "deployment.environment".into()],
            attributes: vec!["http.route".into()],
            severity: true,
            static_labels: BTreeMap::from([("cluster".to_string(), "eu-1".to_string())]),
        },
        timeout: Duration::from_secs(10),
        retry_on_failure: RetryConfig {
            initial_interval: Duration::from_secs(1),
            ..RetryConfig::default()
        },
        sending_queue: QueueConfig {
            num_consumers: 2,
            ..QueueConfig::default()
        },
    };
    assert_eq!(c, expected);
    c.validate().expect("valid");
    assert_eq!(
        c.push_uri().expect("uri").to_string(),
        "http://loki.example:3100/loki/api/v1/push"
    );
    let d = LokiExporterFactory::delivery(&c);
    assert_eq!(d.timeout, Duration::from_secs(10));
    assert_eq!(d.retry_on_failure, c.retry_on_failure);
    assert_eq!(d.sending_queue, c.sending_queue);
}

#[test]
fn typo_config_names_key_and_line() {
    sluice_pipeline::testing::assert_misspelt_key::<LokiExporterConfig>(
        include_str!("testdata/typo_config.yaml"),
        "tennant_id",
        3,
    );
}

#[test]
fn defaults_and_push_url() {
    let c: LokiExporterConfig = decode_str(LokiExporterFactory::EXAMPLE).expect("example");
    c.validate().expect("valid");
    assert_eq!(c.format, LokiFormat::Protobuf);
    assert_eq!(c.compression, LokiCompression::None);
    assert_eq!(c.labels.resource, vec!["service.name".to_string()]);
    assert!(c.labels.attributes.is_empty() && !c.labels.severity);
    assert_eq!(c.timeout, Duration::from_secs(5));
    for (endpoint, url) in [
        ("http://h:3100", "http://h:3100/loki/api/v1/push"),
        ("http://h:3100/", "http://h:3100/loki/api/v1/push"),
        ("http://h/prefix/", "http://h/prefix/loki/api/v1/push"),
        (
            "http://h:3100/loki/api/v1/push",
            "http://h:3100/loki/api/v1/push",
        ),
    ] {
        let c = LokiExporterConfig {
            endpoint: endpoint.into(),
            ..LokiExporterConfig::default()
        };
        assert_eq!(c.push_uri().expect("uri").to_string(), url);
    }
}

fn invalid(yaml: &str) -> sluice_pipeline::config::ValidationError {
    let c: LokiExporterConfig = decode_str(yaml).expect("decodes");
    c.validate().expect_err("must be invalid")
}

#[test]
fn validation_names_key_and_problem() {
    let e = invalid("timeout: 1s\n");
    assert_eq!(e.key, "endpoint");
    assert!(e.message.contains("is required"), "{e}");
    let e = invalid("endpoint: https://loki:3100\n");
    assert!(e.message.contains("TLS is not supported yet"), "{e}");
    let e = invalid("endpoint: loki:3100\n");
    assert_eq!(e.key, "endpoint");
    let e = invalid("endpoint: http://l:3100\ncompression: gzip\n");
    assert_eq!(e.key, "compression");
    let e = invalid("endpoint: http://l:3100\nauth: { bearer_token: t, basic: { username: u } }\n");
    assert_eq!(e.key, "auth");
    let e = invalid("endpoint: http://l:3100\nauth: { basic: { password: p } }\n");
    assert_eq!(e.key, "auth::basic::username");
    let e = invalid(
        "endpoint: http://l:3100\nauth: { bearer_token: t }\nheaders: { Authorization: x }\n",
    );
    assert_eq!(e.key, "headers::authorization");
    let e = invalid("endpoint: http://l:3100\ntenant_id: \"\"\n");
    assert_eq!(e.key, "tenant_id");
    let e = invalid("endpoint: http://l:3100\nlabels: { static: { env: \"\" } }\n");
    assert_eq!(e.key, "labels::static::env");
    let e = invalid("endpoint: http://l:3100\nsending_queue: { num_consumers: 0 }\n");
    assert_eq!(e.key, "sending_queue::num_consumers");
}

// ---------------------------------------------------------------------------------------------
// Encoding.

#[test]
fn label_names_are_sanitised_and_values_escaped() {
    assert_eq!(sanitize_label_name("service.name"), "service_name");
    assert_eq!(sanitize_label_name("k8s.pod-name"), "k8s_pod_name");
    assert_eq!(sanitize_label_name("1st"), "_1st");
    assert_eq!(sanitize_label_name("ok_Name9"), "ok_Name9");
    assert_eq!(sanitize_label_name("é"), "_");
    let labels = BTreeMap::from([
        ("b".to_string(), "say \"hi\"\\\n".to_string()),
        ("a".to_string(), "x".to_string()),
    ]);
    assert_eq!(labels_text(&labels), r#"{a="x", b="say \"hi\"\\\n"}"#);
    assert!(parse_labels(&labels_text(&labels)).is_ok());
}

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        ..Default::default()
    }
}

fn record(ts: u64, line: &str, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: ts,
        body: Some(s(line)),
        attributes: attrs,
        ..Default::default()
    }
}

fn resource_logs(service: &str, records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s(service)), kv("host.name", s("h1"))],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            scope: Some(InstrumentationScope {
                name: "app".into(),
                ..Default::default()
            }),
            log_records: records,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Two services; `api`'s records out of order and at two levels, one with a trace.
fn sample_logs() -> Vec<ResourceLogs> {
    let mut traced = record(3_000, "third", vec![kv("user.id", s("u1"))]);
    traced.trace_id = vec![0xab; 16];
    traced.span_id = vec![0x01; 8];
    traced.severity_text = "ERROR".into();
    let mut info = record(1_000_000_000_001, "first", vec![]);
    info.severity_number = 9;
    vec![
        resource_logs(
            "api",
            vec![
                traced,
                record(2_000, "second", vec![]),
                record(1_000, "first", vec![kv("user.id", s("u2"))]),
            ],
        ),
        resource_logs("db", vec![info]),
    ]
}

fn entry(e: &LokiEntry) -> (i64, &str) {
    (e.timestamp_ns, e.line.as_str())
}

#[test]
fn records_group_into_sorted_streams_with_metadata() {
    let rules = LabelRules::new(&LokiLabelsConfig::default());
    let streams = group_streams(&sample_logs(), &rules);
    assert_eq!(streams.len(), 2);
    assert_eq!(labels_text(&streams[0].labels), r#"{service_name="api"}"#);
    assert_eq!(
        streams[0].entries.iter().map(entry).collect::<Vec<_>>(),
        vec![(1_000, "first"), (2_000, "second"), (3_000, "third")]
    );
    let third = &streams[0].entries[2].metadata;
    for pair in [
        ("host_name", "h1"),
        ("scope_name", "app"),
        ("user_id", "u1"),
        ("severity_text", "ERROR"),
        ("trace_id", "abababababababababababababababab"),
        ("span_id", "0101010101010101"),
    ] {
        assert!(
            third.contains(&(pair.0.to_string(), pair.1.to_string())),
            "{pair:?} in {third:?}"
        );
    }
    assert_eq!(labels_text(&streams[1].labels), r#"{service_name="db"}"#);

    // Severity and a record attribute as labels split `api` into streams per level.
    let rules = LabelRules::new(&LokiLabelsConfig {
        attributes: vec!["user.id".into()],
        severity: true,
        static_labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        ..LokiLabelsConfig::default()
    });
    let streams = group_streams(&sample_logs(), &rules);
    let texts: Vec<String> = streams.iter().map(|s| labels_text(&s.labels)).collect();
    assert_eq!(
        texts,
        vec![
            r#"{env="prod", level="error", service_name="api", user_id="u1"}"#,
            r#"{env="prod", service_name="api"}"#,
            r#"{env="prod", service_name="api", user_id="u2"}"#,
            r#"{env="prod", level="info", service_name="db"}"#,
        ]
    );
    assert!(!streams[0].entries[0]
        .metadata
        .iter()
        .any(|(k, _)| k == "user_id" || k == "severity_text"));

    // No configured label applies: the fallback keeps the stream acceptable to Loki.
    let rules = LabelRules::new(&LokiLabelsConfig {
        resource: vec!["k8s.namespace.name".into()],
        ..LokiLabelsConfig::default()
    });
    let streams = group_streams(&sample_logs(), &rules);
    assert_eq!(streams.len(), 1);
    assert_eq!(labels_text(&streams[0].labels), r#"{exporter="sluice"}"#);
    assert_eq!(streams[0].entries.len(), 4);
    assert!(streams[0]
        .entries
        .windows(2)
        .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns));
}

#[test]
fn non_string_bodies_render_as_json() {
    let body = AnyValue {
        value: Some(any_value::Value::KvlistValue(
            sluice_proto::common::v1::KeyValueList {
                values: vec![
                    kv("msg", s("hi")),
                    kv(
                        "n",
                        AnyValue {
                            value: Some(any_value::Value::IntValue(3)),
                        },
                    ),
                    kv(
                        "raw",
                        AnyValue {
                            value: Some(any_value::Value::BytesValue(vec![1, 2, 3])),
                        },
                    ),
                ],
            },
        )),
    };
    let mut r = record(5, "", vec![]);
    r.body = Some(body);
    let streams = group_streams(
        &[resource_logs("x", vec![r])],
        &LabelRules::new(&LokiLabelsConfig::default()),
    );
    assert_eq!(
        streams[0].entries[0].line,
        r#"{"msg":"hi","n":3,"raw":"AQID"}"#
    );
    let double = AnyValue {
        value: Some(any_value::Value::DoubleValue(f64::NAN)),
    };
    assert_eq!(encode::value_text(&double), "\"NaN\"");
}

// ---------------------------------------------------------------------------------------------
// The Loki test double.

/// One push as the double decoded it: stream labels text → entries (ns, line, metadata).
type Streams = Vec<(String, Vec<(i64, String, Vec<(String, String)>)>)>;

#[derive(Debug, Clone)]
struct Received {
    streams: Streams,
    headers: BTreeMap<String, String>,
    path: String,
}

/// What the double is told to answer instead of judging the push.
#[derive(Debug, Clone, Default)]
struct Forced {
    status: u16,
    retry_after: Option<String>,
}

#[derive(Debug, Default)]
struct LokiDouble {
    received: Mutex<Vec<Received>>,
    forced: Mutex<Option<Forced>>,
}

/// Parses Loki's stream selector `{name="value", …}` as Loki's push handler does (names
/// `[a-zA-Z_][a-zA-Z0-9_]*`, values Go-quoted with `\\`, `\"`, `\n` escapes, at least one pair).
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or("labels must be wrapped in {}")?;
    let mut out = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("invalid label name {name:?}"));
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("expected =\" after {name}"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some(c) => value.push(c),
                None => return Err("unterminated value".into()),
            }
        }
        out.insert(name, value);
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => return Err(format!("unexpected {c:?}")),
        }
    }
    if out.is_empty() {
        return Err("at least one label pair is required per stream".into());
    }
    Ok(out)
}

fn decode_protobuf(body: &[u8]) -> Result<Streams, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy (block format): {e}"))?;
    let req = PushRequest::decode(&raw[..]).map_err(|e| format!("protobuf: {e}"))?;
    Ok(req
        .streams
        .into_iter()
        .map(|s| {
            let entries = s
                .entries
                .into_iter()
                .map(|e| {
                    let ts = e.timestamp.unwrap_or_default();
                    (
                        ts.seconds * 1_000_000_000 + i64::from(ts.nanos),
                        e.line,
                        e.structured_metadata
                            .into_iter()
                            .map(|p| (p.name, p.value))
                            .collect(),
                    )
                })
                .collect();
            (s.labels, entries)
        })
        .collect())
}

fn decode_json(body: &[u8]) -> Result<Streams, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("json: {e}"))?;
    let streams = v["streams"].as_array().ok_or("no streams array")?;
    let mut out = Vec::new();
    for s in streams {
        let labels: BTreeMap<String, String> = s["stream"]
            .as_object()
            .ok_or("stream is not an object")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        let mut entries = Vec::new();
        for value in s["values"].as_array().ok_or("no values array")? {
            let ts: i64 = value[0]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or("timestamp is not a string of nanoseconds")?;
            let line = value[1].as_str().ok_or("line is not a string")?.to_string();
            let metadata = value
                .get(2)
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            entries.push((ts, line, metadata));
        }
        out.push((labels_text(&labels), entries));
    }
    Ok(out)
}

/// Judges a decoded push as Loki's distributor does for these checks.
fn validate_push(streams: &Streams) -> Result<(), String> {
    for (labels, entries) in streams {
        parse_labels(labels).map_err(|e| format!("error parsing labels {labels}: {e}"))?;
        if entries.windows(2).any(|w| w[1].0 < w[0].0) {
            return Err(format!("entry out of order for stream {labels}"));
        }
    }
    Ok(())
}

async fn loki_push(
    State(state): State<Arc<LokiDouble>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let decoded = match (header("content-type"), header("content-encoding")) {
        ("application/x-protobuf", "") => decode_protobuf(&body),
        ("application/json", enc) => {
            let raw = if enc == "gzip" {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .map(|_| out)
                    .map_err(|e| format!("gunzip: {e}"))
            } else {
                Ok(body.to_vec())
            };
            raw.and_then(|raw| decode_json(&raw))
        }
        (ct, enc) => Err(format!(
            "unsupported content type {ct:?} / encoding {enc:?}"
        )),
    };
    let streams = match decoded {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    state.received.lock().expect("lock").push(Received {
        streams: streams.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        path: uri.path().to_string(),
    });
    if let Some(forced) = state.forced.lock().expect("lock").clone() {
        let mut h = HeaderMap::new();
        if let Some(ra) = forced.retry_after {
            h.insert("retry-after", ra.parse().expect("header"));
        }
        let status = StatusCode::from_u16(forced.status).expect("status");
        return (status, h, "told to fail").into_response();
    }
    match validate_push(&streams) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// A **test double** of Loki's push API (no real Loki runs here): an axum server on
/// 127.0.0.1:0 answering `POST /loki/api/v1/push`. It decodes the real wire formats (snappy
/// block + `logproto.PushRequest` via the generated types; JSON, gzip or not), records every
/// push, and answers as Loki does: 204; 400 for an undecodable body, bad label syntax or entries
/// out of order within a stream; or whatever status (429 with `Retry-After`…) it is told.
async fn start_loki_double() -> (Arc<LokiDouble>, SocketAddr) {
    let state = Arc::new(LokiDouble::default());
    let app = axum::Router::new()
        .route(PUSH_PATH, axum::routing::post(loki_push))
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

fn take(state: &LokiDouble) -> Vec<Received> {
    std::mem::take(&mut *state.received.lock().expect("lock"))
}

fn force(state: &LokiDouble, status: u16, retry_after: Option<&str>) {
    *state.forced.lock().expect("lock") = Some(Forced {
        status,
        retry_after: retry_after.map(str::to_string),
    });
}

fn exporter(config: LokiExporterConfig) -> LokiExporter {
    config.validate().expect("valid config");
    let id = ComponentId::new("loki", None).expect("id");
    let telemetry = ComponentTelemetry::new(Telemetry::new(), Kind::Exporter, &id);
    let ctx = ComponentContext::new(
        id,
        Kind::Exporter,
        vec![sluice_pipeline::Signal::Logs],
        telemetry,
        PathBuf::from("/nonexistent"),
        Endpoints::default(),
    );
    LokiExporter::new(&config, &ctx).expect("build")
}

fn config_for(addr: SocketAddr) -> LokiExporterConfig {
    LokiExporterConfig {
        endpoint: format!("http://{addr}"),
        ..LokiExporterConfig::default()
    }
}

fn batch() -> Batch {
    Batch::new(Payload::Logs(sample_logs()))
}

fn lines(streams: &Streams) -> Vec<(String, Vec<(i64, String)>)> {
    streams
        .iter()
        .map(|(l, e)| (l.clone(), e.iter().map(|e| (e.0, e.1.clone())).collect()))
        .collect()
}

fn expected_lines() -> Vec<(String, Vec<(i64, String)>)> {
    vec![
        (
            r#"{service_name="api"}"#.to_string(),
            vec![
                (1_000, "first".to_string()),
                (2_000, "second".to_string()),
                (3_000, "third".to_string()),
            ],
        ),
        (
            r#"{service_name="db"}"#.to_string(),
            vec![(1_000_000_000_001, "first".to_string())],
        ),
    ]
}

#[tokio::test]
async fn protobuf_push_is_well_formed_with_tenant_and_basic_auth() {
    let (state, addr) = start_loki_double().await;
    let exp = exporter(LokiExporterConfig {
        tenant_id: Some("team-a".into()),
        headers: BTreeMap::from([("x-source".to_string(), "sluice".to_string())]),
        auth: LokiAuthConfig {
            basic: Some(LokiBasicAuth {
                username: "user".into(),
                password: "pass".into(),
            }),
            bearer_token: None,
        },
        ..config_for(addr)
    });
    exp.export(&batch()).await.expect("export");
    let got = take(&state);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/loki/api/v1/push");
    assert_eq!(lines(&r.streams), expected_lines());
    assert!(r.streams[0].1[2]
        .2
        .contains(&("trace_id".to_string(), "ab".repeat(16))));
    assert_eq!(r.headers["content-type"], "application/x-protobuf");
    assert_eq!(r.headers["x-scope-orgid"], "team-a");
    assert_eq!(r.headers["x-source"], "sluice");
    // base64("user:pass")
    assert_eq!(r.headers["authorization"], "Basic dXNlcjpwYXNz");
    assert!(!r.headers.contains_key("content-encoding"));
}

#[tokio::test]
async fn json_push_is_well_formed_gzip_or_not_with_bearer_token() {
    let (state, addr) = start_loki_double().await;
    for compression in [LokiCompression::Gzip, LokiCompression::None] {
        let exp = exporter(LokiExporterConfig {
            format: LokiFormat::Json,
            compression,
            auth: LokiAuthConfig {
                basic: None,
                bearer_token: Some("tok".into()),
            },
            ..config_for(addr)
        });
        exp.export(&batch()).await.expect("export");
        let got = take(&state);
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(lines(&r.streams), expected_lines());
        assert!(r.streams[0].1[0]
            .2
            .contains(&("user_id".to_string(), "u2".to_string())));
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["authorization"], "Bearer tok");
        assert!(!r.headers.contains_key("x-scope-orgid"));
        assert_eq!(
            r.headers.get("content-encoding").map(String::as_str),
            (compression == LokiCompression::Gzip).then_some("gzip")
        );
    }
}

#[tokio::test]
async fn empty_batch_sends_nothing() {
    let (state, addr) = start_loki_double().await;
    let exp = exporter(config_for(addr));
    exp.export(&Batch::new(Payload::Logs(vec![])))
        .await
        .expect("export");
    assert!(take(&state).is_empty());
}

#[tokio::test]
async fn rate_limit_is_retryable_with_retry_after() {
    let (state, addr) = start_loki_double().await;
    force(&state, 429, Some("7"));
    let exp = exporter(config_for(addr));
    match exp.export(&batch()).await {
        Err(ExportError::Retryable {
            retry_after,
            reason,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(reason.contains("429"), "{reason}");
        }
        other => panic!("expected retryable, got {other:?}"),
    }
    force(&state, 503, None);
    let e = exp.export(&batch()).await.expect_err("503");
    assert_eq!(
        e,
        ExportError::Retryable {
            reason: "Loki answered HTTP 503 Service Unavailable: told to fail".into(),
            retry_after: None
        }
    );
}

#[tokio::test]
async fn bad_request_is_permanent() {
    let (state, addr) = start_loki_double().await;
    force(&state, 400, None);
    let exp = exporter(config_for(addr));
    let e = exp.export(&batch()).await.expect_err("400");
    assert!(!e.is_retryable(), "{e:?}");
    force(&state, 401, None);
    assert!(!exp.export(&batch()).await.expect_err("401").is_retryable());
}

/// The double's own judgement, on pushes our encoder never makes: out of order, bad labels.
#[tokio::test]
async fn double_refuses_unordered_entries_and_bad_labels_as_permanent() {
    let (_state, addr) = start_loki_double().await;
    let exp = exporter(config_for(addr));
    let push = |labels: &str, ts: &[i64]| {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: labels.into(),
                entries: ts
                    .iter()
                    .map(|&t| EntryAdapter {
                        timestamp: Some(sluice_proto::prost_types::Timestamp {
                            seconds: t,
                            nanos: 0,
                        }),
                        line: "x".into(),
                        ..Default::default()
                    })
                    .collect(),
                hash: 0,
            }],
            format: String::new(),
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("snappy");
        axum::body::Bytes::from(body)
    };
    exp.client()
        .push(push(r#"{a="b"}"#, &[1, 2]))
        .await
        .expect("ordered, well-labelled push is accepted");
    let e = exp
        .client()
        .push(push(r#"{a="b"}"#, &[2, 1]))
        .await
        .expect_err("out of order");
    assert!(
        matches!(&e, ExportError::Permanent { reason } if reason.contains("out of order")),
        "{e:?}"
    );
    let e = exp
        .client()
        .push(push(r#"{service.name="b"}"#, &[1]))
        .await
        .expect_err("bad label name");
    assert!(
        matches!(&e, ExportError::Permanent { reason } if reason.contains("error parsing labels")),
        "{e:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let exp = exporter(config_for(closed));
    let e = exp.export(&batch()).await.expect_err("nothing listens");
    assert!(e.is_retryable(), "{e:?}");
}

#[test]
fn retry_after_parses_seconds_and_dates() {
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_410_800);
    assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:10 GMT", now),
        Some(Duration::from_secs(10))
    );
    assert_eq!(parse_retry_after("soon", now), None);
}
