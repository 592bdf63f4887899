//! The running receiver: every `poll_interval` it expands the globs, follows renames (same
//! device and inode), detects truncation (copytruncate) by size and by the file's first bytes,
//! adopts a rotated copy at the offset read so far, reads what each file gained in bounded
//! chunks, and sends one batch per chunk with an acknowledgement that advances the checkpoint.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use regex::bytes::Regex;
use sluice_pipeline::factory::{Receiver, ReceiverRunContext};
use sluice_pipeline::otlp::{now_nanos, resource, scope};
use sluice_pipeline::runtime::fanout::Output;
use sluice_pipeline::telemetry::Counter;
use sluice_pipeline::{Ack, Batch, Payload, ReceiverError, Signal};
use sluice_proto::common::v1::KeyValue;
use sluice_proto::logs::v1::{ResourceLogs, ScopeLogs};

use super::checkpoint::{CheckpointStore, FilelogCheckpoint, FINGERPRINT_SIZE};
use super::config::{FilelogReceiverConfig, StartAt};
use super::glob::Pattern;
use super::parse::{file_attributes, RecordParser};
use super::split::{RawRecord, Splitter};
use super::tracker::{lock, FileKey, Progress, SharedTracker, Tracker};

/// Bytes read from a file at once: the most one batch carries (plus a held partial record).
pub const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read from one file per poll before the next file gets its turn.
const CHUNKS_PER_FILE_PER_POLL: usize = 16;
/// Polls of the final read at shutdown (each reads up to 16 chunks per file).
const FINAL_DRAIN_POLLS: usize = 64;

/// The counters the receiver moves.
#[derive(Debug, Clone)]
pub struct FilelogCounters {
    pub invalid_utf8: Counter,
    pub split: Counter,
    pub json_errors: Counter,
    pub read_errors: Counter,
    pub truncations: Counter,
    pub replays: Counter,
    pub checkpoint_errors: Counter,
    pub files_opened: Counter,
}

/// The `filelog` receiver, built by [`super::FilelogReceiverFactory`].
#[derive(Debug)]
pub struct FilelogReceiver {
    config: FilelogReceiverConfig,
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    line_start: Option<Regex>,
    parser: RecordParser,
    storage: PathBuf,
    counters: FilelogCounters,
}

