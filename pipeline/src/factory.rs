//! The traits plugins implement, and how they register.
//!
//! A plugin writes a unit struct, implements the typed helper trait of its kind
//! ([`ReceiverPlugin`], [`ProcessorPlugin`], [`ExporterPlugin`]) with its `Config` type, and
//! registers it with one line: `sluice_pipeline::register_receiver!(ProcfsReceiverFactory);`.
//! A blanket impl turns the typed trait into the object-safe factory trait the registry holds, so
//! plugin authors never see `Any`. Registration is compile-time (`inventory`); there is no
//! central list of plugins.
//!
//! # Lifecycle contract
//! - `build` only checks and prepares: it binds nothing that outlives a failed startup.
//! - `Receiver::start` is called for every receiver before any runs; it binds sockets (so port
//!   clashes fail at startup). `Receiver::run` runs until the shutdown token fires, then returns
//!   promptly; data it still holds is sent or refused, never silently lost.
//! - `Processor::flush` is called once at shutdown, after the last `process`.
//! - `Exporter::shutdown` is called once after the exporter's queue drained (or the shutdown
//!   deadline passed); it flushes what the exporter buffers. It must be safe without `start`.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::config::error::{ConfigError, ValidationError};
use crate::config::node::Node;
use crate::data::{Batch, Signal};
use crate::error::{BuildError, ExportError, ProcessError, ReceiverError};
use crate::id::{ComponentId, Kind, PipelineId};
use crate::retry::DeliveryConfig;
use crate::runtime::fanout::Outputs;
use crate::telemetry::ComponentTelemetry;
use crate::CancellationToken;

/// How mature a component is, as the Collector labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stability {
    Development,
    Alpha,
    Beta,
    Stable,
}

impl fmt::Display for Stability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stability::Development => "development",
            Stability::Alpha => "alpha",
            Stability::Beta => "beta",
            Stability::Stable => "stable",
        })
    }
}

/// Semantic checks of a config after it deserialised (ranges, option combinations).
pub trait Validate {
    /// `Err` names the offending key (relative to the component) and what was expected.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// A parsed, validated component config, type-erased for the registry.
pub type AnyConfig = Box<dyn Any + Send>;

/// Where one component's own state lives, and what the host gives it.
#[derive(Debug, Clone)]
pub struct ComponentContext {
    /// The component's id.
    pub id: ComponentId,
    /// Its kind.
    pub kind: Kind,
    /// The signals it is used with in this configuration.
    pub signals: Vec<Signal>,
    /// For a processor: the pipeline it belongs to.
    pub pipeline: Option<PipelineId>,
    /// Its self-telemetry.
    pub telemetry: ComponentTelemetry,
    data_dir: PathBuf,
    endpoints: Endpoints,
}

/// Addresses the receivers actually bound (port 0 resolved), shared with the host.
#[derive(Debug, Clone, Default)]
pub struct Endpoints(Arc<Mutex<Vec<(ComponentId, String, SocketAddr)>>>);

impl Endpoints {
    /// The bound address of `id`'s listener named `label` (`grpc`, `http`).
    pub fn get(&self, id: &ComponentId, label: &str) -> Option<SocketAddr> {
        self.lock()
            .iter()
            .find(|(i, l, _)| i == id && l == label)
            .map(|(_, _, a)| *a)
    }

    /// Every bound address.
    pub fn all(&self) -> Vec<(ComponentId, String, SocketAddr)> {
        self.lock().clone()
    }

