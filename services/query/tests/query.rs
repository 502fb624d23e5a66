//! Behaviour of the QueryService as `proto/auditrail/v1/query.proto`
//! documents it, over real gRPC: each test opens a tantivy store in a
//! temporary directory, writes a dataset into it, serves
//! `auditrail_query::Querier` on a loopback socket and talks to it with the
//! generated `QueryServiceClient`.
//!
//! The dataset (see `common`) is 2000 generated events in cluster `alpha`
//! (with 20 events sharing one timestamp), 1000 generated events in `beta`
//! and the real samples of `shared/data/real` (2018 to 2025) in `beta`.
//!
//! Every expectation is computed in the test from the source lines, by a path
//! independent of the service: each line is read with `serde_json` into a
//! plain view (`common::Ev`), filters are evaluated in plain Rust from the
//! contract's wording, results are sorted by (event time, id), buckets and
//! top values are counted in memory, export documents are assembled from the
//! original lines, and resource versions are derived from the response
//! objects. No expected number is pasted.
//!
//! Covered: Search with every filter field (full id sets over all pages and
//! `total_hits`), both sort orders with ties on time, the timeline mode,
//! paging while events keep arriving and page token misuse, the selector
//! (equivalence with structured filters, errors with positions), Histogram
//! (buckets, alignment, automatic width, top values, bad requests), Export
//! (byte-exact JSON, NDJSON and YAML documents, chunking, `done`, `limit`, a
//! client that goes away), History (versions of a network policy, paging,
//! bad requests) and Diff (headers, changed lines, noisy metadata, identical
//! versions, error codes).

// Tables of requests and their expectations read best as one function each.
#![allow(clippy::too_many_lines)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use auditrail_event::{EventId, EventType};
use auditrail_proto::v1;
use common::{
    Client, Ev, Server, TIE_TIME, dataset, events_of, expect_code, filter_matches, generated,
    on_timeline, ordered, real_dir, rfc3339, search_all, serve, store_with, time_of, write,
};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tonic::Code;

fn filter() -> v1::Filter {
    v1::Filter::default()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

fn search(filter: v1::Filter, page_size: u32) -> v1::SearchRequest {
    v1::SearchRequest {
        filter: Some(filter),
        page_size,
        ..v1::SearchRequest::default()
    }
}

/// Events of `cluster`, oldest first.
fn cluster_sorted<'a>(data: &'a [Ev], cluster: &str) -> Vec<&'a Ev> {
    let mut events: Vec<&Ev> = data.iter().filter(|e| e.cluster == cluster).collect();
    events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    events
}

/// Walks every page of `filter` (newest first) and checks the ids, their
/// order and `total_hits` against the events for which `filter_matches` (over
/// the range the server resolved) and `extra` hold. Returns the walk and the
/// expected events.
async fn check_search<'a>(
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

/// Events written by the paging test while it pages: some newer than any
/// page position, some older, some among the existing events.
fn arrivals(seeds: [u64; 3]) -> Vec<Vec<Ev>> {
    let second = SignedDuration::from_secs(1);
    let sets = [
        events_of(
            "alpha",
            &generated(seeds[0], "2026-01-01T00:00:00Z", second, 60),
        ),
        events_of(
            "alpha",
            &generated(seeds[1], "2026-01-02T00:00:00Z", second, 60),
        ),
        events_of(
            "alpha",
            &generated(seeds[2], "2025-12-31T00:00:00Z", second, 60),
        ),
    ];
    (0..10)
        .map(|i| {
            sets.iter()
                .flat_map(|s| s[i * 6..(i + 1) * 6].iter().cloned())
                .collect()
        })
        .collect()
}

