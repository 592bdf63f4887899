//! The cost per log record of the `pii` processor (every built-in pattern, one attribute rule),
//! on records with nothing to scrub and on records holding an e-mail and an IPv4 address.
//! Run: `cargo bench --bench pii`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_pipeline::factory::Processor;
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::{Batch, ComponentId, Kind, Payload};
use sluice_processors::pii::{
    PiiAction, PiiAttributeRule, PiiPatternRule, PiiProcessor, PiiProcessorConfig, BUILTIN_PATTERNS,
};
use sluice_proto::common::v1::{any_value::Value, AnyValue, KeyValue};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

const RECORDS: usize = 1000;

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(v.to_string())),
    })
}

fn logs(body: &str) -> Payload {
    let record = LogRecord {
        body: s(body),
        attributes: vec![
            KeyValue {
                key: "http.route".to_string(),
                value: s("/api/v1/orders/{id}"),
                ..Default::default()
            },
            KeyValue {
                key: "user.id".to_string(),
                value: s("u-4242"),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    Payload::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: vec![record; RECORDS],
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn bench_pii(c: &mut Criterion) {
    let config = PiiProcessorConfig {
        key: "bench-key".to_string(),
        attributes: vec![PiiAttributeRule {
            keys: vec!["user.id".to_string(), "enduser.*".to_string()],
            action: PiiAction::Hash,
            ..Default::default()
        }],
        patterns: BUILTIN_PATTERNS
            .iter()
            .map(|name| PiiPatternRule {
                name: (*name).to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let id: ComponentId = "pii".parse().expect("id");
    let telemetry = ComponentTelemetry::new(Telemetry::new(), Kind::Processor, &id);
    let mut p = PiiProcessor::new(&config, &telemetry).expect("build");
    let mut group = c.benchmark_group("pii");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, body) in [
        (
            "clean",
            "GET /api/v1/orders/93 200 in 12ms, cache hit, build 1.2.3, region eu-west-1",
        ),
        (
            "email_ipv4",
            "GET /api/v1/orders/93 200 in 12ms for alice@example.com from 192.168.1.23",
        ),
    ] {
        let payload = logs(body);
        group.bench_function(name, |b| {
            b.iter_batched(
                || Batch::new(payload.clone()),
                |batch| {
                    let mut out = Vec::with_capacity(1);
                    p.process(batch, &mut out).expect("process");
                    out
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pii);
criterion_main!(benches);
