//! The collector process: a re-exec of the `sluice` binary (`sluice ci collect`) in its own
//! process group (so a Ctrl-C at the terminal or a signal to the step's process group does not
//! reach it), stdin null, stdout and stderr appended to `collector.log`. `sluice ci start`
//! leaves it running and records its pid and start time in `state.json`; `sluice ci report`
//! sends it SIGTERM and waits, with a bound, for its `done` file.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::CiError;
use super::state::{
    now_unix_nano, CollectorState, StateDir, DONE_FILE, FAILED_FILE, LOG_FILE, READY_FILE,
    STATE_DIR_ENV,
};

/// How often a wait looks at the state directory.
const POLL: Duration = Duration::from_millis(20);
/// How long the collector may take to exit after writing `done`.
const EXIT_AFTER_DONE: Duration = Duration::from_secs(5);

/// Starts the collector and records it in `state.json`. The caller keeps the [`Child`] (to reap
/// it) or drops it (detached: it outlives the caller).
pub fn spawn_collector(
    state: &StateDir,
    configs: &[PathBuf],
    log_level: Option<&str>,
    env: &[(&str, String)],
) -> Result<(Child, CollectorState), CiError> {
    let exe = std::env::current_exe()
        .map_err(|e| CiError::Collector(format!("cannot find the sluice binary: {e}")))?;
    let log_path = state.path(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| CiError::io("cannot open the collector log", &log_path, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| CiError::io("cannot open the collector log", &log_path, e))?;
    let mut cmd = Command::new(exe);
    for c in configs {
        // The collector runs in the state directory: relative paths are resolved here.
        cmd.arg("--config")
            .arg(std::path::absolute(c).unwrap_or_else(|_| c.clone()));
    }
    if let Some(l) = log_level {
        cmd.arg("--log-level").arg(l);
    }
    cmd.arg("ci")
        .arg("collect")
        .arg("--state-dir")
        .arg(state.root())
        .env(STATE_DIR_ENV, state.root())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .current_dir(state.root())
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| CiError::Collector(format!("cannot start the collector: {e}")))?;
    let pid = i32::try_from(child.id())
        .map_err(|_| CiError::Collector(format!("pid {} out of range", child.id())))?;
    let info = CollectorState {
        pid,
        proc_start_ticks: proc_stat(pid).map(|s| s.start_ticks).unwrap_or(0),
        started_unix_nano: now_unix_nano(),
    };
    state.write_state(&info)?;
    Ok((child, info))
}

/// Waits until the collector wrote `ready` (its pipeline runs), or failed, or exited, bounded
/// by `bound`.
pub fn wait_ready(state: &StateDir, child: &mut Child, bound: Duration) -> Result<(), CiError> {
    let deadline = Instant::now() + bound;
    loop {
        if state.has(READY_FILE) {
            return Ok(());
        }
        if state.has(FAILED_FILE) {
            let why = std::fs::read_to_string(state.path(FAILED_FILE)).unwrap_or_default();
            return Err(CiError::Collector(format!(
                "its pipeline did not start: {}",
                why.trim()
            )));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CiError::Collector(format!(
                "it exited ({status}) before its pipeline ran; see {}",
                state.path(LOG_FILE).display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(CiError::Collector(format!(
                "not ready after {}s; see {}",
                bound.as_secs(),
                state.path(LOG_FILE).display()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// How stopping the collector went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It flushed and wrote `done`.
    Done,
    /// It was no longer running, without a `done` file (crashed or killed); the report is
    /// whatever it last flushed.
    WasGone,
    /// It did not finish within the bound and was killed.
    Killed,
}

/// Sends SIGTERM to the collector recorded in `info` (only if that pid is still the same
/// process) and waits for its `done` file or its end, bounded by `bound`; past it, SIGKILL.
pub fn stop_collector(
    state: &StateDir,
    info: &CollectorState,
    bound: Duration,
) -> Result<Stopped, CiError> {
    if state.has(DONE_FILE) {
        return Ok(Stopped::Done);
    }
    let Some(pid) = rustix::process::Pid::from_raw(info.pid) else {
        return Err(CiError::State {
            path: state.path(super::state::STATE_FILE),
            message: format!("invalid pid {}", info.pid),
        });
    };
    if !is_same_live_process(info) {
        return Ok(Stopped::WasGone);
    }
    if let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
        if !is_same_live_process(info) {
            return Ok(Stopped::WasGone);
        }
        return Err(CiError::Collector(format!(
            "cannot signal pid {}: {e}",
            info.pid
        )));
    }
    let deadline = Instant::now() + bound;
    loop {
        if state.has(DONE_FILE) {
            // Its report is flushed; it only has to exit (bounded: `done` is its last act).
            let exit_deadline = deadline.min(Instant::now() + EXIT_AFTER_DONE);
            while is_same_live_process(info) && Instant::now() < exit_deadline {
                std::thread::sleep(POLL);
            }
            return Ok(Stopped::Done);
        }
        if !is_same_live_process(info) {
            // It may have written `done` just before exiting.
            return Ok(if state.has(DONE_FILE) {
                Stopped::Done
            } else {
                Stopped::WasGone
            });
        }
        if Instant::now() >= deadline {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            return Ok(Stopped::Killed);
        }
        std::thread::sleep(POLL);
    }
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z` (zombie: exited, not yet reaped), …
    pub state: char,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_proc_stat(&text)
}

/// Parses a `/proc/<pid>/stat` line (the command name in parentheses may hold spaces and
/// parentheses, so fields are counted after the last `)`).
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let start_ticks = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_ticks })
}

/// Whether the process recorded in `info` still runs (same pid and start time, not a zombie).
pub fn is_same_live_process(info: &CollectorState) -> bool {
    match proc_stat(info.pid) {
        None => false,
        Some(s) => {
            s.state != 'Z'
                && s.state != 'X'
                && (info.proc_start_ticks == 0 || s.start_ticks == info.proc_start_ticks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_odd_command_names() {
        let line =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10";
        let s = parse_proc_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_ticks, 987654);
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not_the_same() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let me = proc_stat(pid).unwrap();
        let info = CollectorState {
            pid,
            proc_start_ticks: me.start_ticks,
            started_unix_nano: 0,
        };
        assert!(is_same_live_process(&info));
        let other = CollectorState {
            proc_start_ticks: me.start_ticks + 1,
            ..info
        };
        assert!(!is_same_live_process(&other));
    }
}
