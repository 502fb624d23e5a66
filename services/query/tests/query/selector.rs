//! The selector: equivalence with structured filters, and errors with
//! their positions.

use auditrail_proto::v1;
use tonic::Code;

use crate::common::{dataset, expect_code, filter, rfc3339, search, search_all, serve, strings};
use crate::search::{check_search, cluster_sorted};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_equal_structured_filters_and_report_error_positions() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let alpha = cluster_sorted(data, "alpha");
    let (from, to) = (alpha[300].time, alpha[900].time);
    let pairs: Vec<(&str, String, v1::Filter)> = vec![
        (
            "IN",
            "verb IN {create, delete}".into(),
            v1::Filter {
                verbs: strings(&["create", "delete"]),
                ..filter()
            },
        ),
        (
            "AND of two keys",
            r#"user.username = "alice@example.com" && responseStatus.code = 403"#.into(),
            v1::Filter {
                authors: strings(&["alice@example.com"]),
                response_codes: vec![403],
                ..filter()
            },
        ),
        (
            "OR of object references",
            "(objectRef.resource = networkpolicies AND objectRef.apiGroup = 'projectcalico.org') \
             OR objectRef.namespace = payments"
                .into(),
            v1::Filter {
                object_refs: vec![
                    v1::ObjectRefFilter {
                        resource: "networkpolicies".into(),
                        api_group: "projectcalico.org".into(),
                        ..v1::ObjectRefFilter::default()
                    },
                    v1::ObjectRefFilter {
                        namespace: "payments".into(),
                        ..v1::ObjectRefFilter::default()
                    },
                ],
                ..filter()
            },
        ),
        (
            "kind, case-insensitively",
            "kind = globalnetworkpolicy".into(),
            v1::Filter {
                kinds: strings(&["GlobalNetworkPolicy"]),
                ..filter()
            },
        ),
        (
            "NOTIN",
            "verb NOTIN (get, list, watch) and level = RequestResponse".into(),
            v1::Filter {
                verbs: strings(&["create", "update", "patch", "delete"]),
                levels: strings(&["RequestResponse"]),
                ..filter()
            },
        ),
        (
            "time range",
            format!(
                r#"stageTimestamp >= "{}" AND stageTimestamp < "{}""#,
                rfc3339(from),
                rfc3339(to)
            ),
            v1::Filter {
                from: rfc3339(from),
                to: rfc3339(to),
                ..filter()
            },
        ),
        (
            "NOT and !=",
            "!(stage != ResponseComplete) AND NOT responseStatus.code < 300".into(),
            v1::Filter {
                stages: strings(&["ResponseComplete"]),
                response_codes: vec![403, 404, 409],
                ..filter()
            },
        ),
    ];
    for (what, selector, structured) in pairs {
        let f = v1::Filter {
            selector: selector.clone(),
            ..filter()
        };
        let by_selector = search_all(client, search(f, 1000)).await;
        let (by_filter, expected) = check_search(
            client,
            data,
            &format!("filter {what}"),
            structured,
            1000,
            |_| true,
        )
        .await;
        assert!(!expected.is_empty(), "{what}: the dataset has matches");
        assert!(
            expected.len() < data.len(),
            "{what}: the filter discriminates"
        );
        assert_eq!(by_selector.ids(), by_filter.ids(), "{what}: {selector}");
        assert_eq!(by_selector.total_hits, by_filter.total_hits, "{what}");
    }

    // A selector is ANDed with the structured fields; the core group is only
    // reachable through it.
    check_search(
        client,
        data,
        "core group AND cluster",
        v1::Filter {
            selector: r#"objectRef.apiGroup = """#.into(),
            clusters: strings(&["beta"]),
            ..filter()
        },
        1000,
        |e| e.api_group.is_empty(),
    )
    .await;

    let invalid = [
        ("verb = ", "end of input", 7),
        ("verbx = get", "verbx", 0),
        ("verb = get AND", "end of input", 14),
        ("responseStatus.code = abc", "abc", 22),
        ("(verb = get", "never closed", 0),
        ("level = Loud", "Loud", 8),
        ("verb < get", "<", 5),
        ("verb = get )", ")", 11),
        ("stageTimestamp > 2026-01-01T00:00:00", "offset", 17),
    ];
    for (selector, mentions, position) in invalid {
        // Positions are byte offsets into the selector; recomputed here from
        // the text so the table cannot drift from it.
        let at = match mentions {
            "end of input" => selector.len(),
            "never closed" => selector.find('(').expect("paren"),
            "offset" => selector.find("2026").expect("time"),
            other => selector.rfind(other).expect("mentioned text"),
        };
        assert_eq!(at, position, "{selector}: table");
        let f = v1::Filter {
            selector: selector.into(),
            ..filter()
        };
        let status = expect_code(
            client.search(search(f, 10)).await,
            Code::InvalidArgument,
            selector,
        );
        assert!(
            status.message().contains(&format!("position {position}")),
            "{selector}: {}",
            status.message()
        );
        assert!(
            status.message().contains(mentions),
            "{selector}: {}",
            status.message()
        );
    }
    server.stop().await;
}
