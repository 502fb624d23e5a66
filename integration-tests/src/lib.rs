//! Harness for the end-to-end tests: run the real auditrail binaries as
//! child processes on free loopback ports and talk to them over real gRPC.
//!
//! Starting, stopping and scraping a server is `auditrail-harness` (shared
//! with xtask's demo and benchmarks, re-exported here); what is only the
//! tests' is here: where the built binaries are, a gRPC channel to a
//! server, and polling until something holds.

pub mod console_http;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use auditrail_proto::v1;

pub use auditrail_harness::{
    PROCESS_DEADLINE, ServerProcess as Server, run_to_end, scrape, wait_deadline,
};

/// Path of a workspace binary, next to the test executable's `deps/` folder.
///
/// `cargo xtask test` builds every binary before running the tests.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("no current executable")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable is not under target/<profile>/deps")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built; run `cargo xtask test` (or `cargo build --workspace --bins`) first",
            path.display()
        );
    }
    Ok(path)
}

/// A gRPC channel to `server`.
pub async fn channel(server: &Server) -> anyhow::Result<tonic::transport::Channel> {
    Ok(tonic::transport::Endpoint::from_shared(server.url())?
        .connect()
        .await?)
}

/// Polls `check` every 50 ms until it returns `Some`, failing after
/// `PROCESS_DEADLINE` with `what` (a hang guard, not a timing assertion).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if start.elapsed() > PROCESS_DEADLINE {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `IngestBatch` per cluster of `clusters`, each holding the same
/// `count` generated events (Kubernetes and Calico kinds), batch ids
/// `batch-<cluster>`: the trail several access tests compare scopes on.
pub fn generated_batches(clusters: &[&str], count: usize) -> Vec<v1::IngestBatchRequest> {
    let events: Vec<v1::RawEvent> =
        auditrail_loggen::Generator::new(auditrail_loggen::GenConfig::default())
            .take(count)
            .map(|line| v1::RawEvent {
                raw: line.into_bytes().into(),
                type_hint: v1::EventType::Kube as i32,
                origin: None,
            })
            .collect();
    clusters
        .iter()
        .map(|cluster| v1::IngestBatchRequest {
            batch_id: format!("batch-{cluster}"),
            cluster: (*cluster).to_owned(),
            source: "test".to_owned(),
            events: events.clone(),
        })
        .collect()
}

/// An interceptor giving every call `authorization: Bearer <token>`.
pub fn bearer(
    token: &str,
) -> anyhow::Result<
    impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone + use<>,
> {
    let value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {token}").parse()?;
    Ok(move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
        Ok(request)
    })
}

/// A `[[token]]` entry of a token file: user `name` proving itself with
/// `token` (kept as its SHA-256), in `groups`.
pub fn token_entry(name: &str, token: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
    format!(
        "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\ngroups = [{}]\n",
        auditrail_access::digest_hex(token),
        groups.join(", ")
    )
}
