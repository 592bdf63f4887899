//! `${env:VAR}` and `${env:VAR:-default}` expansion in config values, as in the Collector
//! (`${VAR}` is read as `${env:VAR}`; `$$` is a literal `$`). A missing variable without a
//! default is an error naming it, at the value's position. Keys are never expanded.

use super::error::ConfigError;
use super::node::{Node, NodeKind};

/// Expands every scalar value of `node` in place, looking variables up with `lookup`; returns all
/// errors found.
pub fn expand_env(node: &mut Node, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut path = Vec::new();
    walk(node, lookup, &mut path, &mut errors);
    errors
}

fn walk(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) {
    match &mut node.kind {
        NodeKind::Scalar(text, _) => {
            if text.contains('$') {
                match expand_str(text, lookup) {
                    Ok(s) => *text = s,
                    Err(msg) => errors.push(ConfigError::at(&node.mark, path.clone(), msg)),
                }
            }
        }
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(item, lookup, path, errors);
                path.pop();
            }
        }
        NodeKind::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                path.push(k.as_str().unwrap_or_default().to_string());
                walk(v, lookup, path, errors);
                path.pop();
            }
        }
        NodeKind::Null => {}
    }
}

fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands one string; `Err` says what is wrong.
pub fn expand_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {text:?}: expected `${{env:NAME}}`"))?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            let reference = match inner.split_once(':') {
                Some(("env", v)) => v,
                Some((provider, _)) if valid_var_name(provider) && !inner.contains(":-") => {
                    return Err(format!(
                        "unsupported config provider `{provider}` in `${{{inner}}}`: sluice expands only `${{env:NAME}}` and `${{env:NAME:-default}}`"
                    ))
                }
                _ => inner,
            };
            let (name, default) = match reference.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (reference, None),
            };
            if !valid_var_name(name) {
                return Err(format!(
                    "invalid environment variable name `{name}` in `${{{inner}}}`: expected letters, digits and `_`"
                ));
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set and `${{env:{name}}}` has no default (write `${{env:{name}:-default}}`)"
                    ))
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("10.0.0.1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        assert_eq!(
            expand_str("${env:HOST}:4317", &env).unwrap(),
            "10.0.0.1:4317"
        );
        assert_eq!(expand_str("${HOST}", &env).unwrap(), "10.0.0.1");
        assert_eq!(expand_str("${env:NOPE:-5s}", &env).unwrap(), "5s");
        assert_eq!(expand_str("${env:EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand_str("a$$b", &env).unwrap(), "a$b");
        assert_eq!(expand_str("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(
            expand_str("${env:NOPE:-http://h:1/p}", &env).unwrap(),
            "http://h:1/p"
        );
    }

    #[test]
    fn reports_problems() {
        let e = expand_str("${env:NOPE}", &env).unwrap_err();
        assert!(e.contains("`NOPE` is not set"), "{e}");
        assert!(expand_str("${env:HOST", &env)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand_str("${file:/x}", &env)
            .unwrap_err()
            .contains("unsupported config provider `file`"));
        assert!(expand_str("${env:1A}", &env)
            .unwrap_err()
            .contains("invalid environment variable name"));
    }
}
