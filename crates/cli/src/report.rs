//! `auditrail report …` and `auditrail snapshot import`: compliance report
//! definitions, runs, listings and downloads, against a reporter
//! (`ReportService`).
//!
//! Tables are for people; `-o json|yaml` prints the answer's messages in
//! the proto3 JSON mapping (camelCase, enums by name, 64-bit counts as
//! strings), the same as the reporter's JSON downloads, made from the
//! contract's own descriptors.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use auditrail_proto::v1;
use auditrail_proto::v1::report_service_client::ReportServiceClient;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tokio_stream::StreamExt as _;

use crate::output::{Format, OutputArg, print_document};
use crate::{MAX_MESSAGE_BYTES, ServerArg, connect, format_time};

/// A report type as people write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TypeArg {
    /// Network policy changes in the interval.
    PolicyAudit,
    /// Endpoints and how policies protect them.
    Inventory,
    /// Endpoints and what they may talk to.
    NetworkAccess,
}

impl TypeArg {
    fn proto(self) -> v1::ReportType {
        match self {
            Self::PolicyAudit => v1::ReportType::PolicyAudit,
            Self::Inventory => v1::ReportType::Inventory,
            Self::NetworkAccess => v1::ReportType::NetworkAccess,
        }
    }
}

/// `report define`.
#[derive(Debug, clap::Args)]
pub(crate) struct DefineArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Definition name (a DNS-1123 subdomain).
    name: String,
    /// Report type.
    #[arg(long = "type", value_enum)]
    report_type: TypeArg,
    /// Five-field cron schedule in UTC (at most 12 ticks an hour); none:
    /// only `report run`.
    #[arg(long, default_value = "")]
    schedule: String,
    /// Calico selector on endpoint labels.
    #[arg(long, default_value = "")]
    selector: String,
    /// Namespaces in scope (repeatable).
    #[arg(long = "namespace", short = 'n')]
    namespaces: Vec<String>,
    /// Calico selector on namespace labels.
    #[arg(long, default_value = "")]
    namespace_selector: String,
    /// Service accounts in scope (repeatable).
    #[arg(long = "service-account")]
    service_accounts: Vec<String>,
    /// Calico selector on service account labels.
    #[arg(long, default_value = "")]
    service_account_selector: String,
    /// Cluster whose trail is replayed; default: the reporter's.
    #[arg(long, default_value = "")]
    cluster: String,
    /// Define it suspended (no scheduled runs).
    #[arg(long)]
    suspend: bool,
    /// Replace an existing definition instead of creating one.
    #[arg(long)]
    update: bool,
    /// With --update: fail if the stored definition's etag is not this one.
    #[arg(long, default_value = "", requires = "update")]
    etag: String,
    #[command(flatten)]
    output: OutputArg,
}

/// `report list-definitions`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListDefinitionsArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Only definitions of this cluster.
    #[arg(long, default_value = "")]
    cluster: String,
    #[command(flatten)]
    output: OutputArg,
}

/// `report run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Definition name.
    name: String,
    /// Interval start (RFC 3339), inclusive.
    #[arg(long)]
    start: jiff::Timestamp,
    /// Interval end (RFC 3339), exclusive; not in the future.
    #[arg(long)]
    end: jiff::Timestamp,
    /// Wait until the report has SUCCEEDED or FAILED, then show it (exit
    /// 1 when it FAILED).
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    output: OutputArg,
}

/// `report list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Only reports of this definition.
    #[arg(long, default_value = "")]
    definition: String,
    #[command(flatten)]
    output: OutputArg,
}

/// `report show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Report id.
    id: String,
    /// Include the full contents (JSON and YAML output).
    #[arg(long)]
    contents: bool,
    #[command(flatten)]
    output: OutputArg,
}

/// A part of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PartArg {
    /// The whole report (JSON).
    All,
    /// The summary counts.
    Summary,
    /// One entry per endpoint.
    Endpoints,
    /// One entry per namespace.
    Namespaces,
    /// The audit events (policy-audit).
    Events,
}

