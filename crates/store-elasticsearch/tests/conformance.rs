//! The store conformance suite (`auditrail-store-conformance`) on
//! Elasticsearch: an existing cluster at `ELASTICSEARCH_URL`, else the
//! official image (pinned 8.x) through testcontainers when Docker is
//! available. Otherwise every check is reported as ignored, with the reason
//! printed: never counted as passed.

use std::sync::Arc;

use auditrail_store::Store;
use auditrail_store_elasticsearch::{ElasticStore, options_for_url};
use libtest_mimic::{Arguments, Failed, Trial};
use testcontainers::core::{IntoContainerPort as _, WaitFor};
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

async fn target() -> Result<Target, String> {
    if let Ok(url) = std::env::var("ELASTICSEARCH_URL") {
        return Ok(Target {
            url,
            _container: None,
        });
    }
    docker_available().map_err(|why| format!("ELASTICSEARCH_URL is not set and {why}"))?;
    let container = GenericImage::new(IMAGE, TAG)
        .with_exposed_port(9200.tcp())
        .with_wait_for(WaitFor::message_on_stdout("\"started\""))
        .with_env_var("discovery.type", "single-node")
        .with_env_var("xpack.security.enabled", "false")
        .with_env_var("ES_JAVA_OPTS", "-Xms512m -Xmx512m")
        .start()
        .await
        .map_err(|e| format!("cannot start {IMAGE}:{TAG}: {e}"))?;
    let port = container
        .get_host_port_ipv4(9200)
        .await
        .map_err(|e| format!("no port for Elasticsearch: {e}"))?;
    Ok(Target {
        url: format!("http://127.0.0.1:{port}"),
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
    let store: Result<Arc<dyn Store>, String> = match &target {
        Ok(target) => runtime
            .block_on(ElasticStore::connect(options_for_url(&target.url)))
            .map(|s| Arc::new(s) as Arc<dyn Store>)
            .map_err(|e| e.to_string()),
        Err(why) => Err(why.clone()),
    };
    let skipped = target.is_err();
    if let (true, Err(why)) = (skipped, &store) {
        eprintln!("Elasticsearch conformance checks skipped: {why}");
    }
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