/// Pages through everything with a small page size in `sort` while a
/// concurrent task writes `batches` (one every other page, waited for so the
/// new events are visible to the next page). Checks that every event of
/// `existing` is seen exactly once, nothing twice, and in strict order.
async fn page_while_writing(
    client: &mut Client,
    store: &auditrail_store_tantivy::TantivyStore,
    existing: &[Ev],
    batches: Vec<Vec<Ev>>,
    sort: v1::SortOrder,
) {
    let (tx, mut rx) = mpsc::channel::<(Vec<Ev>, oneshot::Sender<()>)>(1);
    let writer_store = store.clone();
    let writer = tokio::spawn(async move {
        while let Some((batch, done)) = rx.recv().await {
            write(&writer_store, &batch).await;
            let _ = done.send(());
        }
    });
    let all: HashMap<String, Timestamp> = existing
        .iter()
        .chain(batches.iter().flatten())
        .map(|e| (e.id.clone(), e.time))
        .collect();
    let mut batches = batches.into_iter();
    let mut request = v1::SearchRequest {
        sort: sort as i32,
        page_size: 50,
        ..v1::SearchRequest::default()
    };
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .search(request.clone())
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.events.into_iter().map(|e| e.id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
        if pages % 2 == 1
            && let Some(batch) = batches.next()
        {
            let (done, written) = oneshot::channel();
            tx.send((batch, done)).await.expect("writer alive");
            written.await.expect("batch written");
        }
    }
    assert!(
        batches.next().is_none(),
        "every batch was written while paging"
    );
    drop(tx);
    writer.await.expect("writer");
    let mut once = HashSet::new();
    for id in &seen {
        assert!(once.insert(id.as_str()), "{sort:?}: event {id} came twice");
        assert!(
            all.contains_key(id),
            "{sort:?}: event {id} was never written"
        );
    }
    for e in existing {
        assert!(
            once.contains(e.id.as_str()),
            "{sort:?}: existing event {} was skipped",
            e.id
        );
    }
    for pair in seen.windows(2) {
        let a = (all[&pair[0]], &pair[0]);
        let b = (all[&pair[1]], &pair[1]);
        match sort {
            v1::SortOrder::OldestFirst => assert!(a < b, "{sort:?}: {a:?} then {b:?}"),
            _ => assert!(a > b, "{sort:?}: {a:?} then {b:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_stable_while_events_arrive_and_tokens_are_checked() {
    // The oldest thousand events of alpha.
    let alpha: Vec<Ev> = cluster_sorted(dataset(), "alpha")
        .into_iter()
        .take(1000)
        .cloned()
        .collect();
    let (_dir, store, mut server) = serve(&alpha).await;
    let first = arrivals([101, 102, 103]);
    page_while_writing(
        &mut server.client,
        &store,
        &alpha,
        first.clone(),
        v1::SortOrder::NewestFirst,
    )
    .await;
    let mut existing = alpha.clone();
    existing.extend(first.into_iter().flatten());
    page_while_writing(
        &mut server.client,
        &store,
        &existing,
        arrivals([104, 105, 106]),
        v1::SortOrder::OldestFirst,
    )
    .await;

    // A token only continues the request it was issued for.
    let client = &mut server.client;
    let gets = v1::Filter {
        verbs: strings(&["get"]),
        ..filter()
    };
    let first_page = client
        .search(search(gets.clone(), 10))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(first_page.events.len(), 10);
    let token = first_page.next_page_token.clone();
    assert!(!token.is_empty());
    let with_token = |filter: v1::Filter, sort: v1::SortOrder, timeline: bool| v1::SearchRequest {
        filter: Some(filter),
        sort: sort as i32,
        page_size: 10,
        page_token: token.clone(),
        timeline,
        include_raw: false,
        exact_total: false,
    };
    let misuses = [
        (
            "another filter",
            with_token(
                v1::Filter {
                    verbs: strings(&["list"]),
                    ..filter()
                },
                v1::SortOrder::Unspecified,
                false,
            ),
        ),
        (
            "another sort",
            with_token(gets.clone(), v1::SortOrder::OldestFirst, false),
        ),
        (
            "the timeline flag",
            with_token(gets.clone(), v1::SortOrder::Unspecified, true),
        ),
    ];
    for (what, request) in misuses {
        expect_code(client.search(request).await, Code::InvalidArgument, what);
    }
    for garbage in ["garbage", "!!!", "e30", &token[..token.len() / 2]] {
        let request = v1::SearchRequest {
            page_token: garbage.to_owned(),
            ..search(gets.clone(), 10)
        };
        expect_code(client.search(request).await, Code::InvalidArgument, garbage);
    }
    // The same request may change its page size and ask for raw bytes.
    let next = client
        .search(v1::SearchRequest {
            page_size: 25,
            include_raw: true,
            ..with_token(gets.clone(), v1::SortOrder::NewestFirst, false)
        })
        .await
        .expect("next page")
        .into_inner();
    let current: Vec<Ev> = existing
        .iter()
        .cloned()
        .chain(arrivals([104, 105, 106]).into_iter().flatten())
        .collect();
    let all_gets = ordered(current.iter().filter(|e| e.verb == "get"), true);
    let got: Vec<String> = next.events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got, all_gets[10..35], "the page after the token's position");
    assert!(next.events.iter().all(|e| !e.raw.is_empty()));

    expect_code(
        client.search(search(filter(), 1001)).await,
        Code::InvalidArgument,
        "page_size 1001",
    );
    let page = client
        .search(search(filter(), 1000))
        .await
        .expect("page_size 1000")
        .into_inner();
    assert_eq!(page.events.len(), 1000);
    let page = client
        .search(search(filter(), 0))
        .await
        .expect("page_size 0")
        .into_inner();
    assert_eq!(page.events.len(), 100, "page_size 0 means 100");
    assert!(!page.next_page_token.is_empty());
    server.stop().await;
}

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

fn seconds(s: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: s,
        nanos: 0,
    }
}

fn bucket_start(t: Timestamp, interval: SignedDuration) -> Timestamp {
    let step = interval.as_nanos();
    Timestamp::from_nanosecond(t.as_nanosecond().div_euclid(step) * step).expect("in range")
}

/// Counts of `events` in each bucket from `first` to `last` (bucket starts).
fn buckets(
    events: &[&Ev],
    first: Timestamp,
    last: Timestamp,
    interval: SignedDuration,
) -> Vec<(Timestamp, u64)> {
    let mut counts: BTreeMap<Timestamp, u64> = BTreeMap::new();
    for e in events {
        *counts.entry(bucket_start(e.time, interval)).or_default() += 1;
    }
    let mut out = Vec::new();
    let mut at = first;
    while at <= last {
        out.push((at, counts.remove(&at).unwrap_or(0)));
        at += interval;
    }
    assert!(
        counts.is_empty(),
        "every event falls in a bucket of the range"
    );
    out
}

fn got_buckets(answer: &v1::HistogramResponse) -> Vec<(Timestamp, u64)> {
    answer
        .buckets
        .iter()
        .map(|b| (time_of(b.start.as_ref()), b.count))
        .collect()
}

fn top_values(events: &[&Ev], field: v1::TopField, top_n: usize) -> v1::TopValues {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for e in events {
        let value = match field {
            v1::TopField::Verb => &e.verb,
            v1::TopField::Resource => &e.resource,
            v1::TopField::User => &e.user,
            v1::TopField::Namespace => &e.namespace,
            v1::TopField::Unspecified => unreachable!("not asked"),
        };
        *counts.entry(value.as_str()).or_default() += 1;
    }
    let mut all: Vec<(&str, u64)> = counts.into_iter().collect();
    all.sort_by(|(va, na), (vb, nb)| nb.cmp(na).then(va.cmp(vb)));
    let other = all.iter().skip(top_n).map(|(_, n)| n).sum();
    v1::TopValues {
        field: field as i32,
        values: all
            .into_iter()
            .take(top_n)
            .map(|(value, count)| v1::TopValueCount {
                value: value.to_owned(),
                count,
            })
            .collect(),
        other_count: other,
    }
}

/// The automatic width by the contract: the smallest round width giving at
/// most 100 buckets over the range, else the largest.
fn auto_width(start: Timestamp, to: Timestamp) -> SignedDuration {
    let round = [
        1,
        5,
        10,
        30,
        60,
        300,
        600,
        1800,
        3600,
        3 * 3600,
        12 * 3600,
        86_400,
        7 * 86_400,
    ]
    .map(SignedDuration::from_secs);
    let last = to - SignedDuration::from_nanos(1);
    round
        .iter()
        .copied()
        .find(|&w| {
            let n = bucket_start(last, w)
                .duration_since(bucket_start(start, w))
                .as_nanos()
                / w.as_nanos()
                + 1;
            n <= 100
        })
        .unwrap_or(round[round.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_counts_buckets_and_top_values() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let alpha_filter = |from: &str, to: &str| v1::Filter {
        clusters: strings(&["alpha"]),
        from: from.into(),
        to: to.into(),
        ..filter()
    };
    let minute = SignedDuration::from_mins(1);

    // Explicit width, a range that starts and ends inside buckets, every
    // top field (one twice: duplicates are ignored).
    let (from, to): (Timestamp, Timestamp) = (
        "2026-01-01T00:00:30Z".parse().expect("t"),
        "2026-01-01T00:59:45Z".parse().expect("t"),
    );
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter(&from.to_string(), &to.to_string())),
            interval: Some(seconds(60)),
            top_fields: vec![
                v1::TopField::Verb as i32,
                v1::TopField::Resource as i32,
                v1::TopField::Verb as i32,
                v1::TopField::User as i32,
                v1::TopField::Namespace as i32,
            ],
            top_n: 3,
            timeline: false,
        })
        .await
        .expect("histogram")
        .into_inner();
    let matching: Vec<&Ev> = data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.time >= from && e.time < to)
        .collect();
    let last = bucket_start(to - SignedDuration::from_nanos(1), minute);
    let want = buckets(&matching, bucket_start(from, minute), last, minute);
    assert_eq!(want.len(), 60);
    assert!(
        want.iter().any(|(_, n)| *n == 0),
        "the range has empty buckets"
    );
    assert_eq!(got_buckets(&answer), want);
    assert_eq!(answer.interval, Some(seconds(60)));
    assert_eq!(answer.total, matching.len() as u64);
    let fields = [
        v1::TopField::Verb,
        v1::TopField::Resource,
        v1::TopField::User,
        v1::TopField::Namespace,
    ];
    let want_top: Vec<v1::TopValues> = fields
        .iter()
        .map(|f| top_values(&matching, *f, 3))
        .collect();
    assert_eq!(answer.top_values, want_top);

    // No `from`: the range starts at the oldest matching event's bucket; the
    // width is chosen; top_n 0 means 10.
    let to: Timestamp = "2026-01-01T01:00:00Z".parse().expect("t");
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter("", &to.to_string())),
            top_fields: vec![v1::TopField::Namespace as i32, v1::TopField::User as i32],
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let matching: Vec<&Ev> = data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.time < to)
        .collect();
    let oldest = matching.iter().map(|e| e.time).min().expect("events");
    let width = auto_width(oldest, to);
    assert_eq!(answer.interval, Some(seconds(width.as_secs())));
    let last = bucket_start(to - SignedDuration::from_nanos(1), width);
    assert_eq!(
        got_buckets(&answer),
        buckets(&matching, bucket_start(oldest, width), last, width)
    );
    assert_eq!(
        answer.top_values,
        vec![
            top_values(&matching, v1::TopField::Namespace, 10),
            top_values(&matching, v1::TopField::User, 10)
        ]
    );

    // No range at all over years of events: the widest round width, from the
    // oldest event's bucket to now's.
    let before = Timestamp::now();
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(v1::Filter {
                clusters: strings(&["beta"]),
                ..filter()
            }),
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let after = Timestamp::now();
    let matching: Vec<&Ev> = data.iter().filter(|e| e.cluster == "beta").collect();
    let oldest = matching.iter().map(|e| e.time).min().expect("events");
    let week = SignedDuration::from_hours(24 * 7);
    assert_eq!(auto_width(oldest, before), week);
    assert_eq!(answer.interval, Some(seconds(week.as_secs())));
    let got = got_buckets(&answer);
    let last = got.last().expect("buckets").0;
    let nanosecond = SignedDuration::from_nanos(1);
    assert!(
        last == bucket_start(before - nanosecond, week)
            || last == bucket_start(after - nanosecond, week)
    );
    assert_eq!(
        got,
        buckets(&matching, bucket_start(oldest, week), last, week)
    );
    assert_eq!(answer.total, matching.len() as u64);

    // A range with no match: every bucket is there, empty.
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(v1::Filter {
                verbs: strings(&["trace"]),
                ..alpha_filter("2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z")
            }),
            interval: Some(seconds(60)),
            top_fields: vec![v1::TopField::Verb as i32],
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("t");
    let empty: Vec<(Timestamp, u64)> = (0..10).map(|i| (start + minute * i, 0)).collect();
    assert_eq!(got_buckets(&answer), empty);
    assert_eq!(answer.total, 0);
    assert_eq!(
        answer.top_values,
        vec![top_values(&[], v1::TopField::Verb, 10)]
    );

    // The timeline mode counts the timeline's events.
    let (from, to): (Timestamp, Timestamp) = (
        "2026-01-01T00:00:00Z".parse().expect("t"),
        "2026-01-01T01:00:00Z".parse().expect("t"),
    );
    let answer = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter(&from.to_string(), &to.to_string())),
            interval: Some(seconds(300)),
            timeline: true,
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("histogram")
        .into_inner();
    let matching: Vec<&Ev> = data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.time >= from && e.time < to && on_timeline(e))
        .collect();
    let five = SignedDuration::from_mins(5);
    assert_eq!(
        got_buckets(&answer),
        buckets(&matching, from, bucket_start(to - nanosecond, five), five)
    );

    // At most 10000 buckets: exactly 10000 is fine, one more is not.
    let day_start = "2026-01-01T00:00:00Z";
    let ok = client
        .histogram(v1::HistogramRequest {
            filter: Some(alpha_filter(day_start, "2026-01-01T02:46:40Z")),
            interval: Some(seconds(1)),
            ..v1::HistogramRequest::default()
        })
        .await
        .expect("10000 buckets")
        .into_inner();
    assert_eq!(ok.buckets.len(), 10_000);

    let bad = [
        (
            "half a second",
            Some(prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000,
            }),
            vec![],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "zero interval",
            Some(seconds(0)),
            vec![],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "negative interval",
            Some(seconds(-60)),
            vec![],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "10001 buckets",
            Some(seconds(1)),
            vec![],
            0,
            "2026-01-01T02:46:41Z",
        ),
        (
            "a day of seconds",
            Some(seconds(1)),
            vec![],
            0,
            "2026-01-02T00:00:00Z",
        ),
        (
            "top_n 101",
            None,
            vec![v1::TopField::Verb as i32],
            101,
            "2026-01-01T00:10:00Z",
        ),
        (
            "unspecified top field",
            None,
            vec![v1::TopField::Unspecified as i32],
            0,
            "2026-01-01T00:10:00Z",
        ),
        (
            "unknown top field",
            None,
            vec![99],
            0,
            "2026-01-01T00:10:00Z",
        ),
        ("from after to", None, vec![], 0, "2025-12-31T00:00:00Z"),
    ];
    for (what, interval, top_fields, top_n, to) in bad {
        let request = v1::HistogramRequest {
            filter: Some(alpha_filter(day_start, to)),
            interval,
            top_fields,
            top_n,
            timeline: false,
        };
        expect_code(client.histogram(request).await, Code::InvalidArgument, what);
    }
    server.stop().await;
}

