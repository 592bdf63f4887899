//! Memory and swap from `/proc/meminfo`.

use sluice_proto::metrics::v1::Metric;

use sluice_pipeline::otlp::kv_str;

use super::otlp::{MetricBuilder, Timestamps};

/// The `/proc/meminfo` fields this receiver uses, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub available: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
}

/// Parses `/proc/meminfo`; returns the fields and how many lines of interest were malformed.
pub(crate) fn parse_meminfo(text: &str) -> (MemInfo, usize) {
    let mut m = MemInfo::default();
    let mut malformed = 0;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut m.total,
            "MemFree" => &mut m.free,
            "MemAvailable" => &mut m.available,
            "Buffers" => &mut m.buffers,
            "Cached" => &mut m.cached,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        let mut fields = rest.split_ascii_whitespace();
        let value = fields.next().and_then(|v| v.parse::<u64>().ok());
        let scale = match fields.next() {
            None => Some(1),
            Some("kB") => Some(1024),
            Some(_) => None,
        };
        match (value, scale) {
            (Some(v), Some(s)) => *slot = Some(v.saturating_mul(s)),
            _ => malformed += 1,
        }
    }
    (m, malformed)
}

impl MemInfo {
    /// Memory available for new work without swapping: `MemAvailable`, or on kernels before 3.14
    /// its old approximation free + buffers + cached.
    pub(crate) fn available(&self) -> Option<u64> {
        self.available.or_else(|| {
            Some(
                self.free?
                    .saturating_add(self.buffers.unwrap_or(0))
                    .saturating_add(self.cached.unwrap_or(0)),
            )
        })
    }

    /// Appends `system.memory.usage`, `system.memory.utilization`, `system.memory.limit` and
    /// `system.paging.usage`. Returns false (and appends nothing) without `MemTotal`.
    pub(crate) fn record(&self, ts: &Timestamps, out: &mut Vec<Metric>) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        let used = self.available().map(|a| total.saturating_sub(a));
        let states = [
            ("used", used),
            ("free", self.free),
            ("cached", self.cached),
            ("buffers", self.buffers),
        ];
        let mut usage = MetricBuilder::up_down(
            "system.memory.usage",
            "By",
            "Bytes of memory in each state; used is total minus available.",
            ts,
        );
        let mut utilization = MetricBuilder::gauge(
            "system.memory.utilization",
            "1",
            "Fraction of total memory in each state.",
            ts,
        );
        for (state, value) in states {
            let Some(v) = value else { continue };
            usage.int(v, vec![kv_str("system.memory.state", state)]);
            if total > 0 {
                utilization.double(
                    v as f64 / total as f64,
                    vec![kv_str("system.memory.state", state)],
                );
            }
        }
        usage.finish(out);
        utilization.finish(out);
        let mut limit =
            MetricBuilder::up_down("system.memory.limit", "By", "Total usable memory.", ts);
        limit.int(total, Vec::new());
        limit.finish(out);
        if let (Some(swap_total), Some(swap_free)) = (self.swap_total, self.swap_free) {
            let mut paging = MetricBuilder::up_down(
                "system.paging.usage",
                "By",
                "Bytes of swap space in each state.",
                ts,
            );
            let used = swap_total.saturating_sub(swap_free);
            paging.int(used, vec![kv_str("system.paging.state", "used")]);
            paging.int(swap_free, vec![kv_str("system.paging.state", "free")]);
            paging.finish(out);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_in_bytes() {
        let text = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\n\
                    Buffers:          10 kB\nCached:          300 kB\nSwapCached: 0 kB\n\
                    SwapTotal:       200 kB\nSwapFree:        150 kB\nHugePages_Total: 0\n";
        let (m, bad) = parse_meminfo(text);
        assert_eq!(bad, 0);
        assert_eq!(m.total, Some(1_024_000));
        assert_eq!(m.available(), Some(614_400));
        assert_eq!(m.swap_free, Some(153_600));
    }

    #[test]
    fn old_kernels_approximate_available_and_bad_lines_count() {
        let (m, bad) =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: x kB\nCached: 5 MB\n");
        assert_eq!(bad, 2);
        assert_eq!(m.available(), Some(102_400));
    }
}
