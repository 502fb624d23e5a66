//! `auditrail store verify`: the embedded store's files checked offline,
//! without a server and without taking the writer lock (a running indexer
//! may keep writing the same directory).
//!
//! Exit status: 0 when every segment is intact, 2 when damage was found
//! (the report is printed first), 1 when the check could not run.

use std::path::PathBuf;

use anyhow::Context as _;
use auditrail_store::Damage;
use auditrail_store_tantivy::{TantivyStore, VerifyReport};
use serde::Serialize;

use crate::output::{Format, OutputArg, print_document};

/// Exit status of `store verify` when damage was found.
pub(crate) const DAMAGE_EXIT: u8 = 2;

/// `auditrail store verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The data directory of `auditrail up` or of the process running the
    /// indexer; its store is `DIR/store`.
    #[arg(long, value_name = "DIR", default_value = "./auditrail-data")]
    data_dir: PathBuf,
    /// The store directory itself (a copy, a backup); instead of
    /// --data-dir.
    #[arg(long, value_name = "DIR", conflicts_with = "data_dir")]
    store_dir: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArg,
}

/// Damage was found and reported: `main` exits with [`DAMAGE_EXIT`].
#[derive(Debug)]
pub(crate) struct Damaged(String);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Damaged {}

/// `store verify -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    store_dir: String,
    /// No damaged segment and every index readable.
    clean: bool,
    clusters: Vec<ClusterReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterReport {
    cluster: String,
    segments: usize,
    events: u64,
    /// Why the index could not be checked at all.
    error: Option<String>,
    damaged_segments: Vec<SegmentReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SegmentReport {
    segment: String,
    events: u64,
    /// RFC 3339, or null when no undamaged file holds the times.
    oldest: Option<String>,
    newest: Option<String>,
    files: Vec<File>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct File {
    name: String,
    problem: String,
}

fn time(t: Option<jiff::Timestamp>) -> Option<String> {
    t.map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn segment(d: &Damage) -> SegmentReport {
    SegmentReport {
        segment: d.segment.clone(),
        events: d.documents,
        oldest: time(d.oldest),
        newest: time(d.newest),
        files: d
            .files
            .iter()
            .map(|f| File {
                name: f.name.clone(),
                problem: f.problem.clone(),
            })
            .collect(),
    }
}

fn report(r: &VerifyReport) -> Report {
    Report {
        store_dir: r.dir.display().to_string(),
        clean: r.is_clean(),
        clusters: r
            .clusters
            .iter()
            .map(|c| ClusterReport {
                cluster: c.cluster.clone(),
                segments: c.segments,
                events: c.documents,
                error: c.error.clone(),
                damaged_segments: c.damaged.iter().map(segment).collect(),
            })
            .collect(),
    }
}

/// The report for people: a table per cluster, then each damaged segment.
fn text(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = format!("store {}\n", r.store_dir);
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>8}",
        "CLUSTER", "SEGMENTS", "EVENTS", "DAMAGED"
    );
    for c in &r.clusters {
        let damaged = if c.error.is_some() {
            "?".to_owned()
        } else {
            c.damaged_segments.len().to_string()
        };
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>10} {:>8}",
            c.cluster, c.segments, c.events, damaged
        );
    }
    if r.clusters.is_empty() {
        out.push_str("(no cluster index)\n");
    }
    for c in &r.clusters {
        if let Some(error) = &c.error {
            let _ = writeln!(out, "\ncluster {}: cannot be checked: {error}", c.cluster);
        }
        for s in &c.damaged_segments {
            let _ = writeln!(
                out,
                "\ndamaged segment {} (cluster {})",
                s.segment, c.cluster
            );
            let _ = writeln!(out, "  events: {}", s.events);
            match (&s.oldest, &s.newest) {
                (Some(oldest), Some(newest)) => {
                    let _ = writeln!(out, "  time:   {oldest} .. {newest}");
                }
                _ => out.push_str("  time:   unknown (no undamaged file holds the times)\n"),
            }
            for f in &s.files {
                let _ = writeln!(out, "  file:   {} ({})", f.name, f.problem);
            }
        }
    }
    out
}

/// The summary of a damaged store, for the error line.
fn summary(r: &Report) -> String {
    let segments: usize = r.clusters.iter().map(|c| c.damaged_segments.len()).sum();
    let events: u64 = r
        .clusters
        .iter()
        .flat_map(|c| &c.damaged_segments)
        .map(|s| s.events)
        .sum();
    let unreadable = r.clusters.iter().filter(|c| c.error.is_some()).count();
    let mut parts = Vec::new();
    if segments > 0 {
        parts.push(format!(
            "{segments} damaged segment(s) holding {events} events"
        ));
    }
    if unreadable > 0 {
        parts.push(format!(
            "{unreadable} cluster index(es) that cannot be read"
        ));
    }
    format!(
        "the store in {} has {}: a server leaves them out of searches and refuses exports over \
         them; nothing was deleted. Restore these files from a backup, or re-read the logs \
         that hold their events (a re-sent event of a damaged segment is stored again)",
        r.store_dir,
        parts.join(" and ")
    )
}

/// Verifies the store and prints the report; `Err(Damaged)` when damage
/// was found.
pub(crate) async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let dir = args
        .store_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("store"));
    anyhow::ensure!(
        dir.is_dir(),
        "no store in {}: give the data directory of `auditrail up` (--data-dir), or the store \
         directory itself (--store-dir)",
        dir.display()
    );
    let checked = dir.clone();
    let result = tokio::task::spawn_blocking(move || TantivyStore::verify_dir(&checked))
        .await
        .context("the verification task failed")?
        .with_context(|| format!("cannot verify the store in {}", dir.display()))?;
    let report = report(&result);
    match args.output.output {
        Format::Text => print!("{}", text(&report)),
        format => print_document(format, &report)?,
    }
    if report.clean {
        Ok(())
    } else {
        Err(Damaged(summary(&report)).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn damaged() -> Report {
        Report {
            store_dir: "/data/store".into(),
            clean: false,
            clusters: vec![ClusterReport {
                cluster: "prod".into(),
                segments: 3,
                events: 2100,
                error: None,
                damaged_segments: vec![SegmentReport {
                    segment: "0a1b".into(),
                    events: 700,
                    oldest: None,
                    newest: None,
                    files: vec![File {
                        name: "0a1b.fast".into(),
                        problem: "checksum mismatch".into(),
                    }],
                }],
            }],
        }
    }

    #[test]
    fn the_text_names_segment_files_and_an_unknown_time_range() {
        let out = text(&damaged());
        assert!(out.starts_with("store /data/store\n"), "{out}");
        assert!(
            out.contains("prod                         3       2100        1"),
            "{out}"
        );
        assert!(out.contains("damaged segment 0a1b (cluster prod)"), "{out}");
        assert!(out.contains("  time:   unknown"), "{out}");
        assert!(
            out.contains("  file:   0a1b.fast (checksum mismatch)"),
            "{out}"
        );
        let line = summary(&damaged());
        assert!(
            line.contains("1 damaged segment(s) holding 700 events"),
            "{line}"
        );
    }
}
