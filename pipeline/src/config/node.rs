//! A positioned YAML tree. Every node remembers the file, line and column it came from, so errors
//! found long after parsing (a bad value, an undefined id) still point at the right place.

use std::fmt;
use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::error::ConfigError;

/// Where a node starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mark {
    /// The file it came from (`<embedded …>` for a built-in config).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How a scalar was written: plain scalars are typed by their text (`10` is a number), quoted
/// and block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    Quoted,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// An empty value or `null`/`~`.
    Null,
    /// Any scalar, kept as its text.
    Scalar(String, ScalarStyle),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are scalars.
    Map(Vec<(Node, Node)>),
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

impl Node {
    /// An empty mapping at `mark`.
    pub fn empty_map(mark: Mark) -> Node {
        Node {
            kind: NodeKind::Map(Vec::new()),
            mark,
        }
    }

    /// The text of a scalar key or value.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// Whether this node is null.
    pub fn is_null(&self) -> bool {
        match &self.kind {
            NodeKind::Null => true,
            NodeKind::Scalar(s, ScalarStyle::Plain) => is_null_text(s),
            _ => false,
        }
    }

    /// The entries of a mapping (a null node reads as an empty mapping).
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ if self.is_null() => Some(&[]),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node of `key` in a mapping (to point at the key rather than its value).
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// The deepest node along `path` (map keys or sequence indices), and how far it got.
    pub fn lookup<'a>(&'a self, path: &[String]) -> (&'a Node, usize) {
        let mut node = self;
        for (i, seg) in path.iter().enumerate() {
            let next = match &node.kind {
                NodeKind::Map(_) => node.get(seg),
                NodeKind::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node, i),
            }
        }
        (node, path.len())
    }

    /// A short description of the node's type, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "an empty value",
            NodeKind::Scalar(..) if self.is_null() => "an empty value",
            NodeKind::Scalar(..) => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Merges `other` over `self`: mappings merge key by key, anything else is replaced. This
    /// is how several `--config` files combine, as in the Collector.
    pub fn merge(&mut self, other: Node) {
        match (&mut self.kind, other.kind) {
            (NodeKind::Map(mine), NodeKind::Map(theirs)) => {
                for (k, v) in theirs {
                    match mine.iter_mut().find(|(mk, _)| mk.as_str() == k.as_str()) {
                        Some((_, mv)) => mv.merge(v),
                        None => mine.push((k, v)),
                    }
                }
            }
            (_, kind) => {
                self.kind = kind;
                self.mark = other.mark;
            }
        }
    }

    /// The tree as a JSON value (for `print-config`); plain scalars are typed as YAML would.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Scalar(s, ScalarStyle::Quoted) => Value::String(s.clone()),
            NodeKind::Scalar(s, ScalarStyle::Plain) => match resolve_plain(s) {
                Plain::Null => Value::Null,
                Plain::Bool(b) => Value::Bool(b),
                Plain::Int(i) => Value::from(i),
                Plain::UInt(u) => Value::from(u),
                Plain::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(s.clone())),
                Plain::Str => Value::String(s.clone()),
            },
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

pub(crate) fn is_null_text(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// What a plain scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str,
}

pub(crate) fn resolve_plain(s: &str) -> Plain {
    if is_null_text(s) {
        return Plain::Null;
    }
    match s {
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Plain::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(s) {
        return i;
    }
    let looks_numeric = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && s.chars().any(|c| c.is_ascii_digit());
    if looks_numeric {
        if let Ok(f) = s.parse::<f64>() {
            return Plain::Float(f);
        }
    }
    Plain::Str
}

fn parse_int(s: &str) -> Option<Plain> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = body.strip_prefix("0o") {
        (8, o)
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let u = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some(Plain::Int((u as i128).wrapping_neg() as i64))
        } else {
            None
        }
    } else if u <= i64::MAX as u64 {
        Some(Plain::Int(u as i64))
    } else {
        Some(Plain::UInt(u))
    }
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Node>,
    /// For each open mapping, the key waiting for its value.
    pending_keys: Vec<Option<Node>>,
    anchors: Vec<(usize, Node)>,
    anchor_of_open: Vec<usize>,
    root: Option<Node>,
    documents: usize,
    errors: Vec<ConfigError>,
}

