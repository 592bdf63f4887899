//! The top processes by CPU and by resident memory, from `/proc/<pid>/stat` (every process),
//! then `/proc/<pid>/statm` and `/proc/<pid>/cmdline` (the chosen ones only).
//!
//! CPU use is the change of utime + stime between two scrapes, so the CPU ranking starts with the
//! second scrape; a pid reused by a new process (another start time) starts afresh.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_pipeline::otlp::{kv_i64, kv_str};
use sluice_proto::common::v1::KeyValue;
use sluice_proto::metrics::v1::ResourceMetrics;

use super::error::{ErrorLog, ProcfsError};
use super::otlp::{resource_metrics, MetricBuilder, Timestamps};
use super::scraper::read_file;

/// Longest `process.command_line` reported, in characters.
pub const MAX_COMMAND_LINE_CHARS: usize = 256;

/// The fields of `/proc/<pid>/stat` this receiver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PidStat {
    /// The executable name (`comm`, at most 15 bytes).
    pub comm: String,
    pub ppid: u32,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Start time, in clock ticks after boot.
    pub start_ticks: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The name sits between the first `(` and the *last* `)`, since it
/// may itself hold spaces and parentheses.
pub(crate) fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut f = text.get(close + 1..)?.split_ascii_whitespace();
    // Fields after the name, counted from 0: state, ppid (1), …, utime (11), stime (12), …,
    // starttime (19), vsize (20), rss (21).
    let ppid = f.nth(1)?.parse().ok()?;
    let utime = f.nth(9)?.parse().ok()?;
    let stime = f.next()?.parse().ok()?;
    let start_ticks = f.nth(6)?.parse().ok()?;
    let rss: i64 = f.nth(1)?.parse().ok()?;
    Some(PidStat {
        comm,
        ppid,
        utime,
        stime,
        start_ticks,
        rss_pages: u64::try_from(rss).unwrap_or(0),
    })
}

/// Parses `/proc/<pid>/statm`: total program size and resident set size, in pages.
pub(crate) fn parse_statm(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace();
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// `/proc/<pid>/cmdline` (arguments separated by NUL) as one line, cut to
/// [`MAX_COMMAND_LINE_CHARS`] characters.
pub(crate) fn command_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len().min(MAX_COMMAND_LINE_CHARS));
    for arg in text.split('\0').filter(|a| !a.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(arg);
    }
    if let Some((cut, _)) = out.char_indices().nth(MAX_COMMAND_LINE_CHARS) {
        out.truncate(cut);
    }
    out
}

#[derive(Debug)]
struct Sample {
    pid: u32,
    stat: PidStat,
    /// CPU ticks since the previous scrape, when the process was seen then.
    cpu_delta: Option<u64>,
}

/// The process scraper's memory between scrapes: each process's start time and CPU ticks.
#[derive(Debug, Default)]
pub(crate) struct ProcessState {
    samples: Vec<Sample>,
    prev: HashMap<u32, (u64, u64)>,
    spare: HashMap<u32, (u64, u64)>,
    path: PathBuf,
    buf: Vec<u8>,
}

/// What the process scraper needs from the scraper.
pub(crate) struct ProcessScrape<'a> {
    pub proc_dir: &'a Path,
    pub top: usize,
    pub clock_ticks: u64,
    pub page_size: u64,
    pub elapsed: Duration,
    pub ts: &'a Timestamps,
    /// Resource attributes every process shares (the host's).
    pub host: &'a [KeyValue],
}

impl ProcessState {
    /// Reads every process's stat, picks the top `top` by CPU and by RSS, and appends one
    /// `ResourceMetrics` per chosen process to `out`.
    pub(crate) fn record(
        &mut self,
        s: &ProcessScrape<'_>,
        errors: &mut ErrorLog,
        out: &mut Vec<ResourceMetrics>,
    ) {
        self.scan(s.proc_dir, errors);
        if s.top == 0 {
            return;
        }
        for i in select_top(&self.samples, s.top) {
            let sample = &self.samples[i];
            if let Some(rm) = self.describe(sample, s, errors) {
                out.push(rm);
            }
        }
    }

