//! Lines per second through `filelog` → `batch` → an exporter that only counts, on a file of
//! 100-byte lines written before the service starts (`start_at: beginning`), timed from start
//! until every line is counted. Run: `cargo bench --bench filelog`.

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_pipeline::config::{load_sources, resolve, ConfigSource};
use sluice_pipeline::registry::Registry;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
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
                let node = load_sources(&[ConfigSource { name: "bench.yaml".into(), text: yaml }], &|_| None)
                    .expect("config");
                let cfg = resolve(&node, Registry::global().expect("registry"), &|_| None).expect("resolve");
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

criterion_group!(benches, bench_filelog);
criterion_main!(benches);
