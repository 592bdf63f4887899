//! Config loading end to end: every shipped config resolves; every whole-file failure case under
//! `tests/fixtures/config/invalid/` gives exactly its `.expected` message from `sluice validate`
//! (exit code 2). Regenerate the expectations after a deliberate message change with
//! `SLUICE_BLESS=1 cargo test config::` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_pipeline::config::{load_sources, ConfigSource};

use crate::resolve_yaml;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_and_fixture_configs_are_valid() {
    let mut files = yaml_files(&root().join("configs"));
    files.extend(yaml_files(&root().join("tests/fixtures/config/valid")));
    assert!(files.len() >= 2);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if let Err(e) = resolve_yaml(&text) {
            panic!("{} does not resolve:\n{e}", f.display());
        }
    }
}

#[test]
fn invalid_configs_fail_with_exact_messages() {
    let dir = Path::new("tests/fixtures/config/invalid");
    let cases = yaml_files(&root().join(dir));
    assert!(cases.len() >= 6, "keep at least six failure cases");
    let bless = std::env::var_os("SLUICE_BLESS").is_some();
    for case in cases {
        let rel = dir.join(case.file_name().unwrap());
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(root())
            .args(["validate", "--config"])
            .arg(&rel)
            .env_remove("SLUICE_TEST_SURELY_UNSET_VAR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let expected_path = case.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &stderr).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", rel.display());
        assert_eq!(stderr, expected, "{}", rel.display());
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn env_references_expand_with_defaults_and_keep_types() {
    let text = "receivers:\n  procfs:\n    collection_interval: ${env:INTERVAL}\n    top_processes: ${env:TOP:-3}\n";
    let node = load_sources(
        &[ConfigSource {
            name: "t.yaml".into(),
            text: text.into(),
        }],
        &|n| (n == "INTERVAL").then(|| "5s".to_string()),
    )
    .unwrap();
    assert_eq!(
        node.to_json(),
        serde_json::json!({"receivers": {"procfs": {"collection_interval": "5s", "top_processes": 3}}})
    );
}

#[test]
fn print_config_shows_the_expanded_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(root())
        .args(["print-config", "--config", "configs/default.yaml"])
        .env("SLUICE_COLLECTION_INTERVAL", "3s")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("collection_interval: 3s"), "{text}");
    assert!(!text.contains("${env"), "{text}");
}

#[test]
fn several_config_files_merge_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let override_file = dir.path().join("override.yaml");
    std::fs::write(
        &override_file,
        "exporters:\n  debug:\n    verbosity: detailed\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .current_dir(root())
        .args([
            "print-config",
            "--config",
            "configs/default.yaml",
            "--config",
        ])
        .arg(&override_file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("verbosity: detailed"), "{text}");
    assert!(text.contains("procfs"), "{text}");
}