impl FilelogReceiver {
    /// A receiver for a validated config, keeping checkpoints in `storage`.
    pub fn new(
        config: FilelogReceiverConfig,
        storage: PathBuf,
        counters: FilelogCounters,
    ) -> Result<FilelogReceiver, String> {
        let compile = |list: &[String]| -> Result<Vec<Pattern>, String> {
            list.iter().map(|p| Pattern::new(p)).collect()
        };
        let line_start = match &config.multiline {
            Some(m) => Some(Regex::new(&m.line_start_pattern).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(FilelogReceiver {
            include: compile(&config.include)?,
            exclude: compile(&config.exclude)?,
            line_start,
            parser: RecordParser::new(&config).map_err(|e| e.to_string())?,
            storage,
            counters,
            config,
        })
    }
}

/// One file being read.
struct Tailed {
    slot: u64,
    key: FileKey,
    path: PathBuf,
    file: File,
    /// The next byte to read.
    offset: u64,
    splitter: Splitter,
    /// The file's first bytes as last seen (up to [`FINGERPRINT_SIZE`]).
    prefix: Vec<u8>,
    /// Polls in a row the globs did not name it (renamed away or deleted).
    missing: u32,
    /// Polls in a row it did not grow.
    idle: u32,
    attrs: Vec<KeyValue>,
}

/// A new file not read yet: it may be a copy being made of a tailed file (copytruncate), which
/// is known only when that file is truncated.
struct Pending {
    key: FileKey,
    path: PathBuf,
    file: File,
    size: u64,
    prefix: Vec<u8>,
    /// The globs name it now.
    present: bool,
}

impl Pending {
    /// Its content so far agrees with `t`'s first bytes: it may be (a copy being made of) `t`.
    fn may_be_copy_of(&self, t: &Tailed) -> bool {
        t.prefix.starts_with(&self.prefix)
            || (!t.prefix.is_empty() && self.prefix.starts_with(&t.prefix))
    }
}

struct Loop {
    r: FilelogReceiver,
    output: Output,
    tracker: SharedTracker,
    files: Vec<Tailed>,
    checkpoints: HashMap<FileKey, FilelogCheckpoint>,
    pending: Vec<Pending>,
    first: bool,
    buf: Vec<u8>,
}

/// The send failed because the service is stopping.
struct Closed;

#[sluice_pipeline::async_trait]
impl Receiver for FilelogReceiver {
    async fn run(self: Box<Self>, ctx: ReceiverRunContext) -> Result<(), ReceiverError> {
        let Some(output) = ctx.outputs.get(Signal::Logs).cloned() else {
            tracing::warn!("No logs pipeline lists this receiver; it will not read files.");
            ctx.shutdown.cancelled().await;
            return Ok(());
        };
        let store = CheckpointStore::new(&self.storage);
        let checkpoints = match store.load() {
            Ok(v) => v,
            Err(error) => {
                self.counters.checkpoint_errors.add(1);
                tracing::warn!(path = %store.path().display(), %error, "Cannot read the filelog checkpoints; starting without them.");
                Vec::new()
            }
        };
        let tracker = Arc::new(Mutex::new(Tracker::new(
            store,
            self.counters.replays.clone(),
            self.counters.checkpoint_errors.clone(),
        )));
        let interval = self.config.poll_interval;
        let mut l = Loop {
            r: *self,
            output,
            tracker: tracker.clone(),
            files: Vec::new(),
            checkpoints: checkpoints
                .into_iter()
                .map(|c| ((c.dev, c.ino), c))
                .collect(),
            pending: Vec::new(),
            first: true,
            buf: vec![0; READ_CHUNK],
        };
        let stopping = loop {
            if ctx.shutdown.is_cancelled() {
                break true;
            }
            let busy = match l.poll().await {
                Ok(busy) => busy,
                Err(Closed) => break false,
            };
            lock(&tracker).persist();
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break true,
                _ = tokio::time::sleep(interval) => {}
            }
        };
        if stopping {
            // What was written just before shutdown is read now, not left for the next start
            // (a `sluice ci` run ends with its command's last lines); the runtime's shutdown
            // deadline bounds this.
            if l.drain().await.is_err() {
                tracing::debug!("The pipeline closed during the final read of the tailed files.");
            }
            lock(&tracker).persist();
        }
        // Batches still in the pipeline persist their acknowledgement when it comes.
        lock(&tracker).stop();
        Ok(())
    }
}

impl Loop {
    /// One poll; `Ok(true)` when a file has more to read at once.
    async fn poll(&mut self) -> Result<bool, Closed> {
        for (slot, offset) in lock(&self.tracker).take_rewinds() {
            if let Some(t) = self.files.iter_mut().find(|t| t.slot == slot) {
                t.offset = offset;
                t.splitter.reset(offset);
            }
        }
        // Truncation is checked before the globs are expanded: a copy made before a truncation
        // this check sees is then always found by the scan below, in this same poll.
        let mut truncated = Vec::new();
        for (i, t) in self.files.iter_mut().enumerate() {
            let size = match t.file.metadata() {
                Ok(m) => m.len(),
                Err(error) => {
                    self.r.counters.read_errors.add(1);
                    tracing::warn!(path = %t.path.display(), %error, "Cannot stat a tailed file.");
                    continue;
                }
            };
            let prefix = read_prefix(&t.file, size);
            if size < t.offset || !prefix.starts_with(&t.prefix) {
                truncated.push(i);
            } else if prefix.len() > t.prefix.len() {
                if let Some(p) = lock(&self.tracker).get_mut(t.slot) {
                    p.set_prefix(&prefix);
                }
                t.prefix = prefix;
            }
        }
        let seen = self.scan();
        for t in &mut self.files {
            match seen.get(&t.key) {
                Some(path) => {
                    t.missing = 0;
                    if *path != t.path {
                        tracing::info!(from = %t.path.display(), to = %path.display(), "Following a renamed file.");
                        t.path = path.clone();
                        t.attrs = file_attributes(
                            path,
                            self.r.config.include_file_name,
                            self.r.config.include_file_path,
                        );
                        if let Some(p) = lock(&self.tracker).get_mut(t.slot) {
                            p.path = path.clone();
                        }
                    }
                }
                None => t.missing += 1,
            }
        }
        // Files not read yet, and files new in this poll: each may be the copy of a file
        // being copy-truncated, so none is read before that is known.
        for p in &mut self.pending {
            p.present = seen.contains_key(&p.key);
            if let Some(path) = seen.get(&p.key) {
                p.path = path.clone();
            }
            p.size = p.file.metadata().map(|m| m.len()).unwrap_or(0);
            p.prefix = read_prefix(&p.file, p.size);
        }
        let mut new_keys: Vec<(&FileKey, &PathBuf)> = seen
            .iter()
            .filter(|(k, _)| {
                !self.files.iter().any(|t| t.key == **k)
                    && !self.pending.iter().any(|p| p.key == **k)
            })
            .collect();
        new_keys.sort_by(|a, b| a.1.cmp(b.1));
        for (key, path) in new_keys {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(error) => {
                    self.r.counters.read_errors.add(1);
                    tracing::warn!(path = %path.display(), %error, "Cannot open a file to tail.");
                    continue;
                }
            };
            self.r.counters.files_opened.add(1);
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let prefix = read_prefix(&file, size);
            self.pending.push(Pending {
                key: *key,
                path: path.clone(),
                file,
                size,
                prefix,
                present: true,
            });
        }
        // copytruncate: a truncated file's copy carries on where the original was, with its
        // acknowledgement state; the original starts over.
        let mut adopted = HashSet::new();
        let mut added = Vec::new();
        for &i in &truncated {
            let orig = &self.files[i];
            let Some(j) = self
                .pending
                .iter()
                .position(|p| !p.prefix.is_empty() && p.may_be_copy_of(orig))
            else {
                continue;
            };
            let copy = self.pending.swap_remove(j);
            adopted.insert(i);
            let orig = &mut self.files[i];
            tracing::info!(original = %orig.path.display(), copy = %copy.path.display(), offset = orig.offset, "Following a copy-truncated file into its copy.");
            if let Some(p) = lock(&self.tracker).get_mut(orig.slot) {
                p.key = copy.key;
                p.path = copy.path.clone();
                p.set_prefix(&copy.prefix);
            }
            let orig_file = std::mem::replace(&mut orig.file, copy.file);
            let orig_key = std::mem::replace(&mut orig.key, copy.key);
            let orig_path = std::mem::replace(&mut orig.path, copy.path.clone());
            orig.prefix = copy.prefix;
            orig.missing = 0;
            orig.attrs = file_attributes(
                &copy.path,
                self.r.config.include_file_name,
                self.r.config.include_file_path,
            );
            let size = orig_file.metadata().map(|m| m.len()).unwrap_or(0);
            let fresh = read_prefix(&orig_file, size);
            // Tailed from now on (not at the end of the poll): a copy of its new content, made
            // since this poll began, must wait for its next truncation like any other copy.
            let restarted = self.tailed(orig_key, orig_path, orig_file, fresh, 0);
            self.files.push(restarted);
        }
        for i in truncated {
            if adopted.contains(&i) {
                continue;
            }
            let t = &mut self.files[i];
            self.r.counters.truncations.add(1);
            tracing::warn!(path = %t.path.display(), offset = t.offset, "File was truncated; reading it again from its start. Lines written between the last read and the truncation are lost unless the rotated copy is included.");
            let size = t.file.metadata().map(|m| m.len()).unwrap_or(0);
            t.prefix = read_prefix(&t.file, size);
            t.offset = 0;
            t.splitter.reset(0);
            if let Some(p) = lock(&self.tracker).get_mut(t.slot) {
                p.restart(0);
                p.set_prefix(&t.prefix);
            }
        }
        // A file not read yet is read as a file of its own once its content disagrees with
        // every tailed file's first bytes. While it agrees, it is (a copy of) what a tailed file
        // delivers: it waits for that file's truncation, and is dropped unread if it goes away.
        let mut k = 0;
        while k < self.pending.len() {
            let p = &self.pending[k];
            let maybe_copy = self.files.iter().any(|t| p.may_be_copy_of(t));
            if maybe_copy && p.present {
                k += 1;
                continue;
            }
            let p = self.pending.swap_remove(k);
            if maybe_copy {
                tracing::debug!(path = %p.path.display(), "A copy of a tailed file went away unread.");
                continue;
            }
            let offset = match self.checkpoints.get(&p.key) {
                Some(c) if c.matches_prefix(&p.prefix) && c.offset <= p.size => c.offset,
                _ if self.first && self.r.config.start_at == StartAt::End => p.size,
                _ => 0,
            };
            tracing::info!(path = %p.path.display(), offset, "Tailing a file.");
            added.push(self.tailed(p.key, p.path, p.file, p.prefix, offset));
        }
        self.files.extend(added);
        self.first = false;
        self.checkpoints.retain(|k, _| seen.contains_key(k));

