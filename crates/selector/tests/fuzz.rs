//! Property-based fuzzing of the selector language: any text, soups of its
//! own tokens, deep `!`/`NOT`/`(` nesting, inputs around the length bound,
//! and generated valid selectors. Runs 256 cases per property by default;
//! `PROPTEST_CASES=100000 cargo test -p auditrail-selector fuzz` runs more.

use auditrail_selector::{MAX_DEPTH, MAX_LEN, SelectorError, parse};
use auditrail_store::Query;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// How deep a compiled query nests (every backend walks it recursively).
fn depth(q: &Query) -> usize {
    match q {
        Query::And(items) | Query::Or(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Query::Not(inner) => 1 + depth(inner),
        _ => 1,
    }
}

/// The deepest a query of a selector within the bounds can be: each level
/// of `NOT`/parentheses adds at most an `And`, an `Or` and a `Not`, and a
/// comparison compiles to at most three levels (`kind NOTIN {…}`).
const MAX_QUERY_DEPTH: usize = 3 * (MAX_DEPTH + 1) + 3;

/// What every answer must be: a query that backends can walk, or an error
/// whose position is a char boundary inside the input and whose message
/// says something.
fn check(input: &str) -> Result<Query, SelectorError> {
    let result = parse(input);
    match &result {
        Ok(query) => assert!(depth(query) <= MAX_QUERY_DEPTH, "{input:?}"),
        Err(err) => {
            assert!(err.position <= input.len(), "{err} for {input:?}");
            assert!(
                input.is_char_boundary(err.position),
                "position {} is inside a character of {input:?}",
                err.position
            );
            assert!(!err.message.trim().is_empty());
            let column = err.column(input);
            assert!(column >= 1 && column <= input.chars().count() + 1);
            assert!(
                err.message.len() < 2048,
                "an error must not echo a long input: {} bytes",
                err.message.len()
            );
        }
    }
    result
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    ",",
    "=",
    "==",
    "!=",
    "!",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "&",
    "|",
    "AND",
    "OR",
    "NOT",
    "IN",
    "NOTIN",
    "and",
    "Or",
    "not",
    "in",
    "notin",
    "\"",
    "'",
    "\\",
    "\"a\\\"b\"",
    "'x\\'y'",
    "\"\\q\"",
    "\"",
    "verb",
    "level",
    "stage",
    "responseStatus.code",
    "sourceIPs",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "name",
    "objectRef.name",
    "objectRef.namespace",
    "kind",
    "user.username",
    "user.groups",
    "Verb",
    "create",
    "get",
    "Metadata",
    "ResponseComplete",
    "403",
    "99",
    "600",
    "-1",
    "99999999999999999999",
    "10.0.0.1",
    "::1",
    "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00",
    "netpol",
    "NetworkPolicy",
    "\"\"",
    "é",
    "🦀",
    "\u{0}",
    "\u{3000}",
];

const SPACES: &[&str] = &["", " ", "  ", "\t", "\n", "\u{a0}", "\u{2003}"];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::sample::select(TOKENS), prop::sample::select(SPACES)),
        0..24,
    )
    .prop_map(|parts| parts.into_iter().flat_map(|(t, s)| [t, s]).collect())
}

