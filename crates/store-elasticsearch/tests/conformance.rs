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
//!
//! Besides the shared checks, Elasticsearch's own: what a live cluster
//! does that no unit test of the request bodies can show (the result
//! window, per-item refusals, the byte budget of bulks, the day boundary
//! of retention, the product's own indices beside ours, a reader that
//! installs nothing).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use auditrail_event::EventType;
use auditrail_store::{
    CountMode, Field, IndexedEvent, Query, SearchRequest, SortOrder, Store, WriteOutcome,
};
use auditrail_store_elasticsearch::{ElasticOptions, ElasticStore, Naming, Role};
use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::Transport;
use jiff::Timestamp;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value as Json, json};
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

/// The options of the suite's stores: one node, no replicas, and ILM off
/// unless a check turns it on (the shared checks' events are from
/// 2026-01-01, older than any retention, so ILM would delete their indices
/// mid-run).
fn options(url: &str) -> ElasticOptions {
    ElasticOptions {
        ilm: false,
        ..ElasticOptions::for_url(url)
    }
}

/// The writer of the suite: the indexer's role, retention 90 days.
const WRITER: Role = Role::Writer { retention_days: 90 };

/// An Elasticsearch-only check: runs against the cluster at the URL.
type EsCheck = fn(String) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

fn es_checks() -> Vec<(&'static str, EsCheck)> {
    vec![
        ("es_export_beyond_the_result_window", |url| {
            Box::pin(export_beyond_the_result_window(url))
        }),
        ("es_a_refused_event_among_good_ones", |url| {
            Box::pin(a_refused_event_among_good_ones(url))
        }),
        ("es_bulks_over_the_byte_budget", |url| {
            Box::pin(bulks_over_the_byte_budget(url))
        }),
        ("es_retention_at_the_day_boundary", |url| {
            Box::pin(retention_at_the_day_boundary(url))
        }),
        ("es_product_names_beside_the_products_indices", |url| {
            Box::pin(product_names_beside_the_products_indices(url))
        }),
    ]
}

fn err(what: impl std::fmt::Display) -> String {
    what.to_string()
}

/// A cluster name no other check (or run) uses.
fn fresh_cluster(check: &str) -> String {
    format!("es-{check}-{}", Timestamp::now().as_microsecond())
}

/// An audit event of `cluster` at `time` (`None`: without any timestamp).
fn event(cluster: &str, time: Option<&str>, audit_id: &str) -> Result<IndexedEvent, String> {
    let times = time.map_or(String::new(), |t| {
        format!(r#","requestReceivedTimestamp":"{t}","stageTimestamp":"{t}""#)
    });
    let line = format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{audit_id}","stage":"ResponseComplete","requestURI":"/apis/networking.k8s.io/v1/namespaces/default/networkpolicies","verb":"list","user":{{"username":"conformance"}},"responseStatus":{{"code":200}}{times}}}"#
    );
    IndexedEvent::from_raw(cluster, line.as_bytes(), EventType::Kube, Timestamp::now()).map_err(err)
}

async fn count(store: &dyn Store, cluster: &str) -> Result<u64, String> {
    store
        .count(&Query::eq(Field::Cluster, cluster))
        .await
        .map_err(err)
}

/// A plain client, for what the store itself never does (creating the
/// product's indices, reading settings).
fn admin(url: &str) -> Result<Elasticsearch, String> {
    Ok(Elasticsearch::new(
        Transport::single_node(url).map_err(err)?,
    ))
}

/// One request of the admin client: status and body.
async fn call(
    client: &Elasticsearch,
    method: Method,
    path: &str,
    body: Option<Json>,
) -> Result<(u16, Json), String> {
    let response = client
        .send(
            method,
            path,
            HeaderMap::new(),
            None::<&[(&str, &str)]>,
            body.map(JsonBody::new),
            None,
        )
        .await
        .map_err(err)?;
    let status = response.status_code().as_u16();
    let body = response.json::<Json>().await.unwrap_or(Json::Null);
    Ok((status, body))
}

