//! The `sli` processor through a real pipeline: `configs/sli-example.yaml` (R4's five SLIs),
//! with its receiver and exporter swapped for `inject` and `collect` by a second config file
//! merged over it, fed sixteen minutes of data that cross each band; the exact alert sequence,
//! the status gauges and the untouched metrics arrive at the exporter.

use sluice_pipeline::testing::temporality;
use std::sync::Arc;

use sluice_pipeline::config::{self as cfg, ConfigSource};
use sluice_pipeline::otlp::{attr_str, kv_str, resource};
use sluice_pipeline::registry::Registry;
use sluice_pipeline::runtime::{graph, RunningService};
use sluice_pipeline::telemetry::Telemetry;
use sluice_pipeline::testing;
use sluice_pipeline::{Batch, Payload, Signal};
use sluice_processors::sli::{AlertEvent, ALERT_EVENT_NAME, STATUS_METRIC, VALUE_METRIC};
use sluice_proto::common::v1::any_value;
use sluice_proto::metrics::v1::{
    metric, number_data_point, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};

use crate::{bounded, resolve_yaml};

const EXAMPLE: &str = include_str!("../../configs/sli-example.yaml");

/// Minute `m` of the scenario, in nanoseconds (2023-11-14T22:00Z plus `m` minutes; in the past,
/// as the `sli` processor refuses points far ahead of the wall clock).
fn at(m: u64) -> u64 {
    (1_699_999_200 + m * 60) * 1_000_000_000
}

/// Starts the example with `inject` and `collect` in place of its receiver and exporter.
async fn start_example(name: &str) -> (RunningService, Arc<Telemetry>) {
    let overlay = format!(
        r#"
receivers:
  inject/sli: {{ name: {name} }}
exporters:
  collect/sli: {{ sink: {name} }}
service:
  pipelines:
    metrics:
      receivers: [inject/sli]
      exporters: [collect/sli]
"#
    );
    let sources = [
        ConfigSource {
            name: "configs/sli-example.yaml".into(),
            text: EXAMPLE.into(),
        },
        ConfigSource {
            name: "overlay.yaml".into(),
            text: overlay,
        },
    ];
    let env = |_: &str| None;
    let node = cfg::load_sources(&sources, &env).unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::global().unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let resolved = cfg::resolve(&node, registry, &env).unwrap_or_else(|e| panic!("{e}"));
    let telemetry = Telemetry::new();
    let service = graph::start(resolved, telemetry.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (service, telemetry)
}

// ---------------------------------------------------------------------------------------------
// The scenario: one value per SLI and minute, m = 1..=16.

const SESSION: [f64; 16] = [
    300.0, 420.0, 430.0, 440.0, 520.0, 530.0, 540.0, 900.0, 300.0, 300.0, 300.0, 300.0, 300.0,
    300.0, 300.0, 300.0,
];
const SESSION_BOUNDS: [f64; 7] = [100.0, 200.0, 300.0, 400.0, 500.0, 800.0, 1000.0];
const POLICY: [f64; 4] = [200.0, 310.0, 320.0, 330.0]; // then 200
const POLICY_BOUNDS: [f64; 6] = [100.0, 200.0, 250.0, 300.0, 500.0, 1000.0];
const ENCRYPTION_BOUNDS: [f64; 6] = [5.0, 10.0, 15.0, 20.0, 50.0, 100.0];

/// 100 observations of `value` as bucket counts over `bounds` (the bucket it falls in).
fn hundred_at(bounds: &[f64], value: f64) -> Vec<u64> {
    let mut counts = vec![0; bounds.len() + 1];
    let i = bounds
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(bounds.len());
    counts[i] = 100;
    counts
}

fn histogram_metric(
    name: &str,
    m: u64,
    counts: Vec<u64>,
    bounds: &[f64],
    cumulative: bool,
) -> Metric {
    Metric {
        name: name.into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: if cumulative { at(0) } else { at(m - 1) },
                time_unix_nano: at(m),
                count: counts.iter().sum(),
                sum: Some(0.0),
                bucket_counts: counts,
                explicit_bounds: bounds.to_vec(),
                ..Default::default()
            }],
            aggregation_temporality: temporality(cumulative),
        })),
        ..Default::default()
    }
}