    /// Records a bound address.
    pub fn record(&self, id: ComponentId, label: &str, addr: SocketAddr) {
        self.lock().push((id, label.to_string(), addr));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(ComponentId, String, SocketAddr)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ComponentContext {
    /// A context; the runtime makes these, tests may too.
    pub fn new(
        id: ComponentId,
        kind: Kind,
        signals: Vec<Signal>,
        telemetry: ComponentTelemetry,
        data_dir: PathBuf,
        endpoints: Endpoints,
    ) -> ComponentContext {
        ComponentContext {
            id,
            kind,
            signals,
            pipeline: None,
            telemetry,
            data_dir,
            endpoints,
        }
    }

    /// The service's data directory (not created by this call).
    pub fn service_data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// This component's own directory under the service's data directory
    /// (`<data_dir>/<kind>/<type>[_<name>]`), created on first use.
    pub fn storage_dir(&self) -> Result<PathBuf, BuildError> {
        let leaf = match self.id.name() {
            Some(n) => format!("{}_{}", self.id.type_name(), sanitize(n)),
            None => self.id.type_name().to_string(),
        };
        let dir = self.data_dir.join(self.kind.as_str()).join(leaf);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                BuildError::io(format!("cannot create directory {}", dir.display()), e)
            })?;
            tracing::info!(component_id = %self.id, path = %dir.display(), "Created storage directory.");
        }
        Ok(dir)
    }

