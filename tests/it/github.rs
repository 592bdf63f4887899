//! The `github` receiver end to end: a service started from YAML, GitHub's payload fixtures
//! posted over a real socket with the headers GitHub sends and a signature computed with a test
//! secret, the telemetry checked in `collect` sinks; GitHub's own signed delivery with its
//! published secret; replays; bad requests; the bearer-token CI events path; port clashes; and
//! the shipped example config.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_pipeline::runtime::{graph, RunningService};
use sluice_pipeline::telemetry::Telemetry;
use sluice_pipeline::testing;
use sluice_pipeline::{ComponentId, Payload, Signal};
use sluice_receivers::github::{sign, trace_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{bounded, resolve_yaml, start_yaml};

const SECRET: &str = "it-test-secret";
/// The throwaway secret published with the signed delivery (see the fixtures' README).
const PUBLISHED_SECRET: &str = "402786017574bd28f9d8f7a18648939751c47fe09077d56e10f0444f14fbb73b";

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("receivers/src/github/testdata/webhooks")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

fn yaml(sink: &str, extra: &str) -> String {
    format!(
        r#"
receivers:
  github:
    endpoint: 127.0.0.1:0
{extra}
exporters:
  collect/traces: {{ sink: {sink}-traces }}
  collect/metrics: {{ sink: {sink}-metrics }}
  collect/logs: {{ sink: {sink}-logs }}
service:
  pipelines:
    traces: {{ receivers: [github], exporters: [collect/traces] }}
    metrics: {{ receivers: [github], exporters: [collect/metrics] }}
    logs: {{ receivers: [github], exporters: [collect/logs] }}
"#
    )
}

/// A running service with the `github` receiver configured by `extra` (indented lines), its
/// telemetry and the receiver's address.
async fn start(sink: &str, extra: &str) -> (RunningService, Arc<Telemetry>, SocketAddr) {
    let (service, telemetry) = start_yaml(&yaml(sink, extra)).await;
    let a = addr(&service);
    (service, telemetry, a)
}

fn addr(service: &RunningService) -> SocketAddr {
    let id: ComponentId = "github".parse().unwrap();
    service.endpoints().get(&id, "http").expect("http endpoint")
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), read to the end.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    bounded("an HTTP exchange", async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    })
    .await
}

/// The headers GitHub sends with a delivery, signed with `secret`.
fn github_headers(
    event: &str,
    delivery: &str,
    secret: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("User-Agent", "GitHub-Hookshot/c8f7262".into()),
        ("Content-Type", "application/json".into()),
        ("X-GitHub-Event", event.into()),
        ("X-GitHub-Delivery", delivery.into()),
        ("X-GitHub-Hook-ID", "571592807".into()),
        ("X-GitHub-Hook-Installation-Target-ID", "2010729".into()),
        (
            "X-GitHub-Hook-Installation-Target-Type",
            "repository".into(),
        ),
        ("X-Hub-Signature-256", sign(secret, body)),
    ]
}

async fn post_delivery(addr: SocketAddr, event: &str, delivery: &str, body: &[u8]) -> Reply {
    request(
        addr,
        "POST",
        "/events",
        &github_headers(event, delivery, SECRET, body),
        body,
    )
    .await
}

fn items(payloads: &[Payload]) -> usize {
    payloads.iter().map(Payload::item_count).sum()
}

fn spans_of(payloads: &[Payload]) -> Vec<sluice_proto::trace::v1::Span> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Traces(rs) => Some(rs),
            _ => None,
        })
        .flatten()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter().cloned())
        .collect()
}

