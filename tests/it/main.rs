//! sluice's one integration test binary: modules per area, real components, real sockets on
//! 127.0.0.1, the real `sluice` binary for CLI behaviour.

#![allow(clippy::unwrap_used)]

mod ci;
mod cli;
mod config;
mod conformance;
mod filelog;
mod github;
mod interop;
mod otlp;
mod runtime;
mod sli;
mod sqlite;
mod summary;

use std::sync::Arc;
use std::time::Duration;

use sluice_pipeline::config::{self as cfg, ConfigSource, ResolvedConfig};
use sluice_pipeline::registry::Registry;
use sluice_pipeline::runtime::{graph, RunningService};
use sluice_pipeline::telemetry::Telemetry;

// Link the plugin crates (their registrations) into the test binary.
use sluice_exporters as _;
use sluice_processors as _;
use sluice_receivers as _;

/// An upper bound for anything a test waits on: a hang fails the test instead of the suite.
pub const WAIT_BOUND: Duration = Duration::from_secs(60);

/// Resolves YAML text against the real registry.
pub fn resolve_yaml(yaml: &str) -> Result<ResolvedConfig, String> {
    let registry = Registry::global().map_err(|e| e.join("\n"))?;
    let node = cfg::load_sources(
        &[ConfigSource {
            name: "test.yaml".into(),
            text: yaml.into(),
        }],
        &|name| std::env::var(name).ok(),
    )
    .map_err(|e| e.to_string())?;
    cfg::resolve(&node, registry, &|name| std::env::var(name).ok()).map_err(|e| e.to_string())
}

/// Starts a service from YAML text; returns it with its telemetry.
pub async fn start_yaml(yaml: &str) -> (RunningService, Arc<Telemetry>) {
    let cfg = match resolve_yaml(yaml) {
        Ok(c) => c,
        Err(e) => panic!("config did not resolve:\n{e}"),
    };
    let telemetry = Telemetry::new();
    match graph::start(cfg, telemetry.clone()).await {
        Ok(s) => (s, telemetry),
        Err(e) => panic!("service did not start:\n{e}"),
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`WAIT_BOUND`].
pub async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT_BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits until the self-telemetry value `name{labels}` reaches `at_least` (a readiness wait on a
/// counter the code under test moves; bounded by [`WAIT_BOUND`]).
pub async fn wait_for_value(
    t: &Telemetry,
    name: &str,
    labels: &[(&str, &str)],
    at_least: i64,
) -> i64 {
    bounded(name, async {
        loop {
            let v = t.value(name, labels).unwrap_or(0);
            if v >= at_least {
                return v;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}
