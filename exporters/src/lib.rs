//! sluice's exporters. Each is a folder behind a cargo feature of this crate, registered with the
//! pipeline core at compile time; `known_component!` lines let a build without an exporter say
//! which feature of the `sluice` binary enables it.

#[cfg(feature = "debug")]
pub mod debug;
#[cfg(any(feature = "otlp", feature = "loki"))]
pub mod http_client;
#[cfg(feature = "loki")]
pub mod loki;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "summary")]
pub mod summary;

sluice_pipeline::known_component!(Exporter, "debug", "exporter-debug");
sluice_pipeline::known_component!(Exporter, "otlp", "exporter-otlp");
sluice_pipeline::known_component!(Exporter, "sqlite", "exporter-sqlite");
sluice_pipeline::known_component!(Exporter, "summary", "exporter-summary");
sluice_pipeline::known_component!(Exporter, "loki", "exporter-loki");
