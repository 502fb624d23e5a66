//! Collectors for the timeline order, time spans and histograms.
//!
//! Search-after paging needs a total, stable order: two events with the same
//! time must always come out in the same order, and a cursor must name exactly
//! one position. Tantivy's top-docs collectors order by one fast field with a
//! doc-address tiebreak, which changes when segments merge, so this module
//! orders by (time, id) itself, reading the time column and the four id
//! columns (the id's bytes, big-endian), and skips everything at or before the
//! cursor.
//!
//! Each document gets a key of five `u64`s whose ascending order is the
//! requested order: the time mapped order-preservingly from `i64` to `u64`,
//! then the id words; for newest-first every word is complemented, which
//! reverses the order. The id words are only read when the time alone cannot
//! decide (a tie with the cursor or with the worst kept hit), so most
//! non-competitive documents cost one column read.

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use auditrail_store::{Cursor, SortOrder};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{ColumnValues, StrColumn};
use tantivy::{DateTime, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::schema::{ID_PARTS, TIME, ceil_micros, floor_micros, id_parts};

/// A position in the requested order: smaller comes first.
pub(crate) type SortKey = [u64; 5];

fn time_word(order: SortOrder, micros: i64) -> u64 {
    let ordered = micros.cast_unsigned() ^ (1 << 63);
    match order {
        SortOrder::OldestFirst => ordered,
        SortOrder::NewestFirst => !ordered,
    }
}

fn key(order: SortOrder, micros: i64, id: [u64; 4]) -> SortKey {
    let id = match order {
        SortOrder::OldestFirst => id,
        SortOrder::NewestFirst => id.map(|w| !w),
    };
    [time_word(order, micros), id[0], id[1], id[2], id[3]]
}

/// The key of a cursor: documents with a greater key come after it.
///
/// Stored times are whole microseconds. A cursor time with a sub-microsecond
/// part lies strictly between two of them, so it is replaced by the nearest
/// stored position on its far side: for newest-first, "before t" is "at or
/// before floor(t)", i.e. after (ceil(t), smallest id); for oldest-first,
/// "after t" is "after (floor(t), largest id)".
pub(crate) fn cursor_key(order: SortOrder, cursor: &Cursor) -> SortKey {
    let floor = floor_micros(cursor.time);
    if floor == ceil_micros(cursor.time) {
        return key(order, floor, id_parts(&cursor.id));
    }
    match order {
        SortOrder::NewestFirst => key(order, ceil_micros(cursor.time), [0; 4]),
        SortOrder::OldestFirst => key(order, floor, [u64::MAX; 4]),
    }
}

/// The first `keep` matching documents of a segment after `after` in
/// `order`, among those whose key is below `below`.
///
/// `below` carries what earlier segments found into this one: once the
/// search holds `keep` hits, a document must beat the worst of them, and
/// most documents fail that on their time alone (one column read).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopByTime {
    pub(crate) order: SortOrder,
    pub(crate) keep: usize,
    pub(crate) after: Option<SortKey>,
    pub(crate) below: Option<SortKey>,
}

/// A hit: its key and where it is.
pub(crate) type Hit = (SortKey, DocAddress);