        let mut busy = false;
        let mut i = 0;
        while i < self.files.len() {
            let (more, eof) = self.read_file(i).await?;
            busy |= more;
            let t = &self.files[i];
            if eof && t.missing >= 2 && !t.splitter.has_pending() {
                tracing::info!(path = %t.path.display(), "Stopped tailing a file that is gone or renamed away.");
                lock(&self.tracker).close(t.slot);
                self.files.swap_remove(i);
                continue;
            }
            i += 1;
        }
        Ok(busy)
    }

    /// Reads every file to its end once more, and sends what the splitters hold (a last line
    /// without its newline, a multi-line record): the final read at shutdown.
    async fn drain(&mut self) -> Result<(), Closed> {
        for _ in 0..FINAL_DRAIN_POLLS {
            if !self.poll().await? {
                break;
            }
        }
        for i in 0..self.files.len() {
            let mut records = Vec::new();
            self.files[i].splitter.flush(&mut records);
            self.send(i, records).await?;
        }
        Ok(())
    }

    fn tailed(
        &mut self,
        key: FileKey,
        path: PathBuf,
        file: File,
        prefix: Vec<u8>,
        offset: u64,
    ) -> Tailed {
        let slot = lock(&self.tracker).add(Progress::new(key, path.clone(), &prefix, offset));
        Tailed {
            slot,
            key,
            attrs: file_attributes(
                &path,
                self.r.config.include_file_name,
                self.r.config.include_file_path,
            ),
            path,
            file,
            offset,
            splitter: Splitter::new(offset, self.line_start(), self.r.config.max_log_size),
            prefix,
            missing: 0,
            idle: 0,
        }
    }

