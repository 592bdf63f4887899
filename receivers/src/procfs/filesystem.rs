//! Filesystem usage per mount: the mounts from `/proc/mounts`, their sizes from `statvfs` of
//! `<root_path><mount point>`.
//!
//! Pseudo and memory filesystems are skipped ([`SKIPPED_FS_TYPES`]): they have no disk behind
//! them (tmpfs is memory, reported by `system.memory.usage`), or are always full (squashfs
//! images). `overlay` is kept: it is a container's root. When several mounts share a mount point
//! only the last one (the visible one) is reported.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sluice_pipeline::otlp::kv_str;
use sluice_proto::metrics::v1::Metric;

use super::config::matches_any;
use super::error::{ErrorLog, ProcfsError};
use super::otlp::{MetricBuilder, Timestamps};
use super::sys::{self, FsSpace};

/// Filesystem types never reported.
pub const SKIPPED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// One line of `/proc/mounts`, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
}

/// Undoes the octal escapes (`\040` for a space) the kernel writes in `/proc/mounts`.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |a, b| a * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/mounts`; returns the mounts to report (see the module docs) and how many lines
/// were malformed.
pub(crate) fn parse_mounts(
    text: &str,
    exclude_devices: &[String],
    exclude_mount_points: &[String],
) -> (Vec<Mount>, usize) {
    let mut mounts = Vec::new();
    let mut malformed = 0;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type), Some(options)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            if !line.trim().is_empty() {
                malformed += 1;
            }
            continue;
        };
        if SKIPPED_FS_TYPES.contains(&fs_type) {
            continue;
        }
        let mount = Mount {
            device: unescape(device),
            mount_point: unescape(mount_point),
            fs_type: fs_type.to_string(),
            read_only: options.split(',').any(|o| o == "ro"),
        };
        if matches_any(exclude_devices, &mount.device)
            || matches_any(exclude_mount_points, &mount.mount_point)
        {
            continue;
        }
        mounts.push(mount);
    }
    // The last mount on a mount point hides the ones before it.
    let mut seen = HashSet::new();
    let mut visible: Vec<Mount> = mounts
        .into_iter()
        .rev()
        .filter(|m| seen.insert(m.mount_point.clone()))
        .collect();
    visible.reverse();
    (visible, malformed)
}

/// Where a mount point of the scraped system is on this one.
pub(crate) fn host_path(root: &Path, mount_point: &str) -> PathBuf {
    if root == Path::new("/") {
        PathBuf::from(mount_point)
    } else {
        root.join(mount_point.trim_start_matches('/'))
    }
}

/// `statvfs`es each mount and appends `system.filesystem.usage` and
/// `system.filesystem.utilization`. A mount that cannot be `statvfs`ed is skipped and counted;
/// one of size 0 is skipped silently.
pub(crate) fn record(
    mounts: &[Mount],
    root: &Path,
    ts: &Timestamps,
    errors: &mut ErrorLog,
    out: &mut Vec<Metric>,
) {
    let mut usage = MetricBuilder::up_down(
        "system.filesystem.usage",
        "By",
        "Bytes used, free (to unprivileged users) and reserved (for root) per filesystem.",
        ts,
    );
    let mut utilization = MetricBuilder::gauge(
        "system.filesystem.utilization",
        "1",
        "Fraction of the filesystem's usable space that is used, as df shows it.",
        ts,
    );
    for m in mounts {
        let path = host_path(root, &m.mount_point);
        let space = match sys::statvfs(&path) {
            Ok(s) => s,
            Err(source) => {
                errors.skip(ProcfsError::Statvfs { path, source });
                continue;
            }
        };
        if space.total == 0 {
            continue;
        }
        let FsUsage {
            used,
            free,
            reserved,
        } = FsUsage::from(space);
        let attrs = |state: Option<&str>| {
            let mut a = vec![
                kv_str("system.device", m.device.as_str()),
                kv_str("system.filesystem.mountpoint", m.mount_point.as_str()),
                kv_str("system.filesystem.type", m.fs_type.as_str()),
                kv_str(
                    "system.filesystem.mode",
                    if m.read_only { "ro" } else { "rw" },
                ),
            ];
            if let Some(s) = state {
                a.push(kv_str("system.filesystem.state", s));
            }
            a
        };
        usage.int(used, attrs(Some("used")));
        usage.int(free, attrs(Some("free")));
        usage.int(reserved, attrs(Some("reserved")));
        if used + free > 0 {
            utilization.double(used as f64 / (used + free) as f64, attrs(None));
        }
    }
    usage.finish(out);
    utilization.finish(out);
}

/// A filesystem's space split into states, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FsUsage {
    pub used: u64,
    pub free: u64,
    pub reserved: u64,
}

impl From<FsSpace> for FsUsage {
    fn from(s: FsSpace) -> FsUsage {
        FsUsage {
            used: s.total.saturating_sub(s.free_all),
            free: s.available,
            reserved: s.free_all.saturating_sub(s.available),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_pseudo_filesystems_and_shadowed_mounts() {
        let text = "proc /proc proc rw,relatime 0 0\n\
                    /dev/vda / ext4 rw,relatime 0 0\n\
                    tmpfs /dev/shm tmpfs rw 0 0\n\
                    /dev/sdb1 /mnt/my\\040disk xfs ro,noatime 0 0\n\
                    /dev/sdc1 /data ext4 rw 0 0\n\
                    /dev/sdd1 /data ext4 rw 0 0\n\
                    /dev/loop3 /snap/core squashfs ro 0 0\n\
                    short line\n";
        let (m, bad) = parse_mounts(text, &[], &[]);
        assert_eq!(bad, 1);
        let points: Vec<(&str, &str, bool)> = m
            .iter()
            .map(|m| (m.device.as_str(), m.mount_point.as_str(), m.read_only))
            .collect();
        assert_eq!(
            points,
            vec![
                ("/dev/vda", "/", false),
                ("/dev/sdb1", "/mnt/my disk", true),
                ("/dev/sdd1", "/data", false)
            ]
        );
        let (m, _) = parse_mounts(text, &["/dev/sdb*".to_string()], &["/data".to_string()]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn usage_splits_like_df() {
        let u = FsUsage::from(FsSpace {
            total: 1000,
            free_all: 300,
            available: 250,
        });
        assert_eq!((u.used, u.free, u.reserved), (700, 250, 50));
    }

    #[test]
    fn mount_points_resolve_under_the_root() {
        assert_eq!(host_path(Path::new("/"), "/boot"), PathBuf::from("/boot"));
        assert_eq!(
            host_path(Path::new("/tmp/x"), "/boot"),
            PathBuf::from("/tmp/x/boot")
        );
        assert_eq!(
            host_path(Path::new("/tmp/x"), "/"),
            PathBuf::from("/tmp/x/")
        );
    }
}
