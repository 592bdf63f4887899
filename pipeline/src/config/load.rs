//! Config files → one env-expanded document. Several files merge in order (later keys win), as
//! the Collector merges several `--config` flags.

use std::path::PathBuf;

use super::env::expand_env;
use super::error::{ConfigError, ConfigErrors};
use super::node::{parse_yaml, Node};

/// One config text and the name errors should give it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// A path, or `<embedded configs/default.yaml>`.
    pub name: String,
    pub text: String,
}

/// Parses, merges and expands the sources; all errors together.
pub fn load_sources(
    sources: &[ConfigSource],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Node, ConfigErrors> {
    let mut errors = Vec::new();
    let mut root: Option<Node> = None;
    for src in sources {
        match parse_yaml(&src.text, &src.name) {
            Ok(node) => {
                if !matches!(node.kind, super::node::NodeKind::Map(_)) {
                    errors.push(ConfigError::at(
                        &node.mark,
                        Vec::new(),
                        format!(
                            "expected a mapping with `receivers`, `processors`, `exporters` and `service`, found {}",
                            node.describe()
                        ),
                    ));
                    continue;
                }
                match &mut root {
                    None => root = Some(node),
                    Some(r) => r.merge(node),
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    let Some(mut root) = root else {
        if errors.is_empty() {
            errors.push(ConfigError::bare("no configuration given"));
        }
        return Err(ConfigErrors(errors));
    };
    errors.extend(expand_env(&mut root, lookup));
    if errors.is_empty() {
        Ok(root)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads the files and loads them with the process environment.
pub fn load_files(paths: &[PathBuf]) -> Result<Node, ConfigErrors> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => sources.push(ConfigSource {
                name: p.display().to_string(),
                text,
            }),
            Err(e) => errors.push(ConfigError::bare(format!(
                "cannot read config file {}: {e}",
                p.display()
            ))),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    load_sources(&sources, &|name| std::env::var(name).ok())
}
