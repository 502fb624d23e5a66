//! Why an answer is empty: what was searched, and what the trail holds
//! near it.
//!
//! An empty answer to a mistyped question looks exactly like "nothing
//! happened", which in an audit trail is the worst misreading there is. So
//! whenever `search`, `export` or `history` find nothing, the CLI names what
//! it searched and looks around it with a few cheap queries: a kind the
//! resource table does not know, a cluster no stored event comes from, a
//! timeline that hid reads, the same object in another namespace, a name
//! one typo away, events about the object that are no versions of it.

use auditrail_proto::v1;
use auditrail_proto::v1::ingest_service_client::IngestServiceClient;
use auditrail_proto::v1::ingestor_service_client::IngestorServiceClient;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_server::client::Connection;

use super::{FilterArgs, TypeArg};

/// A selector string value, quoted so that any text is one value.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The exact number of events matching `filter`, `None` when the server
/// cannot say (the hint is then left out, never guessed).
async fn count(client: &mut QueryServiceClient<Connection>, filter: v1::Filter) -> Option<u64> {
    let page = client
        .search(v1::SearchRequest {
            filter: Some(filter),
            page_size: 1,
            exact_total: true,
            ..v1::SearchRequest::default()
        })
        .await
        .ok()?
        .into_inner();
    Some(page.total_hits)
}

/// Up to `n` events matching `filter`, newest first.
async fn sample(
    client: &mut QueryServiceClient<Connection>,
    filter: v1::Filter,
    n: u32,
) -> Vec<v1::AuditEvent> {
    client
        .search(v1::SearchRequest {
            filter: Some(filter),
            page_size: n,
            ..v1::SearchRequest::default()
        })
        .await
        .map(|r| r.into_inner().events)
        .unwrap_or_default()
}

/// What a filter asks for, in the flags' words.
fn describe(args: &FilterArgs) -> String {
    let mut parts: Vec<String> = Vec::new();
    for kind in &args.kind {
        match auditrail_event::resource::resolve_kind(kind) {
            Some(k) => parts.push(format!("kind {kind} ({})", k.resources.join(", "))),
            None => parts.push(format!("kind {kind}")),
        }
    }
    let list = |flag: &str, values: &[String]| {
        (!values.is_empty()).then(|| format!("{flag} {}", values.join(", ")))
    };
    parts.extend(list("cluster", &args.cluster));
    for (flag, value) in [
        ("resource", &args.resource),
        ("namespace", &args.namespace),
        ("name", &args.name),
        ("api group", &args.api_group),
        ("from", &args.from),
        ("to", &args.to),
        ("selector", &args.selector),
    ] {
        if let Some(v) = value {
            parts.push(format!("{flag} {v}"));
        }
    }
    parts.extend(list("subresource", &args.subresource));
    parts.extend(list("verb", &args.verb));
    parts.extend(list("user", &args.user));
    let codes: Vec<String> = args.code.iter().map(ToString::to_string).collect();
    parts.extend(list("code", &codes));
    parts.extend(list("stage", &args.stage));
    parts.extend(list("level", &args.level));
    if args.exclude_dry_run {
        parts.push("no dry runs".to_owned());
    }
    if args.timeline {
        parts.push("on the timeline".to_owned());
    }
    // The type is named whenever it narrows the search, so that an empty
    // answer never reads as an empty store: access records are searched
    // only with --type access.
    let noun = match args.event_type {
        TypeArg::Any if parts.is_empty() => "Kubernetes or Calico events",
        TypeArg::Any => "events",
        TypeArg::Kube => "Kubernetes events",
        TypeArg::Ee => "Calico events",
        TypeArg::Access => "access records",
    };
    if parts.is_empty() {
        format!("no {noun} are stored")
    } else {
        format!("no {noun} match {}", parts.join("; "))
    }
}

/// Why `args` found nothing: what was searched, then every hint that applies.
pub(crate) async fn no_events(channel: &Connection, args: &FilterArgs) -> String {
    let mut client = super::query_client(channel.clone());
    let mut lines = vec![describe(args)];
    for kind in &args.kind {
        if auditrail_event::resource::resolve_kind(kind).is_none() {
            let similar = auditrail_event::resource::similar_kinds(kind);
            let hint = if similar.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", similar.join(", "))
            };
            lines.push(format!(
                "hint: {kind:?} is not a kind auditrail knows, so it was searched as the resource {:?}{hint}",
                kind.trim().to_ascii_lowercase()
            ));
        }
    }
    if !args.cluster.is_empty() {
        let clusters = stored_clusters(channel).await;
        if let Some(known) = clusters {
            let unknown: Vec<&String> =
                args.cluster.iter().filter(|c| !known.contains(c)).collect();
            if !unknown.is_empty() {
                let names: Vec<String> = unknown.iter().map(|c| format!("{c:?}")).collect();
                lines.push(format!(
                    "hint: no stored event comes from cluster {}; the store holds {}",
                    names.join(", "),
                    if known.is_empty() {
                        "no events yet".to_owned()
                    } else {
                        format!("clusters {}", known.join(", "))
                    }
                ));
            }
        }
    }
    if let Some(expired) = expired_events(channel).await
        && expired > 0
        && !matches!(args.event_type, TypeArg::Access)
    {
        lines.push(format!(
            "hint: the ingestor of this server left out {expired} events it read because they \
             are older than the retention (see `auditrail ingest-status`); \
             --retention-days 0 on the indexer keeps everything"
        ));
    }
    if args.timeline
        && let Some(n) = count(&mut client, args.filter()).await
        && n > 0
    {
        lines.push(format!(
            "hint: without --timeline, matching events: {n}; the timeline shows only changes \
             and pod sessions at level RequestResponse, stage ResponseComplete, without dry runs"
        ));
    }
    lines.join("\n")
}

