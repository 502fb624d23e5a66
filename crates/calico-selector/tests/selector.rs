//! The Calico selector language from the outside: what parses to what, the
//! exact error messages people read, evaluation on labels, and the
//! print-then-parse round trip.

use std::collections::BTreeMap;

use auditrail_calico_selector::{NAMESPACE_LABEL, Selector, SelectorError, parse};
use proptest::prelude::*;

fn s(text: &str) -> String {
    text.to_owned()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

fn ok(text: &str) -> Selector {
    match parse(text) {
        Ok(sel) => sel,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(sel) => panic!("{text:?} should not parse, got {sel:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_every_form() {
    use Selector::*;
    let cases: Vec<(&str, Selector)> = vec![
        ("", All),
        ("   ", All),
        ("all()", All),
        ("global()", Global),
        ("has(app)", Has(s("app"))),
        (
            "has( projectcalico.org/name )",
            Has(s("projectcalico.org/name")),
        ),
        ("app == 'web'", Equals(s("app"), s("web"))),
        ("app==\"web\"", Equals(s("app"), s("web"))),
        ("app != \"web\"", NotEquals(s("app"), s("web"))),
        ("tier in {\"a\", 'b'}", In(s("tier"), vec![s("a"), s("b")])),
        ("tier in {}", In(s("tier"), vec![])),
        ("tier not in {\"a\"}", NotIn(s("tier"), vec![s("a")])),
        ("k contains \"x\"", Contains(s("k"), s("x"))),
        ("k starts with \"x\"", StartsWith(s("k"), s("x"))),
        ("k ends with \"x\"", EndsWith(s("k"), s("x"))),
        ("!has(a)", Not(Box::new(Has(s("a"))))),
        ("! ! has(a)", Not(Box::new(Not(Box::new(Has(s("a"))))))),
        ("(has(a))", Has(s("a"))),
        (
            "has(a) && has(b) && has(c)",
            And(vec![Has(s("a")), Has(s("b")), Has(s("c"))]),
        ),
        (
            "has(a) || has(b) && has(c)",
            Or(vec![Has(s("a")), And(vec![Has(s("b")), Has(s("c"))])]),
        ),
        (
            "(has(a) || has(b)) && has(c)",
            And(vec![Or(vec![Has(s("a")), Has(s("b"))]), Has(s("c"))]),
        ),
        (
            "(has(a) && has(b)) && has(c)",
            And(vec![And(vec![Has(s("a")), Has(s("b"))]), Has(s("c"))]),
        ),
        ("!app == \"x\"", Not(Box::new(Equals(s("app"), s("x"))))),
        // Keywords are keywords only where the grammar expects them.
        ("in == \"x\"", Equals(s("in"), s("x"))),
        ("has == \"x\"", Equals(s("has"), s("x"))),
        ("not not in {\"x\"}", NotIn(s("not"), vec![s("x")])),
        // Values may hold anything but their own quote.
        ("a == 'say \"hi\"'", Equals(s("a"), s("say \"hi\""))),
        ("a == \"it's\"", Equals(s("a"), s("it's"))),
        ("a == \"\"", Equals(s("a"), s(""))),
        ("a == \"é && ||\"", Equals(s("a"), s("é && ||"))),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text), want, "{text:?}");
    }
}

#[test]
fn errors_name_the_position_and_what_was_expected() {
    let cases = [
        ("a == ", "selector \"a == \" at 5: expected a quoted value"),
        (
            "a == b",
            "selector \"a == b\" at 5: expected a quoted value, found `b`",
        ),
        (
            "a = \"b\"",
            "selector \"a = \\\"b\\\"\" at 2: expected an operator (==, !=, in, not in, contains, starts with, ends with), found `=`",
        ),
        (
            "a",
            "selector \"a\" at 1: expected an operator (==, !=, in, not in, contains, starts with, ends with)",
        ),
        ("has(a", "selector \"has(a\" at 5: expected )"),
        (
            "has()",
            "selector \"has()\" at 4: expected a label key, found `)`",
        ),
        ("all(", "selector \"all(\" at 4: expected )"),
        (
            "foo(a)",
            "selector \"foo(a)\" at 3: expected an operator (==, !=, in, not in, contains, starts with, ends with), found `(`",
        ),
        (
            "a in \"x\"",
            "selector \"a in \\\"x\\\"\" at 5: expected {, found `\"x\"`",
        ),
        (
            "a in {\"x\" \"y\"}",
            "selector \"a in {\\\"x\\\" \\\"y\\\"}\" at 10: expected , or }, found `\"y\"`",
        ),
        (
            "a in {\"x\",}",
            "selector \"a in {\\\"x\\\",}\" at 10: expected a quoted value, found `}`",
        ),
        (
            "a in {x}",
            "selector \"a in {x}\" at 6: expected a quoted value or }, found `x`",
        ),
        (
            "a not \"x\"",
            "selector \"a not \\\"x\\\"\" at 6: expected in, found `\"x\"`",
        ),
        (
            "a starts \"x\"",
            "selector \"a starts \\\"x\\\"\" at 9: expected with, found `\"x\"`",
        ),
        (
            "has(a) has(b)",
            "selector \"has(a) has(b)\" at 7: expected &&, || or the end of the selector, found `has`",
        ),
        (
            "has(a) & has(b)",
            "selector \"has(a) & has(b)\" at 7: expected &&, || or the end of the selector, found `&`",
        ),
        ("(has(a)", "selector \"(has(a)\" at 7: expected &&, || or )"),
        (
            "has(a))",
            "selector \"has(a))\" at 6: expected &&, || or the end of the selector, found `)`",
        ),
        (
            "has(a) &&",
            "selector \"has(a) &&\" at 9: expected a label, has(…), all(), global(), ! or (",
        ),
        (
            "== \"x\"",
            "selector \"== \\\"x\\\"\" at 0: expected a label, has(…), all(), global(), ! or (, found `==`",
        ),
        (
            "a == \"x",
            "selector \"a == \\\"x\" at 5: the value opened here has no closing \"",
        ),
        (
            "a == 'x",
            "selector \"a == 'x\" at 5: the value opened here has no closing '",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), want, "{text:?}");
    }
}