    /// Records that this component listens on `addr` (port 0 resolved), under `label`.
    pub fn report_endpoint(&self, label: &str, addr: SocketAddr) {
        self.endpoints.record(self.id.clone(), label, addr);
        tracing::info!(component_id = %self.id, endpoint = %addr, listener = label, "Listening.");
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a running receiver is given.
pub struct ReceiverRunContext {
    /// Fires when the receiver must stop.
    pub shutdown: CancellationToken,
    /// One output per signal this receiver feeds (into every pipeline that lists it).
    pub outputs: Outputs,
}

/// A source of data. See the module docs for the lifecycle.
#[async_trait::async_trait]
pub trait Receiver: Send {
    /// Binds sockets and opens what must exist before data flows. Called for every receiver
    /// before any runs; an error aborts startup.
    async fn start(&mut self) -> Result<(), ReceiverError> {
        Ok(())
    }

    /// Produces data until `ctx.shutdown` fires.
    async fn run(self: Box<Self>, ctx: ReceiverRunContext) -> Result<(), ReceiverError>;
}

/// A stage that transforms batches, one instance per pipeline. The runtime owns the loop and
/// calls these from one task, so they need no locking.
pub trait Processor: Send {
    /// Handles one batch, pushing zero or more batches to `out` (possibly of other signals).
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ProcessError>;

    /// How often [`Processor::on_tick`] should run, if at all.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Timed work (a batch timeout, an evaluation window).
    fn on_tick(&mut self, _out: &mut Vec<Batch>) {}

    /// Hands over everything held, at shutdown.
    fn flush(&mut self, _out: &mut Vec<Batch>) {}
}

/// A destination. The runtime wraps each exporter in a bounded queue with retries; `export` may
/// be called concurrently (up to `sending_queue.num_consumers`).
#[async_trait::async_trait]
pub trait Exporter: Send + Sync {
    /// Connects or opens what it needs; an error aborts startup.
    async fn start(&mut self) -> Result<(), BuildError> {
        Ok(())
    }

    /// Sends one batch. A `Retryable` error is retried by the runtime with backoff; a
    /// `Permanent` one is counted as dropped.
    async fn export(&self, batch: &Batch) -> Result<(), ExportError>;

    /// Flushes what it buffers; called once, after its queue drained.
    async fn shutdown(&self) -> Result<(), ExportError> {
        Ok(())
    }
}

/// A built exporter and the delivery settings (queue, retry, timeout) the runtime applies.
pub struct BuiltExporter {
    pub exporter: Box<dyn Exporter>,
    pub delivery: DeliveryConfig,
}

// ---------------------------------------------------------------------------------------------
// Object-safe factories, as the registry holds them.

/// Creates receivers of one type.
pub trait ReceiverFactory: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    /// The Rust type behind this factory, to name it in a duplicate-registration error.
    fn factory_name(&self) -> &'static str;
    fn signals(&self) -> &'static [Signal];
    fn stability(&self) -> Stability;
    /// A minimal config (the YAML under the component id) that builds and runs.
    fn example(&self) -> &'static str;
    fn parse_config(&self, node: &Node) -> Result<AnyConfig, Vec<ConfigError>>;
    fn build(
        &self,
        config: AnyConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError>;
}

/// Creates processors of one type.
pub trait ProcessorFactory: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    /// The Rust type behind this factory, to name it in a duplicate-registration error.
    fn factory_name(&self) -> &'static str;
    fn signals(&self) -> &'static [Signal];
    /// Signals it emits besides the one of its pipeline (the `sli` processor's alert logs):
    /// startup warns when no exporter of the pipeline accepts them.
    fn emits(&self) -> &'static [Signal];
    fn stability(&self) -> Stability;
    fn example(&self) -> &'static str;
    fn parse_config(&self, node: &Node) -> Result<AnyConfig, Vec<ConfigError>>;
    fn build(
        &self,
        config: AnyConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Processor>, BuildError>;
}

/// Creates exporters of one type.
pub trait ExporterFactory: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;
    /// The Rust type behind this factory, to name it in a duplicate-registration error.
    fn factory_name(&self) -> &'static str;
    fn signals(&self) -> &'static [Signal];
    fn stability(&self) -> Stability;
    fn example(&self) -> &'static str;
    fn parse_config(&self, node: &Node) -> Result<AnyConfig, Vec<ConfigError>>;
    fn build(&self, config: AnyConfig, ctx: ComponentContext) -> Result<BuiltExporter, BuildError>;
}

// ---------------------------------------------------------------------------------------------
// Typed helpers: what plugin authors implement.

/// A receiver plugin with a typed config.
pub trait ReceiverPlugin: Send + Sync + 'static {
    /// The config under the component id: `#[serde(default, deny_unknown_fields)]`.
    type Config: DeserializeOwned + Default + Validate + Send + 'static;
    /// The component type (`procfs`).
    const TYPE: &'static str;
    /// The signals it can produce.
    const SIGNALS: &'static [Signal];
    /// Its maturity.
    const STABILITY: Stability;
    /// A minimal YAML config that builds and runs (used by docs and the conformance test).
    const EXAMPLE: &'static str;
    /// Builds a receiver from a validated config.
    fn build(
        &self,
        config: Self::Config,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError>;
}

/// A processor plugin with a typed config.
pub trait ProcessorPlugin: Send + Sync + 'static {
    type Config: DeserializeOwned + Default + Validate + Send + 'static;
    const TYPE: &'static str;
    const SIGNALS: &'static [Signal];
    /// Signals it emits besides the one of its pipeline (none by default).
    const EMITS: &'static [Signal] = &[];
    const STABILITY: Stability;
    const EXAMPLE: &'static str;
    /// Builds one instance for the pipeline in `ctx.pipeline`.
    fn build(
        &self,
        config: Self::Config,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Processor>, BuildError>;
}

/// An exporter plugin with a typed config.
pub trait ExporterPlugin: Send + Sync + 'static {
    type Config: DeserializeOwned + Default + Validate + Send + 'static;
    const TYPE: &'static str;
    const SIGNALS: &'static [Signal];
    const STABILITY: Stability;
    const EXAMPLE: &'static str;
    /// The queue, retry and timeout settings the runtime wraps it in; an exporter that exposes
    /// `sending_queue`, `retry_on_failure` and `timeout` options returns them here.
    fn delivery(_config: &Self::Config) -> DeliveryConfig {
        DeliveryConfig::default()
    }
    fn build(
        &self,
        config: Self::Config,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Exporter>, BuildError>;
}

fn parse_typed<C: DeserializeOwned + Validate + Send + 'static>(
    node: &Node,
) -> Result<AnyConfig, Vec<ConfigError>> {
    let config: C = crate::config::decode(node)?;
    if let Err(v) = config.validate() {
        return Err(vec![v.into_config_error(node)]);
    }
    Ok(Box::new(config))
}

fn downcast<C: 'static>(config: AnyConfig, type_name: &str) -> Result<C, BuildError> {
    config.downcast::<C>().map(|b| *b).map_err(|_| {
        BuildError::Other(format!(
            "internal error: config handed to `{type_name}` is not its own type"
        ))
    })
}

