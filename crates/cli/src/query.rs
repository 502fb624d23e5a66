//! `auditrail search`, `export`, `history` and `diff`: the query service from
//! the command line.
//!
//! Filters are flags that map one to one onto the `Filter` message; every
//! command prints a table for people by default and machine formats on
//! request. Exports go to a `.partial` file renamed into place only when the
//! server marked the document complete, so a broken export never leaves a
//! file that looks whole.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use auditrail_document::{DocumentWriter, Envelope, Format as DocumentFormat};
use auditrail_proto::v1;
use auditrail_proto::v1::query_service_client::QueryServiceClient;
use auditrail_store::{Position, Provenance};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt as _;

/// Filter flags shared by `search` and `export`.
// The field docs are --help text, where `<n>` is a placeholder.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FilterArgs {
    /// Event type.
    #[arg(long = "type", value_enum, default_value_t = TypeArg::Any)]
    event_type: TypeArg,
    /// Only this cluster (repeatable).
    #[arg(long, value_name = "NAME")]
    cluster: Vec<String>,
    /// Object kind as kubectl takes it: NetworkPolicy, networkpolicies,
    /// netpol, networkpolicies.projectcalico.org; any case (repeatable).
    #[arg(long, value_name = "KIND")]
    kind: Vec<String>,
    /// objectRef.subresource, e.g. exec, status, scale; `none` for events
    /// about the object itself (repeatable).
    #[arg(long, value_name = "SUBRESOURCE")]
    subresource: Vec<String>,
    /// Verb, e.g. create, patch, delete (repeatable).
    #[arg(long, value_name = "VERB")]
    verb: Vec<String>,
    /// objectRef.resource, e.g. networkpolicies.
    #[arg(long, value_name = "RESOURCE")]
    resource: Option<String>,
    /// objectRef.namespace.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// objectRef.name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// objectRef.apiGroup, e.g. projectcalico.org.
    #[arg(long, value_name = "GROUP")]
    api_group: Option<String>,
    /// Author: user.username (repeatable).
    #[arg(long, value_name = "USER")]
    user: Vec<String>,
    /// HTTP response code (repeatable).
    #[arg(long, value_name = "CODE")]
    code: Vec<i32>,
    /// Stage: RequestReceived, ResponseStarted, ResponseComplete or Panic
    /// (repeatable).
    #[arg(long, value_name = "STAGE")]
    stage: Vec<String>,
    /// Level: None, Metadata, Request or RequestResponse (repeatable).
    #[arg(long, value_name = "LEVEL")]
    level: Vec<String>,
    /// Start of the time range: RFC 3339 or now-<n><s|m|h|d|w>.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the time range (exclusive), same syntax; default now.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// A selector expression, e.g. 'verb IN {create,patch} AND responseStatus.code >= 400'.
    #[arg(long, short = 's', value_name = "EXPR")]
    selector: Option<String>,
    /// Leave out dry-run requests.
    #[arg(long)]
    exclude_dry_run: bool,
    /// The product's timeline: changes (create, update, patch, delete) and
    /// pod sessions (exec, attach, port-forward) at level RequestResponse,
    /// stage ResponseComplete, no dry runs, newest first. Combines with
    /// --level and --stage (refused where they cannot meet it).
    #[arg(long)]
    timeline: bool,
    /// Order by time.
    #[arg(long, value_enum, default_value_t = SortArg::Newest)]
    sort: SortArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TypeArg {
    /// kube and ee events (the trail of the cluster).
    Any,
    /// Kubernetes events.
    Kube,
    /// Calico events.
    Ee,
    /// Access records: the calls made to auditrail (needs read_access).
    Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SortArg {
    Newest,
    Oldest,
}

impl FilterArgs {
    fn filter(&self) -> v1::Filter {
        let object = v1::ObjectRefFilter {
            name: self.name.clone().unwrap_or_default(),
            namespace: self.namespace.clone().unwrap_or_default(),
            resource: self.resource.clone().unwrap_or_default(),
            api_group: self.api_group.clone().unwrap_or_default(),
            api_version: String::new(),
        };
        v1::Filter {
            r#type: match self.event_type {
                TypeArg::Any => v1::TypeFilter::Any,
                TypeArg::Kube => v1::TypeFilter::Kube,
                TypeArg::Ee => v1::TypeFilter::Ee,
                TypeArg::Access => v1::TypeFilter::Access,
            } as i32,
            clusters: self.cluster.clone(),
            from: self.from.clone().unwrap_or_default(),
            to: self.to.clone().unwrap_or_default(),
            kinds: self.kind.clone(),
            object_refs: if object == v1::ObjectRefFilter::default() {
                Vec::new()
            } else {
                vec![object]
            },
            verbs: self.verb.clone(),
            authors: self.user.clone(),
            response_codes: self.code.clone(),
            stages: self.stage.clone(),
            levels: self.level.clone(),
            exclude_dry_run: self.exclude_dry_run,
            selector: self.selector.clone().unwrap_or_default(),
            subresources: self
                .subresource
                .iter()
                .map(|s| {
                    if s == "none" {
                        String::new()
                    } else {
                        s.clone()
                    }
                })
                .collect(),
        }
    }

    fn sort(&self) -> i32 {
        let sort = match self.sort {
            SortArg::Newest => v1::SortOrder::NewestFirst,
            SortArg::Oldest => v1::SortOrder::OldestFirst,
        };
        sort as i32
    }
}

