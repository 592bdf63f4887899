//! What the exporter keeps between renders, bounded: time series that halve their resolution when
//! full, running statistics with a quantile sketch, the top processes, the steps, the output
//! line counts and the last error lines, and the SLI alerts.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// One point of a series: a bucket of `count` samples starting at `t` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the bucket, unix seconds.
    pub t: f64,
    /// Smallest sample in the bucket.
    pub min: f64,
    /// Largest sample in the bucket.
    pub max: f64,
    /// Mean of the samples in the bucket.
    pub mean: f64,
    /// Samples merged into this point.
    pub count: u32,
}

impl Point {
    /// A point of one sample.
    pub fn sample(t: f64, v: f64) -> Point {
        Point {
            t,
            min: v,
            max: v,
            mean: v,
            count: 1,
        }
    }

    /// This point and the next one merged: min of mins, max of maxes, weighted mean.
    pub fn merge(&self, next: &Point) -> Point {
        let count = self.count.saturating_add(next.count);
        let mean = if count == 0 {
            self.mean
        } else {
            (self.mean * f64::from(self.count) + next.mean * f64::from(next.count))
                / f64::from(count)
        };
        Point {
            t: self.t.min(next.t),
            min: self.min.min(next.min),
            max: self.max.max(next.max),
            mean,
            count,
        }
    }
}

/// A quantile sketch with a bounded relative error (DDSketch-style logarithmic buckets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zeros: u64,
    count: u64,
}

/// Relative accuracy of [`Sketch`] quantiles.
pub const SKETCH_ACCURACY: f64 = 0.01;
/// Buckets per sign before the lowest ones are collapsed.
const SKETCH_MAX_BUCKETS: usize = 2048;
/// Magnitudes below this count as zero.
const SKETCH_MIN_VALUE: f64 = 1e-9;

fn gamma() -> f64 {
    (1.0 + SKETCH_ACCURACY) / (1.0 - SKETCH_ACCURACY)
}

impl Sketch {
    /// Adds one value (NaN and infinities are ignored).
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.count += 1;
        let mag = v.abs();
        if mag < SKETCH_MIN_VALUE {
            self.zeros += 1;
            return;
        }
        let index = (mag.ln() / gamma().ln()).ceil() as i32;
        let map = if v > 0.0 {
            &mut self.positive
        } else {
            &mut self.negative
        };
        *map.entry(index).or_insert(0) += 1;
        if map.len() > SKETCH_MAX_BUCKETS {
            // Collapse the two smallest-magnitude buckets: accuracy is lost only there.
            let mut it = map.iter();
            if let (Some((&a, &ca)), Some((&b, _))) = (it.next(), it.next()) {
                map.remove(&a);
                *map.entry(b).or_insert(0) += ca;
            }
        }
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0..=1), within [`SKETCH_ACCURACY`] relative error; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64;
        let g = gamma();
        let value = |i: i32| 2.0 * g.powi(i) / (g + 1.0);
        let mut seen = 0u64;
        for (&i, &c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return Some(-value(i));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        for (&i, &c) in &self.positive {
            seen += c;
            if seen > rank {
                return Some(value(i));
            }
        }
        self.positive.keys().next_back().map(|&i| value(i))
    }
}

/// The exact `q` quantile of `values` (nearest rank on the sorted values, as the sketch
/// approximates); `None` when empty.
pub fn exact_quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * (v.len() - 1) as f64).round() as usize;
    v.get(rank).copied()
}

/// Running statistics over every sample ever added (not affected by downsampling).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Sketch,
}

impl Stats {
    /// Adds a sample.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
        self.sketch.add(v);
    }

    /// Mean of the samples, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// 95th percentile, clamped into `[min, max]`.
    pub fn p95(&self) -> Option<f64> {
        self.sketch
            .quantile(0.95)
            .map(|p| p.clamp(self.min, self.max))
    }
}

/// A time series with at most `max_points` points, and statistics over all its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    points: Vec<Point>,
    max_points: usize,
    /// Statistics over every sample.
    pub stats: Stats,
    /// Times the series was halved.
    pub downsamples: u32,
}

impl Series {
    /// An empty series holding at most `max_points` (at least 2).
    pub fn new(max_points: usize) -> Series {
        Series {
            points: Vec::new(),
            max_points: max_points.max(2),
            stats: Stats::default(),
            downsamples: 0,
        }
    }

