//! The two fan-outs of the runtime: a receiver's [`Output`] into every pipeline that lists it
//! (one copy per extra pipeline: processors own and mutate their batch), and a pipeline's
//! hand-over to its exporters (one `Arc<Batch>` shared by all, no deep copy).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::data::{Batch, Signal};
use crate::error::SendError;
use crate::id::{ComponentId, PipelineId};
use crate::telemetry::{ComponentTelemetry, Counter};

/// How long a receiver's `send` waits for room in a full pipeline before refusing.
pub const DEFAULT_SEND_WAIT: Duration = Duration::from_secs(5);

/// The input end of one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineInput {
    pub(crate) id: PipelineId,
    pub(crate) tx: mpsc::Sender<Batch>,
}

impl PipelineInput {
    /// A pipeline input around a channel sender (the runtime's; tests may build their own).
    pub fn new(id: PipelineId, tx: mpsc::Sender<Batch>) -> PipelineInput {
        PipelineInput { id, tx }
    }
}

/// Where a receiver sends the data of one signal: every pipeline of that signal listing it.
/// Counts what was accepted and refused (`sluice_receiver_accepted_<unit>`,
/// `sluice_receiver_refused_<unit>`).
#[derive(Debug, Clone)]
pub struct Output {
    signal: Signal,
    source: ComponentId,
    targets: Arc<[PipelineInput]>,
    accepted: Counter,
    refused: Counter,
    wait: Duration,
}

impl Output {
    /// An output of `signal` for receiver `telemetry.id()` into `targets`.
    pub fn new(
        signal: Signal,
        source: ComponentId,
        targets: Vec<PipelineInput>,
        telemetry: &ComponentTelemetry,
    ) -> Output {
        Output {
            signal,
            source,
            targets: targets.into(),
            accepted: telemetry.counter("accepted", signal),
            refused: telemetry.counter("refused", signal),
            wait: DEFAULT_SEND_WAIT,
        }
    }

    /// The same output with another wait for room in a full pipeline.
    pub fn with_wait(mut self, wait: Duration) -> Output {
        self.wait = wait;
        self
    }

    /// The signal this output carries.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Sends a batch into every target pipeline. Waits up to the output's wait for room, then
    /// refuses with [`SendError::Full`]; [`SendError::Closed`] once the service is stopping.
    /// The items count as accepted only when every pipeline took them, else as refused.
    pub async fn send(&self, mut batch: Batch) -> Result<(), SendError> {
        let items = batch.item_count() as u64;
        if batch.meta.source.is_none() {
            batch.meta.source = Some(self.source.clone());
        }
        let mut result = Ok(());
        let last = self.targets.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, target) in self.targets.iter().enumerate() {
            let b = if i == last {
                batch.take()
            } else {
                batch.clone()
            };
            let Some(b) = b else { break };
            let r = match target.tx.send_timeout(b, self.wait).await {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(SendError::Full),
                Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(SendError::Closed),
            };
            if let Err(e) = r {
                tracing::debug!(pipeline = %target.id, error = %e, "Pipeline refused data.");
                result = Err(e);
            }
        }
        match result {
            Ok(()) => self.accepted.add(items),
            Err(_) => self.refused.add(items),
        }
        result
    }

    /// Counts items the receiver refused itself (bad input) under `sluice_receiver_refused_*`.
    pub fn count_refused(&self, items: u64) {
        self.refused.add(items);
    }
}

/// A receiver's outputs, at most one per signal.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    traces: Option<Output>,
    metrics: Option<Output>,
    logs: Option<Output>,
}

impl Outputs {
    /// Adds (or replaces) the output of its signal.
    pub fn insert(&mut self, output: Output) {
        let slot = match output.signal() {
            Signal::Traces => &mut self.traces,
            Signal::Metrics => &mut self.metrics,
            Signal::Logs => &mut self.logs,
        };
        *slot = Some(output);
    }

    /// The output of `signal`, if any pipeline of that signal lists this receiver.
    pub fn get(&self, signal: Signal) -> Option<&Output> {
        match signal {
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
        }
    }

    /// The signals that have an output.
    pub fn signals(&self) -> Vec<Signal> {
        Signal::ALL
            .into_iter()
            .filter(|s| self.get(*s).is_some())
            .collect()
    }
}
