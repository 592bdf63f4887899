//! Points per second through the `sli` processor's evaluation (`SliProcessor::process` only: the
//! batches are built before the clock starts). 1800 batches of 1000 points, one batch per second
//! of data time (30 minutes), two SLIs (`p95` of a gauge metric, `p95` of a histogram metric;
//! window 5m, evaluated every minute), 1000 series; and points of a metric no SLI reads.
//! A plain timed run, like `benches/sqlite.rs` (one pass is 1.8 M points). Uses mimalloc, as the
//! `sluice` binary does. Run: `cargo bench --bench sli`.

use std::time::Instant;

use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::Processor;
use sluice_pipeline::otlp::{kv_str, resource};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, Kind, Payload};
use sluice_processors::sli::{SliProcessor, SliProcessorConfig};
use sluice_proto::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Data time of the first batch: in the past (the processor refuses points far ahead of the
/// wall clock), on a whole hour.
const T0: u64 = 1_699_999_200 * 1_000_000_000;
const SERIES: usize = 1000;
const SECONDS: u64 = 1800;

const CONFIG: &str = "slis:
  - { sli_name: g, metric: lat.gauge, aggregation: p95, yellow: 400, orange: 500, red: 800 }
  - { sli_name: h, metric: lat.hist, aggregation: p95, yellow: 400, orange: 500, red: 800 }
";

/// One point per series of metric `name` at `second`: a gauge, or a cumulative histogram of
/// five buckets.
fn series_batch(name: &str, second: u64, histograms: bool) -> Payload {
    let t = T0 + second * 1_000_000_000;
    let device = |s: usize| vec![kv_str("device", format!("d{s}"))];
    let data = if histograms {
        metric::Data::Histogram(Histogram {
            data_points: (0..SERIES)
                .map(|s| HistogramDataPoint {
                    start_time_unix_nano: T0,
                    time_unix_nano: t,
                    count: 10 * second,
                    sum: Some(0.0),
                    bucket_counts: vec![second, 2 * second, 3 * second, 4 * second, 0],
                    explicit_bounds: vec![100.0, 200.0, 400.0, 800.0],
                    attributes: device(s),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })
    } else {
        metric::Data::Gauge(Gauge {
            data_points: (0..SERIES)
                .map(|s| NumberDataPoint {
                    time_unix_nano: t,
                    value: Some(number_data_point::Value::AsDouble(
                        ((s as u64 * 7 + second) % 900) as f64,
                    )),
                    attributes: device(s),
                    ..Default::default()
                })
                .collect(),
        })
    };
    Payload::Metrics(vec![ResourceMetrics {
        resource: Some(resource(vec![kv_str("service.name", "vpn")])),
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![Metric {
                name: name.to_string(),
                data: Some(data),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn main() {
    let config: SliProcessorConfig = decode_str(CONFIG).expect("config");
    for (label, name, histograms) in [
        ("unrelated metric (pass-through)", "other", false),
        ("gauge p95, 1000 series", "lat.gauge", false),
        ("cumulative histogram p95, 1000 series", "lat.hist", true),
    ] {
        let id: ComponentId = "sli".parse().expect("id");
        let telemetry = ComponentTelemetry::new(Telemetry::new(), Kind::Processor, &id);
        let mut p = SliProcessor::new(&config, &telemetry);
        let batches: Vec<Payload> = (1..=SECONDS)
            .map(|s| series_batch(name, s, histograms))
            .collect();
        let points: usize = batches.iter().map(Payload::item_count).sum();
        let started = Instant::now();
        let mut emitted = 0;
        for b in batches {
            let mut out = Vec::new();
            p.process(Batch::new(b), &mut out).expect("process");
            emitted += out.len();
        }
        let secs = started.elapsed().as_secs_f64();
        // Every SLI evaluation adds a batch: the run must have evaluated (or, for the unrelated
        // metric, passed everything through untouched).
        assert!(emitted >= SECONDS as usize, "{emitted}");
        println!(
            "{label}: {points} points in {secs:.3} s = {:.0} points/s ({emitted} batches out)",
            points as f64 / secs
        );
    }
}
