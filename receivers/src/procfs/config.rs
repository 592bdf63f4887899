//! The `procfs` receiver's configuration. Option names follow the Collector's `hostmetrics`
//! receiver where it has one (`collection_interval`, `root_path`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

/// Configuration of the `procfs` receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcfsReceiverConfig {
    /// How often to scrape, as a duration string (`1s`, `500ms`). Rates and utilizations are
    /// computed over the real time between two scrapes. Default `10s`; must be above zero.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub collection_interval: Duration,
    /// The root of the filesystem to observe: procfs is read at `<root_path>/proc`, and each mount
    /// point is measured at `<root_path><mount point>` (e.g. `/hostfs` when the host's root is
    /// mounted into a container). Default `/`.
    pub root_path: PathBuf,
    /// Report `system.cpu.time` and `system.cpu.utilization` per logical CPU (attribute
    /// `cpu.logical_number`) instead of for the whole machine. Default `false`.
    pub per_cpu: bool,
    /// How many processes to report from each ranking, by CPU use since the previous scrape and
    /// by resident memory; a process in either top list is reported once. `0` reports none.
    /// Default `10`.
    pub top_processes: usize,
    /// Which areas to scrape; all on by default.
    pub scrapers: ProcfsScrapers,
    /// Network interfaces not to report: exact names, or a prefix ending in `*` (`veth*`).
    /// Default none.
    pub exclude_interfaces: Vec<String>,
    /// Block devices (disk I/O) and filesystem devices (filesystem usage) not to report: exact
    /// names as `/proc/diskstats` and `/proc/mounts` write them (`sdb`, `/dev/sdb1`), or a prefix
    /// ending in `*`. Default none.
    pub exclude_devices: Vec<String>,
    /// Mount points not to report (`/boot/efi`, `/var/lib/docker/*`): exact paths or a prefix
    /// ending in `*`. Default none.
    pub exclude_mount_points: Vec<String>,
}

impl Default for ProcfsReceiverConfig {
    fn default() -> Self {
        ProcfsReceiverConfig {
            collection_interval: Duration::from_secs(10),
            root_path: PathBuf::from("/"),
            per_cpu: false,
            top_processes: 10,
            scrapers: ProcfsScrapers::default(),
            exclude_interfaces: Vec::new(),
            exclude_devices: Vec::new(),
            exclude_mount_points: Vec::new(),
        }
    }
}

/// Which areas the receiver scrapes. Each is `true` unless set to `false`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcfsScrapers {
    /// CPU time and utilization, from `/proc/stat`. Default `true`.
    pub cpu: bool,
    /// Memory and swap, from `/proc/meminfo`. Default `true`.
    pub memory: bool,
    /// Load average, from `/proc/loadavg`. Default `true`.
    pub load: bool,
    /// Network bytes, packets and errors per interface, from `/proc/net/dev`. Default `true`.
    pub network: bool,
    /// Disk bytes and operations per whole device, from `/proc/diskstats`. Default `true`.
    pub disk: bool,
    /// Used, free and reserved bytes per mounted filesystem, from `/proc/mounts` and `statvfs`.
    /// Default `true`.
    pub filesystem: bool,
    /// The top processes (see `top_processes`), from `/proc/<pid>`. Default `true`.
    pub processes: bool,
}

impl Default for ProcfsScrapers {
    fn default() -> Self {
        ProcfsScrapers {
            cpu: true,
            memory: true,
            load: true,
            network: true,
            disk: true,
            filesystem: true,
            processes: true,
        }
    }
}

/// Whether `name` matches one of `patterns`: an exact name, or a prefix followed by `*`.
pub(crate) fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

fn validate_patterns(key: &str, patterns: &[String]) -> Result<(), ValidationError> {
    for (i, p) in patterns.iter().enumerate() {
        let body = p.strip_suffix('*').unwrap_or(p);
        if p.is_empty() || body.contains('*') {
            return Err(ValidationError::new(
                format!("{key}::{i}"),
                format!("expected a name, or a prefix ending in `*`, found `{p}`"),
            ));
        }
    }
    Ok(())
}

impl Validate for ProcfsReceiverConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.collection_interval.is_zero() {
            return Err(ValidationError::new(
                "collection_interval",
                "expected a duration above zero, like `10s`",
            ));
        }
        if self.root_path.as_os_str().is_empty() {
            return Err(ValidationError::new(
                "root_path",
                "expected a directory, like `/` or `/hostfs`",
            ));
        }
        validate_patterns("exclude_interfaces", &self.exclude_interfaces)?;
        validate_patterns("exclude_devices", &self.exclude_devices)?;
        validate_patterns("exclude_mount_points", &self.exclude_mount_points)
    }
}
