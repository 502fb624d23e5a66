//! Report files: which parts each type has, in which formats, and how
//! each is written (JSON, CSV through the `csv` crate with RFC 4180
//! quoting, YAML documents for events). The columns are listed in the
//! README ("Compliance reports").
//!
//! JSON of messages is the proto3 JSON mapping, produced from the
//! contract's own descriptors (`prost-reflect`), so it names fields as any
//! other proto3 client would.

use std::sync::LazyLock;

use auditrail_document::{DocumentWriter, Format};
use auditrail_proto::v1;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::error::ReportError;

/// A rendered file.
#[derive(Debug)]
pub struct File {
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its media type.
    pub media_type: &'static str,
    /// Its suggested name.
    pub file_name: String,
}

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(auditrail_proto::FILE_DESCRIPTOR_SET).ok());

/// `message` in the proto3 JSON mapping.
fn proto_json<M: prost::Message>(
    message: &M,
    name: &str,
) -> Result<serde_json::Value, ReportError> {
    let pool = POOL
        .as_ref()
        .ok_or_else(|| ReportError::Internal("the contract's descriptors do not decode".into()))?;
    let descriptor = pool
        .get_message_by_name(&format!("auditrail.v1.{name}"))
        .ok_or_else(|| ReportError::Internal(format!("no message {name} in the contract")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| ReportError::Internal(format!("{name}: {e}")))?;
    serde_json::to_value(&dynamic).map_err(|e| ReportError::Internal(format!("{name}: {e}")))
}

/// `messages` (each a `name`) as a JSON file of one array.
fn json_list<M: prost::Message>(messages: &[M], name: &str) -> Result<Vec<u8>, ReportError> {
    let list = messages
        .iter()
        .map(|m| proto_json(m, name))
        .collect::<Result<Vec<_>, _>>()?;
    json_file(&serde_json::Value::Array(list))
}

fn json_file(value: &serde_json::Value) -> Result<Vec<u8>, ReportError> {
    let mut data =
        serde_json::to_vec_pretty(value).map_err(|e| ReportError::Internal(e.to_string()))?;
    data.push(b'\n');
    Ok(data)
}

fn part_name(part: v1::ReportPart) -> &'static str {
    match part {
        v1::ReportPart::All | v1::ReportPart::Unspecified => "all",
        v1::ReportPart::Summary => "summary",
        v1::ReportPart::Endpoints => "endpoints",
        v1::ReportPart::Namespaces => "namespaces",
        v1::ReportPart::Events => "events",
    }
}

/// The part and format a request means (defaults resolved), or why it is
/// not offered for this report type.
pub fn resolve(
    report_type: v1::ReportType,
    format: i32,
    part: i32,
) -> Result<(v1::ReportFormat, v1::ReportPart), ReportError> {
    let format = v1::ReportFormat::try_from(format)
        .map_err(|_| ReportError::invalid("format", format!("unknown format {format}")))?;
    let part = v1::ReportPart::try_from(part)
        .map_err(|_| ReportError::invalid("part", format!("unknown part {part}")))?;
    let format = match format {
        v1::ReportFormat::Unspecified => v1::ReportFormat::Json,
        f => f,
    };
    let part = match (part, format) {
        (v1::ReportPart::Unspecified, v1::ReportFormat::Csv) => v1::ReportPart::Summary,
        (v1::ReportPart::Unspecified, v1::ReportFormat::Yaml) => v1::ReportPart::Events,
        (v1::ReportPart::Unspecified, _) => v1::ReportPart::All,
        (p, _) => p,
    };
    let endpoints = matches!(
        report_type,
        v1::ReportType::Inventory | v1::ReportType::NetworkAccess
    );
    let has_part = match part {
        v1::ReportPart::All | v1::ReportPart::Summary => true,
        v1::ReportPart::Endpoints | v1::ReportPart::Namespaces => endpoints,
        v1::ReportPart::Events => report_type == v1::ReportType::PolicyAudit,
        v1::ReportPart::Unspecified => false,
    };
    if !has_part {
        return Err(ReportError::invalid(
            "part",
            format!(
                "a {} report has no {} part (it has: {})",
                type_name(report_type),
                part_name(part),
                if endpoints {
                    "all, summary, endpoints, namespaces"
                } else {
                    "all, summary, events"
                }
            ),
        ));
    }
    let offered = match part {
        v1::ReportPart::All => format == v1::ReportFormat::Json,
        v1::ReportPart::Events => {
            matches!(format, v1::ReportFormat::Json | v1::ReportFormat::Yaml)
        }
        _ => matches!(format, v1::ReportFormat::Json | v1::ReportFormat::Csv),
    };
    if !offered {
        return Err(ReportError::invalid(
            "format",
            format!(
                "the {} part is not offered as {} (all: JSON; events: JSON or YAML; the others: JSON or CSV)",
                part_name(part),
                format_name(format)
            ),
        ));
    }
    Ok((format, part))
}

