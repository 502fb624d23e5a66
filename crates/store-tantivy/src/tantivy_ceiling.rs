//! What tantivy alone costs per auditrail document, for capacity planning
//! (BENCHMARKS.md, "Tantivy alone"): no store writer, duplicate check,
//! gRPC or parsing in the way, only tantivy's `IndexWriter` fed the
//! store's own [`EventDocument`]s in batches (`IndexWriter::run`) and one
//! commit at the end, with merges off.
//!
//! `N=200000 THREADS=1 cargo test --release -p auditrail-store-tantivy --lib
//! tantivy_ceiling -- --ignored --nocapture` (`THREADS` indexing threads;
//! `FIELDS=all` runs only the whole schema). It prints documents per
//! second (wall clock, adding to committed) and the process's CPU time per
//! document, for the whole schema and with groups of fields left out, to
//! show what each group costs. A unit test rather than a `benches/` target
//! because the document type is private to this crate; ignored in CI
//! (timing depends on the machine).

use std::time::Instant;

use auditrail_loggen::{GenConfig, Generator};
use auditrail_store::IndexedEvent;
use tantivy::indexer::{IndexWriterOptions, UserOperation};
use tantivy::schema::Field;
use tantivy::schema::document::Document;
use tantivy::store::Compressor;
use tantivy::{Index, IndexSettings, IndexWriter};

use crate::schema::{EventDocument, FieldValues, Leaf, fields};

/// An event document without the values of some fields (the schema is
/// unchanged; the fields are simply empty).
#[derive(Debug)]
struct Without {
    document: EventDocument,
    left_out: &'static [Field],
}

type Kept<'a> = std::iter::Filter<FieldValues<'a>, Box<dyn FnMut(&(Field, Leaf<'a>)) -> bool + 'a>>;

impl Document for Without {
    type Value<'a> = Leaf<'a>;
    type FieldsValuesIter<'a> = Kept<'a>;

    fn iter_fields_and_values(&self) -> Kept<'_> {
        let left_out = self.left_out;
        self.document
            .iter_fields_and_values()
            .filter(Box::new(move |(field, _)| !left_out.contains(field)))
    }
}

/// User plus system CPU time of this process, in seconds (Linux).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks (100 per second here).
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "benchmark; run with --release --ignored --nocapture"]
#[allow(clippy::cast_precision_loss)] // rates for a human
fn tantivy_ceiling() {
    let n = knob("N", 200_000);
    let threads = knob("THREADS", 1);
    let lines: Vec<String> = Generator::new(GenConfig {
        seed: 31,
        ..GenConfig::default()
    })
    .take(n)
    .collect();
    let f = fields();
    let groups: Vec<(&str, Vec<Field>)> = vec![
        ("all", vec![]),
        ("without the stored JSON", vec![f.raw]),
        (
            "without id bytes and id columns 1-3",
            vec![f.id, f.id_parts[1], f.id_parts[2], f.id_parts[3]],
        ),
        (
            "without id_0, audit_id, request_uri, object_name, name",
            vec![
                f.id_parts[0],
                f.audit_id,
                f.request_uri,
                f.object_name,
                f.name,
            ],
        ),
    ];
    let only_all = std::env::var("FIELDS").is_ok_and(|v| v == "all");
    for (name, left_out) in groups {
        if only_all && name != "all" {
            continue;
        }
        // Tantivy's writer takes `'static` documents: the few field handles
        // of each group are leaked once per run of this test.
        let left_out: &'static [Field] = Vec::leak(left_out);
        let documents: Vec<Without> = lines
            .iter()
            .map(|line| {
                let event = IndexedEvent::from_raw(
                    "alpha",
                    line.as_bytes(),
                    auditrail_event::EventType::Kube,
                    jiff::Timestamp::UNIX_EPOCH,
                )
                .expect("generated events are valid");
                Without {
                    document: EventDocument::new(event).expect("UTF-8"),
                    left_out,
                }
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::builder()
            .schema(f.schema.clone())
            .settings(IndexSettings {
                docstore_compression: Compressor::Lz4,
                ..IndexSettings::default()
            })
            .create_in_dir(dir.path())
            .expect("create index");
        let options = IndexWriterOptions::builder()
            .num_worker_threads(threads)
            .memory_budget_per_thread(1_000_000_000 / threads)
            .num_merge_threads(1)
            .build();
        let mut writer: IndexWriter<Without> = index.writer_with_options(options).expect("writer");
        writer.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut documents = documents.into_iter();
        loop {
            let batch: Vec<_> = documents
                .by_ref()
                .take(2_000)
                .map(UserOperation::Add)
                .collect();
            if batch.is_empty() {
                break;
            }
            writer.run(batch).expect("add");
        }
        writer.commit().expect("commit");
        let elapsed = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        println!(
            "tantivy alone, {threads} indexing thread(s), {name}: {n} documents in {elapsed:.2?}: \
             {:.0} documents/s, {:.1} µs CPU per document",
            n as f64 / elapsed.as_secs_f64(),
            cpu * 1e6 / n as f64
        );
    }
}