fn sum_metric(name: &str, m: u64, points: Vec<(Option<&str>, i64)>, cumulative: bool) -> Metric {
    Metric {
        name: name.into(),
        unit: "{packet}".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points
                .into_iter()
                .map(|(outcome, v)| NumberDataPoint {
                    start_time_unix_nano: if cumulative { at(0) } else { at(m - 1) },
                    time_unix_nano: at(m),
                    value: Some(number_data_point::Value::AsInt(v)),
                    attributes: outcome
                        .map(|o| vec![kv_str("outcome", o)])
                        .unwrap_or_default(),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: temporality(cumulative),
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// Minute `m`'s metrics of all five SLIs, as one export from the device.
fn minute(m: u64) -> ResourceMetrics {
    let i = (m - 1) as usize;
    // Session: a cumulative histogram; each minute adds 100 observations.
    let mut session = vec![0u64; SESSION_BOUNDS.len() + 1];
    for v in &SESSION[..=i] {
        for (c, n) in session.iter_mut().zip(hundred_at(&SESSION_BOUNDS, *v)) {
            *c += n;
        }
    }
    // Policy and encryption: delta histograms.
    let policy = POLICY.get(i).copied().unwrap_or(200.0);
    let encryption = if m == 3 { 60.0 } else { 10.0 };
    // Packet loss: cumulative counters, 1000 sent a minute, 300 lost in minute 6.
    let lost = if m >= 6 { 300 } else { 0 };
    // QoS: a delta counter by outcome, 1000 a minute, 300 dropped in minute 10.
    let dropped = if m == 10 { 300 } else { 0 };
    ResourceMetrics {
        resource: Some(resource(vec![kv_str("service.name", "vpn-gateway")])),
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![
                histogram_metric(
                    "session.establishment.duration",
                    m,
                    session,
                    &SESSION_BOUNDS,
                    true,
                ),
                histogram_metric(
                    "policy.update.duration",
                    m,
                    hundred_at(&POLICY_BOUNDS, policy),
                    &POLICY_BOUNDS,
                    false,
                ),
                histogram_metric(
                    "encryption.duration",
                    m,
                    hundred_at(&ENCRYPTION_BOUNDS, encryption),
                    &ENCRYPTION_BOUNDS,
                    false,
                ),
                sum_metric("network.packets.lost", m, vec![(None, lost)], true),
                sum_metric(
                    "network.packets.sent",
                    m,
                    vec![(None, 1000 * m as i64)],
                    true,
                ),
                sum_metric(
                    "qos.packets",
                    m,
                    vec![
                        (Some("dropped"), dropped),
                        (Some("forwarded"), 1000 - dropped),
                    ],
                    false,
                ),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

const MINUTES: u64 = 16;
const INPUT_POINTS: usize = 7 * MINUTES as usize;
const SLIS: usize = 5;
/// Each SLI is evaluated every minute (one status and one value point).
const STATUS_POINTS: usize = 2 * SLIS * MINUTES as usize;
const ALERTS: usize = 12;

#[test]
fn example_config_resolves_as_is() {
    if let Err(e) = resolve_yaml(EXAMPLE) {
        panic!("configs/sli-example.yaml does not resolve:\n{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_r4_slis_raise_the_exact_alert_sequence_through_a_pipeline() {
    let (service, telemetry) = start_example("sli-example").await;
    let out = bounded("injector", testing::injector("sli-example")).await;
    let sent: Vec<ResourceMetrics> = (1..=MINUTES).map(minute).collect();
    for rm in &sent {
        out.get(Signal::Metrics)
            .unwrap()
            .send(Batch::new(Payload::Metrics(vec![rm.clone()])))
            .await
            .unwrap();
    }
    let sink = testing::sink("sli-example");
    bounded("alerts", sink.wait_for_items(Signal::Logs, ALERTS)).await;
    bounded(
        "metrics",
        sink.wait_for_items(Signal::Metrics, INPUT_POINTS + STATUS_POINTS),
    )
    .await;
    drop(out);
    service.shutdown().await;

    // Every alert, in the order they arrived.
    let mut alerts: Vec<(u64, String, String, String)> = Vec::new();
    let mut events: Vec<AlertEvent> = Vec::new();
    let mut passed: Vec<ResourceMetrics> = Vec::new();
    let mut session_status: Vec<(u64, i64)> = Vec::new();
    let mut status_points = 0;
    for p in sink.payloads() {
        match p {
            Payload::Logs(rl) => {
                for r in rl
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records)
                {
                    assert_eq!(r.event_name, ALERT_EVENT_NAME);
                    let Some(any_value::Value::StringValue(body)) =
                        r.body.as_ref().and_then(|b| b.value.as_ref())
                    else {
                        panic!("alert body is not a string: {r:?}")
                    };
                    let e: AlertEvent = serde_json::from_str(body).unwrap();
                    assert_eq!(
                        attr_str(&r.attributes, "alert_id"),
                        Some(e.alert_id.as_str())
                    );
                    assert_eq!(attr_str(&r.attributes, "module"), Some("vpn"));
                    assert_eq!(attr_str(&r.attributes, "environment"), Some("production"));
                    let minute = (r.time_unix_nano - at(0)) / 60_000_000_000;
                    alerts.push((
                        minute,
                        e.sli_name.clone(),
                        e.state.clone(),
                        e.severity.clone(),
                    ));
                    events.push(e);
                }
            }
            Payload::Metrics(rm) => {
                for r in rm {
                    let ours = r
                        .scope_metrics
                        .iter()
                        .any(|s| s.scope.as_ref().is_some_and(|x| x.name == "sluice/sli"));
                    if !ours {
                        passed.push(r);
                        continue;
                    }
                    for m in r.scope_metrics.iter().flat_map(|s| &s.metrics) {
                        let Some(metric::Data::Gauge(g)) = &m.data else {
                            panic!("{} is not a gauge", m.name)
                        };
                        assert!(m.name == STATUS_METRIC || m.name == VALUE_METRIC);
                        status_points += g.data_points.len();
                        if m.name != STATUS_METRIC {
                            continue;
                        }
                        for p in &g.data_points {
                            if attr_str(&p.attributes, "sli_name")
                                == Some("session_establishment_latency_p95")
                            {
                                let Some(number_data_point::Value::AsInt(s)) = p.value else {
                                    panic!("status is an integer")
                                };
                                session_status
                                    .push(((p.time_unix_nano - at(0)) / 60_000_000_000, s));
                            }
                        }
                    }
                }
            }
            Payload::Traces(_) => panic!("no traces expected"),
        }
    }

    let expected: Vec<(u64, &str, &str, &str)> = vec![
        (3, "encryption_latency_p95", "firing", "red"),
        (4, "session_establishment_latency_p95", "firing", "yellow"),
        (4, "policy_update_latency_p95", "firing", "orange"),
        (7, "session_establishment_latency_p95", "firing", "orange"),
        (8, "session_establishment_latency_p95", "firing", "red"),
        (8, "encryption_latency_p95", "resolved", "red"),
        (8, "packet_loss_rate", "firing", "yellow"),
        (9, "policy_update_latency_p95", "resolved", "orange"),
        (10, "qos_packet_drop_rate", "firing", "red"),
        (11, "packet_loss_rate", "resolved", "yellow"),
        (13, "session_establishment_latency_p95", "resolved", "red"),
        (15, "qos_packet_drop_rate", "resolved", "red"),
    ];
    let got: Vec<(u64, &str, &str, &str)> = alerts
        .iter()
        .map(|(m, n, s, v)| (*m, n.as_str(), s.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, expected);

    // One alert id per episode: escalations and the resolution keep the first firing's.
    let session_ids: Vec<&str> = events
        .iter()
        .filter(|e| e.sli_name == "session_establishment_latency_p95")
        .map(|e| e.alert_id.as_str())
        .collect();
    let first = format!("session_establishment_latency_p95-{}", at(4) / 1_000_000);
    assert_eq!(session_ids, vec![first.as_str(); 4]);
    // Values: the loss ratio is 300 lost of 5000 sent in the window.
    let loss = events
        .iter()
        .find(|e| e.sli_name == "packet_loss_rate")
        .unwrap();
    assert_eq!((loss.current_value, loss.threshold), (0.06, 0.05));
    assert_eq!(loss.timestamp, "2023-11-14T22:08:00.000Z");

    assert_eq!(status_points, STATUS_POINTS);
    let expected_status: Vec<(u64, i64)> = [0, 0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3, 0, 0, 0, 0]
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u64 + 1, *s))
        .collect();
    assert_eq!(session_status, expected_status);

    // The metrics themselves went through untouched.
    assert_eq!(passed, sent);

    let fired = |sli: &str, sev: &str| {
        telemetry
            .value(
                "sluice_processor_alerts_triggered",
                &[("processor", "sli"), ("severity", sev), ("sli_name", sli)],
            )
            .unwrap_or(0)
    };
    assert_eq!(fired("session_establishment_latency_p95", "yellow"), 1);
    assert_eq!(fired("session_establishment_latency_p95", "orange"), 1);
    assert_eq!(fired("session_establishment_latency_p95", "red"), 1);
    assert_eq!(fired("policy_update_latency_p95", "orange"), 1);
    assert_eq!(fired("policy_update_latency_p95", "yellow"), 0);
    assert_eq!(fired("encryption_latency_p95", "red"), 1);
    assert_eq!(fired("packet_loss_rate", "yellow"), 1);
    assert_eq!(fired("qos_packet_drop_rate", "red"), 1);
    assert_eq!(
        telemetry.value(
            "sluice_pipeline_dropped_log_records",
            &[("pipeline", "metrics")]
        ),
        None,
        "the alerts reached the exporter"
    );
}
