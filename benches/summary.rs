//! The `summary` exporter on a 6-hour CI job sampled every second: 21,600 scrapes of synthetic
//! host and process metrics (shaped like the `procfs` receiver's), 200 steps and 20,000 output
//! lines fed through `Exporter::export`, then one render (six PNGs, report.md, report.html) as at
//! shutdown. Prints the ingest time, the render time, the report size and the peak resident
//! memory of the process (targets: render < 2 s, peak < 100 MB).
//! Run: `cargo bench --bench summary` (`SUMMARY_BENCH_OUT=<dir>` keeps the files).

mod common;

use std::time::Instant;

use sluice_exporters::summary::{synthetic, SummaryExporter, SummaryExporterConfig};
use sluice_pipeline::factory::{ComponentContext, Endpoints, Exporter};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, Kind, Signal};

const SECONDS: u64 = 6 * 3600;
const T0: u64 = 1_763_800_000_000_000_000;
const SEC: u64 = 1_000_000_000;

/// A size line of `/proc/self/status` (`VmHWM:`, `VmRSS:`), in bytes; 0 when unreadable.
/// (`unsafe_code` is denied, so no getrusage: the kernel's own figures.)
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Peak resident set size of this process, in bytes.
fn peak_rss() -> u64 {
    status_bytes("VmHWM:")
}

fn rss() -> u64 {
    status_bytes("VmRSS:")
}

fn mib(b: u64) -> f64 {
    b as f64 / 1_048_576.0
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours skips the run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && a != "summary")
    {
        return;
    }
    let rt = common::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    // `SUMMARY_BENCH_OUT=<dir>` keeps the files there, to look at the charts of a 6-hour job.
    let out = std::env::var_os("SUMMARY_BENCH_OUT")
        .map_or_else(|| dir.path().join("report"), std::path::PathBuf::from);
    let id: ComponentId = "summary".parse().expect("id");
    let telemetry = Telemetry::new();
    let ctx = ComponentContext::new(
        id.clone(),
        Kind::Exporter,
        vec![Signal::Metrics, Signal::Logs],
        ComponentTelemetry::new(telemetry, Kind::Exporter, &id),
        dir.path().join("data"),
        Endpoints::default(),
    );
    let config = SummaryExporterConfig {
        output_dir: Some(out.clone()),
        ..SummaryExporterConfig::default()
    };
    let mut exporter = SummaryExporter::new(&config, &ctx).expect("build");
    rt.block_on(async {
        exporter.start().await.expect("start");
        let rss_start = rss();
        let started = Instant::now();
        for i in 0..SECONDS {
            let batch = Batch::new(synthetic::host_metrics(T0 + i * SEC, i));
            exporter.export(&batch).await.expect("export");
            if i % 108 == 0 {
                let n = i / 108;
                let start = (T0 + i * SEC) as i64;
                let name = format!("step {n}: build | test #{n}");
                let mut records = vec![
                    synthetic::step_start(&name, start),
                    synthetic::step_end(
                        &name,
                        start,
                        start + 100 * SEC as i64,
                        (n % 17 == 0) as i64,
                        "sluice",
                    ),
                ];
                for k in 0..100u64 {
                    let sev = if k % 50 == 0 { "ERROR" } else { "INFO" };
                    records.push(synthetic::output_line(
                        T0 + i * SEC + k,
                        &name,
                        sev,
                        "stdout",
                        &format!("line {k} of step {n}: compiling crate_{k} v0.1.0"),
                    ));
                }
                exporter
                    .export(&Batch::new(synthetic::logs(records)))
                    .await
                    .expect("export logs");
            }
        }
        let ingest = started.elapsed();
        let rss_ingested = rss();
        let started = Instant::now();
        exporter.shutdown().await.expect("render");
        let render = started.elapsed();
        let md = std::fs::metadata(out.join("report.md")).map_or(0, |m| m.len());
        let html = std::fs::metadata(out.join("report.html")).map_or(0, |m| m.len());
        println!("summary_6h_job: {SECONDS} scrapes (1 s), 200 steps, 20000 output lines");
        println!(
            "  ingest: {:.2} s ({:.0} scrapes/s)",
            ingest.as_secs_f64(),
            SECONDS as f64 / ingest.as_secs_f64()
        );
        println!(
            "  render (6 PNGs + report.md + report.html): {:.3} s",
            render.as_secs_f64()
        );
        println!("  report.md: {md} bytes, report.html: {html} bytes");
        println!(
            "  RSS: {:.1} MiB at start, {:.1} MiB after ingest, peak {:.1} MiB",
            mib(rss_start),
            mib(rss_ingested),
            mib(peak_rss())
        );
    });
}
