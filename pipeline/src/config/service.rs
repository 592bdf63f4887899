//! The whole document → a [`ResolvedConfig`]: component ids parsed and looked up in the registry,
//! component configs decoded and validated, the `service` section read, and the pipeline graph
//! checked (undefined ids, empty pipelines, unsupported signals, duplicate processors). Every
//! error of the document is collected before reporting; unused components are warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, ConfigErrors};
use super::node::{Node, NodeKind};
use super::{decode, duration};
use crate::data::Signal;
use crate::factory::{ExporterFactory, ProcessorFactory, ReceiverFactory};
use crate::id::{ComponentId, Kind, PipelineId};
use crate::registry::Registry;

/// `service.telemetry.logs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryLogsConfig {
    /// sluice's own log level (`error`, `warn`, `info`, `debug`, `trace`); `--log-level` and
    /// `RUST_LOG` override it. Default `info`.
    pub level: Option<String>,
}

/// `service.telemetry.metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryMetricsConfig {
    /// Serve sluice's own counters in Prometheus text format at `http://<address>/metrics`.
    /// Default: not served.
    pub address: Option<String>,
}

/// `service.telemetry`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    pub logs: TelemetryLogsConfig,
    pub metrics: TelemetryMetricsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PipelineDoc {
    receivers: Vec<String>,
    processors: Vec<String>,
    exporters: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ServiceDoc {
    pipelines: BTreeMap<String, PipelineDoc>,
    telemetry: TelemetryConfig,
    data_dir: Option<PathBuf>,
    #[serde(with = "duration")]
    shutdown_timeout: Duration,
}

impl Default for ServiceDoc {
    fn default() -> Self {
        ServiceDoc {
            pipelines: BTreeMap::new(),
            telemetry: TelemetryConfig::default(),
            data_dir: None,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The `service` settings other than pipelines.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSettings {
    /// Where stateful components keep their state.
    pub data_dir: PathBuf,
    /// How long exporters get to drain at shutdown. Default `10s`.
    pub shutdown_timeout: Duration,
    pub telemetry: TelemetryConfig,
}

/// `$XDG_STATE_HOME/sluice`, else `~/.local/state/sluice`, else `./sluice-state`.
pub fn default_data_dir(lookup: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(x) = lookup("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(x).join("sluice");
    }
    if let Some(h) = lookup("HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(h).join(".local/state/sluice");
    }
    PathBuf::from("sluice-state")
}

/// A component as configured: its factory and its (validated) config node. Processors are
/// built once per pipeline from the node, so it is kept rather than the decoded value.
pub struct ResolvedComponent<F: ?Sized + 'static> {
    pub id: ComponentId,
    pub factory: &'static F,
    pub node: Node,
}

/// A pipeline's component lists, in config order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPipeline {
    pub id: PipelineId,
    pub receivers: Vec<ComponentId>,
    pub processors: Vec<ComponentId>,
    pub exporters: Vec<ComponentId>,
}

/// A valid configuration, ready to build.
pub struct ResolvedConfig {
    pub receivers: BTreeMap<ComponentId, ResolvedComponent<dyn ReceiverFactory>>,
    pub processors: BTreeMap<ComponentId, ResolvedComponent<dyn ProcessorFactory>>,
    pub exporters: BTreeMap<ComponentId, ResolvedComponent<dyn ExporterFactory>>,
    pub pipelines: Vec<ResolvedPipeline>,
    pub service: ServiceSettings,
    /// Things worth saying that do not stop startup (unused components).
    pub warnings: Vec<String>,
}

const TOP_KEYS: [&str; 4] = ["receivers", "processors", "exporters", "service"];

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Per-kind access to the registry, so the three sections share one loop.
trait SectionFactory: 'static {
    fn lookup(registry: &Registry, type_name: &str) -> Result<&'static Self, String>;
    fn signals_of(&self) -> &'static [Signal];
    fn parse(&self, node: &Node) -> Result<(), Vec<ConfigError>>;
}

impl SectionFactory for dyn ReceiverFactory {
    fn lookup(r: &Registry, t: &str) -> Result<&'static Self, String> {
        r.receiver(t)
    }
    fn signals_of(&self) -> &'static [Signal] {
        self.signals()
    }
    fn parse(&self, node: &Node) -> Result<(), Vec<ConfigError>> {
        self.parse_config(node).map(drop)
    }
}

impl SectionFactory for dyn ProcessorFactory {
    fn lookup(r: &Registry, t: &str) -> Result<&'static Self, String> {
        r.processor(t)
    }
    fn signals_of(&self) -> &'static [Signal] {
        self.signals()
    }
    fn parse(&self, node: &Node) -> Result<(), Vec<ConfigError>> {
        self.parse_config(node).map(drop)
    }
}

