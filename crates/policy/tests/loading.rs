//! Loading checks that mirror kube-apiserver's policy reader.

use auditrail_policy::{LoadError, MAX_POLICY_BYTES, Policy};

const RULES: &str = "rules:\n- level: Metadata\n";

fn load_err(src: &str) -> LoadError {
    Policy::from_yaml(src).expect_err("should not load")
}

#[test]
fn v1alpha1_is_rejected_naming_the_accepted_versions() {
    let err = load_err(&format!(
        "apiVersion: audit.k8s.io/v1alpha1\nkind: Policy\n{RULES}"
    ));
    assert_eq!(
        err,
        LoadError::UnsupportedApiVersion {
            found: "audit.k8s.io/v1alpha1".to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        r#"unsupported audit policy apiVersion "audit.k8s.io/v1alpha1"; supported versions are "audit.k8s.io/v1" and "audit.k8s.io/v1beta1""#
    );
}

#[test]
fn other_api_versions_are_rejected() {
    for bad in [
        "v1",
        "audit.k8s.io/v2",
        "audit.k8s.io",
        "Audit.k8s.io/v1",
        "\"\"",
    ] {
        let err = load_err(&format!("apiVersion: {bad}\nkind: Policy\n{RULES}"));
        assert!(
            matches!(err, LoadError::UnsupportedApiVersion { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        load_err(&format!("kind: Policy\n{RULES}")),
        LoadError::MissingApiVersion
    );
}

#[test]
fn wrong_or_missing_kind_is_rejected() {
    let err = load_err(&format!(
        "apiVersion: audit.k8s.io/v1\nkind: Event\n{RULES}"
    ));
    assert_eq!(
        err.to_string(),
        r#"unsupported kind "Event" for audit.k8s.io/v1; expected "Policy""#
    );
    assert!(matches!(
        load_err(&format!(
            "apiVersion: audit.k8s.io/v1\nkind: policy\n{RULES}"
        )),
        LoadError::WrongKind { .. }
    ));
    assert_eq!(
        load_err(&format!("apiVersion: audit.k8s.io/v1\n{RULES}")),
        LoadError::MissingKind
    );
}

#[test]
fn zero_rules_is_rejected_like_the_api_server() {
    for src in [
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\n",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n",
    ] {
        let err = load_err(src);
        assert_eq!(err, LoadError::NoRules, "{src}");
        assert_eq!(err.to_string(), "loaded illegal policy with 0 rules");
    }
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    // Line 5 is indented deeper than its siblings: a mapping value where none is allowed.
    let src = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n   verbs: [get]\n";
    let err = load_err(src);
    assert!(matches!(err, LoadError::Parse { .. }), "{err:?}");
    assert_eq!(err.line(), Some(5), "{err}");
    assert!(err.column().is_some(), "{err}");
    assert!(err.to_string().contains("line 5"), "{err}");
}

#[test]
fn unterminated_flow_sequence_reports_a_position() {
    let src = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [a, b\n- level: Metadata\n";
    let err = load_err(src);
    assert!(matches!(err, LoadError::Parse { .. }), "{err:?}");
    assert!(err.line().is_some_and(|l| l >= 5), "{err}");
}

#[test]
fn type_errors_report_the_line() {
    let src = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: maybe\nrules:\n- level: None\n";
    let err = load_err(src);
    assert!(matches!(err, LoadError::Decode { .. }), "{err:?}");
    assert_eq!(err.line(), Some(3), "{err}");
}

#[test]
fn json_is_accepted_by_both_loaders() {
    let json = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata","nonResourceURLs":["/healthz*"]}]}"#;
    let from_json = Policy::from_json(json).expect("json loads");
    let from_yaml = Policy::from_yaml(json).expect("json is yaml");
    assert_eq!(from_json, from_yaml);
    assert_eq!(from_json.rules[0].non_resource_urls, vec!["/healthz*"]);
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = Policy::from_json(
        "{\n  \"apiVersion\": \"audit.k8s.io/v1\",\n  \"kind\": \"Policy\",\n  \"rules\": [\n}\n",
    )
    .expect_err("malformed");
    assert!(matches!(err, LoadError::Parse { .. }), "{err:?}");
    assert_eq!(err.line(), Some(5), "{err}");
}

#[test]
fn json_checks_match_yaml_checks() {
    assert_eq!(
        Policy::from_json(
            r#"{"apiVersion":"audit.k8s.io/v1alpha1","kind":"Policy","rules":[{"level":"None"}]}"#
        ),
        Err(LoadError::UnsupportedApiVersion {
            found: "audit.k8s.io/v1alpha1".to_owned()
        })
    );
    assert_eq!(
        Policy::from_json(r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[]}"#),
        Err(LoadError::NoRules)
    );
}

#[test]
fn loaded_policy_with_errors_reports_them_all_like_the_aggregate() {
    let policy = Policy::from_yaml(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n- level: Foo\n- verbs: [get]\n  resources:\n  - group: apps/v1\n",
    )
    .expect("decodes");
    let errs = policy.validate().expect_err("invalid");
    assert_eq!(
        errs.to_string(),
        concat!(
            r#"[rules[1].level: Unsupported value: "Foo": supported values: "None", "Metadata", "Request", "RequestResponse", "#,
            r#"rules[2].level: Required value, "#,
            r#"rules[2].resources.group: Invalid value: "apps/v1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')]"#,
        )
    );
}

/// Hostile documents are refused before parsing: a deeply nested flow
/// collection (whose parsing cost grows faster than its size) and text far
/// larger than any audit policy.
#[test]
fn deep_and_huge_documents_are_refused_before_parsing() {
    let deep = format!("rules: {}", "{a: ".repeat(100_000));
    let err = Policy::from_yaml(&deep).expect_err("deep");
    assert_eq!(err, LoadError::TooDeep { line: 1, max: 64 });
    assert_eq!(
        err.to_string(),
        "the policy nests '{' and '[' more than 64 levels deep (line 1)"
    );
    let deep_json = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert!(matches!(
        Policy::from_json(&deep_json).expect_err("deep json"),
        LoadError::TooDeep { .. }
    ));
    // Brackets in quotes and comments do not count.
    let quoted = format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\n# {}\nrules:\n- level: Metadata\n  users: [\"{}\", '{}']\n",
        "[".repeat(100),
        "{".repeat(100),
        "[".repeat(100)
    );
    let policy = Policy::from_yaml(&quoted).expect("brackets in strings and comments");
    assert_eq!(policy.rules[0].users.len(), 2);
    let huge = format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n# {}\n",
        "x".repeat(MAX_POLICY_BYTES)
    );
    let err = Policy::from_yaml(&huge).expect_err("huge");
    assert!(
        matches!(
            err,
            LoadError::TooLarge {
                max: MAX_POLICY_BYTES,
                ..
            }
        ),
        "{err:?}"
    );
}
