//! `auditrail stats` and `auditrail ingest-status`: what is stored and what
//! the ingestor is doing.

use anyhow::Context as _;
use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;

use crate::format_time as time;

/// Prints events stored per cluster and type.
pub(crate) async fn stats(server: &str) -> anyhow::Result<()> {
    let mut client = IngestServiceClient::new(crate::connect(server).await?);
    let stats = client
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .context("GetIndexStats failed")?
        .into_inner()
        .stats;
    println!(
        "{:<20} {:<5} {:>10} {:<28} {:<28} {:>12}",
        "CLUSTER", "TYPE", "EVENTS", "OLDEST", "NEWEST", "SIZE"
    );
    for s in &stats {
        let kind = match v1::EventType::try_from(s.r#type) {
            Ok(v1::EventType::Ee) => "ee",
            Ok(v1::EventType::Kube) => "kube",
            _ => "?",
        };
        println!(
            "{:<20} {:<5} {:>10} {:<28} {:<28} {:>12}",
            s.cluster,
            kind,
            s.event_count,
            time(s.oldest.as_ref()),
            time(s.newest.as_ref()),
            s.size_bytes
        );
    }
    if stats.is_empty() {
        println!("(no events stored yet)");
    }
    Ok(())
}

/// Prints the ingestor's sources, checkpoints and dead letters.
pub(crate) async fn status(server: &str) -> anyhow::Result<()> {
    let mut client = IngestorServiceClient::new(crate::connect(server).await?);
    let status = client
        .get_status(v1::GetStatusRequest::default())
        .await
        .context("GetStatus failed")?
        .into_inner();
    println!("cluster {}", status.cluster);
    for source in &status.sources {
        let state = v1::SourceState::try_from(source.state)
            .map_or("?", |s| s.as_str_name().trim_start_matches("SOURCE_STATE_"));
        let error = if source.error.is_empty() {
            String::new()
        } else {
            format!(", error: {}", source.error)
        };
        let expired = if source.events_expired == 0 {
            String::new()
        } else {
            format!(
                ", {} older than the retention (not stored)",
                source.events_expired
            )
        };
        match &source.location {
            Some(v1::source_status::Location::Cloudwatch(cw)) => println!(
                "source {}: {state}, {} streams matching {:?} in {}, {} events read, {} acknowledged{expired}, newest {} (lag {:.0}s){error}",
                source.name,
                cw.streams,
                cw.stream_prefix,
                cw.log_group,
                source.events_read,
                source.events_acknowledged,
                time(source.last_event_time.as_ref()),
                source.lag_seconds,
            ),
            location => {
                let file = match location {
                    Some(v1::source_status::Location::File(f)) => Some(f),
                    _ => None,
                };
                let pending = file.map_or(0, |f| f.bytes_pending);
                let waiting = if source.state == v1::SourceState::Waiting as i32 {
                    format!(
                        " (no file matches {} yet: waiting for it to appear)",
                        source.name
                    )
                } else {
                    String::new()
                };
                println!(
                    "source {}: {state}{waiting}, {} lines read ({} bytes), {pending} bytes pending{expired}{error}",
                    source.name, source.events_read, source.bytes_read,
                );
                for line in file.iter().flat_map(|f| &f.unterminated_lines) {
                    let when = if line.rotated {
                        "read as it is once the rotated file has not changed for 5 s"
                    } else {
                        "read when its newline is written (echo >> FILE adds one)"
                    };
                    println!(
                        "  {}: last line has no newline yet, {} bytes at byte {}; {when}",
                        line.path, line.bytes, line.offset
                    );
                }
            }
        }
    }
    for checkpoint in &status.checkpoints {
        match &checkpoint.position {
            Some(v1::checkpoint::Position::File(f)) => {
                println!("checkpoint {} at byte {}", f.path, f.offset);
            }
            Some(v1::checkpoint::Position::Cloudwatch(cw)) => println!(
                "checkpoint {} stream {} after event {} ({})",
                cw.log_group,
                cw.log_stream,
                if cw.last_event_id.is_empty() {
                    "none"
                } else {
                    &cw.last_event_id
                },
                time(cw.last_event_time.as_ref()),
            ),
            None => {}
        }
    }
    if let Some(d) = &status.dead_letters {
        println!("dead letters: {} in {}", d.count, d.path);
    }
    println!(
        "in flight: {} batches, {} bytes",
        status.in_flight_batches, status.in_flight_bytes
    );
    Ok(())
}
