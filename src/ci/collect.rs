//! `sluice ci collect` (hidden): the collector process itself. Runs the pipeline of the
//! embedded `configs/github-summary.yaml` (or `--config`), writes `ready` once it runs, waits
//! for SIGTERM or SIGINT (tokio's signal handling, so the handler runs whatever the pipeline is
//! doing), shuts down cleanly (receivers, then batch, then the exporters' flush: the summary
//! writes its report then), and writes `done` with its self-telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use sluice_pipeline::config::ConfigSource;
use sluice_pipeline::runtime::graph;
use sluice_pipeline::runtime::shutdown::StopSignals;
use sluice_pipeline::telemetry::Telemetry;

use super::state::{write_atomically, StateDir, DONE_FILE, FAILED_FILE, READY_FILE};
use crate::ConfigArgs;

/// The pipeline `sluice ci` runs unless `--config` is given.
pub const CI_CONFIG: &str = include_str!("../../configs/github-summary.yaml");
/// Its name in messages.
pub const CI_CONFIG_NAME: &str = "<embedded configs/github-summary.yaml>";

/// The environment variable naming the summary's `image_base_url` (set by `--image-base-url`).
pub const IMAGE_BASE_URL_ENV: &str = "SLUICE_CI_IMAGE_BASE_URL";
/// The environment variable naming the summary's `theme` (`light` or `dark`).
pub const THEME_ENV: &str = "SLUICE_CI_THEME";

/// The embedded config, and an overlay setting the summary's `image_base_url` and `theme` when
/// their variables are set (the embedded YAML cannot leave an option out depending on a
/// variable).
pub fn ci_sources(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigSource> {
    let mut sources = vec![ConfigSource {
        name: CI_CONFIG_NAME.to_string(),
        text: CI_CONFIG.to_string(),
    }];
    let mut overlay = String::new();
    for (var, key) in [(IMAGE_BASE_URL_ENV, "image_base_url"), (THEME_ENV, "theme")] {
        if let Some(v) = lookup(var).filter(|v| !v.trim().is_empty()) {
            // A JSON string is a YAML double-quoted scalar; `$$` keeps a `$` from expansion.
            let quoted = serde_json::Value::String(v.trim().to_string())
                .to_string()
                .replace('$', "$$");
            overlay.push_str(&format!("    {key}: {quoted}\n"));
        }
    }
    if !overlay.is_empty() {
        sources.push(ConfigSource {
            name: format!("<${IMAGE_BASE_URL_ENV} / ${THEME_ENV}>"),
            text: format!("exporters:\n  summary:\n{overlay}"),
        });
    }
    sources
}

/// Runs the collector until a signal; the exit code is 0 after a clean shutdown.
pub fn collect(state: &StateDir, configs: &ConfigArgs, log_level: Option<&str>) -> ExitCode {
    let fail = |why: &str| {
        eprintln!("error: {why}");
        if let Err(e) = write_atomically(&state.path(FAILED_FILE), why.as_bytes()) {
            eprintln!("error: {e}");
        }
        ExitCode::from(crate::EXIT_FAILED)
    };
    let cfg = match crate::resolve_or(configs, &ci_sources(&|k| std::env::var(k).ok())) {
        Ok(c) => c,
        Err(e) => return fail(&format!("invalid configuration:\n{e}")),
    };
    crate::init_logging(log_level, cfg.service.telemetry.logs.level.as_deref());
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(async move {
        // Listen for signals before saying `ready`, so a stop right after is never missed.
        let mut signals = match StopSignals::install() {
            Ok(s) => s,
            Err(e) => return fail(&format!("cannot listen for signals: {e}")),
        };
        let telemetry = Telemetry::new();
        let service = match graph::start(cfg, Arc::clone(&telemetry)).await {
            Ok(s) => s,
            Err(e) => return fail(&format!("the pipeline did not start:\n{e}")),
        };
        if let Err(e) = write_atomically(
            &state.path(READY_FILE),
            std::process::id().to_string().as_bytes(),
        ) {
            tracing::error!(error = %e, "Cannot write the ready file; `sluice ci start` will time out.");
        }
        tracing::info!(state_dir = %state.root().display(), "sluice ci collector is running; stop it with `sluice ci report` (SIGTERM).");
        let signal = signals.recv().await.name();
        tracing::info!(signal, "Shutting down: reading the last records, flushing the report.");
        service.shutdown().await;
        let mut lines = telemetry.summary_lines();
        if lines.is_empty() {
            lines.push("(no data moved)".to_string());
        }
        let text = lines.join("\n") + "\n";
        eprintln!("sluice ci collector stopped. Self-telemetry at shutdown:\n{text}");
        match write_atomically(&state.path(DONE_FILE), text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "Cannot write the done file.");
                ExitCode::from(crate::EXIT_FAILED)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_sets_image_base_url_and_theme_only_when_given() {
        assert_eq!(ci_sources(&|_| None).len(), 1);
        let s = ci_sources(&|k| match k {
            IMAGE_BASE_URL_ENV => Some("https://example.com/ci/$RUN \"x\"".to_string()),
            THEME_ENV => Some("dark".to_string()),
            _ => None,
        });
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[1].text,
            "exporters:\n  summary:\n    image_base_url: \"https://example.com/ci/$$RUN \\\"x\\\"\"\n    theme: \"dark\"\n"
        );
    }
}
