//! Framework errors. They keep their class: an export failure is retryable or permanent, a
//! build failure names what the user must change.

use std::time::Duration;

/// A component could not be built or started from its (already valid) config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is well-formed but unusable (e.g. a key of the wrong length).
    #[error("{0}")]
    Config(String),
    /// An I/O step of startup failed (binding a port, opening a file, creating a directory).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else, said in a sentence the user can act on.
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> BuildError {
        BuildError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Why an export attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// Worth trying again (network down, server busy); `retry_after` is the server's hint.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will never succeed (rejected as malformed, unauthorised): counted as dropped.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl ExportError {
    /// A retryable error without a server hint.
    pub fn retryable(reason: impl Into<String>) -> ExportError {
        ExportError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A permanent error.
    pub fn permanent(reason: impl Into<String>) -> ExportError {
        ExportError::Permanent {
            reason: reason.into(),
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ExportError::Retryable { .. })
    }
}

/// A processor could not handle a batch; the runtime counts its items as dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ProcessError {
    pub reason: String,
}

impl ProcessError {
    /// A processing failure with its reason.
    pub fn new(reason: impl Into<String>) -> ProcessError {
        ProcessError {
            reason: reason.into(),
        }
    }
}

/// A receiver failed to start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    /// An I/O failure with what was being done.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Data could not be handed to the next stage: the pipeline is full or shutting down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The pipeline stayed full for the whole wait; the sender should retry later.
    #[error("pipeline is full")]
    Full,
    /// The pipeline is shutting down and takes no more data.
    #[error("pipeline is shutting down")]
    Closed,
}

/// An error and its sources, `outer: inner: root`: what a log line or a drop reason shows of an
/// error from a layered client (hyper, rustls, io).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
