//! Reading what a search found: a [`View`] of one cluster index that leaves
//! its damaged segments out of every read, and the [`StoredEvent`] of a
//! document, decoded straight from the document store.
//!
//! Searches, counts, histograms, statistics and `get` all read through a
//! view, so that no read can reach a segment verification found damaged.

use std::collections::HashSet;
use std::sync::Arc;

use auditrail_event::{EventId, EventType};
use auditrail_store::{Provenance, StoreError, StoredEvent};
use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Query as TQuery};
use tantivy::schema::OwnedValue;
use tantivy::schema::document::{DeserializeError, DocumentDeserialize, DocumentDeserializer};
use tantivy::{DocAddress, Searcher, SegmentReader};

use crate::schema::{fields, timestamp};
use crate::verify;
use crate::writer::{ClusterIndex, internal};

/// The stored fields of an event, read straight from the document store:
/// each value is moved out of the decoder (the original JSON is not copied
/// again), and fields nobody reads are not collected into a document.
#[derive(Default)]
struct StoredFields {
    id: Option<Vec<u8>>,
    cluster: Option<String>,
    event_type: Option<String>,
    time: Option<tantivy::DateTime>,
    raw: Option<String>,
    provenance: Option<String>,
}

impl DocumentDeserialize for StoredFields {
    fn deserialize<'de, D>(mut deserializer: D) -> Result<Self, DeserializeError>
    where
        D: DocumentDeserializer<'de>,
    {
        let f = fields();
        let mut out = Self::default();
        while let Some((field, value)) = deserializer.next_field::<OwnedValue>()? {
            match value {
                OwnedValue::Bytes(b) if field == f.id => out.id = Some(b),
                OwnedValue::Str(s) if field == f.cluster => out.cluster = Some(s),
                OwnedValue::Str(s) if field == f.event_type => out.event_type = Some(s),
                OwnedValue::Date(d) if field == f.time => out.time = Some(d),
                OwnedValue::Str(s) if field == f.raw => out.raw = Some(s),
                OwnedValue::Str(s) if field == f.provenance => out.provenance = Some(s),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The stored event at `address`; a document that cannot be read is
/// [`StoreError::DataLoss`] naming its segment.
pub(crate) fn stored_event(
    view: &View,
    address: DocAddress,
    include_raw: bool,
) -> Result<StoredEvent, StoreError> {
    let doc: StoredFields = view
        .searcher
        .doc(address)
        .map_err(|e| verify::data_loss(&view.cluster, &view.searcher, address, e))?;
    let missing = |name: &str| StoreError::Internal(format!("stored event without {name}"));
    let id = doc
        .id
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(EventId::from_bytes)
        .ok_or_else(|| missing("a valid id"))?;
    let event_type = doc
        .event_type
        .ok_or_else(|| missing("type"))?
        .parse::<EventType>()
        .map_err(|e| internal("stored type", e))?;
    let micros = doc
        .time
        .ok_or_else(|| missing("time"))?
        .into_timestamp_micros();
    let time = timestamp(micros)
        .ok_or_else(|| StoreError::Internal(format!("stored time {micros} out of range")))?;
    let raw = match (include_raw, doc.raw) {
        (true, Some(raw)) => raw.into_bytes(),
        _ => Vec::new(),
    };
    let provenance = doc
        .provenance
        .map(|json| Provenance::from_json(&json))
        .transpose()
        .map_err(|e| internal("stored provenance", e))?;
    Ok(StoredEvent {
        id,
        cluster: doc.cluster.ok_or_else(|| missing("cluster"))?,
        event_type,
        time,
        raw,
        provenance,
    })
}

/// A searcher of one cluster index and its damaged segments, which no read
/// touches.
pub(crate) struct View {
    cluster: String,
    pub(crate) searcher: Searcher,
    damaged: HashSet<SegmentId>,
}

impl View {
    pub(crate) fn of(index: &ClusterIndex) -> Self {
        Self {
            cluster: index.cluster.clone(),
            searcher: index.reader.searcher(),
            damaged: index.health.damaged_ids(),
        }
    }

    /// The undamaged segments, with their ordinals in the searcher.
    pub(crate) fn segments(&self) -> impl Iterator<Item = (u32, &SegmentReader)> {
        (0u32..)
            .zip(self.searcher.segment_readers())
            .filter(|(_, reader)| !self.damaged.contains(&reader.segment_id()))
    }

    /// `collector` over the undamaged segments.
    pub(crate) fn collect<C: tantivy::collector::Collector>(
        &self,
        query: &dyn TQuery,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        let weight = query.weight(EnableScoring::disabled_from_searcher(&self.searcher))?;
        let mut fruits = Vec::new();
        for (ord, reader) in self.segments() {
            fruits.push(collector.collect_segment(weight.as_ref(), ord, reader)?);
        }
        collector.merge_fruits(fruits)
    }

    /// The live matches of `query` in the undamaged segments.
    pub(crate) fn count(&self, query: &dyn TQuery) -> tantivy::Result<u64> {
        let weight = query.weight(EnableScoring::disabled_from_searcher(&self.searcher))?;
        let mut n = 0u64;
        for (_, reader) in self.segments() {
            n += u64::from(weight.count(reader)?);
        }
        Ok(n)
    }
}

/// A view of each of `indices`.
pub(crate) fn views(indices: &[Arc<ClusterIndex>]) -> Vec<View> {
    indices.iter().map(|i| View::of(i)).collect()
}