/// How `search` prints events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// Time, what happened, who, and the event id.
    Table,
    /// One JSON array of the original events.
    Json,
    /// The original events, one per line.
    Ndjson,
    /// One YAML document per event.
    Yaml,
}

impl Output {
    /// The document format of a machine output; `None` for the table.
    fn document(self) -> Option<DocumentFormat> {
        match self {
            Self::Table => None,
            Self::Json => Some(DocumentFormat::Json),
            Self::Ndjson => Some(DocumentFormat::Ndjson),
            Self::Yaml => Some(DocumentFormat::Yaml),
        }
    }
}

/// Flags of `auditrail search`.
#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Most events to print (0: all; pages of up to 1000 are fetched as
    /// needed).
    #[arg(long, default_value_t = 100)]
    limit: u64,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Print only the number of matching events.
    #[arg(long)]
    count: bool,
    /// With `-o json|ndjson|yaml`: each event in an envelope with how it
    /// arrived, as `export --provenance` writes it.
    #[arg(long)]
    provenance: bool,
}

/// The JSON an export with provenance writes for `p` (the store's form,
/// documented at `ExportRequest.with_provenance`).
fn provenance_json(p: &v1::Provenance) -> String {
    let origin = p.origin.as_ref();
    let position = origin
        .and_then(|o| o.position.as_ref())
        .map(|position| match position {
            v1::event_origin::Position::File(f) => Position::File {
                path: f.path.clone(),
                inode: f.inode,
                offset: f.offset,
            },
            v1::event_origin::Position::Cloudwatch(c) => Position::Cloudwatch {
                log_group: c.log_group.clone(),
                log_stream: c.log_stream.clone(),
                event_id: c.event_id.clone(),
            },
        });
    let ingested_at = p
        .ingested_at
        .as_ref()
        .and_then(crate::jiff_time)
        .unwrap_or_default();
    Provenance {
        source: origin.map(|o| o.source.clone()).unwrap_or_default(),
        position,
        ingested_by: p.ingested_by.clone(),
        ingested_by_groups: p.ingested_by_groups.clone(),
        ingested_from: p.ingested_from.clone(),
        ingested_at,
    }
    .to_json()
}

mod explain;

async fn client(
    server: &str,
) -> anyhow::Result<QueryServiceClient<auditrail_server::client::Connection>> {
    Ok(query_client(crate::connect(server).await?))
}

fn query_client(
    channel: auditrail_server::client::Connection,
) -> QueryServiceClient<auditrail_server::client::Connection> {
    QueryServiceClient::new(channel).max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
}

fn rpc_error(rpc: &str, status: &tonic::Status) -> anyhow::Error {
    crate::error::rpc(rpc, status)
}

use crate::format_time as time;

fn print_table_header() {
    println!("{:<27}  {:<60}  {:<32}  ID", "TIME", "EVENT", "USER");
}

fn print_table_row(e: &v1::AuditEvent) {
    let user = e.user.as_ref().map_or("", |u| u.username.as_str());
    println!(
        "{:<27}  {:<60}  {:<32}  {}",
        time(
            e.stage_timestamp
                .as_ref()
                .or(e.request_received_timestamp.as_ref())
        ),
        e.summary,
        user,
        e.id
    );
}

