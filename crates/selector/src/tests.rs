//! The parser's unit tests: each key's values, quoting, operator precedence,
//! and that every invalid selector is refused with the byte position and the
//! reason a user needs to fix it. Kept out of lib.rs, which they would double.

use std::ops::Bound;

use auditrail_store::{Field, Query, Value};

use super::{KEYS, MAX_DEPTH, MAX_LEN, SelectorError, parse};

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn eq(field: Field, v: &str) -> Query {
    Query::Eq(field, s(v))
}

fn not(q: Query) -> Query {
    Query::Not(Box::new(q))
}

fn t(v: &str) -> Value {
    Value::Time(v.parse().expect("test timestamp"))
}

fn range(field: Field, lower: Bound<Value>, upper: Bound<Value>) -> Query {
    Query::Range {
        field,
        lower,
        upper,
    }
}

fn verb(v: &str) -> Query {
    eq(Field::Verb, v)
}

/// Parses every input and compares with the query built by hand.
fn check_valid(cases: Vec<(&str, Query)>) {
    for (input, expected) in cases {
        assert_eq!(parse(input), Ok(expected), "input: {input}");
    }
}

/// Checks every input fails at the byte position with a message containing
/// the text.
fn check_invalid(cases: &[(&str, usize, &str)]) {
    for &(input, position, message) in cases {
        let err = parse(input).expect_err(input);
        assert_eq!(err.position, position, "input: {input}, error: {err}");
        assert!(
            err.message.contains(message),
            "input: {input}\nmessage: {}\nwanted:  {message}",
            err.message
        );
    }
}

#[test]
fn empty_enum_verb_and_code_keys() {
    use Bound::{Excluded, Included, Unbounded};
    use Field as F;
    check_valid(vec![
        // Empty input.
        ("", Query::All),
        ("  \t\n ", Query::All),
        // level and stage: exact enum names, = != IN NOTIN.
        ("level = Metadata", eq(F::Level, "Metadata")),
        ("level == None", eq(F::Level, "None")),
        ("level != Request", not(eq(F::Level, "Request"))),
        (
            "level IN {None, RequestResponse}",
            Query::In(F::Level, vec![s("None"), s("RequestResponse")]),
        ),
        (
            "level NOTIN (Metadata)",
            not(Query::In(F::Level, vec![s("Metadata")])),
        ),
        ("stage = ResponseComplete", eq(F::Stage, "ResponseComplete")),
        (
            "stage in {RequestReceived,ResponseStarted,Panic}",
            Query::In(
                F::Stage,
                vec![s("RequestReceived"), s("ResponseStarted"), s("Panic")],
            ),
        ),
        // verb, bare and quoted both ways.
        ("verb = get", verb("get")),
        ("verb=\"list\"", verb("list")),
        ("verb == 'watch'", verb("watch")),
        ("verb != delete", not(verb("delete"))),
        ("verb in (get)", Query::In(F::Verb, vec![s("get")])),
        (
            "verb notin {get, list}",
            not(Query::In(F::Verb, vec![s("get"), s("list")])),
        ),
        // responseStatus.code: integers, every operator.
        (
            "responseStatus.code = 200",
            Query::Eq(F::ResponseCode, Value::Int(200)),
        ),
        (
            "responseStatus.code == '201'",
            Query::Eq(F::ResponseCode, Value::Int(201)),
        ),
        (
            "responseStatus.code != 404",
            not(Query::Eq(F::ResponseCode, Value::Int(404))),
        ),
        (
            "responseStatus.code < 300",
            range(F::ResponseCode, Unbounded, Excluded(Value::Int(300))),
        ),
        (
            "responseStatus.code <= 100",
            range(F::ResponseCode, Unbounded, Included(Value::Int(100))),
        ),
        (
            "responseStatus.code > 499",
            range(F::ResponseCode, Excluded(Value::Int(499)), Unbounded),
        ),
        (
            "responseStatus.code>=599",
            range(F::ResponseCode, Included(Value::Int(599)), Unbounded),
        ),
        (
            "responseStatus.code IN {200, 201}",
            Query::In(F::ResponseCode, vec![Value::Int(200), Value::Int(201)]),
        ),
        (
            "responseStatus.code NotIn (500)",
            not(Query::In(F::ResponseCode, vec![Value::Int(500)])),
        ),
    ]);
}

