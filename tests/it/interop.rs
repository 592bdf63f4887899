//! Interop with peers sluice did not write: the OpenTelemetry Python SDK and its OTLP exporters
//! (`tests/interop/send.py`), and a grpcio server built on the `opentelemetry-proto` PyPI
//! package (`tests/interop/sink_server.py`). Both run from a venv that
//! `tests/interop/setup-venv.sh` creates under the cargo target dir, once per checkout (a no-op
//! afterwards); nothing is installed by hand.
//!
//! What is compared is described in one JSON shape on both sides (see the docstring of
//! `send.py`): the Python side describes the SDK objects it handed to its exporters, the Rust side
//! describes what reached the `collect` sink, and the two lists must be equal item for item.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sluice_pipeline::id::ComponentId;
use sluice_pipeline::testing::{self, gauge_points, log_records, spans};
use sluice_pipeline::{Batch, Payload, Signal};
use sluice_proto::collector::logs::v1::ExportLogsServiceRequest;
use sluice_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use sluice_proto::collector::trace::v1::ExportTraceServiceRequest;
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::logs::v1::ResourceLogs;
use sluice_proto::metrics::v1::{metric, number_data_point, ResourceMetrics};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::ResourceSpans;
use sluice_proto::Message;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{bounded, start_yaml};

/// Creating the venv downloads packages: a fresh machine needs about a minute, so it gets a
/// longer bound than [`crate::WAIT_BOUND`].
const SETUP_BOUND: Duration = Duration::from_secs(600);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The cargo target dir this test binary was built into (`<target>/<profile>/deps/it-…`), so a
/// checkout with its own target dir gets its own venv.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The venv's python, after running `setup-venv.sh` once per test process.
async fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let setup = tokio::task::spawn_blocking(|| PYTHON.get_or_init(setup_venv).clone());
    match tokio::time::timeout(SETUP_BOUND, setup).await {
        Ok(Ok(Ok(python))) => python,
        Ok(Ok(Err(e))) => panic!("{e}"),
        Ok(Err(e)) => panic!("venv setup task failed: {e}"),
        Err(_) => panic!("timed out setting up the interop venv"),
    }
}

fn setup_venv() -> Result<PathBuf, String> {
    let script = interop_dir().join("setup-venv.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(target_dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{stdout}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let python = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    if !python.is_file() {
        return Err(format!("setup-venv.sh printed no python path: {stdout:?}"));
    }
    Ok(python)
}

/// A command for the venv's python running `script` from `tests/interop`, in an environment
/// without `OTEL_*` or proxy variables that would change what the SDK does or where it connects.
fn py_command(python: &Path, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(interop_dir().join(script));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let lower = key.to_ascii_lowercase();
        if key.starts_with("OTEL_") || lower.ends_with("_proxy") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    cmd
}

/// A child process that is killed when the guard drops (a failing test leaves nothing behind).
struct ChildGuard {
    child: Child,
    stderr: tempfile::NamedTempFile,
}

impl ChildGuard {
    fn spawn(mut cmd: Command) -> ChildGuard {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap());
        let child = cmd.spawn().unwrap();
        ChildGuard { child, stderr }
    }

    fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().unwrap()
    }

    fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().unwrap()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Runs `send.py` to completion and returns its description of what it exported.
async fn run_send(python: &Path, protocol: &str, endpoint: &str, compression: &str) -> Value {
    let mut cmd = py_command(python, "send.py");
    cmd.args(["--protocol", protocol, "--endpoint", endpoint])
        .args(["--compression", compression])
        .args(["--tag", &format!("{protocol}-{compression}")])
        .stdin(Stdio::null());
    let out = bounded("send.py", cmd.output()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "send.py --protocol {protocol} --compression {compression} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("send.py printed bad JSON ({e}): {stdout}"))
}

// ---- The description shape shared with send.py -------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn any(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => json!({ "empty": null }),
        Some(any_value::Value::StringValue(s)) => json!({ "string": s }),
        Some(any_value::Value::BoolValue(b)) => json!({ "bool": b }),
        Some(any_value::Value::IntValue(i)) => json!({ "int": i }),
        Some(any_value::Value::DoubleValue(d)) => json!({ "double": d }),
        Some(any_value::Value::BytesValue(b)) => json!({ "bytes": hex(b) }),
        Some(any_value::Value::ArrayValue(a)) => {
            json!({ "array": a.values.iter().map(|v| any(Some(v))).collect::<Vec<_>>() })
        }
        Some(any_value::Value::KvlistValue(kv)) => json!({ "kvlist": attrs(&kv.values) }),
        Some(any_value::Value::StringValueStrindex(i)) => json!({ "string_strindex": i }),
    }
}

