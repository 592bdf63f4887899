//! CPU time and utilization from the `cpu` lines of `/proc/stat`, and the boot time (`btime`).

use sluice_proto::metrics::v1::Metric;

use sluice_pipeline::otlp::{kv_i64, kv_str};

use super::otlp::{MetricBuilder, Timestamps};

/// The `cpu.mode` values, in the order of the `/proc/stat` columns.
pub(crate) const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Clock ticks spent in each of [`MODES`] (guest time is already inside user and nice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes(pub [u64; 8]);

impl CpuTimes {
    /// The fraction of the ticks between `prev` and `self` spent in each mode; `None` when no
    /// tick passed or a counter went back (a CPU taken offline and back).
    pub(crate) fn utilization(&self, prev: &CpuTimes) -> Option<[f64; 8]> {
        let mut delta = [0u64; 8];
        for (d, (cur, old)) in delta.iter_mut().zip(self.0.iter().zip(prev.0.iter())) {
            *d = cur.checked_sub(*old)?;
        }
        let total: u64 = delta.iter().fold(0u64, |a, d| a.saturating_add(*d));
        if total == 0 {
            return None;
        }
        Some(delta.map(|d| d as f64 / total as f64))
    }
}

/// What `/proc/stat` says about CPUs and boot.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProcStat {
    /// The machine-wide `cpu` line.
    pub total: Option<CpuTimes>,
    /// The `cpuN` lines: logical CPU number and its times.
    pub per_cpu: Vec<(u32, CpuTimes)>,
    /// Boot time, seconds since the Unix epoch.
    pub btime: Option<u64>,
}

/// Parses `/proc/stat` into `out` (its vectors reused); returns how many `cpu`/`btime` lines were
/// malformed and skipped. Older kernels with fewer columns read the missing ones as 0.
pub(crate) fn parse_stat(text: &str, out: &mut ProcStat) -> usize {
    out.total = None;
    out.per_cpu.clear();
    out.btime = None;
    let mut malformed = 0;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(label) = fields.next() else { continue };
        if let Some(number) = label.strip_prefix("cpu") {
            let Some(times) = parse_times(fields) else {
                malformed += 1;
                continue;
            };
            if number.is_empty() {
                out.total = Some(times);
            } else if let Ok(n) = number.parse::<u32>() {
                out.per_cpu.push((n, times));
            } else {
                malformed += 1;
            }
        } else if label == "btime" {
            match fields.next().map(str::parse::<u64>) {
                Some(Ok(b)) => out.btime = Some(b),
                _ => malformed += 1,
            }
        }
    }
    malformed
}

fn parse_times<'a>(fields: impl Iterator<Item = &'a str>) -> Option<CpuTimes> {
    let mut times = [0u64; 8];
    let mut n = 0;
    for (slot, field) in times.iter_mut().zip(fields) {
        *slot = field.parse().ok()?;
        n += 1;
    }
    // user, nice, system and idle exist on every kernel sluice can run on.
    (n >= 4).then_some(CpuTimes(times))
}

/// The CPU scraper's memory between scrapes: this scrape's `/proc/stat` and the previous one's
/// (swapped after each scrape, so their vectors are reused).
#[derive(Debug, Default)]
pub(crate) struct CpuState {
    /// Where the scraper parses this scrape's `/proc/stat`.
    pub cur: ProcStat,
    prev: ProcStat,
    has_prev: bool,
}

impl CpuState {
    /// Appends `system.cpu.time`, `system.cpu.utilization` (from the second scrape on) and
    /// `system.cpu.logical.count` for `self.cur`, then keeps it as the previous scrape.
    pub(crate) fn record(
        &mut self,
        per_cpu: bool,
        clock_ticks: u64,
        ts: &Timestamps,
        out: &mut Vec<Metric>,
    ) {
        let tick = clock_ticks.max(1) as f64;
        let mut time = MetricBuilder::counter(
            "system.cpu.time",
            "s",
            "Seconds each logical CPU spent in each mode.",
            ts,
        );
        let mut utilization = MetricBuilder::gauge(
            "system.cpu.utilization",
            "1",
            "Fraction of CPU time spent in each mode since the previous scrape.",
            ts,
        );
        let mut emit = |cpu: Option<u32>, cur: &CpuTimes, prev: Option<&CpuTimes>| {
            let attrs = |mode: &str| {
                let mut a = vec![kv_str("cpu.mode", mode)];
                if let Some(n) = cpu {
                    a.push(kv_i64("cpu.logical_number", i64::from(n)));
                }
                a
            };
            for (mode, ticks) in MODES.iter().zip(cur.0) {
                time.double(ticks as f64 / tick, attrs(mode));
            }
            if let Some(fractions) = prev.and_then(|p| cur.utilization(p)) {
                for (mode, f) in MODES.iter().zip(fractions) {
                    utilization.double(f, attrs(mode));
                }
            }
        };
        let prev = self.has_prev.then_some(&self.prev);
        if per_cpu {
            for (n, cur) in &self.cur.per_cpu {
                let old = prev.and_then(|p| p.per_cpu.iter().find(|(m, _)| m == n));
                emit(Some(*n), cur, old.map(|(_, t)| t));
            }
        } else if let Some(cur) = &self.cur.total {
            emit(None, cur, prev.and_then(|p| p.total.as_ref()));
        }
        time.finish(out);
        utilization.finish(out);
        if !self.cur.per_cpu.is_empty() {
            let mut count = MetricBuilder::up_down(
                "system.cpu.logical.count",
                "{cpu}",
                "Number of logical CPUs online.",
                ts,
            );
            count.int(self.cur.per_cpu.len() as u64, Vec::new());
            count.finish(out);
        }
        std::mem::swap(&mut self.cur, &mut self.prev);
        self.has_prev = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_total_per_cpu_and_btime() {
        let text = "cpu  10 1 5 100 2 0 3 4 9 9\ncpu0 6 1 3 50 1 0 2 2 0 0\ncpu1 4 0 2 50\n\
                    intr 1 2 3\nbtime 1700000000\n";
        let mut st = ProcStat::default();
        assert_eq!(parse_stat(text, &mut st), 0);
        assert_eq!(st.total, Some(CpuTimes([10, 1, 5, 100, 2, 0, 3, 4])));
        assert_eq!(
            st.per_cpu,
            vec![
                (0, CpuTimes([6, 1, 3, 50, 1, 0, 2, 2])),
                (1, CpuTimes([4, 0, 2, 50, 0, 0, 0, 0]))
            ]
        );
        assert_eq!(st.btime, Some(1_700_000_000));
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let text = "cpu  10 x 5 100\ncpuX 1 2 3 4\ncpu1 1 2\nbtime\ncpu0 1 2 3 4\n";
        let mut st = ProcStat::default();
        assert_eq!(parse_stat(text, &mut st), 4);
        assert_eq!(st.total, None);
        assert_eq!(st.per_cpu, vec![(0, CpuTimes([1, 2, 3, 4, 0, 0, 0, 0]))]);
    }

    #[test]
    fn utilization_is_the_share_of_each_mode() {
        let prev = CpuTimes([100, 0, 50, 800, 10, 0, 0, 0]);
        let cur = CpuTimes([150, 0, 75, 900, 10, 0, 0, 25]);
        let u = cur.utilization(&prev).unwrap_or_default();
        assert_eq!(u, [0.25, 0.0, 0.125, 0.5, 0.0, 0.0, 0.0, 0.125]);
        assert_eq!(prev.utilization(&prev), None);
        assert_eq!(prev.utilization(&cur), None);
    }
}