/// A download format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FileFormat {
    /// JSON.
    Json,
    /// CSV (RFC 4180).
    Csv,
    /// YAML (events only).
    Yaml,
}

/// `report download`.
#[derive(Debug, clap::Args)]
pub(crate) struct DownloadArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Report id.
    id: String,
    /// Which part; default: all for JSON, summary for CSV, events for YAML.
    #[arg(long, value_enum)]
    part: Option<PartArg>,
    /// File format.
    #[arg(long, value_enum, default_value_t = FileFormat::Json)]
    format: FileFormat,
    /// Write to this file instead of standard output.
    #[arg(long = "file", short = 'f')]
    file: Option<PathBuf>,
}

/// `snapshot import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    server: ServerArg,
    /// The output of `kubectl get … -o json` (a List).
    file: PathBuf,
    /// Cluster it is of; default: the reporter's.
    #[arg(long, default_value = "")]
    cluster: String,
    /// When the LIST was taken (RFC 3339); default: the file's
    /// modification time.
    #[arg(long)]
    at: Option<jiff::Timestamp>,
    #[command(flatten)]
    output: OutputArg,
}

async fn client(
    server: &str,
) -> anyhow::Result<ReportServiceClient<auditrail_server::client::Connection>> {
    Ok(ReportServiceClient::new(connect(server).await?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES))
}

/// `message` (named `name` in `auditrail.v1`) in the proto3 JSON mapping.
fn proto_json<M: prost::Message>(message: &M, name: &str) -> anyhow::Result<serde_json::Value> {
    let pool = DescriptorPool::decode(auditrail_proto::FILE_DESCRIPTOR_SET)
        .context("the contract's descriptors")?;
    let descriptor = pool
        .get_message_by_name(&format!("auditrail.v1.{name}"))
        .with_context(|| format!("no message {name} in the contract"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
    Ok(serde_json::to_value(&dynamic)?)
}

fn print_message<M: prost::Message>(format: Format, message: &M, name: &str) -> anyhow::Result<()> {
    print_document(format, &proto_json(message, name)?)
}

fn type_name(t: i32) -> &'static str {
    match v1::ReportType::try_from(t) {
        Ok(v1::ReportType::PolicyAudit) => "policy-audit",
        Ok(v1::ReportType::Inventory) => "inventory",
        Ok(v1::ReportType::NetworkAccess) => "network-access",
        _ => "unspecified",
    }
}

fn status_name(s: i32) -> &'static str {
    match v1::ReportStatus::try_from(s) {
        Ok(v1::ReportStatus::Pending) => "PENDING",
        Ok(v1::ReportStatus::Running) => "RUNNING",
        Ok(v1::ReportStatus::Succeeded) => "SUCCEEDED",
        Ok(v1::ReportStatus::Failed) => "FAILED",
        _ => "UNSPECIFIED",
    }
}

fn definitions_table(defs: &[v1::ReportDefinition]) -> String {
    let mut out = format!(
        "{:<30} {:<15} {:<16} {:<10} {:<8} {}\n",
        "NAME", "TYPE", "SCHEDULE", "CLUSTER", "SUSPEND", "NEXT RUN"
    );
    for d in defs {
        let _ = writeln!(
            out,
            "{:<30} {:<15} {:<16} {:<10} {:<8} {}",
            d.name,
            type_name(d.report_type),
            if d.schedule.is_empty() {
                "-"
            } else {
                &d.schedule
            },
            d.cluster,
            d.suspend,
            format_time(d.next_run_time.as_ref()),
        );
    }
    out
}

fn reports_table(reports: &[v1::Report]) -> String {
    let mut out = format!(
        "{:<32} {:<24} {:<15} {:<10} {:<27} {:<27} {}\n",
        "ID", "DEFINITION", "TYPE", "STATUS", "START", "END", "SUMMARY"
    );
    for r in reports {
        let interval = r.interval.unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<32} {:<24} {:<15} {:<10} {:<27} {:<27} {}",
            r.id,
            r.definition_name,
            type_name(r.report_type),
            status_name(r.status),
            format_time(interval.start.as_ref()),
            format_time(interval.end.as_ref()),
            summary_line(r),
        );
    }
    out
}