fn attrs(kvs: &[KeyValue]) -> Value {
    let mut map = Map::new();
    for kv in kvs {
        let previous = map.insert(kv.key.clone(), any(kv.value.as_ref()));
        assert!(previous.is_none(), "duplicate attribute key {:?}", kv.key);
    }
    Value::Object(map)
}

fn resource_desc(r: Option<&Resource>, schema_url: &str) -> Value {
    json!({
        "attributes": attrs(r.map(|r| &r.attributes[..]).unwrap_or_default()),
        "schema_url": schema_url,
    })
}

fn scope_desc(s: Option<&InstrumentationScope>, schema_url: &str) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "name": s.name,
            "version": s.version,
            "attributes": attrs(&s.attributes),
            "schema_url": schema_url,
        }),
    }
}

fn span_kind(k: i32) -> String {
    match k {
        1 => "internal".into(),
        2 => "server".into(),
        3 => "client".into(),
        4 => "producer".into(),
        5 => "consumer".into(),
        other => format!("kind {other}"),
    }
}

fn status_code(c: i32) -> String {
    match c {
        0 => "unset".into(),
        1 => "ok".into(),
        2 => "error".into(),
        other => format!("code {other}"),
    }
}

fn temporality(t: i32) -> String {
    match t {
        1 => "delta".into(),
        2 => "cumulative".into(),
        other => format!("temporality {other}"),
    }
}

fn describe_traces(rs: &[ResourceSpans]) -> Vec<Value> {
    let mut out = vec![];
    for r in rs {
        for ss in &r.scope_spans {
            for s in &ss.spans {
                out.push(json!({
                    "resource": resource_desc(r.resource.as_ref(), &r.schema_url),
                    "scope": scope_desc(ss.scope.as_ref(), &ss.schema_url),
                    "span": {
                        "trace_id": hex(&s.trace_id),
                        "span_id": hex(&s.span_id),
                        "parent_span_id": hex(&s.parent_span_id),
                        "trace_state": s.trace_state,
                        "flags": s.flags,
                        "name": s.name,
                        "kind": span_kind(s.kind),
                        "start_time_unix_nano": s.start_time_unix_nano,
                        "end_time_unix_nano": s.end_time_unix_nano,
                        "attributes": attrs(&s.attributes),
                        "events": s.events.iter().map(|e| json!({
                            "name": e.name,
                            "time_unix_nano": e.time_unix_nano,
                            "attributes": attrs(&e.attributes),
                        })).collect::<Vec<_>>(),
                        "links": s.links.iter().map(|l| json!({
                            "trace_id": hex(&l.trace_id),
                            "span_id": hex(&l.span_id),
                            "trace_state": l.trace_state,
                            "flags": l.flags,
                            "attributes": attrs(&l.attributes),
                        })).collect::<Vec<_>>(),
                        "status": s.status.as_ref().map(|st| json!({
                            "code": status_code(st.code),
                            "message": st.message,
                        })),
                    },
                }));
            }
        }
    }
    out
}

fn describe_metrics(rm: &[ResourceMetrics]) -> Vec<Value> {
    let mut out = vec![];
    for r in rm {
        for sm in &r.scope_metrics {
            for m in &sm.metrics {
                let mut desc = json!({
                    "name": m.name, "description": m.description, "unit": m.unit,
                });
                let points: Vec<Value> = match &m.data {
                    Some(metric::Data::Sum(s)) => {
                        desc["kind"] = json!("sum");
                        desc["monotonic"] = json!(s.is_monotonic);
                        desc["temporality"] = json!(temporality(s.aggregation_temporality));
                        s.data_points.iter().map(number_point).collect()
                    }
                    Some(metric::Data::Gauge(g)) => {
                        desc["kind"] = json!("gauge");
                        g.data_points.iter().map(number_point).collect()
                    }
                    Some(metric::Data::Histogram(h)) => {
                        desc["kind"] = json!("histogram");
                        desc["temporality"] = json!(temporality(h.aggregation_temporality));
                        h.data_points
                            .iter()
                            .map(|p| {
                                json!({
                                    "attributes": attrs(&p.attributes),
                                    "start_time_unix_nano": p.start_time_unix_nano,
                                    "time_unix_nano": p.time_unix_nano,
                                    "count": p.count,
                                    "sum": p.sum,
                                    "bucket_counts": p.bucket_counts,
                                    "explicit_bounds": p.explicit_bounds,
                                    "min": p.min,
                                    "max": p.max,
                                })
                            })
                            .collect()
                    }
                    other => vec![json!({ "unexpected data": format!("{other:?}") })],
                };
                for point in points {
                    out.push(json!({
                        "resource": resource_desc(r.resource.as_ref(), &r.schema_url),
                        "scope": scope_desc(sm.scope.as_ref(), &sm.schema_url),
                        "metric": desc,
                        "point": point,
                    }));
                }
            }
        }
    }
    out
}

