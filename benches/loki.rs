//! Push encode throughput of the `loki` exporter: OTLP log records → streams → snappy protobuf
//! or JSON body, as one `export` does before the request.
//! Run: `cargo bench --bench loki`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_exporters::loki::{
    encode_push, LabelRules, LokiCompression, LokiFormat, LokiLabelsConfig,
};
use sluice_pipeline::Payload;

fn bench_encode(c: &mut Criterion) {
    const RECORDS: usize = 1000;
    let Payload::Logs(logs) = sluice_pipeline::testing::log_records(RECORDS) else {
        unreachable!("log_records makes logs")
    };
    let rules = LabelRules::new(&LokiLabelsConfig {
        severity: true,
        ..LokiLabelsConfig::default()
    });
    let mut group = c.benchmark_group("loki_encode");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, format, compression) in [
        (
            "protobuf_snappy",
            LokiFormat::Protobuf,
            LokiCompression::None,
        ),
        ("json", LokiFormat::Json, LokiCompression::None),
        ("json_gzip", LokiFormat::Json, LokiCompression::Gzip),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| encode_push(&logs, &rules, format, compression).expect("encode"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
