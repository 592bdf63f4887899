//! The conformance walk: every factory of the registry, for every signal it claims, parses its
//! own `example()`, builds, runs briefly and shuts down cleanly.

use std::time::Duration;

use sluice_pipeline::config::node::parse_yaml;
use sluice_pipeline::factory::{ComponentContext, Endpoints, ReceiverRunContext};
use sluice_pipeline::registry::Registry;
use sluice_pipeline::runtime::fanout::{Output, Outputs, PipelineInput};
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::testing::{gauge_points, log_records, spans};
use sluice_pipeline::{Batch, CancellationToken, ComponentId, ExportError, Kind, Payload, Signal};

use crate::bounded;

fn sample(signal: Signal) -> Payload {
    match signal {
        Signal::Traces => spans(3),
        Signal::Metrics => gauge_points("conformance", 3),
        Signal::Logs => log_records(3),
    }
}

fn ctx(kind: Kind, type_name: &str, signal: Signal, dir: &std::path::Path) -> ComponentContext {
    let id = ComponentId::new(type_name, Some("conformance")).unwrap();
    let tel = ComponentTelemetry::new(Telemetry::new(), kind, &id);
    let mut c = ComponentContext::new(
        id,
        kind,
        vec![signal],
        tel,
        dir.to_path_buf(),
        Endpoints::default(),
    );
    if kind == Kind::Processor {
        c.pipeline = Some(signal.as_str().parse().unwrap());
    }
    c
}

#[tokio::test]
async fn every_component_builds_runs_and_stops_from_its_example() {
    let registry = Registry::global().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for info in registry.components() {
        let node = parse_yaml(info.example, &format!("<example of {}>", info.type_name))
            .unwrap_or_else(|e| panic!("{} example does not parse: {e:?}", info.type_name));
        for &signal in info.signals {
            let what = format!("{} {} ({signal})", info.kind, info.type_name);
            let c = ctx(info.kind, info.type_name, signal, dir.path());
            match info.kind {
                Kind::Receiver => {
                    let f = registry.receiver(info.type_name).unwrap();
                    let conf = f
                        .parse_config(&node)
                        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let mut r = f
                        .build(conf, c.clone())
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    bounded(&what, r.start())
                        .await
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                    let mut outputs = Outputs::default();
                    let pid = signal.as_str().parse().unwrap();
                    outputs.insert(Output::new(
                        signal,
                        c.id.clone(),
                        vec![PipelineInput::new(pid, tx)],
                        &c.telemetry,
                    ));
                    let shutdown = CancellationToken::new();
                    let task = tokio::spawn(r.run(ReceiverRunContext {
                        shutdown: shutdown.clone(),
                        outputs,
                    }));
                    // Run briefly: until it produces something or a moment passes.
                    let _ = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
                    shutdown.cancel();
                    let result = bounded(&what, task).await.expect("receiver task panicked");
                    result.unwrap_or_else(|e| panic!("{what} stopped with an error: {e}"));
                }
                Kind::Processor => {
                    let f = registry.processor(info.type_name).unwrap();
                    let conf = f
                        .parse_config(&node)
                        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let mut p = f.build(conf, c).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let mut out = Vec::new();
                    p.process(Batch::new(sample(signal)), &mut out)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    p.on_tick(&mut out);
                    p.flush(&mut out);
                    let items: usize = out
                        .iter()
                        .filter(|b| b.signal() == signal)
                        .map(|b| b.item_count())
                        .sum();
                    assert!(items <= 3, "{what} invented items");
                }
                Kind::Exporter => {
                    let f = registry.exporter(info.type_name).unwrap();
                    let conf = f
                        .parse_config(&node)
                        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let mut built = f.build(conf, c).unwrap_or_else(|e| panic!("{what}: {e}"));
                    bounded(&what, built.exporter.start())
                        .await
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    match bounded(&what, built.exporter.export(&Batch::new(sample(signal)))).await {
                        Ok(()) | Err(ExportError::Retryable { .. }) => {}
                        Err(e) => panic!("{what}: the example rejects valid data: {e}"),
                    }
                    bounded(&what, built.exporter.shutdown())
                        .await
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the registry is unexpectedly small: {checked} checks"
    );
}
