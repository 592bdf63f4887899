//! One scrape of procfs: reads each file once and turns it into OTLP metrics (one resource for
//! the host, one per reported process). Keeps between scrapes what rates and utilizations need.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sluice_pipeline::otlp::{kv_str, unix_nanos};
use sluice_pipeline::telemetry::Counter;
use sluice_proto::common::v1::KeyValue;
use sluice_proto::metrics::v1::ResourceMetrics;

use super::config::ProcfsReceiverConfig;
use super::cpu::{parse_stat, CpuState};
use super::disk::{parse_diskstats, DiskState};
use super::error::{ErrorLog, ProcfsError, Result};
use super::memory::parse_meminfo;
use super::network::{parse_net_dev, NetworkState};
use super::otlp::{resource_metrics, Timestamps};
use super::process::{ProcessScrape, ProcessState};
use super::{filesystem, load, sys};

/// Reads `path` into `buf` (cleared first, its capacity reused).
///
/// Not `read_to_end`: that asks the file's size first (a `statx` and an `lseek` per file), and
/// procfs files all say 0, so for procfs it is two wasted system calls per file.
pub(crate) fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<()> {
    let error = |source| ProcfsError::Read {
        path: path.to_path_buf(),
        source,
    };
    buf.clear();
    let mut file = File::open(path).map_err(error)?;
    loop {
        let filled = buf.len();
        if buf.capacity() - filled < 512 {
            buf.reserve(4096.max(filled));
        }
        buf.resize(buf.capacity(), 0);
        match file.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(());
            }
            Ok(n) => buf.truncate(filled + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(filled),
            Err(e) => {
                buf.truncate(filled);
                return Err(error(e));
            }
        }
    }
}

/// Scrapes host and process metrics from a procfs tree (`<root_path>/proc`).
///
/// The first scrape reports cumulative values and current amounts; from the second on, it also
/// reports utilizations and rates over the time since the previous scrape.
#[derive(Debug)]
pub struct Scraper {
    config: ProcfsReceiverConfig,
    proc_dir: PathBuf,
    clock_ticks: u64,
    page_size: u64,
    boot_unix_nano: Option<u64>,
    last_scrape: Option<Instant>,
    buf: Vec<u8>,
    path: PathBuf,
    cpu: CpuState,
    network: NetworkState,
    disk: DiskState,
    processes: ProcessState,
    errors: Counter,
}

impl Scraper {
    /// A scraper for `config`, counting what it skips in `errors`. Fails when
    /// `<root_path>/proc/stat` cannot be read (a wrong `root_path`).
    pub fn new(config: &ProcfsReceiverConfig, errors: Counter) -> Result<Scraper> {
        let proc_dir = config.root_path.join("proc");
        let mut buf = Vec::new();
        read_file(&proc_dir.join("stat"), &mut buf)?;
        Ok(Scraper {
            config: config.clone(),
            proc_dir,
            clock_ticks: sys::clock_ticks_per_second(),
            page_size: sys::page_size(),
            boot_unix_nano: None,
            last_scrape: None,
            buf,
            path: PathBuf::new(),
            cpu: CpuState::default(),
            network: NetworkState::default(),
            disk: DiskState::default(),
            processes: ProcessState::default(),
            errors,
        })
    }

    /// The same scraper with other clock-tick and page sizes (for fixture trees of another
    /// machine).
    pub fn with_units(mut self, clock_ticks: u64, page_size: u64) -> Scraper {
        self.clock_ticks = clock_ticks.max(1);
        self.page_size = page_size;
        self
    }

    /// One scrape now; rates are over the monotonic time since the previous scrape.
    pub fn scrape(&mut self) -> Vec<ResourceMetrics> {
        let now = Instant::now();
        let elapsed = self
            .last_scrape
            .map(|last| now.duration_since(last))
            .unwrap_or_default();
        self.last_scrape = Some(now);
        self.scrape_at(SystemTime::now(), elapsed)
    }

