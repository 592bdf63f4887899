//! The state directory of `sluice ci`: where the captured output, the step records, the
//! collector's pid, log and checkpoints, and the report live. Nothing else is written anywhere.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::CiError;

/// The environment variable the pipeline config expands (`${env:SLUICE_CI_STATE_DIR}`); also read
/// as the default state directory by `sluice ci` subcommands.
pub const STATE_DIR_ENV: &str = "SLUICE_CI_STATE_DIR";

/// Files and folders `sluice ci` owns in the state directory; `prepare` removes exactly these.
const OWNED_FILES: &[&str] = &[
    OUTPUT_FILE,
    STEPS_FILE,
    STATE_FILE,
    READY_FILE,
    FAILED_FILE,
    DONE_FILE,
    LOG_FILE,
    UNCAPTURED_FILE,
];
const OWNED_DIRS: &[&str] = &[REPORT_DIR, DATA_DIR];

/// Captured command output, one JSON object per line (read by `filelog/output`).
pub const OUTPUT_FILE: &str = "output.jsonl";
/// Step records (read by `filelog/steps`).
pub const STEPS_FILE: &str = "steps.jsonl";
/// The running collector's identity (written by `sluice ci start`).
pub const STATE_FILE: &str = "state.json";
/// Written by the collector once its pipeline runs.
pub const READY_FILE: &str = "ready";
/// Written by the collector when its pipeline could not start (holds the error).
pub const FAILED_FILE: &str = "failed";
/// Written by the collector after its shutdown (the report is flushed by then).
pub const DONE_FILE: &str = "done";
/// The collector's stdout and stderr (its logs and the `debug` exporter).
pub const LOG_FILE: &str = "collector.log";
/// Per step, how many output lines were not captured (`--max-output-bytes`), one JSON object
/// a line, for `sluice ci report` to tell.
pub const UNCAPTURED_FILE: &str = "uncaptured.jsonl";
/// The summary exporter's `output_dir`.
pub const REPORT_DIR: &str = "report";
/// The service's `data_dir` (filelog checkpoints).
pub const DATA_DIR: &str = "data";

/// The state directory and the paths in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

/// What `sluice ci start` records about the collector it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorState {
    /// The collector's process id.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a recycled pid
    /// is never signalled.
    pub proc_start_ticks: u64,
    /// When it was started, in Unix nanoseconds.
    pub started_unix_nano: u64,
}

impl StateDir {
    /// The state directory: `explicit` (`--state-dir`), else `$SLUICE_CI_STATE_DIR`, else
    /// `$RUNNER_TEMP/sluice-ci`, else `<temp dir>/sluice-ci`.
    pub fn locate(explicit: Option<&Path>, lookup: &dyn Fn(&str) -> Option<String>) -> StateDir {
        let non_empty = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let root = if let Some(p) = explicit {
            p.to_path_buf()
        } else if let Some(p) = non_empty(STATE_DIR_ENV) {
            PathBuf::from(p)
        } else if let Some(t) = non_empty("RUNNER_TEMP") {
            PathBuf::from(t).join("sluice-ci")
        } else {
            std::env::temp_dir().join("sluice-ci")
        };
        // Absolute, so the collector (which runs in it) and later steps agree on it.
        let root = std::path::absolute(&root).unwrap_or(root);
        StateDir { root }
    }

    /// A state directory at `root`.
    #[cfg(test)]
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The report folder (`<root>/report`).
    pub fn report_dir(&self) -> PathBuf {
        self.path(REPORT_DIR)
    }

    /// Makes the directory usable for a new run: creates it, removes what an earlier run left
    /// (only the files and folders `sluice ci` owns), and creates empty `output.jsonl` and
    /// `steps.jsonl` so the collector's `filelog` receivers find them from their first poll.
    pub fn prepare(&self) -> Result<(), CiError> {
        fs::create_dir_all(&self.root)
            .map_err(|e| CiError::io("cannot create the state directory", &self.root, e))?;
        type Remove = fn(&Path) -> std::io::Result<()>;
        let owned: [(&[&str], Remove); 2] = [
            (OWNED_FILES, |p| fs::remove_file(p)),
            (OWNED_DIRS, |p| fs::remove_dir_all(p)),
        ];
        for (names, remove) in owned {
            for name in names {
                let p = self.path(name);
                match remove(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(CiError::io("cannot remove", p, e)),
                }
            }
        }
        for f in [OUTPUT_FILE, STEPS_FILE] {
            let p = self.path(f);
            fs::File::create(&p).map_err(|e| CiError::io("cannot create", p, e))?;
        }
        Ok(())
    }

