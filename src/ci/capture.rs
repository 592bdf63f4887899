//! The records `sluice ci` writes for the pipeline (the contract with the `summary` exporter):
//! one JSON object per captured output line in `output.jsonl`, one per step start and end in
//! `steps.jsonl`. Each record is written with a single `write` on a file opened for appending,
//! so concurrent steps never interleave parts of lines, and the `filelog` receivers never see
//! half a record.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use super::error::CiError;
use super::state::{StateDir, OUTPUT_FILE, STEPS_FILE};

/// The longest captured line, in bytes; a longer one is captured as several records (the
/// passthrough is not affected).
pub const MAX_LINE: usize = 64 * 1024;

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
/// error kept (reported once by the caller); it never stops the command.
pub struct Capture {
    output: Mutex<File>,
    steps: Mutex<File>,
    failed_writes: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Capture {
    /// Opens (creating if needed) the two record files of `state` for appending.
    pub fn open(state: &StateDir) -> Result<Capture, CiError> {
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
            failed_writes: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    /// Appends encoded output records (whole JSON lines, see [`encode_output_line`]; `count`
    /// of them) in one write.
    pub fn output_lines(&self, encoded: &[u8], count: u64) {
        self.write(&self.output, encoded, count);
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
            self.failed_writes.fetch_add(records, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }
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
}
