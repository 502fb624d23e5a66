//! Searching: one page of matches in the (time, id) order, after a cursor,
//! with the total counted as far as the request asks.
//!
//! The page is found segment by segment, best segment first, so that a
//! timeline page reads few segments (see [`top_hits`]); the collectors that
//! order by (time, id) are in the `collect` module.

use std::ops::Bound;
use std::sync::Arc;

use auditrail_store::{CountMode, Cursor, SearchPage, SearchRequest, SortOrder, StoreError, Total};
use tantivy::collector::Collector as _;
use tantivy::query::{BooleanQuery, EnableScoring, Query as TQuery};
use tantivy::{DocAddress, DocSet as _, TERMINATED};

use crate::collect::{SortKey, TopByTime, best_time_word, cursor_key};
use crate::query::micros_range;
use crate::read::{View, stored_event, views};
use crate::schema::{ceil_micros, fields, floor_micros};
use crate::writer::{ClusterIndex, internal};

/// One page of the matches of `query` over `indices`, as `request` asks
/// (order, cursor, limit, count, whether with the original bytes).
pub(crate) fn search_blocking(
    indices: &[Arc<ClusterIndex>],
    query: &dyn TQuery,
    request: &SearchRequest,
) -> Result<SearchPage, StoreError> {
    let views = views(indices);
    let total = count(&views, query, request.count)?;
    // Past a cursor, only events on its side of its time can follow: bound
    // the query by time too, so that whole segments before the cursor are
    // skipped (a fast-field range answers "none" from a segment's min/max).
    let bounded: Option<Box<dyn TQuery>> = request.after.as_ref().map(|cursor| {
        let f = fields();
        let range = match request.sort {
            SortOrder::OldestFirst => micros_range(
                f.time,
                Bound::Included(floor_micros(cursor.time)),
                Bound::Unbounded,
            ),
            SortOrder::NewestFirst => micros_range(
                f.time,
                Bound::Unbounded,
                Bound::Included(ceil_micros(cursor.time)),
            ),
        };
        Box::new(BooleanQuery::intersection(vec![query.box_clone(), range])) as Box<dyn TQuery>
    });
    let page_query = bounded.as_deref().unwrap_or(query);
    // One more than the page tells whether another page follows.
    let keep = request.limit.saturating_add(1);
    let after = request.after.as_ref().map(|c| cursor_key(request.sort, c));
    let hits = top_hits(&views, page_query, request.sort, keep, after)?;
    let more = hits.len() > request.limit;
    let events = hits
        .into_iter()
        .take(request.limit)
        .map(|(_, n, address)| stored_event(&views[n], address, request.include_raw))
        .collect::<Result<Vec<_>, _>>()?;
    let next = match events.last() {
        Some(last) if more => Some(Cursor {
            time: last.time,
            id: last.id,
        }),
        _ => None,
    };
    Ok(SearchPage {
        events,
        total,
        next,
    })
}

/// The first `keep` matches of `query` in `order` after `after`, over every
/// undamaged segment of every view: `(key, view index, address)`, in order.
///
/// Segments are visited best first (by the newest, or oldest, time they
/// hold), each collected below the worst hit kept so far; once `keep` hits
/// are held, the first segment whose best time cannot beat them ends the
/// search, since every later segment is worse still. Audit events arrive
/// roughly in time order, so segments cover narrow time spans and a
/// timeline page reads few of them.
fn top_hits(
    views: &[View],
    query: &dyn TQuery,
    order: SortOrder,
    keep: usize,
    after: Option<SortKey>,
) -> Result<Vec<(SortKey, usize, DocAddress)>, StoreError> {
    let search = |e| internal("search", e);
    let mut segments = Vec::new();
    let mut weights = Vec::with_capacity(views.len());
    for (n, view) in views.iter().enumerate() {
        weights.push(
            query
                .weight(EnableScoring::disabled_from_searcher(&view.searcher))
                .map_err(search)?,
        );
        for (ord, reader) in view.segments() {
            if let Some(best) = best_time_word(order, reader).map_err(search)? {
                segments.push((best, n, ord, reader));
            }
        }
    }
    segments.sort_unstable_by_key(|(best, ..)| *best);
    let mut top: Vec<(SortKey, usize, DocAddress)> = Vec::new();
    for (best, n, ord, reader) in segments {
        let below = (top.len() >= keep).then(|| top[keep - 1].0);
        if below.is_some_and(|b| best > b[0]) {
            break;
        }
        let collector = TopByTime {
            order,
            keep,
            after,
            below,
        };
        let hits = collector
            .collect_segment(weights[n].as_ref(), ord, reader)
            .map_err(search)?;
        top.extend(hits.into_iter().map(|(key, address)| (key, n, address)));
        top.sort_unstable_by_key(|(key, ..)| *key);
        top.truncate(keep);
    }
    Ok(top)
}

/// Counts the matches of `query` as far as `mode` asks.
fn count(views: &[View], query: &dyn TQuery, mode: CountMode) -> Result<Option<Total>, StoreError> {
    let limit = match mode {
        CountMode::None => return Ok(None),
        CountMode::Exact => {
            let mut n = 0u64;
            for view in views {
                n += view.count(query).map_err(|e| internal("count", e))?;
            }
            return Ok(Some(Total {
                count: n,
                exact: true,
            }));
        }
        CountMode::UpTo(limit) => limit,
    };
    // Walk the matches until one more than the limit is found.
    let mut n = 0u64;
    for view in views {
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(&view.searcher))
            .map_err(|e| internal("count", e))?;
        for (_, reader) in view.segments() {
            let mut scorer = weight
                .scorer(reader, 1.0)
                .map_err(|e| internal("count", e))?;
            let alive = reader.alive_bitset();
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    n += 1;
                    if n > limit {
                        return Ok(Some(Total {
                            count: limit,
                            exact: false,
                        }));
                    }
                }
                doc = scorer.advance();
            }
        }
    }
    Ok(Some(Total {
        count: n,
        exact: true,
    }))
}
