//! `sluice ci`: host metrics, command output and step timings of a CI job, turned into a report
//! (PNG charts, Markdown appended to `$GITHUB_STEP_SUMMARY`, a self-contained `report.html`) by
//! the pipeline of the embedded `configs/github-summary.yaml` (`--config` replaces it).
//!
//! - `sluice ci [--name NAME] -- <command> [args]`: one command with the pipeline around it. Its
//!   stdout and stderr pass through byte for byte and are captured as log records (up to
//!   `--max-output-bytes`, default 256 MiB of JSON lines for the job; beyond it lines are only
//!   counted, and the report says how many were not captured); sluice exits
//!   with its exit code (128 + N when killed by signal N); SIGINT and SIGTERM are forwarded to
//!   it, and the report is still written. When a collector started by `sluice ci start` runs in
//!   the state directory, the command is recorded as one more step of it instead.
//! - `sluice ci start`: starts the collector detached (own process group, stdin null, output to
//!   `collector.log`), records its pid in `state.json`, waits until its pipeline runs.
//! - `sluice ci step --name NAME -- <command>`: runs one step as above and records its start,
//!   end and exit code.
//! - `sluice ci report [--check-run-id ID]`: optionally reads the job's step timings from the
//!   GitHub REST API (`GITHUB_TOKEN`, `GITHUB_API_URL`), stops the collector (SIGTERM), waits
//!   for its flush with a bound, and appends `report.md` from the foreground process.
//!
//! Everything is written under the state directory (`--state-dir`, else `$SLUICE_CI_STATE_DIR`,
//! else `$RUNNER_TEMP/sluice-ci`, else `<temp dir>/sluice-ci`) and to `$GITHUB_STEP_SUMMARY`.
//! Telemetry failures are printed (`sluice: …`, or as `::warning` annotations under GitHub
//! Actions) and never change the exit code. The records `sluice ci` writes (`output.jsonl`,
//! `steps.jsonl`) are the contract with the `summary` exporter; see `capture.rs`.
//!
//! ```yaml
//! # .github/workflows/ci.yml (see docs/github-actions.md)
//! steps:
//!   - uses: actions/checkout@v5
//!   - run: cargo install --path . && sluice ci start
//!   - run: sluice ci step --name build -- cargo build
//!   - if: always()
//!     run: sluice ci report
//! ```

mod capture;
mod collect;
mod detach;
mod error;
mod github_api;
mod report;
mod run;
mod state;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use capture::{
    parse_byte_size, step_end_record, step_start_record, Capture, StepEnd, StepSource,
    DEFAULT_MAX_OUTPUT_BYTES,
};
use detach::Stopped;
use state::{now_unix_nano, CollectorState, StateDir};

use crate::ConfigArgs;

/// How long `start` waits for the collector's pipeline to run, by default.
const DEFAULT_READY_TIMEOUT: &str = "30s";
/// How long `report` waits for the collector's flush, by default.
const DEFAULT_STOP_TIMEOUT: &str = "60s";

/// `sluice ci`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CiArgs {
    #[command(subcommand)]
    command: Option<CiCommand>,
    #[command(flatten)]
    run: RunArgs,
}

/// Where the state lives.
#[derive(Args, Debug, Clone, Default)]
struct StateArgs {
    /// The state directory (captured output, step records, collector pid and log, report).
    /// Default: `$SLUICE_CI_STATE_DIR`, else `$RUNNER_TEMP/sluice-ci`, else `<tmp>/sluice-ci`.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// Options of the report, passed to the collector.
#[derive(Args, Debug, Clone, Default)]
struct ReportArgs {
    /// Absolute URL the PNGs will be published under (`<URL>/cpu.png`), to show them inline
    /// in the step summary. Default: $SLUICE_CI_IMAGE_BASE_URL; none: the summary links them.
    #[arg(long, value_name = "URL")]
    image_base_url: Option<String>,
    /// Chart theme, `light` or `dark`. Default: $SLUICE_CI_THEME, else light.
    #[arg(long, value_name = "THEME")]
    theme: Option<String>,
}

impl ReportArgs {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(u) = &self.image_base_url {
            v.push((collect::IMAGE_BASE_URL_ENV, u.clone()));
        }
        if let Some(t) = &self.theme {
            v.push((collect::THEME_ENV, t.clone()));
        }
        v
    }
}

