//! The records `sluice ci` writes for the pipeline (the contract with the `summary` exporter):
//! one JSON object per captured output line in `output.jsonl`, one per step start and end in
//! `steps.jsonl`. Each record is written with a single `write` on a file opened for appending,
//! so concurrent steps never interleave parts of lines, and the `filelog` receivers never see
//! half a record.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use super::error::CiError;
use super::state::{StateDir, OUTPUT_FILE, STEPS_FILE};

/// The longest captured line, in bytes; a longer one is captured as several records (the
/// passthrough is not affected).
pub const MAX_LINE: usize = 64 * 1024;

/// The default cap of `output.jsonl` (`--max-output-bytes`): 256 MiB of JSON lines.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Parses a byte size: a number of bytes, or one with a `KiB`, `MiB` or `GiB` suffix
/// (`256MiB`).
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a byte size (e.g. 1048576, 512KiB, 256MiB, 1GiB)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}` (B, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Which stream a line came from (`log.iostream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A line's severity as the summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// Classifies a line: GitHub workflow commands (`::error`, `::warning`) first, then the words
/// compilers, test runners and loggers use (`error:`, `error[E…]`, `ERROR`, `panicked at`,
/// `FAILED`, `fatal:`; `warning`, `WARN`). Everything else is `INFO`, whichever stream.
pub fn classify(line: &str) -> Severity {
    let t = line.trim_start();
    if t.starts_with("::error") {
        return Severity::Error;
    }
    if t.starts_with("::warning") {
        return Severity::Warn;
    }
    let lower = t.to_ascii_lowercase();
    let error = lower.starts_with("error")
        || lower.starts_with("fatal:")
        || lower.contains(" error:")
        || lower.contains("panicked at")
        || t.contains("ERROR")
        || t.contains("FAILED")
        || t.contains("FATAL");
    if error {
        return Severity::Error;
    }
    if lower.starts_with("warning") || lower.contains("warning:") || t.contains("WARN") {
        return Severity::Warn;
    }
    Severity::Info
}

/// Removes ANSI escape sequences (colours, cursor moves) from captured text; the passthrough
/// keeps them.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: ESC [ parameters… final byte in @..~
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: ESC ] … BEL or ESC \
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    out
}

/// Splits a byte stream into lines (`\n`, a trailing `\r` dropped), holding at most
/// [`MAX_LINE`] bytes of an unfinished line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `chunk`, calling `emit` for each complete line (or [`MAX_LINE`]-sized piece).
    pub fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..i]);
            self.emit_pending(emit);
            rest = &rest[i + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            let piece: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            emit(&piece);
        }
    }

    /// At end of stream: emits an unfinished last line, if any.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.pending.is_empty() {
            self.emit_pending(emit);
        }
    }

    fn emit_pending(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        emit(&self.pending);
        self.pending.clear();
    }
}

/// How a step ended, for its end record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepEnd {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub exit_code: i32,
}

/// Where a step record comes from (`sluice.ci.step.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepSource {
    Sluice,
    GithubApi,
}

impl StepSource {
    pub fn as_str(self) -> &'static str {
        match self {
            StepSource::Sluice => "sluice",
            StepSource::GithubApi => "github_api",
        }
    }
}

/// The step start record.
pub fn step_start_record(name: &str, start_unix_nano: u64) -> Value {
    json!({
        "body": format!("Step {name} started"),
        "sluice.ci.step": "start",
        "cicd.pipeline.task.name": name,
        "sluice.ci.step.start_unix_nano": start_unix_nano,
    })
}

/// The step end record.
pub fn step_end_record(name: &str, end: StepEnd, source: StepSource) -> Value {
    json!({
        "body": format!("Step {name} finished with exit code {}", end.exit_code),
        "sluice.ci.step": "end",
        "cicd.pipeline.task.name": name,
        "sluice.ci.step.start_unix_nano": end.start_unix_nano,
        "sluice.ci.step.end_unix_nano": end.end_unix_nano,
        "sluice.ci.step.exit_code": end.exit_code,
        "sluice.ci.step.source": source.as_str(),
    })
}

/// The record of one output line.
#[derive(Debug, Serialize)]
pub struct OutputRecord<'a> {
    pub body: &'a str,
    #[serde(rename = "log.iostream")]
    pub iostream: &'static str,
    #[serde(rename = "cicd.pipeline.task.name")]
    pub task: &'a str,
    pub severity: &'static str,
}

/// Appends the JSON line of one output line (ANSI sequences removed, invalid UTF-8 replaced,
/// severity classified) to `out`.
pub fn encode_output_line(raw: &[u8], stream: Stream, step: &str, out: &mut Vec<u8>) {
    let text = strip_ansi(&String::from_utf8_lossy(raw));
    let record = OutputRecord {
        body: &text,
        iostream: stream.as_str(),
        task: step,
        severity: classify(&text).as_str(),
    };
    // Serializing strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &record);
    out.push(b'\n');
}

