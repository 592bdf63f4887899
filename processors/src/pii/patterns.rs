//! The built-in value patterns, and the checks that turn a regex candidate into a match.
//!
//! Every regex uses ASCII word boundaries (`(?-u:\b)`) and ASCII classes, so the `RegexSet`
//! prefilter runs on its fast DFA whatever the text holds.

/// Built-in patterns by name.
pub mod builtin {
    use super::Check;

    /// One built-in pattern: one or more regexes, and a check every candidate must pass.
    #[derive(Debug)]
    pub struct Builtin {
        pub name: &'static str,
        /// Alternatives; a group named `secret`, where present, is the part replaced.
        pub regexes: &'static [&'static str],
        pub check: Check,
    }

    const IPV4_OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

    /// Names of the built-in patterns, for error messages.
    pub const NAMES: [&str; 7] = [
        "email",
        "ipv4",
        "ipv6",
        "credit_card",
        "bearer_token",
        "api_key",
        "jwt",
    ];

    static BUILTINS: [Builtin; 7] = [
        Builtin {
            name: "email",
            regexes: &[
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}",
            ],
            check: Check::None,
        },
        Builtin {
            name: "ipv4",
            // Filled in by `ipv4_regex` (a `const` cannot concatenate); see `regexes_of`.
            regexes: &[],
            check: Check::None,
        },
        Builtin {
            name: "ipv6",
            // Candidates: hex groups and colons with a dotted IPv4 tail, eight groups, or
            // groups around one `::`; `Check::Ipv6` keeps those `std` parses as IPv6 and
            // that do not sit inside a longer word (`Foo::bar` is not an address).
            regexes: &[
                r"(?i)(?:[0-9a-f]{0,4}:){2,6}[0-9]{1,3}(?:\.[0-9]{1,3}){3}|(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?",
            ],
            check: Check::Ipv6,
        },
        Builtin {
            name: "credit_card",
            // 13 to 19 digits, optionally grouped by single spaces or dashes, starting with an
            // issuer digit 2-6 (so epoch milliseconds, which start with 1, are not candidates);
            // `Check::Luhn` keeps only Luhn-valid numbers.
            regexes: &[r"(?-u:\b)[2-6][0-9]{3}(?:[ \-]?[0-9]){9,15}(?-u:\b)"],
            check: Check::Luhn,
        },
        Builtin {
            name: "bearer_token",
            regexes: &[r"(?i)(?-u:\b)bearer[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]+=*)"],
            check: Check::None,
        },
        Builtin {
            name: "api_key",
            regexes: &[
                // Vendor key shapes: OpenAI/Anthropic-style `sk-`, GitHub tokens, AWS access
                // key ids, Slack tokens, Google API keys.
                r"(?-u:\b)(?:sk-[A-Za-z0-9_\-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})(?-u:\b)",
                // Generic `key=value` / `"password": "value"`: the value is the secret; a quoted
                // value is taken whole, spaces included.
                r#"(?i)(?-u:\b)(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|client[_\-]?secret|secret|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|token|password|passwd|pwd|key)["']?[ \t]*[=:][ \t]*["']?(?P<secret>[^\s"'&,;]+)"#,
                r#"(?i)(?-u:\b)(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|client[_\-]?secret|secret|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|token|password|passwd|pwd|key)["']?[ \t]*[=:][ \t]*"(?P<secret>[^"\r\n]+)""#,
                r#"(?i)(?-u:\b)(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|client[_\-]?secret|secret|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|token|password|passwd|pwd|key)["']?[ \t]*[=:][ \t]*'(?P<secret>[^'\r\n]+)'"#,
            ],
            check: Check::None,
        },
        Builtin {
            name: "jwt",
            // Header and payload are base64url JSON objects, so both start `eyJ` (`{"`).
            regexes: &[r"(?-u:\b)eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"],
            check: Check::None,
        },
    ];

    /// The built-in pattern called `name`.
    pub fn get(name: &str) -> Option<&'static Builtin> {
        BUILTINS.iter().find(|b| b.name == name)
    }

    /// The regexes of a built-in pattern.
    pub fn regexes_of(b: &Builtin) -> Vec<String> {
        if b.name == "ipv4" {
            let o = IPV4_OCTET;
            vec![format!(r"(?-u:\b)(?:{o}\.){{3}}{o}(?-u:\b)")]
        } else {
            b.regexes.iter().map(|r| (*r).to_string()).collect()
        }
    }
}

/// A check a regex candidate must pass to count as a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// The digits pass the Luhn checksum.
    Luhn,
    /// `std` parses it as an IPv6 address, and no word character or colon touches it.
    Ipv6,
}

impl Check {
    /// Whether `text[start..end]` (a regex candidate) passes.
    pub fn passes(self, text: &str, start: usize, end: usize) -> bool {
        let candidate = &text[start..end];
        match self {
            Check::None => true,
            Check::Luhn => luhn_valid(candidate),
            Check::Ipv6 => {
                // A `.` after it means an IPv4 tail the regex did not take: not this candidate.
                let touches = |c: Option<char>, dot: bool| {
                    c.is_some_and(|c| {
                        c.is_ascii_alphanumeric() || c == '_' || c == ':' || (dot && c == '.')
                    })
                };
                !touches(text[..start].chars().next_back(), false)
                    && !touches(text[end..].chars().next(), true)
                    && candidate.bytes().any(|b| b.is_ascii_hexdigit())
                    && candidate.parse::<std::net::Ipv6Addr>().is_ok()
            }
        }
    }
}

/// The Luhn checksum over the digits of `s` (other characters skipped).
pub fn luhn_valid(s: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for (i, d) in s
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        count += 1;
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    (13..=19).contains(&count) && sum.is_multiple_of(10)
}