    fn scan(&mut self, proc_dir: &Path, errors: &mut ErrorLog) {
        self.samples.clear();
        let mut seen = std::mem::take(&mut self.spare);
        seen.clear();
        let entries = match std::fs::read_dir(proc_dir) {
            Ok(e) => e,
            Err(source) => {
                errors.skip(ProcfsError::Read {
                    path: proc_dir.to_path_buf(),
                    source,
                });
                self.spare = std::mem::replace(&mut self.prev, seen);
                return;
            }
        };
        self.path.clear();
        self.path.push(proc_dir);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            self.path.push(&name);
            self.path.push("stat");
            let read = read_file(&self.path, &mut self.buf);
            let parsed = read.map(|()| parse_pid_stat(&String::from_utf8_lossy(&self.buf)));
            match parsed {
                Ok(Some(stat)) => {
                    let ticks = stat.utime.saturating_add(stat.stime);
                    let cpu_delta = self
                        .prev
                        .get(&pid)
                        .filter(|(start, _)| *start == stat.start_ticks)
                        .and_then(|(_, old)| ticks.checked_sub(*old));
                    seen.insert(pid, (stat.start_ticks, ticks));
                    self.samples.push(Sample {
                        pid,
                        stat,
                        cpu_delta,
                    });
                }
                Ok(None) => errors.skip(ProcfsError::Malformed {
                    path: self.path.clone(),
                    what: "not the fields of a process stat".to_string(),
                }),
                Err(e) => errors.skip(e),
            }
            self.path.pop();
            self.path.pop();
        }
        self.spare = std::mem::replace(&mut self.prev, seen);
    }

    fn describe(
        &self,
        sample: &Sample,
        s: &ProcessScrape<'_>,
        errors: &mut ErrorLog,
    ) -> Option<ResourceMetrics> {
        let mut buf = Vec::new();
        let dir = s.proc_dir.join(sample.pid.to_string());
        let statm_path = dir.join("statm");
        let statm =
            read_file(&statm_path, &mut buf).map(|()| parse_statm(&String::from_utf8_lossy(&buf)));
        let (size_pages, resident_pages) = match statm {
            Ok(Some(v)) => v,
            Ok(None) => {
                errors.skip(ProcfsError::Malformed {
                    path: statm_path,
                    what: "not two page counts".to_string(),
                });
                return None;
            }
            Err(e) => {
                errors.skip(e);
                return None;
            }
        };
        // Kernel threads have an empty command line; a process that just exited has none either.
        let cmdline = match read_file(&dir.join("cmdline"), &mut buf) {
            Ok(()) => command_line(&buf),
            Err(e) => {
                errors.skip(e);
                String::new()
            }
        };

        let stat = &sample.stat;
        let mut attributes = vec![
            kv_i64("process.pid", i64::from(sample.pid)),
            kv_i64("process.parent_pid", i64::from(stat.ppid)),
            kv_str("process.executable.name", stat.comm.as_str()),
        ];
        if !cmdline.is_empty() {
            attributes.push(kv_str("process.command_line", cmdline));
        }
        attributes.extend_from_slice(s.host);

        let tick = s.clock_ticks.max(1);
        let started =
            s.ts.boot
                .saturating_add(stat.start_ticks.saturating_mul(1_000_000_000) / tick);
        let mut metrics = Vec::with_capacity(4);
        let mut cpu_time = MetricBuilder::counter(
            "process.cpu.time",
            "s",
            "CPU seconds the process used, per mode.",
            s.ts,
        )
        .with_start(started);
        cpu_time.double(
            stat.utime as f64 / tick as f64,
            vec![kv_str("cpu.mode", "user")],
        );
        cpu_time.double(
            stat.stime as f64 / tick as f64,
            vec![kv_str("cpu.mode", "system")],
        );
        cpu_time.finish(&mut metrics);
        let secs = s.elapsed.as_secs_f64();
        if let (Some(delta), true) = (sample.cpu_delta, secs > 0.0) {
            let mut u = MetricBuilder::gauge(
                "process.cpu.utilization",
                "1",
                "CPU used since the previous scrape, as a fraction of one core.",
                s.ts,
            );
            u.double(delta as f64 / tick as f64 / secs, Vec::new());
            u.finish(&mut metrics);
        }
        let mut rss = MetricBuilder::up_down(
            "process.memory.usage",
            "By",
            "Resident set size of the process.",
            s.ts,
        )
        .with_start(started);
        rss.int(resident_pages.saturating_mul(s.page_size), Vec::new());
        rss.finish(&mut metrics);
        let mut virt = MetricBuilder::up_down(
            "process.memory.virtual",
            "By",
            "Virtual memory size of the process.",
            s.ts,
        )
        .with_start(started);
        virt.int(size_pages.saturating_mul(s.page_size), Vec::new());
        virt.finish(&mut metrics);
        Some(resource_metrics(attributes, metrics))
    }
}

