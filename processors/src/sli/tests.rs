//! Unit tests of the `sli` processor: the Prometheus quantile, windows (percentiles, rate,
//! ratio), the alert rules (bands, flapping, Red on one breach, hysteresis), what is emitted,
//! and the config.

use sluice_pipeline::testing::temporality;
use std::sync::Arc;

use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::Processor;
use sluice_pipeline::otlp::{kv_str, resource};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, Kind, Payload, Validate};
use sluice_proto::common::v1::{any_value, KeyValue};
use sluice_proto::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

use super::alert::{AlertRules, AlertState, Change};
use super::*;

// ---------------------------------------------------------------------------------------------
// Builders.

/// Evaluations fall on whole minutes; minute `m` of the tests is this base plus `m` minutes.
/// In the past: points more than 10 minutes ahead of the wall clock are refused.
const BASE_SECS: u64 = 1_699_999_200; // 2023-11-14T22:00:00Z, a multiple of 3600

fn at(minute: u64) -> u64 {
    (BASE_SECS + minute * 60) * 1_000_000_000
}

fn metrics(metrics: Vec<Metric>) -> Payload {
    Payload::Metrics(vec![ResourceMetrics {
        resource: Some(resource(vec![kv_str("service.name", "vpn")])),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn gauge(name: &str, minute: u64, value: f64, attributes: Vec<KeyValue>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: at(minute),
                value: Some(number_data_point::Value::AsDouble(value)),
                attributes,
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn counter(name: &str, minute: u64, total: i64, start_minute: u64, cumulative: bool) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                start_time_unix_nano: at(start_minute),
                time_unix_nano: at(minute),
                value: Some(number_data_point::Value::AsInt(total)),
                ..Default::default()
            }],
            aggregation_temporality: temporality(cumulative),
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn histogram(
    name: &str,
    minute: u64,
    bounds: &[f64],
    counts: &[u64],
    cumulative: bool,
    exemplars: Vec<Exemplar>,
) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: at(0),
                time_unix_nano: at(minute),
                count: counts.iter().sum(),
                sum: Some(0.0),
                bucket_counts: counts.to_vec(),
                explicit_bounds: bounds.to_vec(),
                exemplars,
                ..Default::default()
            }],
            aggregation_temporality: temporality(cumulative),
        })),
        ..Default::default()
    }
}

fn processor(yaml: &str) -> (SliProcessor, Arc<Telemetry>) {
    let config: SliProcessorConfig = match decode_str(yaml) {
        Ok(c) => c,
        Err(e) => panic!("config: {e:?}"),
    };
    if let Err(e) = config.validate() {
        panic!("invalid config: {e}");
    }
    let registry = Telemetry::new();
    let id: ComponentId = "sli".parse().unwrap();
    let t = ComponentTelemetry::new(registry.clone(), Kind::Processor, &id);
    (SliProcessor::new(&config, &t), registry)
}

/// What one `process` call produced besides the batch itself.
#[derive(Debug, Default)]
struct Produced {
    passed: Vec<Payload>,
    alerts: Vec<AlertEvent>,
    records: Vec<sluice_proto::logs::v1::LogRecord>,
    /// (sli_name, time, status, value)
    status: Vec<(String, u64, i64, f64)>,
}

fn feed(p: &mut SliProcessor, payload: Payload) -> Produced {
    let mut out = Vec::new();
    p.process(Batch::new(payload.clone()), &mut out).unwrap();
    let mut produced = Produced::default();
    let mut it = out.into_iter();
    let first = it.next().expect("the batch passes through");
    assert_eq!(first.payload, payload, "metrics pass through unchanged");
    produced.passed.push(first.payload);
    for b in it {
        match b.payload {
            Payload::Logs(rl) => {
                for r in rl
                    .into_iter()
                    .flat_map(|r| r.scope_logs)
                    .flat_map(|s| s.log_records)
                {
                    let Some(any_value::Value::StringValue(body)) =
                        r.body.as_ref().and_then(|b| b.value.clone())
                    else {
                        panic!("alert body is not a string")
                    };
                    produced.alerts.push(serde_json::from_str(&body).unwrap());
                    produced.records.push(r);
                }
            }
            Payload::Metrics(rm) => {
                for m in rm
                    .iter()
                    .flat_map(|r| &r.scope_metrics)
                    .flat_map(|s| &s.metrics)
                {
                    let Some(metric::Data::Gauge(g)) = &m.data else {
                        panic!("status is a gauge")
                    };
                    for (i, p) in g.data_points.iter().enumerate() {
                        let name = sluice_pipeline::otlp::attr_str(&p.attributes, "sli_name")
                            .unwrap()
                            .to_string();
                        match (m.name.as_str(), p.value) {
                            (STATUS_METRIC, Some(number_data_point::Value::AsInt(s))) => {
                                produced.status.push((name, p.time_unix_nano, s, f64::NAN))
                            }
                            (VALUE_METRIC, Some(number_data_point::Value::AsDouble(v))) => {
                                let at = produced.status.len() - g.data_points.len() + i;
                                produced.status[at].3 = v
                            }
                            other => panic!("unexpected point {other:?}"),
                        }
                    }
                }
            }
            Payload::Traces(_) => panic!("no traces expected"),
        }
    }
    produced
}