#[test]
fn ip_and_timestamp_keys() {
    use Bound::{Excluded, Included, Unbounded};
    use Field as F;
    check_valid(vec![
        // sourceIPs: validated, stored as written.
        ("sourceIPs = 10.0.0.1", eq(F::SourceIps, "10.0.0.1")),
        ("sourceIPs = ::1", eq(F::SourceIps, "::1")),
        (
            "sourceIPs != \"2001:DB8::0001\"",
            not(eq(F::SourceIps, "2001:DB8::0001")),
        ),
        (
            "sourceIPs IN {192.168.1.1, fe80::1}",
            Query::In(F::SourceIps, vec![s("192.168.1.1"), s("fe80::1")]),
        ),
        // Timestamps.
        (
            "requestReceivedTimestamp = 2024-05-01T12:00:00Z",
            Query::Eq(F::RequestReceived, t("2024-05-01T12:00:00Z")),
        ),
        (
            "requestReceivedTimestamp >= 2024-05-01T12:00:00.5Z",
            range(
                F::RequestReceived,
                Included(t("2024-05-01T12:00:00.5Z")),
                Unbounded,
            ),
        ),
        (
            "requestReceivedTimestamp > 2024-05-01T12:00:00Z",
            range(
                F::RequestReceived,
                Excluded(t("2024-05-01T12:00:00Z")),
                Unbounded,
            ),
        ),
        (
            "stageTimestamp < 2024-05-01T14:00:00+02:00",
            range(
                F::StageTimestamp,
                Unbounded,
                Excluded(t("2024-05-01T12:00:00Z")),
            ),
        ),
        (
            "stageTimestamp <= '2024-05-01T12:00:00-00:30'",
            range(
                F::StageTimestamp,
                Unbounded,
                Included(t("2024-05-01T12:30:00Z")),
            ),
        ),
        (
            "stageTimestamp != 2024-05-01T12:00:00Z",
            not(Query::Eq(F::StageTimestamp, t("2024-05-01T12:00:00Z"))),
        ),
        (
            "stageTimestamp in {2024-05-01T12:00:00Z, 2024-05-02T12:00:00Z}",
            Query::In(
                F::StageTimestamp,
                vec![t("2024-05-01T12:00:00Z"), t("2024-05-02T12:00:00Z")],
            ),
        ),
    ]);
}