/// An export page larger than `index.max_result_window` (10,000) comes
/// whole, and the next one continues after it.
async fn export_beyond_the_result_window(url: String) -> Result<(), String> {
    let store = ElasticStore::connect(options(&url), WRITER)
        .await
        .map_err(err)?;
    let cluster = fresh_cluster("window");
    let start = Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let events = (0..10_050)
        .map(|i| {
            let t = start + jiff::SignedDuration::from_millis(i);
            event(&cluster, Some(&t.to_string()), &format!("window-{i}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let written = store.write(events).await.map_err(err)?;
    if written.inserted != 10_050 {
        return Err(format!("stored {written:?} of 10,050 events"));
    }
    let request = |after| SearchRequest {
        query: Query::eq(Field::Cluster, &cluster),
        sort: SortOrder::OldestFirst,
        limit: 10_020,
        after,
        include_raw: true,
        count: CountMode::Exact,
    };
    let first = store.search(request(None)).await.map_err(err)?;
    let second = store.search(request(first.next)).await.map_err(err)?;
    let total = first.total.map(|t| t.count);
    let sizes = (
        first.events.len(),
        second.events.len(),
        second.next.is_none(),
    );
    if sizes != (10_020, 30, true) || total != Some(10_050) {
        return Err(format!(
            "pages of {sizes:?}, total {total:?}; expected (10020, 30, true) and 10,050"
        ));
    }
    let mut ids: Vec<_> = first
        .events
        .iter()
        .chain(&second.events)
        .map(|e| e.id)
        .collect();
    ids.sort();
    ids.dedup();
    if ids.len() != 10_050 {
        return Err(format!("{} distinct events of 10,050", ids.len()));
    }
    Ok(())
}

/// An event the index's mapping cannot take is refused alone, the others
/// of its batch are stored, and a re-send changes nothing.
async fn a_refused_event_among_good_ones(url: String) -> Result<(), String> {
    let client = admin(&url)?;
    let store = ElasticStore::connect(options(&url), WRITER)
        .await
        .map_err(err)?;
    // A day index made by hand, where `auditID` must be a number (the
    // request's mapping wins over our template's): an event with a word
    // there is refused for good (400), as a live mapping conflict would.
    let (status, body) = call(
        &client,
        Method::Put,
        "/auditrail-kube-2001.01.01",
        Some(json!({ "mappings": { "properties": { "auditID": { "type": "long" } } } })),
    )
    .await?;
    if status != 200 && body["error"]["type"] != "resource_already_exists_exception" {
        return Err(format!("cannot create the index ({status}): {body}"));
    }
    let cluster = fresh_cluster("refused");
    let t = "2001-01-01T12:00:00Z";
    let events = vec![
        event(&cluster, Some(t), "12")?,
        event(&cluster, Some(t), "not-a-number")?,
        event(&cluster, Some(t), "34")?,
    ];
    let first = store.write(events.clone()).await.map_err(err)?;
    let positions: Vec<usize> = first.refused.iter().map(|r| r.position).collect();
    if (first.inserted, first.duplicates, positions.as_slice()) != (2, 0, &[1][..]) {
        return Err(format!(
            "first write: {first:?}; expected 2 stored, event 1 refused"
        ));
    }
    let again = store.write(events).await.map_err(err)?;
    if (again.inserted, again.duplicates, again.refused.len()) != (0, 2, 1) {
        return Err(format!(
            "re-send: {again:?}; expected 2 duplicates, 1 refused"
        ));
    }
    let stored = count(&store, &cluster).await?;
    if stored != 2 {
        return Err(format!("{stored} events stored; expected 2"));
    }
    Ok(())
}

/// A write far over the byte budget of one bulk is cut into many, every
/// event stored once.
async fn bulks_over_the_byte_budget(url: String) -> Result<(), String> {
    let store = ElasticStore::connect(
        ElasticOptions {
            max_bulk_bytes: 4096,
            ..options(&url)
        },
        WRITER,
    )
    .await
    .map_err(err)?;
    let cluster = fresh_cluster("budget");
    let t = (Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let events = (0..300)
        .map(|i| event(&cluster, Some(&t), &format!("budget-{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let first = store.write(events.clone()).await.map_err(err)?;
    let again = store.write(events).await.map_err(err)?;
    let expected = (
        WriteOutcome {
            inserted: 300,
            ..WriteOutcome::default()
        },
        WriteOutcome {
            duplicates: 300,
            ..WriteOutcome::default()
        },
    );
    if (first.clone(), again.clone()) != expected {
        return Err(format!(
            "writes {first:?} then {again:?}; expected 300 stored, then 300 duplicates"
        ));
    }
    let stored = count(&store, &cluster).await?;
    if stored != 300 {
        return Err(format!("{stored} events stored; expected 300"));
    }
    Ok(())
}

/// Deleting before a cut-off keeps every event of the cut-off's own day.
async fn retention_at_the_day_boundary(url: String) -> Result<(), String> {
    let store = ElasticStore::connect(options(&url), WRITER)
        .await
        .map_err(err)?;
    let cluster = fresh_cluster("boundary");
    // Days no other check uses: deletion is per day for every cluster.
    let events = vec![
        event(
            &cluster,
            Some("1980-05-31T23:59:59.999999999Z"),
            "last-of-the-day-before",
        )?,
        event(&cluster, Some("1980-06-01T00:00:00Z"), "first-of-the-day")?,
        event(&cluster, Some("1980-06-01T23:00:00Z"), "later-that-day")?,
    ];
    store.write(events).await.map_err(err)?;
    let cutoff: Timestamp = "1980-06-01T12:00:00Z".parse().map_err(err)?;
    let deleted = store.delete_before(cutoff).await.map_err(err)?;
    let left = count(&store, &cluster).await?;
    if (deleted, left) != (1, 2) {
        return Err(format!("deleted {deleted}, kept {left}; expected 1 and 2"));
    }
    Ok(())
}

/// Whether our product-names template is installed: its GET status.
async fn product_template_status(client: &Elasticsearch) -> Result<u16, String> {
    let (status, _) = call(
        client,
        Method::Get,
        "/_index_template/auditrail-audit-product-names",
        None,
    )
    .await?;
    Ok(status)
}

/// The product's legacy template and a rollover index of the product's
/// own, created while our templates are installed: it must be created,
/// written, and given no lifecycle of ours (`parse_origination_date` on
/// its name would fail its creation).
async fn the_products_rollover_is_left_alone(
    client: &Elasticsearch,
    cluster: &str,
) -> Result<(), String> {
    call(
        client,
        Method::Put,
        "/_template/conformance_tigera_secure_ee_audit_kube",
        Some(json!({
            "index_patterns": ["tigera_secure_ee_audit_kube.*"],
            "order": 0,
            "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
            "mappings": { "properties": { "message": { "type": "text" } } },
        })),
    )
    .await?;
    let product_index = format!("tigera_secure_ee_audit_kube.{cluster}.fluentd-20261204-000001");
    let (status, body) = call(
        client,
        Method::Put,
        &format!("/{product_index}/_doc/1?refresh=true"),
        Some(json!({ "message": "written by the product", "cluster": cluster })),
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "the product's rollover index could not be written ({status}): {body}"
        ));
    }
    let (_, settings) = call(
        client,
        Method::Get,
        &format!("/{product_index}/_settings"),
        None,
    )
    .await?;
    let index_settings = &settings[&product_index]["settings"]["index"];
    if index_settings.get("lifecycle").is_some() {
        return Err(format!(
            "the product's index got a lifecycle: {index_settings}"
        ));
    }
    Ok(())
}

/// With the product's names (and ILM on), the product's own indices (and
/// their legacy template) keep their settings: a rollover index of the
/// product is created without our lifecycle, our searches never see the
/// product's documents, and a reader installs nothing. The ILM policy
/// keeps a whole day more than the retention, and the hourly retention
/// deletes only undated events (ILM deletes the dated indices). One check,
/// because the reader's part removes the template the rest relies on.
async fn product_names_beside_the_products_indices(url: String) -> Result<(), String> {
    let client = admin(&url)?;
    let product_options = ElasticOptions {
        naming: Naming::Product,
        ilm: true,
        ..options(&url)
    };
    // A reader installs nothing (and needs no privilege to).
    call(
        &client,
        Method::Delete,
        "/_index_template/auditrail-audit-product-names",
        None,
    )
    .await?;
    let reader = ElasticStore::connect(product_options.clone(), Role::Reader)
        .await
        .map_err(err)?;
    let status = product_template_status(&client).await?;
    if status != 404 {
        return Err(format!(
            "after a reader started the template answers {status}; expected 404"
        ));
    }
    let writer = ElasticStore::connect(product_options, WRITER)
        .await
        .map_err(err)?;
    let status = product_template_status(&client).await?;
    if status != 200 {
        return Err(format!(
            "after the writer started the template answers {status}; expected 200"
        ));
    }

    let cluster = fresh_cluster("product");
    the_products_rollover_is_left_alone(&client, &cluster).await?;

    let t = (Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    let dated = event(&cluster, Some(&t), "ours")?;
    let ours = Naming::Product.index(&dated);
    writer
        .write(vec![dated, event(&cluster, None, "undated")?])
        .await
        .map_err(err)?;
    let (_, settings) = call(&client, Method::Get, &format!("/{ours}/_settings"), None).await?;
    let lifecycle = &settings[&ours]["settings"]["index"]["lifecycle"]["name"];
    if lifecycle != "auditrail-audit-retention" {
        return Err(format!(
            "our index {ours} has lifecycle {lifecycle}: {settings}"
        ));
    }
    for store in [&reader, &writer] {
        let seen = count(store, &cluster).await?;
        if seen != 2 {
            return Err(format!(
                "{seen} events of {cluster} seen; expected ours alone (2)"
            ));
        }
    }

    let (_, policy) = call(
        &client,
        Method::Get,
        "/_ilm/policy/auditrail-audit-retention",
        None,
    )
    .await?;
    let min_age = &policy["auditrail-audit-retention"]["policy"]["phases"]["delete"]["min_age"];
    if min_age != "91d" {
        return Err(format!(
            "the ILM policy deletes at {min_age}; expected 91d for 90 days: {policy}"
        ));
    }
    let expired = writer
        .expire_before(Timestamp::now() + jiff::SignedDuration::from_secs(60))
        .await
        .map_err(err)?;
    let left = count(&writer, &cluster).await?;
    if expired < 1 || left != 1 {
        return Err(format!(
            "expired {expired}, {left} left; expected the undated event gone and the dated one \
             kept (ILM deletes those)"
        ));
    }
    Ok(())
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
        Ok(target) => runtime
            .block_on(ElasticStore::connect(options(&target.url), WRITER))
            .map(|s| Arc::new(s) as Arc<dyn Store>)
            .map_err(|e| e.to_string()),
        Err(Some(why)) => Err(why.clone()),
        Err(None) => Err("no Elasticsearch to test against".to_owned()),
    };
    let handle = runtime.handle().clone();
    let mut trials: Vec<Trial> = auditrail_store_conformance::checks()
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
    let url: Result<String, String> = match (&target, &store) {
        (Ok(target), Ok(_)) => Ok(target.url.clone()),
        (_, Err(why)) => Err(why.clone()),
        (Err(_), Ok(_)) => Err("no Elasticsearch to test against".to_owned()),
    };
    trials.extend(es_checks().into_iter().map(|(name, check)| {
        let url = url.clone();
        let handle = handle.clone();
        Trial::test(name, move || match url {
            Ok(url) => handle.block_on(check(url)).map_err(Failed::from),
            Err(why) => Err(Failed::from(format!("Elasticsearch is not usable: {why}"))),
        })
        .with_ignored_flag(skipped)
    }));
    let conclusion = libtest_mimic::run(&args, trials);
    drop(target);
    drop(runtime);
    conclusion.exit();
}
