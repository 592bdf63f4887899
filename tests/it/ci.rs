//! `sluice ci` end to end, with the real binary and the embedded `github-summary` pipeline:
//! passthrough of the command's output, exit codes, the report appended to the step summary,
//! valid PNGs, nothing written outside the given directories, the multi-step flow (`start`,
//! `step`, `report`), signals, and step timings from a recorded GitHub API response.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use crate::WAIT_BOUND;

/// A test's directories: a fake HOME, a working directory, `RUNNER_TEMP` (the state lives in
/// `$RUNNER_TEMP/sluice-ci`), and the step summary's folder.
struct Job {
    root: tempfile::TempDir,
}

impl Job {
    fn new() -> Job {
        let root = tempfile::tempdir().unwrap();
        for d in ["home", "cwd", "runner", "summary"] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        Job { root }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.dir("runner").join("sluice-ci")
    }

    fn summary(&self) -> PathBuf {
        self.dir("summary").join("summary.md")
    }

    /// `sluice` with a clean environment (nothing from the machine running the tests, such as
    /// a real GITHUB_TOKEN, leaks in).
    fn sluice(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir("home"))
            .env("RUNNER_TEMP", self.dir("runner"))
            .env("GITHUB_STEP_SUMMARY", self.summary())
            .current_dir(self.dir("cwd"))
            .stdin(Stdio::null());
        c
    }

    fn read(&self, path: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.state().join(path)).unwrap_or_default()
    }

    /// The JSON records of a `.jsonl` file of the state directory.
    fn records(&self, path: &str) -> Vec<serde_json::Value> {
        self.read(path)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// HOME and the working directory are still empty; the root holds only our folders.
    fn assert_nothing_written_outside(&self) {
        for d in ["home", "cwd"] {
            let entries: Vec<_> = std::fs::read_dir(self.dir(d)).unwrap().collect();
            assert!(entries.is_empty(), "{d} was written to: {entries:?}");
        }
        let top: BTreeSet<String> = std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let expected: BTreeSet<String> = ["home", "cwd", "runner", "summary"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(top, expected);
    }
}

/// Runs a command to its end, failing the test if it takes longer than [`WAIT_BOUND`].
fn output(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    bounded_output(child)
}

fn bounded_output(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT_BOUND) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("sluice did not finish within {WAIT_BOUND:?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The lines of sluice's own stderr after the command's stderr: each one starts `sluice:`.
fn assert_only_sluice_lines(rest: &str) {
    for l in rest.lines() {
        assert!(
            l.starts_with("sluice: "),
            "unexpected stderr line {l:?} in:\n{rest}"
        );
    }
}

/// Checks a PNG's structure: signature, chunks with valid CRCs, IHDR first with a non-zero
/// size, at least one IDAT, IEND last. Returns (width, height).
fn check_png(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: not a PNG",
        path.display()
    );
    let mut i = 8;
    let mut kinds = Vec::new();
    let mut size = (0, 0);
    while i + 12 <= b.len() {
        let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
        let kind = &b[i + 4..i + 8];
        let data = &b[i + 8..i + 8 + len];
        let crc = u32::from_be_bytes(b[i + 8 + len..i + 12 + len].try_into().unwrap());
        assert_eq!(
            crc32(&b[i + 4..i + 8 + len]),
            crc,
            "{}: bad CRC",
            path.display()
        );
        if kind == b"IHDR" {
            size = (
                u32::from_be_bytes(data[0..4].try_into().unwrap()),
                u32::from_be_bytes(data[4..8].try_into().unwrap()),
            );
        }
        kinds.push(String::from_utf8_lossy(kind).into_owned());
        i += 12 + len;
    }
    assert_eq!(i, b.len(), "{}: trailing bytes", path.display());
    assert_eq!(kinds.first().map(String::as_str), Some("IHDR"));
    assert_eq!(kinds.last().map(String::as_str), Some("IEND"));
    assert!(kinds.iter().any(|k| k == "IDAT"));
    assert!(
        size.0 >= 300 && size.1 >= 100,
        "{}: {size:?}",
        path.display()
    );
    size
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A shell loop that keeps the CPU busy (and re-reads the collector's log) until the debug
/// exporter printed `n` metric batches, so the procfs receiver scraped enough times for rates;
/// a readiness wait, bounded by its iteration count.
fn burn_until_scraped(n: usize) -> String {
    format!(
        r#"i=0; while [ "$(grep -c '^Metrics:' "$RUNNER_TEMP/sluice-ci/collector.log")" -lt {n} ] && [ $i -lt 200000 ]; do j=0; while [ $j -lt 2000 ]; do j=$((j+1)); done; i=$((i+1)); done"#
    )
}

#[test]
fn a_command_passes_through_byte_for_byte_keeps_its_exit_code_and_gets_a_report() {
    let job = Job::new();
    let script = format!(
        r#"printf 'plain\r\nbinary \377 end\n\033[31mred\033[0m\n'
printf 'error: something broke\nwarning: careful\n' >&2
dd if=/dev/zero of="$RUNNER_TEMP/burst.bin" bs=1M count=16 conv=fsync 2>/dev/null
{}
printf 'last line without newline'
printf 'stderr tail' >&2
exit 3"#,
        burn_until_scraped(3)
    );
    let out = output(job.sluice(&["ci", "--name", "burst", "--", "sh", "-c", &script]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        out.stdout,
        b"plain\r\nbinary \xff end\n\x1b[31mred\x1b[0m\nlast line without newline".to_vec()
    );
    let cmd_err = "error: something broke\nwarning: careful\nstderr tail";
    assert!(stderr.starts_with(cmd_err), "{stderr}");
    assert_only_sluice_lines(&stderr[cmd_err.len()..]);
    assert!(stderr.contains("sluice: report appended to"), "{stderr}");

    // The captured records, as the contract says.
    let output_records = job.records("output.jsonl");
    let find = |body: &str| {
        output_records
            .iter()
            .find(|r| r["body"] == body)
            .unwrap_or_else(|| panic!("no record {body:?} in {output_records:?}"))
    };
    assert_eq!(find("plain")["log.iostream"], "stdout");
    assert_eq!(
        find("red")["severity"],
        "INFO",
        "ANSI removed in the capture"
    );
    assert_eq!(
        find("binary \u{fffd} end")["cicd.pipeline.task.name"],
        "burst"
    );
    let e = find("error: something broke");
    assert_eq!(
        (&e["log.iostream"], &e["severity"]),
        (&"stderr".into(), &"ERROR".into())
    );
    assert_eq!(find("warning: careful")["severity"], "WARN");
    find("last line without newline");
    find("stderr tail");

    // The report: appended to the summary, with the step, its failure, and the output counts.
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    let report = job.read("report/report.md");
    assert!(
        !report.is_empty(),
        "no report.md; log:\n{}",
        job.read("collector.log")
    );
    assert_eq!(summary, report, "the summary is the report");
    assert!(report.len() < 900 * 1024);
    // Every captured line reached the summary, the last ones too (the filelog receiver reads to
    // the end of its files at shutdown): 5 INFO (4 stdout, `stderr tail`), 1 WARN, 1 ERROR; and
    // the step's end record (exit code 3).
    for needle in [
        "burst",
        "| 3 |",
        "error: something broke",
        "mermaid",
        "gantt",
        "| INFO | 5 |",
        "| WARN | 1 |",
        "| ERROR | 1 |",
    ] {
        assert!(report.contains(needle), "no {needle:?} in:\n{report}");
    }
    // Charts: the burst lasted several scrapes, so CPU, memory and disk charts exist (disk
    // where the machine shows block devices at all).
    let mut pngs = vec!["cpu.png", "memory.png", "steps.png"];
    let has_disks = std::fs::read_to_string("/proc/diskstats").is_ok_and(|d| !d.trim().is_empty());
    if has_disks {
        pngs.push("disk.png");
    }
    for png in pngs {
        check_png(&job.state().join("report").join(png));
    }
    assert!(job.state().join("report/report.html").exists());
    job.assert_nothing_written_outside();
    // The collector stopped after its flush.
    assert!(job
        .read("done")
        .contains("sluice_exporter_sent_log_records{exporter=summary}"));
}

/// The captured JSON lines of `job`, checked to be whole records.
fn captured_bodies(job: &Job) -> Vec<String> {
    let captured = job.read("output.jsonl");
    assert!(
        captured.is_empty() || captured.ends_with('\n'),
        "{captured}"
    );
    job.records("output.jsonl")
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn output_beyond_max_output_bytes_passes_through_and_is_counted_not_captured() {
    const CAP: usize = 4096;
    // One command (its report at once), then one step of a started collector (the count goes
    // through the state directory to `sluice ci report`).
    let job = Job::new();
    let out = output(job.sluice(&[
        "ci",
        "--name",
        "chatty",
        "--max-output-bytes",
        "4KiB",
        "--",
        "seq",
        "1",
        "2000",
    ]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let all: String = (1..=2000).map(|i| format!("{i}\n")).collect();
    assert_eq!(text(&out.stdout), all, "every line passes through");
    let bodies = captured_bodies(&job);
    assert!(job.read("output.jsonl").len() <= CAP);
    assert!(bodies.len() > 10, "{bodies:?}");
    let first: Vec<String> = (1..=bodies.len()).map(|i| i.to_string()).collect();
    assert_eq!(bodies, first, "the first lines are captured");
    let note = format!(
        "{} output lines (of step chatty) were not captured",
        2000 - bodies.len()
    );
    assert!(stderr.contains(&note), "{note:?} not in {stderr}");
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    assert!(summary.contains(&note), "{summary}");

    let job = Job::new();
    assert_eq!(output(job.sluice(&["ci", "start"])).status.code(), Some(0));
    for (name, cap, lines) in [
        ("small", "4KiB", 20),
        ("big", "4KiB", 300),
        ("roomy", "1GiB", 300),
    ] {
        let n = lines.to_string();
        let out = output(job.sluice(&[
            "ci",
            "step",
            "--name",
            name,
            "--max-output-bytes",
            cap,
            "--",
            "seq",
            "1",
            &n,
        ]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).lines().count(), lines);
    }
    // `small` fits, `big` fills the file up to 4 KiB, `roomy` (a larger cap) is captured whole.
    let bodies = captured_bodies(&job);
    let lost = 620 - bodies.len();
    assert!(lost > 0 && lost < 300, "{lost}");
    let seq = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(bodies[..20], seq(20), "small whole");
    assert_eq!(bodies[bodies.len() - 300..], seq(300), "roomy whole");
    let out = output(job.sluice(&["ci", "report"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let note = format!("{lost} output lines (of step big) were not captured");
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    assert!(summary.contains(&note), "{note:?} not in {summary}");
}

#[test]
fn exit_codes_pass_through_even_when_the_summary_cannot_be_written() {
    let job = Job::new();
    // Killed by a signal: 128 + N, as a shell reports it.
    let out = output(job.sluice(&["ci", "--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
    // A missing command: 127, said in stderr.
    let out = output(job.sluice(&["ci", "--", "/nonexistent/sluice-it-command"]));
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("sluice: cannot run"),
        "{}",
        text(&out.stderr)
    );
    // An unwritable GITHUB_STEP_SUMMARY: the command's code still comes out, and stderr says why.
    let mut cmd = job.sluice(&["ci", "--", "sh", "-c", "echo ok; exit 7"]);
    cmd.env(
        "GITHUB_STEP_SUMMARY",
        job.dir("summary").join("no/such/dir/s.md"),
    );
    let out = output(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert_eq!(out.stdout, b"ok\n");
    assert!(
        stderr.contains("cannot append the report to $GITHUB_STEP_SUMMARY"),
        "{stderr}"
    );
    // A step without `sluice ci start`: it runs, its code comes out, stderr says why nothing
    // was recorded.
    let never = job.dir("runner").join("never-started");
    let out = output(job.sluice(&[
        "ci",
        "step",
        "--state-dir",
        never.to_str().unwrap(),
        "--name",
        "alone",
        "--",
        "sh",
        "-c",
        "exit 9",
    ]));
    assert_eq!(out.status.code(), Some(9));
    assert!(
        text(&out.stderr).contains("did `sluice ci start` run?"),
        "{}",
        text(&out.stderr)
    );
    // A collector that cannot start (an invalid config): the command still runs, code intact.
    std::fs::write(job.dir("runner").join("bad.yaml"), "receivers: [").unwrap();
    let bad = job.dir("runner").join("bad.yaml");
    let out = output(job.sluice(&[
        "--config",
        bad.to_str().unwrap(),
        "ci",
        "--",
        "sh",
        "-c",
        "echo still ran; exit 4",
    ]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(out.stdout, b"still ran\n");
    assert!(
        stderr.contains("running the command without telemetry"),
        "{stderr}"
    );
    job.assert_nothing_written_outside();
}

#[test]
fn sigterm_and_sigint_to_sluice_are_forwarded_to_the_command_and_the_report_is_still_written() {
    for (sig, name) in [
        (rustix::process::Signal::TERM, "SIGTERM"),
        (rustix::process::Signal::INT, "SIGINT"),
    ] {
        let job = Job::new();
        let mut cmd = job.sluice(&[
            "ci",
            "--name",
            "trapped",
            "--",
            "sh",
            "-c",
            "trap 'echo got signal; exit 5' TERM INT; echo ready; while :; do sleep 0.05; done",
        ]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // Readiness: the command printed `ready` (sluice listens for signals before spawning).
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            let _ = tx.send((first, stdout));
        });
        let (first, mut stdout) = rx.recv_timeout(WAIT_BOUND).expect("command never ready");
        assert_eq!(first, "ready\n");
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let reader = std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest);
            rest
        });
        let out = bounded_output(child);
        let rest = reader.join().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(text(&rest), "got signal\n", "{name}");
        assert_eq!(out.status.code(), Some(5), "{name}: {stderr}");
        assert!(stderr.contains(&format!("forwarded {name}")), "{stderr}");
        let summary = std::fs::read_to_string(job.summary()).unwrap();
        assert!(summary.contains("trapped"), "{summary}");
        assert!(job.state().join("done").exists());
    }
}

#[test]
fn sigint_to_the_collector_flushes_its_report_cleanly() {
    let job = Job::new();
    assert_eq!(output(job.sluice(&["ci", "start"])).status.code(), Some(0));
    let out = output(job.sluice(&["ci", "step", "--name", "one", "--", "true"]));
    assert_eq!(out.status.code(), Some(0));
    let info: serde_json::Value = serde_json::from_str(&job.read("state.json")).unwrap();
    let pid = i32::try_from(info["pid"].as_i64().unwrap()).unwrap();
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    // `report` finds the collector finishing (or finished) and waits for its `done`.
    let out = output(job.sluice(&["ci", "report"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(job.read("collector.log").contains("signal=\"SIGINT\""));
    assert!(
        job.read("done").contains("{exporter=summary}"),
        "{}",
        job.read("done")
    );
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    assert!(summary.contains("one"), "{summary}");
}

#[test]
fn start_three_steps_and_report_give_a_gantt_with_the_failed_step_marked() {
    let job = Job::new();
    let mut start = job.sluice(&["ci", "start"]);
    start.env("SLUICE_CI_IMAGE_BASE_URL", "https://example.com/run-1");
    let out = output(start);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("collector started (pid"), "{stderr}");
    let info: serde_json::Value = serde_json::from_str(&job.read("state.json")).unwrap();
    let pid = info["pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    let steps = [
        ("build: release #1", "echo building; exit 0", 0),
        ("test | unit", "echo 'test a ... FAILED' >&2; exit 4", 4),
        // Mermaid and Markdown table breakers: quotes, backticks, `;`, a newline.
        (
            "lint \"quoted\" `tick`; done\nsecond line",
            &burn_until_scraped(2) as &str,
            0,
        ),
    ];
    for (name, script, code) in steps {
        let out = output(job.sluice(&["ci", "step", "--name", name, "--", "sh", "-c", script]));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        output(job.sluice(&["ci", "step", "--name", "x", "--", "true"]))
            .status
            .code(),
        Some(0)
    );

    let out = output(job.sluice(&["ci", "report"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("report page:"), "{stderr}");
    assert!(stderr.contains("charts in"), "{stderr}");
    assert!(job.state().join("done").exists(), "{stderr}");
    // The collector is gone (its pid no longer runs it).
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "collector {pid} still running");

    let summary = std::fs::read_to_string(job.summary()).unwrap();
    let gantt = summary
        .split("```mermaid")
        .nth(1)
        .and_then(|g| g.split("```").next())
        .unwrap_or_else(|| panic!("no mermaid block in:\n{summary}"));
    assert!(gantt.contains("gantt"), "{gantt}");
    let headers = [
        "gantt",
        "title",
        "dateFormat",
        "axisFormat",
        "section",
        "todayMarker",
        "%%",
    ];
    let task_lines: Vec<&str> = gantt
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !headers.iter().any(|h| l.starts_with(h)))
        .collect();
    assert_eq!(task_lines.len(), 4, "three named steps and `x`:\n{gantt}");
    let failed: Vec<&&str> = task_lines.iter().filter(|l| l.contains("crit")).collect();
    assert_eq!(failed.len(), 1, "one failed step marked:\n{gantt}");
    assert!(failed[0].contains("test"), "{gantt}");
    // The name with a newline stays on one table row.
    let row = summary
        .lines()
        .find(|l| l.starts_with('|') && l.contains("lint"))
        .unwrap_or_else(|| panic!("no steps row for lint:\n{summary}"));
    assert!(row.contains("second line") && row.ends_with('|'), "{row}");
    assert!(summary.contains("test a ... FAILED"), "{summary}");
    assert!(
        summary.contains("https://example.com/run-1/"),
        "image_base_url applied:\n{summary}"
    );
    job.assert_nothing_written_outside();
}

/// Serves `responses` (status, body) to successive requests on 127.0.0.1; returns the base URL
/// and a receiver of each request's head.
fn serve(responses: Vec<(u16, String)>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, body) in responses {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).map(|n| n == 1).unwrap_or(false)
            {
                head.push(byte[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, rx)
}

/// Runs `sluice ci report` for check run 777 of run 42 of `o/r`, with the GitHub API at `url`;
/// returns its stderr after checking it exited 0.
fn report_via_api(job: &Job, url: &str, token: &str) -> String {
    let mut report = job.sluice(&["ci", "report", "--check-run-id", "777"]);
    report
        .env("GITHUB_TOKEN", token)
        .env("GITHUB_API_URL", url)
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_RUN_ID", "42");
    let out = output(report);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

/// A jobs response as GitHub sends it (trimmed): two jobs; ours has check run id 777.
const JOBS: &str = r#"{"total_count":2,"jobs":[
 {"id":111,"run_id":42,"name":"other","status":"in_progress","check_run_url":"https://api.github.com/repos/o/r/check-runs/111",
  "steps":[{"name":"Not ours","status":"completed","conclusion":"success","number":1,"started_at":"2026-01-20T09:42:40.000-08:00","completed_at":"2026-01-20T09:42:41.000-08:00"}]},
 {"id":777,"run_id":42,"name":"build","status":"in_progress","runner_name":"GitHub Actions 2","check_run_url":"https://api.github.com/repos/o/r/check-runs/777",
  "steps":[
   {"name":"Set up job","status":"completed","conclusion":"success","number":1,"started_at":"2026-01-20T17:42:40Z","completed_at":"2026-01-20T17:42:42Z"},
   {"name":"Run tests","status":"completed","conclusion":"failure","number":2,"started_at":"2026-01-20T17:42:42Z","completed_at":"2026-01-20T17:43:10Z"},
   {"name":"Skipped one","status":"completed","conclusion":"skipped","number":3,"started_at":null,"completed_at":null},
   {"name":"Report","status":"in_progress","conclusion":null,"number":4,"started_at":"2026-01-20T17:43:10Z","completed_at":null}]}]}"#;

#[test]
fn report_reads_the_jobs_step_timings_from_the_github_api_by_check_run_id() {
    let job = Job::new();
    let (url, requests) = serve(vec![(200, JOBS.to_string())]);
    assert_eq!(output(job.sluice(&["ci", "start"])).status.code(), Some(0));
    let out = output(job.sluice(&["ci", "step", "--name", "mine", "--", "true"]));
    assert_eq!(out.status.code(), Some(0));
    // With a collector running, the one-command form is one more step of it (no report yet).
    let out = output(job.sluice(&["ci", "--name", "via-ci", "--", "sh", "-c", "exit 6"]));
    assert_eq!(out.status.code(), Some(6));
    assert!(!job.state().join("done").exists(), "{}", text(&out.stderr));
    assert!(!job.summary().exists());
    let stderr = report_via_api(&job, &url, "tok-123");
    assert!(
        stderr.contains("5 step records from the GitHub API"),
        "{stderr}"
    );
    let head = requests.recv_timeout(WAIT_BOUND).unwrap();
    assert!(
        head.starts_with("GET /repos/o/r/actions/runs/42/jobs?per_page=100&page=1 HTTP/1.1\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("authorization: bearer tok-123\r\n"),
        "{head}"
    );
    assert!(lower.contains("user-agent: sluice/"), "{head}");

    let steps = job.records("steps.jsonl");
    let names: BTreeSet<&str> = steps
        .iter()
        .map(|s| s["cicd.pipeline.task.name"].as_str().unwrap())
        .filter(|n| *n != "mine" && *n != "via-ci")
        .collect();
    assert_eq!(
        names,
        ["Report", "Run tests", "Set up job"].into_iter().collect(),
        "only our job's steps, skipped ones left out"
    );
    let failed = steps
        .iter()
        .find(|s| s["cicd.pipeline.task.name"] == "Run tests" && s["sluice.ci.step"] == "end")
        .unwrap();
    assert_eq!(failed["sluice.ci.step.exit_code"], 1);
    assert_eq!(
        failed["sluice.ci.step.start_unix_nano"],
        1_768_930_962_000_000_000u64
    );
    assert_eq!(
        failed["sluice.ci.step.end_unix_nano"],
        1_768_930_990_000_000_000u64
    );
    let via_ci = steps
        .iter()
        .find(|s| s["cicd.pipeline.task.name"] == "via-ci" && s["sluice.ci.step"] == "end")
        .unwrap();
    assert_eq!(via_ci["sluice.ci.step.exit_code"], 6);
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    assert!(summary.contains("Run tests"), "{summary}");
    job.assert_nothing_written_outside();
}

#[test]
fn a_failing_github_api_is_reported_and_the_report_still_comes_out() {
    let job = Job::new();
    let (url, requests) = serve(vec![(
        403,
        r#"{"message":"Resource not accessible by integration"}"#.to_string(),
    )]);
    assert_eq!(output(job.sluice(&["ci", "start"])).status.code(), Some(0));
    let out = output(job.sluice(&["ci", "step", "--name", "seen by sluice", "--", "true"]));
    assert_eq!(out.status.code(), Some(0));
    let stderr = report_via_api(&job, &url, "tok");
    requests.recv_timeout(WAIT_BOUND).unwrap();
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(
        stderr.contains("the report uses the steps sluice saw itself"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    assert!(summary.contains("seen by sluice"), "{summary}");
    assert!(
        summary.contains("HTTP 403"),
        "the problem is in the report:\n{summary}"
    );
}

#[test]
fn a_collector_killed_without_its_flush_is_reported_not_fatal() {
    let job = Job::new();
    assert_eq!(output(job.sluice(&["ci", "start"])).status.code(), Some(0));
    let info: serde_json::Value = serde_json::from_str(&job.read("state.json")).unwrap();
    let pid = i32::try_from(info["pid"].as_i64().unwrap()).unwrap();
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let out = output(job.sluice(&["ci", "step", "--name", "after", "--", "sh", "-c", "exit 2"]));
    assert_eq!(out.status.code(), Some(2));
    let out = output(job.sluice(&["ci", "report"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("had already stopped without finishing its report"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(job.summary()).unwrap();
    assert!(summary.contains("No report was produced"), "{summary}");
    assert!(summary.contains("had already stopped"), "{summary}");
    job.assert_nothing_written_outside();
}

#[test]
fn a_ctrl_c_at_the_terminal_reaches_the_command_once() {
    // util-linux `script` runs sluice on a pseudo-terminal; a 0x03 written to it is a Ctrl-C,
    // which the terminal sends to the foreground group (sluice and the command).
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let job = Job::new();
    let inner = format!(
        "exec {} ci --name tty -- sh -c \"trap 'echo got signal; exit 5' INT; echo ready; while :; do sleep 0.05; done\"",
        env!("CARGO_BIN_EXE_sluice")
    );
    let cmd = job.sluice(&[]);
    let mut child = Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .current_dir(job.dir("cwd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if text(&all).contains("ready") {
                let _ = tx.send(());
            }
        }
        all
    });
    rx.recv_timeout(WAIT_BOUND).expect("command never ready");
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let out = bounded_output(child);
    let all = text(&reader.join().unwrap());
    // Once: sluice does not forward a Ctrl-C the terminal already sent to the command. (Whether
    // sluice notes it depends on which it sees first, the signal or the command's exit.)
    assert_eq!(all.matches("got signal").count(), 1, "{all}");
    assert_eq!(out.status.code(), Some(5), "{all}");
}