fn number_point(p: &sluice_proto::metrics::v1::NumberDataPoint) -> Value {
    let value = match p.value {
        Some(number_data_point::Value::AsInt(i)) => json!({ "int": i }),
        Some(number_data_point::Value::AsDouble(d)) => json!({ "double": d }),
        None => Value::Null,
    };
    json!({
        "attributes": attrs(&p.attributes),
        "start_time_unix_nano": p.start_time_unix_nano,
        "time_unix_nano": p.time_unix_nano,
        "value": value,
    })
}

fn describe_logs(rl: &[ResourceLogs]) -> Vec<Value> {
    let mut out = vec![];
    for r in rl {
        for sl in &r.scope_logs {
            for l in &sl.log_records {
                out.push(json!({
                    "resource": resource_desc(r.resource.as_ref(), &r.schema_url),
                    "scope": scope_desc(sl.scope.as_ref(), &sl.schema_url),
                    "record": {
                        "time_unix_nano": l.time_unix_nano,
                        "observed_time_unix_nano": l.observed_time_unix_nano,
                        "severity_number": l.severity_number,
                        "severity_text": l.severity_text,
                        "body": any(l.body.as_ref()),
                        "attributes": attrs(&l.attributes),
                        "trace_id": hex(&l.trace_id),
                        "span_id": hex(&l.span_id),
                        "flags": l.flags,
                        "event_name": l.event_name,
                    },
                }));
            }
        }
    }
    out
}

/// Descriptions of every item of `signal` in `payloads`.
fn describe(payloads: &[Payload], signal: Signal) -> Vec<Value> {
    let mut out = vec![];
    for p in payloads {
        match (p, signal) {
            (Payload::Traces(rs), Signal::Traces) => out.extend(describe_traces(rs)),
            (Payload::Metrics(rm), Signal::Metrics) => out.extend(describe_metrics(rm)),
            (Payload::Logs(rl), Signal::Logs) => out.extend(describe_logs(rl)),
            _ => {}
        }
    }
    out
}

/// Asserts the two lists hold the same items (order aside: requests may arrive in any order),
/// showing the first difference in full.
fn assert_same_items(what: &str, mut expected: Vec<Value>, mut actual: Vec<Value>) {
    let key = |v: &Value| v.to_string();
    expected.sort_by_key(key);
    actual.sort_by_key(key);
    for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
        if e != a {
            panic!(
                "{what}: item {i} (sorted) differs\nexpected (sent): {}\nactual (received): {}\n{}",
                serde_json::to_string_pretty(e).unwrap(),
                serde_json::to_string_pretty(a).unwrap(),
                first_difference(e, a, String::new()).unwrap_or_default(),
            );
        }
    }
    assert_eq!(
        expected.len(),
        actual.len(),
        "{what}: {} sent, {} received",
        expected.len(),
        actual.len()
    );
}

/// The path and values of the first place two JSON values differ.
fn first_difference(e: &Value, a: &Value, path: String) -> Option<String> {
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for k in eo.keys().chain(ao.keys()) {
                let p = format!("{path}.{k}");
                match (eo.get(k), ao.get(k)) {
                    (Some(ev), Some(av)) => {
                        if let Some(d) = first_difference(ev, av, p) {
                            return Some(d);
                        }
                    }
                    (ev, av) => return Some(format!("at {p}: sent {ev:?}, received {av:?}")),
                }
            }
            None
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => ea
            .iter()
            .zip(aa)
            .enumerate()
            .find_map(|(i, (ev, av))| first_difference(ev, av, format!("{path}[{i}]"))),
        _ if e == a => None,
        _ => Some(format!("at {path}: sent {e}, received {a}")),
    }
}