/// `(state, severity)` of each alert.
fn states(alerts: &[AlertEvent]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| (a.state.clone(), a.severity.clone()))
        .collect()
}

fn pair(state: &str, severity: &str) -> (String, String) {
    (state.to_string(), severity.to_string())
}

// ---------------------------------------------------------------------------------------------
// Prometheus histogram_quantile and nearest rank.

fn buckets(bounds: &[f64], counts: &[u64]) -> Buckets {
    Buckets {
        bounds: bounds.to_vec(),
        counts: counts.to_vec(),
        count: counts.iter().sum(),
        sum: 0.0,
    }
}

#[test]
fn histogram_quantile_interpolates_as_prometheus() {
    // Cumulative 10, 30, 60, 90, 100 over le 100, 200, 400, 800, +Inf.
    let h = buckets(&[100.0, 200.0, 400.0, 800.0], &[10, 20, 30, 30, 10]);
    // rank 5 in the first bucket, which starts at 0: 0 + 100 × 5/10.
    assert_eq!(histogram_quantile(0.05, &h), Some(50.0));
    // rank 50 in (200, 400]: 200 + 200 × (50 − 30)/30.
    let median = histogram_quantile(0.5, &h).unwrap();
    assert!(
        (median - (200.0 + 200.0 * 20.0 / 30.0)).abs() < 1e-9,
        "{median}"
    );
    // rank 90 reaches le=800 exactly: its upper bound.
    assert_eq!(histogram_quantile(0.9, &h), Some(800.0));
    // rank 95 lies in +Inf: the largest finite bound.
    assert_eq!(histogram_quantile(0.95, &h), Some(800.0));
    // The ClickHouse quantilePrometheusHistogram example: le 0, 0.5, 1, +Inf with cumulative
    // 0, 10, 11, 12; the 0.9-quantile is 0.5 + 0.5 × (10.8 − 10)/1 = 0.9.
    let h = buckets(&[0.0, 0.5, 1.0], &[0, 10, 1, 1]);
    let q = histogram_quantile(0.9, &h).unwrap();
    assert!((q - 0.9).abs() < 1e-9, "{q}");
    // A first bucket with a non-positive bound returns that bound.
    let h = buckets(&[-1.0, 0.0, 1.0], &[5, 0, 0, 0]);
    assert_eq!(histogram_quantile(0.5, &h), Some(-1.0));
    // No observations, or only a +Inf bucket: no value.
    assert_eq!(histogram_quantile(0.5, &buckets(&[1.0], &[0, 0])), None);
    assert_eq!(histogram_quantile(0.5, &buckets(&[], &[3])), None);
}

#[test]
fn nearest_rank_is_exact() {
    let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
    assert_eq!(nearest_rank(0.95, &mut v), Some(19.0));
    assert_eq!(nearest_rank(0.99, &mut v), Some(20.0));
    assert_eq!(nearest_rank(0.5, &mut [4.0, 1.0, 3.0, 2.0]), Some(2.0));
    assert_eq!(nearest_rank(0.95, &mut [7.0]), Some(7.0));
    // Below 20 points, p95 is the maximum: every point but the top is under rank ceil(0.95 n).
    assert_eq!(
        nearest_rank(0.95, &mut [1.0, 9.0, 3.0, 2.0, 5.0]),
        Some(9.0)
    );
    assert_eq!(nearest_rank(0.95, &mut []), None);
}

// ---------------------------------------------------------------------------------------------
// The alert rules, value by value.

fn rules(yellow: f64, orange: f64, red: f64, direction: Direction) -> AlertRules {
    AlertRules::new(&SliRule {
        sli_name: "s".into(),
        metric: "m".into(),
        yellow: Some(yellow),
        orange: Some(orange),
        red: Some(red),
        direction,
        ..Default::default()
    })
}

/// Evaluates `values` one minute apart; returns (minute, state, severity) of each transition.
fn run(rules: &AlertRules, values: &[f64]) -> Vec<(usize, &'static str, &'static str)> {
    let mut state = AlertState::default();
    let mut v = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if let Some(t) = state.evaluate(rules, at(i as u64 + 1), *value) {
            v.push((i + 1, t.change.as_str(), t.severity.as_str()));
        }
    }
    v
}

