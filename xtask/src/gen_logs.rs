//! `cargo xtask gen-logs`: a seeded, realistic audit log on disk.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use auditrail_loggen::{GenConfig, Generator};

/// Options of `cargo xtask gen-logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenLogsArgs {
    /// Number of events to write.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    events: u64,
    /// Seed: the same seed and options always give the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Time of the first event (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    start: jiff::Timestamp,
    /// Fraction of events that are writes.
    #[arg(long, default_value_t = 0.3)]
    write_ratio: f64,
    /// Output file.
    #[arg(long, short = 'o', default_value = "kube-audit.log")]
    out: PathBuf,
}

pub(crate) fn run(args: &GenLogsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.write_ratio),
        "--write-ratio must be between 0 and 1, got {}",
        args.write_ratio
    );
    let config = GenConfig {
        seed: args.seed,
        start: args.start,
        write_ratio: args.write_ratio,
        ..GenConfig::default()
    };
    let bytes = write_events(&args.out, args.events, config, true)?;
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "wrote {} events ({mib:.1} MiB) to {}",
        args.events,
        args.out.display()
    );
    Ok(())
}

/// Writes `events` generated events (seed `seed`, first one at `start`,
/// 30 % writes) to `path`, quietly; returns the file's size.
pub(crate) fn write_log(
    path: &Path,
    events: u64,
    seed: u64,
    start: jiff::Timestamp,
) -> anyhow::Result<u64> {
    let config = GenConfig {
        seed,
        start,
        ..GenConfig::default()
    };
    write_events(path, events, config, false)
}

/// The start of `events` generated events that end just before now: the
/// generator's mean interval times the count, and 1 % more, so that the
/// random spread of the intervals never carries the last events past now
/// (a timeline ending now would then skip them, and the figures would
/// measure a store whose newest events are in the future).
pub(crate) fn start_ending_now(events: u64) -> anyhow::Result<jiff::Timestamp> {
    let mean = GenConfig::default().mean_interval.as_nanos();
    let span = i64::try_from(mean * i128::from(events) * 101 / 100)
        .context("a span of generated events out of range")?;
    jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_nanos(span))
        .context("clock out of range")
}

/// Writes the log, with a progress bar when `progress`; returns its size.
fn write_events(
    path: &Path,
    events: u64,
    config: GenConfig,
    progress: bool,
) -> anyhow::Result<u64> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let generator = Generator::new(config);
    let bar = if progress {
        indicatif::ProgressBar::new(events)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} events {per_sec} eta {eta}",
        )
        .context("progress template")?,
    );
    let mut bytes = 0u64;
    for (i, line) in (0..events).zip(generator) {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        bytes += line.len() as u64 + 1;
        if i % 1024 == 0 {
            bar.set_position(i);
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(bytes)
}