fn sent(descriptions: &[Value], signal: &str) -> Vec<Value> {
    descriptions
        .iter()
        .flat_map(|d| d[signal].as_array().unwrap().iter().cloned())
        .collect()
}

// ---- 1. Python SDK -> sluice otlp receiver -------------------------------------------------

async fn python_sdk_to_receiver(protocol: &str) {
    let python = python().await;
    let sink_name = format!("interop-sdk-{protocol}");
    let yaml = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:0" }}
      http: {{ endpoint: "127.0.0.1:0" }}
exporters:
  collect: {{ sink: {sink_name} }}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [collect] }}
    metrics: {{ receivers: [otlp], exporters: [collect] }}
    logs: {{ receivers: [otlp], exporters: [collect] }}
"#
    );
    let (service, _t) = start_yaml(&yaml).await;
    let id: ComponentId = "otlp".parse().unwrap();
    let label = if protocol == "grpc" { "grpc" } else { "http" };
    let endpoint = service
        .endpoints()
        .get(&id, label)
        .unwrap_or_else(|| panic!("the otlp receiver reported no {label} endpoint"));
    let endpoint = endpoint.to_string();

    let mut descriptions = vec![];
    for compression in ["none", "gzip"] {
        descriptions.push(run_send(&python, protocol, &endpoint, compression).await);
    }
    let expected_traces = sent(&descriptions, "traces");
    let expected_metrics = sent(&descriptions, "metrics");
    let expected_logs = sent(&descriptions, "logs");
    assert_eq!(expected_traces.len(), 2 * 5, "send.py's spans per run");
    assert_eq!(expected_logs.len(), 2 * 4, "send.py's log records per run");
    // 8 points (2 per instrument), collected twice per run: by force_flush and by shutdown.
    assert_eq!(
        expected_metrics.len(),
        2 * 2 * 8,
        "send.py's metric points per run"
    );

    let sink = testing::sink(&sink_name);
    for (signal, n) in [
        (Signal::Traces, expected_traces.len()),
        (Signal::Metrics, expected_metrics.len()),
        (Signal::Logs, expected_logs.len()),
    ] {
        bounded(
            &format!("{n} {signal:?} items in the sink"),
            sink.wait_for_items(signal, n),
        )
        .await;
    }
    bounded("service shutdown", service.shutdown()).await;

    let payloads = sink.payloads();
    assert_same_items(
        &format!("{protocol} spans"),
        expected_traces,
        describe(&payloads, Signal::Traces),
    );
    assert_same_items(
        &format!("{protocol} metric points"),
        expected_metrics,
        describe(&payloads, Signal::Metrics),
    );
    assert_same_items(
        &format!("{protocol} log records"),
        expected_logs,
        describe(&payloads, Signal::Logs),
    );
}

#[tokio::test]
async fn python_sdk_over_grpc_reaches_the_otlp_receiver_intact() {
    python_sdk_to_receiver("grpc").await;
}

#[tokio::test]
async fn python_sdk_over_http_protobuf_reaches_the_otlp_receiver_intact() {
    python_sdk_to_receiver("http").await;
}

// ---- 2. sluice otlp exporter -> Python grpcio sink -----------------------------------------

/// One request line of `sink_server.py`.
struct Received {
    signal: String,
    metadata: Value,
    json: Value,
    protobuf: Vec<u8>,
}

