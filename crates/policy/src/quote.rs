//! Go-compatible rendering of string values inside error messages.
//!
//! Validation messages must read exactly like kube-apiserver's, and those are
//! produced by Go's `strconv.Quote` (for plain strings) and `encoding/json`
//! (for lists and named string types such as `audit.Level`). Rust's `{:?}`
//! escapes differently, so this module reproduces the two Go encodings.

use std::fmt::Write as _;

/// Renders `s` the way Go's `strconv.Quote` (and `fmt`'s `%q`) does.
///
/// ASCII is handled exactly. For non-ASCII characters Go consults the Unicode
/// tables behind `unicode.IsPrint`; this uses a close approximation (controls,
/// non-ASCII spaces, common format characters and private-use code points are
/// escaped, everything else is kept).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// Renders `s` as Go's `encoding/json` marshals a string (HTML-safe escaping on).
pub(crate) fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders a string list as Go's `encoding/json` marshals a `[]string`.
pub(crate) fn go_json_string_list(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&go_json_string(item));
    }
    out.push(']');
    out
}

/// Approximates Go's `unicode.IsPrint`.
fn is_go_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !(c.is_control() || c.is_whitespace() || is_format_or_private(c))
}

/// Unicode format (Cf) characters, private-use code points and
/// non-characters that Go does not consider printable.
fn is_format_or_private(c: char) -> bool {
    matches!(
        u32::from(c),
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xE000..=0xF8FF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0xF_0000..=0x10_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_plain_and_escapes() {
        assert_eq!(go_quote("Foo"), r#""Foo""#);
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("a\nb\tc"), r#""a\nb\tc""#);
        assert_eq!(go_quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(go_quote("<&>"), r#""<&>""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
        assert_eq!(go_quote("a\u{a0}b"), r#""a\u00a0b""#);
        assert_eq!(go_quote("\u{feff}"), r#""\ufeff""#);
        assert_eq!(go_quote("\u{10ffff}"), r#""\U0010ffff""#);
    }

    #[test]
    fn go_json_escapes_html_and_controls() {
        assert_eq!(go_json_string("Foo"), r#""Foo""#);
        assert_eq!(go_json_string("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(go_json_string("\u{1}\n"), r#""\u0001\n""#);
        assert_eq!(go_json_string("\u{2028}"), r#""\u2028""#);
        assert_eq!(go_json_string("héllo\u{7f}"), "\"héllo\u{7f}\"");
    }

    #[test]
    fn go_json_list_has_no_spaces() {
        let items = vec!["/a".to_owned(), "b".to_owned()];
        assert_eq!(go_json_string_list(&items), r#"["/a","b"]"#);
        assert_eq!(go_json_string_list(&[]), "[]");
    }
}
