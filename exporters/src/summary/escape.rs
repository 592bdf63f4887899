//! Escaping of untrusted text (step names, command output, process command lines) for Markdown
//! tables, Mermaid and HTML.

/// Text for one cell of a Markdown table (GitHub Flavored Markdown): no line breaks, `|` and
/// Markdown punctuation backslash-escaped, HTML special characters as entities, control
/// characters dropped, at most `max_chars` characters (an ellipsis marks a cut).
pub fn md_cell(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 2) + 8);
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        match c {
            '\r' | '\n' | '\t' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '~' | '#' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence is longer than any run of backticks in `body`, so the body
/// cannot close it; control characters other than newlines are dropped.
pub fn md_code_block(info: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let clean: String = body
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    format!("{fence}{info}\n{clean}\n{fence}\n")
}

/// A step name as a Mermaid gantt task title: characters with a meaning to Mermaid's gantt
/// grammar (`:` ends the title, `#` and `;` start entities or separate statements, `%%` starts a
/// comment, quotes, backticks, `|`, brackets and angle brackets, line breaks) are replaced by
/// look-alike characters that are plain text to Mermaid; at most `max_chars` characters, never
/// empty.
pub fn mermaid_text(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        let r = match c {
            ':' => '∶',  // U+2236 RATIO
            '#' => '＃', // fullwidth
            ';' => '；',
            '%' => '％',
            '"' => '＂',
            '\'' => '’',
            '`' => 'ˋ',
            '|' => '¦',
            '<' => '‹',
            '>' => '›',
            '{' => '（',
            '}' => '）',
            '[' => '［',
            ']' => '］',
            '\\' => '＼',
            ',' => '，',
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => continue,
            c => c,
        };
        out.push(r);
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        "(unnamed)".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Text for HTML element content or a quoted attribute value.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Cuts `s` to at most `max_bytes` bytes at a character boundary.
pub fn truncate_bytes(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