/// The events the ingestor of the same server read and the indexer left
/// out as older than its retention, since the ingestor started; `None`
/// when the server runs no ingestor (the hint is then left out).
async fn expired_events(channel: &Connection) -> Option<u64> {
    let status = IngestorServiceClient::new(channel.clone())
        .get_status(v1::GetStatusRequest::default())
        .await
        .ok()?
        .into_inner();
    Some(status.sources.iter().map(|s| s.events_expired).sum())
}

/// The clusters of the stored events, through the ingest API of the same
/// server; `None` when it does not serve it (a standalone query service):
/// the hint is then left out.
async fn stored_clusters(channel: &Connection) -> Option<Vec<String>> {
    let stats = IngestServiceClient::new(channel.clone())
        .get_index_stats(v1::GetIndexStatsRequest::default())
        .await
        .ok()?
        .into_inner()
        .stats;
    let mut clusters: Vec<String> = stats.into_iter().map(|s| s.cluster).collect();
    clusters.sort();
    clusters.dedup();
    Some(clusters)
}

/// What a history request searched, as the server resolved it.
pub(crate) struct Searched<'a> {
    /// The cluster (empty: the store is empty).
    pub cluster: &'a str,
    /// The resource (plural).
    pub resource: &'a str,
    /// The namespace asked for (empty for cluster-scoped objects).
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
}

/// Why a history has no versions: what was searched, and the nearest thing
/// the trail holds (events about the object that are no versions, the same
/// name in another namespace, a name one typo away).
pub(crate) async fn no_versions(channel: &Connection, searched: &Searched<'_>) -> String {
    let Searched {
        cluster,
        resource,
        namespace,
        name,
    } = *searched;
    let object = if namespace.is_empty() {
        format!("{resource} {name}")
    } else {
        format!("{resource} {namespace}/{name}")
    };
    if cluster.is_empty() {
        return format!("no versions of {object}: the store holds no events yet");
    }
    let head = format!("no versions of {object} in cluster {cluster}");
    let mut client = super::query_client(channel.clone());
    let in_cluster = |selector: String| v1::Filter {
        clusters: vec![cluster.to_owned()],
        selector,
        ..v1::Filter::default()
    };
    let resource_is = format!("objectRef.resource = {}", quote(resource));
    let namespace_is = format!("objectRef.namespace = {}", quote(namespace));
    let name_is = format!("name = {}", quote(name));
    let about = if namespace.is_empty() {
        format!("{resource_is} AND {name_is}")
    } else {
        format!("{resource_is} AND {namespace_is} AND {name_is}")
    };
    if let Some(n) = count(&mut client, in_cluster(about)).await
        && n > 0
    {
        let namespace_flag = if namespace.is_empty() {
            String::new()
        } else {
            format!(" -n {namespace}")
        };
        return format!(
            "{head}: the trail holds {n} events about it, none a successful change of the \
             object itself (reads, failed or dry-run requests, subresources such as exec or \
             status); see them with `auditrail search --cluster {cluster} --kind {resource}\
             {namespace_flag} --name {name}`"
        );
    }
    let mut near: Vec<String> = Vec::new();
    let elsewhere = sample(
        &mut client,
        in_cluster(format!("{resource_is} AND {name_is}")),
        50,
    )
    .await;
    for event in &elsewhere {
        let ns = event
            .object_ref
            .as_ref()
            .map_or("", |o| o.namespace.as_str());
        let candidate = if ns.is_empty() {
            format!("{resource} {name}")
        } else {
            format!("{resource} {ns}/{name}")
        };
        if candidate != object && !near.contains(&candidate) {
            near.push(candidate);
        }
    }
    if near.is_empty() {
        let scope = if namespace.is_empty() {
            resource_is.clone()
        } else {
            format!("{resource_is} AND {namespace_is}")
        };
        for event in sample(&mut client, in_cluster(scope), 1000).await {
            if !event.name.is_empty()
                && event.name != name
                && strsim::levenshtein(&event.name, name) <= 3
            {
                let candidate = if namespace.is_empty() {
                    format!("{resource} {}", event.name)
                } else {
                    format!("{resource} {namespace}/{}", event.name)
                };
                if !near.contains(&candidate) {
                    near.push(candidate);
                }
            }
        }
    }
    if near.is_empty() {
        format!("{head}, and no events of any object of that name")
    } else {
        near.truncate(5);
        format!("{head}; did you mean {}?", near.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        filter: FilterArgs,
    }

    fn described(flags: &[&str]) -> String {
        let flags = Flags::try_parse_from(std::iter::once("search").chain(flags.iter().copied()))
            .expect("valid flags");
        describe(&flags.filter)
    }

    #[test]
    fn an_empty_answer_names_the_type_searched() {
        // The default search leaves access records out: an empty answer
        // says which events there are none of, not that the store is empty.
        assert_eq!(described(&[]), "no Kubernetes or Calico events are stored");
        assert_eq!(
            described(&["--type", "access"]),
            "no access records are stored"
        );
        assert_eq!(
            described(&["--type", "ee", "--cluster", "prod"]),
            "no Calico events match cluster prod"
        );
        assert_eq!(
            described(&["--cluster", "prod", "--verb", "delete"]),
            "no events match cluster prod; verb delete"
        );
    }
}