#[test]
fn error_positions_are_byte_offsets() {
    // "é" is two bytes: the end is at byte 12, not character 11.
    let e = parse("a == \"é\" &&").err();
    assert_eq!(e.as_ref().map(SelectorError::position), Some(12));
    // A label is ASCII: a non-ASCII character is refused where it stands.
    assert_eq!(
        err("é == \"x\""),
        "selector \"é == \\\"x\\\"\" at 0: expected a label, has(…), all(), global(), ! or (, found `é`"
    );
    let e = parse("a == \"é\" b").err();
    assert_eq!(e.map(|e| e.position()), Some(10));
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}has(a){}", "(".repeat(64), ")".repeat(64));
    assert_eq!(ok(&deep), Selector::Has(s("a")));
    let too_deep = format!("{}has(a){}", "(".repeat(65), ")".repeat(65));
    assert!(matches!(
        parse(&too_deep),
        Err(SelectorError::TooDeep {
            position: 64,
            max: 64,
            ..
        })
    ));
    let nots = format!("{}has(a)", "!".repeat(100_000));
    assert!(matches!(parse(&nots), Err(SelectorError::TooDeep { .. })));
}

#[test]
fn evaluates_as_calico_does() {
    let web = labels(&[
        ("app", "web"),
        ("tier", "frontend"),
        ("version", "v1.2.3"),
        (NAMESPACE_LABEL, "prod"),
    ]);
    let host = labels(&[("role", "gateway")]);
    let cases: [(&str, bool, bool); 22] = [
        ("", true, true),
        ("all()", true, true),
        ("global()", false, true),
        ("!global()", true, false),
        ("has(app)", true, false),
        ("app == \"web\"", true, false),
        ("app == \"db\"", false, false),
        // != and not in also hold when the label is absent.
        ("app != \"db\"", true, true),
        ("app != \"web\"", false, true),
        ("tier in {\"frontend\", \"backend\"}", true, false),
        ("tier in {}", false, false),
        ("tier not in {\"backend\"}", true, true),
        ("tier not in {\"frontend\"}", false, true),
        ("version contains \"1.2\"", true, false),
        ("version starts with \"v1.\"", true, false),
        ("version ends with \".3\"", true, false),
        ("version ends with \"v1\"", false, false),
        ("has(app) && tier == \"frontend\"", true, false),
        ("has(app) && tier == \"backend\"", false, false),
        ("role == \"gateway\" || app == \"web\"", true, true),
        ("!(role == \"gateway\" || app == \"web\")", false, false),
        ("(has(app) || has(role)) && !has(missing)", true, true),
    ];
    for (text, on_web, on_host) in cases {
        let sel = ok(text);
        assert_eq!(sel.matches(&web), on_web, "{text:?} on web");
        assert_eq!(sel.matches(&host), on_host, "{text:?} on host");
    }
}