    /// The points, oldest first.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Adds a sample at `t` (unix seconds). Out-of-order samples are inserted in place. When the
    /// series is full, neighbouring points are merged in pairs first; after `n` halvings a point
    /// takes up to 2^n samples, old and new alike.
    pub fn push(&mut self, t: f64, v: f64) {
        if !v.is_finite() || !t.is_finite() {
            return;
        }
        self.stats.add(v);
        if self.points.len() >= self.max_points {
            self.halve();
        }
        let p = Point::sample(t, v);
        let per_point = 1u32 << self.downsamples.min(31);
        match self.points.last_mut() {
            Some(last) if last.t > t => {
                let at = self.points.partition_point(|x| x.t <= t);
                self.points.insert(at, p);
            }
            // After a halving, new samples fill the last point up to the same number of samples
            // as the merged ones, so the resolution stays the same over the whole series.
            Some(last) if last.count < per_point => *last = last.merge(&p),
            _ => self.points.push(p),
        }
    }

    /// Merges neighbouring points in pairs (the last one stays alone when the count is odd).
    pub fn halve(&mut self) {
        let merged: Vec<Point> = self
            .points
            .chunks(2)
            .map(|c| match c {
                [a, b] => a.merge(b),
                [a] => *a,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
        self.points = merged;
        self.downsamples += 1;
    }

    /// First and last point times.
    pub fn time_range(&self) -> Option<(f64, f64)> {
        Some((self.points.first()?.t, self.points.last()?.t))
    }
}

/// One process seen in the `procfs` top lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    pub pid: i64,
    pub executable: String,
    pub command_line: String,
    /// Sum of the CPU utilization samples (fraction of one core), for ranking and the mean.
    pub cpu_sum: f64,
    pub cpu_samples: u64,
    pub cpu_peak: f64,
    /// Peak resident set size, bytes.
    pub rss_peak: f64,
    pub first_seen: f64,
    pub last_seen: f64,
}

/// Processes kept before the list is pruned to the top ones by each criterion.
const MAX_PROCESSES: usize = 512;
/// Processes kept by each criterion when pruning.
const KEEP_PROCESSES: usize = 128;

/// The processes seen, pruned to the top ones by CPU and by memory when the list grows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processes {
    pub by_key: HashMap<(i64, String), ProcessStats>,
    /// Processes forgotten because they were in neither top list when pruning.
    pub pruned: u64,
}

impl Processes {
    /// The entry of a process, created on first sight.
    pub fn entry(
        &mut self,
        pid: i64,
        executable: &str,
        command_line: &str,
        t: f64,
    ) -> &mut ProcessStats {
        if self.by_key.len() >= MAX_PROCESSES
            && !self.by_key.contains_key(&(pid, executable.to_string()))
        {
            self.prune();
        }
        let e = self
            .by_key
            .entry((pid, executable.to_string()))
            .or_insert_with(|| ProcessStats {
                pid,
                executable: executable.to_string(),
                command_line: command_line.to_string(),
                first_seen: t,
                last_seen: t,
                ..ProcessStats::default()
            });
        e.first_seen = e.first_seen.min(t);
        e.last_seen = e.last_seen.max(t);
        if e.command_line.is_empty() && !command_line.is_empty() {
            e.command_line = command_line.to_string();
        }
        e
    }

    /// Keeps the top [`KEEP_PROCESSES`] by CPU and by peak memory.
    fn prune(&mut self) {
        let keep: std::collections::HashSet<(i64, String)> = self
            .top_by_cpu(KEEP_PROCESSES)
            .into_iter()
            .chain(self.top_by_rss(KEEP_PROCESSES))
            .map(|p| (p.pid, p.executable.clone()))
            .collect();
        let before = self.by_key.len();
        self.by_key.retain(|k, _| keep.contains(k));
        self.pruned += (before - self.by_key.len()) as u64;
    }

    /// The `n` processes that used the most CPU over the job.
    pub fn top_by_cpu(&self, n: usize) -> Vec<&ProcessStats> {
        let mut v: Vec<&ProcessStats> =
            self.by_key.values().filter(|p| p.cpu_samples > 0).collect();
        v.sort_by(|a, b| b.cpu_sum.total_cmp(&a.cpu_sum).then(a.pid.cmp(&b.pid)));
        v.truncate(n);
        v
    }

