//! What an SLI keeps of the points it reads, and how a window of them becomes one value.
//!
//! Times are the points' own `time_unix_nano`; an evaluation at `b` looks at the window
//! `(b − evaluation_window, b]`. Each series (metric name, resource and point attributes) keeps
//! its samples in time order, plus the last one at or before the window's start as the baseline
//! that cumulative counters and histograms are differenced against.

use std::collections::{HashMap, VecDeque};

/// How a series' values are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    /// Gauge points: each value stands alone.
    Gauge,
    /// A cumulative sum (a counter): values are totals since `start`.
    CumulativeSum,
    /// A delta sum: each value is the increase since the previous point.
    DeltaSum,
    /// A cumulative explicit-bucket histogram.
    CumulativeHistogram,
    /// A delta explicit-bucket histogram.
    DeltaHistogram,
}

impl SeriesKind {
    /// Whether points are histograms.
    pub fn is_histogram(self) -> bool {
        matches!(
            self,
            SeriesKind::CumulativeHistogram | SeriesKind::DeltaHistogram
        )
    }
}

/// An explicit-bucket histogram point: `counts[i]` observations in `(bounds[i-1], bounds[i]]`,
/// the last bucket up to +Inf (`counts.len() == bounds.len() + 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

/// A sample's value.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Number(f64),
    Histogram(Buckets),
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `time_unix_nano`.
    pub t: u64,
    /// `start_time_unix_nano` (0 when unknown).
    pub start: u64,
    pub value: SampleValue,
    /// The point's exemplars that carry a trace id: (value, trace id).
    pub exemplars: Vec<(f64, [u8; 16])>,
}

impl Sample {
    fn number(&self) -> Option<f64> {
        match &self.value {
            SampleValue::Number(v) => Some(*v),
            SampleValue::Histogram(_) => None,
        }
    }

    fn buckets(&self) -> Option<&Buckets> {
        match &self.value {
            SampleValue::Histogram(b) => Some(b),
            SampleValue::Number(_) => None,
        }
    }

    /// The sample's total, for reset detection: a counter's value or a histogram's count.
    fn total(&self) -> f64 {
        match &self.value {
            SampleValue::Number(v) => *v,
            SampleValue::Histogram(b) => b.count as f64,
        }
    }
}

/// One series' samples, in time order.
#[derive(Debug, Clone)]
pub struct Series {
    pub kind: SeriesKind,
    samples: VecDeque<Sample>,
}

impl Series {
    fn new(kind: SeriesKind) -> Series {
        Series {
            kind,
            samples: VecDeque::new(),
        }
    }

    /// Inserts in time order; a sample at a time the series already has replaces it (a resent
    /// point counts once).
    fn insert(&mut self, sample: Sample) {
        // Points mostly arrive in time order: append without searching.
        if self.samples.back().is_none_or(|last| last.t < sample.t) {
            self.samples.push_back(sample);
            return;
        }
        let pos = self.samples.partition_point(|s| s.t < sample.t);
        match self.samples.get_mut(pos) {
            Some(s) if s.t == sample.t => *s = sample,
            _ => self.samples.insert(pos, sample),
        }
    }

    /// Samples in `(lo, hi]`.
    fn in_window(&self, lo: u64, hi: u64) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.t > lo && s.t <= hi)
    }

    /// The last sample at or before `lo`.
    fn baseline(&self, lo: u64) -> Option<&Sample> {
        self.samples.iter().rev().find(|s| s.t <= lo)
    }

    /// The chain a cumulative series is differenced along in `(lo, hi]`: the baseline (or, for
    /// a series that started inside the window, an implicit zero), then the window's samples.
    /// Returns (first sample differenced from, or None for the implicit zero; the samples after
    /// it; the time the chain starts).
    fn chain(&self, lo: u64, hi: u64) -> Option<(Option<&Sample>, Vec<&Sample>, u64)> {
        let inside: Vec<&Sample> = self.in_window(lo, hi).collect();
        let first = *inside.first()?;
        if let Some(base) = self.baseline(lo) {
            return Some((Some(base), inside, base.t));
        }
        if first.start != 0 && first.start >= lo && first.start <= first.t {
            // The series started inside the window (or at its edge): its first total is all
            // increase within the window.
            return Some((None, inside, first.start));
        }
        let t0 = first.t;
        Some((Some(first), inside[1..].to_vec(), t0))
    }
}