/// `policy-audit`, `inventory`, `network-access`.
pub fn type_name(t: v1::ReportType) -> &'static str {
    match t {
        v1::ReportType::PolicyAudit => "policy-audit",
        v1::ReportType::Inventory => "inventory",
        v1::ReportType::NetworkAccess => "network-access",
        v1::ReportType::Unspecified => "unspecified",
    }
}

fn format_name(f: v1::ReportFormat) -> &'static str {
    match f {
        v1::ReportFormat::Json | v1::ReportFormat::Unspecified => "json",
        v1::ReportFormat::Csv => "csv",
        v1::ReportFormat::Yaml => "yaml",
    }
}

/// `<definition>-<start>-<part>.<ext>`: the start's date, with the time
/// when the interval does not start at midnight.
fn file_name(report: &v1::Report, part: v1::ReportPart, format: v1::ReportFormat) -> String {
    let start = report
        .interval
        .as_ref()
        .and_then(|i| i.start)
        .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok());
    let when = start.map_or_else(String::new, |t| {
        if t.as_second().rem_euclid(86_400) == 0 {
            t.strftime("%Y-%m-%d").to_string()
        } else {
            t.strftime("%Y-%m-%dT%H%MZ").to_string()
        }
    });
    format!(
        "{}-{when}-{}.{}",
        report.definition_name,
        part_name(part),
        format_name(format)
    )
}

/// The endpoint counts' CSV columns, after the first.
const COUNT_COLUMNS: [&str; 7] = [
    "endpoints",
    "ingressProtected",
    "egressProtected",
    "ingressFromInternet",
    "egressToInternet",
    "ingressFromOtherNamespaces",
    "egressToOtherNamespaces",
];

fn counts_row(counts: &v1::EndpointCounts) -> [String; 7] {
    [
        counts.total,
        counts.ingress_protected,
        counts.egress_protected,
        counts.ingress_from_internet,
        counts.egress_to_internet,
        counts.ingress_from_other_namespaces,
        counts.egress_to_other_namespaces,
    ]
    .map(|n| n.to_string())
}

/// The name of the total row in CSV summaries: namespaces are lower case,
/// so it is never a namespace's name.
pub const TOTAL_ROW: &str = "TOTAL";

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