fn summary_line(r: &v1::Report) -> String {
    use v1::report_summary::Kind;
    if !r.error.is_empty() && r.status != v1::ReportStatus::Succeeded as i32 {
        return r.error.clone();
    }
    match r.summary.as_ref().and_then(|s| s.kind.as_ref()) {
        Some(Kind::PolicyAudit(s)) => format!(
            "{} changes: {} created, {} modified, {} deleted",
            s.total, s.created, s.modified, s.deleted
        ),
        Some(Kind::Inventory(s) | Kind::NetworkAccess(s)) => {
            let c = s.endpoints.unwrap_or_default();
            format!(
                "{} endpoints in {} namespaces: {} ingress-protected, {} egress-protected",
                c.total, s.namespaces_in_scope, c.ingress_protected, c.egress_protected
            )
        }
        None => "-".to_owned(),
    }
}

fn report_text(r: &v1::Report) -> String {
    let interval = r.interval.unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "id:          {}", r.id);
    let _ = writeln!(out, "definition:  {}", r.definition_name);
    let _ = writeln!(out, "type:        {}", type_name(r.report_type));
    let _ = writeln!(out, "cluster:     {}", r.cluster);
    let _ = writeln!(
        out,
        "interval:    {} .. {}",
        format_time(interval.start.as_ref()),
        format_time(interval.end.as_ref())
    );
    let _ = writeln!(out, "status:      {}", status_name(r.status));
    let _ = writeln!(
        out,
        "generated:   {}",
        format_time(r.generated_time.as_ref())
    );
    let _ = writeln!(out, "events read: {}", r.events_replayed);
    let _ = writeln!(out, "summary:     {}", summary_line(r));
    if !r.error.is_empty() {
        let _ = writeln!(out, "error:       {}", r.error);
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning:     {w}");
    }
    out
}

/// `report define`.
pub(crate) async fn define(args: DefineArgs) -> anyhow::Result<()> {
    let matching = |names: Vec<String>, selector: String| {
        (!names.is_empty() || !selector.is_empty())
            .then_some(v1::NamesAndLabelsMatch { names, selector })
    };
    let definition = v1::ReportDefinition {
        name: args.name,
        report_type: args.report_type.proto() as i32,
        schedule: args.schedule,
        endpoints: Some(v1::EndpointsSelection {
            selector: args.selector,
            namespaces: matching(args.namespaces, args.namespace_selector),
            service_accounts: matching(args.service_accounts, args.service_account_selector),
        }),
        suspend: args.suspend,
        cluster: args.cluster,
        etag: args.etag,
        ..Default::default()
    };
    let mut client = client(&args.server.server).await?;
    let stored = if args.update {
        client
            .update_report_definition(v1::UpdateReportDefinitionRequest {
                definition: Some(definition),
            })
            .await?
            .into_inner()
            .definition
    } else {
        client
            .create_report_definition(v1::CreateReportDefinitionRequest {
                definition: Some(definition),
            })
            .await?
            .into_inner()
            .definition
    }
    .unwrap_or_default();
    match args.output.output {
        Format::Text => print!("{}", definitions_table(std::slice::from_ref(&stored))),
        f => print_message(f, &stored, "ReportDefinition")?,
    }
    Ok(())
}

