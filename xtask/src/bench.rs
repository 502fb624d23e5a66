//! `cargo xtask bench`: run benchmarks in release mode and print figures.
//!
//! Each benchmark is a `harness = false` bench target that prints its own
//! figures; this command runs the ones asked for and prints the machine they
//! ran on, for BENCHMARKS.md.

use crate::cargo::{cargo, run_cmd};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Which benchmarks: `parse` (audit event parsing and ids), or all.
    #[arg(value_parser = ["parse", "all"], default_value = "all")]
    which: String,
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    print_machine();
    if matches!(args.which.as_str(), "parse" | "all") {
        run_cmd(cargo().args(["bench", "-p", "auditrail-event", "--bench", "parse"]))?;
    }
    Ok(())
}

fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("machine: {cpu}, {cores} cores available");
}