#[test]
fn each_band_fires_after_three_breaches_and_red_on_one() {
    let r = rules(400.0, 500.0, 800.0, Direction::Above);
    let seq = [
        300.0, 400.0, // 400 is not > 400: no breach
        401.0, 450.0, 420.0, // three Yellow breaches: Yellow fires at 5
        510.0, 520.0, 530.0, // three Orange breaches: escalates at 8
        801.0, // one Red breach: escalates at 9
        600.0, 420.0, // still past Yellow: an alert does not step down
        361.0, // under 400 but over 400 − 10%: holds
        360.0, // at 400 − 10%: resolves at 13
        900.0, // Red at once, a new alert: 14
        100.0, // resolves at 15
    ];
    assert_eq!(
        run(&r, &seq),
        vec![
            (5, "firing", "yellow"),
            (8, "firing", "orange"),
            (9, "firing", "red"),
            (13, "resolved", "red"),
            (14, "firing", "red"),
            (15, "resolved", "red"),
        ]
    );
}

#[test]
fn orange_breaches_count_for_yellow_and_orange_runs_fire_orange_directly() {
    let r = rules(400.0, 500.0, 800.0, Direction::Above);
    // Orange-level from the start: after three, Orange (not Yellow) fires.
    assert_eq!(
        run(&r, &[550.0, 560.0, 570.0]),
        vec![(3, "firing", "orange")]
    );
    // Mixed Yellow and Orange levels: Yellow after three; Orange needs three of its own.
    assert_eq!(
        run(&r, &[450.0, 550.0, 450.0, 550.0, 560.0, 570.0]),
        vec![(3, "firing", "yellow"), (6, "firing", "orange")]
    );
}

#[test]
fn flapping_around_a_threshold_neither_fires_nor_resolves() {
    let r = rules(400.0, 500.0, 800.0, Direction::Above);
    // Alternating breaches never make three in a row.
    let flapping = [
        410.0, 390.0, 410.0, 390.0, 410.0, 390.0, 410.0, 410.0, 390.0,
    ];
    assert_eq!(run(&r, &flapping), vec![]);
    // Once firing, flapping between 370 and 410 stays one alert: 370 is above the 360
    // resolution level. Only 350 resolves it.
    let mut seq = vec![410.0, 420.0, 430.0];
    seq.extend([370.0, 410.0, 370.0, 410.0, 395.0, 410.0, 370.0]);
    seq.push(350.0);
    assert_eq!(
        run(&r, &seq),
        vec![(3, "firing", "yellow"), (11, "resolved", "yellow")]
    );
    // Without hysteresis the same series resolves and refires as it crosses.
    let r0 = AlertRules::new(&SliRule {
        sli_name: "s".into(),
        metric: "m".into(),
        yellow: Some(400.0),
        orange: Some(500.0),
        red: Some(800.0),
        hysteresis: 0.0,
        ..Default::default()
    });
    assert_eq!(
        run(&r0, &seq),
        vec![(3, "firing", "yellow"), (4, "resolved", "yellow")]
    );
}

#[test]
fn breaches_must_fall_within_the_window() {
    // Evaluations every minute, window 5m: breaches at 1, 2 and then 7 are not consecutive
    // evaluations anyway; breaches older than the window drop out of the run.
    let r = AlertRules::new(&SliRule {
        sli_name: "s".into(),
        metric: "m".into(),
        yellow: Some(10.0),
        evaluation_window: std::time::Duration::from_secs(150),
        evaluation_interval: std::time::Duration::from_secs(60),
        consecutive_breaches: 2,
        ..Default::default()
    });
    let mut state = AlertState::default();
    // Two breaches 3 minutes apart with nothing between (no data): not within 150 s.
    assert_eq!(state.evaluate(&r, at(1), 11.0), None);
    assert_eq!(state.evaluate(&r, at(4), 11.0), None);
    // The next, 1 minute later, makes two within the window.
    assert_eq!(
        state.evaluate(&r, at(5), 11.0).map(|t| t.change),
        Some(Change::Fired)
    );
}