    /// The `n` processes with the largest peak resident memory.
    pub fn top_by_rss(&self, n: usize) -> Vec<&ProcessStats> {
        let mut v: Vec<&ProcessStats> = self.by_key.values().filter(|p| p.rss_peak > 0.0).collect();
        v.sort_by(|a, b| b.rss_peak.total_cmp(&a.rss_peak).then(a.pid.cmp(&b.pid)));
        v.truncate(n);
        v
    }
}

/// Where a step record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepSource {
    /// `sluice ci step` saw it run.
    Sluice,
    /// GitHub's REST API reported it (replaces what sluice saw when present).
    GithubApi,
}

/// One step of the job.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub start_unix_nano: i64,
    pub end_unix_nano: Option<i64>,
    pub exit_code: Option<i64>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Succeeded,
    Failed,
    Running,
}

impl Step {
    /// Succeeded, failed (exit code ≠ 0) or still running (no end seen).
    pub fn status(&self) -> StepStatus {
        match (self.end_unix_nano, self.exit_code) {
            (None, _) => StepStatus::Running,
            (Some(_), Some(0)) => StepStatus::Succeeded,
            (Some(_), _) => StepStatus::Failed,
        }
    }

    /// Duration in seconds, up to `now` (unix nanoseconds) when still running.
    pub fn duration_secs(&self, now: i64) -> f64 {
        let end = self.end_unix_nano.unwrap_or(now);
        (end.saturating_sub(self.start_unix_nano)).max(0) as f64 / 1e9
    }
}

/// The steps seen, by source, identified by name and start time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Steps {
    by_source: BTreeMap<(StepSource, String, i64), Step>,
    /// Step records ignored because `max_steps` steps were already known.
    pub dropped: u64,
}

impl Steps {
    /// Records a start or an end; an end without a start creates the step.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        source: StepSource,
        name: &str,
        start: i64,
        end: Option<i64>,
        exit_code: Option<i64>,
        max_steps: usize,
    ) -> bool {
        let key = (source, name.to_string(), start);
        if !self.by_source.contains_key(&key) && self.by_source.len() >= max_steps {
            self.dropped += 1;
            return false;
        }
        let step = self.by_source.entry(key).or_insert_with(|| Step {
            name: name.to_string(),
            start_unix_nano: start,
            end_unix_nano: None,
            exit_code: None,
        });
        if end.is_some() {
            step.end_unix_nano = end;
            step.exit_code = exit_code;
        }
        true
    }

    /// The steps to show, by start time: GitHub's when any were reported, else sluice's own.
    pub fn effective(&self) -> Vec<&Step> {
        let has_github = self
            .by_source
            .keys()
            .any(|(s, _, _)| *s == StepSource::GithubApi);
        let want = if has_github {
            StepSource::GithubApi
        } else {
            StepSource::Sluice
        };
        let mut v: Vec<&Step> = self
            .by_source
            .iter()
            .filter(|((s, _, _), _)| *s == want)
            .map(|(_, step)| step)
            .collect();
        v.sort_by(|a, b| {
            a.start_unix_nano
                .cmp(&b.start_unix_nano)
                .then_with(|| a.name.cmp(&b.name))
        });
        v
    }

    /// Whether the shown steps came from GitHub's API.
    pub fn reported_by_github(&self) -> bool {
        self.by_source
            .keys()
            .any(|(s, _, _)| *s == StepSource::GithubApi)
    }
}

/// One line of command output classified as an error.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLine {
    pub t: f64,
    pub step: String,
    pub text: String,
}

/// Longest error line kept, in characters.
pub const MAX_ERROR_LINE_CHARS: usize = 400;

/// Command output: lines by severity and the last error lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub by_severity: BTreeMap<String, u64>,
    pub last_errors: VecDeque<ErrorLine>,
    pub errors_total: u64,
}

impl Output {
    /// Counts a line; keeps it when it is an error (the last `keep` of them).
    pub fn record(&mut self, severity: &str, t: f64, step: &str, text: &str, keep: usize) {
        *self.by_severity.entry(severity.to_string()).or_insert(0) += 1;
        if severity == "ERROR" || severity == "FATAL" {
            self.errors_total += 1;
            if keep == 0 {
                return;
            }
            while self.last_errors.len() >= keep {
                self.last_errors.pop_front();
            }
            let text: String = text.chars().take(MAX_ERROR_LINE_CHARS).collect();
            self.last_errors.push_back(ErrorLine {
                t,
                step: step.chars().take(100).collect(),
                text,
            });
        }
    }
}

