//! OTLP end to end between two running services (sluice's exporter → sluice's receiver), and the
//! fault test: the exporter's target goes away and comes back.

use std::net::SocketAddr;

use sluice_pipeline::testing::{self, spans};
use sluice_pipeline::{Batch, ComponentId, Signal};

use crate::{bounded, start_yaml};

fn receiver_yaml(endpoint: &str, sink: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "{endpoint}" }}
exporters:
  collect: {{ sink: {sink} }}
service:
  pipelines:
    traces: {{ receivers: [otlp], exporters: [collect] }}
"#
    )
}

fn exporter_yaml(name: &str, target: SocketAddr, queue_size: usize) -> String {
    format!(
        r#"
receivers:
  inject: {{ name: {name} }}
exporters:
  otlp:
    endpoint: "http://{target}"
    timeout: 2s
    retry_on_failure: {{ initial_interval: 20ms, max_interval: 200ms, max_elapsed_time: 0s }}
    sending_queue: {{ queue_size: {queue_size} }}
service:
  shutdown_timeout: 30s
  pipelines:
    traces: {{ receivers: [inject], exporters: [otlp] }}
"#
    )
}

fn grpc_addr(service: &sluice_pipeline::runtime::RunningService) -> SocketAddr {
    let id: ComponentId = "otlp".parse().unwrap();
    service
        .endpoints()
        .get(&id, "grpc")
        .expect("grpc endpoint bound")
}

fn counter(t: &sluice_pipeline::telemetry::Telemetry, name: &str) -> i64 {
    t.value(name, &[("exporter", "otlp")]).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_target_down_then_back_loses_nothing_with_a_large_queue() {
    let (down, down_t) = start_yaml(&receiver_yaml("127.0.0.1:0", "otlp-fault-1")).await;
    let addr = grpc_addr(&down);
    let (sender, t) = start_yaml(&exporter_yaml("otlp-fault", addr, 1000)).await;
    let out = testing::injector("otlp-fault").await;
    let traces = out.get(Signal::Traces).unwrap().clone();
    for _ in 0..10 {
        traces.send(Batch::new(spans(10))).await.unwrap();
    }
    bounded(
        "first half",
        testing::sink("otlp-fault-1").wait_for_items(Signal::Traces, 100),
    )
    .await;
    // The target goes away; the exporter queues and retries.
    down.shutdown().await;
    assert_eq!(
        down_t.value("sluice_receiver_accepted_spans", &[("receiver", "otlp")]),
        Some(100)
    );
    for _ in 0..10 {
        traces.send(Batch::new(spans(10))).await.unwrap();
    }
    // The exporter sees the outage (and retries) before the target comes back.
    crate::wait_for_value(&t, "sluice_exporter_retries", &[("exporter", "otlp")], 1).await;
    // It comes back on the same address.
    let (back, back_t) = start_yaml(&receiver_yaml(&addr.to_string(), "otlp-fault-2")).await;
    bounded(
        "second half",
        testing::sink("otlp-fault-2").wait_for_items(Signal::Traces, 100),
    )
    .await;
    drop(traces);
    drop(out);
    sender.shutdown().await;
    back.shutdown().await;
    assert_eq!(testing::sink("otlp-fault-2").items(Signal::Traces), 100);
    assert_eq!(counter(&t, "sluice_exporter_sent_spans"), 200);
    assert_eq!(counter(&t, "sluice_exporter_send_failed_spans"), 0);
    assert_eq!(counter(&t, "sluice_exporter_enqueue_failed_spans"), 0);
    assert!(counter(&t, "sluice_exporter_retries") >= 1);
    assert_eq!(
        back_t.value("sluice_receiver_accepted_spans", &[("receiver", "otlp")]),
        Some(100)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_target_down_with_a_small_queue_counts_every_dropped_span() {
    // Nothing listens on this address while the data arrives.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let (sender, t) = start_yaml(&exporter_yaml("otlp-small", addr, 2)).await;
    let out = testing::injector("otlp-small").await;
    let traces = out.get(Signal::Traces).unwrap().clone();
    for _ in 0..10 {
        traces.send(Batch::new(spans(7))).await.unwrap();
    }
    // One batch is in a consumer's retry loop, one waits in the queue; the rest overflow.
    crate::wait_for_value(
        &t,
        "sluice_exporter_enqueue_failed_spans",
        &[("exporter", "otlp")],
        56,
    )
    .await;
    let (back, _) = start_yaml(&receiver_yaml(&addr.to_string(), "otlp-small")).await;
    bounded(
        "queued data",
        testing::sink("otlp-small").wait_for_items(Signal::Traces, 14),
    )
    .await;
    drop(traces);
    drop(out);
    sender.shutdown().await;
    back.shutdown().await;
    assert_eq!(testing::sink("otlp-small").items(Signal::Traces), 14);
    assert_eq!(counter(&t, "sluice_exporter_sent_spans"), 14);
    assert_eq!(counter(&t, "sluice_exporter_enqueue_failed_spans"), 56);
    assert_eq!(counter(&t, "sluice_exporter_send_failed_spans"), 0);
}
