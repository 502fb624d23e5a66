//! Search: every filter field (full id sets over all pages and
//! `total_hits`), both sort orders with ties on time, and the timeline mode.

use std::collections::{HashMap, HashSet};

use auditrail_proto::v1;
use jiff::{SignedDuration, Timestamp};
use tonic::Code;

use crate::common::{
    self, Client, Ev, TIE_TIME, dataset, expect_code, filter, filter_matches, on_timeline, ordered,
    rfc3339, search, search_all, serve, strings, time_of,
};

/// Events of `cluster`, oldest first.
pub(crate) fn cluster_sorted<'a>(data: &'a [Ev], cluster: &str) -> Vec<&'a Ev> {
    let mut events: Vec<&Ev> = data.iter().filter(|e| e.cluster == cluster).collect();
    events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    events
}

/// Walks every page of `filter` (newest first) and checks the ids, their
/// order and `total_hits` against the events for which `filter_matches` (over
/// the range the server resolved) and `extra` hold. Returns the walk and the
/// expected events.
pub(crate) async fn check_search<'a>(
    client: &mut Client,
    data: &'a [Ev],
    what: &str,
    filter: v1::Filter,
    page_size: u32,
    extra: impl Fn(&Ev) -> bool,
) -> (common::Walk, Vec<&'a Ev>) {
    let walk = search_all(client, search(filter.clone(), page_size)).await;
    let expected: Vec<&Ev> = data
        .iter()
        .filter(|e| filter_matches(e, &filter, walk.resolved_from, walk.resolved_to) && extra(e))
        .collect();
    let want = ordered(expected.iter().copied(), true);
    let got = walk.ids();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "{what}: an event came twice");
    if got != want {
        let got_set: HashSet<&String> = got.iter().collect();
        let want_set: HashSet<&String> = want.iter().collect();
        let missing: Vec<_> = want_set.difference(&got_set).take(5).collect();
        let unexpected: Vec<_> = got_set.difference(&want_set).take(5).collect();
        panic!(
            "{what}: got {} events, expected {}; missing e.g. {missing:?}, unexpected e.g. \
             {unexpected:?} (or the order differs)",
            got.len(),
            want.len()
        );
    }
    assert_eq!(walk.total_hits, want.len() as u64, "{what}: total_hits");
    (walk, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_select_what_the_contract_says() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let alpha = cluster_sorted(data, "alpha");
    let policy = data
        .iter()
        .find(|e| e.cluster == "alpha" && e.resource == "networkpolicies" && e.verb == "patch")
        .expect("a patched network policy");

    // The unfiltered walk, with the default page size: every event, and the
    // fields of each message are those of its line.
    let (walk, _) = check_search(client, data, "no filter", filter(), 0, |_| true).await;
    assert_eq!(walk.events.len(), data.len());
    assert!(walk.resolved_from.is_none(), "no lower bound asked");
    let by_id: HashMap<&str, &Ev> = data.iter().map(|e| (e.id.as_str(), e)).collect();
    for got in &walk.events {
        let e = by_id[got.id.as_str()];
        let want_type = if e.ee {
            v1::EventType::Ee
        } else {
            v1::EventType::Kube
        };
        assert_eq!(got.cluster, e.cluster);
        assert_eq!(got.r#type, want_type as i32, "{}", e.raw);
        assert_eq!(got.verb, e.verb);
        assert_eq!(got.level, e.level);
        assert_eq!(
            got.user.as_ref().map(|u| u.username.as_str()),
            Some(e.user.as_str())
        );
        assert_eq!(got.kind, e.kind, "{}", e.raw);
        assert_eq!(got.name, e.name, "{}", e.raw);
        assert_eq!(got.dry_run, e.dry_run);
        assert_eq!(got.response_code, e.code.unwrap_or(0));
        assert!(got.raw.is_empty(), "raw only when asked for");
    }

    // Absolute bounds land exactly on events: `from` is inclusive, `to`
    // exclusive, and any offset is accepted.
    let from = alpha[500].time;
    let to = alpha[1000].time;
    let plus_two = |t: Timestamp| {
        (t + SignedDuration::from_hours(2))
            .strftime("%Y-%m-%dT%H:%M:%S%.6f+02:00")
            .to_string()
    };
    let cases: Vec<(&str, v1::Filter)> = vec![
        (
            "type kube",
            v1::Filter {
                r#type: v1::TypeFilter::Kube as i32,
                ..filter()
            },
        ),
        (
            "type ee",
            v1::Filter {
                r#type: v1::TypeFilter::Ee as i32,
                ..filter()
            },
        ),
        (
            "type any (deletes)",
            v1::Filter {
                r#type: v1::TypeFilter::Any as i32,
                verbs: strings(&["delete"]),
                ..filter()
            },
        ),
        (
            "cluster beta",
            v1::Filter {
                clusters: strings(&["beta"]),
                ..filter()
            },
        ),
        (
            "both clusters (creates)",
            v1::Filter {
                clusters: strings(&["beta", "alpha"]),
                verbs: strings(&["create"]),
                ..filter()
            },
        ),
        (
            "from/to UTC",
            v1::Filter {
                from: rfc3339(from),
                to: rfc3339(to),
                ..filter()
            },
        ),
        (
            "from/to +02:00",
            v1::Filter {
                from: plus_two(from),
                to: plus_two(to),
                ..filter()
            },
        ),
        (
            "from only",
            v1::Filter {
                from: rfc3339(alpha[1700].time),
                ..filter()
            },
        ),
        (
            "to only",
            v1::Filter {
                to: rfc3339(from),
                ..filter()
            },
        ),
        (
            "kinds, any case",
            v1::Filter {
                kinds: strings(&["networkpolicy", "GLOBALNETWORKPOLICY", "configMap"]),
                ..filter()
            },
        ),
        (
            "kinds as plurals, short names and with a group",
            v1::Filter {
                kinds: strings(&["netpol", "cm", "globalnetworkpolicies.projectcalico.org"]),
                ..filter()
            },
        ),
        (
            "subresources",
            v1::Filter {
                subresources: strings(&["exec", "attach"]),
                ..filter()
            },
        ),
        (
            "no subresource",
            v1::Filter {
                kinds: strings(&["Pod"]),
                subresources: strings(&[""]),
                ..filter()
            },
        ),
        (
            "object refs",
            v1::Filter {
                object_refs: vec![
                    v1::ObjectRefFilter {
                        resource: "networkpolicies".into(),
                        api_group: "projectcalico.org".into(),
                        ..v1::ObjectRefFilter::default()
                    },
                    v1::ObjectRefFilter {
                        namespace: "payments".into(),
                        resource: "pods".into(),
                        api_version: "v1".into(),
                        ..v1::ObjectRefFilter::default()
                    },
                ],
                ..filter()
            },
        ),
        (
            "object ref by name and namespace",
            v1::Filter {
                object_refs: vec![v1::ObjectRefFilter {
                    name: policy.object_name.clone(),
                    namespace: policy.namespace.clone(),
                    ..v1::ObjectRefFilter::default()
                }],
                ..filter()
            },
        ),
        (
            "an empty object ref matches everything (deletes)",
            v1::Filter {
                object_refs: vec![v1::ObjectRefFilter::default()],
                verbs: strings(&["delete"]),
                ..filter()
            },
        ),
        (
            "verbs",
            v1::Filter {
                verbs: strings(&["create", "delete"]),
                ..filter()
            },
        ),
        (
            "authors",
            v1::Filter {
                authors: strings(&["alice@example.com", "minikube-user"]),
                ..filter()
            },
        ),
        (
            "response codes",
            v1::Filter {
                response_codes: vec![403, 409, 101],
                ..filter()
            },
        ),
        (
            "stages",
            v1::Filter {
                stages: strings(&["ResponseStarted"]),
                ..filter()
            },
        ),
        (
            "levels",
            v1::Filter {
                levels: strings(&["Request", "RequestResponse"]),
                ..filter()
            },
        ),
        (
            "no dry runs (of the writes)",
            v1::Filter {
                exclude_dry_run: true,
                levels: strings(&["RequestResponse"]),
                ..filter()
            },
        ),
        (
            "everything at once",
            v1::Filter {
                r#type: v1::TypeFilter::Ee as i32,
                clusters: strings(&["alpha"]),
                from: rfc3339(alpha[100].time),
                to: rfc3339(alpha[1900].time),
                kinds: strings(&["networkpolicy", "globalnetworkpolicy"]),
                verbs: strings(&["patch", "update", "create"]),
                response_codes: vec![200, 201],
                stages: strings(&["ResponseComplete"]),
                levels: strings(&["RequestResponse"]),
                exclude_dry_run: true,
                ..filter()
            },
        ),
    ];
    for (what, f) in cases {
        let (_, expected) = check_search(client, data, what, f, 1000, |_| true).await;
        assert!(!expected.is_empty(), "{what}: the dataset has matches");
        assert!(
            expected.len() < data.len(),
            "{what}: the filter discriminates"
        );
    }
    let (_, none) = check_search(
        client,
        data,
        "unknown cluster",
        v1::Filter {
            clusters: strings(&["gamma"]),
            ..filter()
        },
        1000,
        |_| true,
    )
    .await;
    assert!(none.is_empty());

    // Relative times resolve against the server's clock; the response says
    // what they resolved to, and the expectation uses that.
    let week = SignedDuration::from_hours(24 * 7);
    let before = Timestamp::now();
    let (walk, expected) = check_search(
        client,
        data,
        "from now-100w",
        v1::Filter {
            from: "now-100w".into(),
            verbs: strings(&["delete", "get"]),
            ..filter()
        },
        1000,
        |_| true,
    )
    .await;
    let after = Timestamp::now();
    let resolved = walk.resolved_from.expect("resolved from");
    assert!(
        resolved >= before - week * 100 && resolved <= after - week * 100,
        "{resolved}"
    );
    assert!(walk.resolved_to >= before && walk.resolved_to <= after);
    assert!(expected.len() < data.len(), "the 2018 samples are older");
    let mid = alpha[1500].time;
    let seconds = before.duration_since(mid).as_secs();
    let (walk, expected) = check_search(
        client,
        data,
        "relative from and to",
        v1::Filter {
            from: format!("now-{}s", seconds + 600),
            to: format!("now-{seconds}s"),
            ..filter()
        },
        1000,
        |_| true,
    )
    .await;
    let after = Timestamp::now();
    let to = walk.resolved_to;
    assert!(to >= before - SignedDuration::from_secs(seconds));
    assert!(to <= after - SignedDuration::from_secs(seconds));
    assert_eq!(
        walk.resolved_from,
        Some(to - SignedDuration::from_secs(600)),
        "both resolved against the same now"
    );
    assert!(!expected.is_empty());

    // Unparsable times and a reversed range are refused.
    for (from, to) in [
        ("yesterday", ""),
        ("", "now+1h"),
        ("now-1h", "now-2h"),
        ("2026-01-01T00:00:00", ""),
    ] {
        let f = v1::Filter {
            from: from.into(),
            to: to.into(),
            ..filter()
        };
        expect_code(
            client.search(search(f, 10)).await,
            Code::InvalidArgument,
            &format!("{from:?} {to:?}"),
        );
    }
    // So are values outside the enumerations.
    let unknown_type = v1::Filter {
        r#type: 7,
        ..filter()
    };
    expect_code(
        client.search(search(unknown_type, 10)).await,
        Code::InvalidArgument,
        "unknown type",
    );
    let unknown_sort = v1::SearchRequest {
        sort: 9,
        ..search(filter(), 10)
    };
    expect_code(
        client.search(unknown_sort).await,
        Code::InvalidArgument,
        "unknown sort",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_sorts_by_time_then_id_both_ways() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let tie: Timestamp = TIE_TIME.parse().expect("time");
    let ties: HashSet<&str> = data
        .iter()
        .filter(|e| e.time == tie)
        .map(|e| e.id.as_str())
        .collect();
    assert!(ties.len() >= 20, "the tie group is in the dataset");
    let raws: HashMap<&str, &str> = data
        .iter()
        .map(|e| (e.id.as_str(), e.raw.as_str()))
        .collect();
    // Two minutes of alpha around the tie group, in small pages.
    let window = v1::Filter {
        clusters: strings(&["alpha"]),
        from: rfc3339(tie - SignedDuration::from_mins(1)),
        to: rfc3339(tie + SignedDuration::from_mins(1)),
        ..filter()
    };
    for (sort, newest_first) in [
        (v1::SortOrder::Unspecified, true),
        (v1::SortOrder::NewestFirst, true),
        (v1::SortOrder::OldestFirst, false),
    ] {
        let request = v1::SearchRequest {
            sort: sort as i32,
            // Odd, so pages end inside the tie group.
            page_size: 7,
            include_raw: sort == v1::SortOrder::OldestFirst,
            filter: Some(window.clone()),
            ..v1::SearchRequest::default()
        };
        let walk = search_all(&mut server.client, request.clone()).await;
        let expected = data
            .iter()
            .filter(|e| filter_matches(e, &window, walk.resolved_from, walk.resolved_to));
        let want = ordered(expected, newest_first);
        assert!(want.len() > 60, "the window holds more than the ties");
        assert_eq!(walk.ids(), want, "{sort:?}");
        // The tie group: contiguous, by id in the sort's direction.
        let group: Vec<&str> = walk
            .events
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| ties.contains(id))
            .collect();
        let mut by_id = group.clone();
        by_id.sort_unstable();
        if newest_first {
            by_id.reverse();
        }
        assert_eq!(group.len(), ties.len());
        assert_eq!(group, by_id, "{sort:?}: ties ordered by id");
        for e in &walk.events {
            if request.include_raw {
                assert_eq!(
                    e.raw.as_ref(),
                    raws[e.id.as_str()].as_bytes(),
                    "raw is the original"
                );
            } else {
                assert!(e.raw.is_empty());
            }
        }
        let stage_times: Vec<Timestamp> = walk
            .events
            .iter()
            .map(|e| time_of(e.stage_timestamp.as_ref()))
            .collect();
        assert!(
            stage_times.windows(2).all(|w| if newest_first {
                w[0] >= w[1]
            } else {
                w[0] <= w[1]
            }),
            "{sort:?}: stage timestamps in order"
        );

        // All clusters, with the real samples, in big pages.
        if sort == v1::SortOrder::Unspecified {
            continue;
        }
        let walk = search_all(
            &mut server.client,
            v1::SearchRequest {
                sort: sort as i32,
                page_size: 1000,
                ..v1::SearchRequest::default()
            },
        )
        .await;
        assert_eq!(
            walk.ids(),
            ordered(data, newest_first),
            "{sort:?}, all clusters"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_is_complete_responses_without_dry_runs_newest_first() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let timeline = on_timeline;
    assert!(
        data.iter()
            .any(|e| e.level == "RequestResponse" && e.stage == "ResponseComplete" && e.dry_run),
        "the dataset has dry runs the timeline must drop"
    );
    assert!(
        data.iter().any(|e| e.level == "RequestResponse"
            && e.stage == "ResponseComplete"
            && !e.dry_run
            && !on_timeline(e)),
        "the dataset has reads the timeline must drop"
    );
    let cases = [
        (
            "timeline, no filter",
            None,
            v1::SortOrder::Unspecified,
            strings(&[]),
        ),
        (
            // Levels and stages combine with the timeline's.
            "timeline over a filter",
            Some(v1::Filter {
                levels: strings(&["Metadata", "RequestResponse"]),
                stages: strings(&["RequestReceived", "ResponseComplete"]),
                verbs: strings(&["patch", "create"]),
                ..filter()
            }),
            v1::SortOrder::Unspecified,
            strings(&["patch", "create"]),
        ),
        (
            "timeline, oldest first when asked",
            None,
            v1::SortOrder::OldestFirst,
            strings(&[]),
        ),
    ];
    for (what, f, sort, verbs) in cases {
        let walk = search_all(
            &mut server.client,
            v1::SearchRequest {
                filter: f,
                sort: sort as i32,
                page_size: 500,
                timeline: true,
                ..v1::SearchRequest::default()
            },
        )
        .await;
        let expected = data
            .iter()
            .filter(|e| timeline(e) && (verbs.is_empty() || verbs.contains(&e.verb)));
        let want = ordered(expected, sort != v1::SortOrder::OldestFirst);
        assert!(!want.is_empty());
        assert_eq!(walk.ids(), want, "{what}");
        assert_eq!(walk.total_hits, want.len() as u64, "{what}");
    }
    // Levels or stages the timeline cannot show are refused, not ignored.
    for (what, f, message) in [
        (
            "a level the timeline never shows",
            v1::Filter {
                levels: strings(&["Metadata"]),
                ..filter()
            },
            "the timeline shows only level RequestResponse",
        ),
        (
            "a stage the timeline never shows",
            v1::Filter {
                stages: strings(&["RequestReceived"]),
                ..filter()
            },
            "the timeline shows only stage ResponseComplete",
        ),
    ] {
        let status = expect_code(
            server
                .client
                .search(v1::SearchRequest {
                    filter: Some(f),
                    timeline: true,
                    ..v1::SearchRequest::default()
                })
                .await,
            Code::InvalidArgument,
            what,
        );
        assert!(status.message().starts_with(message), "{what}: {status:?}");
    }
    server.stop().await;
}