/// Whether `cur` follows a counter reset after `prev`.
fn is_reset(prev: &Sample, cur: &Sample) -> bool {
    cur.total() < prev.total() || (prev.start != 0 && cur.start != 0 && cur.start > prev.start)
}

/// One input of an SLI (its main metric, or a ratio's numerator or denominator): every series
/// it matched.
#[derive(Debug, Clone, Default)]
pub struct SeriesSet {
    series: HashMap<String, Series>,
}

/// Why a point was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The SLI already holds `max_series` series.
    MaxSeries,
}

impl SeriesSet {
    /// Adds a sample to series `key`; a series whose kind changed starts over.
    pub fn insert(
        &mut self,
        key: String,
        kind: SeriesKind,
        sample: Sample,
        max_series: usize,
    ) -> Result<(), Refusal> {
        let len = self.series.len();
        match self.series.get_mut(&key) {
            Some(s) => {
                if s.kind != kind {
                    *s = Series::new(kind);
                }
                s.insert(sample);
            }
            None => {
                if len >= max_series {
                    return Err(Refusal::MaxSeries);
                }
                let mut s = Series::new(kind);
                s.insert(sample);
                self.series.insert(key, s);
            }
        }
        Ok(())
    }

    /// Whether any sample lies in `(lo, hi]`.
    pub fn has_data(&self, lo: u64, hi: u64) -> bool {
        self.series
            .values()
            .any(|s| s.in_window(lo, hi).next().is_some())
    }

    /// The earliest sample time after `t`.
    pub fn next_time_after(&self, t: u64) -> Option<u64> {
        self.series
            .values()
            .filter_map(|s| s.samples.iter().find(|x| x.t > t).map(|x| x.t))
            .min()
    }

    /// Forgets what no window ending at or after `b` needs: samples at or before `b − window`
    /// except the last (the baseline), and series with nothing newer than `b − 2 × window`.
    pub fn prune(&mut self, b: u64, window: u64) {
        let cutoff = b.saturating_sub(window);
        let stale = b.saturating_sub(window.saturating_mul(2));
        self.series.retain(|_, s| {
            while s.samples.len() >= 2 && s.samples[1].t <= cutoff {
                s.samples.pop_front();
            }
            s.samples.back().is_some_and(|x| x.t > stale)
        });
    }

    /// The values of gauge and sum points in `(lo, hi]`.
    pub fn numbers(&self, lo: u64, hi: u64) -> Vec<f64> {
        self.series
            .values()
            .filter(|s| !s.kind.is_histogram())
            .flat_map(|s| s.in_window(lo, hi).filter_map(Sample::number))
            .collect()
    }

    /// The observations the histograms recorded in `(lo, hi]`, merged over series: bucket
    /// increases (cumulative: differenced, reset-aware; delta: summed), with the bounds of the
    /// first series seen. Series with other bounds are left out and counted in the third value.
    pub fn histogram(&self, lo: u64, hi: u64) -> Option<(Buckets, usize)> {
        let mut merged: Option<Buckets> = None;
        let mut mismatched = 0;
        let mut keys: Vec<&String> = self
            .series
            .iter()
            .filter(|(_, s)| s.kind.is_histogram())
            .map(|(k, _)| k)
            .collect();
        // A fixed order, so the bounds chosen do not depend on hashing.
        keys.sort();
        for key in keys {
            let s = &self.series[key];
            let Some(inc) = histogram_increase(s, lo, hi) else {
                continue;
            };
            match &mut merged {
                None => merged = Some(inc),
                Some(m) if m.bounds == inc.bounds => {
                    for (a, b) in m.counts.iter_mut().zip(&inc.counts) {
                        *a += b;
                    }
                    m.count += inc.count;
                    m.sum += inc.sum;
                }
                Some(_) => mismatched += 1,
            }
        }
        merged.map(|m| (m, mismatched))
    }

