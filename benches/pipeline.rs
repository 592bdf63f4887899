//! The cost of one batch through a real running pipeline: inject receiver → `batch` processor →
//! two exporters that only count (so the figure is the pipeline's own: channel hops, the
//! processor, the Arc fan-out, the exporter queues and retry wrapper), reported per item.
//! Run: `cargo bench --bench pipeline`.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_pipeline::runtime::graph;
use sluice_pipeline::telemetry::Telemetry;
use sluice_pipeline::testing::{self, spans};
use sluice_pipeline::{Batch, Signal};

use sluice_exporters as _;
use sluice_processors as _;
use sluice_receivers as _;

fn bench_pipeline(c: &mut Criterion) {
    let rt = common::runtime();
    let mut group = c.benchmark_group("pipeline");
    for &items in &[100usize, 1000] {
        let name = format!("bench-{items}");
        let yaml = format!(
            "receivers:\n  inject: {{ name: {name} }}\nprocessors:\n  batch: {{ send_batch_size: {items}, timeout: 0s }}\nexporters:\n  collect/a: {{ sink: {name}-a, count_only: true }}\n  collect/b: {{ sink: {name}-b, count_only: true }}\nservice:\n  pipelines:\n    traces: {{ receivers: [inject], processors: [batch], exporters: [collect/a, collect/b] }}\n"
        );
        let cfg = common::config(yaml);
        let service = rt
            .block_on(graph::start(cfg, Telemetry::new()))
            .expect("start");
        let out = rt.block_on(testing::injector(&name));
        let output = out.get(Signal::Traces).expect("traces output").clone();
        let (a, b) = (
            testing::sink(&format!("{name}-a")),
            testing::sink(&format!("{name}-b")),
        );
        let template = spans(items);
        group.throughput(Throughput::Elements(items as u64));
        group.bench_function(format!("batch_to_two_exporters/{items}_spans"), |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let start_a = a.items(Signal::Traces);
                    let start_b = b.items(Signal::Traces);
                    let batches: Vec<Batch> =
                        (0..iters).map(|_| Batch::new(template.clone())).collect();
                    let t0 = Instant::now();
                    for batch in batches {
                        output.send(batch).await.expect("send");
                    }
                    let want = iters as usize * items;
                    a.wait_for_items(Signal::Traces, start_a + want).await;
                    b.wait_for_items(Signal::Traces, start_b + want).await;
                    t0.elapsed()
                })
            })
        });
        drop(output);
        drop(out);
        rt.block_on(service.shutdown());
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(20);
    targets = bench_pipeline
}
criterion_main!(benches);