/// (file, event, expected status, spans, metric points, log records)
const FIXTURES: &[(&str, &str, u16, usize, usize, usize)] = &[
    (
        "check_run.completed.payload.json",
        "check_run",
        202,
        0,
        0,
        1,
    ),
    ("ping.payload.json", "ping", 200, 0, 0, 0),
    ("ping.with-app_id.payload.json", "ping", 200, 0, 0, 0),
    ("push.payload.json", "push", 202, 0, 0, 1),
    (
        "registry_package.published.docker.payload.json",
        "registry_package",
        202,
        0,
        1,
        1,
    ),
    (
        "workflow_job.completed.success.with-organization.payload.json",
        "workflow_job",
        202,
        10,
        3,
        1,
    ),
    (
        "workflow_job.in_progress.payload.json",
        "workflow_job",
        202,
        0,
        0,
        1,
    ),
    (
        "workflow_job.queued.payload.json",
        "workflow_job",
        202,
        0,
        0,
        1,
    ),
    (
        "workflow_job.queued.with-deployment.payload.json",
        "workflow_job",
        202,
        0,
        0,
        1,
    ),
    (
        "workflow_job.waiting.payload.json",
        "workflow_job",
        202,
        0,
        0,
        1,
    ),
    (
        "workflow_run.completed.payload.json",
        "workflow_run",
        202,
        1,
        3,
        1,
    ),
    (
        "workflow_run.requested.payload.json",
        "workflow_run",
        202,
        0,
        0,
        1,
    ),
    (
        "workflow_run.requested.with-conclusion.payload.json",
        "workflow_run",
        202,
        1,
        3,
        1,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_gets_its_status_and_telemetry_and_replays_are_not_emitted() {
    let sink = "gh-fixtures";
    let (service, telemetry, a) = start(sink, &format!("    secret: {SECRET}")).await;
    let (mut spans, mut points, mut logs) = (0, 0, 0);
    for (i, (file, event, status, s, m, l)) in FIXTURES.iter().enumerate() {
        let body = fixture(file);
        let delivery = format!("fixture-{i}");
        let reply = post_delivery(a, event, &delivery, &body).await;
        assert_eq!(reply.status, *status, "{file}: {}", reply.body);
        assert!(reply.body.contains("\"ok\":true"), "{file}: {}", reply.body);
        assert_eq!(
            reply.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        // GitHub's redelivery of the same id: 200 and nothing emitted again.
        if *status == 202 {
            let again = post_delivery(a, event, &delivery, &body).await;
            assert_eq!(again.status, 200, "{file} replayed: {}", again.body);
            assert!(again.body.contains("duplicate"), "{}", again.body);
        }
        spans += s;
        points += m;
        logs += l;
    }
    let traces = testing::sink(&format!("{sink}-traces"));
    let metrics = testing::sink(&format!("{sink}-metrics"));
    let log_sink = testing::sink(&format!("{sink}-logs"));
    bounded("logs", log_sink.wait_for_items(Signal::Logs, logs)).await;
    bounded("spans", traces.wait_for_items(Signal::Traces, spans)).await;
    bounded("points", metrics.wait_for_items(Signal::Metrics, points)).await;
    service.shutdown().await;
    // Exactly once each, after the replays.
    assert_eq!(items(&log_sink.payloads()), logs);
    assert_eq!(items(&traces.payloads()), spans);
    assert_eq!(items(&metrics.payloads()), points);
    // The job's spans are in its run attempt's trace, the one the run's root span has.
    let all = spans_of(&traces.payloads());
    let job_trace = trace_id(2_202_229_078, 1).to_vec();
    assert_eq!(all.iter().filter(|s| s.trace_id == job_trace).count(), 10);
    assert!(all
        .iter()
        .all(|s| s.end_time_unix_nano >= s.start_time_unix_nano));
    let count = |event: &str, status: &str| {
        telemetry
            .value(
                "sluice_receiver_github_requests",
                &[("receiver", "github"), ("event", event), ("status", status)],
            )
            .unwrap_or(0)
    };
    assert_eq!(count("ping", "ping"), 2);
    assert_eq!(count("workflow_job", "accepted"), 5);
    assert_eq!(count("workflow_job", "duplicate"), 5);
    assert_eq!(count("workflow_run", "accepted"), 3);
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn githubs_signed_delivery_verifies_only_byte_for_byte() {
    let envelope: serde_json::Value =
        serde_json::from_slice(&fixture("workflow_run.in_progress.signed-delivery.json")).unwrap();
    let body = base64_decode(envelope["body_raw_base64"].as_str().unwrap());
    assert_eq!(body.len(), 19_497);
    let recorded = envelope["headers"].as_object().unwrap();
    let headers: Vec<(&str, String)> = [
        "user-agent",
        "content-type",
        "x-github-event",
        "x-github-delivery",
        "x-github-hook-id",
        "x-github-hook-installation-target-id",
        "x-github-hook-installation-target-type",
        "x-hub-signature",
        "x-hub-signature-256",
    ]
    .iter()
    .map(|k| (*k, recorded[*k].as_str().unwrap().to_string()))
    .collect();

    let sink = "gh-signed";
    let (service, _t, a) = start(sink, &format!("    secret: \"{PUBLISHED_SECRET}\"")).await;
    let mut flipped = body.clone();
    flipped[body.len() / 2] ^= 0x20;
    let reply = request(a, "POST", "/events", &headers, &flipped).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let reserialised = serde_json::to_vec(&value).unwrap();
    let reply = request(a, "POST", "/events", &headers, &reserialised).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let reply = request(a, "POST", "/events", &headers, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let reply = request(a, "POST", "/events", &headers, &body).await;
    assert_eq!(reply.status, 200, "a replay: {}", reply.body);
    let logs = testing::sink(&format!("{sink}-logs"));
    bounded("log", logs.wait_for_items(Signal::Logs, 1)).await;
    service.shutdown().await;
    assert_eq!(
        items(&logs.payloads()),
        1,
        "emitted once, the bad ones never"
    );
    // An in-progress run has no span yet.
    assert_eq!(
        items(&testing::sink(&format!("{sink}-traces")).payloads()),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_documented_statuses_over_the_socket() {
    let sink = "gh-bad";
    let (service, _t, a) = start(
        sink,
        &format!("    secret: {SECRET}\n    max_body_bytes: 16384"),
    )
    .await;
    let body = fixture("push.payload.json");
    let good = github_headers("push", "bad-1", SECRET, &body);
    let without = |name: &str| -> Vec<(&str, String)> {
        good.iter().filter(|(k, _)| *k != name).cloned().collect()
    };
    let with = |name: &'static str, value: &str| -> Vec<(&str, String)> {
        let mut h = without(name);
        h.push((name, value.to_string()));
        h
    };
    let post = |h: Vec<(&'static str, String)>, b: Vec<u8>| async move {
        request(a, "POST", "/events", &h, &b).await.status
    };
    assert_eq!(
        post(without("X-Hub-Signature-256"), body.clone()).await,
        401
    );
    assert_eq!(
        post(
            with(
                "X-Hub-Signature-256",
                "sha1=31b49669cc4b7ed10eede4f613768f15e114a90f"
            ),
            body.clone()
        )
        .await,
        401
    );
    assert_eq!(
        post(with("Content-Type", "text/xml"), body.clone()).await,
        415
    );
    assert_eq!(post(without("X-GitHub-Event"), body.clone()).await, 400);
    let broken = b"{\"action\":".to_vec();
    assert_eq!(
        post(github_headers("push", "bad-2", SECRET, &broken), broken).await,
        400
    );
    let big = fixture("workflow_run.completed.payload.json");
    assert_eq!(
        post(github_headers("workflow_run", "bad-3", SECRET, &big), big).await,
        413
    );
    let health = request(a, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200);
    assert_eq!(
        request(a, "POST", "/nowhere", &good, &body).await.status,
        404
    );
    // The bearer-token path is not served without a token.
    assert_eq!(
        request(a, "POST", "/api/ci-events", &[], b"{}")
            .await
            .status,
        404
    );
    // Nothing was emitted for any of them.
    assert_eq!(post(good.clone(), body.clone()).await, 202);
    let logs = testing::sink(&format!("{sink}-logs"));
    bounded("log", logs.wait_for_items(Signal::Logs, 1)).await;
    service.shutdown().await;
    assert_eq!(items(&logs.payloads()), 1);
}

/// Writes `head` and `body` (errors ignored: the server may answer and close first), then reads
/// the status line of the answer without waiting for the connection to close.
async fn raw_status(addr: SocketAddr, head: String, body: &[u8]) -> u16 {
    bounded("a raw HTTP exchange", async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(body).await;
        let mut raw = Vec::new();
        let mut chunk = [0u8; 1024];
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_oversized_bodies_are_refused_without_reading_them_whole() {
    let sink = "gh-early";
    let (service, _t, a) = start(
        sink,
        &format!("    secret: {SECRET}\n    max_body_bytes: 16384"),
    )
    .await;
    let head = |extra: &str| {
        format!(
            "POST /events HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: push\r\n{extra}\r\n"
        )
    };
    // No signature: 401 at once, while the announced body is still unsent (before the fix the
    // receiver waited for the whole body first).
    assert_eq!(
        raw_status(a, head("Content-Length: 16000\r\n"), b"").await,
        401
    );
    // A SHA-1 signature only: the same.
    assert_eq!(
        raw_status(
            a,
            head("Content-Length: 16000\r\nX-Hub-Signature: sha1=31b49669cc4b7ed10eede4f613768f15e114a90f\r\n"),
            b""
        )
        .await,
        401
    );
    // A chunked body with no announced length: 413 as soon as it passes the limit, while the
    // request is still unfinished (no terminating chunk is ever sent).
    let signature = format!("X-Hub-Signature-256: sha256={}\r\n", "0".repeat(64));
    let mut chunked = format!("{:x}\r\n", 16385).into_bytes();
    chunked.extend(std::iter::repeat_n(b'a', 16385));
    assert_eq!(
        raw_status(
            a,
            head(&format!("Transfer-Encoding: chunked\r\n{signature}")),
            &chunked
        )
        .await,
        413
    );
    service.shutdown().await;
    let logs = testing::sink(&format!("{sink}-logs"));
    assert_eq!(items(&logs.payloads()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_refused_after_read_timeout() {
    let (service, _t, a) = start(
        "gh-slow",
        &format!("    secret: {SECRET}\n    read_timeout: 200ms"),
    )
    .await;
    // A well-formed signature and an announced body that is never sent: the connection is not
    // held open (with its buffer) beyond `read_timeout`.
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-Hub-Signature-256: sha256={}\r\nContent-Length: 1000\r\n\r\n",
        "0".repeat(64)
    );
    assert_eq!(raw_status(a, head, b"{").await, 400);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_post_ci_events_with_the_bearer_token() {
    let sink = "gh-ci";
    let (service, _t, a) = start(
        sink,
        &format!("    secret: {SECRET}\n    bearer_token: t0ken-for-tests"),
    )
    .await;
    let event = br#"{"event_id":"run-1-job-2","event_name":"workflow_job","repository":"octo-org/octo-repo","status":"completed","conclusion":"success"}"#;
    let json = ("Content-Type", "application/json".to_string());
    let reply = request(
        a,
        "POST",
        "/api/ci-events",
        std::slice::from_ref(&json),
        event,
    )
    .await;
    assert_eq!(reply.status, 401);
    let auth = ("Authorization", "Bearer t0ken-for-tests".to_string());
    let reply = request(
        a,
        "POST",
        "/api/ci-events",
        &[json.clone(), auth.clone()],
        event,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.body.contains("\"ok\":true"), "{}", reply.body);
    let reply = request(
        a,
        "POST",
        "/api/ci-events",
        &[json, auth],
        br#"{"event_name":"x"}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    let logs = testing::sink(&format!("{sink}-logs"));
    bounded("log", logs.wait_for_items(Signal::Logs, 1)).await;
    service.shutdown().await;
    assert_eq!(items(&logs.payloads()), 1);
}

async fn start_err(yaml: &str) -> String {
    let cfg = resolve_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    match graph::start(cfg, Telemetry::new()).await {
        Ok(s) => {
            s.shutdown().await;
            panic!("the service started");
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_clash_or_a_missing_secret_fails_at_start() {
    let (service, _t, a) = start("gh-clash", &format!("    secret: {SECRET}")).await;
    let clash =
        yaml("gh-clash-2", &format!("    secret: {SECRET}")).replace("127.0.0.1:0", &a.to_string());
    let e = start_err(&clash).await;
    assert!(e.contains(&a.to_string()), "{e}");
    service.shutdown().await;
    let e = start_err(&yaml("gh-nosecret", "    secret: \"\"")).await;
    assert!(e.contains("insecure_skip_verify"), "{e}");
}

#[test]
fn the_example_config_resolves_against_the_registry() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/github-webhooks.yaml"),
    )
    .unwrap();
    if let Err(e) = resolve_yaml(&text) {
        panic!("configs/github-webhooks.yaml does not resolve:\n{e}");
    }
}