    /// The summed increase over `(lo, hi]`: of counters (cumulative differenced, reset-aware;
    /// delta summed), of gauge values (summed), of histogram counts. None without samples.
    pub fn amount(&self, lo: u64, hi: u64) -> Option<f64> {
        let mut total = 0.0;
        let mut any = false;
        for s in self.series.values() {
            let v = match s.kind {
                SeriesKind::Gauge | SeriesKind::DeltaSum => {
                    let mut it = s.in_window(lo, hi).filter_map(Sample::number).peekable();
                    if it.peek().is_some() {
                        Some(it.sum::<f64>())
                    } else {
                        None
                    }
                }
                SeriesKind::CumulativeSum => counter_increase(s, lo, hi).map(|(inc, _)| inc),
                SeriesKind::CumulativeHistogram | SeriesKind::DeltaHistogram => {
                    histogram_increase(s, lo, hi).map(|b| b.count as f64)
                }
            };
            if let Some(v) = v {
                total += v;
                any = true;
            }
        }
        any.then_some(total)
    }

    /// The per-second increase over `(lo, hi]`, summed over series. A cumulative counter's
    /// increase (reset-aware) is divided by the time it was observed over (from the baseline, or
    /// the series' start inside the window, to its last sample); a delta counter's points are
    /// summed and divided by the window. None when no series yields a rate.
    pub fn rate(&self, lo: u64, hi: u64) -> Option<f64> {
        let window_secs = (hi - lo) as f64 / 1e9;
        let mut total = 0.0;
        let mut any = false;
        for s in self.series.values() {
            let r = match s.kind {
                SeriesKind::CumulativeSum => counter_increase(s, lo, hi)
                    .and_then(|(inc, secs)| (secs > 0.0).then_some(inc / secs)),
                SeriesKind::DeltaSum => {
                    let mut it = s.in_window(lo, hi).filter_map(Sample::number).peekable();
                    if it.peek().is_some() {
                        Some(it.sum::<f64>() / window_secs)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(r) = r {
                total += r;
                any = true;
            }
        }
        any.then_some(total)
    }

    /// The exemplar trace id of the most extreme exemplar value in `(lo, hi]` (largest when
    /// `largest`, else smallest).
    pub fn trace_id(&self, lo: u64, hi: u64, largest: bool) -> Option<[u8; 16]> {
        let mut best: Option<(f64, [u8; 16])> = None;
        for s in self.series.values() {
            for x in s.in_window(lo, hi).flat_map(|x| x.exemplars.iter()) {
                let better = match best {
                    None => true,
                    Some((v, _)) if largest => x.0 > v,
                    Some((v, _)) => x.0 < v,
                };
                if better {
                    best = Some(*x);
                }
            }
        }
        best.map(|(_, id)| id)
    }
}

/// A cumulative counter's increase along its chain in `(lo, hi]`, and the seconds it spans.
fn counter_increase(s: &Series, lo: u64, hi: u64) -> Option<(f64, f64)> {
    let (base, rest, t0) = s.chain(lo, hi)?;
    let mut prev = base;
    let mut inc = 0.0;
    let mut last_t = t0;
    for cur in rest {
        let c = cur.number().unwrap_or(0.0);
        inc += match prev {
            Some(p) if !is_reset(p, cur) => c - p.number().unwrap_or(0.0),
            _ => c,
        };
        prev = Some(cur);
        last_t = cur.t;
    }
    let secs = last_t.saturating_sub(t0) as f64 / 1e9;
    Some((inc, secs))
}

/// A histogram series' observations in `(lo, hi]`.
fn histogram_increase(s: &Series, lo: u64, hi: u64) -> Option<Buckets> {
    match s.kind {
        SeriesKind::DeltaHistogram => {
            let mut acc: Option<Buckets> = None;
            for b in s.in_window(lo, hi).filter_map(Sample::buckets) {
                match &mut acc {
                    None => acc = Some(b.clone()),
                    Some(a) if a.bounds == b.bounds => {
                        for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                            *x += y;
                        }
                        a.count += b.count;
                        a.sum += b.sum;
                    }
                    // Bounds changed mid-series: keep the latest shape.
                    Some(a) => *a = b.clone(),
                }
            }
            acc
        }
        SeriesKind::CumulativeHistogram => {
            // Increments along the chain, in segments between resets: each segment adds its
            // last point minus its first (nothing, for a segment that starts from zero).
            let (base, rest, _) = s.chain(lo, hi)?;
            let mut acc: Option<Buckets> = None;
            let mut seg_start = base.and_then(Sample::buckets);
            let mut prev = base;
            for cur in rest {
                let Some(cb) = cur.buckets() else { continue };
                if let Some(p) = prev {
                    let same_shape = p.buckets().is_some_and(|pb| pb.bounds == cb.bounds);
                    if is_reset(p, cur) || !same_shape {
                        if let Some(pb) = p.buckets() {
                            add_difference(&mut acc, pb, seg_start);
                        }
                        seg_start = None;
                    }
                }
                prev = Some(cur);
            }
            if let Some(pb) = prev.and_then(Sample::buckets) {
                add_difference(&mut acc, pb, seg_start);
            }
            acc
        }
        _ => None,
    }
}

/// Adds `end − start` (or all of `end` without a start) to `acc`; a different shape replaces it.
fn add_difference(acc: &mut Option<Buckets>, end: &Buckets, start: Option<&Buckets>) {
    let start = start.filter(|s| s.bounds == end.bounds);
    let sub = |i: usize, c: u64| {
        c.saturating_sub(start.map_or(0, |s| s.counts.get(i).copied().unwrap_or(0)))
    };
    match acc {
        Some(a) if a.bounds == end.bounds => {
            for (i, (x, c)) in a.counts.iter_mut().zip(&end.counts).enumerate() {
                *x += sub(i, *c);
            }
            a.count += end.count.saturating_sub(start.map_or(0, |s| s.count));
            a.sum += end.sum - start.map_or(0.0, |s| s.sum);
        }
        _ => {
            *acc = Some(Buckets {
                bounds: end.bounds.clone(),
                counts: end
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| sub(i, *c))
                    .collect(),
                count: end.count.saturating_sub(start.map_or(0, |s| s.count)),
                sum: end.sum - start.map_or(0.0, |s| s.sum),
            })
        }
    }
}

/// The `q`-quantile of explicit-bucket `h`, as Prometheus' `histogram_quantile` computes it
/// (promql/quantile.go `bucketQuantile`): the rank `q × count` is located in the cumulative
/// buckets and interpolated linearly inside its bucket; the first bucket starts at 0 (unless its
/// upper bound is ≤ 0, which is then returned); a rank in the +Inf bucket returns the largest
/// finite bound. None without observations or without a finite bound.
pub fn histogram_quantile(q: f64, h: &Buckets) -> Option<f64> {
    if h.bounds.is_empty() || h.counts.len() != h.bounds.len() + 1 {
        return None;
    }
    let mut cumulative = Vec::with_capacity(h.counts.len());
    let mut acc = 0u64;
    for c in &h.counts {
        acc += c;
        cumulative.push(acc as f64);
    }
    let observations = acc as f64;
    if observations == 0.0 {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let mut rank = q * observations;
    // First bucket (not the +Inf one) whose cumulative count reaches the rank.
    let n = cumulative.len();
    let b = cumulative[..n - 1]
        .iter()
        .position(|c| *c >= rank)
        .unwrap_or(n - 1);
    if b == n - 1 {
        return Some(h.bounds[n - 2]);
    }
    if b == 0 && h.bounds[0] <= 0.0 {
        return Some(h.bounds[0]);
    }
    let bucket_end = h.bounds[b];
    let mut bucket_start = 0.0;
    let mut count = cumulative[b];
    if b > 0 {
        bucket_start = h.bounds[b - 1];
        count -= cumulative[b - 1];
        rank -= cumulative[b - 1];
    }
    Some(bucket_start + (bucket_end - bucket_start) * (rank / count))
}

/// The `q`-quantile of `values` by nearest rank: sorted ascending, the value at 1-based rank
/// `ceil(q × n)` (at least 1). Every value is a real observation; nothing is interpolated.
pub fn nearest_rank(q: f64, values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Some(values[rank - 1])
}