async fn otlp_exporter_to_python_sink(compression: &str) {
    let python = python().await;
    let mut cmd = py_command(&python, "sink_server.py");
    if compression == "none" {
        // A gzip request would then fail, and the counts below with it.
        cmd.arg("--refuse-gzip");
    }
    let mut server = ChildGuard::spawn(cmd);
    let stdin = server.stdin();
    let mut lines = BufReader::new(server.stdout()).lines();
    let port = match bounded("sink_server.py's port", lines.next_line()).await {
        Ok(Some(line)) => line
            .trim()
            .parse::<u16>()
            .unwrap_or_else(|e| panic!("sink_server.py's first line {line:?}: {e}")),
        other => panic!(
            "sink_server.py printed no port ({other:?}); stderr:\n{}",
            server.stderr_text()
        ),
    };
    let reader = tokio::spawn(async move {
        let mut out = vec![];
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push(line);
        }
        out
    });

    let name = format!("interop-exp-{compression}");
    let yaml = format!(
        r#"
receivers:
  inject: {{ name: {name} }}
exporters:
  otlp:
    endpoint: "127.0.0.1:{port}"
    protocol: grpc
    compression: {compression}
    headers: {{ x-interop-test: "{name}" }}
service:
  pipelines:
    traces: {{ receivers: [inject], exporters: [otlp] }}
    metrics: {{ receivers: [inject], exporters: [otlp] }}
    logs: {{ receivers: [inject], exporters: [otlp] }}
"#
    );
    let (service, t) = start_yaml(&yaml).await;
    let out = testing::injector(&name).await;
    let pushed = [
        (Signal::Traces, spans(25)),
        (Signal::Traces, spans(3)),
        (Signal::Metrics, gauge_points("interop.g", 13)),
        (Signal::Metrics, gauge_points("interop.h", 1)),
        (Signal::Logs, log_records(7)),
        (Signal::Logs, log_records(2)),
    ];
    for (signal, payload) in &pushed {
        bounded(
            "push",
            out.get(*signal).unwrap().send(Batch::new(payload.clone())),
        )
        .await
        .unwrap();
    }
    drop(out);
    bounded("service shutdown (drains the exporter)", service.shutdown()).await;
    drop(stdin);
    let lines = bounded("sink_server.py's output", reader).await.unwrap();
    let status = bounded("sink_server.py's exit", server.child.wait())
        .await
        .unwrap();
    assert!(
        status.success(),
        "sink_server.py exited with {status}; stderr:\n{}",
        server.stderr_text()
    );

    let received: Vec<Received> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("sink_server.py line is not JSON ({e}): {l}"));
            Received {
                signal: v["signal"].as_str().unwrap().to_string(),
                metadata: v["metadata"].clone(),
                json: v["request"].clone(),
                protobuf: unhex(v["protobuf_hex"].as_str().unwrap()),
            }
        })
        .collect();
    assert!(!received.is_empty(), "sink_server.py received nothing");
    for r in &received {
        assert_eq!(
            r.metadata["x-interop-test"], name,
            "the configured header, on a {} request: {}",
            r.signal, r.metadata
        );
    }

    let mut got: Vec<Payload> = vec![];
    for r in &received {
        match r.signal.as_str() {
            "traces" => {
                let req = ExportTraceServiceRequest::decode(&r.protobuf[..]).unwrap();
                check_trace_json(&r.json, &req);
                got.push(Payload::Traces(req.resource_spans));
            }
            "metrics" => {
                let req = ExportMetricsServiceRequest::decode(&r.protobuf[..]).unwrap();
                got.push(Payload::Metrics(req.resource_metrics));
            }
            "logs" => {
                let req = ExportLogsServiceRequest::decode(&r.protobuf[..]).unwrap();
                got.push(Payload::Logs(req.resource_logs));
            }
            other => panic!("unknown signal {other}"),
        }
    }
    let sent: Vec<Payload> = pushed.iter().map(|(_, p)| p.clone()).collect();
    for (signal, n) in [
        (Signal::Traces, 28),
        (Signal::Metrics, 14),
        (Signal::Logs, 9),
    ] {
        let expected = describe(&sent, signal);
        assert_eq!(expected.len(), n);
        assert_same_items(
            &format!("otlp exporter ({compression}) {signal:?}"),
            expected,
            describe(&got, signal),
        );
    }
    let exporter = ("exporter", "otlp");
    assert_eq!(t.value("sluice_exporter_sent_spans", &[exporter]), Some(28));
    assert_eq!(
        t.value("sluice_exporter_sent_metric_points", &[exporter]),
        Some(14)
    );
    assert_eq!(
        t.value("sluice_exporter_sent_log_records", &[exporter]),
        Some(9)
    );
}

