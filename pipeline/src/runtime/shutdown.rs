//! The signals that stop sluice (SIGINT, SIGTERM), with tokio's signal handling so the handler
//! runs whatever the process is doing. [`StopSignals::install`] takes over both signals at once:
//! install before anything that a signal should not kill half-way (before saying "ready", before
//! spawning a child), then [`StopSignals::recv`] as often as needed.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A stop signal received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// SIGINT and SIGTERM, listened for from the moment of [`StopSignals::install`] on (until then
/// they keep their default action: the process ends).
#[derive(Debug)]
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Installs the handlers for both signals.
    pub fn install() -> io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next SIGINT or SIGTERM received since install (or since the last call).
    pub async fn recv(&mut self) -> StopSignal {
        tokio::select! {
            Some(()) = self.interrupt.recv() => StopSignal::Interrupt,
            Some(()) = self.terminate.recv() => StopSignal::Terminate,
            // Both streams ended (the runtime is going away): nothing will arrive.
            else => std::future::pending().await,
        }
    }
}