    /// Writes `state.json` atomically (temp file + rename).
    pub fn write_state(&self, state: &CollectorState) -> Result<(), CiError> {
        let text = serde_json::to_string_pretty(state).map_err(|e| CiError::State {
            path: self.path(STATE_FILE),
            message: e.to_string(),
        })?;
        write_atomically(&self.path(STATE_FILE), text.as_bytes())
    }

    /// Reads `state.json`; `Ok(None)` when there is none (no collector was started).
    pub fn read_state(&self) -> Result<Option<CollectorState>, CiError> {
        let p = self.path(STATE_FILE);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CiError::io("cannot read", p, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CiError::State {
                path: p,
                message: e.to_string(),
            })
    }

    /// Appends that `lines` output lines of `step` were not captured (one write on a file
    /// opened for appending, so concurrent steps do not mix their records).
    pub fn record_uncaptured(&self, step: &str, lines: u64) -> Result<(), CiError> {
        let p = self.path(UNCAPTURED_FILE);
        let mut line = serde_json::json!({ "step": step, "lines": lines }).to_string();
        line.push('\n');
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
            .map_err(|e| CiError::io("cannot append to", p, e))
    }

    /// The steps with output lines not captured, and how many (in the order recorded; lines
    /// that are not such records are skipped).
    pub fn read_uncaptured(&self) -> Vec<(String, u64)> {
        let text = fs::read_to_string(self.path(UNCAPTURED_FILE)).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| Some((v["step"].as_str()?.to_string(), v["lines"].as_u64()?)))
            .collect()
    }

    /// Whether `<root>/<name>` exists.
    pub fn has(&self, name: &str) -> bool {
        self.path(name).exists()
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder and a rename, so a reader
/// sees the old content or the new, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CiError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    fs::write(&tmp, bytes).map_err(|e| CiError::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| CiError::io("cannot rename into", path, e))
}

/// Now, in Unix nanoseconds.
pub fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_prefers_the_flag_then_the_env_then_runner_temp() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[(STATE_DIR_ENV, "/s"), ("RUNNER_TEMP", "/r")]);
        assert_eq!(
            StateDir::locate(Some(Path::new("/flag")), &both).root(),
            Path::new("/flag")
        );
        assert_eq!(StateDir::locate(None, &both).root(), Path::new("/s"));
        let runner = env(&[(STATE_DIR_ENV, ""), ("RUNNER_TEMP", "/r")]);
        assert_eq!(
            StateDir::locate(None, &runner).root(),
            Path::new("/r/sluice-ci")
        );
        let rel = StateDir::locate(Some(Path::new("rel/st")), &both);
        assert!(rel.root().is_absolute() && rel.root().ends_with("rel/st"));
        let none = env(&[]);
        assert_eq!(
            StateDir::locate(None, &none).root(),
            std::env::temp_dir().join("sluice-ci")
        );
    }

    #[test]
    fn prepare_removes_only_what_sluice_owns_and_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().join("st"));
        s.prepare().unwrap();
        fs::write(s.path(OUTPUT_FILE), "old\n").unwrap();
        fs::write(s.path(DONE_FILE), "").unwrap();
        fs::create_dir_all(s.report_dir()).unwrap();
        fs::write(s.report_dir().join("report.md"), "old").unwrap();
        fs::write(s.path("mine.txt"), "keep").unwrap();
        s.write_state(&CollectorState {
            pid: 42,
            proc_start_ticks: 7,
            started_unix_nano: 9,
        })
        .unwrap();
        assert_eq!(s.read_state().unwrap().map(|c| c.pid), Some(42));
        s.prepare().unwrap();
        assert_eq!(fs::read(s.path(OUTPUT_FILE)).unwrap(), b"");
        assert!(s.has(STEPS_FILE));
        assert!(!s.has(DONE_FILE));
        assert!(!s.report_dir().exists());
        assert_eq!(s.read_state().unwrap(), None);
        assert_eq!(fs::read_to_string(s.path("mine.txt")).unwrap(), "keep");
    }
}