#[test]
fn keyword_keys_and_quoting() {
    use Field as F;
    check_valid(vec![
        // Keyword fields, including "" for empty or absent.
        ("name = coredns", eq(F::Name, "coredns")),
        (
            "objectRef.name = coredns-abc",
            eq(F::ObjectName, "coredns-abc"),
        ),
        ("objectRef.namespace = \"\"", eq(F::Namespace, "")),
        ("objectRef.namespace != ''", not(eq(F::Namespace, ""))),
        (
            "objectRef.resource IN {pods, secrets}",
            Query::In(F::Resource, vec![s("pods"), s("secrets")]),
        ),
        (
            "objectRef.apiGroup = projectcalico.org",
            eq(F::ApiGroup, "projectcalico.org"),
        ),
        ("objectRef.apiVersion = v1", eq(F::ApiVersion, "v1")),
        (
            "auditID = 0a1b2c3d-0000-4000-8000-123456789abc",
            eq(F::AuditId, "0a1b2c3d-0000-4000-8000-123456789abc"),
        ),
        ("auditID = not-a-uuid", eq(F::AuditId, "not-a-uuid")),
        // Kinds as people write them compile to the resources they name.
        ("kind = Pod", Query::In(F::Resource, vec![s("pods")])),
        ("kind = po", Query::In(F::Resource, vec![s("pods")])),
        (
            "kind = netpol",
            Query::In(F::Resource, vec![s("networkpolicies")]),
        ),
        (
            "kind IN {NetworkPolicy, configmaps}",
            Query::Or(vec![
                Query::In(F::Resource, vec![s("networkpolicies")]),
                Query::In(F::Resource, vec![s("configmaps")]),
            ]),
        ),
        (
            "kind NOTIN {Lease}",
            not(Query::In(F::Resource, vec![s("leases")])),
        ),
        (
            "kind = globalnetworkpolicies.projectcalico.org",
            Query::And(vec![
                Query::In(F::Resource, vec![s("globalnetworkpolicies")]),
                eq(F::ApiGroup, "projectcalico.org"),
            ]),
        ),
        // Unknown kinds are resource names (the kind shown for them).
        ("kind = Widgets", eq(F::Resource, "widgets")),
        ("objectRef.subresource = exec", eq(F::Subresource, "exec")),
        ("objectRef.subresource = \"\"", eq(F::Subresource, "")),
        (
            "requestURI = \"/api/v1/pods?watch=true\"",
            eq(F::RequestUri, "/api/v1/pods?watch=true"),
        ),
        (
            "user.username = system:serviceaccount:kube-system:foo",
            eq(F::Username, "system:serviceaccount:kube-system:foo"),
        ),
        (
            "user.groups notin {system:masters}",
            not(Query::In(F::UserGroups, vec![s("system:masters")])),
        ),
        // Quoting and escapes; keywords as quoted values; non-ASCII.
        (r#"user.username = "a\"b\\c""#, eq(F::Username, r#"a"b\c"#)),
        (r"user.username = 'it\'s'", eq(F::Username, "it's")),
        (r#"user.username = "it's""#, eq(F::Username, "it's")),
        (
            r#"user.username = 'say "hi"'"#,
            eq(F::Username, "say \"hi\""),
        ),
        ("user.username = 'a b (c)'", eq(F::Username, "a b (c)")),
        ("user.username = jürgen", eq(F::Username, "jürgen")),
        ("user.username = \"in\"", eq(F::Username, "in")),
        (
            "user.username IN {'and', \"NOT\"}",
            Query::In(F::Username, vec![s("and"), s("NOT")]),
        ),
    ]);
}

#[test]
fn boolean_operators_precedence_and_parentheses() {
    use Field as F;
    check_valid(vec![
        // Boolean operators, both spellings, any case.
        (
            "verb = get AND verb = list",
            Query::And(vec![verb("get"), verb("list")]),
        ),
        (
            "verb = get && verb = list and verb = watch",
            Query::And(vec![verb("get"), verb("list"), verb("watch")]),
        ),
        (
            "verb = get OR verb = list",
            Query::Or(vec![verb("get"), verb("list")]),
        ),
        (
            "verb=get||verb=list or verb=watch",
            Query::Or(vec![verb("get"), verb("list"), verb("watch")]),
        ),
        ("NOT verb = get", not(verb("get"))),
        ("!verb = get", not(verb("get"))),
        ("not not verb = get", not(not(verb("get")))),
        ("! (verb = get)", not(verb("get"))),
        (
            "verb=get&&kind!=Pod",
            Query::And(vec![
                verb("get"),
                not(Query::In(F::Resource, vec![s("pods")])),
            ]),
        ),
        // Precedence: NOT > AND > OR.
        (
            "verb = get OR verb = list AND verb = watch",
            Query::Or(vec![
                verb("get"),
                Query::And(vec![verb("list"), verb("watch")]),
            ]),
        ),
        (
            "verb = get AND verb = list OR verb = watch",
            Query::Or(vec![
                Query::And(vec![verb("get"), verb("list")]),
                verb("watch"),
            ]),
        ),
        (
            "NOT verb = get AND verb = list",
            Query::And(vec![not(verb("get")), verb("list")]),
        ),
        (
            "NOT verb = get OR verb = list",
            Query::Or(vec![not(verb("get")), verb("list")]),
        ),
        // Parentheses.
        ("((verb = get))", verb("get")),
        (
            "(verb = get OR verb = list) AND kind = Pod",
            Query::And(vec![
                Query::Or(vec![verb("get"), verb("list")]),
                Query::In(F::Resource, vec![s("pods")]),
            ]),
        ),
        (
            "NOT (verb = get AND (verb = list OR verb = watch))",
            not(Query::And(vec![
                verb("get"),
                Query::Or(vec![verb("list"), verb("watch")]),
            ])),
        ),
        (
            "(verb = get AND verb = list) AND verb = watch",
            Query::And(vec![
                Query::And(vec![verb("get"), verb("list")]),
                verb("watch"),
            ]),
        ),
    ]);
}

#[test]
fn invalid_keys_and_operators() {
    check_invalid(&[
        // Keys.
        (
            "verbb = get",
            0,
            "unknown key \"verbb\"; known keys: level, stage, verb, responseStatus.code",
        ),
        (
            "kind = Pod AND Verb = get",
            15,
            "(keys are case-sensitive; did you mean \"verb\"?)",
        ),
        (
            "\"verb\" = get",
            0,
            "expected a key, NOT or '(', found string \"verb\"",
        ),
        // Operators.
        (
            "verb foo",
            5,
            "expected a comparison operator (= != < <= > >= IN NOTIN) after key \"verb\", found \"foo\"",
        ),
        ("verb", 4, "after key \"verb\", found end of input"),
        (
            "verb < a",
            5,
            "operator < does not apply to key verb (it takes = != IN NOTIN)",
        ),
        (
            "level >= Request",
            6,
            "operator >= does not apply to key level",
        ),
        (
            "user.groups > a",
            12,
            "operator > does not apply to key user.groups",
        ),
    ]);
}

#[test]
fn invalid_values_and_strings() {
    check_invalid(&[
        // Values.
        (
            "verb =",
            6,
            "expected a value after '=', found end of input",
        ),
        ("verb == )", 8, "expected a value after '==', found \")\""),
        (
            "verb = in",
            7,
            "found \"in\" (quote values that are spelled like keywords)",
        ),
        ("verb = \"\"", 7, "verb must not be empty"),
        (
            "verb = DELETE",
            7,
            "verb must be one of get, list, watch, create, update, patch, delete, \
             deletecollection, proxy, post, put, head, options, connect, trace, found \"DELETE\" \
             (verbs are lower case: did you mean delete?)",
        ),
        ("verb IN {get, delet}", 14, "found \"delet\""),
        ("kind = \"\"", 7, "kind must not be empty"),
        (
            "level = Foo",
            8,
            "level must be one of None, Metadata, Request, RequestResponse, found \"Foo\"",
        ),
        ("level = metadata", 8, "found \"metadata\""),
        (
            "stage = Done",
            8,
            "stage must be one of RequestReceived, ResponseStarted, ResponseComplete, Panic, found \"Done\"",
        ),
        (
            "responseStatus.code = 99",
            22,
            "from 100 to 599, found \"99\"",
        ),
        (
            "responseStatus.code >= 600",
            23,
            "from 100 to 599, found \"600\"",
        ),
        (
            "responseStatus.code = abc",
            22,
            "must be an HTTP status code from 100 to 599, found \"abc\"",
        ),
        ("responseStatus.code IN {200, 2000}", 29, "found \"2000\""),
        (
            "sourceIPs = 10.0.0.256",
            12,
            "sourceIPs must be an IPv4 or IPv6 address, found \"10.0.0.256\"",
        ),
        ("sourceIPs = localhost", 12, "IPv4 or IPv6 address"),
        (
            "requestReceivedTimestamp >= 2024-05-01T12:00:00",
            28,
            "with a UTC offset, like 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00; \
             found \"2024-05-01T12:00:00\", which has no offset",
        ),
        ("stageTimestamp > 2024-05-01", 17, "which has no offset"),
        (
            "stageTimestamp = yesterday",
            17,
            "must be an RFC 3339 timestamp",
        ),
        ("stageTimestamp < 2024-13-01T00:00:00Z", 17, "RFC 3339"),
        // Strings.
        (
            "verb = \"get",
            7,
            "unterminated string: this \" is never closed",
        ),
        (
            "verb = 'get\\'",
            7,
            "unterminated string: this ' is never closed",
        ),
        ("name = \"a\\nb\"", 9, "found \"\\n\""),
        // A lexing error later in the input does not hide an earlier mistake.
        ("verb < \"unterminated", 5, "operator < does not apply"),
        (
            "name = a & kind = b",
            9,
            "expected \"&&\", found a single \"&\"",
        ),
        ("name = a | kind = b", 9, "single \"|\""),
    ]);
}

#[test]
fn invalid_structure_and_lists() {
    check_invalid(&[
        // Parentheses.
        (
            "(verb = get",
            0,
            "unbalanced parenthesis: this '(' is never closed",
        ),
        ("((verb = get)", 0, "unbalanced parenthesis"),
        (
            "verb = get)",
            10,
            "unbalanced parenthesis: this ')' has no matching '('",
        ),
        ("(verb = get))", 12, "unbalanced parenthesis"),
        (
            "(verb = get kind = Pod)",
            12,
            "expected AND, OR or ')', found \"kind\"",
        ),
        ("()", 1, "expected a key, NOT or '(', found \")\""),
        // Lists.
        (
            "verb IN {}",
            9,
            "expected a value in the list after IN, found \"}\" (a list needs at least one value)",
        ),
        ("verb notin ()", 12, "(a list needs at least one value)"),
        (
            "name IN {a,}",
            11,
            "expected a value after ',', found \"}\" (trailing commas are not allowed)",
        ),
        ("name IN (a, b,)", 14, "trailing commas"),
        ("name IN {a b}", 11, "expected ',' or '}', found \"b\""),
        ("name IN {a)", 10, "expected ',' or '}', found \")\""),
        (
            "name IN {a, b",
            13,
            "expected ',' or '}', found end of input",
        ),
        (
            "verb IN a",
            8,
            "expected '{' or '(' to start a list after IN, found \"a\"",
        ),
        ("verb IN", 7, "found end of input"),
        // Structure.
        (
            "verb = get get",
            11,
            "expected AND, OR or end of input, found \"get\"",
        ),
        ("verb = get (", 11, "found \"(\""),
        (
            "verb = get AND",
            14,
            "expected a key, NOT or '(', found end of input",
        ),
        ("verb = get OR AND kind = Pod", 14, "found \"AND\""),
        ("NOT", 3, "found end of input"),
        (
            "AND verb = get",
            0,
            "expected a key, NOT or '(', found \"AND\"",
        ),
    ]);
}

#[test]
fn error_display_and_column() {
    let err = parse("verb = get AND").expect_err("dangling AND");
    assert_eq!(
        err.to_string(),
        "at position 14: expected a key, NOT or '(', found end of input"
    );

    let input = "user.username = 'jürgen' x";
    let err = parse(input).expect_err("trailing garbage");
    assert_eq!(err.position, 26);
    assert_eq!(err.column(input), 26);
    assert_eq!(
        SelectorError {
            position: 0,
            message: String::new()
        }
        .column(input),
        1
    );
}

#[test]
fn every_key_is_usable() {
    let mut fields = std::collections::HashSet::new();
    for key in KEYS {
        let value = match *key {
            "level" => "Metadata",
            "stage" => "Panic",
            "verb" => "get",
            "responseStatus.code" => "200",
            "sourceIPs" => "10.0.0.1",
            "requestReceivedTimestamp" | "stageTimestamp" => "2024-05-01T12:00:00Z",
            _ => "x",
        };
        match parse(&format!("{key} = {value}")) {
            // `kind` compiles to the resources it names.
            Ok(Query::Eq(Field::Resource, _)) if *key == "kind" => {}
            Ok(Query::Eq(field, _)) => assert!(fields.insert(field), "{key}: field used twice"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(fields.len(), KEYS.len() - 1);
}

/// No prefix of a valid selector panics, and every error points inside the
/// input at a character boundary.
#[test]
fn prefixes_never_panic_and_errors_point_into_the_input() {
    let inputs = [
        r#"NOT (user.groups IN {get, "li\"st"} && objectRef.namespace != '') || responseStatus.code >= 500"#,
        "user.username = 'jürgen' AND stageTimestamp < 2024-05-01T14:00:00+02:00",
        "!(sourceIPs notin (::1, 10.0.0.1)) or level == RequestResponse",
    ];
    for input in inputs {
        assert!(parse(input).is_ok(), "{input}");
        for (end, _) in input.char_indices() {
            let prefix = &input[..end];
            if let Err(err) = parse(prefix) {
                assert!(err.position <= prefix.len(), "{prefix:?}: {err}");
                assert!(prefix.is_char_boundary(err.position), "{prefix:?}: {err}");
            }
        }
    }
}

/// Hostile selectors are refused with a position, never by exhausting the
/// stack, and errors never echo a huge input back.
#[test]
fn nesting_and_size_are_bounded() {
    let deep = |n: usize, open: &str, close: &str| {
        format!("{}verb = get{}", open.repeat(n), close.repeat(n))
    };
    // At the bound: accepted.
    assert!(parse(&deep(MAX_DEPTH, "(", ")")).is_ok());
    assert!(parse(&deep(MAX_DEPTH, "!", "")).is_ok());
    assert!(parse(&deep(MAX_DEPTH / 2, "NOT (", ")")).is_ok());
    // Beyond it, balanced or not, in every spelling: refused where the
    // bound is crossed.
    for (input, position) in [
        (deep(MAX_DEPTH + 1, "(", ")"), MAX_DEPTH),
        (deep(500, "!", ""), MAX_DEPTH),
        (deep(1000, "NOT ", ""), MAX_DEPTH * 4),
        ("(".repeat(2000), MAX_DEPTH),
        (deep(10_000, "(", ")"), MAX_DEPTH),
    ] {
        let err = parse(&input).expect_err("too deep");
        assert_eq!(err.position, position, "{err}");
        assert!(
            err.message
                .contains("nests NOT, '!' and parentheses more than 64 levels deep"),
            "{err}"
        );
    }
    let long = format!("user.username = {}", "x".repeat(MAX_LEN));
    let err = parse(&long).expect_err("too long");
    assert!(err.message.contains("at most 65536"), "{err}");
    // A long bad value is quoted by its start only.
    let value = "y".repeat(5000);
    let err = parse(&format!("level = {value}")).expect_err("bad level");
    assert!(err.message.len() < 300, "{}", err.message);
    assert!(err.message.contains("(5000 bytes)"), "{err}");
    let err = parse(&format!("{value} = 1")).expect_err("bad key");
    assert!(err.message.len() < 700, "{}", err.message);
}
