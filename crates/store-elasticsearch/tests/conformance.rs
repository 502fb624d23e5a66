//! The store conformance suite (`auditrail-store-conformance`) on
//! Elasticsearch: an existing cluster at `ELASTICSEARCH_URL`, else the
//! official image (pinned 8.x) through testcontainers when Docker is
//! available. Without either, every check is reported as ignored, with the
//! reason printed: never counted as passed. When Docker is there but the
//! container does not come up healthy, every check fails with the reason:
//! a broken set-up must not look like a missing one.
//!
//! Readiness is `GET /_cluster/health?wait_for_status=yellow`, not a log
//! line: Elasticsearch 8.3+ no longer prints the `started` line the suite
//! once waited for.

use std::sync::Arc;

use auditrail_store::Store;
use auditrail_store_elasticsearch::{ElasticOptions, ElasticStore, options_for_url};
use libtest_mimic::{Arguments, Failed, Trial};
use testcontainers::core::IntoContainerPort as _;
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

/// The Elasticsearch image the suite runs against.
const IMAGE: &str = "docker.elastic.co/elasticsearch/elasticsearch";
const TAG: &str = "8.15.3";

/// Where the suite's Elasticsearch is, and the container to keep alive.
struct Target {
    url: String,
    _container: Option<ContainerAsync<GenericImage>>,
}

fn docker_available() -> Result<(), String> {
    let output = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| format!("the docker command cannot run ({e})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "no Docker engine answers (`docker info`: {})",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Waits until the cluster at `url` is at least yellow, for up to three
/// minutes (a hang guard: a first start pulls and boots the image).
async fn wait_until_healthy(url: &str) -> Result<(), String> {
    use elasticsearch::cluster::ClusterHealthParts;
    use elasticsearch::http::transport::Transport;
    use elasticsearch::params::WaitForStatus;
    let transport = Transport::single_node(url).map_err(|e| format!("{url}: {e}"))?;
    let client = elasticsearch::Elasticsearch::new(transport);
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(3);
    let mut last = String::from("no answer yet");
    while std::time::Instant::now() < deadline {
        match client
            .cluster()
            .health(ClusterHealthParts::None)
            .wait_for_status(WaitForStatus::Yellow)
            .timeout("10s")
            .send()
            .await
        {
            Ok(response) if response.status_code().is_success() => return Ok(()),
            Ok(response) => last = format!("health answered {}", response.status_code()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Err(format!(
        "{url} did not become healthy within 3 minutes: {last}"
    ))
}

/// `Ok(None)`: no Elasticsearch to test against (the checks are ignored,
/// with the reason); `Err`: there should have been one and it failed (the
/// checks fail).
async fn target() -> Result<Target, Option<String>> {
    if let Ok(url) = std::env::var("ELASTICSEARCH_URL") {
        wait_until_healthy(&url).await.map_err(Some)?;
        return Ok(Target {
            url,
            _container: None,
        });
    }
    docker_available()
        .map_err(|why| format!("ELASTICSEARCH_URL is not set and {why}"))
        .map_err(|why| {
            eprintln!("Elasticsearch conformance checks skipped: {why}");
            None
        })?;
    let container = GenericImage::new(IMAGE, TAG)
        .with_exposed_port(9200.tcp())
        .with_env_var("discovery.type", "single-node")
        .with_env_var("xpack.security.enabled", "false")
        .with_env_var("ES_JAVA_OPTS", "-Xms512m -Xmx512m")
        .start()
        .await
        .map_err(|e| Some(format!("cannot start {IMAGE}:{TAG}: {e}")))?;
    let port = container
        .get_host_port_ipv4(9200)
        .await
        .map_err(|e| Some(format!("no port for Elasticsearch: {e}")))?;
    let url = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&url).await.map_err(Some)?;
    Ok(Target {
        url,
        _container: Some(container),
    })
}

fn main() {
    let args = Arguments::from_args();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let target = runtime.block_on(target());
    // Ignored only when there is no Elasticsearch at all; a failed one
    // fails every check with the reason.
    let skipped = matches!(target, Err(None));
    let store: Result<Arc<dyn Store>, String> = match &target {
        // ILM off: the suite's events are from 2026-01-01 and older than
        // the default retention, so ILM would delete indices mid-run.
        Ok(target) => runtime
            .block_on(ElasticStore::connect(ElasticOptions {
                ilm: false,
                ..options_for_url(&target.url)
            }))
            .map(|s| Arc::new(s) as Arc<dyn Store>)
            .map_err(|e| e.to_string()),
        Err(Some(why)) => Err(why.clone()),
        Err(None) => Err("no Elasticsearch to test against".to_owned()),
    };
    let handle = runtime.handle().clone();
    let trials = auditrail_store_conformance::checks()
        .into_iter()
        .map(|(name, check)| {
            let store = store.clone();
            let handle = handle.clone();
            Trial::test(name, move || match store {
                Ok(store) => handle.block_on(check(store)).map_err(Failed::from),
                Err(why) => Err(Failed::from(format!("Elasticsearch is not usable: {why}"))),
            })
            .with_ignored_flag(skipped)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(target);
    drop(runtime);
    conclusion.exit();
}
