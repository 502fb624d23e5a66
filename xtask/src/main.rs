//! `cargo xtask`: the one entry point for developer tasks.
//!
//! - `cargo xtask test`: everything CI runs (format, lints, the whole test
//!   suite), installing whatever the tests need into a folder it owns.
//! - `cargo xtask tidy`: the checks that keep the workspace's map true
//!   (dependency directions, module docs, tracked files, unused
//!   dependencies, `cargo doc`, the protobuf contract); run by `test`.
//! - `cargo xtask demo`: builds and runs auditrail on the embedded default.
//! - `cargo xtask install`: installs the `auditrail` binary (`cargo install
//!   --path crates/cli --locked`).
//! - `cargo xtask gen-logs`: writes a seeded, realistic audit log.
//! - `cargo xtask bench`: benchmarks, printing figures for BENCHMARKS.md.
//! - `cargo xtask chart`: the Helm chart's checks (lint, render for a
//!   matrix of values, Kubernetes schemas, checkov, assertions, each
//!   workload's config through the service's loader); run by `test`.
//! - `cargo xtask image`: builds the container image where an engine
//!   exists; its Dockerfile is checked statically by `test`.
//! - `cargo xtask kibana-import`: loads the Kibana saved objects of
//!   `kibana/` (data view, visualizations, search, dashboard) into a Kibana.
//!
//! Unless `CARGO_TARGET_DIR` is set, every cargo command started from here
//! builds into `~/.cache/auditrail/target`, outside the clone, so a fresh
//! clone (CI's) reuses the previous build instead of starting cold.

mod bench;
mod cargo;
mod certs;
mod chart;
mod demo;
mod gen_logs;
mod image;
mod install;
mod kibana;
mod test;
mod tidy;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Developer tasks of auditrail")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Format check, clippy (-D warnings) and the whole test suite.
    Test(test::TestArgs),
    /// Dependency directions, module docs, tracked files, unused
    /// dependencies, cargo doc and the protobuf contract.
    Tidy(tidy::TidyArgs),
    /// Build auditrail and run it on the embedded default.
    Demo,
    /// Install the `auditrail` binary (cargo install --path crates/cli --locked).
    Install(install::InstallArgs),
    /// Write a seeded, realistic audit log.
    GenLogs(gen_logs::GenLogsArgs),
    /// Run the benchmarks and print their figures.
    Bench(bench::BenchArgs),
    /// The Helm chart's checks (also run by `test`).
    Chart(chart::ChartArgs),
    /// Build the container image (Dockerfile) with docker, podman or buildah.
    Image(image::ImageArgs),
    /// Import the Kibana saved objects of kibana/ into a Kibana.
    KibanaImport(kibana::KibanaImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test(args) => test::run(&args),
        Task::Tidy(args) => tidy::run(&args),
        Task::Demo => demo::run(),
        Task::Install(args) => install::run(&args),
        Task::GenLogs(args) => gen_logs::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::KibanaImport(args) => kibana::run(&args),
        Task::Chart(args) => chart::run(&args),
        Task::Image(args) => image::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The chain of causes, without a backtrace: these are task
            // failures (a test failed, a build broke), not xtask bugs.
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
