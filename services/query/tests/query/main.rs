//! Behaviour of the QueryService as `proto/auditrail/v1/query.proto`
//! documents it, over real gRPC: each test opens a tantivy store in a
//! temporary directory, writes a dataset into it, serves
//! `auditrail_query::Querier` on a loopback socket and talks to it with the
//! generated `QueryServiceClient`.
//!
//! The dataset (see `common`) is 2000 generated events in cluster `alpha`
//! (with 20 events sharing one timestamp), 1000 generated events in `beta`
//! and the real samples of `shared/data/real` (2018 to 2025) in `beta`.
//!
//! Every expectation is computed in the test from the source lines, by a path
//! independent of the service: each line is read with `serde_json` into a
//! plain view (`common::Ev`), filters are evaluated in plain Rust from the
//! contract's wording, results are sorted by (event time, id), buckets and
//! top values are counted in memory, export documents are assembled from the
//! original lines, and resource versions are derived from the response
//! objects. No expected number is pasted.
//!
//! Covered: Search with every filter field (full id sets over all pages and
//! `total_hits`), both sort orders with ties on time, the timeline mode,
//! paging while events keep arriving and page token misuse, the selector
//! (equivalence with structured filters, errors with positions), Histogram
//! (buckets, alignment, automatic width, top values, bad requests), Export
//! (byte-exact JSON, NDJSON and YAML documents, chunking, `done`, `limit`, a
//! client that goes away), History (versions of a network policy, paging,
//! bad requests) and Diff (headers, changed lines, noisy metadata, identical
//! versions, error codes).
//!
//! One test binary, a module per RPC (and `every_rpc`, `real_events` for
//! what crosses them); `common` holds the dataset, the in-memory oracle and
//! the server.

// Tables of requests and their expectations read best as one function each.
#![allow(clippy::too_many_lines)]

mod common;
mod diff;
mod every_rpc;
mod export;
mod histogram;
mod history;
mod paging;
mod real_events;
mod search;
mod selector;
