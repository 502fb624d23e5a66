//! The CloudWatch Logs source: EKS writes the API server audit log to
//! CloudWatch Logs (`/aws/eks/<cluster>/cluster`, streams
//! `kube-apiserver-audit-*`), not to a file.
//!
//! Same delivery guarantee as the file source: positions (one per stream)
//! move only after the indexer acknowledged the page, and repeats after a
//! crash are de-duplicated by the indexer's content-hash ids.
//!
//! Streams are read with `GetLogEvents` from each stream's saved forward
//! token rather than with `FilterLogEvents`: a token is an exact position in
//! one stream, so a restart neither repeats nor skips and late events of one
//! stream are not lost behind a time-based cursor; `FilterLogEvents` would
//! need a timestamp cursor plus the ids seen at that timestamp, costs more
//! per event and is eventually consistent across streams.
//!
//! - [`settings`]: region, group, prefix, interval, endpoint, start time,
//!   credentials.
//! - [`api`]: building the client and retrying its calls.
//! - [`checkpoint`]: per-stream positions, saved atomically.
//! - [`source`]: the fetch loop.

pub mod api;
pub mod checkpoint;
pub mod settings;
pub mod source;

pub use settings::CloudWatchSource;
pub use source::CloudWatchReader;
