//! What can go wrong while reading procfs. None of it stops a scrape: the scraper skips the
//! file, line or process, logs at debug level and counts it in
//! `sluice_receiver_procfs_scrape_errors`.

use std::io;
use std::path::PathBuf;

/// One thing a scrape had to skip.
#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    /// A file could not be read (a process that exited, a permission denied).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file was read but its content is not what the kernel writes there.
    #[error("malformed {}: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
    /// `statvfs` of a mount point failed.
    #[error("cannot statvfs {}: {source}", path.display())]
    Statvfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A `Result` of this receiver.
pub type Result<T, E = ProcfsError> = std::result::Result<T, E>;

/// Counts and logs (at debug level) what a scrape skipped; the scraper adds the count to
/// `sluice_receiver_procfs_scrape_errors` once per scrape.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    /// Things skipped so far in this scrape.
    pub count: u64,
}

impl ErrorLog {
    /// Records one skipped file, process or mount.
    pub(crate) fn skip(&mut self, error: ProcfsError) {
        self.count += 1;
        tracing::debug!(error = %error, "Skipped procfs data.");
    }

    /// Records `lines` malformed lines skipped in `path`.
    pub(crate) fn malformed_lines(&mut self, path: &std::path::Path, lines: usize) {
        if lines == 0 {
            return;
        }
        self.count += lines as u64 - 1;
        self.skip(ProcfsError::Malformed {
            path: path.to_path_buf(),
            what: format!("skipped {lines} malformed line(s)"),
        });
    }
}