impl Collector for TopByTime {
    type Fruit = Vec<Hit>;
    type Child = TopByTimeSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let fast = segment.fast_fields();
        let time = fast.column_first_or_default::<DateTime>(TIME)?;
        let ids = [
            fast.column_first_or_default::<u64>(ID_PARTS[0])?,
            fast.column_first_or_default::<u64>(ID_PARTS[1])?,
            fast.column_first_or_default::<u64>(ID_PARTS[2])?,
            fast.column_first_or_default::<u64>(ID_PARTS[3])?,
        ];
        Ok(TopByTimeSegment {
            segment_ord,
            order: self.order,
            keep: self.keep,
            after: self.after,
            below: self.below,
            time,
            ids,
            heap: BinaryHeap::with_capacity(self.keep.min(1024)),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Hit>>) -> tantivy::Result<Self::Fruit> {
        let mut hits: Vec<Hit> = fruits.into_iter().flatten().collect();
        hits.sort_unstable_by_key(|(key, _)| *key);
        hits.truncate(self.keep);
        Ok(hits)
    }
}

/// The best time word any document of `segment` can have in `order`, from
/// the time column's minimum and maximum; `None` for a segment without
/// documents. Segments are searched best first, and once a search holds
/// enough hits a segment whose best word is worse than all of them is
/// skipped without reading it.
pub(crate) fn best_time_word(
    order: SortOrder,
    segment: &SegmentReader,
) -> tantivy::Result<Option<u64>> {
    if segment.num_docs() == 0 {
        return Ok(None);
    }
    let time = segment
        .fast_fields()
        .column_first_or_default::<DateTime>(TIME)?;
    let words =
        [time.min_value(), time.max_value()].map(|t| time_word(order, t.into_timestamp_micros()));
    Ok(Some(words[0].min(words[1])))
}

/// [`TopByTime`] for one segment.
pub(crate) struct TopByTimeSegment {
    segment_ord: SegmentOrdinal,
    order: SortOrder,
    keep: usize,
    after: Option<SortKey>,
    below: Option<SortKey>,
    time: Arc<dyn ColumnValues<DateTime>>,
    ids: [Arc<dyn ColumnValues<u64>>; 4],
    /// Max-heap: the worst kept hit on top.
    heap: BinaryHeap<(SortKey, DocId)>,
}

impl TopByTimeSegment {
    /// The key a document must be below to be kept: the smaller of `below`
    /// and the worst kept hit when the heap is full.
    fn bar(&self) -> Option<SortKey> {
        let local = (self.heap.len() >= self.keep)
            .then(|| self.heap.peek().map(|(k, _)| *k))
            .flatten();
        match (local, self.below) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl SegmentCollector for TopByTimeSegment {
    type Fruit = Vec<Hit>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let micros = self.time.get_val(doc).into_timestamp_micros();
        let word = time_word(self.order, micros);
        if self.after.is_some_and(|a| word < a[0]) {
            return;
        }
        let bar = self.bar();
        if bar.is_some_and(|b| word > b[0]) {
            // Decided by time: not better than what is already kept.
            return;
        }
        let id = [
            self.ids[0].get_val(doc),
            self.ids[1].get_val(doc),
            self.ids[2].get_val(doc),
            self.ids[3].get_val(doc),
        ];
        let k = key(self.order, micros, id);
        if self.after.is_some_and(|a| k <= a) || bar.is_some_and(|b| k >= b) {
            return;
        }
        if self.heap.len() < self.keep {
            self.heap.push((k, doc));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            // `k` is below the bar, so below the worst kept hit.
            *worst = (k, doc);
        }
    }

    fn harvest(self) -> Self::Fruit {
        let segment_ord = self.segment_ord;
        self.heap
            .into_iter()
            .map(|(k, doc_id)| (k, DocAddress::new(segment_ord, doc_id)))
            .collect()
    }
}

/// The smallest and largest `time` (microseconds) of the matching documents.
pub(crate) struct TimeSpan;

impl Collector for TimeSpan {
    type Fruit = Option<(i64, i64)>;
    type Child = TimeSpanSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(TimeSpanSegment {
            time: segment
                .fast_fields()
                .column_first_or_default::<DateTime>(TIME)?,
            span: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Option<(i64, i64)>>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits
            .into_iter()
            .flatten()
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d))))
    }
}

/// [`TimeSpan`] for one segment.
pub(crate) struct TimeSpanSegment {
    time: Arc<dyn ColumnValues<DateTime>>,
    span: Option<(i64, i64)>,
}

impl SegmentCollector for TimeSpanSegment {
    type Fruit = Option<(i64, i64)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let t = self.time.get_val(doc).into_timestamp_micros();
        self.span = Some(self.span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
    }