/// How much output is captured.
#[derive(Args, Debug, Clone, Copy)]
struct CaptureArgs {
    /// The cap of the captured output (`output.jsonl`, all steps together), e.g. `64MiB`.
    /// Beyond it, output lines still pass through to the terminal but are only counted; the
    /// report says how many were not captured.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_byte_size)]
    max_output_bytes: u64,
}

/// `sluice ci [--name NAME] -- <command>`.
#[derive(Args, Debug, Clone)]
struct RunArgs {
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    capture: CaptureArgs,
    /// The step's name in the report. Default: the command line.
    #[arg(long)]
    name: Option<String>,
    /// How long to wait for the collector to start, and to flush at the end.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_STOP_TIMEOUT, value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
enum CiCommand {
    /// Start the collector in the background for a job of several steps.
    Start {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        report: ReportArgs,
        /// How long to wait for its pipeline to run.
        #[arg(long, value_name = "DURATION", default_value = DEFAULT_READY_TIMEOUT, value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Run one step's command, recording its start, end, exit code and output.
    Step {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        capture: CaptureArgs,
        /// The step's name in the report.
        #[arg(long)]
        name: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Stop the collector, wait for its report and append it to $GITHUB_STEP_SUMMARY.
    Report {
        #[command(flatten)]
        state: StateArgs,
        /// The job's check run id (`${{ job.check_run_id }}`), to read its step timings from the
        /// GitHub API when GITHUB_TOKEN is set. Default: $SLUICE_CI_CHECK_RUN_ID.
        #[arg(long, value_name = "ID")]
        check_run_id: Option<u64>,
        /// How long to wait for the collector's flush.
        #[arg(long, value_name = "DURATION", default_value = DEFAULT_STOP_TIMEOUT, value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// The collector process itself (started by `start` and by `sluice ci -- …`).
    #[command(hide = true)]
    Collect {
        #[command(flatten)]
        state: StateArgs,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Prints a message of sluice's own (never mixed into the command's output lines).
fn say(msg: &str) {
    eprintln!("sluice: {msg}");
}

/// Prints a telemetry problem: a `::warning` annotation under GitHub Actions, else a line.
fn warn(msg: &str) {
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        eprintln!("::warning title=sluice::{}", msg.replace('\n', " "));
    } else {
        eprintln!("sluice: warning: {msg}");
    }
}

/// Runs `sluice ci …`.
pub fn main(args: CiArgs, configs: &ConfigArgs, log_level: Option<&str>) -> ExitCode {
    match args.command {
        None => run_single(args.run, configs, log_level),
        Some(CiCommand::Start {
            state,
            report,
            timeout,
        }) => start(&state, &report, timeout, configs, log_level),
        Some(CiCommand::Step {
            state,
            capture,
            name,
            command,
        }) => step(&state, capture, &name, &command),
        Some(CiCommand::Report {
            state,
            check_run_id,
            timeout,
        }) => report(&state, check_run_id, timeout),
        Some(CiCommand::Collect { state }) => collect::collect(&locate(&state), configs, log_level),
    }
}

fn locate(args: &StateArgs) -> StateDir {
    StateDir::locate(args.state_dir.as_deref(), &env)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            warn(&format!("cannot start the async runtime: {e}"));
            None
        }
    }
}

/// The default step name: the command line, shortened.
fn default_name(command: &[OsString]) -> String {
    let line = command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() > 60 {
        line.chars().take(59).collect::<String>() + "…"
    } else {
        line
    }
}

/// Starts the collector for a new run in `state` (stopping one still running there first).
fn start_collector(
    state: &StateDir,
    report: &ReportArgs,
    bound: Duration,
    configs: &ConfigArgs,
    log_level: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<(Child, CollectorState)> {
    if let Ok(Some(old)) = state.read_state() {
        if detach::is_same_live_process(&old) {
            problems.push(format!(
                "a collector (pid {}) was still running in {}; stopped it first",
                old.pid,
                state.root().display()
            ));
            if let Err(e) = detach::stop_collector(state, &old, bound) {
                problems.push(e.to_string());
            }
        }
    }
    if let Err(e) = state.prepare() {
        problems.push(e.to_string());
        return None;
    }
    let (mut child, info) =
        match detach::spawn_collector(state, &configs.config, log_level, &report.env()) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e.to_string());
                return None;
            }
        };
    match detach::wait_ready(state, &mut child, bound) {
        Ok(()) => Some((child, info)),
        Err(e) => {
            problems.push(e.to_string());
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// Runs one step's command with its start and end records; returns its exit code.
fn run_step(
    rt: &tokio::runtime::Runtime,
    state: &StateDir,
    capture: Option<Arc<Capture>>,
    name: &str,
    command: &[OsString],
    problems: &mut Vec<String>,
) -> i32 {
    let start_unix_nano = now_unix_nano();
    if let Some(c) = &capture {
        c.step(&step_start_record(name, start_unix_nano));
    }
    let finished = rt.block_on(run::run_command(command, name, capture.clone()));
    if let Some(c) = &capture {
        c.step(&step_end_record(
            name,
            StepEnd {
                start_unix_nano,
                end_unix_nano: now_unix_nano(),
                exit_code: finished.exit_code,
            },
            StepSource::Sluice,
        ));
        let (failed, first) = c.failures();
        if failed > 0 {
            problems.push(format!(
                "{failed} records could not be captured: {}",
                first.unwrap_or_default()
            ));
        }
        let lost = c.uncaptured();
        if lost > 0 {
            problems.push(uncaptured_note(
                &[(name.to_string(), lost)],
                Some(c.max_output_bytes()),
            ));
            // For `sluice ci report`, when this is one step of several.
            if let Err(e) = state.record_uncaptured(name, lost) {
                problems.push(e.to_string());
            }
        }
    }
    for n in finished.notes {
        say(&n);
    }
    finished.exit_code
}

/// Says that output lines of `steps` were not captured because of the cap (`max` bytes; `None`
/// when the steps ran in processes of their own).
fn uncaptured_note(steps: &[(String, u64)], max: Option<u64>) -> String {
    let total: u64 = steps.iter().map(|(_, n)| n).sum();
    let mut names: Vec<&str> = Vec::new();
    for (s, _) in steps {
        if !names.contains(&s.as_str()) {
            names.push(s);
        }
    }
    let cap = max.map_or(String::new(), |m| format!(" ({m} bytes)"));
    format!(
        "{total} output lines (of step {}) were not captured: the captured output reached \
         --max-output-bytes{cap}; they passed through to the log only",
        names.join(", ")
    )
}

/// Stops the collector recorded in `info`, noting what went wrong.
fn stop(state: &StateDir, info: &CollectorState, bound: Duration, problems: &mut Vec<String>) {
    match detach::stop_collector(state, info, bound) {
        Ok(Stopped::Done) => {}
        Ok(Stopped::WasGone) => problems.push(format!(
            "the collector (pid {}) had already stopped without finishing its report; the \
             report is its last flush; see {}",
            info.pid,
            state.path(state::LOG_FILE).display()
        )),
        Ok(Stopped::Killed) => problems.push(format!(
            "the collector (pid {}) did not finish within {}s and was killed; the report is its \
             last flush",
            info.pid,
            bound.as_secs()
        )),
        Err(e) => problems.push(e.to_string()),
    }
}

/// Waits (bounded) for our collector child to exit, so no zombie is left.
fn reap(child: &mut Child, bound: Duration) {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn run_single(args: RunArgs, configs: &ConfigArgs, log_level: Option<&str>) -> ExitCode {
    if args.command.is_empty() {
        eprintln!("error: no command: use `sluice ci -- <command> [args]`, or `sluice ci start|step|report`");
        return ExitCode::from(crate::EXIT_INVALID);
    }
    let state = locate(&args.state);
    // Inside a job whose collector runs already (`sluice ci start`, the action), the command is
    // one more step of it: its report comes with `sluice ci report`.
    if let Ok(Some(running)) = state.read_state() {
        if detach::is_same_live_process(&running) {
            let name = args.name.unwrap_or_else(|| default_name(&args.command));
            return step(&args.state, args.capture, &name, &args.command);
        }
    }
    let Some(rt) = runtime() else {
        return exit(run::run_plain(&args.command));
    };
    let mut problems = Vec::new();
    let collector = start_collector(
        &state,
        &args.report,
        args.timeout,
        configs,
        log_level,
        &mut problems,
    );
    let capture = if collector.is_some() {
        match Capture::open(&state, args.capture.max_output_bytes) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        }
    } else {
        None
    };
    for p in problems.drain(..) {
        warn(&format!("{p}; running the command without telemetry"));
    }
    let name = args.name.unwrap_or_else(|| default_name(&args.command));
    let code = run_step(&rt, &state, capture, &name, &args.command, &mut problems);
    if let Some((mut child, info)) = collector {
        stop(&state, &info, args.timeout, &mut problems);
        reap(&mut child, Duration::from_secs(5));
        finish(&state, &problems);
    }
    exit(code)
}

/// Delivers the report and prints what happened.
fn finish(state: &StateDir, problems: &[String]) {
    let summary = env("GITHUB_STEP_SUMMARY")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    for p in problems {
        warn(p);
    }
    let delivered = report::deliver(state, summary.as_deref(), problems);
    for m in delivered.messages {
        if m.starts_with("cannot") || m.starts_with("no report") {
            warn(&m);
        } else {
            say(&m);
        }
    }
}

fn start(
    args: &StateArgs,
    report: &ReportArgs,
    timeout: Duration,
    configs: &ConfigArgs,
    log_level: Option<&str>,
) -> ExitCode {
    let state = locate(args);
    let mut problems = Vec::new();
    match start_collector(&state, report, timeout, configs, log_level, &mut problems) {
        // Detached: the child handle is dropped, the collector outlives this process.
        Some((_child, info)) => say(&format!(
            "collector started (pid {}); state in {}",
            info.pid,
            state.root().display()
        )),
        None => problems.push("the collector is not running; steps still run".to_string()),
    }
    for p in &problems {
        warn(p);
    }
    ExitCode::SUCCESS
}

fn step(args: &StateArgs, capture: CaptureArgs, name: &str, command: &[OsString]) -> ExitCode {
    let state = locate(args);
    let mut problems = Vec::new();
    let capture = match Capture::open(&state, capture.max_output_bytes) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            problems.push(format!("{e} (did `sluice ci start` run?)"));
            None
        }
    };
    let Some(rt) = runtime() else {
        return exit(run::run_plain(command));
    };
    let code = run_step(&rt, &state, capture, name, command, &mut problems);
    for p in &problems {
        warn(p);
    }
    exit(code)
}

fn report(args: &StateArgs, check_run_id: Option<u64>, timeout: Duration) -> ExitCode {
    let state = locate(args);
    let mut problems = Vec::new();
    let check_run_id =
        check_run_id.or_else(|| env("SLUICE_CI_CHECK_RUN_ID").and_then(|s| s.trim().parse().ok()));
    if let Some(rt) = runtime() {
        match rt.block_on(github_api::step_records(&env, check_run_id)) {
            Ok(None) => {}
            Ok(Some(records)) => match Capture::open(&state, DEFAULT_MAX_OUTPUT_BYTES) {
                Ok(c) => {
                    let n = records.len();
                    for r in &records {
                        c.step(r);
                    }
                    say(&format!("{n} step records from the GitHub API"));
                }
                Err(e) => problems.push(e.to_string()),
            },
            Err(e) => problems.push(format!("{e}; the report uses the steps sluice saw itself")),
        }
    }
    let uncaptured = state.read_uncaptured();
    if !uncaptured.is_empty() {
        problems.push(uncaptured_note(&uncaptured, None));
    }
    match state.read_state() {
        Ok(Some(info)) => stop(&state, &info, timeout, &mut problems),
        Ok(None) => problems.push(format!(
            "no collector was started in {} (run `sluice ci start` first)",
            state.root().display()
        )),
        Err(e) => problems.push(e.to_string()),
    }
    finish(&state, &problems);
    ExitCode::SUCCESS
}
