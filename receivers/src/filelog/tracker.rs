//! Acknowledgement bookkeeping shared between the read loop and the ack callbacks: per tailed
//! file the batches in flight (in read order) and the acknowledged offset, which advances only
//! over a prefix of batches that all ended `Done`. A `Failed` batch rewinds the file to its
//! acknowledged offset (a replay), so nothing unacknowledged is skipped.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_pipeline::telemetry::Counter;
use sluice_pipeline::AckOutcome;

use super::checkpoint::{fnv1a, CheckpointStore, FilelogCheckpoint};

/// A file's identity on its filesystem: (device, inode).
pub type FileKey = (u64, u64);

/// One batch in flight: its sequence number, the offset acknowledging it allows, and whether it
/// is done.
#[derive(Debug)]
struct InFlight {
    seq: u64,
    end: u64,
    done: bool,
}

/// The acknowledgement state of one tailed file.
#[derive(Debug)]
pub struct Progress {
    pub key: FileKey,
    pub path: PathBuf,
    pub fingerprint_len: u64,
    pub fingerprint: u64,
    /// Bumped on every rewind; acks of older generations are ignored.
    pub generation: u64,
    pub acked: u64,
    /// The reader let go of the file; forgotten once nothing is in flight.
    pub closed: bool,
    inflight: VecDeque<InFlight>,
}

impl Progress {
    /// Progress of a file starting at `offset` with first bytes `prefix`.
    pub fn new(key: FileKey, path: PathBuf, prefix: &[u8], offset: u64) -> Progress {
        Progress {
            key,
            path,
            fingerprint_len: prefix.len() as u64,
            fingerprint: fnv1a(prefix),
            generation: 0,
            acked: offset,
            closed: false,
            inflight: VecDeque::new(),
        }
    }

    /// Records the file's first bytes now.
    pub fn set_prefix(&mut self, prefix: &[u8]) {
        self.fingerprint_len = prefix.len() as u64;
        self.fingerprint = fnv1a(prefix);
    }

    /// Starts over at `offset` (a truncation): what is in flight no longer counts.
    pub fn restart(&mut self, offset: u64) {
        self.generation += 1;
        self.inflight.clear();
        self.acked = offset;
    }
}

/// The shared state; see the module docs.
#[derive(Debug)]
pub struct Tracker {
    files: HashMap<u64, Progress>,
    next_slot: u64,
    next_seq: u64,
    dirty: bool,
    stopped: bool,
    rewinds: Vec<u64>,
    store: CheckpointStore,
    replays: Counter,
    checkpoint_errors: Counter,
}

/// A handle on the [`Tracker`].
pub type SharedTracker = Arc<Mutex<Tracker>>;

/// Locks the tracker (a panic elsewhere does not stop bookkeeping).
pub fn lock(t: &SharedTracker) -> MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    /// An empty tracker persisting to `store`.
    pub fn new(store: CheckpointStore, replays: Counter, checkpoint_errors: Counter) -> Tracker {
        Tracker {
            files: HashMap::new(),
            next_slot: 0,
            next_seq: 0,
            dirty: false,
            stopped: false,
            rewinds: Vec::new(),
            store,
            replays,
            checkpoint_errors,
        }
    }

    /// Registers a file; returns its slot.
    pub fn add(&mut self, progress: Progress) -> u64 {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.files.insert(slot, progress);
        self.dirty = true;
        slot
    }

    /// The progress of `slot`.
    pub fn get_mut(&mut self, slot: u64) -> Option<&mut Progress> {
        self.dirty = true;
        self.files.get_mut(&slot)
    }

    /// Records a batch of `slot` whose acknowledgement allows offset `end`; returns its
    /// (generation, sequence number).
    pub fn send(&mut self, slot: u64, end: u64) -> (u64, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let generation = match self.files.get_mut(&slot) {
            Some(p) => {
                p.inflight.push_back(InFlight {
                    seq,
                    end,
                    done: false,
                });
                p.generation
            }
            None => 0,
        };
        (generation, seq)
    }

    /// The outcome of a batch (called from its ack callback).
    pub fn complete(&mut self, slot: u64, generation: u64, seq: u64, outcome: AckOutcome) {
        let Some(p) = self.files.get_mut(&slot) else {
            return;
        };
        if p.generation != generation {
            return;
        }
        match outcome {
            AckOutcome::Done => {
                if let Some(f) = p.inflight.iter_mut().find(|f| f.seq == seq) {
                    f.done = true;
                }
                while p.inflight.front().is_some_and(|f| f.done) {
                    if let Some(f) = p.inflight.pop_front() {
                        p.acked = p.acked.max(f.end);
                        self.dirty = true;
                    }
                }
            }
            AckOutcome::Failed => {
                p.generation += 1;
                p.inflight.clear();
                self.replays.add(1);
                tracing::warn!(
                    path = %p.path.display(),
                    offset = p.acked,
                    "Log records were not delivered; reading the file again from its last acknowledged offset."
                );
                if !p.closed {
                    self.rewinds.push(slot);
                }
            }
        }
        if p.closed && p.inflight.is_empty() {
            self.files.remove(&slot);
            self.dirty = true;
        }
        if self.stopped {
            self.persist();
        }
    }

    /// The slots to rewind to their acknowledged offset, and the offsets.
    pub fn take_rewinds(&mut self) -> Vec<(u64, u64)> {
        let slots = std::mem::take(&mut self.rewinds);
        slots
            .into_iter()
            .filter_map(|s| self.files.get(&s).map(|p| (s, p.acked)))
            .collect()
    }

    /// The reader let go of `slot`.
    pub fn close(&mut self, slot: u64) {
        if let Some(p) = self.files.get_mut(&slot) {
            p.closed = true;
            if p.inflight.is_empty() {
                self.files.remove(&slot);
            }
        }
        self.dirty = true;
    }

    /// From now on every acknowledgement persists at once (the read loop has ended).
    pub fn stop(&mut self) {
        self.stopped = true;
        self.persist();
    }

    /// The checkpoints to persist.
    pub fn checkpoints(&self) -> Vec<FilelogCheckpoint> {
        let mut v: Vec<_> = self
            .files
            .values()
            .map(|p| FilelogCheckpoint {
                path: p.path.clone(),
                dev: p.key.0,
                ino: p.key.1,
                fingerprint_len: p.fingerprint_len,
                fingerprint: p.fingerprint,
                offset: p.acked,
            })
            .collect();
        v.sort_by_key(|c| (c.dev, c.ino));
        v
    }

    /// Writes the checkpoints if they changed; a failure is logged, counted and retried later.
    pub fn persist(&mut self) {
        if !self.dirty {
            return;
        }
        match self.store.save(&self.checkpoints()) {
            Ok(()) => self.dirty = false,
            Err(error) => {
                self.checkpoint_errors.add(1);
                tracing::warn!(path = %self.store.path().display(), %error, "Cannot write the filelog checkpoints; will retry.");
            }
        }
    }
}
