//! The cost of one full scrape of the real `/proc` by the `procfs` receiver: every area, the top
//! 10 processes (which reads every process's stat), measured after a first scrape so rates and
//! utilizations are computed as in steady state. At a 1 s `collection_interval`, the time per
//! iteration divided by 1 s is the share of one core the receiver uses.
//! Run: `cargo bench --bench procfs`.

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_pipeline::telemetry::Counter;
use sluice_receivers::procfs::{ProcfsReceiverConfig, Scraper};

fn bench_scrape(c: &mut Criterion) {
    let config = ProcfsReceiverConfig::default();
    let mut scraper = Scraper::new(&config, Counter::default()).expect("a readable /proc");
    scraper.scrape();
    c.bench_function("procfs/scrape", |b| b.iter(|| scraper.scrape()));
}

criterion_group!(benches, bench_scrape);
criterion_main!(benches);