fn finish_csv(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ReportError> {
    w.into_inner()
        .map_err(|e| ReportError::Internal(format!("CSV: {e}")))
}

#[allow(clippy::needless_pass_by_value)] // Used as `map_err(csv_err)`.
fn csv_err(e: csv::Error) -> ReportError {
    ReportError::Internal(format!("CSV: {e}"))
}

/// Policy-audit summary CSV: one row per namespace of the counted events
/// (empty for cluster-scoped policies), then the total.
fn policy_audit_summary_csv(contents: &v1::PolicyAuditContents) -> Result<Vec<u8>, ReportError> {
    let mut per_ns: std::collections::BTreeMap<String, [u64; 3]> =
        std::collections::BTreeMap::new();
    for event in &contents.events {
        let ns = event
            .object_ref
            .as_ref()
            .map(|r| r.namespace.clone())
            .unwrap_or_default();
        let verb_index = match event.verb.as_str() {
            "create" => 0,
            "update" | "patch" => 1,
            _ => 2,
        };
        let row = per_ns.entry(ns).or_default();
        row[verb_index] += if event.verb == "deletecollection" {
            deleted_items(event)
        } else {
            1
        };
    }
    let mut w = csv_writer();
    w.write_record(["namespace", "total", "created", "modified", "deleted"])
        .map_err(csv_err)?;
    for (ns, [c, m, d]) in &per_ns {
        w.write_record([
            ns.clone(),
            (c + m + d).to_string(),
            c.to_string(),
            m.to_string(),
            d.to_string(),
        ])
        .map_err(csv_err)?;
    }
    let s = contents.summary.unwrap_or_default();
    w.write_record([
        TOTAL_ROW.to_owned(),
        s.total.to_string(),
        s.created.to_string(),
        s.modified.to_string(),
        s.deleted.to_string(),
    ])
    .map_err(csv_err)?;
    finish_csv(w)
}

fn deleted_items(event: &v1::AuditEvent) -> u64 {
    serde_json::from_slice::<serde_json::Value>(&event.raw)
        .ok()
        .and_then(|v| {
            v.get("responseObject")?
                .get("items")?
                .as_array()
                .map(|a| a.len() as u64)
        })
        .unwrap_or(1)
}

fn namespaces_csv(summary: &v1::EndpointsSummary, total: bool) -> Result<Vec<u8>, ReportError> {
    let mut w = csv_writer();
    let mut header = vec!["namespace"];
    header.extend(COUNT_COLUMNS);
    w.write_record(&header).map_err(csv_err)?;
    for ns in &summary.namespaces {
        let mut row = vec![ns.namespace.clone()];
        row.extend(counts_row(&ns.counts.unwrap_or_default()));
        w.write_record(&row).map_err(csv_err)?;
    }
    if total {
        let mut row = vec![TOTAL_ROW.to_owned()];
        row.extend(counts_row(&summary.endpoints.unwrap_or_default()));
        w.write_record(&row).map_err(csv_err)?;
    }
    finish_csv(w)
}

fn endpoints_csv(entries: &[v1::EndpointEntry]) -> Result<Vec<u8>, ReportError> {
    let mut w = csv_writer();
    w.write_record([
        "kind",
        "namespace",
        "name",
        "serviceAccount",
        "ingressProtected",
        "egressProtected",
        "ingressFromInternet",
        "egressToInternet",
        "ingressFromOtherNamespaces",
        "egressToOtherNamespaces",
        "appliedPolicies",
        "services",
    ])
    .map_err(csv_err)?;
    for e in entries {
        let policies: Vec<String> = e
            .applied_policies
            .iter()
            .map(|p| {
                let mut s = String::new();
                if !p.tier.is_empty() {
                    s.push_str(&p.tier);
                    s.push(':');
                }
                s.push_str(&p.kind);
                s.push(' ');
                if !p.namespace.is_empty() {
                    s.push_str(&p.namespace);
                    s.push('/');
                }
                s.push_str(&p.name);
                s
            })
            .collect();
        let services: Vec<String> = e
            .services
            .iter()
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect();
        w.write_record([
            e.kind.clone(),
            e.namespace.clone(),
            e.name.clone(),
            e.service_account.clone(),
            e.ingress_protected.to_string(),
            e.egress_protected.to_string(),
            e.ingress_from_internet.to_string(),
            e.egress_to_internet.to_string(),
            e.ingress_from_other_namespaces.to_string(),
            e.egress_to_other_namespaces.to_string(),
            policies.join(";"),
            services.join(";"),
        ])
        .map_err(csv_err)?;
    }
    finish_csv(w)
}

fn events_file(events: &[v1::AuditEvent], format: Format) -> Result<Vec<u8>, ReportError> {
    let mut writer = DocumentWriter::new(format);
    let mut out = Vec::new();
    for e in events {
        writer
            .event(&e.raw, &mut out)
            .map_err(|err| ReportError::Internal(format!("event {}: {err}", e.id)))?;
    }
    writer.finish(&mut out);
    Ok(out)
}

/// Renders `part` of `report` (whose contents are given) as `format`; the
/// pair has been [`resolve`]d.
pub fn render(
    report: &v1::Report,
    contents: &v1::ReportContents,
    format: v1::ReportFormat,
    part: v1::ReportPart,
) -> Result<File, ReportError> {
    use v1::report_contents::Kind;
    let csv = format == v1::ReportFormat::Csv;
    let data = match (part, contents.kind.as_ref()) {
        (v1::ReportPart::All, _) => {
            let mut full = report.clone();
            full.contents = Some(contents.clone());
            json_file(&proto_json(&full, "Report")?)?
        }
        (v1::ReportPart::Summary, Some(Kind::PolicyAudit(c))) => {
            if csv {
                policy_audit_summary_csv(c)?
            } else {
                json_file(&proto_json(
                    &c.summary.unwrap_or_default(),
                    "PolicyAuditSummary",
                )?)?
            }
        }
        (v1::ReportPart::Events, Some(Kind::PolicyAudit(c))) => match format {
            v1::ReportFormat::Yaml => events_file(&c.events, Format::Yaml)?,
            _ => events_file(&c.events, Format::Json)?,
        },
        (part, Some(Kind::Inventory(c) | Kind::NetworkAccess(c))) => {
            let summary = c.summary.clone().unwrap_or_default();
            match part {
                v1::ReportPart::Summary if csv => namespaces_csv(&summary, true)?,
                v1::ReportPart::Summary => json_file(&proto_json(&summary, "EndpointsSummary")?)?,
                v1::ReportPart::Namespaces if csv => namespaces_csv(&summary, false)?,
                v1::ReportPart::Namespaces => json_list(&summary.namespaces, "NamespaceSummary")?,
                v1::ReportPart::Endpoints if csv => endpoints_csv(&c.endpoints)?,
                v1::ReportPart::Endpoints => json_list(&c.endpoints, "EndpointEntry")?,
                _ => return Err(ReportError::Internal("part not resolved".into())),
            }
        }
        _ => {
            return Err(ReportError::Internal(
                "the report's contents do not match its type".into(),
            ));
        }
    };
    Ok(File {
        data,
        media_type: match format {
            v1::ReportFormat::Csv => "text/csv",
            v1::ReportFormat::Yaml => "application/yaml",
            _ => "application/json",
        },
        file_name: file_name(report, part, format),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_formats_follow_the_contract() {
        use v1::{ReportFormat as F, ReportPart as P, ReportType as T};
        let ok = |t, f: F, p: P| resolve(t, f as i32, p as i32);
        assert_eq!(
            ok(T::Inventory, F::Unspecified, P::Unspecified).unwrap(),
            (F::Json, P::All)
        );
        assert_eq!(
            ok(T::Inventory, F::Csv, P::Unspecified).unwrap(),
            (F::Csv, P::Summary)
        );
        assert_eq!(
            ok(T::PolicyAudit, F::Yaml, P::Unspecified).unwrap(),
            (F::Yaml, P::Events)
        );
        let field = |r: Result<_, ReportError>| match r {
            Err(ReportError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(ok(T::PolicyAudit, F::Csv, P::Endpoints)), "part");
        assert_eq!(field(ok(T::Inventory, F::Json, P::Events)), "part");
        assert_eq!(field(ok(T::Inventory, F::Yaml, P::Endpoints)), "format");
        assert_eq!(field(ok(T::Inventory, F::Csv, P::All)), "format");
        assert_eq!(field(resolve(T::Inventory, 9, 0)), "format");
    }

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says() {
        let entries = vec![v1::EndpointEntry {
            kind: "Pod".into(),
            namespace: "ns".into(),
            name: "web, \"blue\"\nline".into(),
            applied_policies: vec![
                v1::PolicyRef {
                    kind: "NetworkPolicy".into(),
                    namespace: "ns".into(),
                    name: "a".into(),
                    ..Default::default()
                },
                v1::PolicyRef {
                    kind: "GlobalNetworkPolicy".into(),
                    name: "b".into(),
                    tier: "security".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }];
        let text = String::from_utf8(endpoints_csv(&entries).unwrap()).unwrap();
        let mut lines = text.split("\r\n");
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("kind,namespace,name,serviceAccount,")
        );
        assert_eq!(
            lines.next().unwrap(),
            "Pod,ns,\"web, \"\"blue\"\"\nline\",,false,false,false,false,false,false,\
             NetworkPolicy ns/a;security:GlobalNetworkPolicy b,"
        );
        // And it reads back to the same fields.
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[2], "web, \"blue\"\nline");
    }

    #[test]
    fn summaries_end_with_the_total_row() {
        let summary = v1::EndpointsSummary {
            endpoints: Some(v1::EndpointCounts {
                total: 3,
                ingress_protected: 1,
                ..Default::default()
            }),
            namespaces: vec![v1::NamespaceSummary {
                namespace: "a".into(),
                counts: Some(v1::EndpointCounts {
                    total: 3,
                    ingress_protected: 1,
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let text = String::from_utf8(namespaces_csv(&summary, true).unwrap()).unwrap();
        let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        assert_eq!(lines[1], "a,3,1,0,0,0,0,0");
        assert_eq!(lines[2], "TOTAL,3,1,0,0,0,0,0");
    }

    #[test]
    fn proto_json_uses_the_proto3_names() {
        let value = proto_json(
            &v1::PolicyAuditSummary {
                total: 2,
                created: 2,
                ..Default::default()
            },
            "PolicyAuditSummary",
        )
        .unwrap();
        assert_eq!(value, serde_json::json!({ "total": "2", "created": "2" }));
    }
}
