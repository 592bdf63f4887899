//! The runtime with real components: delivery, fan-out, retries, overflow, ordered shutdown,
//! acknowledgements and the self-metrics endpoint.

use std::sync::{Arc, Mutex};

use sluice_pipeline::testing::{self, gauge_points, log_records, spans};
use sluice_pipeline::{Ack, AckOutcome, Batch, Signal};

use crate::{bounded, start_yaml};

fn counter(t: &sluice_pipeline::telemetry::Telemetry, name: &str, label: (&str, &str)) -> i64 {
    t.value(name, &[label]).unwrap_or(0)
}

#[tokio::test]
async fn data_reaches_every_exporter_and_is_counted() {
    let yaml = r#"
receivers:
  inject: { name: rt-fanout }
exporters:
  collect/a: { sink: rt-fanout-a }
  collect/b: { sink: rt-fanout-b }
service:
  pipelines:
    traces:
      receivers: [inject]
      exporters: [collect/a, collect/b]
    logs:
      receivers: [inject]
      exporters: [collect/a]
"#;
    let (service, t) = start_yaml(yaml).await;
    let out = testing::injector("rt-fanout").await;
    for _ in 0..5 {
        out.get(Signal::Traces)
            .unwrap()
            .send(Batch::new(spans(20)))
            .await
            .unwrap();
    }
    out.get(Signal::Logs)
        .unwrap()
        .send(Batch::new(log_records(7)))
        .await
        .unwrap();
    assert!(
        out.get(Signal::Metrics).is_none(),
        "no metrics pipeline lists the receiver"
    );
    let a = testing::sink("rt-fanout-a");
    let b = testing::sink("rt-fanout-b");
    bounded("sink a", a.wait_for_items(Signal::Traces, 100)).await;
    bounded("sink b", b.wait_for_items(Signal::Traces, 100)).await;
    bounded("sink a logs", a.wait_for_items(Signal::Logs, 7)).await;
    drop(out);
    service.shutdown().await;
    assert_eq!(a.items(Signal::Traces), 100);
    assert_eq!(b.items(Signal::Traces), 100);
    assert_eq!(b.items(Signal::Logs), 0);
    assert_eq!(
        counter(&t, "sluice_receiver_accepted_spans", ("receiver", "inject")),
        100
    );
    assert_eq!(
        counter(
            &t,
            "sluice_receiver_accepted_log_records",
            ("receiver", "inject")
        ),
        7
    );
    assert_eq!(
        counter(&t, "sluice_exporter_sent_spans", ("exporter", "collect/a")),
        100
    );
    assert_eq!(
        counter(&t, "sluice_exporter_sent_spans", ("exporter", "collect/b")),
        100
    );
    assert_eq!(
        counter(
            &t,
            "sluice_exporter_sent_log_records",
            ("exporter", "collect/a")
        ),
        7
    );
    // Identity preserved: the first span of the first batch is the one we sent.
    match &a.payloads()[0] {
        sluice_pipeline::Payload::Traces(rs) => {
            assert_eq!(rs[0].scope_spans[0].spans[0].name, "span-0");
        }
        other => panic!("unexpected payload {other:?}"),
    }
}

#[tokio::test]
async fn one_receiver_feeds_every_pipeline_that_lists_it() {
    let yaml = r#"
receivers:
  inject: { name: rt-shared }
exporters:
  collect/x: { sink: rt-shared-x }
  collect/y: { sink: rt-shared-y }
service:
  pipelines:
    metrics/x: { receivers: [inject], exporters: [collect/x] }
    metrics/y: { receivers: [inject], exporters: [collect/y] }
"#;
    let (service, t) = start_yaml(yaml).await;
    let out = testing::injector("rt-shared").await;
    out.get(Signal::Metrics)
        .unwrap()
        .send(Batch::new(gauge_points("g", 9)))
        .await
        .unwrap();
    bounded(
        "x",
        testing::sink("rt-shared-x").wait_for_items(Signal::Metrics, 9),
    )
    .await;
    bounded(
        "y",
        testing::sink("rt-shared-y").wait_for_items(Signal::Metrics, 9),
    )
    .await;
    drop(out);
    service.shutdown().await;
    assert_eq!(
        counter(
            &t,
            "sluice_receiver_accepted_metric_points",
            ("receiver", "inject")
        ),
        9
    );
}

