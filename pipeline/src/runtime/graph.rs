//! Building and starting the graph of a resolved config, and stopping it in order.
//!
//! One receiver instance per id, routed to every pipeline that lists it; one processor instance
//! per pipeline; one exporter instance per id, shared by the pipelines that list it. Exporters
//! start first and receivers last; shutdown stops receivers first, lets pipelines drain and
//! flush into live exporters, then gives exporters `service.shutdown_timeout` to empty their
//! queues. A task that fails after startup is logged and counted and never takes the process
//! down.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::service::ResolvedConfig;
use crate::data::{Batch, Signal};
use crate::factory::{ComponentContext, Endpoints, Exporter, Receiver, ReceiverRunContext};
use crate::id::{ComponentId, Kind, PipelineId};
use crate::runtime::exporter_driver::{self, ExporterDriver, ExporterHandle};
use crate::runtime::fanout::{Output, Outputs, PipelineInput};
use crate::runtime::processing::{PipelineTask, Stage};
use crate::telemetry::{ComponentTelemetry, Telemetry};
use crate::CancellationToken;

/// An exporter built but not started: id, signals, instance, delivery settings.
type BuiltEntry = (
    ComponentId,
    &'static [Signal],
    Box<dyn Exporter>,
    crate::retry::DeliveryConfig,
);

/// How many batches may wait at a pipeline's entrance before receivers are pushed back on.
pub const PIPELINE_CHANNEL_CAPACITY: usize = 256;

/// Why the service could not start: every problem found, each a sentence naming its component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupError(pub Vec<String>);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sluice could not start:")?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartupError {}

/// A started service. Call [`RunningService::shutdown`] to stop it in order.
pub struct RunningService {
    telemetry: Arc<Telemetry>,
    endpoints: Endpoints,
    receivers_stop: CancellationToken,
    receiver_tasks: Vec<(ComponentId, JoinHandle<()>)>,
    pipelines_stop: CancellationToken,
    pipeline_tasks: Vec<(PipelineId, JoinHandle<()>)>,
    drivers: Vec<ExporterDriver>,
    shutdown_timeout: Duration,
    metrics_server: Option<(CancellationToken, JoinHandle<()>)>,
}

fn context(
    id: &ComponentId,
    kind: Kind,
    signals: Vec<Signal>,
    telemetry: &Arc<Telemetry>,
    cfg: &ResolvedConfig,
    endpoints: &Endpoints,
) -> ComponentContext {
    ComponentContext::new(
        id.clone(),
        kind,
        signals,
        ComponentTelemetry::new(telemetry.clone(), kind, id),
        cfg.service.data_dir.clone(),
        endpoints.clone(),
    )
}

