//! Lines per second through `filelog` → `batch` → an exporter that only counts, on a file of
//! 100-byte lines written before the service starts (`start_at: beginning`), timed from start
//! until every line is counted. Then, once, memory while a file grows: a writer appends 100-byte
//! lines at 50 MB/s for 4 s while the service tails it; the process's peak RSS (VmHWM) and the
//! lag after the last write are printed. Run: `cargo bench --bench filelog`.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use sluice_pipeline::runtime::graph;
use sluice_pipeline::telemetry::Telemetry;
use sluice_pipeline::testing;
use sluice_pipeline::Signal;

use sluice_exporters as _;
use sluice_processors as _;
use sluice_receivers as _;

const LINES: usize = 1_000_000;

fn write_file(path: &std::path::Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for i in 0..LINES {
        // 99 bytes of text + newline.
        writeln!(f, "{i:010} INFO request handled path=/api/v1/items status=200 duration_ms=12 user=anonymous ok").expect("write");
    }
}

fn bench_filelog(c: &mut Criterion) {
    let rt = common::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    write_file(&log);
    let mut group = c.benchmark_group("filelog");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(10);
    let mut run = 0;
    group.bench_function("1M_lines_of_100_bytes_to_null", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run += 1;
                let sink = format!("filelog-bench-{run}");
                let state = dir.path().join(format!("state-{run}"));
                let yaml = format!(
                    "receivers:\n  filelog:\n    include: [\"{}\"]\n    start_at: beginning\nprocessors:\n  batch:\nexporters:\n  collect: {{ sink: {sink}, count_only: true }}\nservice:\n  data_dir: \"{}\"\n  pipelines:\n    logs: {{ receivers: [filelog], processors: [batch], exporters: [collect] }}\n",
                    log.display(),
                    state.display()
                );
                let cfg = common::config(yaml);
                let counted = testing::sink(&sink);
                total += rt.block_on(async {
                    let t0 = Instant::now();
                    let service = graph::start(cfg, Telemetry::new()).await.expect("start");
                    counted.wait_for_items(Signal::Logs, LINES).await;
                    let elapsed = t0.elapsed();
                    service.shutdown().await;
                    elapsed
                });
            }
            total
        })
    });
    group.finish();
}

/// A `/proc/self/status` value in KiB (`VmRSS`, `VmHWM`).
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Tails a file that grows at 50 MB/s for 4 s; prints the peak RSS and the lag.
fn growing_file_memory() {
    const RATE_MB: usize = 50;
    const SECONDS: usize = 4;
    const TICK: Duration = Duration::from_millis(20);
    let rt = common::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("growing.log");
    std::fs::File::create(&log).expect("create");
    let line = format!("{:0>99}\n", "x");
    let lines_per_tick = RATE_MB * 1_000_000 / 100 / (1000 / TICK.as_millis() as usize);
    let ticks = SECONDS * 1000 / TICK.as_millis() as usize;
    let total = lines_per_tick * ticks;
    let chunk: String = line.repeat(lines_per_tick);
    let yaml = format!(
        "receivers:\n  filelog:\n    include: [\"{}\"]\n    start_at: beginning\nprocessors:\n  batch:\nexporters:\n  collect: {{ sink: filelog-bench-growing, count_only: true }}\nservice:\n  data_dir: \"{}\"\n  pipelines:\n    logs: {{ receivers: [filelog], processors: [batch], exporters: [collect] }}\n",
        log.display(),
        dir.path().join("state").display()
    );
    let cfg = common::config(yaml);
    let counted = testing::sink("filelog-bench-growing");
    let rss_before = status_kib("VmRSS:");
    let (lag, peak) = rt.block_on(async {
        let service = graph::start(cfg, Telemetry::new()).await.expect("start");
        let writer_log = log.clone();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(writer_log)
                .expect("open");
            let start = Instant::now();
            for tick in 0..ticks {
                f.write_all(chunk.as_bytes()).expect("write");
                let next = TICK * (tick as u32 + 1);
                if let Some(wait) = next.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Instant::now()
        });
        let mut peak = 0;
        while counted.items(Signal::Logs) < total {
            peak = peak.max(status_kib("VmRSS:"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let done = Instant::now();
        let written = writer.join().expect("writer");
        service.shutdown().await;
        (done.saturating_duration_since(written), peak)
    });
    println!(
        "filelog/growing_file: {total} lines ({} MB) at {RATE_MB} MB/s for {SECONDS} s; peak RSS {:.1} MiB (before start {:.1} MiB, VmHWM {:.1} MiB); lag after the last write {:?}",
        total * 100 / 1_000_000,
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0,
        lag
    );
}

criterion_group!(benches, bench_filelog);

fn main() {
    growing_file_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