impl SectionFactory for dyn ExporterFactory {
    fn lookup(r: &Registry, t: &str) -> Result<&'static Self, String> {
        r.exporter(t)
    }
    fn signals_of(&self) -> &'static [Signal] {
        self.signals()
    }
    fn parse(&self, node: &Node) -> Result<(), Vec<ConfigError>> {
        self.parse_config(node).map(drop)
    }
}

fn resolve_section<F: SectionFactory + ?Sized>(
    root: &Node,
    kind: Kind,
    registry: &Registry,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<ComponentId, ResolvedComponent<F>> {
    let section = kind.section();
    let mut out = BTreeMap::new();
    let Some(node) = root.get(section) else {
        return out;
    };
    let Some(entries) = node.entries() else {
        errors.push(ConfigError::at(
            &node.mark,
            path(&[section]),
            format!(
                "expected a mapping of component ids to their settings, found {}",
                node.describe()
            ),
        ));
        return out;
    };
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        let here = path(&[section, key]);
        let id: ComponentId = match key.parse() {
            Ok(id) => id,
            Err(e) => {
                errors.push(ConfigError::at(
                    &k.mark,
                    here,
                    format!("invalid component id: {e}"),
                ));
                continue;
            }
        };
        let factory = match F::lookup(registry, id.type_name()) {
            Ok(f) => f,
            Err(msg) => {
                errors.push(ConfigError::at(&k.mark, here, msg));
                continue;
            }
        };
        if let Err(es) = factory.parse(v) {
            errors.extend(es.into_iter().map(|e| e.under(&here)));
            continue;
        }
        out.insert(
            id.clone(),
            ResolvedComponent {
                id,
                factory,
                node: v.clone(),
            },
        );
    }
    out
}

/// Checks one list of a pipeline (`receivers`, `processors` or `exporters`) against the defined
/// components, returning the ids that resolved.
#[allow(clippy::too_many_arguments)]
fn resolve_refs<F: SectionFactory + ?Sized>(
    list: &[String],
    list_node: Option<&Node>,
    pipeline_path: &[String],
    list_name: &str,
    kind: Kind,
    signal: Signal,
    defined: &BTreeMap<ComponentId, ResolvedComponent<F>>,
    attempted: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> Vec<ComponentId> {
    let mut ids = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let item_path = {
            let mut p = pipeline_path.to_vec();
            p.push(list_name.to_string());
            p.push(i.to_string());
            p
        };
        let mark = match list_node {
            Some(Node {
                kind: NodeKind::Seq(items),
                ..
            }) => items.get(i).map(|n| n.mark.clone()),
            _ => None,
        }
        .or_else(|| list_node.map(|n| n.mark.clone()))
        .unwrap_or_default();
        let id: ComponentId = match raw.parse() {
            Ok(id) => id,
            Err(e) => {
                errors.push(ConfigError::at(
                    &mark,
                    item_path,
                    format!("invalid component id: {e}"),
                ));
                continue;
            }
        };
        let Some(c) = defined.get(&id) else {
            // A component that failed its own checks was already reported; don't pile on.
            if !attempted.contains(raw.as_str()) {
                errors.push(ConfigError::at(
                    &mark,
                    item_path,
                    format!(
                        "{kind} `{id}` is not defined: add it under `{}` or remove it from the pipeline",
                        kind.section()
                    ),
                ));
            }
            continue;
        };
        if !c.factory.signals_of().contains(&signal) {
            let supported: Vec<&str> = c.factory.signals_of().iter().map(|s| s.as_str()).collect();
            errors.push(ConfigError::at(
                &mark,
                item_path,
                format!(
                    "{kind} `{id}` does not support {signal} (it supports: {})",
                    supported.join(", ")
                ),
            ));
            continue;
        }
        if ids.contains(&id) {
            errors.push(ConfigError::at(
                &mark,
                item_path,
                format!("{kind} `{id}` is listed twice in this pipeline"),
            ));
            continue;
        }
        ids.push(id);
    }
    ids
}