/// `report list-definitions`.
pub(crate) async fn list_definitions(args: ListDefinitionsArgs) -> anyhow::Result<()> {
    let mut client = client(&args.server.server).await?;
    let mut all = v1::ListReportDefinitionsResponse::default();
    let mut token = String::new();
    loop {
        let page = client
            .list_report_definitions(v1::ListReportDefinitionsRequest {
                page_size: 1000,
                page_token: token,
                cluster: args.cluster.clone(),
            })
            .await?
            .into_inner();
        all.definitions.extend(page.definitions);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    match args.output.output {
        Format::Text => print!("{}", definitions_table(&all.definitions)),
        f => print_message(f, &all, "ListReportDefinitionsResponse")?,
    }
    Ok(())
}

/// `report run`.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut client = client(&args.server.server).await?;
    let started = client
        .run_report(v1::RunReportRequest {
            definition_name: args.name,
            interval: Some(v1::TimeInterval {
                start: Some(auditrail_proto::timestamp(args.start)),
                end: Some(auditrail_proto::timestamp(args.end)),
            }),
        })
        .await?
        .into_inner();
    if !args.wait {
        match args.output.output {
            Format::Text => println!("{}", started.report_id),
            f => print_message(f, &started, "RunReportResponse")?,
        }
        return Ok(());
    }
    let report = loop {
        let report = client
            .get_report(v1::GetReportRequest {
                report_id: started.report_id.clone(),
                include_contents: false,
            })
            .await?
            .into_inner()
            .report
            .unwrap_or_default();
        let done = report.status == v1::ReportStatus::Succeeded as i32
            || report.status == v1::ReportStatus::Failed as i32;
        if done {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    match args.output.output {
        Format::Text => print!("{}", report_text(&report)),
        f => print_message(f, &report, "Report")?,
    }
    if report.status == v1::ReportStatus::Failed as i32 {
        anyhow::bail!("report {} failed: {}", report.id, report.error);
    }
    Ok(())
}

/// `report list`.
pub(crate) async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut client = client(&args.server.server).await?;
    let mut all = v1::ListReportsResponse::default();
    let mut token = String::new();
    loop {
        let page = client
            .list_reports(v1::ListReportsRequest {
                definition_name: args.definition.clone(),
                page_size: 1000,
                page_token: token,
            })
            .await?
            .into_inner();
        all.reports.extend(page.reports);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    match args.output.output {
        Format::Text => print!("{}", reports_table(&all.reports)),
        f => print_message(f, &all, "ListReportsResponse")?,
    }
    Ok(())
}

/// `report show`.
pub(crate) async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let report = client(&args.server.server)
        .await?
        .get_report(v1::GetReportRequest {
            report_id: args.id,
            include_contents: args.contents,
        })
        .await?
        .into_inner()
        .report
        .unwrap_or_default();
    match args.output.output {
        Format::Text => print!("{}", report_text(&report)),
        f => print_message(f, &report, "Report")?,
    }
    Ok(())
}

/// `report download`.
pub(crate) async fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let part = match args.part {
        None => v1::ReportPart::Unspecified,
        Some(PartArg::All) => v1::ReportPart::All,
        Some(PartArg::Summary) => v1::ReportPart::Summary,
        Some(PartArg::Endpoints) => v1::ReportPart::Endpoints,
        Some(PartArg::Namespaces) => v1::ReportPart::Namespaces,
        Some(PartArg::Events) => v1::ReportPart::Events,
    };
    let format = match args.format {
        FileFormat::Json => v1::ReportFormat::Json,
        FileFormat::Csv => v1::ReportFormat::Csv,
        FileFormat::Yaml => v1::ReportFormat::Yaml,
    };
    let mut stream = client(&args.server.server)
        .await?
        .download_report(v1::DownloadReportRequest {
            report_id: args.id,
            format: format as i32,
            part: part as i32,
        })
        .await?
        .into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk?.data);
    }
    match args.file {
        Some(path) => {
            std::fs::write(&path, &data)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => std::io::stdout().write_all(&data)?,
    }
    Ok(())
}

/// `snapshot import`.
pub(crate) async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let data = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let at = if let Some(at) = args.at {
        at
    } else {
        let modified = std::fs::metadata(&args.file)?.modified()?;
        jiff::Timestamp::try_from(modified)?
    };
    let answer = client(&args.server.server)
        .await?
        .import_snapshot(v1::ImportSnapshotRequest {
            cluster: args.cluster,
            list_json: data,
            request_start: Some(auditrail_proto::timestamp(at)),
            request_completion: None,
        })
        .await?
        .into_inner();
    match args.output.output {
        Format::Text => {
            println!(
                "snapshot {}: {} objects",
                answer.snapshot_id, answer.objects
            );
            for s in &answer.skipped {
                println!("left out (not tracked): {s}");
            }
        }
        f => print_message(f, &answer, "ImportSnapshotResponse")?,
    }
    Ok(())
}
