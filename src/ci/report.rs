//! The end of a run, in the foreground process (a background process cannot write a step
//! summary): append the summary exporter's `report.md` to `$GITHUB_STEP_SUMMARY`, or say where
//! it is, and say where `report.html` and the PNGs are.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::CiError;
use super::state::{StateDir, LOG_FILE};

/// The report's Markdown file in the report folder.
pub const REPORT_MD: &str = "report.md";
/// The report's self-contained page.
pub const REPORT_HTML: &str = "report.html";

/// What was done with the report, to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Lines for stderr.
    pub messages: Vec<String>,
}

/// Appends `report.md` (preceded by `problems`, if any, as a note) to `summary` when given;
/// otherwise names the files. A missing report is said in the summary too, so the job's page
/// tells why there are no charts.
pub fn deliver(state: &StateDir, summary: Option<&Path>, problems: &[String]) -> Delivered {
    let mut messages = Vec::new();
    let dir = state.report_dir();
    let md_path = dir.join(REPORT_MD);
    let md = std::fs::read_to_string(&md_path);
    let pngs = pngs_in(&dir);
    let mut text = String::new();
    match &md {
        Ok(m) => {
            text.push_str(m);
            if !m.ends_with('\n') {
                text.push('\n');
            }
        }
        Err(e) => {
            text.push_str("## sluice CI report\n\n");
            text.push_str(&format!(
                "No report was produced (`{}`: {e}); the collector's log is `{}`.\n",
                md_path.display(),
                state.path(LOG_FILE).display()
            ));
            messages.push(format!(
                "no report at {} ({e}); see {}",
                md_path.display(),
                state.path(LOG_FILE).display()
            ));
        }
    }
    if !problems.is_empty() {
        text.push_str("\n> **sluice:** ");
        text.push_str(&problems.join("; ").replace('\n', " "));
        text.push('\n');
    }
    match summary {
        Some(path) => match append(path, &text) {
            Ok(()) => messages.push(format!("report appended to {}", path.display())),
            Err(e) => messages.push(format!(
                "cannot append the report to $GITHUB_STEP_SUMMARY: {e}"
            )),
        },
        None if md.is_ok() => messages.push(format!(
            "report: {} ($GITHUB_STEP_SUMMARY is not set)",
            md_path.display()
        )),
        None => {}
    }
    if dir.join(REPORT_HTML).exists() {
        messages.push(format!(
            "report page: {} (upload it as an artifact)",
            dir.join(REPORT_HTML).display()
        ));
    }
    if !pngs.is_empty() {
        let names: Vec<String> = pngs
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        messages.push(format!("charts in {}: {}", dir.display(), names.join(", ")));
    }
    Delivered { messages }
}

fn append(path: &Path, text: &str) -> Result<(), CiError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| CiError::io("cannot open", path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| CiError::io("cannot write", path, e))
}

fn pngs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_the_report_and_problems_and_lists_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        std::fs::create_dir_all(state.report_dir()).unwrap();
        std::fs::write(state.report_dir().join(REPORT_MD), "# Report\n").unwrap();
        std::fs::write(state.report_dir().join("cpu.png"), b"x").unwrap();
        let summary = dir.path().join("summary.md");
        std::fs::write(&summary, "earlier\n").unwrap();
        let d = deliver(&state, Some(&summary), &["collector was killed".into()]);
        let text = std::fs::read_to_string(&summary).unwrap();
        assert!(text.starts_with("earlier\n# Report\n"), "{text}");
        assert!(text.contains("collector was killed"), "{text}");
        assert!(
            d.messages.iter().any(|m| m.contains("cpu.png")),
            "{:?}",
            d.messages
        );
    }

    #[test]
    fn a_missing_report_is_said_in_the_summary_and_an_unwritable_summary_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let summary = dir.path().join("summary.md");
        let d = deliver(&state, Some(&summary), &[]);
        let text = std::fs::read_to_string(&summary).unwrap();
        assert!(text.contains("No report was produced"), "{text}");
        assert!(d.messages[0].contains("no report"), "{:?}", d.messages);
        let d = deliver(&state, Some(&dir.path().join("no/such/dir/s.md")), &[]);
        assert!(
            d.messages.iter().any(|m| m.contains("cannot append")),
            "{:?}",
            d.messages
        );
    }
}