impl Builder {
    fn mark(&self, m: &Marker) -> Mark {
        Mark {
            file: self.file.clone(),
            line: m.line(),
            column: m.col() + 1,
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => {
                self.documents += 1;
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Node {
                kind: NodeKind::Seq(items),
                ..
            }) => items.push(node),
            Some(Node {
                kind: NodeKind::Map(entries),
                ..
            }) => {
                if let Some(slot) = self.pending_keys.last_mut() {
                    match slot.take() {
                        None => {
                            if !matches!(node.kind, NodeKind::Scalar(..) | NodeKind::Null) {
                                self.errors.push(ConfigError::at(
                                    &node.mark,
                                    Vec::new(),
                                    "mapping keys must be plain text, not a list or mapping",
                                ));
                            }
                            let text = node.as_str().unwrap_or_default().to_string();
                            if entries.iter().any(|(k, _)| k.as_str() == Some(&text)) {
                                self.errors.push(ConfigError::at(
                                    &node.mark,
                                    Vec::new(),
                                    format!("duplicate key `{text}` in the same mapping"),
                                ));
                            }
                            *slot = Some(node);
                        }
                        Some(key) => entries.push((key, node)),
                    }
                }
            }
            Some(_) => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, m: Marker) {
        let mark = self.mark(&m);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let style = match style {
                    TScalarStyle::Plain => ScalarStyle::Plain,
                    _ => ScalarStyle::Quoted,
                };
                let kind = if style == ScalarStyle::Plain && is_null_text(&text) {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar(text, style)
                };
                self.push_value(Node { kind, mark }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Node {
                    kind: NodeKind::Seq(Vec::new()),
                    mark,
                });
                self.anchor_of_open.push(anchor);
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Node {
                    kind: NodeKind::Map(Vec::new()),
                    mark,
                });
                self.pending_keys.push(None);
                self.anchor_of_open.push(anchor);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if matches!(ev, Event::MappingEnd) {
                    self.pending_keys.pop();
                }
                let anchor = self.anchor_of_open.pop().unwrap_or(0);
                if let Some(node) = self.stack.pop() {
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => {
                let found = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone());
                match found {
                    Some(mut n) => {
                        n.mark = mark;
                        self.push_value(n, 0);
                    }
                    None => self.errors.push(ConfigError::at(
                        &mark,
                        Vec::new(),
                        "alias refers to an unknown anchor",
                    )),
                }
            }
            _ => {}
        }
    }
}

/// Parses YAML text into a positioned tree. An empty document is an empty mapping.
pub fn parse_yaml(text: &str, file: &str) -> Result<Node, Vec<ConfigError>> {
    let file: Arc<str> = Arc::from(file);
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        pending_keys: Vec::new(),
        anchors: Vec::new(),
        anchor_of_open: Vec::new(),
        root: None,
        documents: 0,
        errors: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let mark = builder.mark(e.marker());
        return Err(vec![ConfigError::at(
            &mark,
            Vec::new(),
            format!("invalid YAML: {}", e.info()),
        )]);
    }
    if builder.documents > 1 {
        builder.errors.push(ConfigError::at(
            &Mark {
                file: file.clone(),
                line: 1,
                column: 1,
            },
            Vec::new(),
            "expected one YAML document, found several (`---`)",
        ));
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
    }
    let start = Mark {
        file,
        line: 1,
        column: 1,
    };
    Ok(match builder.root {
        Some(n) if !n.is_null() => n,
        _ => Node::empty_map(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_and_types() {
        let n = parse_yaml("a:\n  b: 10\n  c: 'x'\nlist: [1, two]\n", "f.yaml").unwrap();
        let b = n.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.mark.line, b.mark.column), (2, 6));
        assert_eq!(b.as_str(), Some("10"));
        let list = n.get("list").unwrap();
        assert!(matches!(&list.kind, NodeKind::Seq(v) if v.len() == 2));
        assert_eq!(
            n.to_json(),
            serde_json::json!({"a": {"b": 10, "c": "x"}, "list": [1, "two"]})
        );
    }

    #[test]
    fn rejects_duplicate_keys_and_bad_yaml() {
        let e = parse_yaml("a: 1\na: 2\n", "f.yaml").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "f.yaml:2:1: duplicate key `a` in the same mapping"
        );
        let e = parse_yaml("a: [1, 2\n", "f.yaml").unwrap_err();
        assert!(e[0].to_string().starts_with("f.yaml:"), "{}", e[0]);
        assert!(e[0].to_string().contains("invalid YAML"), "{}", e[0]);
    }

    #[test]
    fn resolves_anchors_and_merges() {
        let mut n = parse_yaml("x: &a {k: 1}\ny: *a\n", "f.yaml").unwrap();
        assert_eq!(n.get("y").unwrap().get("k").unwrap().as_str(), Some("1"));
        n.merge(parse_yaml("x: {j: 2}\n", "g.yaml").unwrap());
        assert_eq!(
            n.to_json(),
            serde_json::json!({"x": {"k": 1, "j": 2}, "y": {"k": 1}})
        );
    }

    #[test]
    fn resolves_plain_scalars() {
        assert_eq!(resolve_plain("42"), Plain::Int(42));
        assert_eq!(resolve_plain("-7"), Plain::Int(-7));
        assert_eq!(resolve_plain("0x1f"), Plain::Int(31));
        assert_eq!(resolve_plain("1.5"), Plain::Float(1.5));
        assert_eq!(resolve_plain("true"), Plain::Bool(true));
        assert_eq!(resolve_plain("10s"), Plain::Str);
        assert_eq!(resolve_plain("127.0.0.1:4317"), Plain::Str);
        assert_eq!(resolve_plain("~"), Plain::Null);
    }
}
