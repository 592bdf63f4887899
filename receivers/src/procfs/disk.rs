//! Block device I/O from `/proc/diskstats`, and byte rates between scrapes.
//!
//! Whole devices only: partitions (a name that is another listed device's name plus digits,
//! optionally after a `p`: `sda1`, `nvme0n1p2`, `mmcblk0p1`) would count their I/O twice, and
//! `loop*`, `ram*` and `zram*` devices are memory or files, not disks.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sluice_proto::metrics::v1::Metric;

use sluice_pipeline::otlp::kv_str;

use super::config::matches_any;
use super::otlp::{rate, MetricBuilder, Timestamps};

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's real sector size.
const SECTOR_BYTES: u64 = 512;

/// One device's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DiskStats {
    pub name: String,
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
    /// Milliseconds the device had I/O in flight.
    pub io_time_ms: u64,
}

/// Parses `/proc/diskstats` (`major minor name` and at least 11 counters) into `out`; returns
/// how many lines were malformed.
pub(crate) fn parse_diskstats(text: &str, out: &mut Vec<DiskStats>) -> usize {
    out.clear();
    let mut malformed = 0;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_major), Some(_minor), Some(name)) =
            (fields.next(), fields.next(), fields.next())
        else {
            if !line.trim().is_empty() {
                malformed += 1;
            }
            continue;
        };
        let mut v = [0u64; 10];
        let mut n = 0;
        for (slot, field) in v.iter_mut().zip(fields) {
            match field.parse() {
                Ok(x) => *slot = x,
                Err(_) => break,
            }
            n += 1;
        }
        if n < 10 {
            malformed += 1;
            continue;
        }
        out.push(DiskStats {
            name: name.to_string(),
            reads: v[0],
            read_bytes: v[2].saturating_mul(SECTOR_BYTES),
            writes: v[4],
            write_bytes: v[6].saturating_mul(SECTOR_BYTES),
            io_time_ms: v[9],
        });
    }
    malformed
}

/// Whether `name` is a partition of another device in `names`: that name plus digits, or plus
/// `p` and digits.
fn is_partition(name: &str, names: &HashSet<&str>) -> bool {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() == name.len() {
        return false;
    }
    names.contains(base) || base.strip_suffix('p').is_some_and(|b| names.contains(b))
}

/// Whether a device is reported: a whole, real disk not excluded by the user.
fn is_reported(name: &str, names: &HashSet<&str>, exclude: &[String]) -> bool {
    !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p))
        && !is_partition(name, names)
        && !matches_any(exclude, name)
}

/// The devices of `all` that are reported.
pub(crate) fn reported<'a>(all: &'a [DiskStats], exclude: &[String]) -> Vec<&'a DiskStats> {
    let names: HashSet<&str> = all.iter().map(|d| d.name.as_str()).collect();
    all.iter()
        .filter(|d| is_reported(&d.name, &names, exclude))
        .collect()
}

/// The disk scraper's memory between scrapes: bytes read and written per device.
#[derive(Debug, Default)]
pub(crate) struct DiskState {
    /// Where the scraper parses this scrape's `/proc/diskstats`.
    pub cur: Vec<DiskStats>,
    prev: HashMap<String, [u64; 2]>,
    spare: HashMap<String, [u64; 2]>,
}

impl DiskState {
    /// Appends `system.disk.io`, `system.disk.operations`, `system.disk.io_time` and (from the
    /// second scrape on) `system.disk.io.rate` for the reported devices of `self.cur`.
    pub(crate) fn record(
        &mut self,
        exclude: &[String],
        elapsed: Duration,
        ts: &Timestamps,
        out: &mut Vec<Metric>,
    ) {
        let mut io = MetricBuilder::counter(
            "system.disk.io",
            "By",
            "Bytes read from and written to each disk.",
            ts,
        );
        let mut operations = MetricBuilder::counter(
            "system.disk.operations",
            "{operation}",
            "Read and write operations completed per disk.",
            ts,
        );
        let mut io_time = MetricBuilder::counter(
            "system.disk.io_time",
            "s",
            "Time each disk had I/O in flight.",
            ts,
        );
        let mut io_rate = MetricBuilder::gauge(
            "system.disk.io.rate",
            "By/s",
            "Bytes per second read and written per disk since the previous scrape.",
            ts,
        );
        let mut seen = std::mem::take(&mut self.spare);
        seen.clear();
        for d in reported(&self.cur, exclude) {
            let attrs = |direction: &str| {
                vec![
                    kv_str("system.device", d.name.as_str()),
                    kv_str("disk.io.direction", direction),
                ]
            };
            io.int(d.read_bytes, attrs("read"));
            io.int(d.write_bytes, attrs("write"));
            operations.int(d.reads, attrs("read"));
            operations.int(d.writes, attrs("write"));
            io_time.double(
                d.io_time_ms as f64 / 1000.0,
                vec![kv_str("system.device", d.name.as_str())],
            );
            if let Some([read, written]) = self.prev.get(&d.name) {
                if let Some(r) = rate(*read, d.read_bytes, elapsed) {
                    io_rate.double(r, attrs("read"));
                }
                if let Some(r) = rate(*written, d.write_bytes, elapsed) {
                    io_rate.double(r, attrs("write"));
                }
            }
            seen.insert(d.name.clone(), [d.read_bytes, d.write_bytes]);
        }
        io.finish(out);
        operations.finish(out);
        io_time.finish(out);
        io_rate.finish(out);
        self.spare = std::mem::replace(&mut self.prev, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_keeps_whole_disks() {
        let text = "   7       0 loop0 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
             254       0 vda 6829 3401 2047754 6731 1517 16565 1947432 12167 0 4864 19723\n\
             254       1 vda1 10 0 20 0 1 0 8 0 0 4 4\n\
             259       0 nvme0n1 1 0 2 0 3 0 4 0 0 5 5 0 0 0 0 0 0\n\
             259       1 nvme0n1p2 1 0 2 0 3 0 4 0 0 5 5\n\
               9       0 md0 1 0 2 0 3 0 4 0 0 5 5\n\
               8       0 sdb 1 x 2\n";
        let mut v = Vec::new();
        assert_eq!(parse_diskstats(text, &mut v), 1);
        assert_eq!(v[1].read_bytes, 2_047_754 * 512);
        assert_eq!(v[1].write_bytes, 1_947_432 * 512);
        assert_eq!(
            (v[1].reads, v[1].writes, v[1].io_time_ms),
            (6829, 1517, 4864)
        );
        let kept: Vec<&str> = reported(&v, &["md*".to_string()])
            .into_iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(kept, vec!["vda", "nvme0n1"]);
    }
}
