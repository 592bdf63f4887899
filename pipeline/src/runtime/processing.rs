//! One pipeline's task: takes batches from its receivers, runs its processors in order (one
//! instance each, owned by this task, so no locking), and hands the result to its exporters as
//! one shared `Arc<Batch>`. Timed work (`tick_interval`) runs from the same loop. At shutdown it
//! drains what is queued, then flushes each processor in order through the ones after it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::data::Batch;
use crate::factory::Processor;
use crate::id::{ComponentId, PipelineId};
use crate::runtime::exporter_driver::ExporterHandle;
use crate::telemetry::{ComponentTelemetry, Telemetry};
use crate::CancellationToken;

/// A processor of this pipeline with its id and telemetry.
pub(crate) struct Stage {
    pub id: ComponentId,
    pub processor: Box<dyn Processor>,
    pub telemetry: ComponentTelemetry,
}

pub(crate) struct PipelineTask {
    pub id: PipelineId,
    pub rx: mpsc::Receiver<Batch>,
    pub stages: Vec<Stage>,
    pub exporters: Vec<ExporterHandle>,
    pub telemetry: Arc<Telemetry>,
    /// Fires once the receivers have stopped: close the input and drain.
    pub stop: CancellationToken,
}

impl PipelineTask {
    pub async fn run(mut self) {
        let intervals: Vec<_> = self
            .stages
            .iter()
            .map(|s| s.processor.tick_interval())
            .collect();
        let now = Instant::now();
        let mut deadlines: Vec<Option<Instant>> =
            intervals.iter().map(|i| i.map(|d| now + d)).collect();
        let mut stopping = false;
        loop {
            let next_tick = deadlines.iter().flatten().min().copied();
            tokio::select! {
                b = self.rx.recv() => match b {
                    Some(b) => self.run_from(0, vec![b]).await,
                    None => break,
                },
                _ = self.stop.cancelled(), if !stopping => {
                    stopping = true;
                    self.rx.close();
                }
                _ = tokio::time::sleep_until(next_tick.unwrap_or_else(Instant::now)), if next_tick.is_some() => {
                    let now = Instant::now();
                    for i in 0..self.stages.len() {
                        if let (Some(d), Some(every)) = (deadlines[i], intervals[i]) {
                            if d <= now {
                                let mut out = Vec::new();
                                let stage = &mut self.stages[i];
                                let r = std::panic::catch_unwind(AssertUnwindSafe(|| stage.processor.on_tick(&mut out)));
                                if r.is_err() {
                                    stage.telemetry.counter_named("sluice_processor_failures").add(1);
                                    tracing::error!(component_kind = "processor", component_id = %stage.id, pipeline = %self.id, "Processor panicked in on_tick.");
                                }
                                self.run_from(i + 1, out).await;
                                deadlines[i] = Some(now + every);
                            }
                        }
                    }
                }
            }
        }
        for i in 0..self.stages.len() {
            let mut out = Vec::new();
            let stage = &mut self.stages[i];
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| stage.processor.flush(&mut out)));
            if r.is_err() {
                stage
                    .telemetry
                    .counter_named("sluice_processor_failures")
                    .add(1);
                tracing::error!(component_kind = "processor", component_id = %stage.id, pipeline = %self.id, "Processor panicked while flushing.");
            }
            self.run_from(i + 1, out).await;
        }
    }

    /// Runs `batches` through the stages from `start` on, then exports them.
    async fn run_from(&mut self, start: usize, mut batches: Vec<Batch>) {
        for stage in self.stages.iter_mut().skip(start) {
            if batches.is_empty() {
                return;
            }
            let mut next = Vec::with_capacity(batches.len());
            for b in batches.drain(..) {
                let items = b.item_count();
                let signal = b.signal();
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    stage.processor.process(b, &mut next)
                }));
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => stage.telemetry.dropped(signal, items, &e.reason),
                    Err(_) => {
                        stage
                            .telemetry
                            .counter_named("sluice_processor_failures")
                            .add(1);
                        stage.telemetry.dropped(signal, items, "processor panicked");
                    }
                }
            }
            batches = next;
        }
        for b in batches {
            export(&self.exporters, &self.telemetry, &self.id, b).await;
        }
    }
}

/// Hands a processed batch to the pipeline's exporters that accept its signal, as one shared
/// `Arc`; with none, the items are counted as dropped (`sluice_pipeline_dropped_<unit>`).
async fn export(
    exporters: &[ExporterHandle],
    telemetry: &Telemetry,
    id: &PipelineId,
    batch: Batch,
) {
    let signal = batch.signal();
    let targets: Vec<&ExporterHandle> = exporters.iter().filter(|e| e.accepts(signal)).collect();
    if targets.is_empty() {
        let items = batch.item_count();
        if items > 0 {
            telemetry
                .counter(
                    &format!("sluice_pipeline_dropped_{}", signal.unit()),
                    &[("pipeline", &id.to_string())],
                )
                .add(items as u64);
            tracing::warn!(pipeline = %id, signal = signal.as_str(), items, "Dropped data: no exporter of this pipeline accepts this signal.");
        }
        return;
    }
    let shared = Arc::new(batch);
    for t in targets {
        t.enqueue(shared.clone()).await;
    }
}