/// Appends records to `output.jsonl` and `steps.jsonl`. A failed write is counted and its first
/// error kept (reported once by the caller); it never stops the command. `output.jsonl` is
/// capped: once it holds `max_output_bytes` (whichever steps wrote them), further output lines
/// are only counted ([`Capture::uncaptured`]); they still pass through to the terminal.
pub struct Capture {
    output: Mutex<File>,
    steps: Mutex<File>,
    max_output_bytes: u64,
    output_full: AtomicBool,
    uncaptured: AtomicU64,
    failed_writes: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Capture {
    /// Opens (creating if needed) the two record files of `state` for appending; `output.jsonl`
    /// grows to `max_output_bytes` at most.
    pub fn open(state: &StateDir, max_output_bytes: u64) -> Result<Capture, CiError> {
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| CiError::io("cannot open for appending", p, e))
        };
        Ok(Capture {
            output: Mutex::new(open(&state.path(OUTPUT_FILE))?),
            steps: Mutex::new(open(&state.path(STEPS_FILE))?),
            max_output_bytes,
            output_full: AtomicBool::new(false),
            uncaptured: AtomicU64::new(0),
            failed_writes: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    /// Whether output lines are still captured (`output.jsonl` is below its cap); when not,
    /// the caller only counts them with [`Capture::not_captured`].
    pub fn accepting_output(&self) -> bool {
        !self.output_full.load(Ordering::Relaxed)
    }

    /// Counts `count` output lines that were not captured.
    pub fn not_captured(&self, count: u64) {
        self.uncaptured.fetch_add(count, Ordering::Relaxed);
    }

    /// Output lines not captured because `output.jsonl` reached its cap.
    pub fn uncaptured(&self) -> u64 {
        self.uncaptured.load(Ordering::Relaxed)
    }

    /// The cap of `output.jsonl`, in bytes.
    pub fn max_output_bytes(&self) -> u64 {
        self.max_output_bytes
    }

    /// Appends encoded output records (whole JSON lines, see [`encode_output_line`]; `count`
    /// of them) in one write: as many whole lines as fit under the cap (the file's size is
    /// read under the lock, so steps of other processes count too); the rest are counted as
    /// not captured.
    pub fn output_lines(&self, encoded: &[u8], count: u64) {
        if encoded.is_empty() {
            return;
        }
        if !self.accepting_output() {
            self.not_captured(count);
            return;
        }
        let result = match self.output.lock() {
            Ok(mut f) => f.metadata().and_then(|m| {
                let room = self.max_output_bytes.saturating_sub(m.len());
                let fit = fitting_lines(encoded, room);
                if fit < encoded.len() {
                    self.output_full.store(true, Ordering::Relaxed);
                    let kept = lines_in(&encoded[..fit]);
                    self.not_captured(count.saturating_sub(kept));
                }
                if fit > 0 {
                    f.write_all(&encoded[..fit])
                } else {
                    Ok(())
                }
            }),
            Err(_) => Err(std::io::Error::other("capture file lock poisoned")),
        };
        if let Err(e) = result {
            self.failed(count, &e);
        }
    }

    /// Appends a step record.
    pub fn step(&self, record: &Value) {
        self.append(&self.steps, record);
    }

    /// Records not written, and the first reason.
    pub fn failures(&self) -> (u64, Option<String>) {
        let n = self.failed_writes.load(Ordering::Relaxed);
        let first = self.first_error.lock().ok().and_then(|g| g.clone());
        (n, first)
    }

    fn append(&self, file: &Mutex<File>, record: &Value) {
        let mut line = record.to_string();
        line.push('\n');
        self.write(file, line.as_bytes(), 1);
    }

    fn write(&self, file: &Mutex<File>, bytes: &[u8], records: u64) {
        if bytes.is_empty() {
            return;
        }
        let result = match file.lock() {
            Ok(mut f) => f.write_all(bytes),
            Err(_) => Err(std::io::Error::other("capture file lock poisoned")),
        };
        if let Err(e) = result {
            self.failed(records, &e);
        }
    }

    fn failed(&self, records: u64, e: &std::io::Error) {
        self.failed_writes.fetch_add(records, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            if first.is_none() {
                *first = Some(e.to_string());
            }
        }
    }
}

/// The length of the longest prefix of `encoded` (JSON lines) made of whole lines and at most
/// `room` bytes long.
fn fitting_lines(encoded: &[u8], room: u64) -> usize {
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if encoded.len() <= room {
        return encoded.len();
    }
    encoded[..room]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1)
}

fn lines_in(encoded: &[u8]) -> u64 {
    encoded.iter().filter(|b| **b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_workflow_commands_compiler_and_test_output() {
        assert_eq!(classify("::error file=a.rs::boom"), Severity::Error);
        assert_eq!(classify("::warning::careful"), Severity::Warn);
        assert_eq!(classify("error[E0308]: mismatched types"), Severity::Error);
        assert_eq!(
            classify("thread 'main' panicked at src/x.rs:1:1:"),
            Severity::Error
        );
        assert_eq!(classify("test a::b ... FAILED"), Severity::Error);
        assert_eq!(classify("2024-01-01 ERROR db down"), Severity::Error);
        assert_eq!(classify("warning: unused variable"), Severity::Warn);
        assert_eq!(classify("[WARN] slow"), Severity::Warn);
        assert_eq!(classify("   Compiling sluice v0.1.0"), Severity::Info);
        assert_eq!(classify("no errors found"), Severity::Info);
    }

    #[test]
    fn strips_colours_and_titles_but_keeps_text() {
        assert_eq!(strip_ansi("\u{1b}[1;31merror\u{1b}[0m: x"), "error: x");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}ok"), "ok");
        assert_eq!(strip_ansi("plain ✓"), "plain ✓");
    }

    #[test]
    fn splits_lines_across_chunks_drops_cr_and_caps_long_lines() {
        let mut s = LineSplitter::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        s.feed(b"ab", &mut |l| out.push(l.to_vec()));
        s.feed(b"c\r\nd\n\ne", &mut |l| out.push(l.to_vec()));
        s.finish(&mut |l| out.push(l.to_vec()));
        assert_eq!(
            out,
            vec![b"abc".to_vec(), b"d".to_vec(), b"".to_vec(), b"e".to_vec()]
        );
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE * 2 + 3];
        s.feed(&long, &mut |l| out.push(l.len()));
        s.finish(&mut |l| out.push(l.len()));
        assert_eq!(out, vec![MAX_LINE, MAX_LINE, 3]);
    }

