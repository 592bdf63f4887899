//! What the benches share: a two-worker runtime (the machine's size) and a service config from
//! YAML text resolved against the real registry. Each bench includes it with `mod common;`.

#![allow(dead_code)]

use sluice_pipeline::config::{load_sources, resolve, ConfigSource, ResolvedConfig};
use sluice_pipeline::registry::Registry;

/// A multi-threaded tokio runtime with two workers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `yaml` resolved against the registry, with no environment.
pub fn config(yaml: String) -> ResolvedConfig {
    let node = load_sources(
        &[ConfigSource {
            name: "bench.yaml".into(),
            text: yaml,
        }],
        &|_| None,
    )
    .expect("config");
    resolve(&node, Registry::global().expect("registry"), &|_| None).expect("resolve")
}