/// One firing or resolution of an SLI alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub t: f64,
    pub sli_name: String,
    pub severity: String,
    pub state: String,
    pub current_value: Option<f64>,
    pub threshold: Option<f64>,
}

/// Alerts kept for the report (the last ones); older ones are only counted.
pub const MAX_ALERTS: usize = 200;

/// The SLI alerts seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts {
    pub last: VecDeque<Alert>,
    /// Firings per severity, over the whole job.
    pub fired: BTreeMap<String, u64>,
    pub total: u64,
}

impl Alerts {
    /// Records an alert event.
    pub fn record(&mut self, a: Alert) {
        self.total += 1;
        if a.state == "firing" {
            *self.fired.entry(a.severity.clone()).or_insert(0) += 1;
        }
        if self.last.len() >= MAX_ALERTS {
            self.last.pop_front();
        }
        self.last.push_back(a);
    }
}

/// Everything the report is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    max_points: usize,
    pub series: BTreeMap<String, Series>,
    pub processes: Processes,
    pub steps: Steps,
    pub output: Output,
    pub alerts: Alerts,
    /// Earliest and latest time of any data, unix seconds.
    pub first_t: Option<f64>,
    pub last_t: Option<f64>,
    /// Filesystem mount points ignored because [`MAX_FILESYSTEMS`] were already charted.
    pub ignored_filesystems: u64,
}

/// Filesystems charted and tabled at most.
pub const MAX_FILESYSTEMS: usize = 8;

impl Store {
    /// An empty store whose series hold at most `max_points` points.
    pub fn new(max_points: usize) -> Store {
        Store {
            max_points,
            series: BTreeMap::new(),
            processes: Processes::default(),
            steps: Steps::default(),
            output: Output::default(),
            alerts: Alerts::default(),
            first_t: None,
            last_t: None,
            ignored_filesystems: 0,
        }
    }

    /// Notes that data at `t` (unix seconds) was seen.
    pub fn saw(&mut self, t: f64) {
        if !t.is_finite() || t <= 0.0 {
            return;
        }
        self.first_t = Some(self.first_t.map_or(t, |f| f.min(t)));
        self.last_t = Some(self.last_t.map_or(t, |l| l.max(t)));
    }

    /// Adds a sample to the series `key`, creating it.
    pub fn push(&mut self, key: &str, t: f64, v: f64) {
        self.saw(t);
        let max = self.max_points;
        if let Some(s) = self.series.get_mut(key) {
            s.push(t, v);
            return;
        }
        if key.starts_with(FS_PREFIX)
            && self
                .series
                .keys()
                .filter(|k| k.starts_with(FS_PREFIX))
                .count()
                >= MAX_FILESYSTEMS
        {
            self.ignored_filesystems += 1;
            return;
        }
        let mut s = Series::new(max);
        s.push(t, v);
        self.series.insert(key.to_string(), s);
    }

    /// The series `key`, if any sample arrived.
    pub fn get(&self, key: &str) -> Option<&Series> {
        self.series.get(key)
    }

    /// Filesystem series: (mount point, series).
    pub fn filesystems(&self) -> impl Iterator<Item = (&str, &Series)> {
        self.series
            .iter()
            .filter_map(|(k, s)| k.strip_prefix(FS_PREFIX).map(|m| (m, s)))
    }
}

/// Series keys (stable names used by the charts and the table).
pub mod keys {
    pub const CPU_USER: &str = "cpu.user";
    pub const CPU_SYSTEM: &str = "cpu.system";
    pub const CPU_IOWAIT: &str = "cpu.iowait";
    pub const CPU_BUSY: &str = "cpu.busy";
    /// Busy time in neither user, system nor iowait (nice, irq, softirq, steal).
    pub const CPU_OTHER: &str = "cpu.other";
    pub const MEM_USED: &str = "memory.used";
    pub const MEM_CACHED: &str = "memory.cached";
    pub const MEM_TOTAL: &str = "memory.total";
    pub const NET_RX: &str = "network.receive";
    pub const NET_TX: &str = "network.transmit";
    pub const DISK_READ: &str = "disk.read";
    pub const DISK_WRITE: &str = "disk.write";
    pub const LOAD_1M: &str = "load.1m";
}

/// Prefix of the per-mount-point filesystem utilization series.
pub const FS_PREFIX: &str = "filesystem:";
