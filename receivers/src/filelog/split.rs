//! Cutting a byte stream into records: lines, lines joined by a multi-line start pattern, and
//! records longer than `max_log_size` split. Tracks the file offset up to which every byte
//! belongs to an emitted record: the offset a checkpoint may advance to.

use regex::bytes::Regex;

/// One record cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Its bytes, without the line terminator.
    pub bytes: Vec<u8>,
    /// Whether it is a piece of a record longer than `max_log_size`.
    pub split: bool,
    /// The file offset a checkpoint may advance to once this record and all before it are
    /// delivered: the start of the first byte not in an emitted record.
    pub end: u64,
}

/// Cuts records from the bytes of one file, fed in chunks.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// Index in `buf` of the first byte not yet looked at for a line end.
    pos: usize,
    /// The pending multi-line record: its start and the end of its last line, in `buf`.
    pending: Option<(usize, usize)>,
    start: Option<Regex>,
    max: usize,
}

impl Splitter {
    /// A splitter starting at file offset `offset`.
    pub fn new(offset: u64, start: Option<Regex>, max: usize) -> Splitter {
        Splitter {
            buf: Vec::new(),
            base: offset,
            pos: 0,
            pending: None,
            start,
            max: max.max(1),
        }
    }

    /// Forgets buffered bytes and restarts at `offset` (a replay, a truncation).
    pub fn reset(&mut self, offset: u64) {
        self.buf.clear();
        self.base = offset;
        self.pos = 0;
        self.pending = None;
    }

    /// The offset up to which every byte belongs to an emitted record.
    pub fn consumed(&self) -> u64 {
        self.base + self.keep_from() as u64
    }

    /// Bytes held that are not yet in an emitted record.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.keep_from()
    }

    fn keep_from(&self) -> usize {
        self.pending.map(|(s, _)| s).unwrap_or(self.pos)
    }

    /// Adds bytes read from the file and appends the records they complete to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<RawRecord>) {
        self.buf.extend_from_slice(data);
        loop {
            let before = out.len();
            match self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (ls, le) = (self.pos, self.pos + i);
                    self.pos = le + 1;
                    let le = if le > ls && self.buf[le - 1] == b'\r' {
                        le - 1
                    } else {
                        le
                    };
                    self.line(ls, le, out);
                    self.set_ends(&mut out[before..]);
                }
                None => {
                    // An unterminated line already longer than a record may be: cut a piece.
                    if self.buf.len() - self.pos > self.max {
                        self.emit_pending(out);
                        let end = char_boundary(&self.buf, self.pos, self.pos + self.max);
                        out.push(RawRecord {
                            bytes: self.buf[self.pos..end].to_vec(),
                            split: true,
                            end: 0,
                        });
                        self.pos = end;
                        self.set_ends(&mut out[before..]);
                        continue;
                    }
                    break;
                }
            }
        }
        self.compact();
    }

    /// Emits what is held: a pending multi-line record and an unterminated last line (called
    /// when the file stopped growing, or is closed).
    pub fn flush(&mut self, out: &mut Vec<RawRecord>) {
        let before = out.len();
        if self.pos < self.buf.len() {
            let (ls, le) = (self.pos, self.buf.len());
            self.pos = le;
            self.line(ls, le, out);
        }
        self.emit_pending(out);
        self.set_ends(&mut out[before..]);
        self.compact();
    }

    fn set_ends(&self, records: &mut [RawRecord]) {
        let end = self.consumed();
        for r in records {
            r.end = end;
        }
    }

    /// Whether anything is held.
    pub fn has_pending(&self) -> bool {
        self.buffered() > 0
    }

    fn line(&mut self, ls: usize, le: usize, out: &mut Vec<RawRecord>) {
        let Some(start) = &self.start else {
            self.emit_range(ls, le, out);
            return;
        };
        let is_start = start.is_match(&self.buf[ls..le]);
        if le - ls > self.max {
            self.emit_pending(out);
            self.emit_range(ls, le, out);
            return;
        }
        match self.pending {
            Some((ps, _)) if !is_start && le - ps <= self.max => self.pending = Some((ps, le)),
            Some(_) => {
                let split = !is_start;
                self.emit_pending(out);
                if split {
                    // Too long with this line: the record so far is a piece of a longer one.
                    if let Some(last) = out.last_mut() {
                        last.split = true;
                    }
                }
                self.pending = Some((ls, le));
            }
            None if is_start => self.pending = Some((ls, le)),
            None => self.emit_range(ls, le, out),
        }
    }

    fn emit_pending(&mut self, out: &mut Vec<RawRecord>) {
        if let Some((s, e)) = self.pending.take() {
            out.push(RawRecord {
                bytes: self.buf[s..e].to_vec(),
                split: false,
                end: 0,
            });
        }
    }

    fn emit_range(&self, ls: usize, le: usize, out: &mut Vec<RawRecord>) {
        if le - ls <= self.max {
            out.push(RawRecord {
                bytes: self.buf[ls..le].to_vec(),
                split: false,
                end: 0,
            });
            return;
        }
        let mut s = ls;
        while s < le {
            let e = char_boundary(&self.buf, s, (s + self.max).min(le));
            out.push(RawRecord {
                bytes: self.buf[s..e].to_vec(),
                split: true,
                end: 0,
            });
            s = e;
        }
    }

    fn compact(&mut self) {
        let k = self.keep_from();
        if k == 0 {
            return;
        }
        self.buf.drain(..k);
        self.base += k as u64;
        self.pos -= k;
        if let Some((s, e)) = &mut self.pending {
            *s -= k;
            *e -= k;
        }
    }
}

/// `end`, moved back (not past `start + 1`) so it does not cut a UTF-8 sequence.
fn char_boundary(buf: &[u8], start: usize, end: usize) -> usize {
    let mut e = end;
    while e > start + 1 && e < buf.len() && (buf[e] & 0xC0) == 0x80 && end - e < 3 {
        e -= 1;
    }
    if e < buf.len() && (buf[e] & 0xC0) == 0x80 {
        end
    } else {
        e
    }
}