    fn harvest(self) -> Self::Fruit {
        self.span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditrail_event::EventId;
    use jiff::Timestamp;

    #[test]
    fn keys_order_as_requested() {
        let a = EventId::compute("c", b"a");
        let b = EventId::compute("c", b"b");
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let k = |order, t, id: &EventId| key(order, t, id_parts(id));
        for order in [SortOrder::OldestFirst, SortOrder::NewestFirst] {
            let mut keys = vec![
                (k(order, -5, &hi), (-5, hi)),
                (k(order, 7, &lo), (7, lo)),
                (k(order, -5, &lo), (-5, lo)),
                (k(order, 7, &hi), (7, hi)),
                (k(order, 0, &lo), (0, lo)),
            ];
            keys.sort_by_key(|(key, _)| *key);
            let got: Vec<_> = keys.into_iter().map(|(_, v)| v).collect();
            let mut want = got.clone();
            want.sort();
            if order == SortOrder::NewestFirst {
                want.reverse();
            }
            assert_eq!(got, want, "{order:?}");
        }
    }

    #[test]
    fn sub_microsecond_cursor_sits_between_stored_positions() {
        let id = EventId::compute("c", b"x");
        let cursor = Cursor {
            time: Timestamp::from_nanosecond(10_500).unwrap(),
            id,
        };
        // Stored times are whole microseconds: 10 comes before the cursor in
        // oldest-first and after it in newest-first; 11 the other way round.
        let any = [u64::MAX, 0, 7, 1];
        let old = cursor_key(SortOrder::OldestFirst, &cursor);
        assert!(key(SortOrder::OldestFirst, 10, any) <= old);
        assert!(key(SortOrder::OldestFirst, 11, [0; 4]) > old);
        let new = cursor_key(SortOrder::NewestFirst, &cursor);
        assert!(key(SortOrder::NewestFirst, 11, any) <= new);
        assert!(key(SortOrder::NewestFirst, 10, [u64::MAX; 4]) > new);
    }
}

/// Counts per time bucket and per value of some keyword fields.
pub(crate) struct Buckets {
    /// Bucket width in microseconds (positive).
    pub(crate) interval_micros: i64,
    /// Fast column names of the fields whose values to count.
    pub(crate) terms: Vec<&'static str>,
}

/// What [`Buckets`] gathers: events per bucket index (bucket start divided
/// by the interval), and per field the events per value.
#[derive(Debug, Default)]
pub(crate) struct BucketCounts {
    pub(crate) buckets: HashMap<i64, u64>,
    pub(crate) terms: Vec<HashMap<String, u64>>,
}

impl Collector for Buckets {
    type Fruit = BucketCounts;
    type Child = BucketsSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let fast = segment.fast_fields();
        let terms = self
            .terms
            .iter()
            .map(|name| {
                let column = fast.str(name)?.ok_or_else(|| {
                    tantivy::TantivyError::SchemaError(format!("{name} is not a fast field"))
                })?;
                let counts = vec![0; column.num_terms()];
                Ok((column, counts, 0))
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(BucketsSegment {
            interval_micros: self.interval_micros,
            time: fast.column_first_or_default::<DateTime>(TIME)?,
            current: None,
            buckets: HashMap::new(),
            terms,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BucketCounts>) -> tantivy::Result<Self::Fruit> {
        let mut merged = BucketCounts {
            buckets: HashMap::new(),
            terms: vec![HashMap::new(); self.terms.len()],
        };
        for fruit in fruits {
            merged.add(fruit);
        }
        Ok(merged)
    }
}

impl BucketCounts {
    /// Adds `other`'s counts to these.
    pub(crate) fn add(&mut self, other: BucketCounts) {
        for (bucket, n) in other.buckets {
            *self.buckets.entry(bucket).or_default() += n;
        }
        if self.terms.len() < other.terms.len() {
            self.terms.resize_with(other.terms.len(), HashMap::new);
        }
        for (mine, theirs) in self.terms.iter_mut().zip(other.terms) {
            for (value, n) in theirs {
                *mine.entry(value).or_default() += n;
            }
        }
    }
}

/// [`Buckets`] for one segment.
pub(crate) struct BucketsSegment {
    interval_micros: i64,
    time: Arc<dyn ColumnValues<DateTime>>,
    /// The bucket of the previous document and its count not yet added to
    /// `buckets`: documents are mostly in time order, so runs are long.
    current: Option<(i64, u64)>,
    buckets: HashMap<i64, u64>,
    /// Per field: its column, the count per term ordinal, and documents
    /// without a value.
    terms: Vec<(StrColumn, Vec<u64>, u64)>,
}

impl SegmentCollector for BucketsSegment {
    type Fruit = BucketCounts;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let micros = self.time.get_val(doc).into_timestamp_micros();
        let bucket = micros.div_euclid(self.interval_micros);
        match &mut self.current {
            Some((b, n)) if *b == bucket => *n += 1,
            current => {
                if let Some((b, n)) = current.replace((bucket, 1)) {
                    *self.buckets.entry(b).or_default() += n;
                }
            }
        }
        for (column, counts, missing) in &mut self.terms {
            match column.ords().first(doc) {
                Some(ord) => {
                    if let Some(n) = usize::try_from(ord).ok().and_then(|o| counts.get_mut(o)) {
                        *n += 1;
                    }
                }
                None => *missing += 1,
            }
        }
    }

    fn harvest(mut self) -> Self::Fruit {
        if let Some((b, n)) = self.current.take() {
            *self.buckets.entry(b).or_default() += n;
        }
        let terms = self
            .terms
            .into_iter()
            .map(|(column, counts, missing)| {
                let mut values = HashMap::new();
                if missing > 0 {
                    values.insert(String::new(), missing);
                }
                let mut text = String::new();
                for (ord, n) in counts.into_iter().enumerate() {
                    text.clear();
                    // An ordinal always names a term of the column's own
                    // dictionary; a failed read is counted as no value.
                    let found = n > 0 && column.ord_to_str(ord as u64, &mut text).unwrap_or(false);
                    if found {
                        *values.entry(text.clone()).or_default() += n;
                    } else if n > 0 {
                        *values.entry(String::new()).or_default() += n;
                    }
                }
                values
            })
            .collect();
        BucketCounts {
            buckets: self.buckets,
            terms,
        }
    }
}