/// The request as `json_format.MessageToJson` rendered it (proto3 JSON: camelCase names, base64
/// ids) names the same spans with the same ids as the binary form.
fn check_trace_json(json: &Value, req: &ExportTraceServiceRequest) {
    let json_spans: Vec<&Value> = json["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
        .flat_map(|ss| ss["spans"].as_array().unwrap())
        .collect();
    let spans: Vec<_> = req
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    assert_eq!(json_spans.len(), spans.len());
    for (j, s) in json_spans.iter().zip(spans) {
        assert_eq!(j["name"], s.name.as_str());
        assert_eq!(j["traceId"], base64(&s.trace_id).as_str());
        assert_eq!(j["spanId"], base64(&s.span_id).as_str());
    }
}

#[tokio::test]
async fn otlp_exporter_grpc_gzip_reaches_a_python_grpcio_server_intact() {
    otlp_exporter_to_python_sink("gzip").await;
}

#[tokio::test]
async fn otlp_exporter_grpc_uncompressed_reaches_a_python_grpcio_server_intact() {
    otlp_exporter_to_python_sink("none").await;
}

// ---- 3. A hand-written OTLP/JSON body over raw HTTP/1.1 ------------------------------------

/// The trace example of opentelemetry-proto (`examples/trace.json`): hex ids, times as decimal
/// strings, `kind` as a number; plus an `intValue` written as a string, as proto3 JSON does.
const SPEC_TRACE_JSON: &str = r#"{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          { "key": "service.name", "value": { "stringValue": "my.service" } }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [
              { "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }
            ]
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "parentSpanId": "EEE19B7EC3C1B173",
              "name": "I'm a server span",
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": "1544712661000000000",
              "kind": 2,
              "attributes": [
                { "key": "my.span.attr", "value": { "stringValue": "some value" } },
                { "key": "my.span.count", "value": { "intValue": "42" } }
              ]
            }
          ]
        }
      ]
    }
  ]
}"#;

#[tokio::test]
async fn otlp_json_example_over_raw_http_is_decoded_exactly() {
    let yaml = r#"
receivers:
  otlp:
    protocols:
      http: { endpoint: "127.0.0.1:0" }
exporters:
  collect: { sink: interop-json }
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [collect] }
"#;
    let (service, _t) = start_yaml(yaml).await;
    let id: ComponentId = "otlp".parse().unwrap();
    let addr = service
        .endpoints()
        .get(&id, "http")
        .expect("the otlp receiver reported its http endpoint");

    let mut stream = bounded("connect", tokio::net::TcpStream::connect(addr))
        .await
        .unwrap();
    let request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SPEC_TRACE_JSON}",
        SPEC_TRACE_JSON.len()
    );
    bounded("write request", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut response = vec![];
    bounded("read response", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "response:\n{response}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "a JSON request gets a JSON response:\n{response}"
    );
    if !body.is_empty() {
        let v: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {body:?}"));
        assert!(
            v.get("partialSuccess")
                .is_none_or(|p| p.get("rejectedSpans").is_none_or(|r| r == 0 || r == "0")),
            "nothing rejected: {v}"
        );
    }

    let sink = testing::sink("interop-json");
    bounded(
        "the span in the sink",
        sink.wait_for_items(Signal::Traces, 1),
    )
    .await;
    bounded("service shutdown", service.shutdown()).await;
    assert_eq!(sink.items(Signal::Traces), 1);

    let payloads = sink.payloads();
    let Payload::Traces(rs) = &payloads[0] else {
        panic!("unexpected payload {:?}", payloads[0]);
    };
    assert_eq!(rs.len(), 1);
    let span = &rs[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, unhex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(span.span_id, unhex("eee19b7ec3c1b174"));
    assert_eq!(span.parent_span_id, unhex("eee19b7ec3c1b173"));
    let expected = json!({
        "resource": {
            "attributes": { "service.name": { "string": "my.service" } },
            "schema_url": "",
        },
        "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": { "my.scope.attribute": { "string": "some scope attribute" } },
            "schema_url": "",
        },
        "span": {
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "parent_span_id": "eee19b7ec3c1b173",
            "trace_state": "",
            "flags": 0,
            "name": "I'm a server span",
            "kind": "server",
            "start_time_unix_nano": 1544712660000000000u64,
            "end_time_unix_nano": 1544712661000000000u64,
            "attributes": {
                "my.span.attr": { "string": "some value" },
                "my.span.count": { "int": 42 },
            },
            "events": [],
            "links": [],
            "status": null,
        },
    });
    assert_same_items(
        "the JSON example span",
        vec![expected],
        describe(&payloads, Signal::Traces),
    );
}
