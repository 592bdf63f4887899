//! Checkpoints: per file identity (device, inode, and a hash of its first bytes) the offset up
//! to which every record was acknowledged. Persisted as JSON in `<storage>/checkpoints.json`,
//! atomically (a temporary file, fsync, rename), so a kill at any moment leaves the old or the
//! new file, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file identify it (with its device and inode).
pub const FINGERPRINT_SIZE: usize = 1024;

/// The name of the checkpoint file in the storage directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.json";

/// The acknowledged position in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilelogCheckpoint {
    /// The path the file had when last seen (informational).
    pub path: PathBuf,
    /// Its device number.
    pub dev: u64,
    /// Its inode number.
    pub ino: u64,
    /// How many leading bytes the fingerprint covers (at most [`FINGERPRINT_SIZE`]).
    pub fingerprint_len: u64,
    /// FNV-1a 64 hash of those bytes.
    pub fingerprint: u64,
    /// Every record before this byte offset was acknowledged.
    pub offset: u64,
}

impl FilelogCheckpoint {
    /// Whether `prefix` (the file's first bytes now) is the file this checkpoint is about.
    pub fn matches_prefix(&self, prefix: &[u8]) -> bool {
        let n = self.fingerprint_len as usize;
        prefix.len() >= n && fnv1a(&prefix[..n]) == self.fingerprint
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    files: Vec<FilelogCheckpoint>,
}

/// FNV-1a, 64 bit: stable across builds and platforms, unlike `std`'s hasher.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The checkpoint file of one receiver.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    path: PathBuf,
}

impl CheckpointStore {
    /// The store in directory `dir`.
    pub fn new(dir: &Path) -> CheckpointStore {
        CheckpointStore {
            path: dir.join(CHECKPOINT_FILE),
        }
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored checkpoints; none when the file does not exist.
    pub fn load(&self) -> io::Result<Vec<FilelogCheckpoint>> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let file: CheckpointFile = serde_json::from_slice(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(file.files)
    }

    /// Replaces the stored checkpoints, atomically.
    pub fn save(&self, files: &[FilelogCheckpoint]) -> io::Result<()> {
        let body = serde_json::to_vec_pretty(&CheckpointFile {
            version: 1,
            files: files.to_vec(),
        })
        .map_err(io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)
    }
}