#[tokio::test(start_paused = true)]
async fn exporter_failing_n_times_then_succeeding_loses_nothing() {
    let yaml = r#"
receivers:
  inject: { name: rt-flaky }
exporters:
  flaky:
    sink: rt-flaky
    fail_times: 4
    retry_on_failure: { initial_interval: 1s, max_interval: 4s, max_elapsed_time: 0s }
service:
  pipelines:
    logs: { receivers: [inject], exporters: [flaky] }
"#;
    let (service, t) = start_yaml(yaml).await;
    let out = testing::injector("rt-flaky").await;
    for _ in 0..3 {
        out.get(Signal::Logs)
            .unwrap()
            .send(Batch::new(log_records(10)))
            .await
            .unwrap();
    }
    let sink = testing::sink("rt-flaky");
    bounded("all logs", sink.wait_for_items(Signal::Logs, 30)).await;
    drop(out);
    service.shutdown().await;
    assert_eq!(sink.items(Signal::Logs), 30);
    assert_eq!(
        sink.attempts(),
        4 + 3,
        "4 failures then one success per batch"
    );
    assert_eq!(
        counter(
            &t,
            "sluice_exporter_sent_log_records",
            ("exporter", "flaky")
        ),
        30
    );
    assert_eq!(
        counter(
            &t,
            "sluice_exporter_send_failed_log_records",
            ("exporter", "flaky")
        ),
        0
    );
    assert_eq!(
        counter(&t, "sluice_exporter_retries", ("exporter", "flaky")),
        4
    );
}

#[tokio::test(start_paused = true)]
async fn queue_overflow_and_shutdown_deadline_count_every_dropped_item() {
    // The exporter never succeeds and waits an hour between attempts: one batch is held by the
    // consumer, one waits in the queue (queue_size 2), the other eight overflow.
    let yaml = r#"
receivers:
  inject: { name: rt-overflow }
exporters:
  flaky:
    sink: rt-overflow
    fail_times: 1000000
    queue_size: 2
    retry_on_failure: { initial_interval: 1h, max_interval: 1h, max_elapsed_time: 0s }
service:
  shutdown_timeout: 5s
  pipelines:
    traces: { receivers: [inject], exporters: [flaky] }
"#;
    let (service, t) = start_yaml(yaml).await;
    let out = testing::injector("rt-overflow").await;
    for _ in 0..10 {
        out.get(Signal::Traces)
            .unwrap()
            .send(Batch::new(spans(3)))
            .await
            .unwrap();
    }
    let sink = testing::sink("rt-overflow");
    bounded("first attempt", sink.wait_for_attempts(1)).await;
    drop(out);
    service.shutdown().await;
    let id = ("exporter", "flaky");
    assert_eq!(
        counter(&t, "sluice_receiver_accepted_spans", ("receiver", "inject")),
        30
    );
    assert_eq!(counter(&t, "sluice_exporter_enqueue_failed_spans", id), 24);
    assert_eq!(counter(&t, "sluice_exporter_send_failed_spans", id), 6);
    assert_eq!(counter(&t, "sluice_exporter_sent_spans", id), 0);
    assert_eq!(counter(&t, "sluice_exporter_queue_size", id), 0);
    assert_eq!(sink.items(Signal::Traces), 0);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_exhausted_retries_are_counted() {
    let yaml = r#"
receivers:
  inject: { name: rt-perm }
exporters:
  flaky/perm: { sink: rt-perm, fail_times: 1, permanent: true }
  flaky/exhaust:
    sink: rt-exhaust
    fail_times: 1000
    retry_on_failure: { initial_interval: 1s, randomization_factor: 0, multiplier: 2, max_interval: 8s, max_elapsed_time: 20s }
service:
  pipelines:
    metrics: { receivers: [inject], exporters: [flaky/perm, flaky/exhaust] }
"#;
    let (service, t) = start_yaml(yaml).await;
    let out = testing::injector("rt-perm").await;
    out.get(Signal::Metrics)
        .unwrap()
        .send(Batch::new(gauge_points("a", 4)))
        .await
        .unwrap();
    out.get(Signal::Metrics)
        .unwrap()
        .send(Batch::new(gauge_points("b", 5)))
        .await
        .unwrap();
    let perm = testing::sink("rt-perm");
    bounded("second batch", perm.wait_for_items(Signal::Metrics, 5)).await;
    let exhaust = testing::sink("rt-exhaust");
    bounded("retries exhausted", exhaust.wait_for_attempts(10)).await;
    drop(out);
    service.shutdown().await;
    assert_eq!(perm.attempts(), 2, "the permanent failure is not retried");
    assert_eq!(
        counter(
            &t,
            "sluice_exporter_send_failed_metric_points",
            ("exporter", "flaky/perm")
        ),
        4
    );
    assert_eq!(
        counter(
            &t,
            "sluice_exporter_sent_metric_points",
            ("exporter", "flaky/perm")
        ),
        5
    );
    // Delays 1+2+4+8 = 15s fit in 20s; the next (8s) would not: 5 attempts per batch.
    assert_eq!(exhaust.attempts(), 10);
    assert_eq!(
        counter(
            &t,
            "sluice_exporter_send_failed_metric_points",
            ("exporter", "flaky/exhaust")
        ),
        9
    );
}

#[tokio::test]
async fn acknowledgements_report_the_end_of_every_copy() {
    let yaml = r#"
receivers:
  inject: { name: rt-ack }
exporters:
  collect/a: { sink: rt-ack-a }
  collect/b: { sink: rt-ack-b }
service:
  pipelines:
    logs: { receivers: [inject], exporters: [collect/a, collect/b] }
"#;
    let (service, _t) = start_yaml(yaml).await;
    let out = testing::injector("rt-ack").await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let mut batch = Batch::new(log_records(3));
    batch.meta.acks.push(Ack::new(move |o: AckOutcome| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(o);
        }
    }));
    out.get(Signal::Logs).unwrap().send(batch).await.unwrap();
    let outcome = bounded("ack", rx).await.unwrap();
    assert_eq!(outcome, AckOutcome::Done);
    assert_eq!(testing::sink("rt-ack-a").items(Signal::Logs), 3);
    assert_eq!(testing::sink("rt-ack-b").items(Signal::Logs), 3);
    drop(out);
    service.shutdown().await;
}

