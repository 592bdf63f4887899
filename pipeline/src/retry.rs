//! Delivery settings every exporter is wrapped in, named as in the Collector's exporterhelper
//! (`timeout`, `retry_on_failure`, `sending_queue`), and the one backoff policy of the project.

use std::time::Duration;

use serde::Deserialize;

use crate::config::duration;
use crate::config::error::ValidationError;
use crate::factory::Validate;

/// `retry_on_failure`: exponential backoff with jitter for retryable export errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retry retryable failures at all. Default `true`.
    pub enabled: bool,
    /// Wait before the first retry. Default `5s`.
    #[serde(with = "duration")]
    pub initial_interval: Duration,
    /// Each wait is randomised by ± this fraction. Default `0.5`.
    pub randomization_factor: f64,
    /// Each wait grows by this factor. Default `1.5`.
    pub multiplier: f64,
    /// Upper bound of one wait. Default `30s`.
    #[serde(with = "duration")]
    pub max_interval: Duration,
    /// Give up (and count the batch as dropped) after this long; `0s` retries forever.
    /// Default `300s`.
    #[serde(with = "duration")]
    pub max_elapsed_time: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

impl Validate for RetryConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            return Err(ValidationError::new(
                "randomization_factor",
                "must be between 0 and 1",
            ));
        }
        if self.multiplier < 1.0 {
            return Err(ValidationError::new("multiplier", "must be at least 1"));
        }
        if self.enabled && self.initial_interval.is_zero() {
            return Err(ValidationError::new(
                "initial_interval",
                "must be greater than 0s",
            ));
        }
        if self.max_interval < self.initial_interval {
            return Err(ValidationError::new(
                "max_interval",
                "must be at least initial_interval",
            ));
        }
        Ok(())
    }
}

/// How the queue counts its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueSizer {
    /// `queue_size` counts batches (requests).
    Requests,
    /// `queue_size` counts spans, data points or log records.
    Items,
    /// `queue_size` counts bytes: the batches' size encoded as OTLP protobuf (about their size
    /// on the wire; in memory they take a few times more).
    Bytes,
}

/// `sending_queue`: the bounded in-memory queue in front of an exporter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Queue at all; when `false` the pipeline waits for each export. Default `true`.
    pub enabled: bool,
    /// How many exports run at once. Default `10`.
    pub num_consumers: usize,
    /// Capacity, in units of `sizer`. Default `1000`.
    pub queue_size: usize,
    /// `requests` (default) or `items`.
    pub sizer: QueueSizer,
    /// When full: `false` (default) drops the incoming batch, counted and logged; `true` makes
    /// the pipeline wait, which pushes back to the receivers.
    pub block_on_overflow: bool,
    /// When full: drop the oldest queued batches to make room for the new one (counted and
    /// logged like any overflow), so the freshest data gets through. Default `false`; not with
    /// `block_on_overflow`. Not in the Collector.
    pub drop_oldest: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            sizer: QueueSizer::Requests,
            block_on_overflow: false,
            drop_oldest: false,
        }
    }
}

impl Validate for QueueConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.enabled && self.queue_size == 0 {
            return Err(ValidationError::new("queue_size", "must be greater than 0"));
        }
        if self.drop_oldest && self.block_on_overflow {
            return Err(ValidationError::new(
                "drop_oldest",
                "cannot be combined with block_on_overflow: a full queue either waits or drops",
            ));
        }
        if self.num_consumers == 0 {
            return Err(ValidationError::new(
                "num_consumers",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}

/// The settings the runtime wraps one exporter in.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Deadline of one export attempt (Collector `timeout`); `0s` means none. Default `5s`.
    pub timeout: Duration,
    pub retry_on_failure: RetryConfig,
    pub sending_queue: QueueConfig,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(5),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
        }
    }
}

impl DeliveryConfig {
    /// Validates both nested blocks, naming the failing key under its block.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.retry_on_failure
            .validate()
            .map_err(|e| e.under("retry_on_failure"))?;
        self.sending_queue
            .validate()
            .map_err(|e| e.under("sending_queue"))
    }
}

/// The backoff schedule of one batch: exponential, capped, with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: RetryConfig,
    next: Duration,
    elapsed: Duration,
}

impl Backoff {
    /// A fresh schedule.
    pub fn new(config: &RetryConfig) -> Backoff {
        Backoff {
            next: config.initial_interval,
            config: config.clone(),
            elapsed: Duration::ZERO,
        }
    }

    /// The wait before the next attempt, honouring a server's `retry_after` hint (never waiting
    /// less than it asks), or `None` when `max_elapsed_time` would be exceeded.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if !self.config.enabled {
            return None;
        }
        let base = self.next.as_secs_f64();
        let spread = base * self.config.randomization_factor;
        let jittered = base - spread + fastrand::f64() * 2.0 * spread;
        let mut delay = Duration::from_secs_f64(jittered.max(0.0));
        if let Some(hint) = retry_after {
            delay = delay.max(hint);
        }
        let max_elapsed = self.config.max_elapsed_time;
        if !max_elapsed.is_zero() && self.elapsed + delay > max_elapsed {
            return None;
        }
        self.elapsed += delay;
        let grown = self.next.as_secs_f64() * self.config.multiplier;
        self.next = Duration::from_secs_f64(grown).min(self.config.max_interval);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_gives_up() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_secs(1),
            randomization_factor: 0.0,
            multiplier: 2.0,
            max_interval: Duration::from_secs(4),
            max_elapsed_time: Duration::from_secs(12),
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&cfg);
        let delays: Vec<_> = std::iter::from_fn(|| b.next_delay(None)).collect();
        let secs: Vec<u64> = delays.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 4]);
    }

    #[test]
    fn backoff_honours_retry_after_and_jitter_bounds() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_secs(2),
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&cfg);
        let d = b.next_delay(None).unwrap();
        assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(3));
        let d = b.next_delay(Some(Duration::from_secs(20))).unwrap();
        assert!(d >= Duration::from_secs(20));
        let off = RetryConfig {
            enabled: false,
            ..RetryConfig::default()
        };
        assert_eq!(Backoff::new(&off).next_delay(None), None);
    }
}
