//! Glob patterns over paths, and the directory walk that expands them: `*`, `?` and `[abc]` /
//! `[a-z]` / `[!abc]` within one path component, `**` as a whole component for any depth.

use std::fs;
use std::path::{Path, PathBuf};

/// One component of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// A literal name.
    Literal(String),
    /// A component with wildcards.
    Wild(String),
    /// `**`: zero or more directories.
    AnyDepth,
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    root: PathBuf,
    parts: Vec<Part>,
}

/// The deepest directory walk `**` makes, so a symlink loop cannot run away.
const MAX_DEPTH: usize = 32;

impl Pattern {
    /// Compiles `text`; relative patterns are relative to the working directory.
    pub fn new(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("expected a glob pattern, found an empty string".into());
        }
        let mut parts = Vec::new();
        let root = if text.starts_with('/') {
            PathBuf::from("/")
        } else {
            PathBuf::from(".")
        };
        for comp in text.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if comp == "**" {
                parts.push(Part::AnyDepth);
            } else if comp.contains(['*', '?', '[']) {
                check_classes(comp).map_err(|e| format!("invalid glob `{text}`: {e}"))?;
                parts.push(Part::Wild(comp.to_string()));
            } else {
                parts.push(Part::Literal(comp.to_string()));
            }
        }
        if parts.is_empty() || parts.last() == Some(&Part::AnyDepth) {
            return Err(format!(
                "invalid glob `{text}`: expected it to name files, like `/var/log/*.log`"
            ));
        }
        Ok(Pattern { root, parts })
    }

    /// Whether `path` (as the walk produces it) matches.
    pub fn matches(&self, path: &Path) -> bool {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        let comps: Vec<String> = rel
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        match_parts(&self.parts, &comps)
    }

    /// Every regular file the pattern names now, appended to `out`.
    pub fn expand(&self, out: &mut Vec<PathBuf>) {
        walk(&self.root, &self.parts, 0, out);
    }
}

fn match_parts(parts: &[Part], comps: &[String]) -> bool {
    match parts.split_first() {
        None => comps.is_empty(),
        Some((Part::AnyDepth, rest)) => {
            (0..=comps.len()).any(|skip| match_parts(rest, &comps[skip..]))
        }
        Some((part, rest)) => match comps.split_first() {
            Some((c, crest)) => {
                let ok = match part {
                    Part::Literal(l) => l == c,
                    Part::Wild(w) => wildcard(w.as_bytes(), c.as_bytes()),
                    Part::AnyDepth => unreachable!("handled above"),
                };
                ok && match_parts(rest, crest)
            }
            None => false,
        },
    }
}

fn walk(dir: &Path, parts: &[Part], depth: usize, out: &mut Vec<PathBuf>) {
    let Some((part, rest)) = parts.split_first() else {
        return;
    };
    let last = rest.is_empty();
    match part {
        Part::Literal(name) => {
            let p = dir.join(name);
            if last {
                if p.is_file() {
                    out.push(p);
                }
            } else if p.is_dir() {
                walk(&p, rest, depth, out);
            }
        }
        Part::Wild(w) => {
            for (name, p, is_dir) in entries(dir) {
                if !wildcard(w.as_bytes(), name.as_bytes()) {
                    continue;
                }
                if last {
                    if p.is_file() {
                        out.push(p);
                    }
                } else if is_dir {
                    walk(&p, rest, depth, out);
                }
            }
        }
        Part::AnyDepth => {
            walk(dir, rest, depth, out);
            if depth >= MAX_DEPTH {
                return;
            }
            for (_, p, is_dir) in entries(dir) {
                if is_dir {
                    walk(&p, parts, depth + 1, out);
                }
            }
        }
    }
}

fn entries(dir: &Path) -> Vec<(String, PathBuf, bool)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            let is_dir = p.is_dir();
            (e.file_name().to_string_lossy().into_owned(), p, is_dir)
        })
        .collect();
    v.sort();
    v
}

fn check_classes(comp: &str) -> Result<(), String> {
    let b = comp.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            match b[i + 1..].iter().skip(1).position(|&c| c == b']') {
                Some(p) => i += p + 2,
                None => return Err("a `[` without its closing `]`".into()),
            }
        }
        i += 1;
    }
    Ok(())
}

/// Matches one path component against a pattern with `*`, `?` and `[…]`.
pub fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&p[pi..], s[si]) {
                        if matched {
                            pi += next;
                            si += 1;
                            continue;
                        }
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `[…]` at the start of `p` against `c`: (matched, length of the class).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != b']') {
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if (p[i]..=p[i + 2]).contains(&c) {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}