/// Builds every component of `cfg`, starts exporters, pipelines and receivers (in that order)
/// and returns the running service. Nothing keeps running when this fails.
pub async fn start(
    cfg: ResolvedConfig,
    telemetry: Arc<Telemetry>,
) -> Result<RunningService, StartupError> {
    let endpoints = Endpoints::default();
    let mut errors = Vec::new();
    tracing::info!(
        data_dir = %cfg.service.data_dir.display(),
        "Data directory for stateful components (each gets a subdirectory, created when it first needs it)."
    );

    // Signals each component is used with.
    let mut used: BTreeMap<(Kind, ComponentId), Vec<Signal>> = BTreeMap::new();
    for p in &cfg.pipelines {
        let s = p.id.signal();
        for (kind, ids) in [
            (Kind::Receiver, &p.receivers),
            (Kind::Exporter, &p.exporters),
        ] {
            for id in ids {
                let e = used.entry((kind, id.clone())).or_default();
                if !e.contains(&s) {
                    e.push(s);
                }
            }
        }
    }

    // Exporters: one per id.
    let mut exporters: Vec<BuiltEntry> = Vec::new();
    for (id, c) in &cfg.exporters {
        let Some(signals) = used.get(&(Kind::Exporter, id.clone())) else {
            continue;
        };
        let ctx = context(
            id,
            Kind::Exporter,
            signals.clone(),
            &telemetry,
            &cfg,
            &endpoints,
        );
        let built = build_one(
            &format!("exporter `{id}`"),
            || c.factory.parse_config(&c.node),
            |conf| c.factory.build(conf, ctx),
        );
        match built {
            Ok(b) => exporters.push((id.clone(), c.factory.signals(), b.exporter, b.delivery)),
            Err(e) => errors.push(e),
        }
    }

    // Processors: one per pipeline.
    let mut stages: BTreeMap<PipelineId, Vec<Stage>> = BTreeMap::new();
    for p in &cfg.pipelines {
        let mut list = Vec::new();
        for id in &p.processors {
            let Some(c) = cfg.processors.get(id) else {
                continue;
            };
            let mut ctx = context(
                id,
                Kind::Processor,
                vec![p.id.signal()],
                &telemetry,
                &cfg,
                &endpoints,
            );
            ctx.pipeline = Some(p.id.clone());
            let built = build_one(
                &format!("processor `{id}` in pipeline `{}`", p.id),
                || c.factory.parse_config(&c.node),
                |conf| c.factory.build(conf, ctx.clone()),
            );
            match built {
                Ok(processor) => list.push(Stage {
                    id: id.clone(),
                    processor,
                    telemetry: ctx.telemetry.clone(),
                }),
                Err(e) => errors.push(e),
            }
        }
        stages.insert(p.id.clone(), list);
    }

    // Receivers: one per id.
    let mut receivers: Vec<(ComponentId, Box<dyn Receiver>, ComponentTelemetry)> = Vec::new();
    for (id, c) in &cfg.receivers {
        let Some(signals) = used.get(&(Kind::Receiver, id.clone())) else {
            continue;
        };
        let ctx = context(
            id,
            Kind::Receiver,
            signals.clone(),
            &telemetry,
            &cfg,
            &endpoints,
        );
        let tel = ctx.telemetry.clone();
        let built = build_one(
            &format!("receiver `{id}`"),
            || c.factory.parse_config(&c.node),
            |conf| c.factory.build(conf, ctx),
        );
        match built {
            Ok(r) => receivers.push((id.clone(), r, tel)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(StartupError(errors));
    }

    // Start exporters.
    let mut drivers = Vec::new();
    let mut handles: BTreeMap<ComponentId, ExporterHandle> = BTreeMap::new();
    for (id, signals, mut exporter, delivery) in exporters {
        if let Err(e) = exporter.start().await {
            errors.push(format!("exporter `{id}`: {e}"));
            continue;
        }
        let tel = ComponentTelemetry::new(telemetry.clone(), Kind::Exporter, &id);
        let exporter: Arc<dyn Exporter> = Arc::from(exporter);
        let (handle, driver) = exporter_driver::spawn(id.clone(), signals, exporter, delivery, tel);
        handles.insert(id, handle);
        drivers.push(driver);
    }

    // Self-metrics endpoint.
    let mut metrics_server = None;
    if errors.is_empty() {
        if let Some(addr) = &cfg.service.telemetry.metrics.address {
            match crate::http::bind(addr).await {
                Ok(listener) => {
                    if let Ok(a) = listener.local_addr() {
                        if let Ok(id) = ComponentId::new("telemetry", None) {
                            endpoints.record(id, "metrics", a);
                        }
                    }
                    let token = CancellationToken::new();
                    let t = telemetry.clone();
                    let router = axum::Router::new().route(
                        "/metrics",
                        axum::routing::get(move || {
                            let t = t.clone();
                            async move {
                                (
                                    [(
                                        axum::http::header::CONTENT_TYPE,
                                        "text/plain; version=0.0.4",
                                    )],
                                    t.render_prometheus(),
                                )
                            }
                        }),
                    );
                    let tok = token.clone();
                    let refused = telemetry.counter(crate::http::REFUSED_CONNECTIONS, &[]);
                    let task = tokio::spawn(async move {
                        if let Err(e) = crate::http::serve(listener, router, tok, refused).await {
                            tracing::error!(error = %e, "Self-metrics endpoint failed.");
                        }
                    });
                    metrics_server = Some((token, task));
                }
                Err(e) => errors.push(format!("service::telemetry::metrics::address: {e}")),
            }
        }
    }

    // Pipelines.
    let pipelines_stop = CancellationToken::new();
    let mut inputs: BTreeMap<PipelineId, PipelineInput> = BTreeMap::new();
    let mut pipeline_tasks = Vec::new();
    for p in &cfg.pipelines {
        let (tx, rx) = mpsc::channel::<Batch>(PIPELINE_CHANNEL_CAPACITY);
        inputs.insert(p.id.clone(), PipelineInput::new(p.id.clone(), tx));
        let task = PipelineTask {
            id: p.id.clone(),
            rx,
            stages: stages.remove(&p.id).unwrap_or_default(),
            exporters: p
                .exporters
                .iter()
                .filter_map(|e| handles.get(e).cloned())
                .collect(),
            telemetry: telemetry.clone(),
            stop: pipelines_stop.clone(),
        };
        let pid = p.id.clone();
        let handle = tokio::spawn(async move {
            if AssertUnwindSafe(task.run()).catch_unwind().await.is_err() {
                tracing::error!(pipeline = %pid, "Pipeline task panicked; its data in flight is lost.");
            }
        });
        pipeline_tasks.push((p.id.clone(), handle));
    }
    drop(handles);

    // Receivers: bind everything before anything runs.
    let mut started = Vec::new();
    if errors.is_empty() {
        for (id, mut r, tel) in receivers {
            match r.start().await {
                Ok(()) => started.push((id, r, tel)),
                Err(e) => errors.push(format!("receiver `{id}`: {e}")),
            }
        }
    }

    let mut service = RunningService {
        telemetry: telemetry.clone(),
        endpoints,
        receivers_stop: CancellationToken::new(),
        receiver_tasks: Vec::new(),
        pipelines_stop,
        pipeline_tasks,
        drivers,
        shutdown_timeout: cfg.service.shutdown_timeout,
        metrics_server,
    };
    if !errors.is_empty() {
        drop(started);
        drop(inputs);
        service.shutdown().await;
        return Err(StartupError(errors));
    }

    for (id, receiver, tel) in started {
        let mut outputs = Outputs::default();
        for signal in Signal::ALL {
            let targets: Vec<PipelineInput> = cfg
                .pipelines
                .iter()
                .filter(|p| p.id.signal() == signal && p.receivers.contains(&id))
                .filter_map(|p| inputs.get(&p.id).cloned())
                .collect();
            if !targets.is_empty() {
                outputs.insert(Output::new(signal, id.clone(), targets, &tel));
            }
        }
        let ctx = ReceiverRunContext {
            shutdown: service.receivers_stop.child_token(),
            outputs,
        };
        let rid = id.clone();
        let handle = tokio::spawn(run_receiver(rid, receiver, ctx, tel));
        service.receiver_tasks.push((id, handle));
    }
    drop(inputs);
    Ok(service)
}

/// Parses a component's (already validated) config again and builds it; a failure becomes one
/// message naming the component.
fn build_one<T>(
    what: &str,
    parse: impl FnOnce() -> Result<crate::factory::AnyConfig, Vec<crate::config::ConfigError>>,
    build: impl FnOnce(crate::factory::AnyConfig) -> Result<T, crate::error::BuildError>,
) -> Result<T, String> {
    let config = parse().map_err(|e| {
        let all: Vec<String> = e.iter().map(ToString::to_string).collect();
        format!("{what}: {}", all.join("; "))
    })?;
    build(config).map_err(|e| format!("{what}: {e}"))
}

async fn run_receiver(
    id: ComponentId,
    receiver: Box<dyn Receiver>,
    ctx: ReceiverRunContext,
    tel: ComponentTelemetry,
) {
    let r = AssertUnwindSafe(receiver.run(ctx)).catch_unwind().await;
    let failure = match r {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "receiver panicked".to_string(),
    };
    tel.counter_named("sluice_receiver_failures").add(1);
    tracing::error!(component_kind = "receiver", component_id = %id, error = %failure, "Receiver stopped with an error; the rest of the service keeps running.");
}

impl RunningService {
    /// The self-telemetry registry.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The addresses receivers (and the self-metrics endpoint, as `telemetry`/`metrics`) bound.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Stops in order: receivers, then pipelines (drain and flush), then exporters (drain their
    /// queues until `service.shutdown_timeout`, then flush).
    pub async fn shutdown(self) {
        let deadline = Instant::now() + self.shutdown_timeout;
        self.receivers_stop.cancel();
        for (id, mut h) in self.receiver_tasks {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                tracing::warn!(component_kind = "receiver", component_id = %id, "Receiver did not stop before the shutdown deadline; aborting it.");
                h.abort();
            }
        }
        self.pipelines_stop.cancel();
        for (id, mut h) in self.pipeline_tasks {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                tracing::warn!(pipeline = %id, "Pipeline did not drain before the shutdown deadline; aborting it.");
                h.abort();
            }
        }
        for d in self.drivers {
            d.drain(deadline, self.shutdown_timeout).await;
        }
        if let Some((token, task)) = self.metrics_server {
            token.cancel();
            let _ = task.await;
        }
    }
}