/// The exact number of events matching `filter`.
async fn exact_total(
    client: &mut QueryServiceClient<auditrail_server::client::Connection>,
    filter: &FilterArgs,
) -> anyhow::Result<u64> {
    let page = client
        .search(v1::SearchRequest {
            filter: Some(filter.filter()),
            page_size: 1,
            timeline: filter.timeline,
            exact_total: true,
            ..v1::SearchRequest::default()
        })
        .await
        .map_err(|s| rpc_error("Search", &s))?
        .into_inner();
    Ok(page.total_hits)
}

/// Runs `auditrail search`.
pub(crate) async fn search(server: &str, args: SearchArgs) -> anyhow::Result<()> {
    if args.provenance && (args.output == Output::Table || args.count) {
        bail!("--provenance needs the events themselves: add -o json, -o ndjson or -o yaml");
    }
    let channel = crate::connect(server).await?;
    let mut client = query_client(channel.clone());
    let filter = args.filter.filter();
    if args.count {
        let n = exact_total(&mut client, &args.filter).await?;
        println!("{n}");
        if n == 0 {
            eprintln!("{}", explain::no_events(&channel, &args.filter).await);
        }
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let mut writer = args.output.document().map(DocumentWriter::new);
    let mut buffer = Vec::new();
    if writer.is_none() {
        print_table_header();
    }
    let mut token = String::new();
    let mut printed = 0u64;
    let mut total = String::new();
    let limit = if args.limit == 0 {
        u64::MAX
    } else {
        args.limit
    };
    while printed < limit {
        let page_size = u32::try_from((limit - printed).min(1000)).unwrap_or(1000);
        let page = client
            .search(v1::SearchRequest {
                filter: Some(filter.clone()),
                sort: args.filter.sort(),
                page_size,
                page_token: std::mem::take(&mut token),
                timeline: args.filter.timeline,
                include_raw: args.output != Output::Table,
                exact_total: false,
            })
            .await
            .map_err(|s| rpc_error("Search", &s))?
            .into_inner();
        total = if page.total_hits_exact {
            page.total_hits.to_string()
        } else {
            format!("more than {}", page.total_hits)
        };
        for event in &page.events {
            match &mut writer {
                None => print_table_row(event),
                Some(writer) if args.provenance => {
                    buffer.clear();
                    let provenance = event.provenance.as_ref().map(provenance_json);
                    let enveloped = Envelope {
                        id: &event.id,
                        cluster: &event.cluster,
                        event_type: crate::ingest::event_type(event.r#type),
                        provenance: provenance.as_deref(),
                    }
                    .wrap(&event.raw);
                    writer.event(&enveloped, &mut buffer)?;
                    out.write_all(&buffer)?;
                }
                Some(writer) => {
                    buffer.clear();
                    writer.event(&event.raw, &mut buffer)?;
                    out.write_all(&buffer)?;
                }
            }
            printed += 1;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    if let Some(writer) = writer {
        buffer.clear();
        writer.finish(&mut buffer);
        out.write_all(&buffer)?;
        out.flush()?;
    }
    if printed == 0 {
        eprintln!("{}", explain::no_events(&channel, &args.filter).await);
    } else if args.output == Output::Table {
        eprintln!("{printed} of {total} matching events");
    }
    Ok(())
}

/// Export document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON array of the original events.
    Json,
    /// The original events, one per line (the audit log format).
    Ndjson,
    /// One YAML document per event.
    Yaml,
}

/// Flags of `auditrail export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Document format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write to this file (`-`: standard output).
    #[arg(long, short = 'f', value_name = "FILE")]
    file: PathBuf,
    /// Stop after this many events (0: all).
    #[arg(long, default_value_t = 0)]
    limit: u64,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Write each event in an envelope with how it arrived:
    /// `{"id","cluster","type","provenance","event"}`, the original event
    /// unchanged as `event`.
    #[arg(long)]
    provenance: bool,
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}

/// A bar over `total` events, or a hidden one when the total is unknown.
fn progress_bar(total: Option<u64>) -> ProgressBar {
    let Some(total) = total else {
        return ProgressBar::hidden();
    };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} events, {msg} [{elapsed_precise}, {per_sec}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `auditrail export`.
pub(crate) async fn export(server: &str, args: ExportArgs) -> anyhow::Result<()> {
    let channel = crate::connect(server).await?;
    let mut client = query_client(channel.clone());
    let filter = args.filter.filter();
    let to_stdout = args.file.as_os_str() == "-";
    // The total, for the progress bar (the export itself does not count).
    let total = if args.quiet || to_stdout {
        None
    } else {
        let n = exact_total(&mut client, &args.filter).await?;
        Some(if args.limit > 0 { n.min(args.limit) } else { n })
    };
    let mut stream = client
        .export(v1::ExportRequest {
            filter: Some(filter),
            format: match args.format {
                Format::Json => v1::ExportFormat::Json,
                Format::Ndjson => v1::ExportFormat::Ndjson,
                Format::Yaml => v1::ExportFormat::Yaml,
            } as i32,
            sort: args.filter.sort(),
            timeline: args.filter.timeline,
            limit: args.limit,
            with_provenance: args.provenance,
        })
        .await
        .map_err(|s| rpc_error("Export", &s))?
        .into_inner();
    let progress = progress_bar(total);
    let partial = partial_path(&args.file);
    let mut out: Box<dyn std::io::Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        Box::new(std::io::BufWriter::with_capacity(1 << 20, file))
    };
    let mut bytes = 0u64;
    let mut summary = None;
    let result: anyhow::Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|s| rpc_error("Export", &s))?;
            out.write_all(&chunk.data)?;
            bytes += chunk.data.len() as u64;
            progress.set_position(chunk.events_so_far);
            progress.set_message(indicatif::HumanBytes(bytes).to_string());
            if chunk.done.is_some() {
                summary = chunk.done;
                break;
            }
        }
        out.flush()?;
        Ok(())
    }
    .await;
    progress.finish_and_clear();
    drop(out);
    let fail = |e: anyhow::Error| {
        if !to_stdout {
            let _ = std::fs::remove_file(&partial);
        }
        e
    };
    result.map_err(fail)?;
    let Some(summary) = summary else {
        return Err(fail(anyhow::anyhow!(
            "the export stream ended without its end marker; the document is incomplete \
             and was not kept"
        )));
    };
    if !to_stdout {
        std::fs::rename(&partial, &args.file)
            .with_context(|| format!("cannot rename {} into place", partial.display()))?;
    }
    eprintln!(
        "exported {} events ({} bytes) to {}",
        summary.total_events,
        summary.total_bytes,
        if to_stdout {
            "standard output".to_owned()
        } else {
            args.file.display().to_string()
        }
    );
    if summary.total_events == 0 {
        eprintln!("{}", explain::no_events(&channel, &args.filter).await);
    }
    Ok(())
}