#[test]
fn prints_in_canonical_form() {
    let cases = [
        ("", "all()"),
        (
            "a=='x'&&(b!=\"y\"||!has(c))",
            "a == \"x\" && (b != \"y\" || !has(c))",
        ),
        (
            "(a == 'x' && b == 'y') && c == 'z'",
            "(a == \"x\" && b == \"y\") && c == \"z\"",
        ),
        ("!(has(a) && has(b))", "!(has(a) && has(b))"),
        ("k in {'a','b'}", "k in {\"a\", \"b\"}"),
        ("k not in {}", "k not in {}"),
        ("k == 'say \"hi\"'", "k == 'say \"hi\"'"),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text).to_string(), want, "{text:?}");
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.-]{0,6}",
        "[a-z]{1,5}\\.io/[a-z]{1,5}",
        Just(s("in")),
        Just(s("has")),
        Just(s("not")),
        Just(s("all")),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.&|!(){}=,-]{0,8}",
        "[a-z\"]{0,4}",
        "[a-z']{0,4}"
    ]
}

fn leaf() -> impl Strategy<Value = Selector> {
    prop_oneof![
        Just(Selector::All),
        Just(Selector::Global),
        key().prop_map(Selector::Has),
        (key(), value()).prop_map(|(k, v)| Selector::Equals(k, v)),
        (key(), value()).prop_map(|(k, v)| Selector::NotEquals(k, v)),
        (key(), prop::collection::vec(value(), 0..3)).prop_map(|(k, v)| Selector::In(k, v)),
        (key(), prop::collection::vec(value(), 0..3)).prop_map(|(k, v)| Selector::NotIn(k, v)),
        (key(), value()).prop_map(|(k, v)| Selector::Contains(k, v)),
        (key(), value()).prop_map(|(k, v)| Selector::StartsWith(k, v)),
        (key(), value()).prop_map(|(k, v)| Selector::EndsWith(k, v)),
    ]
}

fn selector() -> impl Strategy<Value = Selector> {
    leaf().prop_recursive(5, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Selector::Not(Box::new(s))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Selector::And),
            prop::collection::vec(inner, 2..4).prop_map(Selector::Or),
        ]
    })
}

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_same_tree(sel in selector()) {
        let printed = sel.to_string();
        let reparsed = parse(&printed);
        prop_assert_eq!(reparsed.as_ref(), Ok(&sel), "printed as {}", printed);
    }

    #[test]
    fn printing_keeps_the_meaning(
        sel in selector(),
        pairs in prop::collection::btree_map(key(), value(), 0..4),
    ) {
        let reparsed = parse(&sel.to_string());
        prop_assert_eq!(reparsed.map(|r| r.matches(&pairs)), Ok(sel.matches(&pairs)));
    }

    #[test]
    fn any_input_parses_or_fails_in_bounds(input in ".{0,40}") {
        match parse(&input) {
            Ok(sel) => prop_assert_eq!(parse(&sel.to_string()), Ok(sel)),
            Err(e) => prop_assert!(e.position() <= input.len()),
        }
    }
}
