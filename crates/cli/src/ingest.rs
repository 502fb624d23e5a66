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
        let pending = match &source.location {
            Some(v1::source_status::Location::File(f)) => f.bytes_pending,
            _ => 0,
        };
        println!(
            "source {}: {state}, {} lines read ({} bytes), {pending} bytes pending{}",
            source.name,
            source.events_read,
            source.bytes_read,
            if source.error.is_empty() {
                String::new()
            } else {
                format!(", error: {}", source.error)
            }
        );
    }
    for checkpoint in &status.checkpoints {
        if let Some(v1::checkpoint::Position::File(f)) = &checkpoint.position {
            println!("checkpoint {} at byte {}", f.path, f.offset);
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
