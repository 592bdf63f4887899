//! Sustained write rate of the `sqlite` exporter and the file size per million points.
//!
//! Host-metrics-like data: 1,000 gauge series (10 metrics × 100 attribute sets) of one resource,
//! one point per series per batch (1,000 points a batch, 10 s apart), exported by 4 concurrent
//! callers through the real exporter (writer thread, group commit, WAL). The writer folds the
//! committed points into pending 1-minute and 1-hour rollups and writes those when they pile
//! up; a final maintenance pass writes the rest. The sustained figure counts both.
//! Uses mimalloc, as the `sluice` binary does. Run: `cargo bench --bench sqlite`
//! (`SQLITE_BENCH_POINTS=5000000` for a longer run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_exporters::sqlite::{ManualClock, SqliteExporter, SqliteExporterConfig};
use sluice_pipeline::factory::{ComponentContext, Endpoints, Exporter};
use sluice_pipeline::otlp::{kv_i64, kv_str, resource};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, Kind, Payload, Signal};
use sluice_proto::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERIES_PER_METRIC: usize = 100;
const METRICS: usize = 10;
const T0: u64 = 1_767_225_600_000_000_000; // 2026-01-01

fn batch(k: u64) -> Batch {
    let t = T0 + k * 10_000_000_000;
    let metrics = (0..METRICS)
        .map(|m| Metric {
            name: format!("system.metric_{m}"),
            unit: "1".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: (0..SERIES_PER_METRIC)
                    .map(|s| NumberDataPoint {
                        attributes: vec![kv_i64("cpu", s as i64), kv_str("state", "user")],
                        time_unix_nano: t,
                        value: Some(number_data_point::Value::AsDouble(
                            ((k as usize * 31 + s) % 1000) as f64 / 10.0,
                        )),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        })
        .collect();
    Batch::new(Payload::Metrics(vec![ResourceMetrics {
        resource: Some(resource(vec![kv_str("host.name", "bench")])),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }]))
}

fn main() {
    let total: u64 = std::env::var("SQLITE_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let per_batch = (METRICS * SERIES_PER_METRIC) as u64;
    let batches = total / per_batch;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    runtime.block_on(async {
        let config = SqliteExporterConfig {
            path: Some(path.clone()),
            max_size_mb: 100_000,
            maintenance_interval: Duration::from_secs(3600),
            ..SqliteExporterConfig::default()
        };
        let id = "sqlite".parse().expect("id");
        let tel = ComponentTelemetry::new(Telemetry::new(), Kind::Exporter, &id);
        let ctx = ComponentContext::new(
            id,
            Kind::Exporter,
            vec![Signal::Metrics],
            tel,
            dir.path().to_path_buf(),
            Endpoints::default(),
        );
        let clock = ManualClock::new((T0 + batches * 10_000_000_000) as i64);
        let mut exporter =
            SqliteExporter::with_clock(&config, &ctx, Arc::new(clock)).expect("build");
        exporter.start().await.expect("start");
        let exporter = Arc::new(exporter);
        // Batches are built before the clock starts: the figure is the store's, not the
        // generator's.
        let prepared: Vec<Vec<Batch>> = (0..4u64)
            .map(|w| (0..batches).filter(|k| k % 4 == w).map(batch).collect())
            .collect();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mine in prepared {
            let e = exporter.clone();
            tasks.push(tokio::spawn(async move {
                for b in &mine {
                    e.export(b).await.expect("export");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let write = started.elapsed();
        let m = Instant::now();
        let report = exporter.maintain_now().await.expect("maintain");
        let maintain = m.elapsed();
        exporter.shutdown().await.expect("shutdown");
        let points = batches * per_batch;
        // Every point is in the rollups: folded by the writer as it committed (rows written when
        // they pile up, so part of the write figure) and by the final pass.
        let db = sluice_exporters::sqlite::rusqlite::Connection::open(&path).expect("open");
        let rolled: i64 = db
            .query_row("SELECT sum(count) FROM rollup_hour", [], |r| r.get(0))
            .expect("rollups");
        assert_eq!(rolled as u64, points);
        assert!(report.rolled_up <= points);
        let size = std::fs::metadata(&path).expect("size").len();
        let rate = |d: Duration| points as f64 / d.as_secs_f64();
        println!("sqlite: {points} points in {batches} batches of {per_batch}, 4 concurrent exporters");
        println!(
            "  write (commit acknowledged):        {:>10.0} points/s ({:.2} s; includes rollups merged as they piled up)",
            rate(write),
            write.as_secs_f64()
        );
        println!(
            "  final pass (rollups still pending): {:.2} s for {} points",
            maintain.as_secs_f64(),
            report.rolled_up
        );
        println!(
            "  sustained (write + rollups):         {:>10.0} points/s",
            rate(write + maintain)
        );
        println!(
            "  file size: {:.1} MiB, {:.1} MiB per million points (raw points, series, indexes, rollups)",
            size as f64 / 1048576.0,
            size as f64 / 1048576.0 / (points as f64 / 1e6)
        );
    });
}