/// What an export streamed.
struct Exported {
    doc: Vec<u8>,
    summary: v1::ExportSummary,
    largest_chunk: usize,
    chunks: usize,
}

async fn export(client: &mut Client, request: v1::ExportRequest) -> Exported {
    let mut stream = client.export(request).await.expect("export").into_inner();
    let mut doc = Vec::new();
    let mut summary = None;
    let mut so_far = 0;
    let mut largest_chunk = 0;
    let mut chunks = 0;
    while let Some(chunk) = stream.message().await.expect("chunk") {
        assert!(summary.is_none(), "done is on the last message only");
        assert!(
            chunk.events_so_far >= so_far,
            "events_so_far never decreases"
        );
        so_far = chunk.events_so_far;
        largest_chunk = largest_chunk.max(chunk.data.len());
        chunks += 1;
        doc.extend_from_slice(&chunk.data);
        summary = chunk.done;
    }
    let summary = summary.expect("the last message carries done");
    assert_eq!(summary.total_bytes, doc.len() as u64, "total_bytes");
    assert_eq!(
        summary.total_events, so_far,
        "events_so_far of the last message"
    );
    Exported {
        doc,
        summary,
        largest_chunk,
        chunks,
    }
}

fn json_document(raws: &[&str]) -> String {
    if raws.is_empty() {
        "[]\n".to_owned()
    } else {
        format!("[\n{}\n]\n", raws.join(",\n"))
    }
}

