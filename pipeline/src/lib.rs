//! sluice's pipeline core. It knows no plugin: it defines the data that flows ([`data`]), component
//! and pipeline ids ([`id`]), the factory and stage traits plugins implement ([`factory`]), the
//! compile-time registry ([`registry`]), configuration loading with positioned errors ([`config`]),
//! the runtime that wires receivers → processors → exporters ([`runtime`]), and self-telemetry
//! ([`telemetry`]).
//!
//! Plugins depend on this crate and register themselves with [`register_receiver!`],
//! [`register_processor!`] and [`register_exporter!`]; the binary links the plugin crates it wants.

pub mod ack;
pub mod config;
pub mod data;
pub mod error;
pub mod factory;
pub mod http;
pub mod id;
pub mod otlp;
pub mod registry;
pub mod retry;
pub mod runtime;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use ack::{Ack, AckOutcome};
pub use data::{Batch, BatchMeta, Payload, Signal};
pub use error::{BuildError, ExportError, ProcessError, ReceiverError};
pub use factory::{
    ExporterFactory, ExporterPlugin, ProcessorFactory, ProcessorPlugin, ReceiverFactory,
    ReceiverPlugin, Stability, Validate,
};
pub use id::{ComponentId, Kind, PipelineId};

/// Re-exported for plugins implementing the async stage traits.
pub use async_trait::async_trait;
/// Re-exported so plugins' registration macros resolve `inventory` through this crate.
#[doc(hidden)]
pub use inventory;
/// Re-exported: the shutdown token type every receiver watches.
pub use tokio_util::sync::CancellationToken;
