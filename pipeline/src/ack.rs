//! End-to-end acknowledgement. A receiver that can replay its input (filelog) attaches an [`Ack`]
//! to the batches it sends; clones travel with every copy of the batch, and when the last clone is
//! dropped (every exporter of every pipeline succeeded, or counted a permanent drop) the callback
//! runs once with the outcome. Data abandoned without a verdict (queue dropped at the shutdown
//! deadline) is marked failed first, so the receiver does not advance past it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How the data behind an [`Ack`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Every exporter accepted it, or permanently rejected it (counted as a drop).
    Done,
    /// Some copy was abandoned without a verdict; the receiver should replay it.
    Failed,
}

type Callback = Box<dyn FnOnce(AckOutcome) + Send>;

struct AckInner {
    failed: AtomicBool,
    callback: Mutex<Option<Callback>>,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        let outcome = if self.failed.load(Ordering::Acquire) {
            AckOutcome::Failed
        } else {
            AckOutcome::Done
        };
        let cb = match self.callback.get_mut() {
            Ok(cb) => cb.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(cb) = cb {
            cb(outcome);
        }
    }
}

/// A cloneable acknowledgement handle; see the module docs.
#[derive(Clone)]
pub struct Ack(Arc<AckInner>);

impl Ack {
    /// A handle whose callback runs when the last clone is dropped.
    pub fn new(callback: impl FnOnce(AckOutcome) + Send + 'static) -> Ack {
        Ack(Arc::new(AckInner {
            failed: AtomicBool::new(false),
            callback: Mutex::new(Some(Box::new(callback))),
        }))
    }

    /// Marks the data as not delivered; the outcome will be [`AckOutcome::Failed`].
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("failed", &self.0.failed.load(Ordering::Relaxed))
            .finish()
    }
}