/// A YAML stream cut into its documents at the `---` lines.
fn yaml_documents(doc: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.split_inclusive('\n') {
        if line == "---\n" {
            docs.extend(current.replace(String::new()));
        } else {
            current
                .as_mut()
                .expect("the stream starts with ---")
                .push_str(line);
        }
    }
    docs.extend(current);
    docs
}

/// The top-level keys of a JSON object, in document order.
struct TopKeys(Vec<String>);

impl<'de> Deserialize<'de> for TopKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = TopKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(TopKeys(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

fn raws<'a>(data: &'a [Ev], ids: &[String]) -> Vec<&'a str> {
    let by_id: HashMap<&str, &str> = data
        .iter()
        .map(|e| (e.id.as_str(), e.raw.as_str()))
        .collect();
    ids.iter().map(|id| by_id[id.as_str()]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_byte_exact_documents() {
    let data = dataset();
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let mib = 1 << 20;

    // Everything as JSON, newest first: several chunks.
    let all = export(client, v1::ExportRequest::default()).await;
    let want = json_document(&raws(data, &ordered(data, true)));
    assert!(want.len() > 2 * mib, "the dataset takes several chunks");
    assert!(all.chunks >= 3);
    assert!(all.largest_chunk <= mib, "chunks of at most 1 MiB");
    assert_eq!(String::from_utf8(all.doc.clone()).expect("utf-8"), want);
    assert_eq!(all.summary.total_events, data.len() as u64);
    let parsed: Value = serde_json::from_slice(&all.doc).expect("a JSON document");
    assert_eq!(parsed.as_array().map(Vec::len), Some(data.len()));

    // A filtered JSON export, oldest first.
    let policies = v1::Filter {
        clusters: strings(&["alpha"]),
        kinds: strings(&["networkpolicy"]),
        ..filter()
    };
    let got = export(
        client,
        v1::ExportRequest {
            filter: Some(policies.clone()),
            format: v1::ExportFormat::Json as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let now = Timestamp::now();
    let ids = ordered(
        data.iter()
            .filter(|e| filter_matches(e, &policies, None, now)),
        false,
    );
    assert!(!ids.is_empty());
    assert_eq!(
        String::from_utf8(got.doc).expect("utf-8"),
        json_document(&raws(data, &ids))
    );
    assert_eq!(got.summary.total_events, ids.len() as u64);

    // NDJSON, oldest first: the log lines.
    let got = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let lines: String = raws(data, &ordered(data, false))
        .iter()
        .fold(String::new(), |doc, r| doc + r + "\n");
    assert_eq!(String::from_utf8(got.doc).expect("utf-8"), lines);
    assert!(got.largest_chunk <= mib);

    // Timeline NDJSON with a limit: the newest timeline events.
    let timeline = ordered(data.iter().filter(|e| on_timeline(e)), true);
    let got = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            timeline: true,
            limit: 25,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let lines: String = raws(data, &timeline[..25])
        .iter()
        .fold(String::new(), |doc, r| doc + r + "\n");
    assert_eq!(String::from_utf8(got.doc).expect("utf-8"), lines);
    assert_eq!(got.summary.total_events, 25);

    // A limit above the number of events changes nothing.
    let got = export(
        client,
        v1::ExportRequest {
            filter: Some(policies.clone()),
            limit: 1_000_000,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let ids = ordered(
        data.iter()
            .filter(|e| filter_matches(e, &policies, None, now)),
        true,
    );
    assert_eq!(
        String::from_utf8(got.doc).expect("utf-8"),
        json_document(&raws(data, &ids))
    );

    // YAML of the real samples and the generated writes of beta: one
    // document per event, equal to the JSON, keys in the original order.
    let yaml_filter = v1::Filter {
        clusters: strings(&["beta"]),
        levels: strings(&["Request", "RequestResponse"]),
        ..filter()
    };
    let got = export(
        client,
        v1::ExportRequest {
            filter: Some(yaml_filter.clone()),
            format: v1::ExportFormat::Yaml as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    let ids = ordered(
        data.iter()
            .filter(|e| filter_matches(e, &yaml_filter, None, now)),
        false,
    );
    let text = String::from_utf8(got.doc).expect("utf-8");
    let documents = yaml_documents(&text);
    assert!(ids.len() > 100, "the real samples and beta's writes");
    assert_eq!(documents.len(), ids.len());
    assert_eq!(got.summary.total_events, ids.len() as u64);
    for (document, raw) in documents.iter().zip(raws(data, &ids)) {
        let from_yaml: Value =
            serde_norway::from_str(document).unwrap_or_else(|e| panic!("{e}: {document}"));
        let original: Value = serde_json::from_str(raw).expect("json");
        assert_eq!(from_yaml, original, "{document}");
        let yaml_keys: Vec<&str> = document
            .lines()
            .filter(|l| !l.starts_with([' ', '-']) && l.contains(':'))
            .map(|l| l.split(':').next().expect("key"))
            .collect();
        let TopKeys(json_keys) = serde_json::from_str(raw).expect("json");
        assert_eq!(yaml_keys, json_keys, "key order kept");
    }

    // Nothing matches: an empty array, an empty stream.
    let nothing = v1::Filter {
        verbs: strings(&["trace"]),
        ..filter()
    };
    for (format, want) in [
        (v1::ExportFormat::Unspecified, "[]\n"),
        (v1::ExportFormat::Ndjson, ""),
        (v1::ExportFormat::Yaml, ""),
    ] {
        let got = export(
            client,
            v1::ExportRequest {
                filter: Some(nothing.clone()),
                format: format as i32,
                ..v1::ExportRequest::default()
            },
        )
        .await;
        assert_eq!(
            String::from_utf8(got.doc).expect("utf-8"),
            want,
            "{format:?}"
        );
        assert_eq!(got.summary.total_events, 0);
    }

    // Bad requests.
    let bad = [
        v1::ExportRequest {
            format: 42,
            ..v1::ExportRequest::default()
        },
        v1::ExportRequest {
            filter: Some(v1::Filter {
                selector: "verb ==".into(),
                ..filter()
            }),
            ..v1::ExportRequest::default()
        },
        v1::ExportRequest {
            filter: Some(v1::Filter {
                from: "now".into(),
                to: "now-1d".into(),
                ..filter()
            }),
            ..v1::ExportRequest::default()
        },
    ];
    for request in bad {
        let what = format!("{request:?}");
        let result = match client.export(request).await {
            Ok(response) => response.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        };
        expect_code(result, Code::InvalidArgument, &what);
    }

    // A client that goes away after the first chunk does not break the
    // server: the next requests are answered in full.
    let mut stream = client
        .export(v1::ExportRequest::default())
        .await
        .expect("export")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("chunk")
        .expect("a first chunk");
    assert!(
        first.done.is_none(),
        "the export is not over after one chunk"
    );
    drop(stream);
    let page = client
        .search(search(filter(), 10))
        .await
        .expect("search after a dropped export")
        .into_inner();
    assert_eq!(page.events.len(), 10);
    let again = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Ndjson as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    assert_eq!(again.summary.total_events, data.len() as u64);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_chunks_stay_within_one_mib_at_the_end_of_the_document() {
    // One event so large that the JSON document's opening and the event fit
    // in one chunk and its closing does not.
    let mib = 1 << 20;
    let head = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"big","stage":"ResponseComplete","requestURI":"/api/v1/namespaces","verb":"list","user":{"username":"big@example.com"},"responseStatus":{"code":200},"stageTimestamp":"2026-01-01T00:00:00.000001Z","annotations":{"pad":""#;
    let tail = r#""}}"#;
    let pad = "x".repeat(mib - 4 - head.len() - tail.len());
    let line = format!("{head}{pad}{tail}");
    assert_eq!(line.len(), mib - 4);
    let events = events_of("solo", std::slice::from_ref(&line));
    assert_eq!(events.len(), 1);
    let (_dir, _store, mut server) = serve(&events).await;
    let got = export(&mut server.client, v1::ExportRequest::default()).await;
    assert_eq!(
        String::from_utf8(got.doc).expect("utf-8"),
        json_document(&[&line])
    );
    assert!(
        got.largest_chunk <= mib,
        "a chunk of {} bytes, above 1 MiB ({mib}); the contract says chunks of at most 1 MiB",
        got.largest_chunk
    );
    server.stop().await;
}

const WRITE_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// A successful write at ResponseComplete on the resource itself: a version.
fn is_version(e: &Ev) -> bool {
    e.stage == "ResponseComplete"
        && WRITE_VERBS.contains(&e.verb.as_str())
        && e.code.is_some_and(|c| (200..300).contains(&c))
        && e.subresource.is_empty()
}

/// One resource: cluster, api group, resource, namespace, name.
type Key = (String, String, String, String, String);

fn key(e: &Ev) -> Key {
    (
        e.cluster.clone(),
        e.api_group.clone(),
        e.resource.clone(),
        e.namespace.clone(),
        e.name.clone(),
    )
}

/// A network policy of `alpha` with a create, patches or updates and a
/// delete, no dry run, at least one read and one refused write; the richest
/// such policy. Returns every event about it, oldest first.
fn pick_policy(data: &[Ev]) -> Vec<&Ev> {
    let mut by_key: BTreeMap<Key, Vec<&Ev>> = BTreeMap::new();
    for e in data
        .iter()
        .filter(|e| e.cluster == "alpha" && e.resource == "networkpolicies")
    {
        by_key.entry(key(e)).or_default().push(e);
    }
    by_key
        .into_values()
        .filter_map(|mut events| {
            events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
            let versions: Vec<&&Ev> = events.iter().filter(|e| is_version(e)).collect();
            let changes = versions
                .iter()
                .filter(|e| e.verb == "patch" || e.verb == "update")
                .count();
            let fits = versions.first().is_some_and(|e| e.verb == "create")
                && versions.last().is_some_and(|e| e.verb == "delete")
                && versions.iter().filter(|e| e.verb == "delete").count() == 1
                && changes >= 2
                && events.iter().all(|e| !e.dry_run)
                && events
                    .iter()
                    .any(|e| e.verb == "get" && e.code == Some(200));
            let refused = events
                .iter()
                .any(|e| WRITE_VERBS.contains(&e.verb.as_str()) && !is_version(e));
            fits.then_some(((refused, versions.len()), events))
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, events)| events)
        .expect("the generated data has a network policy created, changed and deleted")
}

/// What History must answer for the versions among `events`.
struct Expected<'a> {
    event: &'a Ev,
    object: Value,
}

fn expected_versions<'a>(events: &[&'a Ev]) -> Vec<Expected<'a>> {
    let mut previous: Option<Value> = None;
    let mut out = Vec::new();
    for e in events.iter().copied().filter(|e| is_version(e)) {
        let response = e.json.get("responseObject");
        let is_object = response.is_some_and(|r| {
            r.get("metadata").is_some() && r.get("kind").and_then(Value::as_str) != Some("Status")
        });
        let object = match (is_object, e.verb.as_str()) {
            (true, _) => response.cloned().expect("object"),
            (false, "delete") => previous.clone().expect("a delete after a version"),
            (false, _) => panic!("a successful write carries its object: {}", e.raw),
        };
        previous = Some(object.clone());
        out.push(Expected { event: e, object });
    }
    out
}

fn assert_version(got: &v1::ResourceVersion, want: &Expected<'_>) {
    let e = want.event;
    let metadata = |key: &str| {
        want.object
            .pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    assert_eq!(got.event_id, e.id);
    assert_eq!(time_of(got.time.as_ref()), e.time, "{}", e.id);
    assert_eq!(got.user, e.user);
    assert_eq!(got.verb, e.verb);
    assert_eq!(got.response_code, e.code.expect("code"));
    assert_eq!(got.deleted, e.verb == "delete", "{}", e.id);
    assert_eq!(
        got.resource_version,
        metadata("resourceVersion"),
        "{}",
        e.id
    );
    assert_eq!(got.uid, metadata("uid"));
    assert_eq!(got.kind, "NetworkPolicy");
    let object: Value = serde_json::from_slice(&got.object).expect("object is JSON");
    assert_eq!(object, want.object, "{} {}", e.verb, e.id);
}

fn history_request(policy: &Ev, cluster: &str, page_size: u32) -> v1::HistoryRequest {
    v1::HistoryRequest {
        cluster: cluster.into(),
        api_group: policy.api_group.clone(),
        resource: policy.resource.clone(),
        namespace: policy.namespace.clone(),
        name: policy.name.clone(),
        page_size,
        ..v1::HistoryRequest::default()
    }
}

async fn history_all(client: &mut Client, request: v1::HistoryRequest) -> Vec<v1::ResourceVersion> {
    let mut request = request;
    let mut out = Vec::new();
    loop {
        let page = client
            .history(request.clone())
            .await
            .expect("history")
            .into_inner();
        if request.page_size > 0 {
            assert!(page.versions.len() <= request.page_size as usize);
        }
        out.extend(page.versions);
        if page.next_page_token.is_empty() {
            return out;
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_the_versions_of_a_network_policy() {
    let data = dataset();
    let events = pick_policy(data);
    let want = expected_versions(&events);
    assert!(want.len() >= 4, "create, two changes, delete");
    let policy = events[0];
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;

    // One page, then pages of 1 (a delete alone on its page takes the
    // object of a version on another page) and of 2.
    for page_size in [0, 1, 2, 1000] {
        let got = history_all(client, history_request(policy, "alpha", page_size)).await;
        assert_eq!(got.len(), want.len(), "page_size {page_size}");
        for (got, want) in got.iter().zip(&want) {
            assert_version(got, want);
        }
    }

    // A time range narrows the versions.
    let from = want[1].event.time;
    let got = history_all(
        client,
        v1::HistoryRequest {
            from: rfc3339(from),
            ..history_request(policy, "alpha", 0)
        },
    )
    .await;
    let ids: Vec<&str> = got.iter().map(|v| v.event_id.as_str()).collect();
    let want_ids: Vec<&str> = want[1..].iter().map(|w| w.event.id.as_str()).collect();
    assert_eq!(ids, want_ids);

    // A token belongs to its request.
    let page = client
        .history(history_request(policy, "alpha", 1))
        .await
        .expect("history")
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    let other = v1::HistoryRequest {
        name: format!("{}-other", policy.name),
        page_token: page.next_page_token.clone(),
        ..history_request(policy, "alpha", 1)
    };
    expect_code(
        client.history(other).await,
        Code::InvalidArgument,
        "token of another resource",
    );
    let garbage = v1::HistoryRequest {
        page_token: "garbage".into(),
        ..history_request(policy, "alpha", 1)
    };
    expect_code(
        client.history(garbage).await,
        Code::InvalidArgument,
        "garbage token",
    );

    // Unknown resources answer an empty list.
    for request in [
        history_request(policy, "beta", 0),
        v1::HistoryRequest {
            name: "no-such-policy".into(),
            ..history_request(policy, "alpha", 0)
        },
    ] {
        let page = client.history(request).await.expect("history").into_inner();
        assert!(page.versions.is_empty());
        assert!(page.next_page_token.is_empty());
    }

    let bad = [
        (
            "no resource",
            v1::HistoryRequest {
                resource: String::new(),
                ..history_request(policy, "alpha", 0)
            },
        ),
        (
            "no name",
            v1::HistoryRequest {
                name: String::new(),
                ..history_request(policy, "alpha", 0)
            },
        ),
        (
            "no cluster, two in the store",
            history_request(policy, "", 0),
        ),
        ("page_size 1001", history_request(policy, "alpha", 1001)),
        (
            "bad time",
            v1::HistoryRequest {
                from: "last week".into(),
                ..history_request(policy, "alpha", 0)
            },
        ),
    ];
    for (what, request) in bad {
        expect_code(client.history(request).await, Code::InvalidArgument, what);
    }
    server.stop().await;

    // With a single cluster in the store, the cluster may be left out.
    let solo: Vec<Ev> = events.iter().map(|e| (*e).clone()).collect();
    let (_dir, _store, mut server) = serve(&solo).await;
    let got = history_all(&mut server.client, history_request(policy, "", 0)).await;
    assert_eq!(got.len(), want.len());
    for (got, want) in got.iter().zip(&want) {
        assert_version(got, want);
    }
    server.stop().await;
}

fn diff_request(from: &str, to: &str) -> v1::DiffRequest {
    v1::DiffRequest {
        from_event_id: from.into(),
        to_event_id: to.into(),
        ..v1::DiffRequest::default()
    }
}

/// The body lines of a unified diff starting with `sign`.
fn changed(diff: &str, sign: char) -> Vec<&str> {
    diff.lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++") && l.starts_with(sign))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_what_changed_between_two_versions() {
    let data = dataset();
    let events = pick_policy(data);
    let want = expected_versions(&events);
    let (_dir, _store, mut server) = serve(data).await;
    let client = &mut server.client;
    let (a, b) = (&want[0], &want[1]);
    let md = |v: &Value, key: &str| {
        v.pointer(&format!("/metadata/{key}"))
            .cloned()
            .expect("metadata")
    };

    let answer = client
        .diff(diff_request(&a.event.id, &b.event.id))
        .await
        .expect("diff")
        .into_inner();
    let diff = &answer.unified_diff;
    assert!(!answer.identical);
    assert!(
        diff.starts_with(&format!("--- {}\n+++ {}\n", a.event.id, b.event.id)),
        "{diff}"
    );
    assert_version(answer.from.as_ref().expect("from"), a);
    assert_version(answer.to.as_ref().expect("to"), b);
    let (minus, plus) = (changed(diff, '-'), changed(diff, '+'));
    let has = |lines: &[&str], key: &str, value: &Value| {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        lines
            .iter()
            .any(|l| l.contains(&format!("{key}:")) && l.contains(&value))
    };
    for key in ["resourceVersion", "generation"] {
        assert!(
            has(&minus, key, &md(&a.object, key)),
            "old {key} removed:\n{diff}"
        );
        assert!(
            has(&plus, key, &md(&b.object, key)),
            "new {key} added:\n{diff}"
        );
    }
    // The change itself: the `rev` label the patch set.
    let rev = b
        .object
        .pointer("/metadata/labels/rev")
        .cloned()
        .expect("rev label");
    assert!(a.object.pointer("/metadata/labels/rev").is_none());
    assert!(has(&plus, "rev", &rev), "{diff}");
    assert!(!has(&minus, "rev", &rev), "{diff}");

    // Noisy metadata left out: the change stays, the noise goes.
    let quiet = client
        .diff(v1::DiffRequest {
            ignore_noisy_metadata: true,
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(!quiet.identical);
    assert!(
        !quiet.unified_diff.contains("resourceVersion"),
        "{}",
        quiet.unified_diff
    );
    assert!(
        !quiet.unified_diff.contains("generation"),
        "{}",
        quiet.unified_diff
    );
    assert!(
        has(&changed(&quiet.unified_diff, '+'), "rev", &rev),
        "{}",
        quiet.unified_diff
    );

    // Unset context is three lines.
    let three = client
        .diff(v1::DiffRequest {
            context_lines: Some(3),
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert_eq!(&three.unified_diff, diff, "default context is 3");
    let wide = client
        .diff(v1::DiffRequest {
            context_lines: Some(1000),
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(wide.unified_diff.lines().count() > diff.lines().count());

    // No context: only changed lines and hunk headers.
    let bare = client
        .diff(v1::DiffRequest {
            context_lines: Some(0),
            ..diff_request(&a.event.id, &b.event.id)
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(
        bare.unified_diff
            .lines()
            .skip(2)
            .all(|l| l.starts_with(['-', '+', '@'])),
        "{}",
        bare.unified_diff
    );
    assert!(bare.unified_diff.lines().count() < diff.lines().count());

    // Identical objects: a version with itself, and a delete (whose object
    // is the version before it) with that version.
    let last = &want[want.len() - 1];
    let before_last = &want[want.len() - 2];
    assert_eq!(last.event.verb, "delete");
    for (from, to) in [(b, b), (before_last, last)] {
        let same = client
            .diff(diff_request(&from.event.id, &to.event.id))
            .await
            .expect("diff")
            .into_inner();
        assert!(same.identical, "{} -> {}", from.event.verb, to.event.verb);
        assert_eq!(same.unified_diff, "");
        assert_version(same.to.as_ref().expect("to"), to);
    }

    // Errors.
    let other = data
        .iter()
        .find(|e| {
            is_version(e)
                && e.cluster == "alpha"
                && e.resource == "networkpolicies"
                && key(e) != key(a.event)
        })
        .expect("another policy");
    let read = events
        .iter()
        .find(|e| e.verb == "get")
        .expect("a read of the policy");
    let unknown = EventId::compute("alpha", b"never stored").to_hex();
    let cases = [
        (
            "unknown id",
            diff_request(&a.event.id, &unknown),
            Code::NotFound,
        ),
        (
            "unknown from id",
            diff_request(&unknown, &a.event.id),
            Code::NotFound,
        ),
        (
            "malformed id",
            diff_request("xyz", &a.event.id),
            Code::InvalidArgument,
        ),
        (
            "short id",
            diff_request(&a.event.id, &a.event.id[1..]),
            Code::InvalidArgument,
        ),
        (
            "empty id",
            diff_request(&a.event.id, ""),
            Code::InvalidArgument,
        ),
        (
            "two resources",
            diff_request(&a.event.id, &other.id),
            Code::FailedPrecondition,
        ),
        (
            "an event without object",
            diff_request(&a.event.id, &read.id),
            Code::FailedPrecondition,
        ),
        (
            "context above 1000",
            v1::DiffRequest {
                context_lines: Some(1001),
                ..diff_request(&a.event.id, &b.event.id)
            },
            Code::InvalidArgument,
        ),
    ];
    for (what, request, code) in cases {
        expect_code(client.diff(request).await, code, what);
    }
    // A huge id is named by its start, never echoed back whole.
    let huge = "f".repeat(1 << 20);
    let status = expect_code(
        client.diff(diff_request(&huge, &a.event.id)).await,
        Code::InvalidArgument,
        "a 1 MiB id",
    );
    assert!(status.message().len() < 300, "{}", status.message().len());
    assert!(status.message().contains("(1048576 bytes)"), "{status:?}");
    // A read is no version: diff refuses it and says what it is.
    let status = expect_code(
        client.diff(diff_request(&a.event.id, &read.id)).await,
        Code::FailedPrecondition,
        "a read",
    );
    assert!(
        status.message().contains("is not a version of its object"),
        "{status:?}"
    );
    server.stop().await;
}

/// An empty store answers every RPC with an empty result, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_over_an_empty_store_answers_empty_results() {
    let (_dir, store) = store_with(&[]).await;
    let mut server = Server::start(Arc::new(store)).await;
    let client = &mut server.client;
    let page = client
        .search(search(filter(), 0))
        .await
        .expect("search")
        .into_inner();
    assert!(page.events.is_empty());
    assert_eq!(page.total_hits, 0);
    assert!(page.next_page_token.is_empty());
    let histogram = client
        .histogram(v1::HistogramRequest::default())
        .await
        .expect("histogram")
        .into_inner();
    assert!(histogram.buckets.is_empty());
    assert_eq!(histogram.total, 0);
    let got = export(client, v1::ExportRequest::default()).await;
    assert_eq!(got.doc, b"[]\n");
    let history = client
        .history(v1::HistoryRequest {
            resource: "networkpolicies".into(),
            namespace: "default".into(),
            name: "x".into(),
            ..v1::HistoryRequest::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert!(history.versions.is_empty());
    // It says what it searched: no cluster, since the store holds none.
    assert_eq!(
        (
            history.cluster.as_str(),
            history.resource.as_str(),
            history.kind.as_str()
        ),
        ("", "networkpolicies", "NetworkPolicy")
    );
    server.stop().await;
}

/// Every real sample, through the real service: each event's summary in a
/// search answer is the one `crates/event/tests/real_events.tsv` gives (rows
/// written from reading the events), and `History` of its object lists the
/// event exactly when its row says it is a version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_events_read_right_in_search_and_history() {
    let root = real_dir();
    let table = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/event/tests/real_events.tsv"),
    )
    .expect("real_events.tsv");
    // id → (version, summary); the table names lines by file and number.
    let mut expected: HashMap<String, (bool, String)> = HashMap::new();
    let mut lines = Vec::new();
    for row in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = row.split('\t').collect();
        let [file, line, version, summary] = cols[..] else {
            panic!("row {row:?}");
        };
        if version == "error" {
            continue;
        }
        let n: usize = line.parse().expect("line number");
        let content = std::fs::read_to_string(root.join(file)).expect("sample");
        let text = content.split('\n').nth(n - 1).expect("the line exists");
        let ev = Ev::new("real", text).expect("an event");
        expected.insert(ev.id.clone(), (version == "version", summary.to_owned()));
        lines.push(text.to_owned());
    }
    let events = events_of("real", &lines);
    assert!(events.len() > 200, "every real sample: {}", events.len());
    let (_dir, _store, mut server) = serve(&events).await;

    let walk = search_all(
        &mut server.client,
        v1::SearchRequest {
            page_size: 1000,
            ..v1::SearchRequest::default()
        },
    )
    .await;
    assert_eq!(walk.events.len(), events.len());
    for got in &walk.events {
        let (version, summary) = &expected[&got.id];
        assert_eq!(&got.summary, summary, "{}", got.id);
        assert_eq!(got.version, *version, "{summary}");
    }

    // History of each object holds exactly its versions.
    let mut objects: BTreeMap<(String, String, String, String), Vec<&Ev>> = BTreeMap::new();
    for e in &events {
        if e.resource.is_empty() || e.name.is_empty() {
            continue;
        }
        let cluster_scoped =
            auditrail_event::resource::namespaced(&e.resource, Some(&e.api_group)) == Some(false);
        let namespace = if cluster_scoped { "" } else { &e.namespace };
        let group = if e.api_group.is_empty() {
            "core"
        } else {
            &e.api_group
        };
        objects
            .entry((
                group.to_owned(),
                e.resource.clone(),
                namespace.to_owned(),
                e.name.clone(),
            ))
            .or_default()
            .push(e);
    }
    let mut versions_seen = 0;
    for ((group, resource, namespace, name), about) in &objects {
        let history = server
            .client
            .history(v1::HistoryRequest {
                api_group: group.clone(),
                resource: resource.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                page_size: 1000,
                ..v1::HistoryRequest::default()
            })
            .await
            .unwrap_or_else(|s| panic!("history {resource} {namespace}/{name}: {s:?}"))
            .into_inner();
        let listed: HashSet<&str> = history
            .versions
            .iter()
            .map(|v| v.event_id.as_str())
            .collect();
        let want: HashSet<&str> = about
            .iter()
            .filter(|e| expected[&e.id].0)
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(
            listed, want,
            "history of {group}/{resource} {namespace}/{name}"
        );
        assert_eq!(history.cluster, "real");
        versions_seen += want.len();
    }
    let all_versions = expected.values().filter(|(v, _)| *v).count();
    assert!(versions_seen > 50, "{versions_seen} versions checked");
    assert!(versions_seen <= all_versions);

    // Kinds as kubectl users write them name the same history.
    let history = |resource: &str, namespace: &str, name: &str| v1::HistoryRequest {
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..v1::HistoryRequest::default()
    };
    let ids = |r: v1::HistoryResponse| -> Vec<String> {
        r.versions.into_iter().map(|v| v.event_id).collect()
    };
    let namespace_foo = ids(server
        .client
        .history(history("namespaces", "", "foo"))
        .await
        .expect("history")
        .into_inner());
    assert_eq!(
        namespace_foo.len(),
        4,
        "three creates of namespace foo, one delete"
    );
    for alias in ["ns", "Namespace", "namespace", "NAMESPACES"] {
        let got = server
            .client
            .history(history(alias, "", "foo"))
            .await
            .expect(alias);
        let got = got.into_inner();
        assert_eq!(
            (got.resource.as_str(), got.kind.as_str()),
            ("namespaces", "Namespace")
        );
        assert_eq!(ids(got), namespace_foo, "{alias}");
    }
    let config = ids(server
        .client
        .history(history("configmaps", "default", "my-config"))
        .await
        .expect("history")
        .into_inner());
    assert!(config.len() >= 8, "{config:?}");
    for alias in ["ConfigMap", "configmap", "cm"] {
        let got = server
            .client
            .history(history(alias, "default", "my-config"))
            .await;
        assert_eq!(ids(got.expect(alias).into_inner()), config, "{alias}");
    }
    // A namespace on a cluster-scoped object, or none on a namespaced one,
    // is a mistake, never an empty answer.
    let status = expect_code(
        server
            .client
            .history(history("namespaces", "foo", "foo"))
            .await,
        Code::InvalidArgument,
        "namespace foo/foo",
    );
    assert!(status.message().contains("cluster-scoped"), "{status:?}");
    let status = expect_code(
        server.client.history(history("cm", "", "my-config")).await,
        Code::InvalidArgument,
        "a config map without its namespace",
    );
    assert!(status.message().contains("namespaced"), "{status:?}");
    server.stop().await;
}

/// An event nesting deeper than the JSON parser's limit is stored like any
/// other; YAML renders it as its original JSON with a note instead of
/// failing the export, history lists it without its object, and diff says
/// why it cannot compare it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_event_degrades_instead_of_failing() {
    let version = |verb: &str, time: &str, data: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"{verb}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps/deep","verb":"{verb}","user":{{"username":"u"}},"objectRef":{{"resource":"configmaps","namespace":"default","name":"deep","apiVersion":"v1"}},"responseStatus":{{"code":200}},"responseObject":{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"deep","namespace":"default"}},"data":{data}}},"requestReceivedTimestamp":"{time}","stageTimestamp":"{time}"}}"#
        )
    };
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(2000), "]".repeat(2000));
    let lines = [
        version("create", "2026-02-01T00:00:00Z", r#"{"a":"1"}"#),
        version("update", "2026-02-01T00:01:00Z", &deep),
    ];
    // The test's own reading (serde_json::Value) cannot hold the deep
    // event: the store is given the product's indexed view directly.
    let (dir, store) = store_with(&[]).await;
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("time");
    let indexed = lines
        .iter()
        .map(|l| {
            auditrail_store::IndexedEvent::from_raw("deep", l.as_bytes(), EventType::Kube, now)
                .expect("the product stores it")
        })
        .collect();
    let outcome = auditrail_store::Store::write(&store, indexed)
        .await
        .expect("write");
    assert_eq!(outcome.inserted, 2);
    let mut server = Server::start(Arc::new(store)).await;
    let client = &mut server.client;

    let got = export(
        client,
        v1::ExportRequest {
            format: v1::ExportFormat::Yaml as i32,
            sort: v1::SortOrder::OldestFirst as i32,
            ..v1::ExportRequest::default()
        },
    )
    .await;
    assert_eq!(got.summary.total_events, 2);
    let doc = String::from_utf8(got.doc).expect("utf-8");
    let parts: Vec<&str> = doc.split("---\n").skip(1).collect();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].starts_with("kind: Event\n"), "{}", parts[0]);
    assert!(
        parts[1].starts_with("# auditrail: this event is shown as its original JSON"),
        "{}",
        &parts[1][..100]
    );
    assert!(parts[1].ends_with(&format!("{}\n", lines[1])));

    let history = client
        .history(v1::HistoryRequest {
            resource: "configmaps".into(),
            namespace: "default".into(),
            name: "deep".into(),
            ..v1::HistoryRequest::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.versions.len(), 2);
    assert!(!history.versions[0].object.is_empty());
    assert!(history.versions[1].object.is_empty());
    let status = expect_code(
        client
            .diff(v1::DiffRequest {
                from_event_id: history.versions[0].event_id.clone(),
                to_event_id: history.versions[1].event_id.clone(),
                ..v1::DiffRequest::default()
            })
            .await,
        Code::FailedPrecondition,
        "diff with a deep object",
    );
    assert!(
        status.message().contains("cannot be compared"),
        "{status:?}"
    );
    assert!(status.message().contains("recursion limit"), "{status:?}");
    server.stop().await;
    drop(dir);
}

/// Exports whose clients do not read hold their slots; beyond the bounds
/// `Export` answers RESOURCE_EXHAUSTED at once, and cancelled exports free
/// their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exports_are_bounded_and_freed_when_cancelled() {
    let lines = generated(
        7,
        "2026-03-01T00:00:00Z",
        SignedDuration::from_secs(1),
        20_000,
    );
    let events = events_of("many", &lines);
    let (_dir, store) = store_with(&events).await;
    let mut server = Server::start_service(
        auditrail_query::Querier::new(Arc::new(store)).with_export_limits(3, 3),
    )
    .await;
    let request = || v1::ExportRequest {
        format: v1::ExportFormat::Yaml as i32,
        ..v1::ExportRequest::default()
    };
    // Three exports nobody reads: far more than the windows and the
    // channel hold, so none of them can finish.
    let mut unread = Vec::new();
    for _ in 0..3 {
        unread.push(
            server
                .client
                .export(request())
                .await
                .expect("export")
                .into_inner(),
        );
    }
    let status = expect_code(
        server.client.export(request()).await.map(|_| ()),
        Code::ResourceExhausted,
        "a fourth export",
    );
    assert!(
        status.message().contains("3 exports are running"),
        "{status:?}"
    );
    // Cancelling them frees their slots.
    drop(unread);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match server.client.export(request()).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut done = None;
                while let Some(chunk) = stream.message().await.expect("chunk") {
                    done = chunk.done;
                }
                assert_eq!(done.expect("the end marker").total_events, 20_000);
                break;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(std::time::Instant::now() < deadline, "slots never freed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(status) => panic!("export: {status:?}"),
        }
    }
    server.stop().await;
}
