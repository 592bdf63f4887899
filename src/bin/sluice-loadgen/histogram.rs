//! A lock-free log-linear latency histogram (microseconds, within 1/16).

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two: values are kept to within 1/16 (6.25 %).
const SUB_BUCKET_BITS: u32 = 4;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

/// A lock-free log-linear histogram of microseconds, shared by all senders.
pub(crate) struct LatencyHistogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    max: AtomicU64,
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        let len = Self::index(u64::MAX) + 1;
        Self {
            buckets: (0..len).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    pub(crate) fn index(value: u64) -> usize {
        if value < SUB_BUCKETS {
            return value as usize;
        }
        let msb = 63 - value.leading_zeros();
        let shift = msb - SUB_BUCKET_BITS;
        ((u64::from(shift) + 1) * SUB_BUCKETS + ((value >> shift) & (SUB_BUCKETS - 1))) as usize
    }

    /// The largest value that falls in bucket `index`.
    pub(crate) fn upper_bound(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return index;
        }
        let shift = index / SUB_BUCKETS - 1;
        let sub = index % SUB_BUCKETS;
        let low = (SUB_BUCKETS + sub) << shift;
        low + ((1u64 << shift) - 1)
    }

    pub(crate) fn record(&self, micros: u64) {
        self.buckets[Self::index(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The value at quantile `q` (0..=1), as its bucket's upper bound capped at the exact max.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Self::upper_bound(index).min(self.max());
            }
        }
        self.max()
    }

    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip_within_one_sixteenth() {
        for value in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            999,
            1_000,
            65_535,
            1 << 40,
            u64::MAX,
        ] {
            let index = LatencyHistogram::index(value);
            let upper = LatencyHistogram::upper_bound(index);
            assert!(upper >= value, "{value}: upper {upper}");
            assert!(
                (upper - value) as f64 <= value as f64 / 16.0 + 1.0,
                "{value}: upper {upper}"
            );
        }
    }

    #[test]
    fn histogram_percentiles_of_a_uniform_run() {
        let histogram = LatencyHistogram::new();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        let p50 = histogram.quantile(0.5);
        let p99 = histogram.quantile(0.99);
        assert!((500..=532).contains(&p50), "p50 {p50}");
        assert!((990..=1000).contains(&p99), "p99 {p99}");
        assert_eq!(histogram.quantile(1.0), 1000);
        assert_eq!(histogram.max(), 1000);
        assert_eq!(LatencyHistogram::new().quantile(0.5), 0);
    }
}
