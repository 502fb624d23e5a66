//! Parsing throughput: `parse_line` + classification + derived name + event
//! id on generated events (about 1 KB each), the per-event work the ingestor
//! and indexer do before anything touches the network or the disk.
//!
//! Prints events/s and MB/s, best and median of several runs.

use std::time::Instant;

use auditrail_event::{EventId, EventType, classify, parse_line};
use auditrail_loggen::{GenConfig, Generator};

const EVENTS: usize = 200_000;
const RUNS: usize = 7;

fn main() {
    let lines: Vec<String> = Generator::new(GenConfig::default()).take(EVENTS).collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    #[allow(clippy::cast_precision_loss)]
    let mean_size = bytes as f64 / EVENTS as f64;
    println!("parse: {EVENTS} generated events, mean {mean_size:.0} B");

    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut checksum = 0u64;
        for line in &lines {
            let parsed = parse_line(line.as_bytes()).expect("generated events parse");
            let kind = classify(&parsed.event, EventType::Kube);
            let name_len = parsed.event.derived_name().map_or(0, |n| n.len());
            let id = EventId::compute("bench", parsed.raw);
            checksum = checksum
                .wrapping_add(u64::from(id.as_bytes()[0]))
                .wrapping_add(name_len as u64)
                .wrapping_add(kind as u64);
        }
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(checksum);
        #[allow(clippy::cast_precision_loss)]
        rates.push(EVENTS as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    let best = rates[RUNS - 1];
    let median = rates[RUNS / 2];
    let mb = |rate: f64| rate * mean_size / 1e6;
    println!(
        "parse+classify+name+id: best {best:.0} events/s ({:.0} MB/s), median {median:.0} events/s ({:.0} MB/s)",
        mb(best),
        mb(median)
    );
}
