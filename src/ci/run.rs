//! Running the command of a step: its stdout and stderr are copied to sluice's own, byte for
//! byte and as they come (no line buffering), and split into lines for the capture; SIGINT and
//! SIGTERM sent to sluice are forwarded to it (except a SIGINT from the terminal, which the
//! command, in sluice's process group, got already); its exit status becomes sluice's (128 + N
//! when a signal N killed it, 127 when it cannot be found, 126 when it cannot be run).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sluice_pipeline::runtime::shutdown::{StopSignal, StopSignals};
use tokio::io::{stderr, stdout, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::capture::{encode_output_line, Capture, LineSplitter, Stream};

/// How long the output of a finished command is still read: a background process it left
/// running may hold its pipes open forever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

/// Exit code when the command does not exist (as shells use).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code when the command cannot be run (as shells use).
pub const EXIT_CANNOT_RUN: i32 = 126;

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit code sluice passes on.
    pub exit_code: i32,
    /// What to tell the user (spawn failures, forwarded signals, output not fully read).
    pub notes: Vec<String>,
}

/// The exit code a shell would report for `status`.
pub fn exit_code_of(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

/// Runs `argv` (program and arguments) to its end. Output is captured under `step` when
/// `capture` is given.
pub async fn run_command(argv: &[OsString], step: &str, capture: Option<Arc<Capture>>) -> Finished {
    let mut notes = Vec::new();
    let Some((program, args)) = argv.split_first() else {
        return Finished {
            exit_code: EXIT_NOT_FOUND,
            notes: vec!["no command given".to_string()],
        };
    };
    // Listen before spawning, so a signal in between is not lost (nor kills sluice).
    let mut signals = match StopSignals::install() {
        Ok(s) => Some(s),
        Err(e) => {
            notes.push(format!(
                "cannot listen for SIGINT/SIGTERM, so none is forwarded: {e}"
            ));
            None
        }
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_RUN
            };
            return Finished {
                exit_code: code,
                notes: vec![format!("cannot run `{}`: {e}", program.to_string_lossy())],
            };
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(spawn_pump(out, stdout(), Stream::Stdout, step, &capture));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(spawn_pump(err, stderr(), Stream::Stderr, step, &capture));
    }
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = recv(&mut signals) => match signal {
                StopSignal::Interrupt if terminal_sends_sigint_to_us() => {
                    // A Ctrl-C: the terminal sent it to the whole foreground group, the command
                    // included; forwarding would deliver it twice.
                    notes.push("SIGINT from the terminal reached the command directly".to_string());
                }
                StopSignal::Interrupt => forward(pid, rustix::process::Signal::INT, "SIGINT", &mut notes),
                StopSignal::Terminate => forward(pid, rustix::process::Signal::TERM, "SIGTERM", &mut notes),
            },
        }
    };
    let exit_code = match status {
        Ok(s) => exit_code_of(s),
        Err(e) => {
            notes.push(format!("cannot wait for the command: {e}"));
            1
        }
    };
    let drained = tokio::time::timeout(DRAIN_AFTER_EXIT, async {
        for p in &mut pumps {
            let _ = p.await;
        }
    })
    .await;
    if drained.is_err() {
        for p in &pumps {
            p.abort();
        }
        notes.push(format!(
            "the command exited but its output was still open after {}s (a background process \
             holds it); stopped reading it",
            DRAIN_AFTER_EXIT.as_secs()
        ));
    }
    Finished { exit_code, notes }
}

/// Runs `argv` without capture or signal forwarding, its output inherited: the fallback when
/// no async runtime could be started, so the command still runs and its code still comes out.
pub fn run_plain(argv: &[OsString]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        return EXIT_NOT_FOUND;
    };
    match std::process::Command::new(program).args(args).status() {
        Ok(s) => exit_code_of(s),
        Err(e) => {
            eprintln!("sluice: cannot run `{}`: {e}", program.to_string_lossy());
            if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_RUN
            }
        }
    }
}

async fn recv(s: &mut Option<StopSignals>) -> StopSignal {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether sluice's process group is the foreground group of its terminal: then a SIGINT most
/// likely is a Ctrl-C, which the terminal sent to the command (same group) as well.
fn terminal_sends_sigint_to_us() -> bool {
    let fg = rustix::termios::tcgetpgrp(std::io::stdin())
        .or_else(|_| rustix::termios::tcgetpgrp(std::io::stderr()));
    fg.is_ok_and(|p| p == rustix::process::getpgrp())
}

fn forward(pid: Option<i32>, sig: rustix::process::Signal, name: &str, notes: &mut Vec<String>) {
    let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    match rustix::process::kill_process(pid, sig) {
        Ok(()) => notes.push(format!("forwarded {name} to the command")),
        Err(e) => notes.push(format!("cannot forward {name} to the command: {e}")),
    }
}

/// Runs [`pump`] as a task of its own.
fn spawn_pump<R, W>(
    from: R,
    to: W,
    stream: Stream,
    step: &str,
    capture: &Option<Arc<Capture>>,
) -> tokio::task::JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(pump(from, to, stream, step.to_string(), capture.clone()))
}

/// Copies `from` to `to` chunk by chunk (flushing each), and feeds the capture.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    stream: Stream,
    step: String,
    capture: Option<Arc<Capture>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut splitter = LineSplitter::default();
    let mut encoded = Vec::new();
    let mut passthrough_ok = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        // A closed terminal must not stop the command: keep reading (and capturing) so it never
        // blocks on a full pipe.
        if passthrough_ok {
            passthrough_ok = to.write_all(chunk).await.is_ok() && to.flush().await.is_ok();
        }
        if let Some(c) = &capture {
            capture_lines(
                c,
                &mut encoded,
                |emit| splitter.feed(chunk, emit),
                stream,
                &step,
            );
        }
    }
    if let Some(c) = &capture {
        capture_lines(c, &mut encoded, |emit| splitter.finish(emit), stream, &step);
    }
}

/// Captures the lines `split` emits in one write, or, once the capture is at its cap, only
/// counts them (without encoding them).
fn capture_lines(
    capture: &Capture,
    encoded: &mut Vec<u8>,
    split: impl FnOnce(&mut dyn FnMut(&[u8])),
    stream: Stream,
    step: &str,
) {
    let mut n = 0u64;
    if capture.accepting_output() {
        split(&mut |line| {
            encode_output_line(line, stream, step, encoded);
            n += 1;
        });
        capture.output_lines(encoded, n);
        encoded.clear();
    } else {
        split(&mut |_| n += 1);
        capture.not_captured(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code_of(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code_of(ExitStatus::from_raw(0)), 0);
        // Killed by SIGKILL (9).
        assert_eq!(exit_code_of(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn the_plain_fallback_keeps_exit_codes() {
        assert_eq!(run_plain(&["sh".into(), "-c".into(), "exit 4".into()]), 4);
        assert_eq!(
            run_plain(&["/nonexistent/sluice-test-prog".into()]),
            EXIT_NOT_FOUND
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_127_with_a_note() {
        let f = run_command(&["/nonexistent/sluice-test-prog".into()], "s", None).await;
        assert_eq!(f.exit_code, EXIT_NOT_FOUND);
        assert!(f.notes[0].contains("cannot run"), "{:?}", f.notes);
    }
}
