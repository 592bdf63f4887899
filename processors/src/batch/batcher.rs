//! The batching state of one pipeline: one buffer per signal, filled by moving the incoming
//! resources in (no deep copy), emitted when it reaches `send_batch_size`, when its oldest data
//! is `timeout` old, or at shutdown, in parts of at most `send_batch_max_size` items.
//!
//! Every buffered input keeps its own record (item range, arrival time, acknowledgements), so an
//! emitted part carries exactly the acknowledgements of the inputs it holds items of, and what
//! stays buffered after a size trigger knows when its oldest item arrived.

use std::time::{Duration, Instant, SystemTime};

use sluice_pipeline::data::{Batch, BatchMeta, Payload, Signal};
use sluice_pipeline::error::ProcessError;
use sluice_pipeline::factory::Processor;
use sluice_pipeline::telemetry::{ComponentTelemetry, Counter};
use sluice_pipeline::{Ack, ComponentId};
use sluice_proto::logs::v1::ResourceLogs;
use sluice_proto::metrics::v1::ResourceMetrics;
use sluice_proto::trace::v1::ResourceSpans;

use super::config::BatchProcessorConfig;
use super::split::{split_tail_vec, SplitTail};

/// The name of the counter of emitted batches, labelled with `trigger` (`size`, `timeout`,
/// `shutdown`).
pub const SENT_BATCHES_METRIC: &str = "sluice_processor_batch_sent_batches";

/// The top level of a payload of one signal.
pub(crate) trait Resource: SplitTail {
    /// Wraps resources of this signal into a payload.
    fn into_payload(resources: Vec<Self>) -> Payload;
}

impl Resource for ResourceSpans {
    fn into_payload(resources: Vec<Self>) -> Payload {
        Payload::Traces(resources)
    }
}

impl Resource for ResourceMetrics {
    fn into_payload(resources: Vec<Self>) -> Payload {
        Payload::Metrics(resources)
    }
}

impl Resource for ResourceLogs {
    fn into_payload(resources: Vec<Self>) -> Payload {
        Payload::Logs(resources)
    }
}

/// The part of the config the buffers need, copied out.
#[derive(Debug, Clone, Copy)]
struct Limits {
    size: usize,
    max: usize,
    timeout: Duration,
}

/// One input batch inside a buffer.
#[derive(Debug)]
struct Segment {
    /// Buffer item offset just past this input's items (its start is the previous end).
    end: usize,
    /// When it entered the buffer.
    arrived: Instant,
    received_at: SystemTime,
    source: Option<ComponentId>,
    acks: Vec<Ack>,
}

/// The buffered data of one signal.
#[derive(Debug)]
struct SignalBuffer<R> {
    resources: Vec<R>,
    items: usize,
    /// Inputs in arrival order; empty exactly when the buffer is.
    segments: Vec<Segment>,
}