#[tokio::test]
async fn self_metrics_are_served_in_prometheus_format() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let yaml = r#"
receivers:
  inject: { name: rt-prom }
exporters:
  collect: { sink: rt-prom }
service:
  telemetry:
    metrics: { address: "127.0.0.1:0" }
  pipelines:
    traces: { receivers: [inject], exporters: [collect] }
"#;
    let (service, _t) = start_yaml(yaml).await;
    let out = testing::injector("rt-prom").await;
    out.get(Signal::Traces)
        .unwrap()
        .send(Batch::new(spans(2)))
        .await
        .unwrap();
    bounded(
        "spans",
        testing::sink("rt-prom").wait_for_items(Signal::Traces, 2),
    )
    .await;
    let addr = service
        .endpoints()
        .all()
        .into_iter()
        .find(|(_, l, _)| l == "metrics")
        .map(|(_, _, a)| a)
        .expect("metrics endpoint bound");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    bounded("metrics response", s.read_to_string(&mut body))
        .await
        .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("sluice_receiver_accepted_spans{receiver=\"inject\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE sluice_exporter_queue_size gauge"),
        "{body}"
    );
    drop(out);
    service.shutdown().await;
}

#[tokio::test]
async fn a_port_clash_fails_startup_with_the_endpoint_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let yaml = format!(
        r#"
receivers:
  inject: {{ name: rt-clash }}
exporters:
  collect: {{ sink: rt-clash }}
service:
  telemetry:
    metrics: {{ address: "{addr}" }}
  pipelines:
    traces: {{ receivers: [inject], exporters: [collect] }}
"#
    );
    let cfg = crate::resolve_yaml(&yaml).unwrap();
    let err = match sluice_pipeline::runtime::graph::start(
        cfg,
        sluice_pipeline::telemetry::Telemetry::new(),
    )
    .await
    {
        Ok(_) => panic!("started despite the port clash"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[tokio::test]
async fn an_exporter_that_panics_is_counted_and_the_service_keeps_running() {
    let yaml = r#"
receivers:
  inject: { name: rt-panic }
exporters:
  flaky: { sink: rt-panic, fail_times: 1, panic: true }
service:
  pipelines:
    logs: { receivers: [inject], exporters: [flaky] }
"#;
    let (service, t) = start_yaml(yaml).await;
    let out = testing::injector("rt-panic").await;
    out.get(Signal::Logs)
        .unwrap()
        .send(Batch::new(log_records(2)))
        .await
        .unwrap();
    out.get(Signal::Logs)
        .unwrap()
        .send(Batch::new(log_records(5)))
        .await
        .unwrap();
    let sink = testing::sink("rt-panic");
    bounded("second batch", sink.wait_for_items(Signal::Logs, 5)).await;
    drop(out);
    service.shutdown().await;
    let id = ("exporter", "flaky");
    assert_eq!(counter(&t, "sluice_exporter_failures", id), 1);
    assert_eq!(
        counter(&t, "sluice_exporter_send_failed_log_records", id),
        2
    );
    assert_eq!(counter(&t, "sluice_exporter_sent_log_records", id), 5);
}