/// How `history` and `diff` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VersionsOutput {
    /// For people.
    Text,
    /// The response message as JSON.
    Json,
    /// The response message as YAML.
    Yaml,
}

/// Flags of `auditrail history`.
#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// The resource, plural, optionally with its API group as kubectl writes
    /// it: `networkpolicies`, `globalnetworkpolicies.projectcalico.org`.
    resource: String,
    /// The object: `NAMESPACE/NAME`, or `NAME` when cluster-scoped.
    object: String,
    /// The cluster (needed when the store holds several).
    #[arg(long)]
    cluster: Option<String>,
    /// Start of the time range.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the time range.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = VersionsOutput::Text)]
    output: VersionsOutput,
}

/// `networkpolicies.networking.k8s.io` as resource and group.
pub(crate) fn split_resource(resource: &str) -> (&str, &str) {
    resource.split_once('.').unwrap_or((resource, ""))
}

fn version_json(v: &v1::ResourceVersion) -> serde_json::Value {
    let object: serde_json::Value = serde_json::from_slice(&v.object).unwrap_or_default();
    serde_json::json!({
        "eventId": v.event_id,
        "time": time(v.time.as_ref()),
        "user": v.user,
        "verb": v.verb,
        "resourceVersion": v.resource_version,
        "responseCode": v.response_code,
        "deleted": v.deleted,
        "uid": v.uid,
        "kind": v.kind,
        "object": object,
    })
}