impl<R: Resource> SignalBuffer<R> {
    fn new() -> Self {
        SignalBuffer {
            resources: Vec::new(),
            items: 0,
            segments: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// When the oldest buffered item arrived.
    fn oldest(&self) -> Option<Instant> {
        self.segments.first().map(|s| s.arrived)
    }

    fn push(&mut self, resources: Vec<R>, items: usize, meta: BatchMeta, now: Instant) {
        if self.resources.is_empty() {
            self.resources = resources;
        } else {
            self.resources.extend(resources);
        }
        self.items += items;
        self.segments.push(Segment {
            end: self.items,
            arrived: now,
            received_at: meta.received_at,
            source: meta.source,
            acks: meta.acks,
        });
    }

    /// Emits the buffer in parts of at most `max` items (`0`: one part). With `keep_below > 0`,
    /// a last part of fewer than `keep_below` items stays buffered. Returns the parts emitted.
    fn emit(&mut self, max: usize, keep_below: usize, out: &mut Vec<Batch>) -> u64 {
        let total = self.items;
        if total == 0 {
            // Only empty inputs are never buffered, so this holds nothing; releasing the
            // acknowledgements reports them done.
            self.resources.clear();
            self.segments.clear();
            return 0;
        }
        let part = if max == 0 { total } else { max };
        let last = total % part;
        let keep = if keep_below > 0 && last < keep_below {
            last
        } else {
            0
        };
        let emit_total = total - keep;
        if emit_total == 0 {
            return 0;
        }

        let mut resources = std::mem::take(&mut self.resources);
        let leftover = if keep > 0 {
            split_tail_vec(&mut resources, keep)
        } else {
            Vec::new()
        };

        // Cut from the back so every item moves once; `parts` ends up last part first.
        let mut parts = Vec::with_capacity(emit_total.div_ceil(part));
        let mut end = emit_total;
        let mut size = match emit_total % part {
            0 => part,
            r => r,
        };
        while end > size {
            parts.push((split_tail_vec(&mut resources, size), end - size, end));
            end -= size;
            size = part;
        }
        parts.push((resources, 0, end));
        let emitted = parts.len() as u64;

        if parts.len() == 1 && keep == 0 {
            let (resources, _, _) = parts.pop().unwrap_or_default();
            let meta = merge_meta(self.segments.drain(..));
            out.push(Batch {
                payload: R::into_payload(resources),
                meta,
            });
            self.items = 0;
            return emitted;
        }

        for (resources, start, end) in parts.into_iter().rev() {
            out.push(Batch {
                payload: R::into_payload(resources),
                meta: meta_for_range(&self.segments, start, end),
            });
        }
        self.segments.retain(|s| s.end > emit_total);
        for s in &mut self.segments {
            s.end -= emit_total;
        }
        self.resources = leftover;
        self.items = keep;
        emitted
    }
}

/// The metadata of a batch made of whole segments: the first source, the earliest receive
/// time, every acknowledgement (moved).
fn merge_meta(segments: impl Iterator<Item = Segment>) -> BatchMeta {
    let mut meta: Option<BatchMeta> = None;
    for s in segments {
        match meta.as_mut() {
            None => {
                meta = Some(BatchMeta {
                    source: s.source,
                    received_at: s.received_at,
                    acks: s.acks,
                })
            }
            Some(m) => {
                m.received_at = m.received_at.min(s.received_at);
                m.acks.extend(s.acks);
            }
        }
    }
    meta.unwrap_or_default()
}

/// The metadata of the buffer items `start..end`: that of every segment they touch, with the
/// acknowledgements cloned (the segments may feed other parts too).
fn meta_for_range(segments: &[Segment], start: usize, end: usize) -> BatchMeta {
    let mut meta: Option<BatchMeta> = None;
    let mut seg_start = 0;
    for s in segments {
        let seg_end = s.end;
        let touches = seg_start < end && seg_end > start;
        seg_start = seg_end;
        if !touches {
            if seg_end >= end {
                break;
            }
            continue;
        }
        match meta.as_mut() {
            None => {
                meta = Some(BatchMeta {
                    source: s.source.clone(),
                    received_at: s.received_at,
                    acks: s.acks.clone(),
                })
            }
            Some(m) => {
                m.received_at = m.received_at.min(s.received_at);
                m.acks.extend(s.acks.iter().cloned());
            }
        }
    }
    meta.unwrap_or_default()
}

fn accept<R: Resource>(
    buf: &mut SignalBuffer<R>,
    limits: Limits,
    resources: Vec<R>,
    items: usize,
    meta: BatchMeta,
    now: Instant,
    out: &mut Vec<Batch>,
) -> u64 {
    let immediate = limits.timeout.is_zero();
    let size_reached = limits.size > 0 && buf.items + items >= limits.size;
    if buf.is_empty() && (immediate || size_reached) && (limits.max == 0 || items <= limits.max) {
        // Nothing to merge with and nothing to split: pass it on untouched.
        out.push(Batch {
            payload: R::into_payload(resources),
            meta,
        });
        return 1;
    }
    buf.push(resources, items, meta, now);
    if immediate {
        buf.emit(limits.max, 0, out)
    } else if size_reached {
        buf.emit(limits.max, limits.size, out)
    } else {
        0
    }
}

fn expire<R: Resource>(
    buf: &mut SignalBuffer<R>,
    limits: Limits,
    now: Instant,
    out: &mut Vec<Batch>,
) -> u64 {
    match buf.oldest() {
        Some(oldest) if now.saturating_duration_since(oldest) >= limits.timeout => {
            buf.emit(limits.max, 0, out)
        }
        _ => 0,
    }
}

/// The `batch` processor of one pipeline. The [`Processor`] methods read the clock; the `*_at`
/// methods take it, so tests and benchmarks drive time themselves.
#[derive(Debug)]
pub struct BatchProcessor {
    limits: Limits,
    traces: SignalBuffer<ResourceSpans>,
    metrics: SignalBuffer<ResourceMetrics>,
    logs: SignalBuffer<ResourceLogs>,
    sent_on_size: Counter,
    sent_on_timeout: Counter,
    sent_on_shutdown: Counter,
}

impl BatchProcessor {
    /// A processor with empty buffers; counts emitted batches per trigger in `telemetry`.
    pub fn new(config: &BatchProcessorConfig, telemetry: &ComponentTelemetry) -> BatchProcessor {
        let sent = |trigger| telemetry.counter_with(SENT_BATCHES_METRIC, &[("trigger", trigger)]);
        BatchProcessor {
            limits: Limits {
                size: config.send_batch_size,
                max: config.send_batch_max_size,
                timeout: config.timeout,
            },
            traces: SignalBuffer::new(),
            metrics: SignalBuffer::new(),
            logs: SignalBuffer::new(),
            sent_on_size: sent("size"),
            sent_on_timeout: sent("timeout"),
            sent_on_shutdown: sent("shutdown"),
        }
    }

    /// Buffers `batch` as of `now`, pushing to `out` what a size trigger (or `timeout: 0s`)
    /// releases. A batch without items is dropped (its acknowledgements report done).
    pub fn process_at(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        let items = batch.item_count();
        if items == 0 {
            return;
        }
        let limits = self.limits;
        let Batch { payload, meta } = batch;
        let sent = match payload {
            Payload::Traces(r) => accept(&mut self.traces, limits, r, items, meta, now, out),
            Payload::Metrics(r) => accept(&mut self.metrics, limits, r, items, meta, now, out),
            Payload::Logs(r) => accept(&mut self.logs, limits, r, items, meta, now, out),
        };
        self.sent_on_size.add(sent);
    }

    /// Emits every buffer whose oldest item is at least `timeout` old at `now`.
    pub fn on_tick_at(&mut self, now: Instant, out: &mut Vec<Batch>) {
        if self.limits.timeout.is_zero() {
            return;
        }
        let limits = self.limits;
        let sent = expire(&mut self.traces, limits, now, out)
            + expire(&mut self.metrics, limits, now, out)
            + expire(&mut self.logs, limits, now, out);
        self.sent_on_timeout.add(sent);
    }

    /// Emits everything buffered.
    pub fn flush_all(&mut self, out: &mut Vec<Batch>) {
        let max = self.limits.max;
        let sent = self.traces.emit(max, 0, out)
            + self.metrics.emit(max, 0, out)
            + self.logs.emit(max, 0, out);
        self.sent_on_shutdown.add(sent);
    }

    /// Items buffered for `signal`.
    pub fn buffered_items(&self, signal: Signal) -> usize {
        match signal {
            Signal::Traces => self.traces.items,
            Signal::Metrics => self.metrics.items,
            Signal::Logs => self.logs.items,
        }
    }
}

/// The runtime's clock: tokio's, so a paused test clock also drives the timeout.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Processor for BatchProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), ProcessError> {
        self.process_at(batch, now(), out);
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        (!self.limits.timeout.is_zero()).then_some(self.limits.timeout)
    }

    fn on_tick(&mut self, out: &mut Vec<Batch>) {
        self.on_tick_at(now(), out);
    }

    fn flush(&mut self, out: &mut Vec<Batch>) {
        self.flush_all(out);
    }
}