#[test]
fn direction_below_mirrors_everything() {
    // Throughput: bad when it falls. Resolution at or above 100 + 10%.
    let r = rules(100.0, 50.0, 20.0, Direction::Below);
    assert_eq!(
        run(&r, &[150.0, 90.0, 80.0, 95.0, 10.0, 60.0, 105.0, 110.0]),
        vec![
            (4, "firing", "yellow"),
            (5, "firing", "red"),
            (8, "resolved", "red")
        ]
    );
    // Near 1, a small hysteresis: resolves at or above 0.99 + 0.99 × 0.001.
    let r = AlertRules::new(&SliRule {
        sli_name: "s".into(),
        metric: "m".into(),
        yellow: Some(0.99),
        direction: Direction::Below,
        hysteresis: 0.001,
        ..Default::default()
    });
    assert!((r.resolve_threshold() - 0.99099).abs() < 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Windows through the processor.

#[test]
fn gauge_p95_over_the_window_with_alerts_and_status() {
    let (mut p, registry) = processor(
        "labels: { module: vpn, environment: test }\nslis:\n  - { sli_name: lat, metric: lat.ms, aggregation: p95, yellow: 400, orange: 500, red: 800, labels: { module: session } }\n",
    );
    let values = [
        300.0, 420.0, 430.0, 440.0, 900.0, 100.0, 100.0, 100.0, 100.0, 100.0,
    ];
    let mut alerts = Vec::new();
    let mut status = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let got = feed(
            &mut p,
            metrics(vec![gauge("lat.ms", i as u64 + 1, *v, vec![])]),
        );
        alerts.extend(got.alerts);
        status.extend(got.status);
    }
    // p95 of ≤ 19 points is their maximum: 900 at minute 5 stays in the 5 m window through
    // minute 9 and leaves it at 10, which resolves.
    let s: Vec<(u64, i64, f64)> = status.iter().map(|(_, t, s, v)| (*t, *s, *v)).collect();
    assert_eq!(
        s,
        vec![
            (at(1), 0, 300.0),
            (at(2), 0, 420.0),
            (at(3), 0, 430.0),
            (at(4), 1, 440.0),
            (at(5), 3, 900.0),
            (at(6), 3, 900.0),
            (at(7), 3, 900.0),
            (at(8), 3, 900.0),
            (at(9), 3, 900.0),
            (at(10), 0, 100.0),
        ]
    );
    assert_eq!(
        states(&alerts),
        vec![
            pair("firing", "yellow"),
            pair("firing", "red"),
            pair("resolved", "red")
        ]
    );
    let first = &alerts[0];
    assert_eq!(first.alert_id, format!("lat-{}", at(4) / 1_000_000));
    assert!(alerts.iter().all(|a| a.alert_id == first.alert_id));
    assert_eq!(first.sli_name, "lat");
    assert_eq!(first.current_value, 440.0);
    assert_eq!(first.threshold, 400.0);
    assert_eq!(first.threshold_type, "above");
    assert_eq!(first.timestamp, "2023-11-14T22:04:00.000Z");
    assert_eq!(first.trace_id, None);
    assert_eq!(
        first.labels.iter().collect::<Vec<_>>(),
        vec![
            (&"environment".to_string(), &"test".to_string()),
            (&"module".to_string(), &"session".to_string())
        ]
    );
    assert_eq!(alerts[2].threshold, 360.0);
    assert_eq!(alerts[2].threshold_type, "resolve_below");
    assert_eq!(alerts[2].current_value, 100.0);
    let counted = |sev: &str| {
        registry.value(
            ALERTS_TRIGGERED_METRIC,
            &[("processor", "sli"), ("severity", sev), ("sli_name", "lat")],
        )
    };
    assert_eq!(counted("yellow"), Some(1));
    assert_eq!(counted("orange"), Some(0));
    assert_eq!(counted("red"), Some(1));
    assert_eq!(
        registry.value(
            STATUS_SELF_METRIC,
            &[("processor", "sli"), ("sli_name", "lat")]
        ),
        Some(0)
    );
}

#[test]
fn alert_log_records_carry_the_contract() {
    let (mut p, _) = processor(
        "labels: { environment: test }\nslis:\n  - { sli_name: enc, metric: enc.ms, aggregation: max, red: 50 }\n",
    );
    let trace = [7u8; 16];
    let m = Metric {
        name: "enc.ms".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: at(1),
                value: Some(number_data_point::Value::AsDouble(60.0)),
                exemplars: vec![Exemplar {
                    trace_id: trace.to_vec(),
                    value: Some(exemplar::Value::AsDouble(60.0)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let got = feed(&mut p, metrics(vec![m]));
    assert_eq!(got.records.len(), 1);
    let r = &got.records[0];
    assert_eq!(r.event_name, ALERT_EVENT_NAME);
    assert_eq!(r.severity_number, 17, "ERROR for red");
    assert_eq!(r.severity_text, "ERROR");
    assert_eq!(r.time_unix_nano, at(1));
    assert_eq!(r.trace_id, trace.to_vec());
    let attr = |k: &str| {
        r.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    let s = |v: &str| Some(any_value::Value::StringValue(v.to_string()));
    assert_eq!(attr("alert_id"), s(&format!("enc-{}", at(1) / 1_000_000)));
    assert_eq!(attr("severity"), s("red"));
    assert_eq!(attr("state"), s("firing"));
    assert_eq!(attr("sli_name"), s("enc"));
    assert_eq!(
        attr("current_value"),
        Some(any_value::Value::DoubleValue(60.0))
    );
    assert_eq!(attr("threshold"), Some(any_value::Value::DoubleValue(50.0)));
    assert_eq!(attr("threshold_type"), s("above"));
    assert_eq!(attr("timestamp"), s("2023-11-14T22:01:00.000Z"));
    assert_eq!(attr("trace_id"), s("07070707070707070707070707070707"));
    assert_eq!(attr("environment"), s("test"));
    assert_eq!(
        got.alerts[0].trace_id.as_deref(),
        Some("07070707070707070707070707070707")
    );
    // Resolution: INFO.
    let got = feed(&mut p, metrics(vec![gauge("enc.ms", 7, 1.0, vec![])]));
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].severity_number, 9, "INFO for a resolution");
    assert_eq!(got.alerts[0].state, "resolved");
    assert_eq!(got.alerts[0].severity, "red");
}

#[test]
fn yellow_and_orange_records_are_warn() {
    let (mut p, _) = processor(
        "slis:\n  - { sli_name: x, metric: x, aggregation: max, yellow: 1, orange: 2, consecutive_breaches: 1 }\n",
    );
    let got = feed(&mut p, metrics(vec![gauge("x", 1, 1.5, vec![])]));
    assert_eq!(got.records[0].severity_number, 13);
    assert_eq!(got.records[0].severity_text, "WARN");
    let got = feed(&mut p, metrics(vec![gauge("x", 2, 2.5, vec![])]));
    assert_eq!(got.records[0].severity_number, 13);
    assert_eq!(got.alerts[0].severity, "orange");
}

#[test]
fn cumulative_histogram_p95_uses_the_window_increase() {
    let (mut p, _) = processor(
        "slis:\n  - { sli_name: h, metric: h.ms, aggregation: p95, red: 1000, evaluation_window: 2m, consecutive_breaches: 1 }\n",
    );
    let bounds = [100.0, 200.0, 400.0, 800.0];
    // Cumulative counts; each minute adds 100 observations.
    let minutes: [[u64; 5]; 5] = [
        [100, 0, 0, 0, 0],   // m1: all ≤ 100
        [200, 0, 0, 0, 0],   // m2: all ≤ 100
        [200, 0, 100, 0, 0], // m3: 100 in (200, 400]
        [200, 0, 200, 0, 0], // m4: 100 in (200, 400]
        [10, 0, 0, 0, 0],    // m5: the process restarted; 10 ≤ 100 since
    ];
    let mut values = Vec::new();
    for (i, c) in minutes.iter().enumerate() {
        let got = feed(
            &mut p,
            metrics(vec![histogram(
                "h.ms",
                i as u64 + 1,
                &bounds,
                c,
                true,
                vec![],
            )]),
        );
        values.extend(got.status.iter().map(|s| s.3));
    }
    // m1: the series started at minute 0, inside the window: 100 obs ≤ 100, p95 = 95.
    // m2: window (0, 2]: the series started at its edge, so m1 is the baseline: 100 obs ≤ 100.
    // m3: window (1, 3]: increase from m1: 100 ≤ 100, 100 in (200, 400]: rank 190 →
    //     200 + 200 × 90/100 = 380.
    // m4: window (2, 4]: increase from m2: 200 in (200, 400]: rank 190 → 200 + 200 × 190/200.
    // m5: window (3, 5]: m3 → m4 adds 100 in (200, 400], the reset adds its 10 ≤ 100: rank
    //     104.5 of 110 → 200 + 200 × 94.5/100.
    assert_eq!(values.len(), 5);
    assert_eq!(values[..4], [95.0, 95.0, 380.0, 390.0]);
    assert!((values[4] - 389.0).abs() < 1e-9, "{values:?}");
}

#[test]
fn delta_histograms_merge_over_series_and_window() {
    let (mut p, _) = processor(
        "slis:\n  - { sli_name: h, metric: h.ms, aggregation: p99, red: 1000, evaluation_window: 2m, consecutive_breaches: 1 }\n",
    );
    let bounds = [10.0, 20.0];
    let a = histogram("h.ms", 1, &bounds, &[50, 0, 0], false, vec![]);
    let mut b = histogram("h.ms", 1, &bounds, &[0, 50, 0], false, vec![]);
    // Another series (attributes differ).
    if let Some(metric::Data::Histogram(h)) = &mut b.data {
        h.data_points[0].attributes = vec![kv_str("host", "b")];
    }
    let got = feed(&mut p, metrics(vec![a, b]));
    // 100 observations: rank 99 in (10, 20]: 10 + 10 × 49/50.
    assert_eq!(got.status.len(), 1);
    assert!((got.status[0].3 - 19.8).abs() < 1e-9, "{:?}", got.status);
}

#[test]
fn rate_is_per_second_and_survives_a_reset() {
    let (mut p, _) = processor(
        "slis:\n  - { sli_name: r, metric: req, aggregation: rate, red: 100, evaluation_window: 3m }\n",
    );
    // 60 per minute = 1/s; the counter restarts at minute 4 (start time moves), counting 60 again.
    let points = [
        (1, 60, 0),
        (2, 120, 0),
        (3, 180, 0),
        (4, 60, 3),
        (5, 120, 3),
    ];
    let mut values = Vec::new();
    for (m, total, start) in points {
        let got = feed(&mut p, metrics(vec![counter("req", m, total, start, true)]));
        values.extend(got.status.iter().map(|s| s.3));
    }
    // m1: started at 0, inside the window: 60 over 60 s. m5: window (2, 5], baseline m2 (120):
    // +60 to m3, reset → +60 to m4, +60 to m5 = 180 over 180 s.
    assert_eq!(values, vec![1.0, 1.0, 1.0, 1.0, 1.0]);
    // Delta counters: summed over the window, per second of the window.
    let (mut p, _) = processor(
        "slis:\n  - { sli_name: r, metric: req, aggregation: rate, red: 100, evaluation_window: 2m, consecutive_breaches: 1 }\n",
    );
    feed(&mut p, metrics(vec![counter("req", 1, 60, 0, false)]));
    let got = feed(&mut p, metrics(vec![counter("req", 2, 180, 1, false)]));
    assert_eq!(got.status[0].3, 2.0);
}

#[test]
fn ratio_of_counters_and_of_attribute_filters() {
    // Two metrics.
    let (mut p, _) = processor(
        "slis:\n  - sli_name: loss\n    aggregation: ratio\n    numerator: { metric: lost }\n    denominator: { metric: sent }\n    red: 0.2\n",
    );
    let got = feed(
        &mut p,
        metrics(vec![
            counter("lost", 1, 5, 0, true),
            counter("sent", 1, 100, 0, true),
        ]),
    );
    assert_eq!(got.status[0].3, 0.05);
    // One metric, split by an attribute; points that match neither side are ignored.
    let (mut p, _) = processor(
        "slis:\n  - sli_name: drop\n    metric: qos.packets\n    attributes: { queue: voice }\n    aggregation: ratio\n    numerator: { attributes: { outcome: dropped } }\n    denominator: {}\n    red: 0.05\n",
    );
    let point = |outcome: &str, queue: &str, v: f64| NumberDataPoint {
        time_unix_nano: at(1),
        value: Some(number_data_point::Value::AsDouble(v)),
        attributes: vec![kv_str("outcome", outcome), kv_str("queue", queue)],
        ..Default::default()
    };
    let m = Metric {
        name: "qos.packets".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![
                point("dropped", "voice", 3.0),
                point("sent", "voice", 97.0),
                point("dropped", "bulk", 50.0),
            ],
        })),
        ..Default::default()
    };
    let got = feed(&mut p, metrics(vec![m]));
    assert_eq!(got.status[0].3, 0.03);
}

#[test]
fn evaluations_wait_for_data_time_and_skip_gaps() {
    let (mut p, registry) =
        processor("slis:\n  - { sli_name: g, metric: g, aggregation: max, red: 10 }\n");
    // A point between boundaries evaluates nothing until a point reaches the next boundary.
    let mut m = gauge("g", 1, 1.0, vec![]);
    if let Some(metric::Data::Gauge(g)) = &mut m.data {
        g.data_points[0].time_unix_nano = at(1) + 1_000_000_000;
    }
    assert!(feed(&mut p, metrics(vec![m])).status.is_empty());
    let got = feed(&mut p, metrics(vec![gauge("g", 2, 2.0, vec![])]));
    assert_eq!(got.status.len(), 1);
    assert_eq!(got.status[0].1, at(2));
    // A day of silence, then one point: the boundaries inside the old window (3..=6) are
    // evaluated, the empty ones skipped, then the new point's.
    let got = feed(&mut p, metrics(vec![gauge("g", 24 * 60, 3.0, vec![])]));
    let times: Vec<u64> = got.status.iter().map(|s| s.1).collect();
    assert_eq!(times, vec![at(3), at(4), at(5), at(6), at(24 * 60)]);
    assert_eq!(
        registry.value(
            EVALUATIONS_METRIC,
            &[("processor", "sli"), ("sli_name", "g")]
        ),
        Some(6)
    );
    // Points older than the last window are ignored and counted.
    feed(&mut p, metrics(vec![gauge("g", 3, 50.0, vec![])]));
    assert_eq!(
        registry.value(
            IGNORED_METRIC,
            &[
                ("processor", "sli"),
                ("reason", "too_old"),
                ("sli_name", "g")
            ]
        ),
        Some(1)
    );
}

#[test]
fn a_point_far_in_the_future_is_refused_and_does_not_freeze_the_sli() {
    let (mut p, registry) =
        processor("slis:\n  - { sli_name: g, metric: g, aggregation: max, red: 10 }\n");
    assert_eq!(
        feed(&mut p, metrics(vec![gauge("g", 1, 1.0, vec![])]))
            .status
            .len(),
        1
    );
    // A clock set a century ahead.
    let century = 100 * 365 * 24 * 60;
    let got = feed(&mut p, metrics(vec![gauge("g", century, 50.0, vec![])]));
    assert!(got.status.is_empty(), "{:?}", got.status);
    assert_eq!(
        registry.value(
            IGNORED_METRIC,
            &[
                ("processor", "sli"),
                ("reason", "too_new"),
                ("sli_name", "g")
            ]
        ),
        Some(1)
    );
    // The next points of the right time are still evaluated (and breach).
    let got = feed(&mut p, metrics(vec![gauge("g", 2, 20.0, vec![])]));
    let times: Vec<u64> = got.status.iter().map(|s| s.1).collect();
    assert_eq!(times, vec![at(2)]);
    assert_eq!(states(&got.alerts), vec![pair("firing", "red")]);
}

#[test]
fn unrelated_metrics_and_filters_are_left_alone() {
    let (mut p, _) = processor(
        "slis:\n  - { sli_name: g, metric: g, attributes: { env: prod }, aggregation: max, red: 10 }\n",
    );
    let got = feed(
        &mut p,
        metrics(vec![
            gauge("other", 1, 100.0, vec![]),
            gauge("g", 1, 100.0, vec![kv_str("env", "dev")]),
        ]),
    );
    assert!(got.status.is_empty() && got.alerts.is_empty());
    // The resource attribute matches when the point has none.
    let got = feed(&mut p, metrics(vec![gauge("g", 2, 100.0, vec![])]));
    assert!(got.status.is_empty(), "service.name=vpn, not env=prod");
    let mut payload = metrics(vec![gauge("g", 2, 100.0, vec![])]);
    if let Payload::Metrics(rm) = &mut payload {
        rm[0].resource = Some(resource(vec![kv_str("env", "prod")]));
    }
    let got = feed(&mut p, payload);
    assert_eq!(got.status.len(), 1);
    assert_eq!(got.alerts.len(), 1);
}

#[test]
fn max_series_bounds_memory_and_counts() {
    let (mut p, registry) = processor(
        "max_series: 2\nslis:\n  - { sli_name: g, metric: g, aggregation: max, red: 10 }\n",
    );
    let ms = (0..4)
        .map(|i| gauge("g", 1, 1.0, vec![kv_str("host", format!("h{i}"))]))
        .collect();
    feed(&mut p, metrics(ms));
    assert_eq!(
        registry.value(
            IGNORED_METRIC,
            &[
                ("processor", "sli"),
                ("reason", "max_series"),
                ("sli_name", "g")
            ]
        ),
        Some(2)
    );
}

#[test]
fn logs_and_traces_pass_untouched() {
    let (mut p, _) = processor("slis:\n  - { sli_name: g, metric: g, red: 10 }\n");
    for payload in [
        sluice_pipeline::Payload::empty(sluice_pipeline::Signal::Logs),
        sluice_pipeline::Payload::empty(sluice_pipeline::Signal::Traces),
    ] {
        let got = feed(&mut p, payload);
        assert!(got.alerts.is_empty() && got.status.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Config.

fn errors(yaml: &str) -> String {
    match decode_str::<SliProcessorConfig>(yaml) {
        Err(e) => format!("{e:?}"),
        Ok(c) => match c.validate() {
            Err(e) => e.to_string(),
            Ok(()) => panic!("accepted:\n{yaml}"),
        },
    }
}

#[test]
fn good_config_decodes_whole() {
    let c: SliProcessorConfig = decode_str(include_str!("testdata/config.yaml")).unwrap();
    c.validate().unwrap();
    assert_eq!(c.max_series, 500);
    assert_eq!(c.labels.get("module").map(String::as_str), Some("vpn"));
    assert_eq!(c.slis.len(), 2);
    let s = &c.slis[0];
    assert_eq!(s.sli_name, "session_establishment_latency_p95");
    assert_eq!(s.metric, "session.establishment.duration");
    assert_eq!(s.aggregation, Aggregation::Percentile(95.0));
    assert_eq!(s.direction, Direction::Above);
    assert_eq!(
        (s.yellow, s.orange, s.red),
        (Some(400.0), Some(500.0), Some(800.0))
    );
    assert_eq!(s.evaluation_window, std::time::Duration::from_secs(300));
    assert_eq!(s.evaluation_interval, std::time::Duration::from_secs(30));
    assert_eq!(s.consecutive_breaches, 3);
    assert_eq!(s.hysteresis, 0.05);
    assert_eq!(s.attributes.get("region").map(String::as_str), Some("eu"));
    let r = &c.slis[1];
    assert_eq!(r.aggregation, Aggregation::Ratio);
    assert_eq!(
        r.numerator,
        Some(SliSelector {
            metric: "network.packets.lost".into(),
            attributes: Default::default()
        })
    );
    assert_eq!(
        r.denominator.as_ref().unwrap().metric,
        "network.packets.sent"
    );
    assert_eq!(r.evaluation_window, std::time::Duration::from_secs(300));
    assert_eq!(r.consecutive_breaches, 3);
    assert_eq!(r.hysteresis, 0.1);
}

#[test]
fn typo_config_names_key_and_line() {
    sluice_pipeline::testing::assert_misspelt_key::<SliProcessorConfig>(
        include_str!("testdata/typo_config.yaml"),
        "slis::0::consecutive_breachs",
        6,
    );
}

#[test]
fn bad_configs_are_refused_with_their_key() {
    let base = "slis:\n  - { sli_name: a, metric: m";
    let cases = [
        ("slis: []\n".to_string(), "slis: at least one SLI"),
        (format!("{base} }}\n"), "slis::0::red: at least one of"),
        (
            format!("{base}, yellow: 5, orange: 4 }}\n"),
            "slis::0::orange: must be strictly above",
        ),
        (
            format!("{base}, direction: below, yellow: 4, red: 5 }}\n"),
            "slis::0::red: must be strictly below",
        ),
        (
            format!("{base}, red: 1, aggregation: p0 }}\n"),
            "unknown aggregation `p0`",
        ),
        (
            format!("{base}, red: 1, aggregation: median }}\n"),
            "unknown aggregation `median`",
        ),
        (
            format!("{base}, red: 1, aggregation: ratio }}\n"),
            "slis::0::numerator: is required",
        ),
        (
            format!("{base}, red: 1, numerator: {{ metric: x }} }}\n"),
            "slis::0::numerator: only applies to `aggregation: ratio`",
        ),
        (
            format!("{base}, red: 1, consecutive_breaches: 6 }}\n"),
            "slis::0::consecutive_breaches: 6 breaches",
        ),
        (
            format!("{base}, red: 1, consecutive_breaches: 0 }}\n"),
            "must be at least 1",
        ),
        (
            format!("{base}, red: 1, evaluation_interval: 10m }}\n"),
            "slis::0::evaluation_interval: must be longer than 0s and at most",
        ),
        (
            format!("{base}, red: 1, hysteresis: 1 }}\n"),
            "slis::0::hysteresis",
        ),
        (
            format!("{base}, red: 1, labels: {{ severity: x }} }}\n"),
            "slis::0::labels::severity",
        ),
        (
            format!("{base}, red: 1 }}\n  - {{ sli_name: a, metric: n, red: 2 }}\n"),
            "slis::1::sli_name: `a` is already the name of SLI 0",
        ),
        (
            "slis:\n  - { metric: m, red: 1 }\n".to_string(),
            "slis::0::sli_name",
        ),
        (
            "slis:\n  - { sli_name: a, red: 1 }\n".to_string(),
            "slis::0::metric",
        ),
    ];
    for (yaml, want) in cases {
        let got = errors(&yaml);
        assert!(got.contains(want), "for\n{yaml}expected `{want}` in\n{got}");
    }
}

#[test]
fn default_config_is_refused_and_example_builds() {
    assert!(SliProcessorConfig::default().validate().is_err());
    let c: SliProcessorConfig =
        decode_str(<SliProcessorFactory as sluice_pipeline::ProcessorPlugin>::EXAMPLE).unwrap();
    c.validate().unwrap();
}

#[test]
fn unusable_points_are_counted_not_used() {
    let (mut p, registry) = processor(
        "slis:\n  - { sli_name: r, metric: m, aggregation: rate, red: 1 }\n  - { sli_name: q, metric: e, red: 1 }\n",
    );
    let exp = Metric {
        name: "e".into(),
        data: Some(metric::Data::ExponentialHistogram(
            sluice_proto::metrics::v1::ExponentialHistogram {
                data_points: vec![Default::default(), Default::default()],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            },
        )),
        ..Default::default()
    };
    let got = feed(
        &mut p,
        metrics(vec![
            exp,
            gauge("m", 1, 5.0, vec![]), // a gauge has no rate
            gauge("e", 1, f64::INFINITY, vec![]),
        ]),
    );
    assert!(got.status.is_empty());
    let ignored = |sli: &str, reason: &str| {
        registry.value(
            IGNORED_METRIC,
            &[("processor", "sli"), ("reason", reason), ("sli_name", sli)],
        )
    };
    assert_eq!(ignored("q", "unsupported_type"), Some(2));
    assert_eq!(ignored("q", "no_value"), Some(1));
    assert_eq!(ignored("r", "unsupported_type"), Some(1));
}
