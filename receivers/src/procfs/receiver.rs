//! The running receiver: scrapes every `collection_interval` until shutdown and sends each scrape
//! as one metrics batch.

use std::time::Duration;

use sluice_pipeline::factory::{Receiver, ReceiverRunContext};
use sluice_pipeline::{Batch, Payload, ReceiverError, Signal};
use tokio::time::MissedTickBehavior;

use super::scraper::Scraper;

/// The `procfs` receiver, built by [`super::ProcfsReceiverFactory`].
#[derive(Debug)]
pub struct ProcfsReceiver {
    scraper: Scraper,
    interval: Duration,
}

impl ProcfsReceiver {
    /// A receiver that runs `scraper` every `interval`.
    pub fn new(scraper: Scraper, interval: Duration) -> ProcfsReceiver {
        ProcfsReceiver { scraper, interval }
    }
}

#[sluice_pipeline::async_trait]
impl Receiver for ProcfsReceiver {
    async fn run(self: Box<Self>, ctx: ReceiverRunContext) -> Result<(), ReceiverError> {
        let Some(output) = ctx.outputs.get(Signal::Metrics).cloned() else {
            tracing::warn!("No metrics pipeline lists this receiver; it will not scrape.");
            ctx.shutdown.cancelled().await;
            return Ok(());
        };
        let ProcfsReceiver {
            mut scraper,
            interval,
        } = *self;
        let mut ticks = tokio::time::interval(interval);
        // After a stall, scrape once and keep the rhythm rather than catching up in a burst.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = ticks.tick() => {}
            }
            // File reads and statvfs can block (a hung network mount): off the async workers,
            // and abandoned if shutdown comes first.
            let task = tokio::task::spawn_blocking(move || {
                let metrics = scraper.scrape();
                (scraper, metrics)
            });
            let joined = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                joined = task => joined,
            };
            let metrics;
            (scraper, metrics) = joined
                .map_err(|e| ReceiverError::Other(format!("the procfs scrape task failed: {e}")))?;
            let batch = Batch::new(Payload::Metrics(metrics));
            if batch.item_count() == 0 {
                continue; // Nothing was readable; the scrape errors are counted.
            }
            // Not raced against shutdown: the send is bounded by the output's wait, and a scrape
            // taken is delivered or counted as refused, never dropped unseen.
            if let Err(error) = output.send(batch).await {
                tracing::warn!(%error, "Pipeline refused a procfs scrape.");
            }
        }
    }
}
