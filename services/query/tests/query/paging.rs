//! Search paging while events keep arriving, and page token misuse.

use std::collections::{HashMap, HashSet};

use auditrail_proto::v1;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tonic::Code;

use crate::common::{
    Client, Ev, dataset, events_of, expect_code, filter, generated, ordered, search, serve,
    strings, write,
};
use crate::search::cluster_sorted;

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
