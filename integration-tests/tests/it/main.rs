//! The end-to-end tests of auditrail as one test binary: the real binaries
//! started as child processes, real gRPC over loopback sockets (the harness
//! is the crate's library, `src/lib.rs`).
//!
//! One binary with a module per area instead of a binary per file: the
//! tests share one link step (each binary links the whole gRPC stack), and
//! `cargo test -p auditrail-integration-tests --test it <module>::` still
//! runs one area. A new test file goes here as a module.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod access;
mod access_trail;
mod all_in_one;
mod cli_client;
mod cli_provision;
mod cli_query;
mod cli_store;
mod cli_truth;
mod cloudwatch;
mod common;
mod config;
mod faults;
mod ingest;
mod otlp;
#[path = "../../../crates/event/tests/support/real_data.rs"]
mod real_data;
mod reports;
mod services;