/// A valid comparison, as text.
fn comparison() -> impl Strategy<Value = String> {
    let quoted = ".{0,10}"
        .prop_map(|s: String| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")));
    prop_oneof![
        prop::sample::select(&["create", "get", "delete", "deletecollection"][..])
            .prop_map(|v| format!("verb = {v}")),
        prop::sample::select(&["None", "Metadata", "RequestResponse"][..])
            .prop_map(|v| format!("level != {v}")),
        (
            100..=599i32,
            prop::sample::select(&["<", "<=", ">", ">=", "="][..])
        )
            .prop_map(|(c, op)| format!("responseStatus.code {op} {c}")),
        prop::sample::select(&["10.0.0.1", "\"::1\"", "'fe80::1'"][..])
            .prop_map(|ip| format!("sourceIPs IN {{{ip}, 127.0.0.1}}")),
        Just("stageTimestamp > 2024-05-01T12:00:00Z".to_owned()),
        prop::sample::select(&["netpol", "Pod", "deployments.apps", "unknownthings"][..])
            .prop_map(|k| format!("kind NOTIN ({k})")),
        (
            prop::sample::select(&["objectRef.name", "user.username", "requestURI", "auditID"][..]),
            quoted
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
    ]
}

/// A valid selector of bounded depth, as text.
fn selector() -> impl Strategy<Value = String> {
    comparison().prop_recursive(6, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.clone().prop_map(|a| format!("NOT ({a})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

const NESTERS: &[&str] = &["!", "NOT ", "not ", "(", "! (", "NOT(", "( !", "(("];

proptest! {
    #![proptest_config(config())]

    /// Any text: a query or a well-placed error.
    #[test]
    fn fuzz_selector_any_text(input in ".{0,80}") {
        let _ = check(&input);
    }

    /// Sequences of the language's own tokens, which get much further into
    /// the parser than random text.
    #[test]
    fn fuzz_selector_token_soup(input in soup()) {
        let _ = check(&input);
    }

    /// Generated valid selectors parse, and neither parentheses nor white
    /// space around them change what they compile to.
    #[test]
    fn fuzz_selector_valid(input in selector()) {
        let query = check(&input).expect("a generated selector is valid");
        prop_assert_eq!(check(&format!("({input})")), Ok(query.clone()));
        prop_assert_eq!(check(&format!(" \t{input}\n ")), Ok(query));
    }

    /// Deep `!`, `NOT` and `(` sequences: accepted up to the bound, refused
    /// beyond it at the first token too deep, never a stack overflow.
    #[test]
    fn fuzz_selector_deep_nesting(
        nesters in prop::collection::vec(prop::sample::select(NESTERS), 0..120),
        close in any::<bool>(),
        tail in prop_oneof![Just("verb = get"), Just(""), Just("kind NOTIN {pod}"), Just(")")],
    ) {
        let opens: usize = nesters.iter().map(|n| n.matches('(').count()).sum();
        let levels: usize = nesters
            .iter()
            .map(|n| n.matches('(').count() + usize::from(n.contains('!') || n.contains("NOT") || n.contains("not")))
            .sum();
        let mut input: String = nesters.concat();
        input.push_str(tail);
        if close {
            input.push_str(&")".repeat(opens));
        }
        let result = check(&input);
        if levels > MAX_DEPTH {
            let err = result.expect_err("deeper than the bound");
            prop_assert!(err.message.contains("levels deep"), "{}", err);
        } else if close && tail == "verb = get" {
            prop_assert!(result.is_ok(), "{:?}: {:?}", input, result);
        }
    }

    /// Inputs around the length bound, with multi-byte characters where
    /// the bound falls.
    #[test]
    fn fuzz_selector_long(
        fill in prop::sample::select(&["x", "é", "€", "🦀", "(", "!"][..]),
        extra in 0..8usize,
        prefix in prop::sample::select(&["user.username = ", "", "name IN {"][..]),
    ) {
        let mut input = prefix.to_owned();
        while input.len() < MAX_LEN - 4 + extra {
            input.push_str(fill);
        }
        let _ = check(&input);
    }
}

/// Regression inputs found while fuzzing, as plain tests.
mod found {
    use super::*;

    /// Found by `fuzz_selector_long`: a selector over the length bound had
    /// its error at byte `MAX_LEN` even when that byte is inside a
    /// character, so `column` could not point at it.
    #[test]
    fn the_length_error_is_on_a_char_boundary() {
        // 7 bytes, then 2-byte characters: byte MAX_LEN is inside one.
        let mut input = "name = ".to_owned();
        while input.len() <= MAX_LEN {
            input.push('é');
        }
        assert!(!input.is_char_boundary(MAX_LEN));
        let err = check(&input).expect_err("too long");
        assert!(input.is_char_boundary(err.position), "{err}");
        assert!(err.position <= MAX_LEN);
    }
}