fn print_structured(value: &serde_json::Value, output: VersionsOutput) -> anyhow::Result<()> {
    match output {
        VersionsOutput::Yaml => print!("{}", serde_norway::to_string(value)?),
        _ => println!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}

/// Runs `auditrail history`.
pub(crate) async fn history(server: &str, args: HistoryArgs) -> anyhow::Result<()> {
    let (resource, api_group) = split_resource(&args.resource);
    let (namespace, name) = args.object.split_once('/').unwrap_or(("", &args.object));
    if name.is_empty() {
        bail!("the object name is empty: give NAMESPACE/NAME or NAME");
    }
    let channel = crate::connect(server).await?;
    let mut client = query_client(channel.clone());
    let mut versions = Vec::new();
    let mut token = String::new();
    // The last page also says what was searched (cluster, resolved resource).
    let searched = loop {
        let mut page = client
            .history(v1::HistoryRequest {
                cluster: args.cluster.clone().unwrap_or_default(),
                api_group: api_group.to_owned(),
                resource: resource.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                from: args.from.clone().unwrap_or_default(),
                to: args.to.clone().unwrap_or_default(),
                page_size: 1000,
                page_token: std::mem::take(&mut token),
            })
            .await
            .map_err(|s| rpc_error("History", &s))?
            .into_inner();
        versions.extend(std::mem::take(&mut page.versions));
        token = std::mem::take(&mut page.next_page_token);
        if token.is_empty() {
            break page;
        }
    };
    if args.output != VersionsOutput::Text {
        let all: Vec<_> = versions.iter().map(version_json).collect();
        return print_structured(&serde_json::Value::Array(all), args.output);
    }
    if versions.is_empty() {
        let resource = if searched.resource.is_empty() {
            resource
        } else {
            &searched.resource
        };
        let message = explain::no_versions(
            &channel,
            &explain::Searched {
                cluster: &searched.cluster,
                resource,
                namespace,
                name,
            },
        )
        .await;
        println!("{message}");
        return Ok(());
    }
    println!(
        "{:<27}  {:<7}  {:<32}  {:<10}  EVENT ID",
        "TIME", "VERB", "USER", "VERSION"
    );
    for v in &versions {
        println!(
            "{:<27}  {:<7}  {:<32}  {:<10}  {}",
            time(v.time.as_ref()),
            v.verb,
            v.user,
            if v.resource_version.is_empty() {
                "-"
            } else {
                &v.resource_version
            },
            v.event_id
        );
    }
    Ok(())
}

/// Flags of `auditrail diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The event id of the older version.
    from: String,
    /// The event id of the newer version.
    to: String,
    /// Leave out managedFields, resourceVersion, generation and timestamps.
    #[arg(long)]
    ignore_noise: bool,
    /// Unchanged lines around each change.
    #[arg(long, short = 'U', default_value_t = 3)]
    context: u32,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = VersionsOutput::Text)]
    output: VersionsOutput,
}

/// Runs `auditrail diff`.
pub(crate) async fn diff(server: &str, args: DiffArgs) -> anyhow::Result<()> {
    let mut client = client(server).await?;
    let diff = client
        .diff(v1::DiffRequest {
            from_event_id: args.from.clone(),
            to_event_id: args.to.clone(),
            ignore_noisy_metadata: args.ignore_noise,
            context_lines: Some(args.context),
        })
        .await
        .map_err(|s| rpc_error("Diff", &s))?
        .into_inner();
    if args.output != VersionsOutput::Text {
        let value = serde_json::json!({
            "identical": diff.identical,
            "unifiedDiff": diff.unified_diff,
            "from": diff.from.as_ref().map(version_json),
            "to": diff.to.as_ref().map(version_json),
        });
        return print_structured(&value, args.output);
    }
    if diff.identical {
        println!("the two versions are identical");
    } else {
        print!("{}", diff.unified_diff);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_split_like_kubectl() {
        assert_eq!(split_resource("networkpolicies"), ("networkpolicies", ""));
        assert_eq!(
            split_resource("globalnetworkpolicies.projectcalico.org"),
            ("globalnetworkpolicies", "projectcalico.org")
        );
    }

    #[test]
    fn partial_files_sit_beside_the_target() {
        assert_eq!(
            partial_path(Path::new("/tmp/x/trail.json")),
            Path::new("/tmp/x/trail.json.partial")
        );
    }
}