/// Indices of the top `n` samples by resident memory and the top `n` by CPU since the previous
/// scrape (processes that used none are not ranked by CPU), in pid order.
fn select_top(samples: &[Sample], n: usize) -> Vec<usize> {
    let mut by_rss: Vec<usize> = (0..samples.len()).collect();
    by_rss.sort_unstable_by(|&a, &b| {
        let (a, b) = (&samples[a], &samples[b]);
        b.stat
            .rss_pages
            .cmp(&a.stat.rss_pages)
            .then(a.pid.cmp(&b.pid))
    });
    by_rss.truncate(n);
    let mut by_cpu: Vec<usize> = (0..samples.len())
        .filter(|&i| samples[i].cpu_delta.is_some_and(|d| d > 0))
        .collect();
    by_cpu.sort_unstable_by(|&a, &b| {
        let (a, b) = (&samples[a], &samples[b]);
        b.cpu_delta.cmp(&a.cpu_delta).then(a.pid.cmp(&b.pid))
    });
    by_cpu.truncate(n);
    let mut chosen = by_rss;
    chosen.extend(by_cpu);
    chosen.sort_unstable_by_key(|&i| samples[i].pid);
    chosen.dedup();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let text = "5262 (cat) R 5250 5250 4484 0 -1 4194304 98 0 0 0 7 3 0 0 20 0 1 0 39555 \
                    3133440 363 18446744073709551615 93896291479552 0\n";
        let s = parse_pid_stat(text);
        assert_eq!(
            s,
            Some(PidStat {
                comm: "cat".into(),
                ppid: 5250,
                utime: 7,
                stime: 3,
                start_ticks: 39555,
                rss_pages: 363
            })
        );
        let odd = "42 (a) (b) c) S 1 42 42 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 10 100 -5\n";
        let s = parse_pid_stat(odd);
        assert_eq!(s.as_ref().map(|s| s.comm.as_str()), Some("a) (b) c"));
        assert_eq!(s.map(|s| s.rss_pages), Some(0));
        assert_eq!(parse_pid_stat("42 (x) S 1 2"), None);
        assert_eq!(parse_pid_stat("garbage"), None);
    }

    #[test]
    fn command_lines_join_and_truncate() {
        assert_eq!(
            command_line(b"/bin/sh\0-c\0echo hi\0"),
            "/bin/sh -c echo hi"
        );
        assert_eq!(command_line(b""), "");
        let long = "é".repeat(300);
        assert_eq!(
            command_line(long.as_bytes()).chars().count(),
            MAX_COMMAND_LINE_CHARS
        );
    }

    #[test]
    fn top_is_the_union_of_rss_and_cpu_rankings() {
        let sample = |pid, rss, cpu| Sample {
            pid,
            stat: PidStat {
                comm: String::new(),
                ppid: 1,
                utime: 0,
                stime: 0,
                start_ticks: 0,
                rss_pages: rss,
            },
            cpu_delta: cpu,
        };
        let samples = vec![
            sample(1, 100, Some(0)),
            sample(2, 50, Some(90)),
            sample(3, 300, None),
            sample(4, 10, Some(5)),
            sample(5, 10, Some(95)),
        ];
        let pids: Vec<u32> = select_top(&samples, 2)
            .into_iter()
            .map(|i| samples[i].pid)
            .collect();
        assert_eq!(pids, vec![1, 2, 3, 5]);
    }
}