    /// One scrape stamped `now`, with rates computed over `elapsed` (the time since the previous
    /// scrape, ignored on the first).
    pub fn scrape_at(&mut self, now: SystemTime, elapsed: Duration) -> Vec<ResourceMetrics> {
        let mut errors = ErrorLog::default();
        let now_unix_nano = unix_nanos(now);
        let scrapers = self.config.scrapers.clone();

        // /proc/stat holds the boot time every cumulative sum starts at; it is read once for
        // that, and on every scrape when CPUs are scraped.
        let mut stat_ok = false;
        if (scrapers.cpu || self.boot_unix_nano.is_none()) && self.read("stat", &mut errors) {
            let bad = parse_stat(&String::from_utf8_lossy(&self.buf), &mut self.cpu.cur);
            errors.malformed_lines(&self.path, bad);
            stat_ok = self.cpu.cur.total.is_some();
            if !stat_ok {
                errors.skip(ProcfsError::Malformed {
                    path: self.path.clone(),
                    what: "no `cpu` line".to_string(),
                });
            }
            if self.boot_unix_nano.is_none() {
                self.boot_unix_nano = self.cpu.cur.btime.map(|b| b.saturating_mul(1_000_000_000));
            }
        }
        let ts = Timestamps {
            now: now_unix_nano,
            boot: self.boot_unix_nano.unwrap_or(0),
        };

        let mut metrics = Vec::with_capacity(32);
        if scrapers.cpu && stat_ok {
            self.cpu
                .record(self.config.per_cpu, self.clock_ticks, &ts, &mut metrics);
        }
        if scrapers.memory && self.read("meminfo", &mut errors) {
            let (info, bad) = parse_meminfo(&String::from_utf8_lossy(&self.buf));
            errors.malformed_lines(&self.path, bad);
            if !info.record(&ts, &mut metrics) {
                errors.skip(ProcfsError::Malformed {
                    path: self.path.clone(),
                    what: "no `MemTotal` line".to_string(),
                });
            }
        }
        if scrapers.load && self.read("loadavg", &mut errors) {
            match load::parse_loadavg(&String::from_utf8_lossy(&self.buf)) {
                Some(avg) => load::record(avg, &ts, &mut metrics),
                None => errors.skip(ProcfsError::Malformed {
                    path: self.path.clone(),
                    what: "not three load averages".to_string(),
                }),
            }
        }
        if scrapers.network && self.read("net/dev", &mut errors) {
            let bad = parse_net_dev(&String::from_utf8_lossy(&self.buf), &mut self.network.cur);
            errors.malformed_lines(&self.path, bad);
            self.network
                .record(&self.config.exclude_interfaces, elapsed, &ts, &mut metrics);
        }
        if scrapers.disk && self.read("diskstats", &mut errors) {
            let bad = parse_diskstats(&String::from_utf8_lossy(&self.buf), &mut self.disk.cur);
            errors.malformed_lines(&self.path, bad);
            self.disk
                .record(&self.config.exclude_devices, elapsed, &ts, &mut metrics);
        }
        if scrapers.filesystem {
            self.scrape_filesystems(&ts, &mut errors, &mut metrics);
        }

        let mut host = Vec::with_capacity(2);
        if self.read("sys/kernel/hostname", &mut errors) {
            let name = String::from_utf8_lossy(&self.buf);
            let name = name.trim();
            if !name.is_empty() {
                host.push(kv_str("host.name", name));
            }
        }
        host.push(kv_str("os.type", "linux"));

        let mut out = vec![resource_metrics(host.clone(), metrics)];
        if scrapers.processes && self.config.top_processes > 0 {
            self.scrape_processes(elapsed, &ts, &host, &mut errors, &mut out);
        }
        self.errors.add(errors.count);
        out
    }

    fn scrape_filesystems(
        &mut self,
        ts: &Timestamps,
        errors: &mut ErrorLog,
        metrics: &mut Vec<sluice_proto::metrics::v1::Metric>,
    ) {
        // Under another root, the mounts of that system's init, not of this process's namespace.
        let read = if self.config.root_path == Path::new("/") {
            self.read("mounts", errors)
        } else {
            self.read("1/mounts", &mut ErrorLog::default()) || self.read("mounts", errors)
        };
        if !read {
            return;
        }
        let (mounts, bad) = filesystem::parse_mounts(
            &String::from_utf8_lossy(&self.buf),
            &self.config.exclude_devices,
            &self.config.exclude_mount_points,
        );
        errors.malformed_lines(&self.path, bad);
        filesystem::record(&mounts, &self.config.root_path, ts, errors, metrics);
    }

    fn scrape_processes(
        &mut self,
        elapsed: Duration,
        ts: &Timestamps,
        host: &[KeyValue],
        errors: &mut ErrorLog,
        out: &mut Vec<ResourceMetrics>,
    ) {
        let scrape = ProcessScrape {
            proc_dir: &self.proc_dir,
            top: self.config.top_processes,
            clock_ticks: self.clock_ticks,
            page_size: self.page_size,
            elapsed,
            ts,
            host,
        };
        self.processes.record(&scrape, errors, out);
    }

    /// Reads `<proc>/<name>` into `self.buf`; false (and counted) when it cannot be read.
    /// Leaves the path in `self.path` for error messages.
    fn read(&mut self, name: &str, errors: &mut ErrorLog) -> bool {
        self.path.clear();
        self.path.push(&self.proc_dir);
        self.path.push(name);
        match read_file(&self.path, &mut self.buf) {
            Ok(()) => true,
            Err(e) => {
                errors.skip(e);
                false
            }
        }
    }
}
