//! The clock retention is measured against. Production uses the system clock; tests inject a
//! [`ManualClock`] to simulate months of retention in moments.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time, in nanoseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in nanoseconds since the Unix epoch.
    fn now_unix_nanos(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_nanos(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `unix_nanos`.
    pub fn new(unix_nanos: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(unix_nanos)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_nanos(by), Ordering::SeqCst);
    }

    /// Sets the clock to `unix_nanos`.
    pub fn set(&self, unix_nanos: i64) {
        self.0.store(unix_nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_nanos(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A duration in nanoseconds, saturating at `i64::MAX`.
pub fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