    #[test]
    fn records_follow_the_contract() {
        let r = step_end_record(
            "build",
            StepEnd {
                start_unix_nano: 1,
                end_unix_nano: 2,
                exit_code: 3,
            },
            StepSource::GithubApi,
        );
        assert_eq!(r["body"], "Step build finished with exit code 3");
        assert_eq!(r["sluice.ci.step"], "end");
        assert_eq!(r["sluice.ci.step.exit_code"], 3);
        assert_eq!(r["sluice.ci.step.source"], "github_api");
        let mut buf = Vec::new();
        encode_output_line(
            b"\x1b[31merror: x\x1b[0m",
            Stream::Stderr,
            "build",
            &mut buf,
        );
        encode_output_line(b"ok \xff", Stream::Stdout, "build", &mut buf);
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["body"], "ok \u{fffd}");
        let o = &lines[0];
        assert_eq!(o["body"], "error: x");
        assert_eq!(o["log.iostream"], "stderr");
        assert_eq!(o["severity"], "ERROR");
        assert_eq!(o["cicd.pipeline.task.name"], "build");
        let s = step_start_record("a:b", 5);
        assert_eq!(s["sluice.ci.step.start_unix_nano"], 5);
        assert_eq!(s["body"], "Step a:b started");
    }

    #[test]
    fn output_stops_at_the_cap_in_whole_lines_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.prepare().unwrap();
        let encode = |lines: std::ops::Range<u32>| {
            let mut buf = Vec::new();
            for i in lines {
                encode_output_line(
                    format!("line {i}").as_bytes(),
                    Stream::Stdout,
                    "s",
                    &mut buf,
                );
            }
            buf
        };
        let one = encode(0..1).len() as u64;
        // Room for 2.5 lines: two are captured, the chunk's other three counted.
        let cap = one * 5 / 2;
        let c = Capture::open(&state, cap).unwrap();
        c.output_lines(&encode(0..5), 5);
        assert!(!c.accepting_output());
        c.output_lines(&encode(5..7), 2);
        assert_eq!(c.uncaptured(), 5);
        let written = std::fs::read_to_string(state.path(OUTPUT_FILE)).unwrap();
        assert_eq!(written.len() as u64, one * 2);
        assert!(written.ends_with('\n') && written.lines().count() == 2);
        // Another step (a process of its own) finds the file at its cap already.
        let next = Capture::open(&state, cap).unwrap();
        next.output_lines(&encode(7..8), 1);
        assert_eq!(next.uncaptured(), 1);
        assert_eq!(next.failures().0, 0);
        // Below the cap nothing is lost.
        let roomy = Capture::open(&state, u64::MAX).unwrap();
        roomy.output_lines(&encode(8..9), 1);
        assert_eq!(roomy.uncaptured(), 0);
        assert_eq!(
            std::fs::read_to_string(state.path(OUTPUT_FILE))
                .unwrap()
                .lines()
                .count(),
            3
        );
    }

    #[test]
    fn byte_sizes_take_binary_units() {
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("256MiB"), Ok(DEFAULT_MAX_OUTPUT_BYTES));
        assert_eq!(parse_byte_size("2 KiB"), Ok(2048));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert!(parse_byte_size("1MB").is_err());
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("99999999999999GiB").is_err());
    }
}
