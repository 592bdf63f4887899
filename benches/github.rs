//! Verified deliveries per second of the `github` receiver for a 20 KB payload (a completed
//! `workflow_job` with its steps repeated up to 20 KB: the richest event, giving a job, a queue
//! and a span per step, 3 metric points and a log record).
//!
//! - `github/handler`: the request handling alone (HMAC-SHA256 over the raw body, JSON parse,
//!   replay check, conversion to spans, metrics and logs, hand-over to pipeline channels), one
//!   delivery after another on one thread.
//! - `github/http`: a running service (github → three pipelines → counting `collect`
//!   exporters) taking deliveries over HTTP/1.1 keep-alive from 8 concurrent clients, on a
//!   2-worker runtime; each iteration waits until every log record arrived at the exporter.
//!
//! Every delivery has its own `X-GitHub-Delivery` id, so replay protection never short-cuts.
//! Uses mimalloc, as the `sluice` binary does. Run: `cargo bench --bench github`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sluice_pipeline::runtime::fanout::{Output, Outputs, PipelineInput};
use sluice_pipeline::runtime::graph;
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::testing;
use sluice_pipeline::{ComponentId, Kind, Signal};
use sluice_receivers::github::{sign, GithubReceiverConfig, WebhookHandler};

use sluice_exporters as _;
use sluice_processors as _;
use sluice_receivers as _;

/// The allocator the `sluice` binary runs with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "bench-secret";
const TARGET_BYTES: usize = 20 * 1024;

/// A completed job delivery of about 20 KB.
fn payload() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/receivers/src/github/testdata/webhooks/",
        "workflow_job.completed.success.with-organization.payload.json"
    );
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    let steps = v["workflow_job"]["steps"]
        .as_array()
        .expect("steps")
        .clone();
    let mut number = steps.len() as i64;
    'grow: loop {
        for step in &steps {
            if serde_json::to_vec(&v).expect("json").len() >= TARGET_BYTES {
                break 'grow;
            }
            number += 1;
            let mut s = step.clone();
            s["number"] = number.into();
            v["workflow_job"]["steps"]
                .as_array_mut()
                .expect("steps")
                .push(s);
        }
    }
    serde_json::to_vec(&v).expect("json")
}

fn headers(signature: &str, delivery: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-github-event", HeaderValue::from_static("workflow_job"));
    h.insert(
        "x-github-delivery",
        HeaderValue::from_str(&format!("bench-{delivery}")).expect("header"),
    );
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(signature).expect("header"),
    );
    h
}

fn bench_handler(c: &mut Criterion) {
    let body = Bytes::from(payload());
    let signature = sign(SECRET, &body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let telemetry = Telemetry::new();
    let id: ComponentId = "github".parse().expect("id");
    let ct = ComponentTelemetry::new(telemetry, Kind::Receiver, &id);
    let mut outputs = Outputs::default();
    let mut receivers = Vec::new();
    for s in Signal::ALL {
        let (tx, rx) = tokio::sync::mpsc::channel(1 << 16);
        let input = PipelineInput::new(s.as_str().parse().expect("pipeline id"), tx);
        outputs.insert(Output::new(s, id.clone(), vec![input], &ct));
        receivers.push(rx);
    }
    let handler = WebhookHandler::new(
        &GithubReceiverConfig {
            secret: SECRET.into(),
            ..Default::default()
        },
        &outputs,
        ct,
    );
    let mut group = c.benchmark_group("github");
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function(format!("handler/{}_bytes", body.len()), |b| {
        b.iter(|| {
            n += 1;
            let h = headers(&signature, n);
            let status = rt
                .block_on(handler.handle_webhook_bytes(&h, body.clone()))
                .status();
            assert_eq!(status, StatusCode::ACCEPTED);
            for rx in &mut receivers {
                while rx.try_recv().is_ok() {}
            }
        })
    });
    group.finish();
}

fn bench_http(c: &mut Criterion) {
    const CLIENTS: u64 = 8;
    let body = Bytes::from(payload());
    let signature = sign(SECRET, &body);
    let rt = common::runtime();
    let name = "bench-github";
    let yaml = format!(
        "receivers:\n  github: {{ endpoint: 127.0.0.1:0, secret: {SECRET} }}\nexporters:\n  collect/t: {{ sink: {name}-t, count_only: true }}\n  collect/m: {{ sink: {name}-m, count_only: true }}\n  collect/l: {{ sink: {name}-l, count_only: true }}\nservice:\n  pipelines:\n    traces: {{ receivers: [github], exporters: [collect/t] }}\n    metrics: {{ receivers: [github], exporters: [collect/m] }}\n    logs: {{ receivers: [github], exporters: [collect/l] }}\n"
    );
    let cfg = common::config(yaml);
    let service = rt
        .block_on(graph::start(cfg, Telemetry::new()))
        .expect("start");
    let id: ComponentId = "github".parse().expect("id");
    let addr = service.endpoints().get(&id, "http").expect("endpoint");
    let url = format!("http://{addr}/events");
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let logs = testing::sink(&format!("{name}-l"));
    let next = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("github");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("http/{}_bytes", body.len()), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = logs.items(Signal::Logs);
                let t0 = Instant::now();
                let mut tasks = Vec::new();
                for c in 0..CLIENTS {
                    let share = iters / CLIENTS + u64::from(c < iters % CLIENTS);
                    let (client, url, body, signature, next) = (
                        client.clone(),
                        url.clone(),
                        body.clone(),
                        signature.clone(),
                        next.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..share {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            let mut req = hyper::Request::post(&url)
                                .body(Full::new(body.clone()))
                                .expect("request");
                            *req.headers_mut() = headers(&signature, n);
                            let resp = client.request(req).await.expect("response");
                            assert_eq!(resp.status(), StatusCode::ACCEPTED);
                            let _ = resp.into_body().collect().await;
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("client task");
                }
                logs.wait_for_items(Signal::Logs, before + iters as usize)
                    .await;
                t0.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(service.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(20);
    targets = bench_handler, bench_http
}
criterion_main!(benches);