    fn line_start(&self) -> Option<Regex> {
        self.r.line_start.clone()
    }

    /// The files the globs name now, by identity.
    fn scan(&self) -> HashMap<FileKey, PathBuf> {
        let mut paths = Vec::new();
        for p in &self.r.include {
            p.expand(&mut paths);
        }
        let mut seen = HashMap::new();
        for path in paths {
            if self.r.exclude.iter().any(|e| e.matches(&path)) {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) => {
                    seen.entry((m.dev(), m.ino())).or_insert(path);
                }
                Err(error) => {
                    tracing::debug!(path = %path.display(), %error, "A matched file vanished before it was opened.");
                }
            }
        }
        seen
    }

    /// Reads what file `i` gained, in chunks, sending a batch per chunk. Returns (more to read
    /// now, at end of file).
    async fn read_file(&mut self, i: usize) -> Result<(bool, bool), Closed> {
        for _ in 0..CHUNKS_PER_FILE_PER_POLL {
            let t = &mut self.files[i];
            let n = match t.file.read_at(&mut self.buf, t.offset) {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.r.counters.read_errors.add(1);
                    tracing::warn!(path = %t.path.display(), %error, "Cannot read a tailed file.");
                    return Ok((false, true));
                }
            };
            let mut records = Vec::new();
            if n == 0 {
                t.idle += 1;
                // The writer paused: what is held (an unterminated line, a multi-line record)
                // is complete as far as anyone can tell.
                if t.idle >= 2 && t.splitter.has_pending() {
                    t.splitter.flush(&mut records);
                    if !self.send(i, records).await? {
                        return Ok((false, true));
                    }
                }
                return Ok((false, true));
            }
            // A truncation between this poll's check and the read would have given bytes of
            // the file's new content: the read counts only if the first bytes are still those
            // known (otherwise the next poll sees the truncation and the copy has the data).
            if !t.prefix.is_empty()
                && !read_prefix(&t.file, FINGERPRINT_SIZE as u64).starts_with(&t.prefix)
            {
                return Ok((false, false));
            }
            // The first bytes are what truncation is recognised by: a file found empty learns
            // them from its first read.
            let known = t.prefix.len();
            if known < FINGERPRINT_SIZE && t.offset <= known as u64 {
                let skip = known - t.offset as usize;
                if n > skip {
                    let take = (n - skip).min(FINGERPRINT_SIZE - known);
                    t.prefix.extend_from_slice(&self.buf[skip..skip + take]);
                    if let Some(p) = lock(&self.tracker).get_mut(t.slot) {
                        p.set_prefix(&t.prefix);
                    }
                }
            }
            t.idle = 0;
            t.offset += n as u64;
            t.splitter.push(&self.buf[..n], &mut records);
            if !self.send(i, records).await? {
                return Ok((false, false));
            }
        }
        Ok((true, false))
    }

    /// Sends the records of file `i` in batches of at most `max_batch_size`; `Ok(false)` when
    /// the pipeline refused one (the file is rewound to its acknowledged offset).
    async fn send(&mut self, i: usize, records: Vec<RawRecord>) -> Result<bool, Closed> {
        if records.is_empty() {
            return Ok(true);
        }
        let t = &self.files[i];
        let slot = t.slot;
        for chunk in records.chunks(self.r.config.max_batch_size) {
            let observed = now_nanos();
            let mut log_records = Vec::with_capacity(chunk.len());
            for raw in chunk {
                let (rec, issues) = self.r.parser.parse(&raw.bytes, &t.attrs, observed);
                if issues.invalid_utf8 {
                    self.r.counters.invalid_utf8.add(1);
                    tracing::debug!(path = %t.path.display(), "Replaced invalid UTF-8 in a log record.");
                }
                if issues.bad_json {
                    self.r.counters.json_errors.add(1);
                    tracing::debug!(path = %t.path.display(), "A log record is not a JSON object; kept as a plain body.");
                }
                if raw.split {
                    self.r.counters.split.add(1);
                    tracing::debug!(path = %t.path.display(), max_log_size = self.r.config.max_log_size, "Split a log record longer than max_log_size.");
                }
                log_records.push(rec);
            }
            let mut batch = Batch::new(Payload::Logs(vec![ResourceLogs {
                resource: Some(resource(Vec::new())),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope("filelog")),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }]));
            let end = chunk.last().map(|r| r.end).unwrap_or(0);
            let (generation, seq) = lock(&self.tracker).send(slot, end);
            let tracker = self.tracker.clone();
            let ack = Ack::new(move |outcome| {
                lock(&tracker).complete(slot, generation, seq, outcome);
            });
            batch.meta.acks.push(ack.clone());
            match self.output.send(batch).await {
                Ok(()) => drop(ack),
                Err(error) => {
                    ack.fail();
                    drop(ack);
                    if matches!(error, sluice_pipeline::error::SendError::Closed) {
                        return Err(Closed);
                    }
                    tracing::warn!(path = %t.path.display(), %error, "Pipeline refused log records; the file will be read again from its last acknowledged offset.");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// The first bytes of `file` (up to [`FINGERPRINT_SIZE`]).
fn read_prefix(file: &File, size: u64) -> Vec<u8> {
    let want = (size as usize).min(FINGERPRINT_SIZE);
    let mut buf = vec![0; want];
    let mut got = 0;
    while got < want {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf.truncate(got);
    buf
}