fn attempted_keys(root: &Node, section: &str) -> BTreeSet<String> {
    root.get(section)
        .and_then(|n| n.entries())
        .map(|e| {
            e.iter()
                .filter_map(|(k, _)| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves a loaded document against `registry`, with `lookup` for the default data dir.
pub fn resolve(
    root: &Node,
    registry: &Registry,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedConfig, ConfigErrors> {
    let mut errors = Vec::new();
    if let Some(entries) = root.entries() {
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if !TOP_KEYS.contains(&key) {
                let hint = match key {
                    "extensions" | "connectors" => format!("sluice has no {key}"),
                    _ => "expected one of receivers, processors, exporters, service".to_string(),
                };
                errors.push(ConfigError::at(
                    &k.mark,
                    path(&[key]),
                    format!("unknown top-level key `{key}`: {hint}"),
                ));
            }
        }
    }

    let receivers =
        resolve_section::<dyn ReceiverFactory>(root, Kind::Receiver, registry, &mut errors);
    let processors =
        resolve_section::<dyn ProcessorFactory>(root, Kind::Processor, registry, &mut errors);
    let exporters =
        resolve_section::<dyn ExporterFactory>(root, Kind::Exporter, registry, &mut errors);

    let service_node = root.get("service");
    let service: ServiceDoc = match service_node {
        None => {
            errors.push(ConfigError::at(
                &root.mark,
                path(&["service"]),
                "missing `service` section: expected `service: { pipelines: … }`",
            ));
            ServiceDoc::default()
        }
        Some(n) => match decode::<ServiceDoc>(n) {
            Ok(s) => s,
            Err(es) => {
                errors.extend(es.into_iter().map(|e| e.under(&path(&["service"]))));
                ServiceDoc::default()
            }
        },
    };
    let pipelines_node = service_node.and_then(|s| s.get("pipelines"));
    if service_node.is_some() && service.pipelines.is_empty() && errors.is_empty() {
        errors.push(ConfigError::at(
            &pipelines_node.or(service_node).map(|n| n.mark.clone()).unwrap_or_default(),
            path(&["service", "pipelines"]),
            "at least one pipeline is required, e.g. `metrics: { receivers: [procfs], exporters: [debug] }`",
        ));
    }

    let attempted = [
        attempted_keys(root, "receivers"),
        attempted_keys(root, "processors"),
        attempted_keys(root, "exporters"),
    ];
    let mut pipelines = Vec::new();
    let mut used: BTreeSet<(Kind, ComponentId)> = BTreeSet::new();
    for (name, doc) in &service.pipelines {
        let ppath = path(&["service", "pipelines", name]);
        let pnode = pipelines_node.and_then(|p| p.get(name));
        let key_mark = pipelines_node
            .and_then(|p| p.key_node(name))
            .map(|n| n.mark.clone())
            .unwrap_or_default();
        let id: PipelineId = match name.parse() {
            Ok(id) => id,
            Err(e) => {
                errors.push(ConfigError::at(
                    &key_mark,
                    ppath,
                    format!("invalid pipeline id: {e}"),
                ));
                continue;
            }
        };
        let signal = id.signal();
        let list_node = |l: &str| pnode.and_then(|p| p.get(l));
        let r = resolve_refs(
            &doc.receivers,
            list_node("receivers"),
            &ppath,
            "receivers",
            Kind::Receiver,
            signal,
            &receivers,
            &attempted[0],
            &mut errors,
        );
        let p = resolve_refs(
            &doc.processors,
            list_node("processors"),
            &ppath,
            "processors",
            Kind::Processor,
            signal,
            &processors,
            &attempted[1],
            &mut errors,
        );
        let x = resolve_refs(
            &doc.exporters,
            list_node("exporters"),
            &ppath,
            "exporters",
            Kind::Exporter,
            signal,
            &exporters,
            &attempted[2],
            &mut errors,
        );
        for (list, what) in [(&doc.receivers, "receiver"), (&doc.exporters, "exporter")] {
            if list.is_empty() {
                let mut p = ppath.clone();
                p.push(format!("{what}s"));
                errors.push(ConfigError::at(
                    &pnode.map(|n| n.mark.clone()).unwrap_or(key_mark.clone()),
                    p,
                    format!("pipeline `{id}` needs at least one {what}"),
                ));
            }
        }
        used.extend(r.iter().map(|i| (Kind::Receiver, i.clone())));
        used.extend(p.iter().map(|i| (Kind::Processor, i.clone())));
        used.extend(x.iter().map(|i| (Kind::Exporter, i.clone())));
        pipelines.push(ResolvedPipeline {
            id,
            receivers: r,
            processors: p,
            exporters: x,
        });
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    let mut warnings = Vec::new();
    let mut warn_unused = |kind: Kind, ids: Vec<(&ComponentId, &Node)>| {
        for (id, node) in ids {
            if !used.contains(&(kind, id.clone())) {
                // The key's position: a component with no options has a null value, whose
                // position is wherever the next token is.
                let mark = root
                    .get(kind.section())
                    .and_then(|n| n.key_node(&id.to_string()))
                    .map_or(&node.mark, |n| &n.mark);
                warnings.push(format!(
                    "{mark}: {}::{id}: {kind} is defined but no pipeline uses it",
                    kind.section()
                ));
            }
        }
    };
    warn_unused(
        Kind::Receiver,
        receivers.iter().map(|(i, c)| (i, &c.node)).collect(),
    );
    warn_unused(
        Kind::Processor,
        processors.iter().map(|(i, c)| (i, &c.node)).collect(),
    );
    warn_unused(
        Kind::Exporter,
        exporters.iter().map(|(i, c)| (i, &c.node)).collect(),
    );

    // A processor's other signals (alert logs from a metrics pipeline) go to the pipeline's
    // exporters that accept them; with none, they would only be counted as dropped.
    for p in &pipelines {
        for pid in &p.processors {
            let Some(proc_) = processors.get(pid) else {
                continue;
            };
            for &s in proc_.factory.emits() {
                let accepted = s == p.id.signal()
                    || p.exporters.iter().any(|x| {
                        exporters
                            .get(x)
                            .is_some_and(|e| e.factory.signals().contains(&s))
                    });
                if !accepted {
                    let mark = root
                        .get("processors")
                        .and_then(|n| n.key_node(&pid.to_string()))
                        .map_or_else(|| proc_.node.mark.clone(), |n| n.mark.clone());
                    warnings.push(format!(
                        "{}: processors::{pid}: emits {} in pipeline `{}`, but none of its exporters accepts {}: they will be counted as dropped",
                        mark,
                        s.as_str(),
                        p.id,
                        s.as_str()
                    ));
                }
            }
        }
    }

    Ok(ResolvedConfig {
        receivers,
        processors,
        exporters,
        pipelines,
        service: ServiceSettings {
            data_dir: service.data_dir.unwrap_or_else(|| default_data_dir(lookup)),
            shutdown_timeout: service.shutdown_timeout,
            telemetry: service.telemetry,
        },
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::config::{load_sources, resolve, ConfigSource};
    use crate::error::BuildError;
    use crate::factory::{
        ComponentContext, Exporter, ExporterPlugin, Processor, ProcessorPlugin, Receiver,
        ReceiverPlugin, Stability, Validate,
    };
    use crate::registry::Registry;
    use crate::Signal;

    /// Plugins registered only in this crate's unit tests: a metrics-only exporter and a
    /// processor that emits logs, the case no shipped exporter makes.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoConfig {}
    impl Validate for NoConfig {}

    struct MetricsSource;
    impl ReceiverPlugin for MetricsSource {
        type Config = NoConfig;
        const TYPE: &'static str = "unit_source";
        const SIGNALS: &'static [Signal] = &[Signal::Metrics];
        const STABILITY: Stability = Stability::Development;
        const EXAMPLE: &'static str = "";
        fn build(&self, _: NoConfig, _: ComponentContext) -> Result<Box<dyn Receiver>, BuildError> {
            Err(BuildError::Config("never built".into()))
        }
    }
    struct LogEmitter;
    impl ProcessorPlugin for LogEmitter {
        type Config = NoConfig;
        const TYPE: &'static str = "unit_log_emitter";
        const SIGNALS: &'static [Signal] = &[Signal::Metrics];
        const EMITS: &'static [Signal] = &[Signal::Logs];
        const STABILITY: Stability = Stability::Development;
        const EXAMPLE: &'static str = "";
        fn build(
            &self,
            _: NoConfig,
            _: ComponentContext,
        ) -> Result<Box<dyn Processor>, BuildError> {
            Err(BuildError::Config("never built".into()))
        }
    }
    struct MetricsOnly;
    impl ExporterPlugin for MetricsOnly {
        type Config = NoConfig;
        const TYPE: &'static str = "unit_metrics_only";
        const SIGNALS: &'static [Signal] = &[Signal::Metrics];
        const STABILITY: Stability = Stability::Development;
        const EXAMPLE: &'static str = "";
        fn build(&self, _: NoConfig, _: ComponentContext) -> Result<Box<dyn Exporter>, BuildError> {
            Err(BuildError::Config("never built".into()))
        }
    }
    crate::register_receiver!(MetricsSource);
    crate::register_processor!(LogEmitter);
    crate::register_exporter!(MetricsOnly);

    fn warnings(yaml: &str) -> Vec<String> {
        let node = load_sources(
            &[ConfigSource {
                name: "emits.yaml".into(),
                text: yaml.into(),
            }],
            &|_| None,
        )
        .expect("load");
        match resolve(&node, Registry::global().expect("registry"), &|_| None) {
            Ok(c) => c.warnings,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_processor_emitting_a_signal_no_exporter_of_its_pipeline_accepts_is_warned_about() {
        let w = warnings(
            "receivers:\n  unit_source:\nprocessors:\n  unit_log_emitter:\nexporters:\n  unit_metrics_only:\nservice:\n  pipelines:\n    metrics:\n      receivers: [unit_source]\n      processors: [unit_log_emitter]\n      exporters: [unit_metrics_only]\n",
        );
        assert_eq!(
            w,
            vec!["emits.yaml:4:3: processors::unit_log_emitter: emits logs in pipeline `metrics`, but none of its exporters accepts logs: they will be counted as dropped".to_string()]
        );
    }
}