/// The factory methods every typed plugin answers the same way, from its consts and `Config`.
macro_rules! typed_factory_methods {
    () => {
        fn type_name(&self) -> &'static str {
            P::TYPE
        }
        fn factory_name(&self) -> &'static str {
            std::any::type_name::<P>()
        }
        fn signals(&self) -> &'static [Signal] {
            P::SIGNALS
        }
        fn stability(&self) -> Stability {
            P::STABILITY
        }
        fn example(&self) -> &'static str {
            P::EXAMPLE
        }
        fn parse_config(&self, node: &Node) -> Result<AnyConfig, Vec<ConfigError>> {
            parse_typed::<P::Config>(node)
        }
    };
}

impl<P: ReceiverPlugin> ReceiverFactory for P {
    typed_factory_methods!();
    fn build(
        &self,
        config: AnyConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Receiver>, BuildError> {
        ReceiverPlugin::build(self, downcast(config, P::TYPE)?, ctx)
    }
}

impl<P: ProcessorPlugin> ProcessorFactory for P {
    typed_factory_methods!();
    fn emits(&self) -> &'static [Signal] {
        P::EMITS
    }
    fn build(
        &self,
        config: AnyConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Processor>, BuildError> {
        ProcessorPlugin::build(self, downcast(config, P::TYPE)?, ctx)
    }
}

impl<P: ExporterPlugin> ExporterFactory for P {
    typed_factory_methods!();
    fn build(&self, config: AnyConfig, ctx: ComponentContext) -> Result<BuiltExporter, BuildError> {
        let config: P::Config = downcast(config, P::TYPE)?;
        let delivery = P::delivery(&config);
        let exporter = ExporterPlugin::build(self, config, ctx)?;
        Ok(BuiltExporter { exporter, delivery })
    }
}

// ---------------------------------------------------------------------------------------------
// Registration.

/// A registered receiver factory.
pub struct ReceiverRegistration(pub &'static dyn ReceiverFactory);
/// A registered processor factory.
pub struct ProcessorRegistration(pub &'static dyn ProcessorFactory);
/// A registered exporter factory.
pub struct ExporterRegistration(pub &'static dyn ExporterFactory);

/// A component type that a plugin crate knows, compiled in or not, and the cargo feature of the
/// `sluice` binary that enables it: lets the registry say "rebuild with `--features …`".
pub struct KnownComponent {
    pub kind: Kind,
    pub type_name: &'static str,
    pub feature: &'static str,
}

inventory::collect!(ReceiverRegistration);
inventory::collect!(ProcessorRegistration);
inventory::collect!(ExporterRegistration);
inventory::collect!(KnownComponent);

/// Registers a receiver factory (a unit struct implementing [`ReceiverPlugin`]).
#[macro_export]
macro_rules! register_receiver {
    ($factory:expr) => {
        $crate::inventory::submit! {
            $crate::factory::ReceiverRegistration(&$factory)
        }
    };
}

/// Registers a processor factory (a unit struct implementing [`ProcessorPlugin`]).
#[macro_export]
macro_rules! register_processor {
    ($factory:expr) => {
        $crate::inventory::submit! {
            $crate::factory::ProcessorRegistration(&$factory)
        }
    };
}

/// Registers an exporter factory (a unit struct implementing [`ExporterPlugin`]).
#[macro_export]
macro_rules! register_exporter {
    ($factory:expr) => {
        $crate::inventory::submit! {
            $crate::factory::ExporterRegistration(&$factory)
        }
    };
}

/// Declares a component type a plugin crate provides behind a cargo feature, compiled in or not:
/// `sluice_pipeline::known_component!(Receiver, "procfs", "receiver-procfs");`
#[macro_export]
macro_rules! known_component {
    ($kind:ident, $type_name:expr, $feature:expr) => {
        $crate::inventory::submit! {
            $crate::factory::KnownComponent {
                kind: $crate::id::Kind::$kind,
                type_name: $type_name,
                feature: $feature,
            }
        }
    };
}
